//! Automatic chaining: what a response makes available to the next request, with no declaration.
//!
//! After every exchange, in increasing priority:
//! 1. each top-level scalar field of a JSON object body becomes a variable (`access_token`,
//!    `contact_id`, `activity_id`, `state`, ...);
//! 2. the query (and fragment) parameters of a `Location` header become variables (`code`,
//!    `state` from an OAuth redirect; `error` from a denied one);
//! 3. explicit `capture:` entries (JSONPath, header, regex) win over both.
//!
//! The whole exchange is also kept under the request's name (`<<token.body.access_token>>`); that
//! part is the state's job.

use serde_json::Value;

use crate::capture::{JsonPath, value_text};
use crate::collection::{CaptureSpec, Request};
use crate::exchange::Exchange;
use crate::redact::is_secret_name;

/// One variable set by a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: Value,
    /// Whether it must be masked.
    pub secret: bool,
    /// Set by an explicit `capture:` entry (automatic bindings never replace declared inputs).
    pub explicit: bool,
    /// The value it replaced, when another request had set it: (value as shown, that request).
    pub replaced: Option<(String, String)>,
}

/// An explicit capture that found nothing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("capture `{name}`: {message}")]
pub struct CaptureError {
    /// The capture's name.
    pub name: String,
    /// What went wrong.
    pub message: String,
}

/// Computes the variables a response sets.
pub fn bind(req: &Request, ex: &Exchange) -> (Vec<Binding>, Vec<CaptureError>) {
    let mut out: Vec<Binding> = Vec::new();
    let mut put = |name: &str, value: Value, secret: bool, explicit: bool| {
        let secret = secret || is_secret_name(name);
        match out.iter_mut().find(|b| b.name == name) {
            Some(b) => {
                b.value = value;
                b.secret = secret;
                b.explicit = explicit;
            }
            None => out.push(Binding {
                name: name.to_string(),
                value,
                secret,
                explicit,
                replaced: None,
            }),
        }
    };
    if let Some(Value::Object(map)) = &ex.json {
        for (k, v) in map {
            if matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) && is_identifier(k)
            {
                put(k, v.clone(), false, false);
            }
        }
    }
    if let Some(loc) = ex.header("location") {
        for (k, v) in location_params(&ex.request.url, loc) {
            if is_identifier(&k) {
                put(&k, Value::String(v), false, false);
            }
        }
    }
    let mut errors = Vec::new();
    for (name, spec) in &req.capture {
        match capture(spec, ex) {
            Ok((v, secret)) => put(name, v, secret, true),
            Err(_) if matches!(spec, CaptureSpec::Detailed(d) if d.optional) => {}
            Err(message) => errors.push(CaptureError {
                name: name.clone(),
                message,
            }),
        }
    }
    (out, errors)
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Query and fragment parameters of a `Location`, resolved against the request URL.
pub fn location_params(base: &str, location: &str) -> Vec<(String, String)> {
    let parsed =
        url::Url::parse(location).or_else(|_| url::Url::parse(base).and_then(|b| b.join(location)));
    let Ok(u) = parsed else { return vec![] };
    let mut pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    if let Some(frag) = u.fragment() {
        pairs.extend(url::form_urlencoded::parse(frag.as_bytes()).into_owned());
    }
    pairs
}

