//! HAR 1.2 files (a browser's "Save all as HAR") → one request per entry. Static assets are
//! skipped unless `--all`; cookies, `Authorization` credentials and secret-looking query values
//! become secret variables whose values go to `.env`; responses are kept as examples, with
//! secret-looking fields redacted.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::names::{Namer, env_key, slug};
use super::template::escape_literal;
use super::{Import, InputError, Obj, Report};

/// Headers a client computes itself, and HTTP/2 pseudo-headers (`:authority`, ...).
const COMPUTED: [&str; 4] = ["host", "content-length", "connection", "transfer-encoding"];
/// File extensions of static assets.
const STATIC_EXT: [&str; 20] = [
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "avif", "css", "js", "mjs", "map",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm",
];
/// Chrome's `_resourceType` values of static assets.
const STATIC_TYPES: [&str; 6] = ["image", "font", "stylesheet", "script", "media", "manifest"];

/// Imports a HAR file; `all` keeps static assets.
pub fn import(path: &Path, all: bool) -> Result<Import, InputError> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::new(path, format!("cannot read it: {e}")))?;
    let text = String::from_utf8_lossy(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes))
        .into_owned();
    let doc: Value = serde_json::from_str(&text).map_err(|e| InputError::json(path, &e))?;
    let Some(entries) = doc.pointer("/log/entries").and_then(Value::as_array) else {
        return Err(InputError::new(
            path,
            "not a HAR file: it has no `log.entries` list (save it from the browser's network panel with \"Save all as HAR\")",
        ));
    };
    let mut h = Har::default();
    let creator = doc
        .pointer("/log/creator/name")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let mut skipped = 0;
    for (i, e) in entries.iter().enumerate() {
        let at = format!("entry {}", i + 1);
        let Some(req) = e.get("request") else {
            h.report.left_out.push(format!("{at}: no request"));
            continue;
        };
        let url = req.get("url").and_then(Value::as_str).unwrap_or("");
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            if !url.is_empty()
                && !url.starts_with("data:")
                && !url.starts_with("blob:")
                && !url.starts_with("chrome-extension:")
            {
                h.report
                    .left_out
                    .push(format!("{at}: `{}` is not an http(s) URL", short(url)));
            }
            skipped += 1;
            continue;
        }
        if !all && is_static(e, url) {
            skipped += 1;
            continue;
        }
        h.entry(e, req, url, &at);
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "har".into());
    h.report.imported.insert(
        0,
        format!(
            "{} of {} entries from {} (saved by {creator}){}",
            h.requests.len(),
            entries.len(),
            path.display(),
            if skipped > 0 {
                format!(
                    "; {skipped} static assets and non-HTTP entries skipped (--all keeps assets)"
                )
            } else {
                String::new()
            }
        ),
    );
    let mut doc = Obj::new();
    doc.set("name", slug(&name));
    doc.put("variables", Value::Object(h.variables));
    doc.set("requests", Value::Object(h.requests));
    Ok(Import {
        doc: doc.value(),
        secrets: h.secrets,
        report: h.report,
    })
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

fn is_static(e: &Value, url: &str) -> bool {
    if let Some(t) = e.get("_resourceType").and_then(Value::as_str) {
        return STATIC_TYPES.contains(&t);
    }
    let mime = e
        .pointer("/response/content/mimeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("video/")
        || mime.starts_with("audio/")
        || mime.contains("javascript")
        || mime.starts_with("text/css")
        || mime.contains("font")
    {
        return true;
    }
    let path = url.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| STATIC_EXT.contains(&ext.to_ascii_lowercase().as_str()))
}

#[derive(Default)]
struct Har {
    report: Report,
    variables: Map<String, Value>,
    requests: Map<String, Value>,
    secrets: Vec<(String, String)>,
    namer: Namer,
    origins: Vec<String>,
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("name")?.as_str()?.to_string(),
                p.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ))
        })
        .collect()
}

