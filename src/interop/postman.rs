//! Postman collections (v2.0 and v2.1) and environment files → a postie collection that runs as
//! it did under Newman (`compat: newman`).
//!
//! The file is read into `serde_json::Value` and walked leniently: an auth type, body mode or
//! field postie cannot carry becomes a line of the report with its item path, never a failure of
//! the whole file. What Newman does with the file is reproduced: URLs from their parts, auth
//! inherited from folders and the collection (`noauth` stops it), bodies dropped from GET/HEAD
//! unless `disableBodyPruning`, disabled entries dropped, scripts kept in Newman's order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::names::{Namer, env_key, ident, slug};
use super::template::Converter;
use super::{Import, InputError, Obj, Report};

/// Methods whose body Newman drops unless `protocolProfileBehavior.disableBodyPruning` is set.
const PRUNED: [&str; 5] = ["GET", "HEAD", "COPY", "PURGE", "UNLOCK"];

/// Imports a collection file and any number of environment files.
pub fn import(path: &Path, envs: &[std::path::PathBuf]) -> Result<Import, InputError> {
    let root = read_json(path)?;
    let root = match root.get("collection") {
        Some(c) if c.get("item").is_some() => c.clone(),
        _ => root,
    };
    if root.get("requests").is_some() && root.get("order").is_some() {
        return Err(InputError::new(
            path,
            "this is a Postman v1 collection; open it in Postman and export it as Collection v2.1",
        ));
    }
    let Some(items) = root.get("item").and_then(Value::as_array) else {
        return Err(InputError::new(
            path,
            "not a Postman collection: it has no `item` list (export it from Postman as Collection v2.1)",
        ));
    };
    let mut environments = Vec::new();
    for e in envs {
        environments.push((e.clone(), read_json(e)?));
    }
    let schema = root
        .pointer("/info/schema")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut imp = Importer {
        v20: schema.contains("v2.0"),
        ..Default::default()
    };
    let name = root
        .pointer("/info/name")
        .or_else(|| root.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("imported")
        .to_string();
    imp.collection_vars(root.get("variable"));
    for (p, env) in &environments {
        imp.environment(p, env);
    }
    // Request keys must not collide with variable names (`<<name>>` of a request means its
    // last exchange).
    for v in imp.variables.keys().chain(imp.declared_env_names.iter()) {
        imp.requests_named.reserve(v);
    }
    imp.requests_named.reserve("env");
    // Names scripts set are variables too: a request must not take one (under postie's own
    // rules `<<name>>` of a request means its last exchange).
    let mut set_names = BTreeSet::new();
    scripts_in(&root, &mut set_names);
    for n in &set_names {
        imp.requests_named.reserve(&ident(n));
    }
    let coll_auth = root.get("auth").filter(|a| !a.is_null()).cloned();
    if let Some(ev) = root.get("event") {
        let (pre, post) = imp.events(ev, "collection");
        let mut s = Obj::new();
        s.put("pre", pre).put("post", post);
        imp.collection_script = s.value();
    }
    imp.walk(items, &[], coll_auth.as_ref(), "");
    imp.finish(name, &root)
}

fn read_json(path: &Path) -> Result<Value, InputError> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::new(path, format!("cannot read it: {e}")))?;
    let text = decode(&bytes);
    serde_json::from_str(&text).map_err(|e| InputError::json(path, &e))
}

/// Text of a file that may start with a byte-order mark (UTF-8 or UTF-16, which Postman's
/// Windows exports use).
fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    for (bom, enc) in [
        (&[0xFF, 0xFE][..], encoding_rs::UTF_16LE),
        (&[0xFE, 0xFF][..], encoding_rs::UTF_16BE),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return enc.decode_without_bom_handling(rest).0.into_owned();
        }
    }
    String::from_utf8_lossy(bytes).into_owned()
}

#[derive(Default)]
struct Importer {
    v20: bool,
    conv: Converter,
    report: Report,
    variables: Map<String, Value>,
    environments: Map<String, Value>,
    declared_env_names: BTreeSet<String>,
    secrets: Vec<(String, String)>,
    /// Secret literal values already given a variable: value → variable.
    secret_vars: BTreeMap<String, String>,
    requests_named: Namer,
    requests: Map<String, Value>,
    /// Token requests an OAuth2 block added, written before the others.
    oauth_requests: Map<String, Value>,
    oauth2: Option<Value>,
    folders: Map<String, Value>,
    folder_paths: BTreeSet<String>,
    collection_script: Value,
    /// Names scripts set (`pm.environment.set("x", …)`): defined at run time.
    script_set: BTreeSet<String>,
    captured: BTreeSet<String>,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    requests: usize,
    folders: usize,
    scripts: usize,
    translated: usize,
    examples: usize,
    disabled: usize,
}

/// A Postman auth object as a map of its parameters (v2.1 lists or v2.0 objects).
fn auth_params(auth: &Value, kind: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    match auth.get(kind) {
        Some(Value::Array(list)) => {
            for p in list {
                if let Some(k) = p.get("key").and_then(Value::as_str) {
                    out.insert(
                        k.to_string(),
                        p.get("value").cloned().unwrap_or(Value::Null),
                    );
                }
            }
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                out.insert(k.clone(), v.clone());
            }
        }
        _ => {}
    }
    out
}

