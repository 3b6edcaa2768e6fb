//! Exchanges: a rendered request goes out, a response comes back, both kept as one value.
//!
//! ```text
//! collection::Request --render(scope)--> Rendered --send--> Exchange --chain::bind--> variables
//! ```

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::collection::{Auth, Request};
use crate::template::{Ctx, TemplateError, Templates};

/// A request with every template rendered: exactly what goes on the wire.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Request name in the collection.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Full URL including the query string.
    pub url: String,
    /// Headers in order (including any `Authorization` produced by `auth:`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Timeout.
    pub timeout: Duration,
}

/// A rendered body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    None,
    /// JSON.
    Json(Value),
    /// Form fields.
    Form(Vec<(String, String)>),
    /// Raw text.
    Text(String),
    /// `multipart/form-data`: parts in order, and the boundary between them.
    Multipart {
        /// The parts.
        parts: Vec<(String, PartValue)>,
        /// The boundary (chosen when rendered, so every view of the request agrees).
        boundary: String,
    },
}

/// One rendered multipart part.
#[derive(Debug, Clone, PartialEq)]
pub enum PartValue {
    /// A text field.
    Text(String),
    /// A file, read when the request is sent.
    File {
        /// Where it is (relative paths are the collection directory's).
        path: std::path::PathBuf,
        /// Its media type.
        content_type: String,
        /// The file name sent.
        filename: String,
    },
}

impl PartValue {
    /// A file part for a path, with the media type its extension implies unless given.
    pub fn file(
        path: std::path::PathBuf,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> PartValue {
        let filename = filename.unwrap_or_else(|| {
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into())
        });
        let content_type = content_type.unwrap_or_else(|| media_type_for(&filename).to_string());
        PartValue::File {
            path,
            content_type,
            filename,
        }
    }
}

/// The media type a file name implies (the common ones; else `application/octet-stream`).
pub fn media_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => "application/json",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Encodes a multipart body, reading its files.
pub fn multipart_bytes(parts: &[(String, PartValue)], boundary: &str) -> std::io::Result<Vec<u8>> {
    let quote = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(['\r', '\n'], " ")
    };
    let mut out = Vec::new();
    for (name, part) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            PartValue::Text(v) => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        quote(name)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(v.as_bytes());
            }
            PartValue::File {
                path,
                content_type,
                filename,
            } => {
                let bytes = std::fs::read(path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot read {} for part `{name}`: {e}", path.display()),
                    )
                })?;
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                        quote(name),
                        quote(filename)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&bytes);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// A render failure, with the field of the request it happened in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {error}")]
pub struct RenderError {
    /// `url`, `headers.Authorization`, `json`, ...
    pub field: String,
    /// The template failure.
    pub error: TemplateError,
}

impl Rendered {
    /// Renders a collection request against a context. `oauth_client` marks a request to an
    /// OAuth2 token endpoint, whose Basic credentials are form-encoded first (RFC 6749 §2.3.1).
    pub fn render(
        t: &Templates,
        name: &str,
        req: &Request,
        ctx: &Value,
        oauth_client: bool,
    ) -> Result<Rendered, RenderError> {
        Rendered::render_with(t, name, req, ctx, oauth_client, None)
    }

