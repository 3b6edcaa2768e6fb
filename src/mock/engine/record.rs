//! `postie record`: a reverse proxy that forwards to a target and writes what it sees as a stub
//! file (`postie mock --stubs` replays it), with every credential taken out on the way to disk.
//!
//! - Requests are matched by method and path *shape*: segments that look like ids (numbers,
//!   UUIDs, long hex or mixed tokens) become `{id}` parameters, and repeated calls to one shape
//!   become a sequence, so a replayed session gets the recorded answers in the recorded order
//!   whatever ids it carries.
//! - Token responses (`access_token`, `refresh_token`, `id_token`) become templates that issue
//!   fresh tokens on every call; the bearer a replayed request carries need not match anything.
//! - Every secret that crossed the wire (Authorization and cookies, secret-named form, query and
//!   JSON fields, the tokens) is collected, and no text reaches the file before each of them is
//!   replaced by `REDACTED`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::redact::is_secret_name;

/// What replaces a credential in a recorded file.
pub const REDACTED: &str = "REDACTED";

/// `postie record` options.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The API to forward to, e.g. `https://api.example.com` (a path is kept as a prefix).
    #[arg(long)]
    pub target: String,
    /// The stub file to write (rewritten after every exchange, so it is whole at any moment).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the first line on stdout says which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// One exchange as it crossed the proxy.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query pairs.
    pub query: Vec<(String, String)>,
    /// Request headers (lower-case names).
    pub req_headers: Vec<(String, String)>,
    /// Request body.
    pub req_body: Bytes,
    /// Status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Bytes,
}

impl Exchange {
    /// A collection run's exchange, as a proxy would have seen it.
    pub fn of(ex: &crate::exchange::Exchange) -> Exchange {
        use crate::exchange::Body;
        let url = url::Url::parse(&ex.request.url).ok();
        let body = match &ex.request.body {
            Body::None => Bytes::new(),
            Body::Json(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            Body::Form(f) => Bytes::from(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(f)
                    .finish(),
            ),
            Body::Text(t) => Bytes::from(t.clone()),
            // Files are not read again to record them: the parts' text fields only.
            Body::Multipart { parts, .. } => Bytes::from(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(parts.iter().filter_map(|(k, v)| match v {
                        crate::exchange::PartValue::Text(t) => Some((k, t)),
                        _ => None,
                    }))
                    .finish(),
            ),
        };
        Exchange {
            method: ex.request.method.clone(),
            path: url
                .as_ref()
                .map(|u| u.path().to_string())
                .unwrap_or_default(),
            query: url
                .as_ref()
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default(),
            req_headers: ex
                .request
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            req_body: body,
            status: ex.status,
            headers: ex.headers.clone(),
            body: if ex.raw.is_empty() {
                Bytes::from(ex.body.clone())
            } else {
                ex.raw.clone()
            },
        }
    }
}

/// Headers that describe one hop, not the message.
const HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
];

/// Response headers not worth replaying (they would be wrong or stale).
const DROPPED: [&str; 4] = ["date", "content-encoding", "etag", "last-modified"];

/// Names whose values are tokens a replay issues anew.
const TOKENS: [&str; 3] = ["access_token", "refresh_token", "id_token"];

/// Runs the proxy until Ctrl-C or SIGTERM; returns the exit code.
pub fn run(args: RecordArgs) -> i32 {
    let target = match url::Url::parse(&args.target) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            eprintln!(
                "error: --target `{}`: give an http(s) URL, e.g. https://api.example.com",
                args.target
            );
            return crate::exit::COLLECTION;
        }
    };
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        eprintln!(
            "error: -o {}: the folder {} does not exist",
            args.output.display(),
            dir.display()
        );
        return crate::exit::COLLECTION;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::HTTP;
        }
    };
    rt.block_on(serve(args, target))
}

struct Recorder {
    output: PathBuf,
    target: url::Url,
    client: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
    /// Exchanges arrived since the file was last written.
    dirty: std::sync::atomic::AtomicBool,
}

/// How often the file is rewritten while exchanges arrive (and once more at the end): a session
/// of N exchanges costs O(N) per write, not per exchange.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Recorder {
    fn save(&self) -> std::io::Result<usize> {
        // Exchanges share their bodies (`Bytes`): the copy is cheap, and requests go on meanwhile.
        let list = self
            .exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let text = stub_file(&list, self.target.as_str());
        crate::util::write_private_atomic(&self.output, text.as_bytes())?;
        Ok(list.len())
    }
}