impl Har {
    /// A secret value as a variable (the same value shares one), its value to `.env`.
    fn secret(&mut self, name: &str, value: &str) -> String {
        if let Some((key, _)) = self.secrets.iter().find(|(_, v)| v == value) {
            let wanted = format!("<<env.{key}>>");
            if let Some((var, _)) = self
                .variables
                .iter()
                .find(|(_, v)| v.get("value").and_then(Value::as_str) == Some(wanted.as_str()))
            {
                return format!("<<{var}>>");
            }
        }
        let base = super::names::ident(name);
        let mut var = base.clone();
        let mut n = 2;
        while self.variables.contains_key(&var) {
            var = format!("{base}_{n}");
            n += 1;
        }
        let key = env_key(&["har", &var]);
        self.secrets.push((key.clone(), value.to_string()));
        self.variables.insert(
            var.clone(),
            json!({"value": format!("<<env.{key}>>"), "secret": true}),
        );
        format!("<<{var}>>")
    }

    fn entry(&mut self, e: &Value, req: &Value, url: &str, at: &str) {
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let Ok(parsed) = url::Url::parse(url) else {
            self.report
                .left_out
                .push(format!("{at}: `{}` is not a URL", short(url)));
            return;
        };
        let origin = parsed.origin().ascii_serialization();
        let var = match self.origins.iter().position(|o| *o == origin) {
            Some(0) => "base_url".to_string(),
            Some(i) => format!("base_url_{}", i + 1),
            None => {
                self.origins.push(origin.clone());
                let v = if self.origins.len() == 1 {
                    "base_url".to_string()
                } else {
                    format!("base_url_{}", self.origins.len())
                };
                self.variables
                    .insert(v.clone(), Value::String(origin.clone()));
                v
            }
        };
        let path = parsed.path().to_string();
        let mut r = Obj::new();
        r.set("method", method.clone());
        r.set("url", format!("<<{var}>>{}", escape_literal(&path)));
        // The query from the URL (the entry's queryString repeats it).
        let q: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut query = Map::new();
        let mut unique = true;
        for (k, v) in &q {
            let v = if crate::redact::is_secret_name(k) && !v.is_empty() {
                self.secret(k, v)
            } else {
                escape_literal(v)
            };
            unique &= query.insert(k.clone(), Value::String(v)).is_none();
        }
        if unique {
            r.put("query", Value::Object(query));
        } else {
            let u = r.0["url"].as_str().unwrap_or("").to_string();
            r.set(
                "url",
                format!("{u}?{}", escape_literal(parsed.query().unwrap_or(""))),
            );
            if q.iter().any(|(k, _)| crate::redact::is_secret_name(k)) {
                self.report.notes.push(format!(
                    "{at}: the query repeats a name and holds a secret-looking value; it stays in the URL — check it before committing"
                ));
            }
        }
        let mut headers = Map::new();
        let mut had_cookie = false;
        for (k, v) in pairs(req.get("headers")) {
            let lower = k.to_ascii_lowercase();
            if k.starts_with(':') || COMPUTED.contains(&lower.as_str()) {
                continue;
            }
            let v = if lower == "authorization" && !v.is_empty() {
                match v.split_once(' ') {
                    Some((scheme, cred)) => {
                        format!(
                            "{scheme} {}",
                            self.secret(&format!("{}_token", slug(scheme)), cred)
                        )
                    }
                    None => self.secret("authorization", &v),
                }
            } else if lower == "cookie" && !v.is_empty() {
                had_cookie = true;
                self.secret("cookie", &v)
            } else if crate::redact::is_secret_name(&lower.replace('-', "_")) && !v.is_empty() {
                self.secret(&lower, &v)
            } else {
                escape_literal(&v)
            };
            headers.insert(k, Value::String(v));
        }
        if !had_cookie {
            let cookies = pairs(req.get("cookies"));
            if !cookies.is_empty() {
                let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let v = self.secret("cookie", &line.join("; "));
                headers.insert("Cookie".into(), Value::String(v));
            }
        }
        r.put("headers", Value::Object(headers));
        // The body.
        if let Some(pd) = req.get("postData") {
            let mime = pd
                .get("mimeType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let text = pd.get("text").and_then(Value::as_str).unwrap_or("");
            let params = pd
                .get("params")
                .and_then(Value::as_array)
                .filter(|p| !p.is_empty());
            if let Some(params) = params {
                let mut parts = Map::new();
                let multipart = mime.starts_with("multipart/");
                for p in params {
                    let k = p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if let Some(f) = p.get("fileName").and_then(Value::as_str) {
                        self.report.left_out.push(format!(
                            "{at}: file part `{k}` ({f}): a HAR does not hold the file; it points at files/{f} — put the file there"
                        ));
                        parts.insert(
                            k,
                            json!({"file": format!("files/{}", f.rsplit('/').next().unwrap_or(f))}),
                        );
                    } else {
                        let v = p.get("value").and_then(Value::as_str).unwrap_or("");
                        parts.insert(k, Value::String(escape_literal(v)));
                    }
                }
                r.set(
                    if multipart { "multipart" } else { "form" },
                    Value::Object(parts),
                );
            } else if !text.is_empty() {
                if pd.get("encoding").and_then(Value::as_str) == Some("base64") {
                    self.report.left_out.push(format!(
                        "{at}: a binary (base64) request body is not carried over"
                    ));
                } else if mime.contains("json")
                    && let Ok(v) = serde_json::from_str::<Value>(text)
                {
                    r.set("json", escape_json(&v));
                } else if mime.starts_with("application/x-www-form-urlencoded") {
                    let mut form = Map::new();
                    let mut dup = false;
                    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
                        let v = if crate::redact::is_secret_name(&k) && !v.is_empty() {
                            self.secret(&k, &v)
                        } else {
                            escape_literal(&v)
                        };
                        dup |= form.insert(k.into_owned(), Value::String(v)).is_some();
                    }
                    if dup {
                        r.set("text", escape_literal(text));
                    } else {
                        r.set("form", Value::Object(form));
                    }
                } else {
                    r.set("text", escape_literal(text));
                }
            }
        }
        // The response, as an example (tokens in it redacted).
        if let Some(resp) = e.get("response") {
            let status = resp.get("status").and_then(Value::as_u64).unwrap_or(0);
            if (100..600).contains(&status) {
                let mut ex = Obj::new();
                ex.set("status", status);
                let mut h = Map::new();
                for (k, v) in pairs(resp.get("headers")) {
                    let lower = k.to_ascii_lowercase();
                    if matches!(lower.as_str(), "content-type" | "location") {
                        h.insert(k, Value::String(v));
                    }
                }
                ex.put("headers", Value::Object(h));
                let content = resp.get("content");
                let text = content
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let b64 = content
                    .and_then(|c| c.get("encoding"))
                    .and_then(Value::as_str)
                    == Some("base64");
                let mime = content
                    .and_then(|c| c.get("mimeType"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !text.is_empty() && !b64 {
                    match serde_json::from_str::<Value>(text) {
                        Ok(v)
                            if mime.contains("json")
                                || text.trim_start().starts_with(['{', '[']) =>
                        {
                            let (v, n) = redact(&v);
                            if n > 0 {
                                self.report.notes.push(format!("{at}: {n} secret-looking field(s) of the saved response were redacted"));
                            }
                            ex.set("json", escape_json(&v));
                        }
                        _ if text.len() <= 64 * 1024 => {
                            ex.set("text", escape_literal(text));
                        }
                        _ => {}
                    }
                }
                r.set("examples", json!([ex.value()]));
            }
        }
        let last = path
            .trim_end_matches('/')
            .rsplit('/')
            .find(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or("root");
        let key = self
            .namer
            .unique(&[slug(&format!("{} {last}", method.to_lowercase()))]);
        self.requests.insert(key, r.value());
    }
}

/// A JSON value with secret-looking fields replaced by `REDACTED`, and how many were.
fn redact(v: &Value) -> (Value, usize) {
    match v {
        Value::Object(m) => {
            let mut n = 0;
            let out = m
                .iter()
                .map(|(k, x)| {
                    if crate::redact::is_secret_name(k) && !x.is_null() {
                        n += 1;
                        (k.clone(), Value::String("REDACTED".into()))
                    } else {
                        let (y, c) = redact(x);
                        n += c;
                        (k.clone(), y)
                    }
                })
                .collect();
            (Value::Object(out), n)
        }
        Value::Array(a) => {
            let mut n = 0;
            let out = a
                .iter()
                .map(|x| {
                    let (y, c) = redact(x);
                    n += c;
                    y
                })
                .collect();
            (Value::Array(out), n)
        }
        other => (other.clone(), 0),
    }
}

fn escape_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape_literal(s)),
        Value::Array(a) => Value::Array(a.iter().map(escape_json).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (escape_literal(k), escape_json(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}
