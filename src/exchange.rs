//! Exchanges: a rendered request goes out, a response comes back, both kept as one value.
//!
//! ```text
//! collection::Request --render(scope)--> Rendered --send--> Exchange --chain::bind--> variables
//! ```

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

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
    /// Renders a collection request against a context.
    pub fn render(
        t: &Templates,
        name: &str,
        req: &Request,
        ctx: &Value,
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
                use base64::Engine as _;
                let u = t
                    .render_in(user, ctx)
                    .map_err(at("auth.basic.user".into()))?;
                let p = t
                    .render_in(password, ctx)
                    .map_err(at("auth.basic.password".into()))?;
                let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                headers.push(("Authorization".into(), format!("Basic {enc}")));
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
            follow_redirects: req.follow_redirects,
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

    /// The body as text (what goes on the wire).
    pub fn body_text(&self) -> Option<String> {
        match &self.body {
            Body::None => None,
            Body::Json(v) => Some(serde_json::to_string(v).unwrap_or_default()),
            Body::Form(f) => Some(form_encode(f)),
            Body::Text(t) => Some(t.clone()),
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
        for (k, v) in &self.headers {
            parts.push(format!("-H {}", q(&format!("{k}: {v}"))));
        }
        match &self.body {
            Body::Json(_) if self.header("content-type").is_none() => {
                parts.push(format!("-H {}", q("Content-Type: application/json")))
            }
            Body::Form(_) if self.header("content-type").is_none() => parts.push(format!(
                "-H {}",
                q("Content-Type: application/x-www-form-urlencoded")
            )),
            _ => {}
        }
        if let Some(b) = self.body_text() {
            parts.push(format!("--data-raw {}", q(&b)));
        }
        if self.follow_redirects {
            parts.push("-L".into());
        }
        parts.join(" ")
    }
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
    /// Response body as text.
    pub body: String,
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

    /// The exchange as the template context sees it under the request's name:
    /// `{status, headers, body, elapsed_ms, method, url}`.
    pub fn to_value(&self) -> Value {
        let mut headers = Map::new();
        for (k, v) in &self.headers {
            match headers.get_mut(k) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(v);
                }
                _ => {
                    headers.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        let body = self
            .json
            .clone()
            .unwrap_or_else(|| Value::String(self.body.clone()));
        serde_json::json!({
            "status": self.status,
            "headers": headers,
            "body": body,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
            "method": self.request.method,
            "url": self.request.url,
        })
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

/// Sends rendered requests; holds connection pools for both redirect policies.
#[derive(Clone)]
pub struct Sender {
    plain: reqwest::Client,
    follow: reqwest::Client,
}

impl Sender {
    /// Builds the clients (rustls with the ring provider and webpki roots).
    pub fn new() -> Result<Sender, SendError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |policy| {
            reqwest::Client::builder()
                .redirect(policy)
                .user_agent(concat!("postie/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| SendError::Http(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Sender {
            plain: build(reqwest::redirect::Policy::none())?,
            follow: build(reqwest::redirect::Policy::limited(10))?,
        })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&self, r: &Rendered) -> Result<Exchange, SendError> {
        let url = reqwest::Url::parse(&r.url)
            .map_err(|e| SendError::Url(r.url.clone(), e.to_string()))?;
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|e| SendError::Http(e.to_string()))?;
        let client = if r.follow_redirects {
            &self.follow
        } else {
            &self.plain
        };
        let mut b = client.request(method, url).timeout(r.timeout);
        for (k, v) in &r.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b = match &r.body {
            Body::None => b,
            Body::Json(v) => {
                let b = if r.header("content-type").is_none() {
                    b.header("content-type", "application/json")
                } else {
                    b
                };
                b.body(serde_json::to_vec(v).unwrap_or_default())
            }
            Body::Form(f) => {
                let b = if r.header("content-type").is_none() {
                    b.header("content-type", "application/x-www-form-urlencoded")
                } else {
                    b
                };
                b.body(form_encode(f))
            }
            Body::Text(t) => b.body(t.clone()),
        };
        let start = Instant::now();
        let resp = b
            .send()
            .await
            .map_err(|e| SendError::Http(describe_reqwest(&e)))?;
        let status = resp.status().as_u16();
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
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let json = if body.trim_start().starts_with(['{', '[']) {
            serde_json::from_str(&body).ok()
        } else {
            None
        };
        Ok(Exchange {
            request: r.clone(),
            status,
            headers,
            body,
            json,
            elapsed,
        })
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
    msg
}
