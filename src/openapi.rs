//! OpenAPI 3.0/3.1 and Swagger 2.0 documents: loading, `$ref`s, operations in one shape for
//! both versions, example values built from schemas, and values checked against schemas.
//!
//! `import openapi` turns a document into requests; `postie mock --spec` serves it. Both read it
//! through this module, so a spec means the same thing to each.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

/// How deep a schema is followed when building or checking a value.
pub const MAX_DEPTH: usize = 12;

/// The HTTP methods an operation may have.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A loaded document.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The document as parsed.
    pub root: Value,
    /// Swagger 2.0 (else OpenAPI 3.x).
    pub v2: bool,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// A `{name}` path segment.
    Path,
    /// The query string.
    Query,
    /// A header.
    Header,
    /// A cookie.
    Cookie,
    /// Swagger 2.0 form field.
    Form,
}

/// A parameter, its schema resolved one level.
#[derive(Debug, Clone)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Place.
    pub place: In,
    /// Required.
    pub required: bool,
    /// Schema (Swagger 2.0 parameters are their own schema).
    pub schema: Value,
    /// The parameter object (for its examples).
    pub raw: Value,
}

/// A request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Required.
    pub required: bool,
    /// Media type → (schema, media object for examples).
    pub content: Vec<(String, Value, Value)>,
}

/// One documented response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `200`, `201`, `4XX`, `default`.
    pub status: String,
    /// Media type → (schema, media object for examples).
    pub content: Vec<(String, Value, Value)>,
    /// Documented headers: name → schema.
    pub headers: Vec<(String, Value)>,
}

/// One operation, in one shape for both versions.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// Path template, e.g. `/contacts/{contact_id}`.
    pub path: String,
    /// `operationId`.
    pub id: Option<String>,
    /// Parameters (the path item's, overridden by the operation's).
    pub params: Vec<Param>,
    /// Body.
    pub body: Option<Body>,
    /// Responses in document order.
    pub responses: Vec<Response>,
    /// Security requirements: alternatives, each a list of scheme names (empty: anonymous).
    pub security: Vec<Vec<String>>,
    /// The scopes each alternative requires (OAuth2 / OpenID Connect schemes list them).
    pub scopes: Vec<Vec<String>>,
}

