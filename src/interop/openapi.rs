//! OpenAPI 3.0/3.1 and Swagger 2.0 documents → a collection: one request per operation, named by
//! its `operationId`, with the server as `base_url` (an environment per server, and `mock` for
//! the bundled mock), path and required query parameters as variables, a JSON body from the
//! example or built from the schema, and the security scheme as postie's own auth.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::names::{Namer, env_key, ident, slug};
use super::{CodeGrant, Import, InputError, Obj, Report};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Imports a spec file (YAML or JSON).
pub fn import(path: &Path) -> Result<Import, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, format!("cannot read it: {e}")))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    let doc: Value = if is_json {
        serde_json::from_str(&text).map_err(|e| InputError::json(path, &e))?
    } else {
        if let Err((line, col, message)) = crate::util::yaml_nesting(&text) {
            return Err(InputError {
                file: path.to_path_buf(),
                at: Some((line, col)),
                message,
            });
        }
        serde_yaml::from_str(&text).map_err(|e| InputError::yaml(path, &e))?
    };
    let swagger = doc.get("swagger").and_then(Value::as_str).map(String::from);
    let openapi = doc.get("openapi").and_then(Value::as_str).map(String::from);
    match (&swagger, &openapi) {
        (Some(v), _) if v.starts_with('2') => {}
        (_, Some(v)) if v.starts_with('3') => {}
        (Some(v), _) | (_, Some(v)) => {
            return Err(InputError::new(
                path,
                format!("version {v} is not supported (OpenAPI 3.0/3.1 and Swagger 2.0 are)"),
            ));
        }
        _ => {
            return Err(InputError::new(
                path,
                "not an OpenAPI or Swagger document: it has neither `openapi:` nor `swagger:` at the top",
            ));
        }
    }
    if !doc.get("paths").is_some_and(Value::is_object) {
        return Err(InputError::new(path, "the document has no `paths` object"));
    }
    let odoc = crate::openapi::Doc {
        root: doc,
        v2: swagger.is_some(),
    };
    let mut imp = Spec {
        doc: &odoc.root,
        odoc: &odoc,
        v2: odoc.v2,
        report: Report::default(),
        variables: Map::new(),
        requests: Map::new(),
        namer: Namer::default(),
        secrets: Vec::new(),
        oauth2: None,
        auth_requests: Vec::new(),
        auth_note: None,
        refs_missing: BTreeSet::new(),
    };
    Ok(imp.run(path))
}

struct Spec<'a> {
    doc: &'a Value,
    odoc: &'a crate::openapi::Doc,
    v2: bool,
    report: Report,
    variables: Map<String, Value>,
    requests: Map<String, Value>,
    namer: Namer,
    secrets: Vec<(String, String)>,
    oauth2: Option<Value>,
    auth_requests: Vec<(String, Value)>,
    auth_note: Option<String>,
    refs_missing: BTreeSet<String>,
}

/// `getContacts` → `get_contacts`, `Get-User by ID` → `get_user_by_id`.
pub fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push(' ');
        }
        out.push(c);
        prev = Some(c);
    }
    slug(&out)
}

impl<'a> Spec<'a> {
    /// Follows `$ref`s inside the document (a missing or external one is reported once).
    fn resolve(&mut self, v: &'a Value) -> &'a Value {
        let mut cur = v;
        for _ in 0..32 {
            let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
                return cur;
            };
            match r.strip_prefix('#') {
                Some(pointer) => match self
                    .doc
                    .pointer(&pointer.replace("~1", "/").replace("~0", "~"))
                {
                    Some(t) => cur = t,
                    None => {
                        if self.refs_missing.insert(r.to_string()) {
                            self.report
                                .left_out
                                .push(format!("$ref `{r}` points at nothing in the document"));
                        }
                        return &Value::Null;
                    }
                },
                None => {
                    if self.refs_missing.insert(r.to_string()) {
                        self.report.left_out.push(format!(
                            "external $ref `{r}` is not followed; bundle the spec into one file first"
                        ));
                    }
                    return &Value::Null;
                }
            }
        }
        &Value::Null
    }