    /// [`Rendered::render`] for a request of a collection: its directory anchors relative file
    /// paths, and its settings decide defaults (`compat: newman` follows redirects).
    pub fn render_with(
        t: &Templates,
        name: &str,
        req: &Request,
        ctx: &Value,
        oauth_client: bool,
        collection: Option<&crate::collection::Collection>,
    ) -> Result<Rendered, RenderError> {
        let ctx = &Ctx::new(ctx);
        let at = |field: String| {
            move |error| RenderError {
                field: field.clone(),
                error,
            }
        };
        let mut url = t.render_in(&req.url, ctx).map_err(at("url".into()))?;
        if !req.query.is_empty() {
            let mut pairs = Vec::with_capacity(req.query.len());
            for (k, v) in &req.query {
                pairs.push((
                    k.clone(),
                    t.render_in(&v.0, ctx).map_err(at(format!("query.{k}")))?,
                ));
            }
            url = append_query(&url, &pairs);
        }
        let mut headers = Vec::with_capacity(req.headers.len() + 1);
        for (k, v) in &req.headers {
            headers.push((
                k.clone(),
                t.render_in(&v.0, ctx).map_err(at(format!("headers.{k}")))?,
            ));
        }
        match &req.auth {
            Some(Auth::Basic { user, password }) => {
                let u = t
                    .render_in(user, ctx)
                    .map_err(at("auth.basic.user".into()))?;
                let p = t
                    .render_in(password, ctx)
                    .map_err(at("auth.basic.password".into()))?;
                headers.push(("Authorization".into(), basic_header(&u, &p, oauth_client)));
            }
            Some(Auth::Bearer(tok)) => {
                let v = t.render_in(tok, ctx).map_err(at("auth.bearer".into()))?;
                headers.push(("Authorization".into(), format!("Bearer {v}")));
            }
            None => {}
        }
        let body = if let Some(j) = &req.json {
            Body::Json(t.render_json_in(j, ctx).map_err(at("json".into()))?)
        } else if let Some(f) = &req.form {
            let mut fields = Vec::with_capacity(f.len());
            for (k, v) in f {
                fields.push((
                    k.clone(),
                    t.render_in(&v.0, ctx).map_err(at(format!("form.{k}")))?,
                ));
            }
            Body::Form(fields)
        } else if let Some(text) = &req.text {
            Body::Text(t.render_in(text, ctx).map_err(at("text".into()))?)
        } else if !req.multipart.is_empty() {
            let dir = collection.map(|c| c.dir());
            let mut parts = Vec::with_capacity(req.multipart.len());
            for (k, p) in &req.multipart {
                let v = match p {
                    crate::collection::Part::Text(v) => PartValue::Text(
                        t.render_in(&v.0, ctx)
                            .map_err(at(format!("multipart.{k}")))?,
                    ),
                    crate::collection::Part::File(f) => {
                        let file = t
                            .render_in(&f.file, ctx)
                            .map_err(at(format!("multipart.{k}.file")))?;
                        let mut path = std::path::PathBuf::from(file);
                        if let Some(d) = &dir
                            && path.is_relative()
                        {
                            path = d.join(path);
                        }
                        PartValue::file(path, f.content_type.clone(), f.filename.clone())
                    }
                };
                parts.push((k.clone(), v));
            }
            Body::Multipart {
                parts,
                boundary: format!("postie-{}", uuid::Uuid::new_v4().simple()),
            }
        } else {
            Body::None
        };
        let timeout = req
            .timeout
            .as_deref()
            .and_then(|s| crate::util::parse_duration(s).ok())
            .unwrap_or(Duration::from_secs(30));
        Ok(Rendered {
            name: name.to_string(),
            method: req.method.to_ascii_uppercase(),
            url,
            headers,
            body,
            follow_redirects: match collection {
                Some(c) => c.follows_redirects(req),
                None => req.follow_redirects.unwrap_or(false),
            },
            timeout,
        })
    }

    /// The value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as sent: the request's own, plus the `Content-Type` its body implies when it
    /// sets none (what `show`, `--curl` and the wire all agree on).
    pub fn effective_headers(&self) -> Vec<(String, String)> {
        let mut out = self.headers.clone();
        let implied = match &self.body {
            Body::Json(_) => Some("application/json".to_string()),
            Body::Form(_) => Some("application/x-www-form-urlencoded".to_string()),
            Body::Multipart { boundary, .. } => {
                Some(format!("multipart/form-data; boundary={boundary}"))
            }
            _ => None,
        };
        if let Some(ct) = implied
            && self.header("content-type").is_none()
        {
            out.push(("Content-Type".into(), ct));
        }
        out
    }