async fn serve(args: RecordArgs, target: url::Url) -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.host, args.port);
            return crate::exit::HTTP;
        }
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::HTTP;
        }
    };
    let rec = Arc::new(Recorder {
        output: args.output.clone(),
        target,
        client,
        exchanges: Mutex::new(Vec::new()),
        dirty: std::sync::atomic::AtomicBool::new(false),
    });
    if let Err(e) = rec.save() {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return crate::exit::COLLECTION;
    }
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::HTTP;
        }
    };
    {
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = writeln!(
            out,
            "recording {} into {}",
            rec.target,
            args.output.display()
        );
        let _ = out.flush();
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut tick = tokio::time::interval(SAVE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if rec.dirty.swap(false, std::sync::atomic::Ordering::AcqRel) {
                    let r = rec.clone();
                    let saved = tokio::task::spawn_blocking(move || r.save()).await;
                    if let Ok(Err(e)) = saved {
                        eprintln!("error: cannot write {}: {e}", rec.output.display());
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let rec = rec.clone();
                        async move { Ok::<_, std::convert::Infallible>(forward(&rec, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
    match rec.save() {
        Ok(n) => {
            eprintln!("wrote {n} exchanges to {}", args.output.display());
            0
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", args.output.display());
            crate::exit::COLLECTION
        }
    }
}

fn plain(status: u16, text: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}

async fn forward(
    rec: &Recorder,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 32 * 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(413, "postie record: request body over 32 MiB".into()),
    };
    let path = parts.uri.path().to_string();
    let mut url = rec.target.clone();
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(parts.uri.query());
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let req_headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()) && k.as_str() != "accept-encoding")
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let mut out = rec.client.request(parts.method.clone(), url.clone());
    for (k, v) in &req_headers {
        out = out.header(k.as_str(), v.as_str());
    }
    let resp = match out.body(body.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            return plain(
                502,
                format!("postie record: the target did not answer: {e} ({url})"),
            );
        }
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let rbody = resp.bytes().await.unwrap_or_default();
    let mut builder = hyper::Response::builder().status(status);
    for (k, v) in &headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let answer = builder.body(Full::new(rbody.clone())).unwrap_or_else(|_| {
        plain(
            502,
            "postie record: the target's answer was not HTTP".into(),
        )
    });
    rec.exchanges
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Exchange {
            method: parts.method.to_string(),
            path,
            query,
            req_headers,
            req_body: body,
            status,
            headers,
            body: rbody,
        });
    rec.dirty.store(true, std::sync::atomic::Ordering::Release);
    answer
}

/// Whether a path segment is an id (a number, a UUID, long hex, or a long token of letters and
/// digits), which a replay matches by shape.
fn volatile(seg: &str) -> bool {
    let digits = seg.chars().filter(char::is_ascii_digit).count();
    (!seg.is_empty() && digits == seg.len())
        || uuid::Uuid::parse_str(seg).is_ok()
        || (seg.len() >= 16 && seg.chars().all(|c| c.is_ascii_hexdigit()))
        || (seg.len() >= 20
            && digits > 0
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// A recorded path as a stub path: ids become `{id}`, `{id2}`, ...
pub fn path_shape(path: &str) -> String {
    let mut n = 0;
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if volatile(s) {
                n += 1;
                if n == 1 {
                    "{id}".to_string()
                } else {
                    format!("{{id{n}}}")
                }
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("/{}", segs.join("/"))
}

/// Every credential value an exchange carried, to be kept off disk.
fn secrets_of(x: &Exchange, out: &mut Vec<String>) {
    let mut push = |v: &str| {
        let v = v.trim();
        if v.len() >= 4 {
            out.push(v.to_string());
        }
    };
    let secret_field = |name: &str| is_secret_name(name) || name == "code";
    for (k, v) in x.req_headers.iter().chain(&x.headers) {
        let lower = k.to_ascii_lowercase();
        match lower.as_str() {
            "authorization" | "proxy-authorization" => {
                let cred = v.split_once(' ').map(|(_, c)| c).unwrap_or(v);
                push(cred);
                if v.len() > 6
                    && v[..6].eq_ignore_ascii_case("basic ")
                    && let Ok(bytes) = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        cred.trim(),
                    )
                {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if let Some((user, pass)) = text.split_once(':') {
                        push(&percent(user));
                        push(&percent(pass));
                        push(user);
                        push(pass);
                    }
                }
            }
            "cookie" | "set-cookie" => {
                for part in v.split(';') {
                    if let Some((_, value)) = part.split_once('=') {
                        push(value);
                    }
                }
            }
            _ if is_secret_name(&lower.replace('-', "_")) => push(v),
            _ => {}
        }
    }
    for (k, v) in &x.query {
        if secret_field(k) {
            push(v);
        }
    }
    for (k, v) in url::form_urlencoded::parse(&x.req_body) {
        if secret_field(&k) {
            push(&v);
        }
    }
    for body in [&x.req_body, &x.body] {
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            json_secrets(&v, &mut |s| push(s));
        }
    }
}

fn percent(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn json_secrets(v: &Value, push: &mut dyn FnMut(&str)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if is_secret_name(k) => push(s),
                    other => json_secrets(other, push),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| json_secrets(x, push)),
        _ => {}
    }
}

/// A recorded string as stub text: `<<` would start a template.
fn literal(s: &str) -> String {
    s.replace("<<", "<<'<<'>>")
}

/// Whether a field name holds an id (`id`, `post_id`, `postId`, `ID`).
fn id_like(key: &str) -> bool {
    key.eq_ignore_ascii_case("id")
        || key.ends_with("_id")
        || key.ends_with("Id")
        || key.ends_with("ID")
}

/// The ids in a recorded path and the parameters their shape gives them (`42` → `id`).
fn path_ids(path: &str) -> Vec<(String, String)> {
    let mut n = 0;
    path.split('/')
        .filter(|s| !s.is_empty() && volatile(s))
        .map(|s| {
            n += 1;
            let name = if n == 1 {
                "id".to_string()
            } else {
                format!("id{n}")
            };
            (s.to_string(), name)
        })
        .collect()
}

/// A recorded JSON body as stub JSON: tokens become fresh ones on every replay, other secrets
/// are replaced, the path's ids are the replayed request's, and text is kept literal.
fn replay_json(v: &Value, ids: &[(String, String)]) -> Value {
    let id_of = |text: &str| ids.iter().find(|(v, _)| v == text).map(|(_, n)| n.clone());
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let lower = k.to_ascii_lowercase();
                    let x = match x {
                        Value::String(_) if TOKENS.contains(&lower.as_str()) => {
                            json!("<<nonce(40)>>")
                        }
                        Value::String(_) if is_secret_name(&lower) => json!(REDACTED),
                        // An id field holding the path's id answers with the replayed one.
                        Value::String(t) if id_like(k) && id_of(t).is_some() => {
                            json!(format!("<<path.{}>>", id_of(t).unwrap_or_default()))
                        }
                        Value::Number(n) if id_like(k) && id_of(&n.to_string()).is_some() => {
                            json!(format!(
                                "<<path.{} | int>>",
                                id_of(&n.to_string()).unwrap_or_default()
                            ))
                        }
                        other => replay_json(other, ids),
                    };
                    (k.clone(), x)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| replay_json(x, ids)).collect()),
        Value::String(s) => Value::String(literal(s)),
        other => other.clone(),
    }
}

