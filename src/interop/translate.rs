//! Test scripts that say something postie can say declaratively become `capture:` and `assert:`
//! entries: status checks, response time limits, `set(name, json.path)`, equality of a JSON
//! value, a property or header being there — in `pm.*` and in the legacy `tests[...]` style.
//!
//! A script is translated only when every statement in it is one of these; otherwise it stays
//! JavaScript and runs in the sandbox. A translated `pm.test` keeps its name.

use serde_json::{Map, Value, json};

/// What a script became.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// `capture:` entries.
    pub captures: Map<String, Value>,
    /// `assert:` entries.
    pub asserts: Vec<Value>,
}

/// The declarative form of a test script, when every statement has one.
pub fn test_script(code: &str) -> Option<Translated> {
    let code = strip_comments(code)?;
    let statements = split_statements(&code)?;
    let mut out = Translated::default();
    let mut aliases: Vec<String> = Vec::new();
    for s in statements {
        let s = normalise(&s);
        if s.is_empty() {
            continue;
        }
        if let Some(c) = ALIAS.captures(&s) {
            aliases.push(c[1].to_string());
            continue;
        }
        if let Some(c) = SET.captures(&s) {
            let name = unquote(&c[1])?;
            if !super::names::is_ident(&name) {
                return None;
            }
            let path = json_path(&c[2], &aliases)?;
            out.captures.insert(name, Value::String(path));
            continue;
        }
        if let Some(c) = PM_TEST.captures(&s) {
            let name = unquote(&c[1])?;
            let body = c.get(2).or(c.get(3)).or(c.get(4))?.as_str();
            let body = body.trim().trim_end_matches(';').trim();
            // One assertion per test, so the test keeps its one outcome.
            if body.contains(';') {
                return None;
            }
            let mut a = assertion(body, &aliases)?;
            a.shift_insert(0, "name".into(), Value::String(name));
            out.asserts.push(Value::Object(a.into_iter().collect()));
            continue;
        }
        if let Some(c) = LEGACY_TEST.captures(&s) {
            let name = unquote(&c[1])?;
            let mut a = legacy_assertion(c[2].trim())?;
            a.shift_insert(0, "name".into(), Value::String(name));
            out.asserts.push(Value::Object(a.into_iter().collect()));
            continue;
        }
        return None;
    }
    (!out.captures.is_empty() || !out.asserts.is_empty()).then_some(out)
}

type Fields = indexmap::IndexMap<String, Value>;

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// One `pm.*` assertion statement.
fn assertion(s: &str, aliases: &[String]) -> Option<Fields> {
    if let Some(c) = STATUS.captures(s) {
        return Some(fields(&[("status", json!(c[1].parse::<u16>().ok()?))]));
    }
    if s == "pm.response.to.be.ok" {
        return Some(fields(&[("status", json!(200))]));
    }
    if let Some(c) = CODE_EQUALS.captures(s) {
        return Some(fields(&[("status", json!(c[1].parse::<u16>().ok()?))]));
    }
    if let Some(c) = CODE_ONE_OF.captures(s) {
        let codes: Option<Vec<u16>> = c[1].split(',').map(|x| x.trim().parse().ok()).collect();
        return Some(fields(&[("status", json!(codes?))]));
    }
    if let Some(c) = TIME_BELOW.captures(s) {
        return Some(fields(&[("max_ms", json!(c[1].parse::<u64>().ok()?))]));
    }
    if let Some(c) = HAS_HEADER.captures(s) {
        return Some(fields(&[
            ("header", json!(unquote(&c[1])?)),
            ("exists", json!(true)),
        ]));
    }
    if let Some(c) = EXPECT_EQUALS.captures(s) {
        let path = json_path(&c[1], aliases)?;
        let value = literal(&c[3])?;
        if c[2].starts_with("equal") || c[2] == *"eq" {
            // `equal` is `===`: only a primitive compares the same way.
            if value.is_object() || value.is_array() {
                return None;
            }
        }
        return Some(fields(&[("jsonpath", json!(path)), ("equals", value)]));
    }
    if let Some(c) = HAS_PROPERTY.captures(s) {
        let base = json_path(&c[1], aliases)?;
        let prop = unquote(&c[2])?;
        let path = if prop
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            format!("{base}.{prop}")
        } else {
            format!("{base}['{}']", prop.replace('\'', "\\'"))
        };
        return Some(fields(&[
            ("jsonpath", json!(path)),
            ("exists", json!(true)),
        ]));
    }
    None
}