    /// Checks what reqwest would refuse, before anything is sent: the URL is an http(s) URL,
    /// header names and values are valid.
    pub fn check(&self) -> Result<(), String> {
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => {
                return Err(format!(
                    "url: `{}` uses `{}:`; postie sends http and https only",
                    self.url,
                    u.scheme()
                ));
            }
            Err(e) => return Err(format!("url: `{}` is not a URL ({e})", self.url)),
        }
        for (k, v) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(format!("headers: `{k}` is not a valid header name"));
            }
            if reqwest::header::HeaderValue::from_str(v).is_err() {
                return Err(format!(
                    "headers.{k}: the value has a character a header cannot carry (a newline or a control character)"
                ));
            }
        }
        Ok(())
    }

    /// Removes a header (case-insensitive).
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// A form field's value.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Form(f) => f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// Sets (or with `None` removes) a form field; a request without a body gets a form body.
    pub fn set_form_field(&mut self, name: &str, value: Option<&str>) {
        if matches!(self.body, Body::None) {
            self.body = Body::Form(Vec::new());
        }
        if let Body::Form(f) = &mut self.body {
            f.retain(|(k, _)| k != name);
            if let Some(v) = value {
                f.push((name.to_string(), v.to_string()));
            }
        }
    }

    /// The client id and secret of a Basic `Authorization` header (decoding RFC 6749's form
    /// encoding when `oauth_client`).
    pub fn basic_credentials(&self, oauth_client: bool) -> Option<(String, String)> {
        use base64::Engine as _;
        let v = self.header("authorization")?;
        let b64 = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))?;
        let text = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?;
        let (u, p) = text.split_once(':')?;
        let dec = |s: &str| {
            if oauth_client {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            } else {
                s.to_string()
            }
        };
        Some((dec(u), dec(p)))
    }

    /// The body as text (what goes on the wire).
    pub fn body_text(&self) -> Option<String> {
        match &self.body {
            Body::None => None,
            Body::Json(v) => Some(serde_json::to_string(v).unwrap_or_default()),
            Body::Form(f) => Some(form_encode(f)),
            Body::Text(t) => Some(t.clone()),
            Body::Multipart { parts, .. } => Some(
                parts
                    .iter()
                    .map(|(k, p)| match p {
                        PartValue::Text(v) => format!("{k}={v}"),
                        PartValue::File { path, .. } => format!("{k}=@{}", path.display()),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }

    /// The request as a curl command line (single-quoted for POSIX shells).
    pub fn to_curl(&self) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut parts = vec!["curl".to_string()];
        if self.method != "GET" {
            parts.push(format!("-X {}", self.method));
        }
        parts.push(q(&self.url));
        let multipart = matches!(self.body, Body::Multipart { .. });
        for (k, v) in &self.effective_headers() {
            // curl writes its own multipart Content-Type, with its own boundary.
            if multipart && k.eq_ignore_ascii_case("content-type") && v.starts_with("multipart/") {
                continue;
            }
            parts.push(format!("-H {}", q(&format!("{k}: {v}"))));
        }
        if let Body::Multipart { parts: ps, .. } = &self.body {
            for (k, p) in ps {
                match p {
                    PartValue::Text(v) => {
                        parts.push(format!("--form-string {}", q(&format!("{k}={v}"))))
                    }
                    PartValue::File {
                        path,
                        content_type,
                        filename,
                    } => parts.push(format!(
                        "-F {}",
                        q(&format!(
                            "{k}=@{};type={content_type};filename={filename}",
                            path.display()
                        ))
                    )),
                }
            }
        } else if let Some(b) = self.body_text() {
            parts.push(format!("--data-raw {}", q(&b)));
        }
        if self.follow_redirects {
            parts.push("-L".into());
        }
        parts.join(" ")
    }
}

/// An `Authorization: Basic` value. For an OAuth2 client (RFC 6749 §2.3.1) the id and secret are
/// `application/x-www-form-urlencoded` before they are joined and base64-encoded, so a secret
/// with `:`, `%`, `+` or non-ASCII characters survives. A space is written `%20`, not `+`: both
/// decode to a space as a form, and servers that merely percent-decode (Authlib) read it too.
pub fn basic_header(user: &str, password: &str, oauth_client: bool) -> String {
    use base64::Engine as _;
    let enc = |s: &str| {
        if oauth_client {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        } else {
            s.to_string()
        }
    };
    let raw = format!("{}:{}", enc(user), enc(password));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Appends query pairs to a URL, URL-encoding them.
pub fn append_query(url: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", form_encode(pairs))
}

fn form_encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A completed request/response pair.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was sent.
    pub request: Rendered,
    /// Response status.
    pub status: u16,
    /// Response headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body as text (decoded by its charset; lossy for binary bodies).
    pub body: String,
    /// The body's bytes, after undoing any `Content-Encoding` (what `--save` writes).
    pub raw: bytes::Bytes,
    /// The body is not text (an image, a PDF, an archive…): shown as a summary, never raw.
    pub binary: bool,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Time from send to the end of the body.
    pub elapsed: Duration,
}

impl Exchange {
    /// The value of a response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The exchange as state keeps it, and as the template context sees it under the
    /// request's name: `{status, headers, body, elapsed_ms, method, url, seq}`, with
    /// `body_omitted` in place of a body too big to keep. Written straight to JSON: the body
    /// is not copied into a value first.
    pub fn stored(
        &self,
        seq: u64,
        omitted: Option<serde_json::Value>,
    ) -> Option<Box<serde_json::value::RawValue>> {
        serde_json::value::to_raw_value(&Stored {
            ex: self,
            seq,
            omitted,
        })
        .ok()
    }
}

/// [`Exchange::stored`]'s shape.
struct Stored<'a> {
    ex: &'a Exchange,
    seq: u64,
    omitted: Option<Value>,
}

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let ex = self.ex;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("status", &ex.status)?;
        m.serialize_entry("headers", &Headers(&ex.headers))?;
        match (&self.omitted, &ex.json) {
            (Some(_), _) => m.serialize_entry("body", &())?,
            (None, Some(j)) => m.serialize_entry("body", j)?,
            (None, None) => m.serialize_entry("body", &ex.body)?,
        }
        m.serialize_entry("elapsed_ms", &(ex.elapsed.as_secs_f64() * 1000.0))?;
        m.serialize_entry("method", &ex.request.method)?;
        m.serialize_entry("url", &ex.request.url)?;
        m.serialize_entry("seq", &self.seq)?;
        if let Some(note) = &self.omitted {
            m.serialize_entry("body_omitted", note)?;
        }
        m.end()
    }
}

