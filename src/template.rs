//! Templates: minijinja with `<< >>` expressions, `<% %>` blocks and `<# #>` comments.
//!
//! Undefined variables are errors (strict mode), reported by name so the runner can say which
//! step would have produced them — before anything is sent. No HTTP and no YAML here.

use std::collections::BTreeSet;

use base64::Engine as _;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value as MjValue;
use minijinja::{Environment, Error as MjError, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// A template failure: syntax, an undefined variable, or an evaluation error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// The undefined variable path (e.g. `token.body.access_token`), when that is the cause.
    pub undefined: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// A template context: the JSON scope, converted once into the engine's own value so several
/// templates of one request render without converting it again.
pub struct Ctx<'a> {
    json: &'a Value,
    mj: std::sync::OnceLock<MjValue>,
}

impl<'a> Ctx<'a> {
    /// Prepares a context (converted for the engine only when a template needs it).
    pub fn new(json: &'a Value) -> Ctx<'a> {
        Ctx {
            json,
            mj: std::sync::OnceLock::new(),
        }
    }

    fn mj(&self) -> &MjValue {
        self.mj.get_or_init(|| MjValue::from_serialize(self.json))
    }
}

/// The value at a dotted path (`token.body.access_token`) in a context.
fn lookup<'v>(ctx: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(ctx, |v, seg| v.get(seg))
}

/// If `expr` is a plain variable path (`a`, `a.b.c`), that path.
fn simple_path(expr: &str) -> Option<&str> {
    let e = expr.trim();
    let ok = !e.is_empty()
        && e.split('.').all(|seg| {
            let mut cs = seg.chars();
            matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    ok.then_some(e)
}

/// Renders a template made only of text and `<< plain.path >>` whose values are strings, numbers
/// or booleans — what most request strings are — without the engine. None means "use the
/// engine" (anything else, or a missing value, whose error the engine explains).
fn render_simple(src: &str, ctx: &Value) -> Option<String> {
    if src.contains("<%") || src.contains("<#") {
        return None;
    }
    let mut out = String::with_capacity(src.len() + 32);
    let mut rest = src;
    while let Some(i) = rest.find("<<") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find(">>")?;
        let path = simple_path(&after[..end])?;
        match lookup(ctx, path)? {
            Value::String(s) => out.push_str(s),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            _ => return None,
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether any string inside a JSON value is a template.
pub fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

/// The template engine, configured once.
pub struct Templates {
    env: Environment<'static>,
    /// Whether a filter, test or function name exists (probed once per name).
    known: std::sync::Mutex<std::collections::HashMap<(Callable, String), bool>>,
    /// Analyses by source: `validate` analyses every string once, and the runner reuses them.
    analysed: std::sync::Mutex<AnalysisCache>,
}

type AnalysisCache =
    std::collections::HashMap<(String, bool), Result<BTreeSet<String>, TemplateError>>;

/// What a name in an expression is called as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Callable {
    /// `x | name`
    Filter,
    /// `x is name`
    Test,
    /// `name(...)`
    Function,
}

impl std::fmt::Display for Callable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Callable::Filter => "filter",
            Callable::Test => "test",
            Callable::Function => "function",
        })
    }
}

/// postie's own filters and functions, and the common built-in ones, for "did you mean".
pub const KNOWN_CALLABLES: &[&str] = &[
    "base64",
    "b64decode",
    "pkce_challenge",
    "jwt_claims",
    "append",
    "merge",
    "uuid",
    "nonce",
    "random_state",
    "now",
    "urlencode",
    "tojson",
    "default",
    "length",
    "lower",
    "upper",
    "trim",
    "replace",
    "join",
    "first",
    "last",
    "list",
    "int",
    "float",
    "string",
    "round",
    "sort",
    "unique",
    "map",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "items",
    "dictsort",
    "title",
    "capitalize",
    "split",
    "lines",
    "abs",
    "bool",
    "count",
    "min",
    "max",
    "sum",
    "reverse",
    "batch",
    "slice",
    "indent",
    "range",
    "dict",
    "namespace",
    "defined",
    "undefined",
    "none",
    "number",
    "mapping",
    "sequence",
    "startingwith",
    "endingwith",
];