/// The right side of `tests["..."] = …`.
fn legacy_assertion(s: &str) -> Option<Fields> {
    if let Some(c) = LEGACY_CODE.captures(s) {
        return Some(fields(&[("status", json!(c[1].parse::<u16>().ok()?))]));
    }
    if let Some(c) = LEGACY_TIME.captures(s) {
        return Some(fields(&[("max_ms", json!(c[1].parse::<u64>().ok()?))]));
    }
    None
}

/// `data.user.token`, `pm.response.json().items[0].id` → `$.user.token`, `$.items[0].id`.
fn json_path(expr: &str, aliases: &[String]) -> Option<String> {
    let expr = expr.trim();
    let rest = if let Some(r) = expr.strip_prefix("pm.response.json()") {
        r
    } else if let Some(r) = expr.strip_prefix("JSON.parse(responseBody)") {
        r
    } else {
        let alias = aliases.iter().find(|a| {
            expr == a.as_str()
                || expr.starts_with(&format!("{a}."))
                || expr.starts_with(&format!("{a}["))
        })?;
        &expr[alias.len()..]
    };
    if !PATH_TAIL.is_match(rest) {
        return None;
    }
    // `["a-b"]` → `['a-b']`.
    let rest = rest.replace('"', "'");
    Some(format!("${rest}"))
}

/// A JavaScript literal as JSON: numbers, quoted strings, booleans, null, and JSON-shaped
/// arrays and objects.
fn literal(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Some(u) = unquote(s) {
        return Some(Value::String(u));
    }
    let v: Value = serde_json::from_str(s).ok()?;
    Some(v)
}

/// A quoted JavaScript string's value.
fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let q = s.chars().next()?;
    if !matches!(q, '"' | '\'' | '`') || !s.ends_with(q) || s.len() < 2 {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' && inner.contains("${") {
        return None;
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == q {
            return None;
        }
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Whitespace collapsed outside strings.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut space = false;
    for c in s.chars() {
        if let Some(q) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            let prev = out.chars().last().unwrap_or(' ');
            let joins = |ch: char| ch.is_alphanumeric() || ch == '_' || ch == '$';
            // One space where it separates words or sits around an operator or brace.
            if (joins(prev) && joins(c))
                || matches!(prev, ',' | '=' | '>' | '<' | '&' | '|')
                || matches!(c, '=' | '>' | '<' | '&' | '|' | '{' | '}')
            {
                out.push(' ');
            }
        }
        space = false;
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        }
        out.push(c);
    }
    out.trim().trim_end_matches(';').trim().to_string()
}

/// The code without comments (`None` when it cannot tell: an unterminated string or comment).
fn strip_comments(code: &str) -> Option<String> {
    let mut out = String::with_capacity(code.len());
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            } else if c == '\n' && q != '`' {
                return None;
            }
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            if i + 1 >= chars.len() {
                return None;
            }
            i += 2;
            continue;
        }
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        }
        out.push(c);
        i += 1;
    }
    quote.is_none().then_some(out)
}

/// Top-level statements: split at `;` and at line ends where the brackets are balanced and the
/// next line does not continue the expression.
fn split_statements(code: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth: i32 = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let chars: Vec<char> = code.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                cur.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
                cur.push(c);
            }
            ';' if depth == 0 => out.push(std::mem::take(&mut cur)),
            '\n' if depth == 0 => {
                let next = chars[i + 1..].iter().find(|ch| !ch.is_whitespace());
                let continues = matches!(next, Some('.' | '?' | ':' | '+' | '&' | '|'))
                    || cur
                        .trim_end()
                        .ends_with(['=', '+', '&', '|', ',', '(', '?', ':']);
                if continues {
                    cur.push(c);
                } else {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if depth != 0 || quote.is_some() {
        return None;
    }
    out.push(cur);
    Some(out)
}

macro_rules! re {
    ($name:ident, $re:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($re).expect("valid regex"));
    };
}