/// Response headers as one object: a name that comes more than once has its values joined
/// with `, ` at its first place.
struct Headers<'a>(&'a [(String, String)]);

impl serde::Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if self.0[..i].iter().any(|(seen, _)| seen == k) {
                continue;
            }
            let mut rest = self.0[i + 1..].iter().filter(|(n, _)| n == k).peekable();
            if rest.peek().is_none() {
                m.serialize_entry(k, v)?;
            } else {
                let mut joined = v.clone();
                for (_, more) in rest {
                    joined.push_str(", ");
                    joined.push_str(more);
                }
                m.serialize_entry(k, &joined)?;
            }
        }
        m.end()
    }
}

/// Why a request could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL does not parse.
    #[error("invalid URL `{0}`: {1}")]
    Url(String, String),
    /// Network, TLS or timeout failure.
    #[error("{0}")]
    Http(String),
}

/// TLS settings: extra trusted roots, a client certificate, or no verification at all.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of certificates to trust besides the system's (a private CA).
    #[serde(default)]
    pub cacert: Option<std::path::PathBuf>,
    /// A PEM client certificate (chain) for mutual TLS.
    #[serde(default)]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's PEM private key.
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
    /// Skip certificate verification (warned about on every run).
    #[serde(default)]
    pub insecure: bool,
    /// Keep cookies responses set and send them back (Newman's cookie jar, for
    /// `compat: newman`); not a YAML setting.
    #[serde(skip)]
    pub cookie_jar: bool,
}