/// The stub file for a session: one stub per method and path shape, in first-seen order, its
/// answers a sequence in recorded order.
pub fn stub_file(exchanges: &[Exchange], target: &str) -> String {
    stub_file_with(exchanges, target, &[])
}

/// [`stub_file`], keeping these values (the run's secrets) off disk too.
pub fn stub_file_with(exchanges: &[Exchange], target: &str, secrets: &[String]) -> String {
    let mut groups: IndexMap<(String, String), Vec<&Exchange>> = IndexMap::new();
    for x in exchanges {
        groups
            .entry((x.method.clone(), path_shape(&x.path)))
            .or_default()
            .push(x);
    }
    let mut stubs = Vec::new();
    for ((method, path), xs) in &groups {
        let answers: Vec<Value> = xs.iter().map(|x| answer(x)).collect();
        let mut stub = Map::new();
        stub.insert("name".into(), json!(format!("{method} {path}")));
        stub.insert("request".into(), json!({"method": method, "path": path}));
        if answers.len() == 1 {
            stub.insert("response".into(), answers[0].clone());
        } else {
            stub.insert("responses".into(), Value::Array(answers));
        }
        stubs.push(Value::Object(stub));
    }
    let body = serde_yaml::to_string(&json!({ "stubs": stubs })).unwrap_or_default();
    let text = format!(
        "# Recorded by postie {} from {target}: {} exchanges. Credentials are replaced by {REDACTED};\n# token responses issue fresh tokens. Replay: postie mock --stubs FILE\n{body}",
        env!("CARGO_PKG_VERSION"),
        exchanges.len()
    );
    redact_all(text, exchanges, secrets)
}