const STR: &str = r#"("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"#;

re!(
    ALIAS,
    r"^(?:var|let|const) ([A-Za-z_$][\w$]*) ?= ?(?:pm\.response\.json\(\)|JSON\.parse\(responseBody\))$"
);
re!(
    PATH_TAIL,
    r#"^(?:\.[A-Za-z_$][\w$]*|\[\d+\]|\["[^"\]]+"\]|\['[^'\]]+'\])*$"#
);
static SET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!(
        r"^(?:pm\.environment\.set|postman\.setEnvironmentVariable)\({STR}, ?(.+)\)$"
    ))
    .expect("valid regex")
});
static PM_TEST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!(
        r"^pm\.test\({STR}, ?(?:function ?\(\) ?\{{(.*)\}}|\(\) ?=> ?\{{(.*)\}}|\(\) ?=> ?(.*))\)$"
    ))
    .expect("valid regex")
});
static LEGACY_TEST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!(r"^tests\[{STR}\] ?= ?(.+)$")).expect("valid regex")
});
re!(
    STATUS,
    r"^pm\.response\.to\.(?:have|be)\.status\((\d{3})\)$"
);
re!(
    CODE_EQUALS,
    r"^pm\.expect\(pm\.response\.code\)\.to\.(?:be\.)?(?:equal|eql|eq|equals)\((\d{3})\)$"
);
re!(
    CODE_ONE_OF,
    r"^pm\.expect\(pm\.response\.code\)\.to\.be\.oneOf\(\[([\d, ]+)\]\)$"
);
re!(
    TIME_BELOW,
    r"^pm\.expect\(pm\.response\.responseTime\)\.to\.be\.(?:below|lessThan)\((\d+)\)$"
);
re!(LEGACY_CODE, r"^responseCode\.code ?={2,3} ?(\d{3})$");
re!(LEGACY_TIME, r"^responseTime ?< ?(\d+)$");
static HAS_HEADER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!(r"^pm\.response\.to\.have\.header\({STR}\)$")).expect("valid regex")
});
static EXPECT_EQUALS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"^pm\.expect\((.+?)\)\.to\.(?:be\.)?(equal|eql|eq|equals|deep\.equal)\((.+)\)$",
    )
    .expect("valid regex")
});
static HAS_PROPERTY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!(
        r"^pm\.expect\((.+?)\)\.to\.have\.property\({STR}\)$"
    ))
    .expect("valid regex")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_idioms_translate() {
        let t = test_script(
            r#"// check it
pm.test("Status code is 200", function () {
    pm.response.to.have.status(200);
});
var jsonData = pm.response.json();
pm.environment.set("token", jsonData.user.token);
pm.test("name", () => pm.expect(jsonData.items[0].name).to.eql("ann"));
pm.test("has id", () => { pm.expect(jsonData).to.have.property('id'); });
tests["Status code is 201"] = responseCode.code === 201;
postman.setEnvironmentVariable("slug", JSON.parse(responseBody).article.slug);
"#,
        )
        .unwrap();
        assert_eq!(t.captures["token"], "$.user.token");
        assert_eq!(t.captures["slug"], "$.article.slug");
        assert_eq!(
            t.asserts,
            vec![
                json!({"name": "Status code is 200", "status": 200}),
                json!({"name": "name", "jsonpath": "$.items[0].name", "equals": "ann"}),
                json!({"name": "has id", "jsonpath": "$.id", "exists": true}),
                json!({"name": "Status code is 201", "status": 201}),
            ]
        );
    }

    #[test]
    fn anything_else_stays_javascript() {
        for code in [
            "console.log(pm.response.json())",
            "pm.test('two', () => { pm.response.to.have.status(200); pm.expect(1).to.equal(1); });",
            "if (responseCode.code === 200) { pm.environment.set('a', 1) }",
            "var d = pm.response.json(); pm.environment.set('a', d.items.map(x => x.id));",
            "pm.test('a', () => pm.expect(obj.x).to.equal(1))",
            "var s = 'unterminated",
        ] {
            assert_eq!(test_script(code), None, "{code}");
        }
    }
}