impl Doc {
    /// Reads a YAML or JSON document; errors carry `line:col` when the parser gives them.
    pub fn load(path: &Path) -> Result<Doc, (Option<(usize, usize)>, String)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| (None, format!("cannot read {}: {e}", path.display())))?;
        Doc::parse(
            &text,
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json")),
        )
    }

    /// Parses document text.
    pub fn parse(text: &str, json: bool) -> Result<Doc, (Option<(usize, usize)>, String)> {
        let root: Value = if json || text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| (Some((e.line(), e.column())), format!("not valid JSON: {e}")))?
        } else {
            crate::util::yaml_nesting(text).map_err(|(line, col, m)| (Some((line, col)), m))?;
            serde_yaml::from_str(text).map_err(|e| {
                (
                    e.location().map(|l| (l.line(), l.column())),
                    format!("not valid YAML: {e}"),
                )
            })?
        };
        let swagger = root.get("swagger").and_then(Value::as_str);
        let openapi = root.get("openapi").and_then(Value::as_str);
        let v2 = match (swagger, openapi) {
            (Some(v), _) if v.starts_with('2') => true,
            (_, Some(v)) if v.starts_with('3') => false,
            (Some(v), _) | (_, Some(v)) => {
                return Err((
                    None,
                    format!("version {v} is not supported (OpenAPI 3.0/3.1 and Swagger 2.0 are)"),
                ));
            }
            _ => {
                return Err((
                    None,
                    "not an OpenAPI or Swagger document: it has neither `openapi:` nor `swagger:` at the top".into(),
                ));
            }
        };
        if !root.get("paths").is_some_and(Value::is_object) {
            return Err((None, "the document has no `paths` object".into()));
        }
        Ok(Doc { root, v2 })
    }

    /// Follows `$ref`s inside the document; `None` for a missing or external one.
    pub fn resolve<'a>(&'a self, v: &'a Value) -> Option<&'a Value> {
        let mut cur = v;
        for _ in 0..32 {
            let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
                return Some(cur);
            };
            let pointer = r.strip_prefix('#')?;
            cur = self
                .root
                .pointer(&pointer.replace("~1", "/").replace("~0", "~"))?;
        }
        None
    }

    /// The base path every operation's path is under (`/v3`; Swagger `basePath`, else the first
    /// server's path).
    pub fn base_path(&self) -> String {
        if self.v2 {
            return self
                .root
                .get("basePath")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string();
        }
        let url = self
            .root
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .unwrap_or("");
        let path = match url.find("://") {
            Some(i) => url[i + 3..]
                .find('/')
                .map(|j| &url[i + 3 + j..])
                .unwrap_or(""),
            None => url,
        };
        path.trim_end_matches('/').to_string()
    }

    /// The security schemes by name.
    pub fn security_schemes(&self) -> Map<String, Value> {
        let s = if self.v2 {
            self.root.get("securityDefinitions")
        } else {
            self.root.pointer("/components/securitySchemes")
        };
        s.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), self.resolve(v).cloned().unwrap_or(Value::Null)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut out = Vec::new();
        let global_security = self.root.get("security");
        for (path, item) in self.root["paths"].as_object().into_iter().flatten() {
            let Some(item) = self.resolve(item) else {
                continue;
            };
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let mut params: Vec<Param> = Vec::new();
                let mut body = None;
                for list in [item.get("parameters"), op.get("parameters")] {
                    for p in list.and_then(Value::as_array).into_iter().flatten() {
                        let Some(p) = self.resolve(p) else { continue };
                        let name = p
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let place = match p.get("in").and_then(Value::as_str) {
                            Some("path") => In::Path,
                            Some("query") => In::Query,
                            Some("header") => In::Header,
                            Some("cookie") => In::Cookie,
                            Some("formData") => In::Form,
                            Some("body") => {
                                let schema = p.get("schema").cloned().unwrap_or(Value::Null);
                                let consumes = op
                                    .get("consumes")
                                    .or_else(|| self.root.get("consumes"))
                                    .and_then(Value::as_array)
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(Value::as_str)
                                            .map(String::from)
                                            .collect::<Vec<_>>()
                                    })
                                    .filter(|a| !a.is_empty())
                                    .unwrap_or_else(|| vec!["application/json".into()]);
                                body = Some(Body {
                                    required: p
                                        .get("required")
                                        .and_then(Value::as_bool)
                                        .unwrap_or(false),
                                    content: consumes
                                        .into_iter()
                                        .map(|c| (c, schema.clone(), p.clone()))
                                        .collect(),
                                });
                                continue;
                            }
                            _ => continue,
                        };
                        let schema = if self.v2 {
                            p.clone()
                        } else {
                            p.get("schema").cloned().unwrap_or(json!({}))
                        };
                        params.retain(|x| !(x.name == name && x.place == place));
                        params.push(Param {
                            required: p
                                .get("required")
                                .and_then(Value::as_bool)
                                .unwrap_or(place == In::Path),
                            name,
                            place,
                            schema,
                            raw: p.clone(),
                        });
                    }
                }
                if let Some(rb) = op.get("requestBody").and_then(|r| self.resolve(r)) {
                    body = Some(Body {
                        required: rb.get("required").and_then(Value::as_bool).unwrap_or(false),
                        content: rb
                            .get("content")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                            .map(|(k, m)| {
                                (
                                    k.clone(),
                                    m.get("schema").cloned().unwrap_or(json!({})),
                                    m.clone(),
                                )
                            })
                            .collect(),
                    });
                }
                // Swagger 2 form fields make a form body.
                if self.v2 && params.iter().any(|p| p.place == In::Form) {
                    let mut props = Map::new();
                    let mut required = Vec::new();
                    for p in params.iter().filter(|p| p.place == In::Form) {
                        props.insert(p.name.clone(), p.schema.clone());
                        if p.required {
                            required.push(json!(p.name));
                        }
                    }
                    let multipart = params.iter().any(|p| {
                        p.place == In::Form
                            && p.schema.get("type").and_then(Value::as_str) == Some("file")
                    });
                    let ct = if multipart {
                        "multipart/form-data"
                    } else {
                        "application/x-www-form-urlencoded"
                    };
                    body = Some(Body {
                        required: !required.is_empty(),
                        content: vec![(
                            ct.into(),
                            json!({"type": "object", "properties": props, "required": required}),
                            Value::Null,
                        )],
                    });
                    params.retain(|p| p.place != In::Form);
                }
                let produces: Vec<String> = op
                    .get("produces")
                    .or_else(|| self.root.get("produces"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .filter(|a: &Vec<String>| !a.is_empty())
                    .unwrap_or_else(|| vec!["application/json".into()]);
                let mut responses = Vec::new();
                for (status, r) in op
                    .get("responses")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let Some(r) = self.resolve(r) else { continue };
                    let content = if self.v2 {
                        match r.get("schema") {
                            Some(s) => produces
                                .iter()
                                .map(|ct| {
                                    let mut media = json!({});
                                    if let Some(ex) = r.get("examples").and_then(|e| e.get(ct)) {
                                        media["example"] = ex.clone();
                                    }
                                    (ct.clone(), s.clone(), media)
                                })
                                .collect(),
                            None => vec![],
                        }
                    } else {
                        r.get("content")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                            .map(|(k, m)| {
                                (
                                    k.clone(),
                                    m.get("schema").cloned().unwrap_or(json!({})),
                                    m.clone(),
                                )
                            })
                            .collect()
                    };
                    let headers = r
                        .get("headers")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .map(|(k, h)| {
                            let h = self.resolve(h).cloned().unwrap_or(Value::Null);
                            let s = if self.v2 {
                                h
                            } else {
                                h.get("schema").cloned().unwrap_or(json!({}))
                            };
                            (k.clone(), s)
                        })
                        .collect();
                    responses.push(Response {
                        status: status.clone(),
                        content,
                        headers,
                    });
                }
                let alternatives: Vec<&Map<String, Value>> = op
                    .get("security")
                    .or(global_security)
                    .and_then(Value::as_array)
                    .map(|alts| alts.iter().filter_map(Value::as_object).collect())
                    .unwrap_or_default();
                let security = alternatives
                    .iter()
                    .map(|m| m.keys().cloned().collect())
                    .collect();
                let scopes = alternatives
                    .iter()
                    .map(|m| {
                        m.values()
                            .filter_map(Value::as_array)
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .collect();
                out.push(Operation {
                    method: m.to_uppercase(),
                    path: path.clone(),
                    id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(String::from),
                    params,
                    body,
                    responses,
                    security,
                    scopes,
                });
            }
        }
        out
    }
}

