//! Secrets bound to hosts: before a request is sent (or exported as a curl line), every secret
//! variable whose value it carries is checked against the request's host.
//!
//! A secret is a variable the collection defines (in `variables:` or the environment) that is
//! declared `secret: true` or has a secret-looking name, and any secret-named process
//! environment variable (`env.*`, `.env`). Its hosts are the variable's `hosts:` when it lists
//! them. Without `hosts:`, a secret that comes from outside the file (the environment's
//! definition, `<<env.X>>`) goes only to the hosts the collection's URL variables name (in
//! `variables:` and the active environment — where a shared collection says its APIs live) and
//! the in-process mock; a literal in `variables:` is not bound (`postie lint` flags it). A
//! secret bound elsewhere stops the request before anything is sent, naming the variable, the
//! field and the host, unless `--allow-secret-host NAME=HOST` allows that pair for this run.

use crate::collection::VarDef;
use crate::exchange::{Body, PartValue, Rendered};
use crate::redact::is_secret_name;
use crate::scope::Scope;

/// Values shorter than this are not looked for (a `1` would be found everywhere).
const MIN_LEN: usize = 6;

/// One secret to look for: its name, its values as text, and the hosts it may go to
/// (`None`: the collection's URL-variable hosts).
struct Secret {
    name: String,
    values: Vec<String>,
    hosts: Option<Vec<String>>,
}

/// What a check decided for a request that carries secrets.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Secrets sent to a host only because `--allow-secret-host` allowed it (said visibly).
    pub allowed_once: Vec<String>,
}

/// Whether `host` matches a `hosts:` entry: the host itself, `*.example.com` for its
/// subdomains, `host:port` for that port only. Case does not matter.
pub fn host_matches(pattern: &str, host: &str, port: Option<u16>) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let (pat_host, pat_port) = match pattern.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h.to_string(), Some(p)),
            Err(_) => (pattern.clone(), None),
        },
        _ => (pattern.clone(), None),
    };
    if let Some(want) = pat_port
        && Some(want) != port
    {
        return false;
    }
    let pat_host = pat_host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match pat_host.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => pat_host == host,
    }
}

/// Checks a `hosts:` entry as written: a host name (or `*.domain`, `host:port`), not a URL.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if p.trim().is_empty() {
        return Err("an empty host".into());
    }
    if p.contains("://") || p.contains('/') {
        let host = url::Url::parse(p)
            .ok()
            .and_then(|u| u.host_str().map(String::from));
        return Err(format!(
            "`{p}` is a URL; `hosts:` takes host names{}",
            host.map(|h| format!(" (`{h}`)")).unwrap_or_default()
        ));
    }
    if p.contains(char::is_whitespace) {
        return Err(format!("`{p}` has spaces; write one host per entry"));
    }
    Ok(())
}

/// The host of an http(s) URL, lower-case.
fn url_host(text: &str) -> Option<(String, Option<u16>)> {
    let u = url::Url::parse(text.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    Some((
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default(),
    ))
}

/// Where in a rendered request `value` appears, described for a message.
fn found_in(r: &Rendered, value: &str) -> Option<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let in_url = |u: &str| u.contains(value) || (encoded != value && u.contains(&encoded));
    if in_url(&r.url) {
        return Some("the URL".into());
    }
    for (k, v) in &r.headers {
        if v.contains(value) {
            return Some(format!("header `{k}`"));
        }
        // Basic credentials carry the secret base64-encoded.
        if let Some(b64) = v
            .trim()
            .strip_prefix("Basic ")
            .or_else(|| v.trim().strip_prefix("basic "))
        {
            use base64::Engine as _;
            if let Ok(plain) = base64::engine::general_purpose::STANDARD.decode(b64.trim())
                && String::from_utf8_lossy(&plain).contains(value)
            {
                return Some(format!("header `{k}` (Basic credentials)"));
            }
        }
    }
    let in_body = match &r.body {
        Body::None => false,
        Body::Json(v) => {
            let mut strs = Vec::new();
            crate::capture::json_str_refs(v, &mut strs);
            strs.iter().any(|s| s.contains(value))
        }
        Body::Form(f) => f
            .iter()
            .any(|(k, v)| k.contains(value) || v.contains(value)),
        Body::Text(t) => t.contains(value),
        Body::Multipart { parts, .. } => parts
            .iter()
            .any(|(_, p)| matches!(p, PartValue::Text(t) if t.contains(value))),
    };
    in_body.then(|| "the body".into())
}

