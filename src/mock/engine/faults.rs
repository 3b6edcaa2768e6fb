//! Injected faults: a route, a condition (probability, every Nth call, the next K calls) and
//! what happens — an error status, `429` with `Retry-After`, a delay, a connection reset, a body
//! cut short, or no answer at all. Faults come from configuration (`faults:`), the admin API
//! (`/__postie/faults`) and the REPL (`mock fault add ...`), all in the one shape [`FaultSpec`].
//!
//! The engine decides; the HTTP front carries it out (it owns the socket and knows each pack's
//! error body).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::mock::engine::pattern::PathPattern;
use crate::openapi::Rng;

/// A fault as written in YAML, JSON, or the compact form `ROUTE key=value ...`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Shown in the journal and listings instead of `#id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `*`, `METHOD *`, `/path/{param}/...`, `METHOD /path/*` (a trailing `*` matches the rest).
    pub route: String,
    /// Answer this status with the served API's own error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The body to answer with instead (with `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Answer `429` with `Retry-After: N` (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u64>,
    /// Wait before answering: `200ms`, or a range `100ms..2s` (uniform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Reset the connection (TCP RST) instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Send the headers and half the body, then close: the body ends short of its length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Do not answer; close after this long (`true` = 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Switch>,
    /// Apply with this probability (0..=1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Apply on every Nth matching call (the Nth, 2Nth, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Apply to the next K matching calls, then stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

/// `true` or a duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Switch {
    /// `timeout: true`.
    On(bool),
    /// `timeout: 30s`.
    For(String),
}

/// What an applied fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// This status, with the API's error body or the given one.
    Status(u16, Option<Value>),
    /// `429` and `Retry-After` seconds.
    RateLimit(u64),
    /// Wait between the two (ms), then answer normally.
    Delay(u64, u64),
    /// Abort the connection.
    Reset,
    /// Half the body, then close.
    Truncate,
    /// No answer for this long (ms), then close.
    Timeout(u64),
}

impl Action {
    /// A short name for journals and listings.
    pub fn kind(&self) -> String {
        match self {
            Action::Status(s, _) => format!("status {s}"),
            Action::RateLimit(s) => format!("rate_limit {s}s"),
            Action::Delay(a, b) if a == b => format!("delay {a}ms"),
            Action::Delay(a, b) => format!("delay {a}..{b}ms"),
            Action::Reset => "reset".into(),
            Action::Truncate => "truncate".into(),
            Action::Timeout(ms) => format!("timeout {ms}ms"),
        }
    }
}

#[derive(Debug)]
struct Fault {
    id: u64,
    spec: FaultSpec,
    method: Option<String>,
    path: Option<PathPattern>,
    action: Action,
    seen: u64,
    applied: u64,
}

impl Fault {
    fn label(&self) -> String {
        match &self.spec.name {
            Some(n) => format!("{n} ({})", self.action.kind()),
            None => format!("#{} {}", self.id, self.action.kind()),
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let Some(pattern) = &self.path else {
            return true;
        };
        pattern.matches(path)
    }
}

/// What the front does with one request.
#[derive(Debug, Default)]
pub struct Decision {
    /// Wait this long (ms) first.
    pub delay_ms: u64,
    /// Then this, instead of (or, for `Truncate`, to) the normal answer.
    pub action: Option<Action>,
    /// The faults applied, for the journal.
    pub labels: Vec<String>,
}

/// The faults in force.
#[derive(Debug)]
pub struct Faults {
    any: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    list: Vec<Fault>,
    next_id: u64,
    rng: Rng,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults::new(0x5EED)
    }
}

impl Faults {
    /// None yet; `seed` drives the probabilities and delay ranges.
    pub fn new(seed: u64) -> Faults {
        Faults {
            any: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                list: Vec::new(),
                next_id: 1,
                rng: Rng::new(seed),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks and adds a fault; returns its id.
    pub fn add(&self, spec: FaultSpec) -> Result<u64, String> {
        let (method, path) = parse_route(&spec.route)?;
        let action = action_of(&spec)?;
        if let Some(p) = spec.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability {p} is not between 0 and 1"));
        }
        if spec.every == Some(0) {
            return Err("every: 0 never applies; give 1 or more".into());
        }
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.list.push(Fault {
            id,
            spec,
            method,
            path,
            action,
            seen: 0,
            applied: 0,
        });
        self.any.store(true, Ordering::Release);
        Ok(id)
    }

    /// Removes one fault; whether it was there.
    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.list.len();
        inner.list.retain(|f| f.id != id);
        self.any.store(!inner.list.is_empty(), Ordering::Release);
        inner.list.len() != before
    }

    /// Removes every fault; how many there were.
    pub fn clear(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.list.len();
        inner.list.clear();
        self.any.store(false, Ordering::Release);
        n
    }