/// A small deterministic random source (xorshift): the same seed gives the same values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.next_u64() % words.len() as u64) as usize]
    }
}

const WORDS: [&str; 12] = [
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "indigo", "juniper",
    "kelvin", "lumen",
];

/// How values are made up when a schema has no example.
#[derive(Debug, Clone, Copy)]
pub enum Fill<'r> {
    /// Placeholders: `"string"`, `0`, `false` (for a collection a person edits).
    Plain,
    /// Varied, deterministic values from a seed (for a mock's responses).
    Random(&'r std::cell::RefCell<Rng>),
}

/// A value a schema accepts: its example, default or first enum value, else built from its type
/// (objects from their properties, read-only ones skipped unless `responses`).
pub fn synthesise(doc: &Doc, schema: &Value, fill: Fill<'_>, responses: bool) -> Value {
    let mut stack = Vec::new();
    synth(doc, schema, fill, responses, 0, &mut stack)
}

fn synth(
    doc: &Doc,
    schema: &Value,
    fill: Fill<'_>,
    responses: bool,
    depth: usize,
    stack: &mut Vec<String>,
) -> Value {
    let r = schema.get("$ref").and_then(Value::as_str).map(String::from);
    if let Some(r) = &r {
        if stack.contains(r) || depth > MAX_DEPTH {
            return Value::Null;
        }
        stack.push(r.clone());
    }
    let s = doc.resolve(schema).unwrap_or(&Value::Null);
    let v = synth_resolved(doc, s, fill, responses, depth, stack);
    if r.is_some() {
        stack.pop();
    }
    v
}

