//! Assertions: status, JSONPath, header and response time, checked against an exchange.

use serde_json::Value;

use crate::capture::{JsonPath, value_text};
use crate::collection::AssertSpec;
use crate::exchange::Exchange;

/// The outcome of one assertion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssertResult {
    /// What was checked, e.g. `status is 201`, `$.action equals "created"`.
    pub description: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found instead, when it failed.
    pub actual: Option<String>,
    /// Declared but not run (`pm.test.skip`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// A script's `pm.test` (rather than an `assert:` entry).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub script: bool,
}

/// Checks one assertion whose expected values (`equals`, `matches`) may be templates, rendered
/// in `scope` first — like every other string of a request.
pub fn check_in(
    spec: &AssertSpec,
    ex: &Exchange,
    t: &crate::template::Templates,
    scope: &crate::scope::Scope<'_>,
) -> AssertResult {
    let needs = spec
        .equals
        .as_ref()
        .is_some_and(crate::template::has_template)
        || spec
            .matches
            .as_deref()
            .is_some_and(crate::template::is_template);
    if !needs {
        return check(spec, ex);
    }
    let mut spec = spec.clone();
    let mut strings = Vec::new();
    if let Some(e) = &spec.equals {
        crate::capture::json_str_refs(e, &mut strings);
    }
    if let Some(m) = &spec.matches {
        strings.push(m);
    }
    let roots: Vec<String> = strings
        .iter()
        .flat_map(|s| t.references(s))
        .map(|p| crate::scope::root_of(&p).to_string())
        .collect();
    let ctx = scope.context_for(roots.iter().map(String::as_str));
    if let Some(e) = &spec.equals {
        match t.render_json(e, &ctx) {
            Ok(v) => spec.equals = Some(v),
            Err(err) => {
                return result(
                    format!("expected value {e}"),
                    false,
                    format!("cannot render it: {err}"),
                );
            }
        }
    }
    if let Some(m) = &spec.matches {
        match t.render(m, &ctx) {
            Ok(v) => spec.matches = Some(v),
            Err(err) => {
                return result(
                    format!("pattern {m}"),
                    false,
                    format!("cannot render it: {err}"),
                );
            }
        }
    }
    check(&spec, ex)
}

/// What an assertion checks, as written (for documents and listings; nothing is evaluated).
pub fn describe(spec: &AssertSpec) -> String {
    if let Some(n) = &spec.name {
        return n.clone();
    }
    if let Some(s) = &spec.status {
        return format!("status is {s}");
    }
    if let Some(ms) = spec.max_ms {
        return format!("response time < {ms}ms");
    }
    let subject = match (&spec.jsonpath, &spec.header) {
        (Some(p), _) => p.clone(),
        (None, Some(h)) => format!("header {h}"),
        (None, None) => return "empty assertion".into(),
    };
    if let Some(e) = &spec.equals {
        return format!("{subject} equals {e}");
    }
    if let Some(want) = spec.exists {
        return if want {
            format!("{subject} exists")
        } else {
            format!("{subject} does not exist")
        };
    }
    if let Some(m) = &spec.matches {
        return format!("{subject} matches /{m}/");
    }
    format!("{subject}: no predicate")
}

/// Checks one assertion (expected values taken literally); a named one reports its name.
pub fn check(spec: &AssertSpec, ex: &Exchange) -> AssertResult {
    let mut r = check_unnamed(spec, ex);
    if let Some(n) = &spec.name {
        r.description = n.clone();
    }
    r
}

fn check_unnamed(spec: &AssertSpec, ex: &Exchange) -> AssertResult {
    if let Some(s) = &spec.status {
        return result(
            format!("status is {s}"),
            s.accepts(ex.status),
            ex.status.to_string(),
        );
    }
    if let Some(ms) = spec.max_ms {
        let took = ex.elapsed.as_secs_f64() * 1000.0;
        return result(
            format!("response time < {ms}ms"),
            took < ms as f64,
            format!("{took:.1}ms"),
        );
    }
    let (subject, found): (String, Option<Value>) = if let Some(p) = &spec.jsonpath {
        let found = match (&ex.json, JsonPath::parse(p)) {
            (Some(j), Ok(path)) => path.value(j),
            _ => None,
        };
        (p.clone(), found)
    } else if let Some(h) = &spec.header {
        (
            format!("header {h}"),
            ex.header(h).map(|v| Value::String(v.to_string())),
        )
    } else {
        return result("empty assertion".into(), false, String::new());
    };
    let shown = found
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "nothing".into());
    if let Some(expected) = &spec.equals {
        let passed = match (&found, expected) {
            // Headers are text: compare a header against `equals: 5` as "5".
            (Some(Value::String(a)), b) if spec.header.is_some() => *a == value_text(b),
            (Some(a), b) => same(a, b),
            (None, _) => false,
        };
        return result(format!("{subject} equals {expected}"), passed, shown);
    }
    if let Some(want) = spec.exists {
        let desc = if want {
            format!("{subject} exists")
        } else {
            format!("{subject} does not exist")
        };
        return result(desc, found.is_some() == want, shown);
    }
    if let Some(pattern) = &spec.matches {
        let passed = match (&found, regex::Regex::new(pattern)) {
            (Some(v), Ok(re)) => re.is_match(&value_text(v)),
            _ => false,
        };
        return result(format!("{subject} matches /{pattern}/"), passed, shown);
    }
    result(format!("{subject}: no predicate"), false, shown)
}

/// JSON equality where numbers compare by value at any depth (`1` equals `1.0`, in a list too).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

fn result(description: String, passed: bool, actual: String) -> AssertResult {
    AssertResult {
        description,
        passed,
        actual: (!passed).then_some(actual),
        skipped: false,
        script: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(doc: Value) -> Exchange {
        Exchange {
            request: crate::exchange::Rendered {
                name: "r".into(),
                method: "GET".into(),
                url: "http://127.0.0.1:9/".into(),
                headers: vec![],
                body: crate::exchange::Body::None,
                follow_redirects: false,
                timeout: std::time::Duration::from_secs(1),
            },
            status: 200,
            headers: vec![],
            body: doc.to_string(),
            raw: bytes::Bytes::new(),
            binary: false,
            json: Some(doc),
            elapsed: std::time::Duration::ZERO,
        }
    }

    // Both found by the property test over generated documents (tests/props.rs).
    #[test]
    fn equals_null_asserts_a_null_and_numbers_compare_by_value_at_any_depth() {
        let ex = exchange(serde_json::json!({"a": null, "b": [[0]], "c": {"n": 2.5}}));
        let spec = |y: &str| serde_yaml::from_str::<AssertSpec>(y).unwrap();
        assert!(check(&spec("{jsonpath: $.a, equals: null}"), &ex).passed);
        assert!(!check(&spec("{jsonpath: $.b, equals: null}"), &ex).passed);
        assert!(check(&spec("{jsonpath: $.b, equals: [[0.0]]}"), &ex).passed);
        assert!(check(&spec("{jsonpath: $.c, equals: {n: 2.5}}"), &ex).passed);
        assert!(!check(&spec("{jsonpath: $.c, equals: {n: 2.5, m: 1}}"), &ex).passed);
    }
}