    /// The faults with their counters, as the admin API lists them.
    pub fn list(&self) -> Vec<Value> {
        self.lock()
            .list
            .iter()
            .map(|f| {
                let mut v = serde_json::to_value(&f.spec).unwrap_or_default();
                if let Value::Object(m) = &mut v {
                    m.insert("id".into(), json!(f.id));
                    m.insert("does".into(), json!(f.action.kind()));
                    m.insert("matched".into(), json!(f.seen));
                    m.insert("applied".into(), json!(f.applied));
                    if let Some(t) = f.spec.times {
                        m.insert("remaining".into(), json!(t.saturating_sub(f.applied)));
                    }
                }
                v
            })
            .collect()
    }

    /// Decides what happens to one request. Cheap when there are no faults.
    pub fn decide(&self, method: &str, path: &str) -> Decision {
        let mut d = Decision::default();
        if !self.any.load(Ordering::Acquire) {
            return d;
        }
        let mut inner = self.lock();
        let Inner { list, rng, .. } = &mut *inner;
        for f in list.iter_mut() {
            if !f.matches(method, path) {
                continue;
            }
            f.seen += 1;
            if f.spec.times.is_some_and(|t| f.applied >= t) {
                continue;
            }
            if f.spec.every.is_some_and(|n| f.seen % n != 0) {
                continue;
            }
            if let Some(p) = f.spec.probability {
                let roll = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                if roll >= p {
                    continue;
                }
            }
            match &f.action {
                Action::Delay(lo, hi) => {
                    let ms = if hi > lo {
                        lo + rng.next_u64() % (hi - lo + 1)
                    } else {
                        *lo
                    };
                    d.delay_ms = d.delay_ms.saturating_add(ms);
                }
                // The first fault that changes the answer wins; later ones only count the call.
                a if d.action.is_none() => d.action = Some(a.clone()),
                _ => continue,
            }
            f.applied += 1;
            d.labels.push(f.label());
        }
        d
    }
}

/// The compact form, as the REPL and `--fault` take it: `ROUTE key=value ...` where ROUTE is
/// `*`, a path, or a method and a path; a bare key means `true` (`reset`, `truncate`, `timeout`).
/// Example: `GET /v3/contacts status=503 times=2`.
pub fn parse_compact(text: &str) -> Result<FaultSpec, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_method = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase());
    let (route, rest) = match words.as_slice() {
        [m, p, rest @ ..] if is_method(m) && !p.contains('=') => (format!("{m} {p}"), rest),
        [p, rest @ ..] if !p.contains('=') => (p.to_string(), rest),
        _ => {
            return Err(format!(
                "`{text}`: start with the route (`*`, `/v3/contacts/{{id}}` or `GET /v3/*`), then key=value pairs, e.g. `GET /v3/contacts status=503 times=2`"
            ));
        }
    };
    let mut m = serde_json::Map::new();
    m.insert("route".into(), json!(route));
    for w in rest {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, scalar(v)),
            None => (*w, json!(true)),
        };
        let v = match (k, v) {
            // Durations stay text even when they look like numbers (`delay=200` is 200 s).
            ("delay" | "name" | "route", Value::Number(n)) => json!(n.to_string()),
            ("timeout", Value::Number(n)) => json!(n.to_string()),
            ("body", Value::String(s)) => serde_json::from_str(&s).unwrap_or(json!(s)),
            (_, v) => v,
        };
        m.insert(k.to_string(), v);
    }
    serde_json::from_value(Value::Object(m)).map_err(|e| format!("`{text}`: {e}"))
}

fn scalar(v: &str) -> Value {
    if let Ok(n) = v.parse::<u64>() {
        return json!(n);
    }
    if let Ok(f) = v.parse::<f64>()
        && v.contains('.')
    {
        return json!(f);
    }
    match v {
        "true" => json!(true),
        "false" => json!(false),
        _ => json!(v),
    }
}

type Route = (Option<String>, Option<PathPattern>);

fn parse_route(route: &str) -> Result<Route, String> {
    let words: Vec<&str> = route.split_whitespace().collect();
    let (method, path) = match words.as_slice() {
        [p] => (None, *p),
        [m, p] => (Some(m.to_ascii_uppercase()), *p),
        _ => {
            return Err(format!(
                "route `{route}`: write `*`, a path (`/v3/contacts/{{id}}`, `/v3/*`), or a method and a path"
            ));
        }
    };
    if method.as_deref() == Some("*") {
        return parse_route(path);
    }
    if path == "*" {
        return Ok((method, None));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "route `{route}`: the path must start with `/` (or be `*`)"
        ));
    }
    let pattern = PathPattern::parse(path, &format!("route `{route}`"))?;
    Ok((method, Some(pattern)))
}

fn ms(text: &str, what: &str) -> Result<u64, String> {
    crate::util::parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| format!("{what}: {e}"))
}