/// Which of a collection's variables matter here, for one environment: the secrets that are
/// bound (with their `hosts:`) and the variables that may hold a URL. It depends only on the
/// collection and the environment, so a runner makes it once and each step renders only those
/// variables, however many the collection defines.
#[derive(Debug, Default)]
pub struct Plan {
    /// Bound secrets: name and `hosts:` (`None`: the URL variables' hosts).
    secrets: Vec<(String, Option<Vec<String>>)>,
    /// Variables whose definition is a URL or a template that may render to one.
    url_vars: Vec<String>,
}

impl Plan {
    /// The plan for a scope's collection and environment.
    pub fn new(scope: &Scope<'_>) -> Plan {
        let mut plan = Plan::default();
        for name in defined_names(scope) {
            let Some(def) = scope.def(&name) else {
                continue;
            };
            if def.declared_secret() || is_secret_name(&name) {
                // Without `hosts:`, a secret is bound when it comes from outside the collection
                // file — the environment's definition or the process environment
                // (`<<env.X>>`) — where a shared collection's real credentials live.
                let hosts = def.hosts().map(<[String]>::to_vec);
                if hosts.is_some() || from_outside(scope, &name, def) {
                    plan.secrets.push((name.clone(), hosts));
                }
                if def.declared_secret() {
                    continue;
                }
            }
            if let Some(text) = def.value().as_str()
                && (crate::template::is_template(text) || url_host(text).is_some())
            {
                plan.url_vars.push(name);
            }
        }
        plan
    }
}

/// The secrets a scope holds now, with their hosts.
fn secrets(scope: &Scope<'_>, plan: &Plan, env_names: &[(String, String)]) -> Vec<Secret> {
    let mut out = Vec::new();
    for (name, hosts) in &plan.secrets {
        let Some(v) = scope.get(name) else { continue };
        let mut strs = Vec::new();
        crate::capture::json_str_refs(&v, &mut strs);
        let values: Vec<String> = strs
            .into_iter()
            .filter(|s| s.len() >= MIN_LEN)
            .map(String::from)
            .collect();
        if !values.is_empty() {
            out.push(Secret {
                name: name.clone(),
                values,
                hosts: hosts.clone(),
            });
        }
    }
    // A process variable that a collection variable carries is governed by that variable's
    // binding (its `hosts:` may name a host the URL variables do not).
    for (k, v) in env_names {
        if v.len() >= MIN_LEN && !out.iter().any(|s| s.values.contains(v)) {
            out.push(Secret {
                name: format!("env.{k}"),
                values: vec![v.clone()],
                hosts: None,
            });
        }
    }
    out
}

/// Whether a variable's value comes from the active environment's definition or from the
/// process environment.
fn from_outside(scope: &Scope<'_>, name: &str, def: &VarDef) -> bool {
    let in_env = scope
        .env_name()
        .and_then(|e| scope.collection().environments.get(e))
        .is_some_and(|m| m.contains_key(name));
    let mut strs = Vec::new();
    crate::capture::json_str_refs(def.value(), &mut strs);
    in_env || strs.iter().any(|s| s.contains("env."))
}

/// Variables the collection defines: its own and the active environment's.
fn defined_names(scope: &Scope<'_>) -> Vec<String> {
    let c = scope.collection();
    let mut names: Vec<String> = c.variables.keys().cloned().collect();
    if let Some(env) = scope.env_name().and_then(|e| c.environments.get(e)) {
        for k in env.keys() {
            if !c.variables.contains_key(k) {
                names.push(k.clone());
            }
        }
    }
    names
}

