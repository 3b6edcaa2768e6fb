//! Capture expressions: a small JSONPath, headers and regexes, turning a response into values.
//!
//! Supported JSONPath: `$`, `.name`, `['name']` / `["name"]`, `[N]` (negative counts from the
//! end), `[*]` / `.*`, `..name` (recursive descent), and filters `[?(@.field == 'v')]` with
//! `==`/`!=` against strings, numbers, booleans and null. That covers every capture the bundled
//! collections need (`$.contacts[0].contact_id`, `$.lists[?(@.name=='VIP')].list_id`).

use serde_json::Value;

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(i64),
    Wildcard,
    Descend(String),
    Filter {
        path: Vec<String>,
        negate: bool,
        value: Value,
    },
}

impl JsonPath {
    /// Parses `$...`; errors say where and what was expected.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let rest = t.strip_prefix('$').ok_or_else(|| {
            format!("JSONPath `{t}` must start with `$` (e.g. `$.contacts[0].contact_id`)")
        })?;
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        let mut segments = Vec::new();
        let err =
            |pos: usize, what: &str| format!("JSONPath `{t}`: {what} at character {}", pos + 2);
        while i < chars.len() {
            match chars[i] {
                '.' if chars.get(i + 1) == Some(&'.') => {
                    i += 2;
                    let start = i;
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                    if start == i {
                        return Err(err(i, "expected a field name after `..`"));
                    }
                    segments.push(Segment::Descend(chars[start..i].iter().collect()));
                }
                '.' => {
                    i += 1;
                    if chars.get(i) == Some(&'*') {
                        i += 1;
                        segments.push(Segment::Wildcard);
                        continue;
                    }
                    let start = i;
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                    if start == i {
                        return Err(err(i, "expected a field name after `.`"));
                    }
                    segments.push(Segment::Key(chars[start..i].iter().collect()));
                }
                '[' => {
                    let close = find_close(&chars, i).ok_or_else(|| err(i, "unclosed `[`"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    let seg = if inner == "*" {
                        Segment::Wildcard
                    } else if let Some(q) = unquote(inner) {
                        Segment::Key(q)
                    } else if let Some(f) = inner.strip_prefix('?') {
                        parse_filter(f.trim()).map_err(|m| err(i, &m))?
                    } else {
                        Segment::Index(inner.parse().map_err(|_| err(i + 1, &format!("`[{inner}]` is not an index, `*`, a quoted name or a `?()` filter")))?)
                    };
                    segments.push(seg);
                    i = close + 1;
                }
                c => return Err(err(i, &format!("unexpected `{c}` (expected `.` or `[`)"))),
            }
        }
        Ok(JsonPath {
            segments,
            text: t.to_string(),
        })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the path selects, in document order.
    pub fn select<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in current {
                match seg {
                    Segment::Key(k) => next.extend(v.get(k)),
                    Segment::Index(n) => {
                        if let Value::Array(a) = v {
                            let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                            if idx >= 0 {
                                next.extend(a.get(idx as usize));
                            }
                        }
                    }
                    Segment::Wildcard => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Segment::Descend(k) => descend(v, k, &mut next),
                    Segment::Filter {
                        path,
                        negate,
                        value,
                    } => {
                        let items: Vec<&Value> = match v {
                            Value::Array(a) => a.iter().collect(),
                            Value::Object(m) => m.values().collect(),
                            _ => vec![],
                        };
                        for item in items {
                            let mut field = Some(item);
                            for p in path {
                                field = field.and_then(|f| f.get(p));
                            }
                            let eq = field.map(|f| loose_eq(f, value)).unwrap_or(false);
                            if eq != *negate {
                                next.push(item);
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The single value selected: the first match, or the list when the path can select many.
    pub fn value(&self, root: &Value) -> Option<Value> {
        let many = self.segments.iter().any(|s| {
            matches!(
                s,
                Segment::Wildcard | Segment::Descend(_) | Segment::Filter { .. }
            )
        });
        let found = self.select(root);
        if many {
            if found.is_empty() {
                // A filter that matches nothing still "exists" as an empty list only if asked; treat
                // as absent so `exists: false` and undefined-variable errors behave.
                return None;
            }
            if found.len() == 1 {
                return Some(found[0].clone());
            }
            return Some(Value::Array(found.into_iter().cloned().collect()));
        }
        found.first().map(|v| (*v).clone())
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@'
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if *c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(*c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if s.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[s.len() - 1] == b[0] {
        Some(s[1..s.len() - 1].to_string())
    } else {
        None
    }
}

fn parse_filter(f: &str) -> Result<Segment, String> {
    let inner = f
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or("a filter is written `[?(@.field == 'value')]`")?
        .trim();
    let (lhs, op, rhs) = if let Some((l, r)) = inner.split_once("==") {
        (l, false, r)
    } else if let Some((l, r)) = inner.split_once("!=") {
        (l, true, r)
    } else {
        return Err("a filter compares with `==` or `!=`".into());
    };
    let lhs = lhs.trim();
    let field = lhs
        .strip_prefix('@')
        .ok_or("a filter's left side starts with `@`")?;
    let path: Vec<String> = field
        .split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let rhs = rhs.trim();
    let value = match unquote(rhs) {
        Some(s) => Value::String(s),
        None => serde_json::from_str(rhs)
            .map_err(|_| format!("`{rhs}` is not a quoted string, number, true, false or null"))?,
    };
    Ok(Segment::Filter {
        path,
        negate: op,
        value,
    })
}

fn descend<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(key) {
                out.push(x);
            }
            for child in m.values() {
                descend(child, key, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                descend(child, key, out);
            }
        }
        _ => {}
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Renders a JSON value as a template/variable string: strings bare, everything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Borrows every string inside a JSON value.
pub fn json_str_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| json_str_refs(x, out)),
        Value::Object(m) => m.values().for_each(|x| json_str_refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "contacts": [
                {"contact_id": "a1", "email_address": {"address": "a@x.io"}, "list_memberships": ["L1"]},
                {"contact_id": "b2", "email_address": {"address": "b@x.io"}, "list_memberships": []}
            ],
            "lists": [{"name": "VIP", "list_id": "L1"}, {"name": "All", "list_id": "L2"}],
            "weird key": 1,
            "_links": {"next": {"href": "/v3/contacts?cursor=abc"}}
        })
    }

    fn get(p: &str) -> Option<Value> {
        JsonPath::parse(p).unwrap().value(&doc())
    }

    #[test]
    fn selects() {
        assert_eq!(get("$.contacts[0].contact_id"), Some(json!("a1")));
        assert_eq!(get("$.contacts[-1].contact_id"), Some(json!("b2")));
        assert_eq!(get("$['weird key']"), Some(json!(1)));
        assert_eq!(
            get("$._links.next.href"),
            Some(json!("/v3/contacts?cursor=abc"))
        );
        assert_eq!(get("$.contacts[*].contact_id"), Some(json!(["a1", "b2"])));
        assert_eq!(get("$..address"), Some(json!(["a@x.io", "b@x.io"])));
        assert_eq!(
            get("$.lists[?(@.name == 'VIP')].list_id"),
            Some(json!("L1"))
        );
        assert_eq!(
            get("$.lists[?(@.name != 'VIP')].list_id"),
            Some(json!("L2"))
        );
        assert_eq!(get("$.contacts[5].contact_id"), None);
        assert_eq!(get("$.nope"), None);
        assert_eq!(get("$"), Some(doc()));
    }

    #[test]
    fn parse_errors_say_where() {
        assert!(
            JsonPath::parse("contacts[0]")
                .unwrap_err()
                .contains("must start with `$`")
        );
        assert!(
            JsonPath::parse("$.contacts[0")
                .unwrap_err()
                .contains("unclosed `[`")
        );
        assert!(
            JsonPath::parse("$.a[x]")
                .unwrap_err()
                .contains("`[x]` is not an index")
        );
        assert!(
            JsonPath::parse("$.a.")
                .unwrap_err()
                .contains("expected a field name")
        );
        assert!(
            JsonPath::parse("$.a[?(@.x ~ 1)]")
                .unwrap_err()
                .contains("`==` or `!=`")
        );
    }
}