fn answer(x: &Exchange) -> Value {
    let mut a = Map::new();
    a.insert("status".into(), json!(x.status));
    let mut headers = Map::new();
    for (k, v) in &x.headers {
        let lower = k.to_ascii_lowercase();
        if DROPPED.contains(&lower.as_str()) || HOP.contains(&lower.as_str()) {
            continue;
        }
        let v = if lower == "set-cookie" {
            match v.split_once('=') {
                Some((name, rest)) => {
                    let attrs = rest.split_once(';').map(|(_, a)| a).unwrap_or("");
                    format!("{name}={REDACTED};{attrs}")
                }
                None => REDACTED.to_string(),
            }
        } else if is_secret_name(&lower.replace('-', "_")) {
            REDACTED.to_string()
        } else {
            literal(v)
        };
        headers.insert(k.clone(), json!(v));
    }
    if !headers.is_empty() {
        a.insert("headers".into(), Value::Object(headers));
    }
    if !x.body.is_empty() {
        match serde_json::from_slice::<Value>(&x.body) {
            Ok(v) => {
                a.insert("json".into(), replay_json(&v, &path_ids(&x.path)));
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&x.body);
                a.insert("text".into(), json!(literal(&text)));
            }
        }
    }
    Value::Object(a)
}

/// Replaces every secret value the session carried, wherever it landed in the text.
fn redact_all(text: String, exchanges: &[Exchange], known: &[String]) -> String {
    let mut secrets: Vec<String> = known.iter().filter(|s| s.len() >= 4).cloned().collect();
    for x in exchanges {
        secrets_of(x, &mut secrets);
    }
    // YAML may have escaped a value; look for that spelling too.
    let escaped: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            let y = serde_yaml::to_string(s).ok()?;
            let y = y.trim().trim_matches(['"', '\'']).to_string();
            (y != *s && y.len() >= 4).then_some(y)
        })
        .collect();
    secrets.extend(escaped);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    if secrets.is_empty() {
        return text;
    }
    let Ok(ac) = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&secrets)
    else {
        return text;
    };
    ac.replace_all(&text, &vec![REDACTED; secrets.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(method: &str, path: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            query: vec![],
            req_headers: vec![],
            req_body: Bytes::new(),
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn ids_become_shapes_and_repeats_a_sequence() {
        assert_eq!(
            path_shape("/posts/101/comments/7"),
            "/posts/{id}/comments/{id2}"
        );
        assert_eq!(
            path_shape("/v3/contacts/3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21"),
            "/v3/contacts/{id}"
        );
        assert_eq!(
            path_shape("/v3/contacts/sign_up_form"),
            "/v3/contacts/sign_up_form"
        );
        let text = stub_file(
            &[
                x("GET", "/posts/1", 200, r#"{"id": 1}"#),
                x("GET", "/posts/2", 404, r#"{"error": "<<no>>"}"#),
            ],
            "http://t",
        );
        assert!(text.contains("path: /posts/{id}"), "{text}");
        // The replayed answer carries the id the replayed request asked for.
        assert!(text.contains("id: <<path.id | int>>"), "{text}");
        assert!(text.contains("responses:"), "{text}");
        assert!(text.contains("<<'<<'>>no>>"), "{text}");
    }

    #[test]
    fn credentials_never_reach_the_text() {
        let mut e = x(
            "POST",
            "/oauth/token",
            200,
            r#"{"access_token": "at-1234567890", "refresh_token": "rt-0987654321", "token_type": "Bearer", "user": {"password": "hunter22"}}"#,
        );
        e.req_headers = vec![(
            "authorization".into(),
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "my-client:s3cr3t-value"
                )
            ),
        )];
        e.req_body = Bytes::from("grant_type=password&username=ann&password=pa55word!");
        let mut g = x(
            "GET",
            "/me",
            200,
            r#"{"echo": "at-1234567890 and s3cr3t-value"}"#,
        );
        g.req_headers = vec![("authorization".into(), "Bearer at-1234567890".into())];
        g.headers.push((
            "set-cookie".into(),
            "sid=cookie-value-99; Path=/; HttpOnly".into(),
        ));
        let text = stub_file(&[e, g], "http://t");
        for secret in [
            "at-1234567890",
            "rt-0987654321",
            "hunter22",
            "s3cr3t-value",
            "pa55word!",
            "cookie-value-99",
        ] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
        assert!(text.contains("access_token: <<nonce(40)>>"), "{text}");
        assert!(text.contains("sid=REDACTED; Path=/; HttpOnly"), "{text}");
    }
}