/// The hosts a secret without `hosts:` may go to: those of the collection's URL variables (its
/// own and the active environment's) and of `mock_url`.
fn default_hosts(scope: &Scope<'_>, plan: &Plan) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let names = plan.url_vars.iter().map(String::as_str).chain(["mock_url"]);
    for name in names {
        if let Some(v) = scope.get(name)
            && let Some((h, _)) = v.as_str().and_then(url_host)
            && !hosts.contains(&h)
        {
            hosts.push(h);
        }
    }
    hosts
}

/// Checks a rendered request: every secret it carries must be bound to its host (or allowed
/// once by `--allow-secret-host NAME=HOST`). `env_secrets` are the secret-named process
/// environment variables.
pub fn check(
    scope: &Scope<'_>,
    plan: &Plan,
    env_secrets: &[(String, String)],
    allow: &[(String, String)],
    r: &Rendered,
) -> Result<Verdict, String> {
    let mut verdict = Verdict::default();
    let Some((host, port)) = url_host(&r.url) else {
        return Ok(verdict);
    };
    let mut defaults: Option<Vec<String>> = None;
    for s in secrets(scope, plan, env_secrets) {
        let Some(field) = s.values.iter().find_map(|v| found_in(r, v)) else {
            continue;
        };
        let (hosts, whose) = match &s.hosts {
            Some(h) => (h.clone(), "its `hosts:`".to_string()),
            None => (
                defaults
                    .get_or_insert_with(|| default_hosts(scope, plan))
                    .clone(),
                "the hosts of the collection's URL variables".to_string(),
            ),
        };
        if hosts.iter().any(|p| host_matches(p, &host, port)) {
            continue;
        }
        if allow
            .iter()
            .any(|(n, h)| (n == &s.name || n == "*") && host_matches(h, &host, port))
        {
            verdict.allowed_once.push(format!(
                "secret `{}` sent to {host} in {field}, allowed by --allow-secret-host (it is bound to {})",
                s.name,
                list(&hosts)
            ));
            continue;
        }
        return Err(format!(
            "request `{}` would send secret `{}` in {field} to {host}, but it is bound to {} ({whose}) — not sent. If {host} is meant to get it, add it to the variable's `hosts:`, or pass `--allow-secret-host {}={host}` for this run",
            r.name,
            s.name,
            list(&hosts),
            s.name
        ));
    }
    Ok(verdict)
}

fn list(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts.join(", ")
    }
}

/// Parses `--allow-secret-host NAME=HOST`.
pub fn parse_allow(s: &str) -> Result<(String, String), String> {
    let (name, host) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write NAME=HOST (the secret variable and the host)"))?;
    check_pattern(host)?;
    Ok((name.trim().to_string(), host.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_matches(
            "api.example.com",
            "API.example.com",
            Some(443)
        ));
        assert!(!host_matches("api.example.com", "example.com", Some(443)));
        assert!(host_matches("*.example.com", "a.b.example.com", Some(443)));
        assert!(!host_matches("*.example.com", "example.com", Some(443)));
        assert!(!host_matches("*.example.com", "evilexample.com", Some(443)));
        assert!(host_matches("127.0.0.1:8911", "127.0.0.1", Some(8911)));
        assert!(!host_matches("127.0.0.1:8911", "127.0.0.1", Some(8912)));
        assert!(host_matches("[::1]", "[::1]", Some(80)));
        assert!(check_pattern("https://authz.constantcontact.com").is_err());
        assert!(check_pattern("authz.constantcontact.com").is_ok());
        assert_eq!(
            parse_allow("client_secret=evil.test").unwrap(),
            ("client_secret".into(), "evil.test".into())
        );
        assert!(parse_allow("client_secret").is_err());
    }
}