    fn run(&mut self, path: &Path) -> Import {
        let title = self
            .doc
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .to_string();
        let (servers, base_path) = self.servers();
        let mut environments = Map::new();
        if let Some((first, _)) = servers.first() {
            self.variables
                .insert("base_url".into(), Value::String(first.clone()));
        } else {
            self.variables.insert(
                "base_url".into(),
                Value::String(format!("http://localhost{base_path}")),
            );
            self.report.notes.push(
                "the spec names no server: `base_url` is http://localhost with its base path; pass --var base_url=... or use --env mock".into(),
            );
        }
        if servers.len() > 1 {
            for (url, name) in &servers {
                environments.insert(slug(name), json!({"base_url": url}));
            }
        }
        self.security_schemes();
        // Operations, in document order.
        let doc = self.doc;
        let paths = doc["paths"].as_object().into_iter().flatten();
        let mut count = 0;
        for (p, item) in paths {
            let item = self.resolve(item);
            if !item.is_object() {
                continue;
            }
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    self.operation(p, m, item, op);
                    count += 1;
                }
            }
        }
        // The mock environment: the bundled mock serves the spec's base path at <<mock_url>>.
        let mut mock = Obj::new();
        mock.set("base_url", format!("<<mock_url>>{base_path}"));
        if self.oauth2.is_some() {
            mock.set("auth_url", "<<mock_url>>");
            if let Ok(cfg) = crate::mock::MockConfig::bundled()
                && let Some(c) = cfg.clients.iter().find(|c| !c.public)
            {
                mock.set("client_id", c.client_id.clone());
                if let Some(s) = &c.client_secret {
                    mock.set("client_secret", json!({"value": s, "secret": true, "description": "the bundled mock's demo application (a mock credential)"}));
                }
                if let Some(r) = c.redirect_uris.first() {
                    mock.set("redirect_uri", r.clone());
                }
            }
        }
        environments.insert("mock".into(), mock.value());
        let mut requests = Map::new();
        for (n, r) in self.auth_requests.drain(..) {
            requests.insert(n, r);
        }
        requests.extend(std::mem::take(&mut self.requests));
        let mut doc = Obj::new();
        doc.set("name", slug(&title));
        let mut description = self
            .doc
            .pointer("/info/description")
            .and_then(Value::as_str)
            .map(first_paragraph)
            .unwrap_or_default();
        if let Some(n) = &self.auth_note {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(n);
        }
        doc.put("description", description);
        doc.put(
            "variables",
            Value::Object(std::mem::take(&mut self.variables)),
        );
        doc.put("environments", Value::Object(environments));
        if let Some(o) = self.oauth2.take() {
            doc.set("oauth2", o);
        }
        doc.set("requests", Value::Object(requests));
        self.report.imported.insert(
            0,
            format!(
                "{count} operations of \"{title}\" ({}) from {}",
                if self.v2 {
                    "Swagger 2.0".to_string()
                } else {
                    format!("OpenAPI {}", self.doc["openapi"].as_str().unwrap_or("3"))
                },
                path.display()
            ),
        );
        Import {
            doc: doc.value(),
            secrets: std::mem::take(&mut self.secrets),
            report: std::mem::take(&mut self.report),
        }
    }

    /// The servers as (URL, name) and the base path of the first (for the mock).
    fn servers(&mut self) -> (Vec<(String, String)>, String) {
        let doc = self.doc;
        if self.v2 {
            let host = doc.get("host").and_then(Value::as_str);
            let base = doc
                .get("basePath")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string();
            let schemes: Vec<&str> = doc
                .get("schemes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let scheme = if schemes.is_empty() || schemes.contains(&"https") {
                "https"
            } else {
                schemes[0]
            };
            return match host {
                Some(h) => (vec![(format!("{scheme}://{h}{base}"), h.to_string())], base),
                None => (vec![], base),
            };
        }
        let mut out = Vec::new();
        let mut base = String::new();
        for (i, s) in doc
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(url) = s.get("url").and_then(Value::as_str) else {
                continue;
            };
            let mut url = url.to_string();
            // Server variables take their defaults (a variable without one is reported).
            if let Some(vars) = s.get("variables").and_then(Value::as_object) {
                for (k, v) in vars {
                    let d = v
                        .get("default")
                        .map(crate::capture::value_text)
                        .unwrap_or_default();
                    if d.is_empty() {
                        self.report.notes.push(format!(
                            "server `{url}`: variable `{k}` has no default; set `{}`",
                            ident(k)
                        ));
                        url = url.replace(&format!("{{{k}}}"), &format!("<<{}>>", ident(k)));
                    } else {
                        url = url.replace(&format!("{{{k}}}"), &d);
                    }
                }
            }
            let url = url.trim_end_matches('/').to_string();
            let path_part = match url.find("://") {
                Some(i) => url[i + 3..]
                    .find('/')
                    .map(|j| url[i + 3 + j..].to_string())
                    .unwrap_or_default(),
                None => url.clone(),
            };
            if i == 0 {
                base = path_part.clone();
            }
            let url = if url.starts_with('/') || !url.contains("://") {
                self.report.notes.push(format!(
                    "server `{url}` is relative; `base_url` is http://localhost{url} — set it to the API's origin"
                ));
                format!(
                    "http://localhost{}",
                    if url.starts_with('/') {
                        url.clone()
                    } else {
                        format!("/{url}")
                    }
                )
            } else {
                url
            };
            let name = s
                .get("description")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| {
                    url.split("://")
                        .nth(1)
                        .unwrap_or(&url)
                        .split('/')
                        .next()
                        .unwrap_or("server")
                        .to_string()
                });
            out.push((url, name));
        }
        (out, base)
    }

    /// Reads the security schemes: the first OAuth2 scheme with a code flow becomes the
    /// collection's `oauth2:` block.
    fn security_schemes(&mut self) {
        let doc = self.doc;
        let schemes = if self.v2 {
            doc.get("securityDefinitions")
        } else {
            doc.pointer("/components/securitySchemes")
        };
        let Some(schemes) = schemes.and_then(Value::as_object) else {
            return;
        };
        for (name, s) in schemes {
            let s = self.resolve(s);
            if s.get("type").and_then(Value::as_str) != Some("oauth2") {
                continue;
            }
            let (auth, token, refresh, scopes) = if self.v2 {
                if s.get("flow").and_then(Value::as_str) != Some("accessCode") {
                    continue;
                }
                (
                    s.get("authorizationUrl").and_then(Value::as_str),
                    s.get("tokenUrl").and_then(Value::as_str),
                    None,
                    s.get("scopes"),
                )
            } else {
                let Some(f) = s.pointer("/flows/authorizationCode") else {
                    continue;
                };
                (
                    f.get("authorizationUrl").and_then(Value::as_str),
                    f.get("tokenUrl").and_then(Value::as_str),
                    f.get("refreshUrl").and_then(Value::as_str),
                    f.get("scopes"),
                )
            };
            let (Some(auth), Some(token)) = (auth, token) else {
                continue;
            };
            // The authorization server's origin is a variable, so the mock can stand in for it.
            let origin = origin_of(auth);
            self.variables
                .insert("auth_url".into(), Value::String(origin.clone()));
            let local = |u: &str| match u.strip_prefix(&origin) {
                Some(rest) => format!("<<auth_url>>{rest}"),
                None => u.to_string(),
            };
            // The scopes operations ask for (a scheme may declare more than any uses).
            let declared: Vec<String> = scopes
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let used = self.used_scopes(name);
            let scope_list: Vec<String> = if used.is_empty() {
                declared
            } else {
                declared.into_iter().filter(|s| used.contains(s)).collect()
            };
            self.variables
                .insert("client_id".into(), json!("<<env.CLIENT_ID>>"));
            self.variables.insert(
                "client_secret".into(),
                json!({"value": "<<env.CLIENT_SECRET>>", "secret": true}),
            );
            self.variables.insert(
                "redirect_uri".into(),
                json!("http://127.0.0.1:8910/callback"),
            );
            self.variables
                .insert("scopes".into(), Value::String(scope_list.join(" ")));
            self.variables
                .insert("oauth_state".into(), json!("<<random_state()>>"));
            let grant = CodeGrant {
                authorize_url: local(auth),
                token_url: local(token),
                refresh_url: refresh.map(local),
                pkce: false,
                basic: true,
                has_secret: true,
            };
            let (block, reqs) = super::code_grant_requests(&grant, &mut self.namer);
            self.auth_requests = reqs;
            self.oauth2 = Some(block);
            self.auth_note = Some(format!(
                "OAuth2 (`{name}`, authorization code): put CLIENT_ID and CLIENT_SECRET in .env beside this file, register http://127.0.0.1:8910/callback (or set `redirect_uri`), then `postie auth login` once. Against the bundled mock: `postie auth login FILE --mock`."
            ));
            self.report.translated.push(format!(
                "security scheme `{name}` (authorization code) → an oauth2: block; requests that use it send `Bearer <<access_token>>`"
            ));
            return;
        }
    }

    /// Every scope an operation's (or the document's) security asks of scheme `name`.
    fn used_scopes(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut add = |sec: Option<&Value>| {
            for alt in sec.and_then(Value::as_array).into_iter().flatten() {
                for s in alt
                    .get(name)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = s.as_str() {
                        out.insert(s.to_string());
                    }
                }
            }
        };
        add(self.doc.get("security"));
        for item in self.doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
        {
            for m in METHODS {
                add(item.get(m).and_then(|op| op.get("security")));
            }
        }
        out
    }

    fn operation(&mut self, p: &str, method: &str, item: &'a Value, op: &'a Value) {
        let at = format!("{} {p}", method.to_uppercase());
        let op_id = op.get("operationId").and_then(Value::as_str);
        let key = {
            let base = match op_id {
                Some(id) => snake(id),
                None => slug(&format!("{method} {p}")),
            };
            self.namer.unique(&[base])
        };
        let mut req = Obj::new();
        if let Some(id) = op_id
            && snake(id) != id
        {
            req.set("title", id);
        }
        if let Some(tag) = op
            .get("tags")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(Value::as_str)
        {
            req.set("folder", tag.replace('/', "-"));
        }
        // Parameters: the path item's, overridden by the operation's (by name and place).
        let mut params: Vec<&'a Value> = Vec::new();
        for list in [item.get("parameters"), op.get("parameters")] {
            for prm in list.and_then(Value::as_array).into_iter().flatten() {
                let prm = self.resolve(prm);
                let id = (
                    prm.get("name").and_then(Value::as_str),
                    prm.get("in").and_then(Value::as_str),
                );
                params.retain(|x| {
                    (
                        x.get("name").and_then(Value::as_str),
                        x.get("in").and_then(Value::as_str),
                    ) != id
                });
                params.push(prm);
            }
        }
        let mut url = format!("<<base_url>>{p}");
        let mut query = Map::new();
        let mut headers = Map::new();
        let mut optional: Vec<String> = Vec::new();
        let mut form = Map::new();
        let mut body: Option<Value> = None;
        let mut multipart = false;
        for prm in &params {
            let name = prm.get("name").and_then(Value::as_str).unwrap_or("");
            let place = prm.get("in").and_then(Value::as_str).unwrap_or("");
            let required = prm
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(place == "path");
            match place {
                "path" => {
                    let var = self.param_var(name, prm, &key);
                    url = url.replace(&format!("{{{name}}}"), &format!("<<{var}>>"));
                }
                "query" if required => {
                    let var = self.param_var(name, prm, &key);
                    query.insert(name.to_string(), Value::String(format!("<<{var}>>")));
                }
                "header"
                    if required
                        && !["accept", "content-type", "authorization"]
                            .contains(&name.to_ascii_lowercase().as_str()) =>
                {
                    let var = self.param_var(name, prm, &key);
                    headers.insert(name.to_string(), Value::String(format!("<<{var}>>")));
                }
                "body" => {
                    let schema = prm.get("schema").unwrap_or(&Value::Null);
                    body = Some(self.example_of(prm, schema));
                }
                "formData" => {
                    if prm.get("type").and_then(Value::as_str) == Some("file") {
                        multipart = true;
                        form.insert(name.to_string(), json!({"file": format!("files/{name}")}));
                        self.report.notes.push(format!("{at}: file part `{name}` reads files/{name} beside the collection; put the file there"));
                    } else {
                        let v = self.example_of(prm, prm);
                        form.insert(
                            name.to_string(),
                            Value::String(crate::capture::value_text(&v)),
                        );
                    }
                }
                "cookie" if required => {
                    self.report.left_out.push(format!(
                        "{at}: cookie parameter `{name}` is not sent (add a Cookie header)"
                    ));
                }
                _ => optional.push(format!("{place} `{name}`")),
            }
        }
        // OpenAPI 3 request bodies.
        let mut content_type: Option<String> = None;
        if let Some(rb) = op.get("requestBody") {
            let rb = self.resolve(rb);
            if let Some(content) = rb.get("content").and_then(Value::as_object) {
                let pick = content
                    .keys()
                    .find(|k| k.contains("json"))
                    .or_else(|| {
                        content
                            .keys()
                            .find(|k| k.starts_with("application/x-www-form-urlencoded"))
                    })
                    .or_else(|| content.keys().find(|k| k.starts_with("multipart/")))
                    .or_else(|| content.keys().next())
                    .cloned();
                if let Some(ct) = pick {
                    let media = &content[&ct];
                    let schema = media.get("schema").unwrap_or(&Value::Null);
                    let v = self.example_of(media, schema);
                    if ct.contains("json") {
                        body = Some(v);
                        if ct != "application/json" {
                            content_type = Some(ct.clone());
                        }
                    } else if ct.starts_with("application/x-www-form-urlencoded")
                        || ct.starts_with("multipart/")
                    {
                        multipart = ct.starts_with("multipart/");
                        if let Value::Object(m) = v {
                            for (k, x) in m {
                                let is_file = self
                                    .resolve(schema)
                                    .pointer(&format!("/properties/{k}/format"))
                                    .and_then(Value::as_str)
                                    == Some("binary");
                                if is_file {
                                    form.insert(k.clone(), json!({"file": format!("files/{k}")}));
                                } else {
                                    form.insert(k, Value::String(crate::capture::value_text(&x)));
                                }
                            }
                        }
                    } else {
                        content_type = Some(ct.clone());
                        req.set("text", crate::capture::value_text(&v));
                    }
                }
            }
        }
        if self.v2 && body.is_some() {
            let consumes = op.get("consumes").or_else(|| self.doc.get("consumes"));
            if let Some(ct) = consumes
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .filter(|c| *c != "application/json")
            {
                content_type = Some(ct.to_string());
            }
        }
        if let Some(ct) = content_type {
            headers.insert("Content-Type".into(), Value::String(ct));
        }
        if let Some(produces) = op
            .get("produces")
            .or_else(|| self.doc.get("produces"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        {
            headers.entry("Accept").or_insert(json!(produces));
        }
        // Security: the operation's, else the document's; `[]` means none.
        let security = op.get("security").or_else(|| self.doc.get("security"));
        let auth = self.security(security, &mut headers, &mut query, &at);
        let note = op
            .get("summary")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| {
                op.get("description")
                    .and_then(Value::as_str)
                    .map(first_paragraph)
            });
        let mut note = note.unwrap_or_default();
        if !optional.is_empty() {
            if !note.is_empty() {
                note.push('\n');
            }
            note.push_str(&format!("Optional: {}.", optional.join(", ")));
        }
        req.put("note", note);
        req.set("method", method.to_uppercase());
        req.set("url", url);
        req.put("query", Value::Object(query));
        req.put("headers", Value::Object(headers));
        if let Some(b) = body {
            req.set("json", b);
        } else if !form.is_empty() {
            if multipart {
                req.set("multipart", Value::Object(form));
            } else {
                req.set("form", Value::Object(form));
            }
        }
        if let Some(text) = req.0.shift_remove("text") {
            req.0.insert("text".into(), text);
        }
        if let Some(a) = auth {
            req.set("auth", a);
        }
        self.requests.insert(key, req.value());
    }

    /// A parameter as a variable: its example (or default, or first enum value) becomes the
    /// variable's value; a name another operation gave a different example keeps the first.
    fn param_var(&mut self, name: &str, prm: &'a Value, key: &str) -> String {
        let mut var = ident(name);
        if self.namer.taken(&var) && !self.variables.contains_key(&var) {
            var = ident(&format!("{key}_{name}"));
        }
        if !self.variables.contains_key(&var) {
            let schema = prm.get("schema").unwrap_or(prm);
            let v = self.example_of(prm, schema);
            let v = match v {
                Value::Null => Value::String(String::new()),
                Value::String(s) => Value::String(super::template::escape_literal(&s)),
                other => Value::String(crate::capture::value_text(&other)),
            };
            self.variables.insert(var.clone(), v);
        }
        var
    }

    /// An example value for a parameter or media type: its own example(s), else the schema's.
    fn example_of(&mut self, holder: &'a Value, schema: &'a Value) -> Value {
        if let Some(e) = holder.get("example").or_else(|| holder.get("x-example")) {
            return escape_strings(e);
        }
        if let Some(ex) = holder.get("examples").and_then(Value::as_object)
            && let Some((_, first)) = ex.iter().next()
        {
            let first = self.resolve(first);
            if let Some(v) = first.get("value") {
                return escape_strings(v);
            }
        }
        let v = self.synthesise(schema);
        escape_strings(&v)
    }

    /// A value a schema accepts (see [`crate::openapi::synthesise`]), with placeholders.
    fn synthesise(&mut self, schema: &'a Value) -> Value {
        self.report_refs(schema, &mut Vec::new());
        crate::openapi::synthesise(self.odoc, schema, crate::openapi::Fill::Plain, false)
    }

    /// Reports the `$ref`s in a schema that cannot be followed (external or missing).
    fn report_refs(&mut self, v: &'a Value, seen: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    if seen.contains(&r) || seen.len() > 64 {
                        return;
                    }
                    seen.push(r);
                    let target = self.resolve(v);
                    self.report_refs(target, seen);
                    return;
                }
                for x in m.values() {
                    self.report_refs(x, seen);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.report_refs(x, seen)),
            _ => {}
        }
    }

    /// The request's auth from its security requirements: OAuth2 (preferred, when the
    /// collection has the block), then API keys, then HTTP basic or bearer.
    fn security(
        &mut self,
        security: Option<&'a Value>,
        headers: &mut Map<String, Value>,
        query: &mut Map<String, Value>,
        at: &str,
    ) -> Option<Value> {
        let alternatives = security.and_then(Value::as_array)?;
        if alternatives.is_empty() {
            return None;
        }
        let schemes = if self.v2 {
            self.doc.get("securityDefinitions")
        } else {
            self.doc.pointer("/components/securitySchemes")
        }
        .and_then(Value::as_object);
        let scheme_of = |name: &str| schemes.and_then(|s| s.get(name));
        let names: Vec<&str> = alternatives
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        if names.is_empty() {
            // `security: [{}]`: anonymous access allowed.
            return None;
        }
        if self.oauth2.is_some()
            && names.iter().any(|n| {
                scheme_of(n)
                    .and_then(|s| s.get("type"))
                    .and_then(Value::as_str)
                    == Some("oauth2")
            })
        {
            return Some(json!({"bearer": "<<access_token>>"}));
        }
        for n in &names {
            let Some(s) = scheme_of(n) else { continue };
            let s = self.resolve(s);
            match (
                s.get("type").and_then(Value::as_str),
                s.get("scheme").and_then(Value::as_str),
            ) {
                (Some("apiKey"), _) => {
                    let key_name = s.get("name").and_then(Value::as_str).unwrap_or("X-API-Key");
                    let var = ident(n);
                    if !self.variables.contains_key(&var) {
                        let env = env_key(&[&var]);
                        self.variables.insert(
                            var.clone(),
                            json!({"value": format!("<<env.{env}>>"), "secret": true}),
                        );
                    }
                    match s.get("in").and_then(Value::as_str) {
                        Some("query") => {
                            query.insert(key_name.to_string(), Value::String(format!("<<{var}>>")));
                        }
                        Some("cookie") => {
                            headers.insert(
                                "Cookie".into(),
                                Value::String(format!("{key_name}=<<{var}>>")),
                            );
                        }
                        _ => {
                            headers
                                .insert(key_name.to_string(), Value::String(format!("<<{var}>>")));
                        }
                    }
                    return None;
                }
                (Some("basic"), _) | (Some("http"), Some("basic")) => {
                    self.variables
                        .entry("username")
                        .or_insert(json!("<<env.API_USERNAME>>"));
                    self.variables
                        .entry("password")
                        .or_insert(json!({"value": "<<env.API_PASSWORD>>", "secret": true}));
                    return Some(
                        json!({"basic": {"user": "<<username>>", "password": "<<password>>"}}),
                    );
                }
                (Some("http"), Some(b)) if b.eq_ignore_ascii_case("bearer") => {
                    self.variables
                        .entry("access_token")
                        .or_insert(json!({"value": "<<env.ACCESS_TOKEN>>", "secret": true}));
                    return Some(json!({"bearer": "<<access_token>>"}));
                }
                (Some("oauth2") | Some("openIdConnect"), _) => {
                    self.variables
                        .entry("access_token")
                        .or_insert(json!({"value": "<<env.ACCESS_TOKEN>>", "secret": true}));
                    return Some(json!({"bearer": "<<access_token>>"}));
                }
                _ => {}
            }
        }
        self.report.notes.push(format!(
            "{at}: security {} has no postie equivalent; sent without auth",
            names.join(", ")
        ));
        None
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find('/') {
        Some(j) => url[..after + j].to_string(),
        None => url.to_string(),
    }
}

fn first_paragraph(d: &str) -> String {
    let p = d.trim().split("\n\n").next().unwrap_or("").trim();
    let one_line = p.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        let cut: String = one_line.chars().take(297).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

/// Escapes template delimiters in every string of an example (it is data, not a template).
fn escape_strings(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(super::template::escape_literal(s)),
        Value::Array(a) => Value::Array(a.iter().map(escape_strings).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (super::template::escape_literal(k), escape_strings(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snake_case_operation_ids() {
        assert_eq!(super::snake("getContacts"), "get_contacts");
        assert_eq!(
            super::snake("createContactsJSONImport"),
            "create_contacts_jsonimport"
        );
        assert_eq!(super::snake("get-user_by ID"), "get_user_by_id");
    }
}