fn synth_resolved(
    doc: &Doc,
    s: &Value,
    fill: Fill<'_>,
    responses: bool,
    depth: usize,
    stack: &mut Vec<String>,
) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    // A schema's own example, unless it contradicts the schema (vendors' documents have such).
    let fits = |e: &Value| validate_response(doc, s, e, "example").is_empty();
    if let Some(e) = s.get("example").filter(|e| fits(e)) {
        return e.clone();
    }
    if let Some(Value::Array(ex)) = s.get("examples")
        && let Some(first) = ex.first().filter(|e| fits(e))
    {
        return first.clone();
    }
    if let Some(d) = s.get("default").filter(|d| fits(d)) {
        return d.clone();
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && let Some(first) = e.iter().find(|v| !v.is_null())
    {
        return first.clone();
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        let mut out = Map::new();
        for part in all {
            if let Value::Object(m) = synth(doc, part, fill, responses, depth + 1, stack) {
                out.extend(m);
            }
        }
        if !out.is_empty() || s.get("properties").is_none() {
            return Value::Object(out);
        }
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = s.get(k)
            && let Some(first) = alts.iter().find(|a| {
                doc.resolve(a)
                    .and_then(|x| x.get("type"))
                    .and_then(Value::as_str)
                    != Some("null")
            })
        {
            return synth(doc, first, fill, responses, depth + 1, stack);
        }
    }
    let ty = type_of(s);
    match ty.as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    let pr = doc.resolve(p).unwrap_or(&Value::Null);
                    let skip = if responses { "writeOnly" } else { "readOnly" };
                    if pr.get(skip).and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    let v = synth(doc, p, fill, responses, depth + 1, stack);
                    if !v.is_null() {
                        out.insert(k.clone(), v);
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = s.get("items").unwrap_or(&Value::Null);
            let v = synth(doc, item, fill, responses, depth + 1, stack);
            let min = s
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(3) as usize;
            if v.is_null() {
                json!([])
            } else {
                Value::Array(vec![v; min.max(1)])
            }
        }
        "string" => Value::String(string_for(s, fill)),
        "integer" => {
            let lo = s.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let hi = s
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(lo.saturating_add(1000));
            match fill {
                Fill::Plain => json!(lo),
                Fill::Random(r) if hi > lo => {
                    json!(lo + (r.borrow_mut().next_u64() % (hi - lo + 1) as u64) as i64)
                }
                Fill::Random(_) => json!(lo),
            }
        }
        "number" => {
            let lo = s.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            match fill {
                Fill::Plain => json!(lo),
                Fill::Random(r) => json!(lo + (r.borrow_mut().next_u64() % 10_000) as f64 / 100.0),
            }
        }
        "boolean" => match fill {
            Fill::Plain => json!(false),
            Fill::Random(r) => json!(r.borrow_mut().next_u64() % 2 == 0),
        },
        _ => Value::Null,
    }
}

/// The schema of an object's property, looking through `allOf`, `oneOf` and `anyOf` parts.
pub fn property_schema(doc: &Doc, schema: &Value, name: &str) -> Option<Value> {
    fn find(doc: &Doc, schema: &Value, name: &str, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let s = doc.resolve(schema)?;
        if let Some(p) = s.get("properties").and_then(|p| p.get(name)) {
            return Some(p.clone());
        }
        ["allOf", "oneOf", "anyOf"].iter().find_map(|k| {
            s.get(*k)?
                .as_array()?
                .iter()
                .find_map(|part| find(doc, part, name, depth + 1))
        })
    }
    find(doc, schema, name, 0)
}

/// The schema's type (OpenAPI 3.1 lists: the first that is not `null`), inferred from its
/// keywords when absent.
pub fn type_of(s: &Value) -> String {
    match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ if s.get("properties").is_some() => "object".into(),
        _ if s.get("items").is_some() => "array".into(),
        _ => String::new(),
    }
}

fn string_for(s: &Value, fill: Fill<'_>) -> String {
    let format = s.get("format").and_then(Value::as_str).unwrap_or("");
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = s
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let (n, word) = match fill {
        Fill::Plain => (0u64, "string"),
        Fill::Random(r) => {
            let mut r = r.borrow_mut();
            let n = r.next_u64();
            (n, r.pick(&WORDS))
        }
    };
    let plain = matches!(fill, Fill::Plain);
    let mut out = match format {
        "email" => {
            if plain {
                "user@example.com".to_string()
            } else {
                format!("{word}.{}@example.com", n % 1000)
            }
        }
        "date-time" => {
            if plain {
                "2026-01-01T00:00:00Z".to_string()
            } else {
                crate::util::rfc3339(1_767_225_600 + (n % 31_536_000) as i64)
            }
        }
        "date" => {
            if plain {
                "2026-01-01".to_string()
            } else {
                crate::util::rfc3339(1_767_225_600 + (n % 31_536_000) as i64)[..10].to_string()
            }
        }
        "uuid" => {
            if plain {
                "00000000-0000-4000-8000-000000000000".to_string()
            } else {
                let b = n.to_le_bytes();
                let c = n.rotate_left(29).to_le_bytes();
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&b);
                bytes[8..].copy_from_slice(&c);
                bytes[6] = (bytes[6] & 0x0f) | 0x40;
                bytes[8] = (bytes[8] & 0x3f) | 0x80;
                uuid::Uuid::from_bytes(bytes).to_string()
            }
        }
        "uri" | "url" => {
            if plain {
                "https://example.com".to_string()
            } else {
                format!("https://example.com/{word}")
            }
        }
        "ipv4" => "192.0.2.1".to_string(),
        "binary" | "byte" => String::new(),
        _ => {
            if plain {
                "string".to_string()
            } else {
                format!("{word}-{}", n % 10_000)
            }
        }
    };
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && let Ok(re) = regex::Regex::new(p)
        && !re.is_match(&out)
    {
        // A value for a pattern is beyond this module; a placeholder the pattern accepts when
        // the simplest candidates do.
        for candidate in ["a", "A", "1", "a1", "abc", "ABC", "123"] {
            if re.is_match(candidate) {
                out = candidate.to_string();
                break;
            }
        }
    }
    while out.chars().count() < min {
        out.push('x');
    }
    if let Some(m) = max
        && out.chars().count() > m
    {
        out = out.chars().take(m).collect();
    }
    out
}