impl TlsOptions {
    /// These options over `base` (a command line over the collection's `tls:`).
    pub fn over(&self, base: &TlsOptions) -> TlsOptions {
        TlsOptions {
            cacert: self.cacert.clone().or_else(|| base.cacert.clone()),
            cert: self.cert.clone().or_else(|| base.cert.clone()),
            key: self.key.clone().or_else(|| base.key.clone()),
            insecure: self.insecure || base.insecure,
            cookie_jar: self.cookie_jar || base.cookie_jar,
        }
    }

    /// Relative paths resolved against `dir` (a collection's directory).
    pub fn relative_to(&self, dir: &std::path::Path) -> TlsOptions {
        let at = |p: &Option<std::path::PathBuf>| {
            p.as_ref().map(|p| {
                if p.is_relative() {
                    dir.join(p)
                } else {
                    p.clone()
                }
            })
        };
        TlsOptions {
            cacert: at(&self.cacert),
            cert: at(&self.cert),
            key: at(&self.key),
            insecure: self.insecure,
            cookie_jar: self.cookie_jar,
        }
    }
}

/// Sends rendered requests over one connection pool per scheme. Redirects are followed here,
/// not by the client, so what crosses to another host is decided in one place: credentials
/// never do.
#[derive(Clone)]
pub struct Sender {
    /// `http://` requests: a client that never set TLS up. Loading the platform's roots reads
    /// every file in the certificate directory (about 150 on Debian, 6 ms of a process), which a
    /// run against a local server or the mock never needs.
    plain: reqwest::Client,
    /// `https://` requests (and everything when the proxy itself is `https://`): made on first
    /// use from what `with_tls` read and checked up front.
    tls: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    setup: std::sync::Arc<TlsSetup>,
    /// The cookie jar, when the run keeps one (`compat: newman`), shared by both clients.
    jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
}

/// The TLS options, read and checked (files parsed) when the sender is made.
struct TlsSetup {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
    insecure: bool,
    /// A proxy for plain HTTP is itself reached over TLS: every request needs the TLS client.
    proxy_over_tls: bool,
}

/// How many redirects `follow_redirects` follows.
const MAX_REDIRECTS: usize = 10;

/// Headers that carry credentials, dropped when a redirect leads to another host.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

impl Sender {
    /// Builds the client (rustls with the ring provider and the platform's roots). Proxies come
    /// from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`.
    pub fn new() -> Result<Sender, SendError> {
        Sender::with_tls(&TlsOptions::default())
    }