/// Filters, tests and functions an expression calls, in order of appearance.
pub fn called_names(src: &str, is_condition: bool) -> Vec<(Callable, String)> {
    let mut regions: Vec<&str> = Vec::new();
    if is_condition || sole_expression(src).is_some() {
        regions.push(sole_expression(src).unwrap_or(src));
    } else {
        let mut rest = src;
        loop {
            let next = [("<<", ">>"), ("<%", "%>")]
                .iter()
                .filter_map(|(o, c)| rest.find(o).map(|i| (i, *o, *c)))
                .min_by_key(|(i, _, _)| *i);
            let Some((i, open, close)) = next else { break };
            let after = &rest[i + open.len()..];
            let end = after.find(close).unwrap_or(after.len());
            regions.push(&after[..end]);
            rest = &after[(end + close.len()).min(after.len())..];
        }
    }
    let mut out = Vec::new();
    for region in regions {
        scan_expression(region, &mut out);
    }
    out
}

fn scan_expression(expr: &str, out: &mut Vec<(Callable, String)>) {
    const KEYWORDS: &[&str] = &[
        "if",
        "elif",
        "else",
        "endif",
        "for",
        "endfor",
        "in",
        "not",
        "and",
        "or",
        "is",
        "set",
        "endset",
        "macro",
        "endmacro",
        "call",
        "endcall",
        "filter",
        "endfilter",
        "with",
        "endwith",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
        "recursive",
        "loop",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut macros: Vec<String> = Vec::new();
    let mut prev: Option<char> = None; // previous significant character
    let mut prev_word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            prev = Some('"');
            prev_word.clear();
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            if prev == Some('|') {
                out.push((Callable::Filter, word.clone()));
            } else if prev_word == "is" {
                if !KEYWORDS.contains(&word.as_str()) {
                    out.push((Callable::Test, word.clone()));
                }
            } else if prev_word == "macro" {
                macros.push(word.clone());
            } else if next == Some('(')
                && prev != Some('.')
                && !KEYWORDS.contains(&word.as_str())
                && !macros.contains(&word)
            {
                out.push((Callable::Function, word.clone()));
            }
            // `is not name`: the test follows `not`.
            if !(prev_word == "is" && word == "not") {
                prev_word = word;
            }
            prev = Some('a');
            continue;
        }
        if !c.is_whitespace() {
            prev = Some(c);
            prev_word.clear();
        }
        i += 1;
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// A scope variable holding the time (Unix ms) `now()` reads instead of the system clock.
pub const CLOCK_VAR: &str = "__clock_ms";

/// Whether a string contains template syntax at all (the fast path skips the engine).
pub fn is_template(s: &str) -> bool {
    s.contains("<<") || s.contains("<%") || s.contains("<#")
}

impl Templates {
    /// Builds the environment with postie's delimiters, strict undefined and helper functions.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .block_delimiters("<%", "%>")
                .variable_delimiters("<<", ">>")
                .comment_delimiters("<#", "#>")
                .build()
                .expect("static syntax config is valid"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(crate::limits::get().template_steps));
        // Text fields (URL, headers, form values, text bodies) take text: a mapping or a list
        // written into one would appear as a Python-style rendering — a secret in clear, or a
        // value the server cannot read. `tojson`, `join` or a field of it says what is meant.
        env.set_formatter(|out, state, value| {
            use minijinja::value::ValueKind;
            let what = match value.kind() {
                ValueKind::Map => {
                    let keys: Vec<String> = value
                        .try_iter()
                        .map(|it| it.take(6).map(|k| k.to_string()).collect())
                        .unwrap_or_default();
                    Some(format!("a mapping (keys: {})", keys.join(", ")))
                }
                ValueKind::Seq | ValueKind::Iterable => {
                    Some(format!("a list of {}", value.len().unwrap_or(0)))
                }
                // JSON's spelling, not Python's `True`: what APIs read in a query or a header.
                ValueKind::Bool => {
                    out.write_str(if value.is_true() { "true" } else { "false" })?;
                    return Ok(());
                }
                _ => None,
            };
            match what {
                Some(w) => Err(MjError::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "{w} was written into text; pass it through `tojson` (or `join(',')`, or pick a field) to say what to send"
                    ),
                )),
                None => minijinja::escape_formatter(out, state, value),
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_filter("base64", |s: String| {
            base64::engine::general_purpose::STANDARD.encode(s)
        });
        env.add_filter("b64decode", |s: String| -> Result<String, MjError> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .or_else(|_| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(s.trim().trim_end_matches('='))
                })
                .map_err(|e| {
                    MjError::new(ErrorKind::InvalidOperation, format!("b64decode: {e}"))
                })?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        });
        env.add_filter("pkce_challenge", |s: String| {
            crate::util::pkce_challenge(&s)
        });
        env.add_filter("jwt_claims", |s: String| -> Result<MjValue, MjError> {
            let claims = crate::jwt::claims(&s).map_err(|e| {
                MjError::new(ErrorKind::InvalidOperation, format!("jwt_claims: {e}"))
            })?;
            Ok(MjValue::from_serialize(&claims))
        });
        env.add_filter("append", |list: Option<Vec<MjValue>>, item: MjValue| {
            let mut list = list.unwrap_or_default();
            if !list.contains(&item) {
                list.push(item);
            }
            list
        });
        env.add_function(
            "merge",
            |a: MjValue, b: MjValue| -> Result<MjValue, MjError> {
                let mut out: serde_json::Map<String, Value> = match serde_json::to_value(&a) {
                    Ok(Value::Object(m)) => m,
                    _ => {
                        return Err(MjError::new(
                            ErrorKind::InvalidOperation,
                            "merge() takes two mappings",
                        ));
                    }
                };
                match serde_json::to_value(&b) {
                    Ok(Value::Object(m)) => out.extend(m),
                    _ => {
                        return Err(MjError::new(
                            ErrorKind::InvalidOperation,
                            "merge() takes two mappings",
                        ));
                    }
                }
                Ok(MjValue::from_serialize(&out))
            },
        );
        env.add_function("uuid", || uuid::Uuid::new_v4().to_string());
        env.add_function("nonce", |len: Option<usize>| {
            random_token(len.unwrap_or(32))
        });
        env.add_function("random_state", || random_token(32));
        env.add_function(
            "random_int",
            |min: Option<i64>, max: Option<i64>| -> Result<i64, MjError> {
                let (lo, hi) = (min.unwrap_or(0), max.unwrap_or(1000));
                if hi < lo {
                    return Err(MjError::new(
                        ErrorKind::InvalidOperation,
                        format!("random_int({lo}, {hi}): the maximum is below the minimum"),
                    ));
                }
                Ok(lo + (random_u64() % ((hi - lo) as u64 + 1)) as i64)
            },
        );
        env.add_function("fake", |kind: String| -> Result<MjValue, MjError> {
            crate::fake::value(&kind).map(MjValue::from).ok_or_else(|| {
                MjError::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "fake(\"{kind}\"): unknown kind; known: {}",
                        crate::fake::KINDS.join(", ")
                    ),
                )
            })
        });
        env.add_function(
            "now",
            |state: &minijinja::State, format: Option<String>| -> Result<MjValue, MjError> {
                // A scope may carry its own clock (the mock's, which tests can move).
                let now = state
                    .lookup(CLOCK_VAR)
                    .and_then(|v| i64::try_from(v).ok())
                    .and_then(|ms| {
                        time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()
                    })
                    .unwrap_or_else(time::OffsetDateTime::now_utc);
                match format.as_deref() {
                    None | Some("rfc3339") => Ok(MjValue::from(
                        now.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    )),
                    Some("unix") => Ok(MjValue::from(now.unix_timestamp())),
                    Some("unix_ms") => Ok(MjValue::from(
                        (now.unix_timestamp_nanos() / 1_000_000) as i64,
                    )),
                    Some("date") => Ok(MjValue::from(now.date().to_string())),
                    Some(other) => Err(MjError::new(
                        ErrorKind::InvalidOperation,
                        format!("now(\"{other}\"): use rfc3339, unix, unix_ms or date"),
                    )),
                }
            },
        );
        Templates {
            env,
            known: Default::default(),
            analysed: Default::default(),
        }
    }

    /// Whether a filter, test or function of this name exists (probed once per name).
    pub fn exists(&self, kind: Callable, name: &str) -> bool {
        let key = (kind, name.to_string());
        if let Some(k) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return *k;
        }
        let empty = MjValue::from(());
        let probe = match kind {
            Callable::Filter => self
                .env
                .compile_expression(&format!("1 | {name}"))
                .and_then(|e| e.eval(&empty)),
            Callable::Test => self
                .env
                .compile_expression(&format!("1 is {name}"))
                .and_then(|e| e.eval(&empty)),
            Callable::Function => self
                .env
                .compile_expression(&format!("{name}()"))
                .and_then(|e| e.eval(&empty)),
        };
        let exists = match probe {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                ErrorKind::UnknownFilter
                    | ErrorKind::UnknownTest
                    | ErrorKind::UnknownFunction
                    | ErrorKind::UndefinedError
            ),
        };
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, exists);
        exists
    }

    /// Filters, tests and functions a template or condition calls that do not exist.
    pub fn unknown_callables(&self, src: &str, is_condition: bool) -> Vec<(Callable, String)> {
        if !is_condition && !is_template(src) {
            return vec![];
        }
        let mut out: Vec<(Callable, String)> = Vec::new();
        for (kind, name) in called_names(src, is_condition) {
            if !self.exists(kind, &name) && !out.iter().any(|(k, n)| *k == kind && *n == name) {
                out.push((kind, name));
            }
        }
        out
    }

    /// Checks syntax and returns the variable paths used, compiling once: a condition, a sole
    /// `<< expr >>`, or a template.
    pub fn analyse(
        &self,
        src: &str,
        is_condition: bool,
    ) -> Result<BTreeSet<String>, TemplateError> {
        if !is_condition && !is_template(src) {
            return Ok(BTreeSet::new());
        }
        let key = (src.to_string(), is_condition);
        if let Some(r) = self
            .analysed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return r.clone();
        }
        let r = self.analyse_uncached(src, is_condition);
        self.analysed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r.clone());
        r
    }

    fn analyse_uncached(
        &self,
        src: &str,
        is_condition: bool,
    ) -> Result<BTreeSet<String>, TemplateError> {
        let keep = |set: std::collections::HashSet<String>| {
            set.into_iter().filter(|v| !self.is_global(v)).collect()
        };
        if is_condition || sole_expression(src).is_some() {
            let expr = sole_expression(src).unwrap_or(src.trim());
            let e = self.env.compile_expression(expr).map_err(|e| plain(&e))?;
            return Ok(keep(e.undeclared_variables(true)));
        }
        if !is_template(src) {
            return Ok(BTreeSet::new());
        }
        let t = self.env.template_from_str(src).map_err(|e| plain(&e))?;
        Ok(keep(t.undeclared_variables(true)))
    }

    /// Variable paths a request string refers to (a template, or a sole `<< expr >>`), e.g.
    /// `token.body.access_token`; nothing when it does not parse.
    pub fn references(&self, src: &str) -> BTreeSet<String> {
        self.analyse(src, false).unwrap_or_default()
    }

    /// Variable paths a `when:`/`until:` condition refers to.
    pub fn referenced_in_condition(&self, expr: &str) -> BTreeSet<String> {
        self.analyse(expr, true).unwrap_or_default()
    }

    fn is_global(&self, path: &str) -> bool {
        let root = path.split('.').next().unwrap_or(path);
        self.env.globals().any(|(k, _)| k == root)
    }

    /// Renders a string template against a context.
    pub fn render(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        self.render_in(src, &Ctx::new(ctx))
    }

    /// Renders a string template against a prepared context.
    pub fn render_in(&self, src: &str, ctx: &Ctx<'_>) -> Result<String, TemplateError> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        if let Some(out) = render_simple(src, ctx.json) {
            return Ok(out);
        }
        let tmpl = self
            .env
            .template_from_str(src)
            .map_err(|e| self.explain(&e, src, ctx.json, false))?;
        let mut out = Bounded::new(crate::limits::get().template_output);
        match tmpl.render_captured_to(ctx.mj(), &mut out) {
            Ok(_) => Ok(String::from_utf8(out.buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
            Err(_) if out.over => Err(TemplateError {
                undefined: None,
                message: format!(
                    "the template's output passed the {} limit on one rendered value; raise it \
                     with `--limit template-output=…` if that is meant",
                    crate::limits::bytes(out.limit as u64)
                ),
            }),
            Err(e) => Err(self.explain(&e, src, ctx.json, false)),
        }
    }

    /// Renders every string in a JSON value; a string that is exactly one `<<expr>>` becomes the
    /// expression's value, so `list_memberships: "<<list_ids>>"` splices a list.
    pub fn render_json(&self, v: &Value, ctx: &Value) -> Result<Value, TemplateError> {
        if !has_template(v) {
            return Ok(v.clone());
        }
        self.render_json_in(v, &Ctx::new(ctx))
    }

    /// [`Templates::render_json`] against a prepared context.
    pub fn render_json_in(&self, v: &Value, ctx: &Ctx<'_>) -> Result<Value, TemplateError> {
        Ok(match v {
            Value::String(s) => {
                if let Some(expr) = sole_expression(s) {
                    // A plain path splices its value as it is (no engine round trip).
                    if let Some(v) = simple_path(expr).and_then(|p| lookup(ctx.json, p))
                        && !v.is_null()
                    {
                        return Ok(v.clone());
                    }
                    let e = self.env.compile_expression(expr).map_err(|e| plain(&e))?;
                    let out = e
                        .eval(ctx.mj())
                        .map_err(|err| self.explain(&err, s, ctx.json, false))?;
                    if out.is_undefined() {
                        return Err(self.explain(
                            &MjError::new(ErrorKind::UndefinedError, "undefined value"),
                            s,
                            ctx.json,
                            true,
                        ));
                    }
                    serde_json::to_value(&out).map_err(|e| TemplateError {
                        undefined: None,
                        message: e.to_string(),
                    })?
                } else {
                    Value::String(self.render_in(s, ctx)?)
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.render_json_in(x, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, x) in m {
                    out.insert(k.clone(), self.render_json_in(x, ctx)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Evaluates a `when:`/`until:` condition (with or without `<< >>`) to a boolean.
    pub fn condition(&self, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        let e = self
            .env
            .compile_expression(strip_delims(expr))
            .map_err(|e| plain(&e))?;
        let v = e
            .eval(ctx)
            .map_err(|err| self.explain(&err, expr, ctx, true))?;
        Ok(v.is_true())
    }

    /// Finds which referenced variable is undefined, for a message that names it.
    fn explain(&self, err: &MjError, src: &str, ctx: &Value, is_expr: bool) -> TemplateError {
        if err.kind() != ErrorKind::UndefinedError {
            return plain(err);
        }
        let refs = self.analyse(src, is_expr).unwrap_or_default();
        for path in refs {
            if let Some(missing) = first_missing(&path, ctx) {
                return TemplateError {
                    message: format!("`{missing}` is undefined"),
                    undefined: Some(missing),
                };
            }
        }
        plain(err)
    }
}

/// The shortest prefix of a dotted path that does not resolve in `ctx`.
pub fn first_missing(path: &str, ctx: &Value) -> Option<String> {
    let mut cur = ctx;
    let mut prefix = String::new();
    for seg in path.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(seg);
        match cur.get(seg) {
            Some(v) => cur = v,
            None => {
                // Attribute access on non-objects (e.g. `x.length`) is not ours to judge.
                return if cur.is_object() { Some(prefix) } else { None };
            }
        }
    }
    None
}

/// A sink that refuses to grow past `limit` bytes: a template's output is bounded while it is
/// written, so a loop that would write gigabytes stops at the limit.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded {
            buf: Vec::new(),
            limit,
            over: false,
        }
    }
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.over = true;
            return Err(std::io::Error::other("template output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn plain(e: &MjError) -> TemplateError {
    if e.kind() == ErrorKind::OutOfFuel {
        return TemplateError {
            undefined: None,
            message: format!(
                "the template ran more than {} engine steps (a loop too long?); raise the limit \
                 with `--limit template-steps=…` if that is meant",
                crate::limits::get().template_steps
            ),
        };
    }
    let mut msg = e
        .detail()
        .map(|d| format!("{}: {d}", e.kind()))
        .unwrap_or_else(|| e.kind().to_string());
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (template line {line})"));
    }
    TemplateError {
        undefined: None,
        message: msg,
    }
}

fn strip_delims(expr: &str) -> &str {
    sole_expression(expr).unwrap_or(expr.trim())
}

/// If `s` is exactly `<< expr >>`, the expression.
pub fn sole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("<<")?.strip_suffix(">>")?;
    if inner.contains("<<") || inner.contains(">>") {
        return None;
    }
    Some(inner.trim())
}

/// A random number (from the OS's random source, through a v4 UUID).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// A random URL-safe token of `len` characters.
pub fn random_token(len: usize) -> String {
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "client_id": "id",
            "client_secret": "sec",
            "token": {"status": 200, "body": {"access_token": "AT"}, "headers": {"location": "http://x/cb?code=C"}},
            "contacts": [],
            "list_id": "L2",
            "contact": {"first_name": "Ada", "list_memberships": ["L1"]},
        })
    }

    #[test]
    fn renders_with_custom_delimiters_and_filters() {
        let t = Templates::new();
        assert_eq!(
            t.render(
                "Basic <<(client_id ~ ':' ~ client_secret) | base64>>",
                &ctx()
            )
            .unwrap(),
            "Basic aWQ6c2Vj"
        );
        assert_eq!(
            t.render("<<token.body.access_token>>", &ctx()).unwrap(),
            "AT"
        );
        assert_eq!(
            t.render(
                "<# note #>a<% if token.status == 200 %>ok<% endif %>",
                &ctx()
            )
            .unwrap(),
            "aok"
        );
        assert_eq!(
            t.render("<<'a b&c' | urlencode>>", &ctx()).unwrap(),
            "a%20b%26c"
        );
        assert_eq!(
            t.render("{{ not a template }}", &ctx()).unwrap(),
            "{{ not a template }}"
        );
        assert_eq!(t.render("<<uuid() | length>>", &ctx()).unwrap(), "36");
        assert_eq!(
            t.render("<<random_state() | length>>", &ctx()).unwrap(),
            "32"
        );
        assert!(t.render("<<now()>>", &ctx()).unwrap().ends_with('Z'));
        assert!(
            t.render("<<now('unix')>>", &ctx())
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 1_700_000_000
        );
    }

    #[test]
    fn strict_undefined_names_the_variable() {
        let t = Templates::new();
        let e = t.render("Bearer <<access_token>>", &ctx()).unwrap_err();
        assert_eq!(e.undefined.as_deref(), Some("access_token"));
        let e = t
            .render("<<token.body.refresh_token>>", &ctx())
            .unwrap_err();
        assert_eq!(e.undefined.as_deref(), Some("token.body.refresh_token"));
        let e = t
            .render_json(&json!({"a": "<<nope>>"}), &ctx())
            .unwrap_err();
        assert_eq!(e.undefined.as_deref(), Some("nope"));
        assert_eq!(t.render("<<maybe | default('d')>>", &ctx()).unwrap(), "d");
    }

    #[test]
    fn json_splices_whole_expressions() {
        let t = Templates::new();
        let out = t
            .render_json(&json!({"ids": "<<contacts>>", "n": "<<token.status>>", "s": "x-<<list_id>>", "m": "<<merge(contact, {'list_memberships': contact.list_memberships | append(list_id)})>>"}), &ctx())
            .unwrap();
        assert_eq!(
            out,
            json!({"ids": [], "n": 200, "s": "x-L2", "m": {"first_name": "Ada", "list_memberships": ["L1", "L2"]}})
        );
    }

    #[test]
    fn conditions() {
        let t = Templates::new();
        assert!(t.condition("contacts | length == 0", &ctx()).unwrap());
        assert!(t.condition("<< token.status == 200 >>", &ctx()).unwrap());
        assert_eq!(
            t.condition("missing == 1", &ctx())
                .unwrap_err()
                .undefined
                .as_deref(),
            Some("missing")
        );
        assert!(t.analyse("<< unclosed", false).is_err());
        assert!(t.analyse("a ==", true).is_err());
    }

    #[test]
    fn the_fast_path_renders_as_the_engine_does() {
        let t = Templates::new();
        let c = json!({"a": "x", "n": 3, "f": 1.5, "b": true, "o": {"p": "q"}, "z": null});
        for src in [
            "<<a>>/<<n>>/<<f>>/<<b>>",
            "pre <<o.p>> post",
            "<< a >>",
            "<<a>> >> not an expression",
        ] {
            let fast = render_simple(src, &c).unwrap();
            let engine = t.env.render_str(src, MjValue::from_serialize(&c)).unwrap();
            assert_eq!(fast, engine, "{src}");
        }
        // Anything else goes to the engine: filters, nulls, missing values, mappings, blocks.
        for src in [
            "<<a | upper>>",
            "<<z>>",
            "<<missing>>",
            "<<o>>",
            "<%if b%>y<%endif%>",
        ] {
            assert!(render_simple(src, &c).is_none(), "{src}");
        }
    }

    #[test]
    fn mappings_and_lists_are_not_text() {
        let t = Templates::new();
        let e = t.render("x-<<contact>>", &ctx()).unwrap_err();
        assert!(
            e.message
                .contains("a mapping (keys: first_name, list_memberships) was written into text"),
            "{e}"
        );
        let e = t.render("<<contacts>>", &ctx()).unwrap_err();
        assert!(e.message.contains("a list of 0"), "{e}");
        assert_eq!(
            t.render("<<contact | tojson>>", &ctx()).unwrap(),
            r#"{"first_name":"Ada","list_memberships":["L1"]}"#
        );
        assert_eq!(
            t.render("<<contact.list_memberships | join(',')>>", &ctx())
                .unwrap(),
            "L1"
        );
        // A JSON body splices the typed value of a sole expression.
        assert_eq!(
            t.render_json(&json!({"c": "<<contact>>"}), &ctx()).unwrap(),
            json!({"c": {"first_name": "Ada", "list_memberships": ["L1"]}})
        );
    }

    #[test]
    fn unknown_filters_tests_and_functions() {
        let t = Templates::new();
        assert!(
            t.unknown_callables("<<x | base64 | upper>>", false)
                .is_empty()
        );
        assert_eq!(
            t.unknown_callables("a <<x | base46>> <% if y is evn %>z<% endif %>", false),
            vec![
                (Callable::Filter, "base46".to_string()),
                (Callable::Test, "evn".to_string())
            ]
        );
        assert_eq!(
            t.unknown_callables("uuidd() ~ now() ~ 'f(x)' ~ a.items()", true),
            vec![(Callable::Function, "uuidd".to_string())]
        );
        assert!(t.unknown_callables("x is not defined", true).is_empty());
        assert!(
            t.unknown_callables("<% for i in range(3) %><<i>><% endfor %>", false)
                .is_empty()
        );
    }

    #[test]
    fn referenced_paths() {
        let t = Templates::new();
        let r = t.references("<<base>>/x?<<token.body.access_token>>&<<uuid()>>");
        assert!(
            r.contains("base") && r.contains("token.body.access_token"),
            "{r:?}"
        );
        assert!(!r.iter().any(|v| v.starts_with("uuid")), "{r:?}");
    }
}