fn capture(spec: &CaptureSpec, ex: &Exchange) -> Result<(Value, bool), String> {
    let body_json = || {
        ex.json
            .as_ref()
            .ok_or_else(|| "the response body is not JSON".to_string())
    };
    match spec {
        CaptureSpec::Path(p) => {
            let path = JsonPath::parse(p)?;
            let v = path
                .value(body_json()?)
                .ok_or_else(|| format!("`{p}` matched nothing in the response body"))?;
            Ok((v, false))
        }
        CaptureSpec::Detailed(d) => {
            if let Some(p) = &d.jsonpath {
                let path = JsonPath::parse(p)?;
                let v = path
                    .value(body_json()?)
                    .ok_or_else(|| format!("`{p}` matched nothing in the response body"))?;
                return Ok((v, d.secret));
            }
            if let Some(h) = &d.header {
                let v = ex
                    .header(h)
                    .ok_or_else(|| format!("the response has no `{h}` header"))?;
                return Ok((Value::String(v.to_string()), d.secret));
            }
            let re = regex::Regex::new(d.regex.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let from = d.from.as_deref().unwrap_or("body");
            let text = match from.strip_prefix("header:") {
                Some(h) => ex
                    .header(h.trim())
                    .ok_or_else(|| format!("the response has no `{h}` header"))?
                    .to_string(),
                None => ex.body.clone(),
            };
            let caps = re
                .captures(&text)
                .ok_or_else(|| format!("regex `{}` did not match the {from}", re.as_str()))?;
            let m = caps
                .get(1)
                .or_else(|| caps.get(0))
                .map(|m| m.as_str())
                .unwrap_or_default();
            Ok((Value::String(m.to_string()), d.secret))
        }
    }
}

/// A binding's value as shown to people (masked when secret), with what it replaced.
pub fn display_value(b: &Binding) -> String {
    let shown = if b.secret {
        crate::redact::MASK.to_string()
    } else {
        short(&value_text(&b.value))
    };
    match &b.replaced {
        Some((old, from)) if !b.secret => format!("{shown} (was {old} from {from})"),
        _ => shown,
    }
}

/// A value cut to 60 characters for one-line display.
pub fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Body, Rendered};
    use std::time::Duration;

    fn ex(status: u16, headers: &[(&str, &str)], body: &str) -> Exchange {
        Exchange::new(
            Rendered {
                name: "r".into(),
                method: "GET".into(),
                url: "http://127.0.0.1:1/oauth2/authorize?x=1".into(),
                headers: vec![],
                body: Body::None,
                follow_redirects: false,
                timeout: Duration::from_secs(1),
            },
            status,
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            bytes::Bytes::from(body.to_string()),
            Duration::ZERO,
        )
    }

    fn req(yaml: &str) -> Request {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn automatic_scalars_location_and_explicit_captures() {
        let r = req(
            "url: x\ncapture:\n  first_id: $.contacts[0].contact_id\n  expires_in: {regex: '\"expires_in\": *(\\d+)'}\n",
        );
        let e = ex(
            302,
            &[("location", "http://localhost:8080/cb?code=abc&state=s1")],
            r#"{"access_token":"AT","expires_in":86400,"nested":{"x":1},"contacts":[{"contact_id":"c1"}],"nothing":null}"#,
        );
        let (b, errs) = bind(&r, &e);
        assert!(errs.is_empty(), "{errs:?}");
        let get = |n: &str| b.iter().find(|x| x.name == n).cloned();
        assert_eq!(
            get("access_token").unwrap().value,
            Value::String("AT".into())
        );
        assert!(get("access_token").unwrap().secret);
        assert_eq!(get("code").unwrap().value, Value::String("abc".into()));
        assert_eq!(get("state").unwrap().value, Value::String("s1".into()));
        assert_eq!(get("first_id").unwrap().value, Value::String("c1".into()));
        // explicit wins over automatic
        assert_eq!(
            get("expires_in").unwrap().value,
            Value::String("86400".into())
        );
        assert!(get("nested").is_none() && get("nothing").is_none());
    }

    #[test]
    fn capture_misses_are_errors() {
        let r = req(
            "url: x\ncapture:\n  a: $.missing\n  b: {header: x-nope}\n  c: {regex: 'zz(\\d)', from: body}\n",
        );
        let (_, errs) = bind(&r, &ex(200, &[], r#"{"k":1}"#));
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("`$.missing` matched nothing"));
        assert!(msgs[1].contains("no `x-nope` header"));
        assert!(msgs[2].contains("did not match the body"));
    }

    #[test]
    fn relative_location_and_fragment() {
        let p = location_params("http://h/a/b", "/cb#access_token=t&state=z");
        assert_eq!(
            p,
            vec![
                ("access_token".into(), "t".into()),
                ("state".into(), "z".into())
            ]
        );
    }
}