    /// [`Sender::new`] with extra roots, a client certificate, or no verification. The files
    /// are read and checked here; the TLS client itself is made when the first `https://`
    /// request goes.
    pub fn with_tls(tls: &TlsOptions) -> Result<Sender, SendError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |p: &std::path::Path, what: &str| {
            std::fs::read(p).map_err(|e| {
                SendError::Http(format!("cannot read the {what} {}: {e}", p.display()))
            })
        };
        let mut roots = Vec::new();
        if let Some(ca) = &tls.cacert {
            roots = reqwest::Certificate::from_pem_bundle(&read(ca, "CA certificate file")?)
                .map_err(|e| {
                    SendError::Http(format!("{}: not PEM certificates: {e}", ca.display()))
                })?;
            if roots.is_empty() {
                return Err(SendError::Http(format!(
                    "{}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
                    ca.display()
                )));
            }
        }
        let identity = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "client certificate")?;
                pem.push(b'\n');
                pem.extend(read(key, "client key")?);
                Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                    SendError::Http(format!(
                        "the client certificate {} and key {} do not make an identity: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(SendError::Http(
                    "a client certificate needs both --cert FILE and --key FILE".into(),
                ));
            }
            (None, None) => None,
        };
        let jar = tls
            .cookie_jar
            .then(|| std::sync::Arc::new(reqwest::cookie::Jar::default()));
        let setup = TlsSetup {
            roots,
            identity,
            insecure: tls.insecure,
            proxy_over_tls: ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
                .iter()
                .filter_map(std::env::var_os)
                .any(|v| {
                    v.to_str()
                        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("https://"))
                }),
        };
        // No roots and only those: nothing is loaded, and nothing would verify.
        let plain = Sender::builder(&jar)
            .tls_certs_only([])
            .build()
            .map_err(|e| SendError::Http(format!("cannot build the HTTP client: {e}")))?;
        let wants_tls = !setup.roots.is_empty() || setup.identity.is_some() || setup.insecure;
        let sender = Sender {
            plain,
            tls: Default::default(),
            setup: std::sync::Arc::new(setup),
            jar,
        };
        // Whoever set TLS options means to use TLS: a client they do not make is said now.
        if wants_tls {
            sender.make_tls()?;
        }
        Ok(sender)
    }

    /// What both clients share: no redirects of their own, postie's user agent, the jar.
    fn builder(jar: &Option<std::sync::Arc<reqwest::cookie::Jar>>) -> reqwest::ClientBuilder {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("postie/", env!("CARGO_PKG_VERSION")));
        if let Some(j) = jar {
            b = b.cookie_provider(j.clone());
        }
        b
    }

    /// The client for a URL: the plain one for `http://`, else the TLS one (made now if this is
    /// the first).
    fn client_for(&self, url: &reqwest::Url) -> Result<&reqwest::Client, SendError> {
        if url.scheme() == "http" && !self.setup.proxy_over_tls {
            return Ok(&self.plain);
        }
        self.make_tls()
    }

    /// The TLS client, made on the first call.
    fn make_tls(&self) -> Result<&reqwest::Client, SendError> {
        self.tls
            .get_or_init(|| {
                let s = &self.setup;
                let mut b = Sender::builder(&self.jar);
                if !s.roots.is_empty() {
                    b = b.tls_certs_merge(s.roots.iter().cloned());
                }
                if let Some(id) = &s.identity {
                    b = b.identity(id.clone());
                }
                if s.insecure {
                    b = b.tls_danger_accept_invalid_certs(true);
                }
                b.build()
                    .map_err(|e| format!("cannot build the HTTPS client: {e}"))
            })
            .as_ref()
            .map_err(|e| SendError::Http(e.clone()))
    }

    /// Whether the TLS client has been made (only an `https://` request makes it).
    pub fn tls_ready(&self) -> bool {
        self.tls.get().is_some()
    }

    /// The cookies the jar holds for a URL (empty without a jar).
    pub fn cookies_for(&self, url: &str) -> Vec<(String, String)> {
        use reqwest::cookie::CookieStore as _;
        let (Some(jar), Ok(u)) = (&self.jar, reqwest::Url::parse(url)) else {
            return vec![];
        };
        jar.cookies(&u)
            .and_then(|h| h.to_str().ok().map(String::from))
            .map(|line| {
                line.split(';')
                    .filter_map(|c| {
                        let (k, v) = c.trim().split_once('=')?;
                        Some((k.to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends one request and reads the whole response, following redirects when the request
    /// asks to: 303 (and 301/302 after a POST) become a GET without body, as browsers do, and
    /// `Authorization`/`Cookie` are not forwarded to another host.
    pub async fn send(&self, r: &Rendered) -> Result<Exchange, SendError> {
        self.send_guarded(r, &|_| false).await
    }

    /// [`Sender::send`], where `secret` tells whether a text carries a secret: when a redirect
    /// leads to another host, headers carrying one are dropped with the credential headers, and
    /// a secret left in the URL or the body it would resend stops the request there.
    pub async fn send_guarded(
        &self,
        r: &Rendered,
        secret: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Exchange, SendError> {
        let mut url = reqwest::Url::parse(&r.url)
            .map_err(|e| SendError::Url(r.url.clone(), e.to_string()))?;
        let mut method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|e| SendError::Http(e.to_string()))?;
        let mut headers = r.effective_headers();
        let mut body = match &r.body {
            Body::None => None,
            Body::Json(v) => Some(serde_json::to_vec(v).unwrap_or_default()),
            Body::Form(f) => Some(form_encode(f).into_bytes()),
            Body::Text(t) => Some(t.clone().into_bytes()),
            Body::Multipart { parts, boundary } => {
                Some(multipart_bytes(parts, boundary).map_err(|e| SendError::Http(e.to_string()))?)
            }
        };
        let start = Instant::now();
        let mut hops = 0;
        loop {
            let mut b = self
                .client_for(&url)?
                .request(method.clone(), url.clone())
                .timeout(r.timeout);
            for (k, v) in &headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(bytes) = &body {
                b = b.body(bytes.clone());
            }
            let resp = b
                .send()
                .await
                .map_err(|e| SendError::Http(describe_reqwest(&e)))?;
            let status = resp.status().as_u16();
            let next = if r.follow_redirects && matches!(status, 301 | 302 | 303 | 307 | 308) {
                resp.headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
            } else {
                None
            };
            if let Some(to) = next {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(SendError::Http(format!(
                        "more than {MAX_REDIRECTS} redirects (last to {to})"
                    )));
                }
                if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = None;
                    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                }
                if to.host_str() != url.host_str()
                    || to.port_or_known_default() != url.port_or_known_default()
                {
                    headers.retain(|(k, v)| {
                        !CREDENTIAL_HEADERS.contains(&k.to_ascii_lowercase().as_str()) && !secret(v)
                    });
                    let host = to.host_str().unwrap_or("?");
                    let carried = if secret(to.as_str()) {
                        Some("its URL")
                    } else if body
                        .as_deref()
                        .is_some_and(|b| secret(&String::from_utf8_lossy(b)))
                    {
                        Some("the body it would resend")
                    } else {
                        None
                    };
                    if let Some(what) = carried {
                        return Err(SendError::Http(format!(
                            "not following the {status} redirect to {host}: {what} carries a secret, and secrets do not go to another host on a redirect"
                        )));
                    }
                }
                url = to;
                continue;
            }
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| SendError::Http(describe_reqwest(&e)))?;
            let elapsed = start.elapsed();
            return Ok(Exchange::new(r.clone(), status, headers, bytes, elapsed));
        }
    }
}

impl Exchange {
    /// An exchange from what came back: undoes `Content-Encoding`, decodes text by its charset,
    /// tells binary bodies apart and parses JSON.
    pub fn new(
        request: Rendered,
        status: u16,
        headers: Vec<(String, String)>,
        bytes: bytes::Bytes,
        elapsed: Duration,
    ) -> Exchange {
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        // The body the client read may be a slice of a larger read buffer; a copy of its own
        // size keeps an exchange from holding that buffer alive.
        let raw = match header("content-encoding") {
            Some(enc) => decode_content(enc, &bytes).unwrap_or(bytes),
            None => bytes::Bytes::copy_from_slice(&bytes),
        };
        let content_type = header("content-type").unwrap_or("").to_ascii_lowercase();
        let binary = is_binary(&content_type, &raw);
        let body = if binary {
            String::from_utf8_lossy(&raw).into_owned()
        } else {
            decode_text(&content_type, &raw)
        };
        let json = if !binary && body.trim_start().starts_with(['{', '[']) {
            serde_json::from_str(&body).ok()
        } else {
            None
        };
        Exchange {
            request,
            status,
            headers,
            body,
            raw,
            binary,
            json,
            elapsed,
        }
    }
}

impl Exchange {
    /// Rebuilds an exchange from its saved form (`to_value`), for `last` in a later session.
    pub fn from_stored(name: &str, v: &Value) -> Option<Exchange> {
        let status = u16::try_from(v.get("status")?.as_u64()?).ok()?;
        let headers: Vec<(String, String)> = v
            .get("headers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, x)| (k.clone(), crate::capture::value_text(x)))
                    .collect()
            })
            .unwrap_or_default();
        let body = match v.get("body") {
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => serde_json::to_vec(other).unwrap_or_default(),
        };
        let request = Rendered {
            name: name.to_string(),
            method: v
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_string(),
            url: v
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            headers: vec![],
            body: Body::None,
            follow_redirects: false,
            timeout: Duration::from_secs(30),
        };
        let elapsed = v
            .get("elapsed_ms")
            .and_then(Value::as_f64)
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
            .unwrap_or_default();
        // The stored headers describe the body as it was sent; it is stored decoded.
        let headers = headers
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-encoding"))
            .collect();
        Some(Exchange::new(
            request,
            status,
            headers,
            bytes::Bytes::from(body),
            elapsed,
        ))
    }
}

/// Undoes a `Content-Encoding` (gzip, deflate); None when it is unknown or the body is damaged
/// (it is then kept as it came).
fn decode_content(encoding: &str, bytes: &[u8]) -> Option<bytes::Bytes> {
    use std::io::Read as _;
    let mut out = Vec::new();
    for enc in encoding.split(',').map(str::trim).rev() {
        let input: Vec<u8> = if out.is_empty() {
            bytes.to_vec()
        } else {
            std::mem::take(&mut out)
        };
        match enc.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => {
                flate2::read::MultiGzDecoder::new(&input[..])
                    .read_to_end(&mut out)
                    .ok()?;
            }
            "deflate" => {
                if flate2::read::ZlibDecoder::new(&input[..])
                    .read_to_end(&mut out)
                    .is_err()
                {
                    out.clear();
                    flate2::read::DeflateDecoder::new(&input[..])
                        .read_to_end(&mut out)
                        .ok()?;
                }
            }
            "identity" | "" => out = input,
            _ => return None,
        }
    }
    Some(bytes::Bytes::from(out))
}

/// Whether a body is not text: by its media type, else by a NUL byte near the start.
fn is_binary(content_type: &str, raw: &[u8]) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let textual = media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("+json")
        || media.ends_with("xml")
        || media.ends_with("+xml")
        || media.ends_with("javascript")
        || media == "application/x-www-form-urlencoded"
        || media == "application/problem+json";
    if textual {
        return false;
    }
    let known_binary = ["image/", "audio/", "video/", "font/"]
        .iter()
        .any(|p| media.starts_with(p))
        || matches!(
            media,
            "application/octet-stream"
                | "application/pdf"
                | "application/zip"
                | "application/gzip"
                | "application/x-tar"
                | "application/wasm"
                | "application/msword"
                | "application/vnd.ms-excel"
        );
    known_binary || raw.iter().take(8192).any(|b| *b == 0)
}

/// Decodes text by the `charset` of its content type (UTF-8 by default, lossy).
fn decode_text(content_type: &str, raw: &[u8]) -> String {
    let charset = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .next()
        .map(|c| c.trim_matches('"'));
    match charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())) {
        Some(enc) if enc != encoding_rs::UTF_8 => enc.decode(raw).0.into_owned(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    let lower = msg.to_ascii_lowercase();
    if lower.contains("certificate") && !lower.contains("certificate required") {
        msg.push_str(" — for a private CA pass --cacert FILE (or `tls: {cacert: FILE}` in the collection); --insecure skips verification");
    } else if lower.contains("certificate required") || lower.contains("handshake failure") {
        msg.push_str(" — the server may want a client certificate: --cert FILE --key FILE");
    }
    msg
}