/// The hint `export postman` leaves on a variable that read the process environment
/// (`description: "postie: <<env.X>>"`, plus ` secret`), as postie's definition.
fn env_hint(v: &Value) -> Option<Value> {
    let d = v.get("description").and_then(Value::as_str)?;
    let rest = d.strip_prefix("postie: ")?;
    let (reference, secret) = match rest.strip_suffix(" secret") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let name = reference.strip_prefix("<<env.")?.strip_suffix(">>")?;
    if !super::names::is_ident(name) {
        return None;
    }
    Some(if secret {
        json!({"value": reference, "secret": true})
    } else {
        Value::String(reference.to_string())
    })
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `description` is a string or `{content, type}`.
fn description(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Object(m) => m.get("content")?.as_str()?.to_string(),
        _ => return None,
    };
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl Importer {
    fn collection_vars(&mut self, vars: Option<&Value>) {
        let Some(Value::Array(list)) = vars else {
            return;
        };
        for v in list {
            let Some(key) = v.get("key").or_else(|| v.get("id")).and_then(Value::as_str) else {
                continue;
            };
            if v.get("disabled").and_then(Value::as_bool) == Some(true) {
                self.counts.disabled += 1;
                continue;
            }
            let name = self.conv.name(key);
            // A variable postie exported from the process environment comes back as it was.
            if let Some(def) = env_hint(v) {
                self.variables.insert(name, def);
                continue;
            }
            let value = v
                .get("value")
                .cloned()
                .unwrap_or(Value::String(String::new()));
            let def = self.var_def(
                &name,
                &value,
                &["collection"],
                v.get("type").and_then(Value::as_str) == Some("secret"),
            );
            self.variables.insert(name, def);
        }
    }

    /// A variable's definition: secrets (declared, or named like one, with a value) go to `.env`.
    fn var_def(
        &mut self,
        name: &str,
        value: &Value,
        scope: &[&str],
        declared_secret: bool,
    ) -> Value {
        let secret = declared_secret || crate::redact::is_secret_name(name);
        match value {
            Value::String(s) if secret && !s.is_empty() && !s.contains("{{") => {
                let mut parts: Vec<&str> = scope.to_vec();
                parts.push(name);
                let key = env_key(&parts);
                self.secrets.push((key.clone(), s.clone()));
                json!({"value": format!("<<env.{key}>>"), "secret": true})
            }
            Value::String(s) if declared_secret => {
                json!({"value": self.conv.text(s, &format!("variable {name}")), "secret": true})
            }
            Value::String(s) => Value::String(self.conv.text(s, &format!("variable {name}"))),
            other => other.clone(),
        }
    }

    fn environment(&mut self, path: &Path, env: &Value) {
        let title = env
            .get("name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().replace(".postman_environment", ""))
                    .unwrap_or_else(|| "environment".into())
            });
        let mut key = slug(&title);
        let mut n = 2;
        while self.environments.contains_key(&key) {
            key = format!("{}_{n}", slug(&title));
            n += 1;
        }
        let mut vars = Map::new();
        let mut count = 0;
        for v in env
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(k) = v.get("key").and_then(Value::as_str) else {
                continue;
            };
            if v.get("enabled").and_then(Value::as_bool) == Some(false) {
                self.counts.disabled += 1;
                continue;
            }
            let name = self.conv.name(k);
            let value = v
                .get("value")
                .cloned()
                .unwrap_or(Value::String(String::new()));
            let secret = v.get("type").and_then(Value::as_str) == Some("secret");
            let def = self.var_def(&name, &value, &[&key], secret);
            self.declared_env_names.insert(name.clone());
            vars.insert(name, def);
            count += 1;
        }
        self.report.imported.push(format!(
            "environment `{key}` ({count} variables) from {}",
            path.display()
        ));
        self.environments.insert(key, Value::Object(vars));
    }

    /// A literal credential as a secret variable in `.env` (the same value shares one); a
    /// template stays a template.
    fn secret_ref(&mut self, suggested: &str, value: &Value, at: &str) -> String {
        let s = text_of(Some(value));
        if s.is_empty() || s.contains("{{") {
            return self.conv.text(&s, at);
        }
        if let Some(v) = self.secret_vars.get(&s) {
            return format!("<<{v}>>");
        }
        let mut name = ident(suggested);
        let mut n = 2;
        while self.variables.contains_key(&name) {
            name = format!("{}_{n}", ident(suggested));
            n += 1;
        }
        let key = env_key(&["postman", &name]);
        self.secrets.push((key.clone(), s.clone()));
        self.variables.insert(
            name.clone(),
            json!({"value": format!("<<env.{key}>>"), "secret": true}),
        );
        self.secret_vars.insert(s, name.clone());
        self.report.notes.push(format!(
            "{at}: the literal credential became the secret variable `{name}` (value in .env as {key})"
        ));
        format!("<<{name}>>")
    }

    /// Scripts of an `event` list: (pre, post) sources, disabled and empty ones dropped.
    fn events(&mut self, events: &Value, at: &str) -> (Value, Value) {
        let list: Vec<&Value> = match events {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![events],
            _ => vec![],
        };
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        for e in list {
            let listen = e.get("listen").and_then(Value::as_str).unwrap_or("");
            let script = e.get("script");
            let code = match script.and_then(|s| s.get("exec")) {
                Some(Value::Array(lines)) => lines
                    .iter()
                    .map(|l| l.as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            if code.trim().is_empty() {
                continue;
            }
            if e.get("disabled").and_then(Value::as_bool) == Some(true) {
                self.report
                    .notes
                    .push(format!("{at}: disabled {listen} script dropped"));
                continue;
            }
            let code = self.script_text(&code, at, listen);
            match listen {
                "prerequest" => pre.push(code),
                "test" => post.push(code),
                other => self
                    .report
                    .left_out
                    .push(format!("{at}: event `{other}` is not one postie runs")),
            }
        }
        let join = |v: Vec<String>| {
            if v.is_empty() {
                Value::Null
            } else {
                Value::String(v.join("\n"))
            }
        };
        (join(pre), join(post))
    }

    /// A script as postie keeps it: renamed variables renamed in the string literals that name
    /// them, and what it cannot do reported with its line.
    fn script_text(&mut self, code: &str, at: &str, listen: &str) -> String {
        self.counts.scripts += 1;
        let mut code = code.trim_end().to_string();
        code.push('\n');
        for (from, to) in &self.conv.renames {
            for q in ['"', '\'', '`'] {
                code = code.replace(&format!("{q}{from}{q}"), &format!("{q}{to}{q}"));
            }
            code = code.replace(&format!("{{{{{from}}}}}"), &format!("{{{{{to}}}}}"));
        }
        self.script_set.extend(crate::script::names_set(&code));
        for (i, line) in code.lines().enumerate() {
            for (needle, what) in UNSUPPORTED {
                if line.contains(needle) {
                    self.report
                        .left_out
                        .push(format!("{at} event {listen} line {}: {what}", i + 1));
                }
            }
        }
        code
    }

    fn walk(
        &mut self,
        items: &[Value],
        folder: &[String],
        auth: Option<&Value>,
        folder_path: &str,
    ) {
        for item in items {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(if item.get("item").is_some() {
                    "folder"
                } else {
                    "request"
                })
                .to_string();
            let at_path = if folder_path.is_empty() {
                name.clone()
            } else {
                format!("{folder_path}/{name}")
            };
            let own_auth = item.get("auth").filter(|a| !a.is_null());
            if let Some(children) = item.get("item").and_then(Value::as_array) {
                self.counts.folders += 1;
                // A folder name may hold `/`, which separates folders in postie.
                let mut seg = name.replace('/', "-").trim().to_string();
                if seg.is_empty() {
                    seg = "folder".into();
                }
                let mut path = if folder_path.is_empty() {
                    seg.clone()
                } else {
                    format!("{folder_path}/{seg}")
                };
                let mut n = 2;
                while self.folder_paths.contains(&path) {
                    path = format!("{}/{seg} ({n})", folder_path)
                        .trim_start_matches('/')
                        .to_string();
                    n += 1;
                }
                self.folder_paths.insert(path.clone());
                let at = format!("folder \"{at_path}\"");
                let mut f = Obj::new();
                f.put("description", description(item.get("description")));
                if let Some(ev) = item.get("event") {
                    let (pre, post) = self.events(ev, &at);
                    let mut s = Obj::new();
                    s.put("pre", pre).put("post", post);
                    f.put("script", s.value());
                }
                if !f.0.is_empty() {
                    self.folders.insert(path.clone(), f.value());
                }
                let mut inner = folder.to_vec();
                inner.push(name.clone());
                self.walk(children, &inner, own_auth.or(auth), &path);
            } else {
                self.request(
                    item,
                    &name,
                    folder,
                    folder_path,
                    own_auth.or(auth),
                    &at_path,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        item: &Value,
        title: &str,
        folder: &[String],
        folder_path: &str,
        auth: Option<&Value>,
        at_path: &str,
    ) {
        self.counts.requests += 1;
        let at = format!("item \"{at_path}\"");
        let req = item.get("request").cloned().unwrap_or(Value::Null);
        let req = match req {
            Value::String(url) => json!({"method": "GET", "url": url}),
            other => other,
        };
        // A request's own auth lives in `request.auth`; `null` or absent means inherit.
        let auth = req.get("auth").filter(|a| !a.is_null()).or(auth);
        let key = {
            let mut candidates = vec![slug(title)];
            if !folder.is_empty() {
                let mut full: Vec<&str> = folder.iter().map(String::as_str).collect();
                full.push(title);
                candidates.push(slug(&full.join(" ")));
            }
            self.requests_named.unique(&candidates)
        };
        let mut out = Obj::new();
        if slug(title) != key || title != key {
            out.put("title", title);
        }
        if !folder_path.is_empty() {
            out.put("folder", folder_path);
        }
        out.put("note", description(req.get("description")));
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        out.set("method", method.clone());
        let (url, query) = self.url(req.get("url"), &key, &at);
        out.set("url", url);
        let mut query = query;
        // Headers (a map in postie: duplicates are joined as HTTP allows).
        let mut headers = Map::new();
        for (k, v) in self.header_list(req.get("header"), &at) {
            match headers.get_mut(&k) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                    self.report.notes.push(format!(
                        "{at}: header `{k}` given twice; the values are joined with \", \""
                    ));
                }
                _ => {
                    headers.insert(k, Value::String(v));
                }
            }
        }
        // Auth, inherited (resolved here, as Newman does at run time).
        let auth_out = self.auth(auth, &at, &mut headers, &mut query);
        out.put("query", Value::Object(query));
        out.put("headers", Value::Object(headers.clone()));
        // Body.
        let behaviour = item.get("protocolProfileBehavior");
        let keep_body = behaviour
            .and_then(|b| b.get("disableBodyPruning"))
            .and_then(Value::as_bool)
            == Some(true);
        if let Some(body) = req.get("body").filter(|b| !b.is_null()) {
            if PRUNED.contains(&method.as_str()) && !keep_body {
                if body_present(body) {
                    self.report.notes.push(format!(
                        "{at}: the {method} body was dropped, as Newman drops it (set protocolProfileBehavior.disableBodyPruning to keep it)"
                    ));
                }
            } else {
                self.body(body, &headers, &mut out, &at);
            }
        }
        if let Some(a) = auth_out {
            out.set("auth", a);
        }
        if let Some(b) = behaviour {
            if b.get("followRedirects").and_then(Value::as_bool) == Some(false) {
                out.set("follow_redirects", false);
            }
            if b.get("strictSSL").and_then(Value::as_bool) == Some(false) {
                self.report.left_out.push(format!(
                    "{at}: strictSSL false (TLS verification off) is not carried over; postie verifies certificates"
                ));
            }
        }
        if let Some(ev) = item.get("event") {
            let (pre, post) = self.events(ev, &at);
            let mut s = Obj::new();
            s.put("pre", pre);
            match post {
                Value::String(code) => match super::translate::test_script(&code) {
                    Some(t) => {
                        self.counts.translated += 1;
                        self.report.translated.push(format!(
                            "{at}: test script → {} assertion(s), {} capture(s)",
                            t.asserts.len(),
                            t.captures.len()
                        ));
                        for c in t.captures.keys() {
                            self.captured.insert(c.clone());
                        }
                        out.put("capture", Value::Object(t.captures));
                        out.put("assert", Value::Array(t.asserts));
                    }
                    None => {
                        s.put("post", code);
                    }
                },
                other => {
                    s.put("post", other);
                }
            }
            out.put("script", s.value());
        }
        let examples = self.examples(item.get("response"), &at);
        out.put("examples", Value::Array(examples));
        self.requests.insert(key, out.value());
    }

    /// The URL (from its parts when it has them, as Newman builds it) and its query.
    fn url(&mut self, url: Option<&Value>, key: &str, at: &str) -> (String, Map<String, Value>) {
        let mut query = Map::new();
        let Some(url) = url else {
            self.report
                .left_out
                .push(format!("{at}: the request has no URL"));
            return (String::new(), query);
        };
        let (base, pairs, variables) = match url {
            Value::String(s) => {
                let (b, q) = split_query(s);
                (b, q, vec![])
            }
            Value::Object(m) => {
                let raw = m.get("raw").and_then(Value::as_str).unwrap_or("");
                let has_parts = m.get("host").is_some() || m.get("path").is_some();
                let vars: Vec<(String, String)> = m
                    .get("variable")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| {
                        let k = v.get("key").or_else(|| v.get("id"))?.as_str()?.to_string();
                        Some((k, text_of(v.get("value"))))
                    })
                    .collect();
                if has_parts {
                    let mut s = String::new();
                    if let Some(p) = m.get("protocol").and_then(Value::as_str) {
                        s.push_str(p.trim_end_matches("://").trim_end_matches(':'));
                        s.push_str("://");
                    }
                    match m.get("host") {
                        Some(Value::Array(h)) => s.push_str(
                            &h.iter()
                                .map(|x| text_of(Some(x)))
                                .collect::<Vec<_>>()
                                .join("."),
                        ),
                        Some(Value::String(h)) => s.push_str(h),
                        _ => {}
                    }
                    if let Some(port) = m.get("port").filter(|p| !p.is_null()) {
                        s.push(':');
                        s.push_str(&text_of(Some(port)));
                    }
                    match m.get("path") {
                        Some(Value::Array(p)) => {
                            for seg in p {
                                s.push('/');
                                match seg {
                                    Value::Object(o) => s.push_str(&text_of(o.get("value"))),
                                    other => s.push_str(&text_of(Some(other))),
                                }
                            }
                        }
                        Some(Value::String(p)) => {
                            if !p.starts_with('/') {
                                s.push('/');
                            }
                            s.push_str(p);
                        }
                        _ => {}
                    }
                    let mut pairs = Vec::new();
                    for q in m
                        .get("query")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if q.get("disabled").and_then(Value::as_bool) == Some(true) {
                            self.counts.disabled += 1;
                            continue;
                        }
                        let k = text_of(q.get("key"));
                        let v = q
                            .get("value")
                            .filter(|v| !v.is_null())
                            .map(|v| text_of(Some(v)));
                        pairs.push((k, v));
                    }
                    if let Some(h) = m
                        .get("hash")
                        .and_then(Value::as_str)
                        .filter(|h| !h.is_empty())
                    {
                        s.push('#');
                        s.push_str(h);
                    }
                    let (raw_base, _) = split_query(raw);
                    if !raw.is_empty()
                        && raw_base.trim_end_matches('/') != s.trim_end_matches('/')
                        && !raw_base.contains(':')
                    {
                        self.report.notes.push(format!(
                            "{at}: url.raw `{raw}` differs from the URL's parts; the parts win, as under Newman"
                        ));
                    }
                    (s, pairs, vars)
                } else {
                    let (b, q) = split_query(raw);
                    (b, q, vars)
                }
            }
            _ => {
                self.report
                    .left_out
                    .push(format!("{at}: the URL is neither text nor an object"));
                return (String::new(), query);
            }
        };
        // Path variables: `:id` segments.
        let mut out_segments = Vec::new();
        for seg in base.split('/') {
            match seg.strip_prefix(':') {
                Some(var)
                    if !var.is_empty()
                        && var
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
                {
                    let value = variables
                        .iter()
                        .find(|(k, _)| k == var)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    out_segments.push(self.path_variable(var, &value, key, at));
                }
                _ => out_segments.push(self.conv.text(seg, &format!("{at} url"))),
            }
        }
        let url = out_segments.join("/");
        // Query: a map when every key is plain and once, else kept in the URL.
        let simple = pairs
            .iter()
            .all(|(k, v)| v.is_some() && !k.is_empty() && !k.contains("{{"))
            && {
                let mut seen = BTreeSet::new();
                pairs.iter().all(|(k, _)| seen.insert(k.clone()))
            };
        if simple {
            for (k, v) in pairs {
                let v = self
                    .conv
                    .text(&v.unwrap_or_default(), &format!("{at} query {k}"));
                query.insert(k, Value::String(v));
            }
            (url, query)
        } else {
            let qs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{}={}", self.conv.text(k, at), self.conv.text(v, at)),
                    None => self.conv.text(k, at),
                })
                .collect();
            (format!("{url}?{}", qs.join("&")), query)
        }
    }

    /// A `:name` path segment as a variable: the value given becomes the variable's value (one
    /// per request when requests disagree).
    fn path_variable(&mut self, var: &str, value: &str, key: &str, at: &str) -> String {
        if value.contains("{{") {
            return self.conv.text(value, &format!("{at} path variable {var}"));
        }
        let mut name = ident(var);
        match self.variables.get(&name) {
            Some(Value::String(v)) if v == value => {}
            None if !self.requests_named.taken(&name) => {
                self.variables
                    .insert(name.clone(), Value::String(value.to_string()));
            }
            _ => {
                name = ident(&format!("{key}_{var}"));
                self.variables
                    .insert(name.clone(), Value::String(value.to_string()));
            }
        }
        if value.is_empty() {
            self.report.notes.push(format!(
                "{at}: path variable `:{var}` has no value; set `{name}` before sending"
            ));
        }
        self.requests_named.reserve(&name);
        format!("<<{name}>>")
    }

    fn header_list(&mut self, h: Option<&Value>, at: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match h {
            Some(Value::Array(list)) => {
                for x in list {
                    if x.get("disabled").and_then(Value::as_bool) == Some(true)
                        || (self.v20 && x.get("enabled").and_then(Value::as_bool) == Some(false))
                    {
                        self.counts.disabled += 1;
                        continue;
                    }
                    let k = text_of(x.get("key")).trim().to_string();
                    if k.is_empty() {
                        continue;
                    }
                    let v = text_of(x.get("value"));
                    out.push((k, v));
                }
            }
            Some(Value::String(s)) => {
                for line in s.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        out.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
            }
            _ => {}
        }
        let mut headers = Vec::with_capacity(out.len());
        for (k, v) in out {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                self.report
                    .left_out
                    .push(format!("{at}: header `{k}` has a name HTTP does not allow"));
                continue;
            }
            let where_ = format!("{at} header {k}");
            let literal = !v.is_empty() && !v.contains("{{");
            // A credential written into a header goes to .env like any other.
            let v = if literal && k.eq_ignore_ascii_case("authorization") {
                match v.split_once(' ') {
                    Some((scheme, cred)) if !cred.trim().is_empty() => format!(
                        "{scheme} {}",
                        self.secret_ref(
                            &format!("{}_token", slug(scheme)),
                            &Value::String(cred.trim().to_string()),
                            &where_
                        )
                    ),
                    _ => self.secret_ref("authorization", &Value::String(v), &where_),
                }
            } else if literal && crate::redact::is_secret_name(&k.replace('-', "_")) {
                self.secret_ref(&k.to_ascii_lowercase(), &Value::String(v), &where_)
            } else {
                self.conv.text(&v, &where_)
            };
            headers.push((k, v));
        }
        headers
    }

    /// The request's auth as postie's `auth:` (or headers/query it adds), `None` for none.
    fn auth(
        &mut self,
        auth: Option<&Value>,
        at: &str,
        headers: &mut Map<String, Value>,
        query: &mut Map<String, Value>,
    ) -> Option<Value> {
        let auth = auth?;
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or("noauth");
        let p = auth_params(auth, kind);
        let get = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
        match kind {
            "noauth" => None,
            "basic" => {
                let user = self.conv.text(&text_of(Some(&get("username"))), at);
                let password = self.secret_ref("password", &get("password"), at);
                Some(json!({"basic": {"user": user, "password": password}}))
            }
            "bearer" => {
                let token = self.secret_ref("bearer_token", &get("token"), at);
                Some(json!({"bearer": token}))
            }
            "apikey" => {
                let key = text_of(Some(&get("key")));
                let key = if key.is_empty() {
                    "X-API-Key".to_string()
                } else {
                    key
                };
                let value = self.secret_ref("api_key", &get("value"), at);
                if text_of(Some(&get("in"))) == "query" {
                    query.insert(key, Value::String(value));
                } else {
                    headers.retain(|k, _| !k.eq_ignore_ascii_case(&key));
                    headers.insert(key, Value::String(value));
                }
                None
            }
            "oauth2" => self.oauth2(&p, at, headers, query),
            other => {
                self.report.left_out.push(format!(
                    "{at}: auth type `{other}` is not supported by postie; the request is sent without it"
                ));
                None
            }
        }
    }

    /// Postman's OAuth2 auth: the grant becomes postie's own (an `oauth2:` block for the
    /// authorization code grant, a token request for client credentials and password), and the
    /// request a bearer of `<<access_token>>`. A saved token is never copied.
    fn oauth2(
        &mut self,
        p: &BTreeMap<String, Value>,
        at: &str,
        headers: &mut Map<String, Value>,
        query: &mut Map<String, Value>,
    ) -> Option<Value> {
        let s = |k: &str| text_of(p.get(k));
        if !s("accessToken").is_empty() {
            self.report.notes.push(format!(
                "{at}: the OAuth2 access token saved in the collection was not copied (tokens never go into a collection); log in or set `access_token`"
            ));
        }
        let grant = s("grant_type");
        let token_url = self.conv.text(&s("accessTokenUrl"), at);
        let client_id = s("clientId");
        let client_secret = p.get("clientSecret").cloned().unwrap_or(Value::Null);
        let basic = s("client_authentication") != "body";
        let scope = s("scope");
        let define = |imp: &mut Importer, name: &str, v: &str| {
            if !imp.variables.contains_key(name) && !v.is_empty() {
                let t = imp.conv.text(v, at);
                imp.variables.insert(name.to_string(), Value::String(t));
            }
        };
        match grant.as_str() {
            "authorization_code" | "authorization_code_with_pkce" if self.oauth2.is_none() => {
                define(self, "client_id", &client_id);
                define(self, "scopes", &scope);
                let redirect = s("redirect_uri");
                if redirect.contains("oauth.pstmn.io") || redirect.is_empty() {
                    self.report.notes.push(format!(
                        "{at}: the redirect URI is Postman's ({}); register a loopback URI such as http://127.0.0.1:8910/callback with the provider and set `redirect_uri`",
                        if redirect.is_empty() { "none given" } else { &redirect }
                    ));
                    define(self, "redirect_uri", "http://127.0.0.1:8910/callback");
                } else {
                    define(self, "redirect_uri", &redirect);
                }
                if !client_secret.is_null() && !text_of(Some(&client_secret)).is_empty() {
                    let r = self.secret_ref("client_secret", &client_secret, at);
                    if r != "<<client_secret>>" {
                        self.variables
                            .insert("client_secret".into(), json!({"value": r, "secret": true}));
                    }
                }
                let pkce = grant.ends_with("pkce");
                if pkce && s("challengeAlgorithm") == "plain" {
                    self.report.notes.push(format!(
                        "{at}: PKCE `plain` became S256 (postie always uses S256)"
                    ));
                }
                let grant = super::CodeGrant {
                    authorize_url: self.conv.text(&s("authUrl"), at),
                    token_url: token_url.clone(),
                    refresh_url: {
                        let r = s("refreshTokenUrl");
                        (!r.is_empty()).then(|| self.conv.text(&r, at))
                    },
                    pkce,
                    basic,
                    has_secret: self.variables.contains_key("client_secret"),
                };
                self.variables
                    .entry("oauth_state")
                    .or_insert(json!("<<random_state()>>"));
                let (block, reqs) = super::code_grant_requests(&grant, &mut self.requests_named);
                let names: Vec<String> = reqs.iter().map(|(n, _)| n.clone()).collect();
                for (n, r) in reqs {
                    self.oauth_requests.insert(n, r);
                }
                self.oauth2 = Some(block);
                self.report.translated.push(format!(
                    "{at}: OAuth2 authorization code{} → an oauth2: block with requests {}; log in once with `postie auth login`",
                    if pkce { " with PKCE" } else { "" },
                    names.join(", ")
                ));
            }
            "authorization_code" | "authorization_code_with_pkce" => {
                // A second, different configuration: postie has one oauth2 block per collection.
                if !self
                    .report
                    .notes
                    .iter()
                    .any(|n| n.contains("one oauth2: block"))
                {
                    self.report.notes.push(format!(
                        "{at}: another OAuth2 configuration; postie keeps one oauth2: block per collection, so these requests use its token"
                    ));
                }
            }
            "client_credentials" | "password_credentials" | "password" => {
                let key = self.requests_named.unique(&["oauth_token".to_string()]);
                if !self.oauth_requests.contains_key(&key) {
                    define(self, "client_id", &client_id);
                    define(self, "scopes", &scope);
                    let mut form = json!({"grant_type": if grant == "client_credentials" { "client_credentials" } else { "password" }});
                    if !scope.is_empty() {
                        form["scope"] = json!("<<scopes>>");
                    }
                    if grant != "client_credentials" {
                        define(self, "username", &s("username"));
                        let pw = self.secret_ref(
                            "password",
                            p.get("password").unwrap_or(&Value::Null),
                            at,
                        );
                        form["username"] = json!("<<username>>");
                        form["password"] = json!(pw);
                    }
                    let secret = self.secret_ref("client_secret", &client_secret, at);
                    let mut token = json!({"note": "OAuth2 token (Postman's auth helper, as a request)", "method": "POST", "url": token_url, "headers": {"Accept": "application/json"}, "capture": {"access_token": {"jsonpath": "$.access_token", "secret": true}}, "assert": [{"status": 200}]});
                    if basic {
                        token["auth"] =
                            json!({"basic": {"user": "<<client_id>>", "password": secret}});
                    } else {
                        form["client_id"] = json!("<<client_id>>");
                        form["client_secret"] = json!(secret);
                    }
                    token["form"] = form;
                    self.oauth_requests.insert(key.clone(), token);
                    self.captured.insert("access_token".into());
                    self.report.translated.push(format!(
                        "{at}: OAuth2 {grant} → request `{key}`, run first, which captures access_token"
                    ));
                }
            }
            "" => {}
            other => {
                self.report.left_out.push(format!(
                    "{at}: OAuth2 grant `{other}` is not supported; the request uses `access_token` as a bearer token"
                ));
            }
        }
        let prefix = {
            let p = s("headerPrefix");
            if p.is_empty() {
                "Bearer".to_string()
            } else {
                p
            }
        };
        if s("addTokenTo") == "queryParams" {
            query.insert("access_token".into(), json!("<<access_token>>"));
            None
        } else if prefix != "Bearer" {
            headers.insert(
                "Authorization".into(),
                json!(format!("{prefix} <<access_token>>")),
            );
            None
        } else {
            self.conv
                .referenced
                .entry("access_token".into())
                .or_insert_with(|| at.to_string());
            Some(json!({"bearer": "<<access_token>>"}))
        }
    }

    fn body(&mut self, body: &Value, headers: &Map<String, Value>, out: &mut Obj, at: &str) {
        if body.get("disabled").and_then(Value::as_bool) == Some(true) {
            self.report
                .notes
                .push(format!("{at}: disabled body dropped"));
            return;
        }
        let mode = body.get("mode").and_then(Value::as_str).unwrap_or("raw");
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match mode {
            "raw" => {
                let raw = text_of(body.get("raw"));
                if raw.is_empty() {
                    return;
                }
                let language = body
                    .pointer("/options/raw/language")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let json_like = language == "json"
                    || content_type.contains("json")
                    || (language.is_empty()
                        && content_type.is_empty()
                        && raw.trim_start().starts_with(['{', '[']));
                if json_like && let Ok(v) = serde_json::from_str::<Value>(&raw) {
                    out.set("json", self.conv.json(&v, &format!("{at} body")));
                    return;
                }
                out.set("text", self.conv.text(&raw, &format!("{at} body")));
                if language == "json" && content_type.is_empty() {
                    // Postman sends raw JSON with this header even when the body does not parse.
                    if let Some(Value::Object(h)) = out.0.get_mut("headers") {
                        h.insert("Content-Type".into(), json!("application/json"));
                    } else {
                        out.set("headers", json!({"Content-Type": "application/json"}));
                    }
                }
            }
            "urlencoded" => {
                let mut form = Map::new();
                for f in body
                    .get("urlencoded")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if f.get("disabled").and_then(Value::as_bool) == Some(true)
                        || (self.v20 && f.get("enabled").and_then(Value::as_bool) == Some(false))
                    {
                        self.counts.disabled += 1;
                        continue;
                    }
                    let k = text_of(f.get("key"));
                    let v = self
                        .conv
                        .text(&text_of(f.get("value")), &format!("{at} form {k}"));
                    if form.insert(k.clone(), Value::String(v)).is_some() {
                        self.report.left_out.push(format!(
                            "{at}: form field `{k}` is given twice; postie keeps the last"
                        ));
                    }
                }
                if !form.is_empty() {
                    out.set("form", Value::Object(form));
                }
            }
            "formdata" => {
                let mut parts = Map::new();
                for f in body
                    .get("formdata")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if f.get("disabled").and_then(Value::as_bool) == Some(true)
                        || (self.v20 && f.get("enabled").and_then(Value::as_bool) == Some(false))
                    {
                        self.counts.disabled += 1;
                        continue;
                    }
                    let k = text_of(f.get("key"));
                    let v = if f.get("type").and_then(Value::as_str) == Some("file") {
                        let src = match f.get("src") {
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(Value::Array(a)) if a.len() == 1 => {
                                a[0].as_str().map(String::from)
                            }
                            Some(Value::Array(a)) if a.len() > 1 => {
                                self.report.left_out.push(format!(
                                    "{at}: form file `{k}` names {} files; postie sends the first",
                                    a.len()
                                ));
                                a[0].as_str().map(String::from)
                            }
                            _ => None,
                        };
                        let Some(src) = src else {
                            self.report.left_out.push(format!(
                                "{at}: form file `{k}` has no file chosen; the part is left out"
                            ));
                            continue;
                        };
                        let mut o = Obj::new();
                        o.set("file", self.conv.text(&src, at));
                        o.put("content_type", text_of(f.get("contentType")));
                        o.value()
                    } else {
                        Value::String(
                            self.conv
                                .text(&text_of(f.get("value")), &format!("{at} form {k}")),
                        )
                    };
                    if parts.insert(k.clone(), v).is_some() {
                        self.report.left_out.push(format!(
                            "{at}: form part `{k}` is given twice; postie keeps the last"
                        ));
                    }
                }
                if !parts.is_empty() {
                    out.set("multipart", Value::Object(parts));
                }
            }
            "graphql" => {
                let g = body.get("graphql").cloned().unwrap_or(Value::Null);
                let query = text_of(g.get("query"));
                let variables = match g.get("variables") {
                    Some(Value::String(s)) if !s.trim().is_empty() => serde_json::from_str(s)
                        .unwrap_or_else(|_| {
                            self.report.left_out.push(format!(
                                "{at}: GraphQL variables are not valid JSON; sent without them"
                            ));
                            Value::Null
                        }),
                    Some(Value::Object(m)) => Value::Object(m.clone()),
                    _ => Value::Null,
                };
                let mut j = json!({"query": query});
                if !variables.is_null() {
                    j["variables"] = variables;
                }
                out.set("json", self.conv.json(&j, &format!("{at} body")));
            }
            "file" => {
                self.report.left_out.push(format!(
                    "{at}: a binary body from a file ({}) is not supported yet; the request is sent without a body",
                    text_of(body.pointer("/file/src")).if_empty("no file chosen")
                ));
            }
            other => self
                .report
                .left_out
                .push(format!("{at}: body mode `{other}` is not supported")),
        }
    }

    fn examples(&mut self, responses: Option<&Value>, at: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for r in responses.and_then(Value::as_array).into_iter().flatten() {
            self.counts.examples += 1;
            let mut e = Obj::new();
            e.put("name", r.get("name").and_then(Value::as_str).unwrap_or(""));
            e.set(
                "status",
                r.get("code").and_then(Value::as_u64).unwrap_or(200),
            );
            let mut headers = Map::new();
            for h in r
                .get("header")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = text_of(h.get("key"));
                if !k.is_empty() {
                    headers.insert(k, Value::String(text_of(h.get("value"))));
                }
            }
            let is_json = headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("content-type")
                    && v.as_str().is_some_and(|v| v.contains("json"))
            }) || r.get("_postman_previewlanguage").and_then(Value::as_str)
                == Some("json");
            e.put("headers", Value::Object(headers));
            let body = text_of(r.get("body"));
            match serde_json::from_str::<Value>(&body) {
                Ok(v) if is_json => {
                    e.set("json", self.conv.json(&v, &format!("{at} example")));
                }
                _ => {
                    e.put("text", self.conv.text(&body, &format!("{at} example")));
                }
            }
            if let Some(orig) = r.get("originalRequest").filter(|o| o.is_object()) {
                let mut q = Obj::new();
                q.put(
                    "method",
                    orig.get("method").and_then(Value::as_str).unwrap_or(""),
                );
                let (url, query) = self.url(orig.get("url"), "example", at);
                let url = if query.is_empty() {
                    url
                } else {
                    let qs: Vec<String> = query
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect();
                    format!("{url}?{}", qs.join("&"))
                };
                q.put("url", url);
                let mut h = Map::new();
                for (k, v) in self.header_list(orig.get("header"), at) {
                    h.insert(k, Value::String(v));
                }
                q.put("headers", Value::Object(h));
                if let Some(b) = orig
                    .get("body")
                    .and_then(|b| b.get("raw"))
                    .and_then(Value::as_str)
                    && !b.is_empty()
                {
                    match serde_json::from_str::<Value>(b) {
                        Ok(v) => q.set("json", self.conv.json(&v, at)),
                        Err(_) => q.set("text", self.conv.text(b, at)),
                    };
                }
                e.put("request", q.value());
            }
            out.push(e.value());
        }
        out
    }

    fn finish(mut self, name: String, root: &Value) -> Result<Import, InputError> {
        let mut doc = Obj::new();
        doc.set("name", name.clone());
        doc.put(
            "description",
            description(root.pointer("/info/description")),
        );
        doc.set("compat", "newman");
        doc.put(
            "variables",
            Value::Object(std::mem::take(&mut self.variables)),
        );
        doc.put(
            "environments",
            Value::Object(std::mem::take(&mut self.environments)),
        );
        if let Some(o) = self.oauth2.take() {
            doc.set("oauth2", o);
        }
        doc.put("script", self.collection_script.clone());
        doc.put("folders", Value::Object(std::mem::take(&mut self.folders)));
        let mut requests = std::mem::take(&mut self.oauth_requests);
        // The authorize request is the browser's, not a step: `postie auth login` runs it.
        requests.extend(std::mem::take(&mut self.requests));
        doc.put("requests", Value::Object(requests));
        let c = &self.counts;
        self.report.imported.insert(
            0,
            format!(
                "{} requests in {} folders, {} scripts, {} saved examples from collection \"{name}\"",
                c.requests, c.folders, c.scripts, c.examples
            ),
        );
        if c.disabled > 0 {
            self.report.notes.push(format!(
                "{} disabled entries (headers, query parameters, form fields, variables) were dropped",
                c.disabled
            ));
        }
        for (from, to) in &self.conv.renames {
            self.report.notes.push(format!(
                "variable `{from}` is `{to}` in postie (templates cannot use the original name); scripts naming it were changed to match"
            ));
        }
        for (d, at) in &self.conv.unknown_dynamic {
            self.report.left_out.push(format!(
                "{at}: dynamic variable `{{{{{d}}}}}` has no postie equivalent (known: $guid, $timestamp, $isoTimestamp, $randomInt and fake(): {})",
                crate::fake::KINDS.join(", ")
            ));
        }
        // Names used but defined nowhere: postie refuses to send `{{x}}` literally (Newman would).
        let doc = doc.value();
        let defined: BTreeSet<String> = doc
            .get("variables")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys().cloned())
            .chain(self.declared_env_names.iter().cloned())
            .chain(self.script_set.iter().map(|n| ident(n)))
            .chain(self.captured.iter().cloned())
            .collect();
        let oauth_vars = [
            "access_token",
            "refresh_token",
            "code",
            "code_verifier",
            "code_challenge",
        ];
        for (n, at) in &self.conv.referenced {
            if !defined.contains(n) && !oauth_vars.contains(&n.as_str()) {
                self.report.notes.push(format!(
                    "`{n}` is used ({at}) but defined nowhere in the collection, its environments or its scripts; pass --var {n}=... (Newman would send `{{{{{n}}}}}` as it is)"
                ));
            }
        }
        Ok(Import {
            doc,
            secrets: self.secrets,
            report: self.report,
        })
    }
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() {
            other.to_string()
        } else {
            self
        }
    }
}

