//! Postman's `{{name}}` text into postie's `<<name>>`: names made into identifiers (with a
//! rename map kept for scripts and the report), dynamic variables (`{{$guid}}`) into functions,
//! and literal `<<`, `<%`, `<#` escaped so they stay text.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::ident;

/// Converts text and remembers what it met.
#[derive(Debug, Default, Clone)]
pub struct Converter {
    /// Postman name → postie name, for names that had to change.
    pub renames: BTreeMap<String, String>,
    /// Postie names referenced, with the first place each was met.
    pub referenced: BTreeMap<String, String>,
    /// Dynamic variables postie has no equivalent for: (`$name`, where).
    pub unknown_dynamic: Vec<(String, String)>,
}

impl Converter {
    /// The postie name of a Postman variable (remembering a rename).
    pub fn name(&mut self, postman: &str) -> String {
        let n = ident(postman);
        if n != postman {
            self.renames.insert(postman.to_string(), n.clone());
        }
        n
    }

    /// Postman text → postie template text. `at` says where it is, for the report.
    pub fn text(&mut self, s: &str, at: &str) -> String {
        let mut out = String::with_capacity(s.len() + 8);
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            let (lit, tail) = rest.split_at(open);
            out.push_str(&escape_literal(lit));
            match tail[2..].find("}}") {
                Some(close) if !tail[2..2 + close].contains(['{', '}']) => {
                    let inner = &tail[2..2 + close];
                    out.push_str(&self.expr(inner, at));
                    rest = &tail[2 + close + 2..];
                }
                _ => {
                    out.push_str(&escape_literal("{{"));
                    rest = &tail[2..];
                }
            }
        }
        out.push_str(&escape_literal(rest));
        out
    }

    fn expr(&mut self, inner: &str, at: &str) -> String {
        let name = inner.trim();
        if let Some(dynamic) = name.strip_prefix('$') {
            return match dynamic {
                "guid" | "randomUUID" => "<<uuid()>>".into(),
                "timestamp" => "<<now('unix')>>".into(),
                "isoTimestamp" => "<<now()>>".into(),
                "randomInt" => "<<random_int(0, 1000)>>".into(),
                other if crate::fake::value(other).is_some() => format!("<<fake('{other}')>>"),
                other => {
                    self.unknown_dynamic
                        .push((format!("${other}"), at.to_string()));
                    format!("<<fake('{other}')>>")
                }
            };
        }
        let n = self.name(name);
        self.referenced
            .entry(n.clone())
            .or_insert_with(|| at.to_string());
        format!("<<{n}>>")
    }

    /// Converts every string inside a JSON value (keys too).
    pub fn json(&mut self, v: &Value, at: &str) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s, at)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.json(x, at)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.text(k, at), self.json(x, at)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Literal text with postie's delimiters written so the template engine leaves them alone.
pub fn escape_literal(s: &str) -> String {
    if !s.contains("<<") && !s.contains("<%") && !s.contains("<#") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '<'
            && let Some(&(_, n)) = chars.peek()
            && matches!(n, '<' | '%' | '#')
        {
            chars.next();
            out.push_str(&format!("<<'<{n}'>>"));
            continue;
        }
        out.push(c);
    }
    out
}

/// postie template text → Postman text (for export): `<<name>>` → `{{name}}`, the functions an
/// import writes back into dynamic variables. Other expressions are returned in `complex` and
/// written as `{{name}}` of a variable a pre-request script sets.
pub fn to_postman(s: &str, complex: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("<<") {
        out.push_str(&rest[..open]);
        let tail = &rest[open + 2..];
        let Some(close) = tail.find(">>") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let expr = tail[..close].trim();
        let simple = expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let mapped = match expr {
            "uuid()" => Some("{{$guid}}".to_string()),
            "now('unix')" | "now(\"unix\")" => Some("{{$timestamp}}".to_string()),
            "now()" => Some("{{$isoTimestamp}}".to_string()),
            "random_int(0, 1000)" | "random_int()" => Some("{{$randomInt}}".to_string()),
            e if e.starts_with('\'') && e.ends_with('\'') && e.len() >= 2 => {
                Some(e[1..e.len() - 1].to_string())
            }
            e if e.starts_with("fake('") && e.ends_with("')") => {
                Some(format!("{{{{${}}}}}", &e[6..e.len() - 2]))
            }
            _ => None,
        };
        match mapped {
            Some(m) => out.push_str(&m),
            None if simple => out.push_str(&format!("{{{{{expr}}}}}")),
            None => {
                let i = match complex.iter().position(|c| c == expr) {
                    Some(i) => i,
                    None => {
                        complex.push(expr.to_string());
                        complex.len() - 1
                    }
                };
                out.push_str(&format!("{{{{postie_expr_{}}}}}", i + 1));
            }
        }
        rest = &tail[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_names_dynamics_and_literals() {
        let mut c = Converter::default();
        assert_eq!(
            c.text("{{base-url}}/users/{{id}}", "url"),
            "<<base_url>>/users/<<id>>"
        );
        assert_eq!(c.renames["base-url"], "base_url");
        assert_eq!(
            c.text("{{$guid}} {{$timestamp}}", "x"),
            "<<uuid()>> <<now('unix')>>"
        );
        assert_eq!(c.text("{{$randomEmail}}", "x"), "<<fake('randomEmail')>>");
        c.text("{{$randomNope}}", "body");
        assert_eq!(c.unknown_dynamic[0].0, "$randomNope");
        assert_eq!(
            c.text("a << b <% c {{ not closed", "x"),
            "a <<'<<'>> b <<'<%'>> c {{ not closed"
        );
        let mut complex = vec![];
        assert_eq!(
            to_postman("<<base_url>>/x/<<uuid()>>/<<a ~ b>>", &mut complex),
            "{{base_url}}/x/{{$guid}}/{{postie_expr_1}}"
        );
        assert_eq!(complex, vec!["a ~ b".to_string()]);
        assert_eq!(to_postman("a <<'<<'>> b", &mut complex), "a << b");
    }
}