fn action_of(s: &FaultSpec) -> Result<Action, String> {
    let mut found = Vec::new();
    if let Some(st) = s.status {
        if !(100..=599).contains(&st) {
            return Err(format!("status {st} is not an HTTP status (100-599)"));
        }
        found.push(Action::Status(st, s.body.clone()));
    } else if s.body.is_some() {
        return Err("body goes with status: give the status to answer it with".into());
    }
    if let Some(r) = s.rate_limit {
        found.push(Action::RateLimit(r));
    }
    if let Some(d) = &s.delay {
        let (lo, hi) = match d.split_once("..") {
            Some((a, b)) => (ms(a, "delay")?, ms(b, "delay")?),
            None => {
                let v = ms(d, "delay")?;
                (v, v)
            }
        };
        if hi < lo {
            return Err(format!("delay `{d}`: the range runs from low to high"));
        }
        found.push(Action::Delay(lo, hi));
    }
    if s.reset == Some(true) {
        found.push(Action::Reset);
    }
    if s.truncate == Some(true) {
        found.push(Action::Truncate);
    }
    match &s.timeout {
        Some(Switch::On(true)) => found.push(Action::Timeout(300_000)),
        Some(Switch::For(t)) => found.push(Action::Timeout(ms(t, "timeout")?)),
        _ => {}
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "fault on `{}` does nothing: give one of status, rate_limit, delay, reset, truncate, timeout",
            s.route
        )),
        _ => Err(format!(
            "fault on `{}` does {} things at once; give one (add another fault for the next)",
            s.route,
            found.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> FaultSpec {
        parse_compact(text).unwrap()
    }

    #[test]
    fn compact_form_and_routes() {
        let s = spec("GET /v3/contacts/{id} status=503 times=2 probability=0.5");
        assert_eq!(s.route, "GET /v3/contacts/{id}");
        assert_eq!(s.status, Some(503));
        assert_eq!(s.times, Some(2));
        assert_eq!(s.probability, Some(0.5));
        assert_eq!(spec("* reset").reset, Some(true));
        assert_eq!(
            spec("/v3/* delay=100ms..2s").delay.as_deref(),
            Some("100ms..2s")
        );
        assert_eq!(spec("* timeout=2s").timeout, Some(Switch::For("2s".into())));
        assert!(parse_compact("status=503").is_err());
        assert!(
            parse_compact("* stauts=503")
                .unwrap_err()
                .contains("stauts")
        );
        let f = Faults::new(1);
        assert!(f.add(spec("* ")).unwrap_err().contains("does nothing"));
        assert!(
            f.add(spec("* reset status=500"))
                .unwrap_err()
                .contains("2 things")
        );
        assert!(
            f.add(spec("/a/*/b reset"))
                .unwrap_err()
                .contains("comes last")
        );
        assert!(f.add(spec("* status=700")).is_err());
        assert!(f.add(spec("* probability=1.5 reset")).is_err());
        assert!(f.add(spec("* delay=2s..1s")).is_err());
        let id = f.add(spec("POST /v3/contacts/{id}/x reset")).unwrap();
        {
            let inner = f.lock();
            let fault = &inner.list[0];
            assert!(fault.matches("POST", "/v3/contacts/abc/x"));
            assert!(!fault.matches("GET", "/v3/contacts/abc/x"));
            assert!(!fault.matches("POST", "/v3/contacts/abc"));
            assert!(!fault.matches("POST", "/v3/contacts/abc/x/y"));
        }
        assert!(f.remove(id));
        assert!(!f.remove(id));
    }

    #[test]
    fn every_times_probability_and_delays_compose() {
        let f = Faults::new(7);
        f.add(spec("/a every=3 status=500")).unwrap();
        let hits: Vec<bool> = (0..9)
            .map(|_| f.decide("GET", "/a").action.is_some())
            .collect();
        assert_eq!(
            hits,
            [false, false, true, false, false, true, false, false, true]
        );
        f.clear();
        f.add(spec("* times=2 status=503")).unwrap();
        let n = (0..5)
            .filter(|_| f.decide("GET", "/x").action.is_some())
            .count();
        assert_eq!(n, 2);
        assert_eq!(f.list()[0]["remaining"], 0);
        f.clear();
        f.add(spec("* probability=0.25 status=500")).unwrap();
        let n = (0..4000)
            .filter(|_| f.decide("GET", "/x").action.is_some())
            .count();
        assert!((800..1200).contains(&n), "{n} of 4000 at p=0.25");
        f.clear();
        f.add(spec("* delay=10ms")).unwrap();
        f.add(spec("* delay=5ms..6ms")).unwrap();
        f.add(spec("* status=502")).unwrap();
        f.add(spec("* status=504")).unwrap();
        let d = f.decide("GET", "/x");
        assert!((15..=16).contains(&d.delay_ms));
        assert_eq!(d.action, Some(Action::Status(502, None)));
        assert_eq!(d.labels.len(), 3);
        assert!(Faults::default().decide("GET", "/").action.is_none());
    }
}