fn body_present(body: &Value) -> bool {
    match body.get("mode").and_then(Value::as_str).unwrap_or("raw") {
        "raw" => !text_of(body.get("raw")).is_empty(),
        "urlencoded" => body
            .get("urlencoded")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        "formdata" => body
            .get("formdata")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        _ => true,
    }
}

/// Splits `base?a=1&b` into the base and its pairs (`b` has no value).
fn split_query(s: &str) -> (String, Vec<(String, Option<String>)>) {
    let (s, hash) = match s.split_once('#') {
        Some((a, h)) if !a.contains("{{") || !h.contains("}}") => (a, Some(h)),
        _ => (s, None),
    };
    let (base, q) = match s.split_once('?') {
        Some((b, q)) => (b, q),
        None => (s, ""),
    };
    let mut base = base.to_string();
    if let Some(h) = hash {
        base.push('#');
        base.push_str(h);
    }
    let pairs = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (p.to_string(), None),
        })
        .collect();
    (base, pairs)
}

/// Names every script in the file sets (`exec` lines anywhere).
fn scripts_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(exec) = m.get("exec") {
                let code = match exec {
                    Value::Array(lines) => lines
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                out.extend(crate::script::names_set(&code));
            }
            m.values().for_each(|x| scripts_in(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| scripts_in(x, out)),
        _ => {}
    }
}

/// What postie's sandbox cannot do, found by the text that does it.
const UNSUPPORTED: [(&str, &str); 6] = [
    (
        "pm.sendRequest",
        "pm.sendRequest is not supported (scripts cannot reach the network; make it a request of the collection)",
    ),
    ("xml2Json", "xml2Json is not supported"),
    ("jsonSchema", "to.have.jsonSchema is not supported"),
    ("tv4.", "tv4 (JSON Schema) is not supported"),
    ("require('ajv')", "require('ajv') is not supported"),
    ("cheerio", "cheerio is not supported"),
];