/// Checks a request's value against a schema; returns every problem, each with its place
/// (`body.email`). Read-only properties are neither required nor checked.
pub fn validate(doc: &Doc, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(doc, schema, v, at, 0, false, &mut out);
    out
}

/// [`validate`] for a response: write-only properties are not required.
pub fn validate_response(doc: &Doc, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(doc, schema, v, at, 0, true, &mut out);
    out
}

fn check(
    doc: &Doc,
    schema: &Value,
    v: &Value,
    at: &str,
    depth: usize,
    response: bool,
    out: &mut Vec<String>,
) {
    if depth > MAX_DEPTH || out.len() >= 20 {
        return;
    }
    let Some(s) = doc.resolve(schema) else { return };
    if v.is_null()
        && (s.get("nullable").and_then(Value::as_bool) == Some(true)
            || matches!(s.get("type"), Some(Value::Array(t)) if t.iter().any(|x| x == "null")))
    {
        return;
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(doc, part, v, at, depth + 1, response, out);
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(k).and_then(Value::as_array) {
            let ok = alts.iter().any(|a| {
                let mut e = Vec::new();
                check(doc, a, v, at, depth + 1, response, &mut e);
                e.is_empty()
            });
            if !ok {
                out.push(format!("{at}: matches none of the {k} alternatives"));
            }
        }
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        out.push(format!(
            "{at}: {} is not one of {}",
            short(v),
            e.iter().map(short).collect::<Vec<_>>().join(", ")
        ));
        return;
    }
    let ty = type_of(s);
    let kind_ok = match ty.as_str() {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    };
    if !kind_ok {
        out.push(format!(
            "{at}: expected {}, got {}",
            article(&ty),
            crate::util::json_kind(v)
        ));
        return;
    }
    match v {
        Value::Object(m) => {
            let declared = s.get("properties").and_then(Value::as_object);
            // A required read-only property is required in responses only (OpenAPI 3.0
            // §4.7.25.1), a required write-only one in requests only.
            let flagged = |name: &str| {
                let f = if response { "writeOnly" } else { "readOnly" };
                declared
                    .and_then(|p| p.get(name))
                    .and_then(|p| doc.resolve(p))
                    .and_then(|p| p.get(f))
                    .and_then(Value::as_bool)
                    == Some(true)
            };
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = r.as_str()
                    && !m.contains_key(r)
                    && !flagged(r)
                {
                    out.push(format!("{at}.{r}: is required"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, x) in m {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => {
                        let ps_r = doc.resolve(ps).unwrap_or(&Value::Null);
                        if !response && ps_r.get("readOnly").and_then(Value::as_bool) == Some(true)
                        {
                            continue;
                        }
                        check(doc, ps, x, &format!("{at}.{k}"), depth + 1, response, out)
                    }
                    None => {
                        if s.get("additionalProperties") == Some(&Value::Bool(false)) {
                            out.push(format!("{at}.{k}: is not a known field"));
                        } else if let Some(ap) =
                            s.get("additionalProperties").filter(|a| a.is_object())
                        {
                            check(doc, ap, x, &format!("{at}.{k}"), depth + 1, response, out);
                        }
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (a.len() as u64) < min
            {
                out.push(format!(
                    "{at}: has {} items, at least {min} needed",
                    a.len()
                ));
            }
            // `maxItems: 0` is what some generators write for "no limit" (Constant Contact's
            // document says "up to 50" beside it): no API means a list that must stay empty.
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64).filter(|m| *m > 0)
                && (a.len() as u64) > max
            {
                out.push(format!(
                    "{at}: has {} items, at most {max} allowed",
                    a.len()
                ));
            }
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate().take(1000) {
                    check(
                        doc,
                        items,
                        x,
                        &format!("{at}[{i}]"),
                        depth + 1,
                        response,
                        out,
                    );
                }
            }
        }
        Value::String(t) => {
            let n = t.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                out.push(format!("{at}: shorter than {min} characters"));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                out.push(format!("{at}: longer than {max} characters"));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(t)
            {
                out.push(format!("{at}: does not match the pattern {p}"));
            }
            if let Some(f) = s.get("format").and_then(Value::as_str)
                && !format_ok(f, t)
            {
                out.push(format!("{at}: {} is not a valid {f}", short(v)));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl("exclusiveMinimum") && x == min))
            {
                out.push(format!("{at}: below the minimum {min}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl("exclusiveMaximum") && x == max))
            {
                out.push(format!("{at}: above the maximum {max}"));
            }
        }
        _ => {}
    }
}

/// Whether a string has the format (the ones clients rely on; others pass).
pub fn format_ok(format: &str, t: &str) -> bool {
    match format {
        "email" => {
            let mut parts = t.splitn(2, '@');
            let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !t.contains(' ')
        }
        "uuid" => uuid::Uuid::parse_str(t).is_ok(),
        "date-time" => {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
        }
        "date" => {
            let f = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(t, &f).is_ok()
        }
        "uri" | "url" => url::Url::parse(t).is_ok(),
        "ipv4" => t.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => t.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

/// A parameter's text as the JSON value its schema asks for (`"5"` → `5` for an integer).
pub fn coerce(doc: &Doc, schema: &Value, text: &str) -> Value {
    let s = doc.resolve(schema).unwrap_or(&Value::Null);
    match type_of(s).as_str() {
        "integer" => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.into())),
        "number" => text
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .unwrap_or_else(|| Value::String(text.into())),
        "boolean" => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        "array" => {
            let items = s.get("items").cloned().unwrap_or(json!({}));
            Value::Array(text.split(',').map(|p| coerce(doc, &items, p)).collect())
        }
        _ => Value::String(text.into()),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        "" => "a value".into(),
        t => format!("a {t}"),
    }
}

/// Every example an operation's response or media object names: `examples: {name: {value}}`.
pub fn named_examples(doc: &Doc, media: &Value) -> BTreeMap<String, Value> {
    media
        .get("examples")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, e)| {
            let e = doc.resolve(e)?;
            Some((
                k.clone(),
                e.get("value").cloned().unwrap_or_else(|| e.clone()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_synthesis_and_validation() {
        let doc = Doc::parse(
            r##"{"openapi": "3.1.0", "paths": {"/things/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "put": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}}}},
               "components": {"schemas": {"Thing": {"type": "object", "required": ["email"], "properties": {
                   "email": {"type": "string", "format": "email"}, "kind": {"enum": ["a", "b"]},
                   "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                   "note": {"type": ["string", "null"]}, "id": {"type": "integer", "readOnly": true}}}}}}"##,
            true,
        )
        .unwrap();
        let ops = doc.operations();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].params[0].name, "id");
        let schema = ops[0].body.as_ref().unwrap().content[0].1.clone();
        let ex = synthesise(&doc, &schema, Fill::Plain, false);
        assert_eq!(validate(&doc, &schema, &ex, "body"), Vec::<String>::new());
        assert!(ex.get("id").is_none(), "read-only fields are not sent");
        let rng = std::cell::RefCell::new(Rng::new(7));
        let a = synthesise(&doc, &schema, Fill::Random(&rng), true);
        assert_eq!(validate(&doc, &schema, &a, "body"), Vec::<String>::new());
        let bad = json!({"email": "nope", "kind": "c", "tags": ["x", "y", "z"], "note": null});
        let errs = validate(&doc, &schema, &bad, "body");
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("body.email: \"nope\" is not a valid email"),
            "{errs:?}"
        );
        assert_eq!(
            validate(&doc, &schema, &json!({}), "body"),
            vec!["body.email: is required".to_string()]
        );
    }
}
