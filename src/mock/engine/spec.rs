//! Serving an OpenAPI or Swagger document: every operation answers, requests are checked against
//! it, responses come from its examples or are made up from its schemas (deterministically, by
//! `--seed`), and resources a `POST` creates are there for the `GET`, `PUT`, `PATCH` and `DELETE`
//! that follow (unless `--stateless`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::mock::http::{Req, Resp};
use crate::openapi::{Doc, Fill, In, Operation, Rng};

/// How a request was authenticated, as the engine's caller judges it.
pub trait Bearer {
    /// Whether the bearer token is acceptable.
    fn accepts(&self, req: &Req, token: &str) -> bool;
    /// The scopes an accepted token grants, when the caller knows them (`None`: every scope).
    fn scopes(&self, _req: &Req, _token: &str) -> Option<Vec<String>> {
        None
    }
    /// The time (Unix ms) resources are stamped with: the caller's clock.
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Accepts any non-empty bearer token (a spec served without `--oauth`).
pub struct AnyBearer;

impl Bearer for AnyBearer {
    fn accepts(&self, _: &Req, token: &str) -> bool {
        !token.is_empty()
    }
}

struct Op {
    op: Operation,
    /// Path segments: `Some(literal)` or `None` for a `{param}`.
    segments: Vec<Option<String>>,
    /// Names of the `{param}` segments, in order.
    names: Vec<String>,
    literals: usize,
    /// What the operation does to resources, when the shape says.
    role: Role,
}

#[derive(Debug, Clone, PartialEq)]
enum Role {
    None,
    /// `POST /things` when `/things/{id}` exists: creates under this collection path.
    Create,
    /// `GET /things` when `/things/{id}` exists.
    List,
    /// An operation on `/things/{id}`: the collection path and the id's parameter name.
    Item {
        collection: String,
        param: String,
    },
}

/// Operations by path: a tree of segments, so finding one costs the path's length, not the
/// document's size.
#[derive(Default)]
struct Route {
    literal: HashMap<String, Route>,
    param: Option<Box<Route>>,
    /// Operations whose path ends here.
    ops: Vec<usize>,
}

impl Route {
    fn insert(&mut self, segments: &[Option<String>], i: usize) {
        let mut node = self;
        for s in segments {
            node = match s {
                Some(l) => node.literal.entry(l.clone()).or_default(),
                None => node.param.get_or_insert_default(),
            };
        }
        node.ops.push(i);
    }

    /// Every operation whose path template fits the segments.
    fn fits(&self, segs: &[&str], out: &mut Vec<usize>) {
        let Some((first, rest)) = segs.split_first() else {
            out.extend_from_slice(&self.ops);
            return;
        };
        if let Some(n) = self.literal.get(*first) {
            n.fits(rest, out);
        }
        if let Some(n) = &self.param {
            n.fits(rest, out);
        }
    }
}

/// An error body in an API's own shape: status, what is wrong, each fault.
pub type ErrorShape = fn(u16, &str, &[String]) -> Resp;

/// Where a method and path lead.
enum Located {
    /// An operation (its index) and the path parameters.
    Op(usize, Vec<(String, String)>),
    /// The path exists with these other methods.
    OtherMethods(Vec<String>),
}

/// A served document.
pub struct SpecServer {
    doc: Doc,
    ops: Vec<Op>,
    base: String,
    seed: u64,
    stateful: bool,
    schemes: Map<String, Value>,
    routes: Route,
    /// `/things` → the name of the id parameter of `/things/{id}`.
    items: HashMap<String, String>,
    /// A path parameter's name → its schema (the first declaration).
    path_params: HashMap<String, Value>,
    /// Stored resources: collection path → id → resource.
    store: Mutex<HashMap<String, IndexMap<String, Value>>>,
    created: std::sync::atomic::AtomicU64,
    /// The API's own error shape, when it has one ([`SpecServer::with_error_shape`]).
    house: Option<ErrorShape>,
    /// Synthesised bodies: (operation, status) → body.
    cache: Mutex<HashMap<(usize, String), Arc<Value>>>,
}

impl std::fmt::Debug for SpecServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecServer")
            .field("operations", &self.ops.len())
            .field("base", &self.base)
            .field("seed", &self.seed)
            .field("stateful", &self.stateful)
            .finish()
    }
}

impl SpecServer {
    /// Answers the engine's own errors (validation, 404, 405) in an API's house shape instead of
    /// problem+json: the Constant Contact pack's error array when its Swagger is served behind it.
    pub fn with_error_shape(mut self, shape: ErrorShape) -> SpecServer {
        self.house = Some(shape);
        self
    }

    fn problem(&self, status: u16, title: &str, detail: &str, errors: &[String]) -> Resp {
        match self.house {
            Some(shape) => shape(status, detail, errors),
            None => problem(status, title, detail, errors),
        }
    }

    /// Loads a document.
    pub fn load(path: &std::path::Path, seed: u64, stateful: bool) -> Result<SpecServer, String> {
        let doc = Doc::load(path).map_err(|(at, m)| match at {
            Some((l, c)) => format!("{}:{l}:{c}: {m}", path.display()),
            None => format!("{}: {m}", path.display()),
        })?;
        Ok(SpecServer::new(doc, seed, stateful))
    }

    /// Serves a parsed document.
    pub fn new(doc: Doc, seed: u64, stateful: bool) -> SpecServer {
        let operations = doc.operations();
        let paths: std::collections::HashSet<&str> =
            operations.iter().map(|o| o.path.as_str()).collect();
        let mut items: HashMap<String, String> = HashMap::new();
        for o in &operations {
            if let Some((collection, last)) = o.path.rsplit_once('/')
                && let Some(name) = last.strip_prefix('{').and_then(|l| l.strip_suffix('}'))
            {
                items
                    .entry(collection.to_string())
                    .or_insert_with(|| name.to_string());
            }
        }
        let mut path_params: HashMap<String, Value> = HashMap::new();
        for p in operations.iter().flat_map(|o| &o.params) {
            if p.place == In::Path {
                path_params
                    .entry(p.name.clone())
                    .or_insert_with(|| p.schema.clone());
            }
        }
        let roles: Vec<Role> = operations
            .iter()
            .map(|op| role_of(op, &paths, &items))
            .collect();
        let mut ops: Vec<Op> = operations
            .into_iter()
            .zip(roles)
            .map(|(op, role)| {
                let segments: Vec<Option<String>> = op
                    .path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            None
                        } else {
                            Some(s.to_string())
                        }
                    })
                    .collect();
                let names = op
                    .path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .map(String::from)
                    .collect();
                let literals = segments.iter().filter(|s| s.is_some()).count();
                Op {
                    op,
                    segments,
                    names,
                    literals,
                    role,
                }
            })
            .collect();
        // Literal segments win over parameters (`/contacts/sign_up_form` over `/contacts/{id}`).
        ops.sort_by_key(|o| std::cmp::Reverse(o.literals));
        let mut routes = Route::default();
        for (i, o) in ops.iter().enumerate() {
            routes.insert(&o.segments, i);
        }
        SpecServer {
            routes,
            items,
            path_params,
            base: doc.base_path(),
            schemes: doc.security_schemes(),
            doc,
            ops,
            seed,
            stateful,
            store: Mutex::new(HashMap::new()),
            created: std::sync::atomic::AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            house: None,
        }
    }

    /// How many operations it serves.
    pub fn operations(&self) -> usize {
        self.ops.len()
    }

    /// Finds the operation for a method and path: its index and path parameters, or the
    /// methods the path has when the method is not one of them.
    fn locate(&self, method: &str, path: &str) -> Option<Located> {
        let path = path.strip_prefix(self.base.as_str())?;
        if !(path.is_empty() || path.starts_with('/')) {
            return None;
        }
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut fitting = Vec::new();
        self.routes.fits(&segs, &mut fitting);
        // Operations are numbered most literal segments first.
        fitting.sort_unstable();
        let mut allowed = Vec::new();
        for i in fitting {
            let o = &self.ops[i];
            if o.op.method != method {
                allowed.push(o.op.method.clone());
                continue;
            }
            let params: Vec<(String, String)> = o
                .segments
                .iter()
                .zip(&segs)
                .filter(|(s, _)| s.is_none())
                .map(|(_, p)| super::pattern::percent_decode(p))
                .zip(o.names.iter())
                .map(|(v, n)| (n.clone(), v))
                .collect();
            return Some(Located::Op(i, params));
        }
        if allowed.is_empty() {
            return None;
        }
        allowed.sort();
        allowed.dedup();
        Some(Located::OtherMethods(allowed))
    }

    /// Answers a request when its path is the document's; `None` when it is not.
    pub fn handle(&self, req: &Req, bearer: &dyn Bearer) -> Option<Resp> {
        match self.locate(&req.method, &req.path)? {
            Located::Op(i, params) => Some(self.answer(i, req, &params, bearer).route("spec")),
            Located::OtherMethods(allowed) => Some(
                self.problem(
                    405,
                    "Method Not Allowed",
                    &format!(
                        "{} {} is not an operation of the document; it allows {}",
                        req.method,
                        req.path,
                        allowed.join(", ")
                    ),
                    &[],
                )
                .with("allow", allowed.join(", "))
                .route("spec.method_not_allowed"),
            ),
        }
    }

    /// The document's own error response for this status on the operation a request names
    /// (an injected fault answers with it); `None` when the request is not the document's.
    pub fn error_for(&self, req: &Req, status: u16, detail: &str) -> Option<Resp> {
        let Located::Op(i, _) = self.locate(&req.method, &req.path)? else {
            return None;
        };
        let title = hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Some(self.error(i, status, title, detail, &[]))
    }

    fn answer(
        &self,
        i: usize,
        req: &Req,
        path_params: &[(String, String)],
        bearer: &dyn Bearer,
    ) -> Resp {
        let o = &self.ops[i];
        if let Some(r) = self.security(i, req, bearer) {
            return r;
        }
        // The request, checked against the operation.
        let mut errors = Vec::new();
        for p in &o.op.params {
            let given = match p.place {
                In::Path => path_params
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, v)| v.clone()),
                In::Query => req.q(&p.name).map(String::from),
                In::Header => req.header(&p.name).map(String::from),
                In::Cookie => cookie(req, &p.name),
                In::Form => None,
            };
            match given {
                None if p.required => {
                    errors.push(format!("{} {}: is required", place_name(p.place), p.name))
                }
                None => {}
                Some(text) => {
                    let v = crate::openapi::coerce(&self.doc, &p.schema, &text);
                    errors.extend(crate::openapi::validate(
                        &self.doc,
                        &p.schema,
                        &v,
                        &format!("{} {}", place_name(p.place), p.name),
                    ));
                }
            }
        }
        let mut body_json: Option<Value> = None;
        if let Some(b) = &o.op.body {
            let ct = req
                .header("content-type")
                .map(|c| {
                    c.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            if req.body.is_empty() {
                if b.required {
                    errors.push("body: is required".into());
                }
            } else {
                let media = b.content.iter().find(|(m, _, _)| media_matches(m, &ct));
                let Some((m, schema, _)) = media else {
                    let accepted: Vec<&str> =
                        b.content.iter().map(|(m, _, _)| m.as_str()).collect();
                    return self.error(
                        i,
                        415,
                        "Unsupported Media Type",
                        &format!(
                            "Content-Type `{}` is not accepted here; send one of {}",
                            if ct.is_empty() { "(none)" } else { &ct },
                            accepted.join(", ")
                        ),
                        &[],
                    );
                };
                let parsed = if m.contains("json") {
                    serde_json::from_slice::<Value>(&req.body)
                        .map_err(|e| format!("body: not valid JSON: {e}"))
                } else if m.starts_with("application/x-www-form-urlencoded") {
                    let props = self
                        .doc
                        .resolve(schema)
                        .and_then(|s| s.get("properties"))
                        .cloned()
                        .unwrap_or(json!({}));
                    Ok(Value::Object(
                        url::form_urlencoded::parse(&req.body)
                            .map(|(k, v)| {
                                let s = props.get(k.as_ref()).cloned().unwrap_or(json!({}));
                                (k.to_string(), crate::openapi::coerce(&self.doc, &s, &v))
                            })
                            .collect(),
                    ))
                } else {
                    Err(String::new())
                };
                match parsed {
                    Ok(v) => {
                        errors.extend(crate::openapi::validate(&self.doc, schema, &v, "body"));
                        body_json = Some(v);
                    }
                    Err(e) if !e.is_empty() => errors.push(e),
                    Err(_) => {}
                }
            }
        }
        if !errors.is_empty() {
            return self.error(
                i,
                400,
                "Bad Request",
                "the request does not match the document",
                &errors,
            );
        }
        // `Prefer: code=404` / `Prefer: example=NAME`, as Prism does.
        let prefer = req.header("prefer").unwrap_or("");
        let want_code = prefer_value(prefer, "code");
        let want_example = prefer_value(prefer, "example");
        if want_code.is_none()
            && want_example.is_none()
            && self.stateful
            && let Some(r) =
                self.stateful_answer(i, req, path_params, body_json.as_ref(), bearer.now_ms())
        {
            return r;
        }
        let status = match &want_code {
            Some(c) => match o.op.responses.iter().find(|r| r.status == *c) {
                Some(r) => r.status.clone(),
                None => {
                    return self.problem(
                        400,
                        "Bad Request",
                        &format!("Prefer: code={c}, but the operation documents no {c} response"),
                        &[],
                    );
                }
            },
            None => success_status(&o.op),
        };
        self.respond(i, &status, want_example.as_deref(), path_params)
    }

    /// The response documented for `status`, its body from an example or the schema.
    fn respond(
        &self,
        i: usize,
        status: &str,
        example: Option<&str>,
        path_params: &[(String, String)],
    ) -> Resp {
        let o = &self.ops[i];
        let code: u16 = status.parse().unwrap_or(match status {
            s if s.starts_with('4') => 400,
            s if s.starts_with('5') => 500,
            _ => 200,
        });
        let Some(r) = o.op.responses.iter().find(|r| r.status == status) else {
            return Resp::empty(code);
        };
        let Some((media, schema, mobj)) = r
            .content
            .iter()
            .find(|(m, _, _)| m.contains("json"))
            .or_else(|| r.content.first())
        else {
            return with_headers(Resp::empty(code), self, r);
        };
        let body = match example
            .and_then(|name| crate::openapi::named_examples(&self.doc, mobj).remove(name))
        {
            Some(v) => Arc::new(v),
            None => self.body_for(i, status, schema, mobj),
        };
        let mut body = (*body).clone();
        inject(&self.doc, schema, &mut body, path_params);
        let resp = if media.contains("json") {
            Resp::json(code, &body).with_content_type(media)
        } else {
            let text = match &body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Resp {
                status: code,
                headers: vec![("content-type", media.clone().into())],
                body: bytes::Bytes::from(text),
                route: "",
                extra: Vec::new(),
                note: None,
                delay_ms: 0,
            }
        };
        with_headers(resp, self, r)
    }

    /// The body for an operation's response: its example, else made up from the schema (the
    /// same every time for a seed).
    fn body_for(&self, i: usize, status: &str, schema: &Value, media: &Value) -> Arc<Value> {
        let key = (i, status.to_string());
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        // The document's example, unless it contradicts the document's schema.
        let fits = |e: &Value| {
            crate::openapi::validate_response(&self.doc, schema, e, "example").is_empty()
        };
        let named = crate::openapi::named_examples(&self.doc, media)
            .into_values()
            .find(|e| fits(e));
        let v = if let Some(e) = media.get("example").filter(|e| fits(e)) {
            e.clone()
        } else if let Some(e) = named {
            e
        } else {
            let rng = std::cell::RefCell::new(Rng::new(
                self.seed
                    ^ hash(&format!(
                        "{}{}{status}",
                        self.ops[i].op.method, self.ops[i].op.path
                    )),
            ));
            crate::openapi::synthesise(&self.doc, schema, Fill::Random(&rng), true)
        };
        let v = Arc::new(v);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, v.clone());
        v
    }

    /// Operations on resources a `POST` made: the created resource, the stored one, the list.
    fn stateful_answer(
        &self,
        i: usize,
        req: &Req,
        path_params: &[(String, String)],
        body: Option<&Value>,
        now_ms: i64,
    ) -> Option<Resp> {
        let o = &self.ops[i];
        match &o.role {
            Role::Create => {
                let status = success_status(&o.op);
                let mut resource = self.synth_for(i, &status)?;
                let param = self.id_param_of(&o.op.path)?;
                if let Some(b) = body {
                    merge(&mut resource, b);
                }
                let n = self
                    .created
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let target = unwrapped_mut(&mut resource, &param);
                stamp(target, body.map(|b| unwrapped(b, &param)), now_ms, true);
                let id = self.new_id(target, &param, n);
                if let Value::Object(r) = target {
                    let field = if r.contains_key(&param) || !r.contains_key("id") {
                        param.clone()
                    } else {
                        "id".to_string()
                    };
                    r.insert(field, id.clone());
                }
                let key = crate::capture::value_text(&id);
                self.store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(o.op.path.clone())
                    .or_default()
                    .insert(key, resource.clone());
                Some(Resp::json(status.parse().unwrap_or(201), &resource))
            }
            Role::Item { collection, param } => {
                let id = path_params
                    .iter()
                    .find(|(n, _)| n == param)
                    .map(|(_, v)| v.clone())?;
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                // Resources are kept for this collection once something was created in it.
                let known = store.contains_key(collection);
                let mut empty = IndexMap::new();
                let items = store.get_mut(collection).unwrap_or(&mut empty);
                let found = items.get(&id).cloned();
                match (o.op.method.as_str(), found) {
                    ("GET", Some(r)) => {
                        Some(Resp::json(success_status(&o.op).parse().unwrap_or(200), &r))
                    }
                    ("PUT" | "PATCH", Some(mut r)) => {
                        // PUT and PATCH both merge: fields the body leaves out keep values the
                        // response schema requires, and the id stays what the path says.
                        if let Some(b) = body {
                            let id_value = unwrapped_mut(&mut r, param).get(param).cloned();
                            merge(&mut r, b);
                            if let (Some(v), Value::Object(m)) =
                                (id_value, unwrapped_mut(&mut r, param))
                            {
                                m.insert(param.clone(), v);
                            }
                            stamp(
                                unwrapped_mut(&mut r, param),
                                Some(unwrapped(b, param)),
                                now_ms,
                                false,
                            );
                        }
                        items.insert(id, r.clone());
                        let status = success_status(&o.op);
                        if status == "204" {
                            Some(Resp::empty(204))
                        } else {
                            Some(Resp::json(status.parse().unwrap_or(200), &r))
                        }
                    }
                    ("DELETE", Some(_)) => {
                        items.shift_remove(&id);
                        let status = success_status(&o.op);
                        drop(store);
                        Some(self.respond(i, &status, None, path_params))
                    }
                    // Resources are being kept and this one is not among them.
                    (_, None) if known => {
                        drop(store);
                        Some(self.error(
                            i,
                            404,
                            "Not Found",
                            &format!("no {collection} with {param} {id}"),
                            &[],
                        ))
                    }
                    _ => None,
                }
            }
            Role::List => {
                // Listed as the operation's paging parameters say, counted whole.
                let (skip, take) = self.page_of(i, req);
                let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                let all = store.get(&o.op.path)?;
                let total = all.len();
                let stored: Vec<Value> = all.values().skip(skip).take(take).cloned().collect();
                drop(store);
                let status = success_status(&o.op);
                let mut body = self.synth_for(i, &status)?;
                // Items are listed bare when the list's own element is not wrapped the way a
                // single resource is (`{"article": {..}}` stored, `[{..}]` listed).
                let fit = |sample: Option<&Value>| -> Vec<Value> {
                    stored
                        .iter()
                        .map(|r| match (r, sample) {
                            (Value::Object(m), Some(Value::Object(s))) if m.len() == 1 => {
                                let (k, inner) = m.iter().next().expect("one entry");
                                if inner.is_object() && !s.contains_key(k) {
                                    inner.clone()
                                } else {
                                    r.clone()
                                }
                            }
                            _ => r.clone(),
                        })
                        .collect()
                };
                match &mut body {
                    Value::Array(a) => *a = fit(a.first()),
                    Value::Object(m) => {
                        let key = m
                            .iter()
                            .find(|(_, v)| v.is_array())
                            .map(|(k, _)| k.clone())?;
                        let items = fit(m[&key].as_array().and_then(|a| a.first()));
                        let n = total;
                        m.insert(key, Value::Array(items));
                        // The last page links to no next one (a made-up link would send a
                        // client paging to nowhere) — where the schema lets the link go.
                        if skip.saturating_add(take) >= total
                            && let Some(schema) = self.json_schema(i, &status)
                        {
                            for links in ["_links", "links"] {
                                let Some(ls) =
                                    crate::openapi::property_schema(&self.doc, &schema, links)
                                else {
                                    continue;
                                };
                                if !self.requires(&ls, "next") {
                                    if let Some(Value::Object(l)) = m.get_mut(links) {
                                        l.remove("next");
                                    }
                                } else if !self.requires(&schema, links) {
                                    m.remove(links);
                                }
                            }
                        }
                        // A count beside the list says how many there are.
                        for (k, v) in m.iter_mut() {
                            let lower = k.to_ascii_lowercase();
                            if v.is_u64() && (lower.contains("count") || lower.contains("total")) {
                                *v = json!(n);
                            }
                        }
                    }
                    _ => return None,
                }
                Some(Resp::json(status.parse().unwrap_or(200), &body))
            }
            Role::None => None,
        }
    }

    /// The page a list request asks for, as the operation's query parameters name it: a size
    /// (`limit`, `per_page`, `page_size`, `pageSize`, `size`, `max_results`, `count`; its
    /// `default` when absent, else everything) and a start (`offset`, `skip`, `start`, or `page`,
    /// 1-based unless its minimum or default is 0).
    fn page_of(&self, i: usize, req: &Req) -> (usize, usize) {
        const SIZES: [&str; 8] = [
            "limit",
            "per_page",
            "page_size",
            "pagesize",
            "size",
            "max_results",
            "maxresults",
            "count",
        ];
        const STARTS: [&str; 3] = ["offset", "skip", "start"];
        let params: Vec<&crate::openapi::Param> = self.ops[i]
            .op
            .params
            .iter()
            .filter(|p| p.place == In::Query)
            .collect();
        let find = |names: &[&str]| {
            params
                .iter()
                .find(|p| names.contains(&p.name.to_ascii_lowercase().as_str()))
                .copied()
        };
        let number = |p: &crate::openapi::Param| -> Option<usize> {
            let given = req.q(&p.name).and_then(|v| v.trim().parse::<usize>().ok());
            given.or_else(|| {
                let schema = self.doc.resolve(&p.schema).unwrap_or(&p.schema);
                schema
                    .get("default")
                    .or_else(|| p.raw.get("default"))
                    .and_then(Value::as_u64)
                    .map(|d| d as usize)
            })
        };
        let take = find(&SIZES).and_then(number).unwrap_or(usize::MAX);
        let skip = match (find(&STARTS), find(&["page", "page_number", "pagenumber"])) {
            (Some(p), _) => number(p).unwrap_or(0),
            (None, Some(p)) => {
                let schema = self.doc.resolve(&p.schema).unwrap_or(&p.schema);
                let zero_based = [schema.get("minimum"), schema.get("default")]
                    .into_iter()
                    .flatten()
                    .any(|v| v.as_u64() == Some(0));
                let page = number(p).unwrap_or(if zero_based { 0 } else { 1 });
                let index = if zero_based {
                    page
                } else {
                    page.saturating_sub(1)
                };
                index.saturating_mul(if take == usize::MAX { 0 } else { take })
            }
            (None, None) => 0,
        };
        (skip, take)
    }

    /// The JSON schema of an operation's response.
    fn json_schema(&self, i: usize, status: &str) -> Option<Value> {
        let r = self.ops[i]
            .op
            .responses
            .iter()
            .find(|r| r.status == status)?;
        r.content
            .iter()
            .find(|(m, _, _)| m.contains("json"))
            .map(|(_, s, _)| s.clone())
    }

    /// Whether a schema (or a part of its `allOf`) requires a property.
    fn requires(&self, schema: &Value, name: &str) -> bool {
        fn go(doc: &Doc, schema: &Value, name: &str, depth: usize) -> bool {
            let Some(s) = doc
                .resolve(schema)
                .filter(|_| depth <= crate::openapi::MAX_DEPTH)
            else {
                return false;
            };
            let listed = s
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name)));
            listed
                || s.get("allOf")
                    .and_then(Value::as_array)
                    .is_some_and(|parts| parts.iter().any(|p| go(doc, p, name, depth + 1)))
        }
        go(&self.doc, schema, name, 0)
    }

    fn synth_for(&self, i: usize, status: &str) -> Option<Value> {
        let r = self.ops[i]
            .op
            .responses
            .iter()
            .find(|r| r.status == status)?;
        let (_, schema, media) = r.content.iter().find(|(m, _, _)| m.contains("json"))?;
        Some((*self.body_for(i, status, schema, media)).clone())
    }

    /// The name of the id parameter of `{collection}/{id}`.
    fn id_param_of(&self, collection: &str) -> Option<String> {
        self.items.get(collection).cloned()
    }

    /// A new id shaped like the id parameter's schema (an integer counter, else a UUID).
    fn new_id(&self, resource: &Value, param: &str, n: u64) -> Value {
        let schema = self.path_params.get(param).cloned().unwrap_or(json!({}));
        let ty = crate::openapi::type_of(self.doc.resolve(&schema).unwrap_or(&Value::Null));
        let existing = resource.get(param).or_else(|| resource.get("id"));
        if ty == "integer" || existing.is_some_and(Value::is_number) {
            return json!(1000 + n);
        }
        let mut rng = Rng::new(self.seed ^ 0x51ED ^ n);
        let b = rng.next_u64().to_le_bytes();
        let c = rng.next_u64().to_le_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&b);
        bytes[8..].copy_from_slice(&c);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        json!(uuid::Uuid::from_bytes(bytes).to_string())
    }

    /// 401 when the operation wants credentials the request does not carry; 403 when a token is
    /// good but lacks the scopes every alternative requires.
    fn security(&self, i: usize, req: &Req, bearer: &dyn Bearer) -> Option<Resp> {
        let op = &self.ops[i].op;
        if op.security.is_empty() || op.security.iter().any(|alt| alt.is_empty()) {
            return None;
        }
        let short_of_scopes = std::cell::Cell::new(false);
        let satisfied = op.security.iter().enumerate().any(|(a, alt)| {
            let needed = op.scopes.get(a).map(Vec::as_slice).unwrap_or(&[]);
            let has_scopes = |t: &str| match bearer.scopes(req, t) {
                None => true,
                Some(granted) => {
                    let ok = needed.iter().all(|s| granted.contains(s));
                    if !ok {
                        short_of_scopes.set(true);
                    }
                    ok
                }
            };
            alt.iter().all(|name| {
                let Some(s) = self.schemes.get(name) else {
                    return true;
                };
                let auth = req.header("authorization").unwrap_or("");
                match (
                    s.get("type").and_then(Value::as_str),
                    s.get("scheme").and_then(Value::as_str),
                ) {
                    (Some("oauth2") | Some("openIdConnect"), _) => {
                        bearer_token(auth).is_some_and(|t| bearer.accepts(req, t) && has_scopes(t))
                    }
                    (Some("http"), Some(sch)) if sch.eq_ignore_ascii_case("bearer") => {
                        bearer_token(auth).is_some_and(|t| bearer.accepts(req, t))
                    }
                    (Some("http"), Some(sch)) if sch.eq_ignore_ascii_case("basic") => {
                        auth.len() > 6 && auth[..6].eq_ignore_ascii_case("basic ")
                    }
                    (Some("basic"), _) => {
                        auth.len() > 6 && auth[..6].eq_ignore_ascii_case("basic ")
                    }
                    (Some("apiKey"), _) => {
                        let n = s.get("name").and_then(Value::as_str).unwrap_or("");
                        match s.get("in").and_then(Value::as_str) {
                            Some("query") => req.q(n).is_some(),
                            Some("cookie") => cookie(req, n).is_some(),
                            _ => req.header(n).is_some(),
                        }
                    }
                    _ => true,
                }
            })
        });
        if satisfied {
            return None;
        }
        if short_of_scopes.get() {
            return Some(self.error(
                i,
                403,
                "Forbidden",
                &format!(
                    "the token lacks the scopes the operation requires ({})",
                    op.scopes
                        .iter()
                        .map(|s| s.join(" "))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                &[],
            ));
        }
        Some(self.error(i, 401, "Unauthorized", "the operation needs credentials the request does not carry (see the document's security schemes)", &[]).with("www-authenticate", "Bearer"))
    }

    /// An error: the operation's documented response for the status when it has an example,
    /// else problem+json naming each fault.
    fn error(&self, i: usize, status: u16, title: &str, detail: &str, errors: &[String]) -> Resp {
        let o = &self.ops[i];
        // The response the document gives for this status: exact, its class (`4XX`), `default`.
        let class = format!("{}XX", status / 100);
        let documented =
            o.op.responses
                .iter()
                .find(|r| r.status == status.to_string())
                .or_else(|| {
                    o.op.responses
                        .iter()
                        .find(|r| r.status.eq_ignore_ascii_case(&class))
                })
                .or_else(|| o.op.responses.iter().find(|r| r.status == "default"));
        let Some((media, schema, mobj)) =
            documented.and_then(|r| r.content.iter().find(|(m, _, _)| m.contains("json")))
        else {
            return self.problem(status, title, detail, errors);
        };
        let fits =
            |e: &Value| crate::openapi::validate_response(&self.doc, schema, e, "error").is_empty();
        let example = mobj
            .get("example")
            .cloned()
            .or_else(|| {
                crate::openapi::named_examples(&self.doc, mobj)
                    .into_values()
                    .next()
            })
            .filter(|e| fits(e));
        let mut body = example
            .unwrap_or_else(|| crate::openapi::synthesise(&self.doc, schema, Fill::Plain, true));
        // Say what is wrong wherever the documented shape has room for a message.
        let text = if errors.is_empty() {
            detail.to_string()
        } else {
            format!("{detail}: {}", errors.join("; "))
        };
        if let Value::Object(m) = &mut body {
            for key in [
                "message",
                "detail",
                "error_message",
                "error_description",
                "description",
                "error",
            ] {
                if let Some(slot) = m.get_mut(key)
                    && slot.is_string()
                {
                    *slot = Value::String(text.clone());
                    break;
                }
            }
            for key in ["code", "status", "status_code"] {
                if let Some(slot) = m.get_mut(key)
                    && slot.is_number()
                {
                    let candidate = json!(status);
                    let field = crate::openapi::property_schema(&self.doc, schema, key)
                        .unwrap_or(json!({}));
                    if crate::openapi::validate_response(&self.doc, &field, &candidate, key)
                        .is_empty()
                    {
                        *slot = candidate;
                    }
                }
            }
        }
        Resp::json(status, &body).with_content_type(media)
    }
}

/// Stamps a resource being created (or updated): its creation and update times become now
/// where the resource has them as date-time text, and on creation its `*_count` integers the
/// request did not give start at 0.
fn stamp(resource: &mut Value, given: Option<&Value>, now_ms: i64, created: bool) {
    const CREATED: [&str; 4] = ["created_at", "createdAt", "created", "creation_date"];
    const UPDATED: [&str; 6] = [
        "updated_at",
        "updatedAt",
        "modified_at",
        "modifiedAt",
        "last_modified",
        "updated",
    ];
    let Value::Object(m) = resource else { return };
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(now_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let given = |k: &str| given.and_then(|g| g.get(k)).is_some();
    for (k, v) in m.iter_mut() {
        let is_time = UPDATED.contains(&k.as_str()) || (created && CREATED.contains(&k.as_str()));
        if is_time && !given(k) {
            if let Value::String(text) = v {
                if time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok()
                {
                    let ms = time::macros::format_description!(
                        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                    );
                    *text = now.format(ms).unwrap_or_else(|_| text.clone());
                } else if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
                    *text = now.date().to_string();
                }
            }
        } else if created
            && (k.ends_with("_count") || k.ends_with("Count"))
            && v.is_u64()
            && !given(k)
        {
            *v = json!(0);
        }
    }
}

/// The resource inside a `{"thing": {...}}` wrapper, as [`unwrapped_mut`] finds it.
fn unwrapped<'a>(v: &'a Value, param: &str) -> &'a Value {
    match v {
        Value::Object(m) if m.len() == 1 && !m.contains_key(param) && !m.contains_key("id") => {
            m.values().next().filter(|x| x.is_object()).unwrap_or(v)
        }
        _ => v,
    }
}

/// Deep-merges `from` into `into`: objects merge key by key, other values replace only a value
/// of the same JSON type (or a null), so a response keeps the shape its schema documents.
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            let empty = a.is_empty();
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None if empty => {
                        a.insert(k.clone(), v.clone());
                    }
                    None => {}
                }
            }
        }
        (slot, v) => {
            if slot.is_null() || std::mem::discriminant(slot) == std::mem::discriminant(v) {
                *slot = v.clone();
            }
        }
    }
}

/// The resource inside a one-key wrapper (`{"article": {...}}`) unless the id is at the top.
fn unwrapped_mut<'a>(v: &'a mut Value, param: &str) -> &'a mut Value {
    let descend = match v {
        Value::Object(m) if m.len() == 1 && !m.contains_key(param) && !m.contains_key("id") => {
            m.values().next().is_some_and(Value::is_object)
        }
        _ => false,
    };
    if descend {
        v.as_object_mut()
            .and_then(|m| m.values_mut().next())
            .expect("checked one object entry")
    } else {
        v
    }
}

fn role_of(
    op: &Operation,
    paths: &std::collections::HashSet<&str>,
    items: &HashMap<String, String>,
) -> Role {
    // `/things/{id}` → collection `/things`.
    if let Some((collection, last)) = op.path.rsplit_once('/')
        && let Some(name) = last.strip_prefix('{').and_then(|l| l.strip_suffix('}'))
        && paths.contains(collection)
    {
        return Role::Item {
            collection: collection.to_string(),
            param: name.to_string(),
        };
    }
    if items.contains_key(&op.path) {
        return match op.method.as_str() {
            "POST" => Role::Create,
            "GET" => Role::List,
            _ => Role::None,
        };
    }
    Role::None
}

/// The first documented 2xx status (201 for a create when documented), else the first.
fn success_status(op: &Operation) -> String {
    let two: Vec<&str> = op
        .responses
        .iter()
        .map(|r| r.status.as_str())
        .filter(|s| s.starts_with('2'))
        .collect();
    if op.method == "POST" && two.contains(&"201") {
        return "201".into();
    }
    two.first()
        .map(|s| s.to_string())
        .or_else(|| op.responses.first().map(|r| r.status.clone()))
        .unwrap_or_else(|| "200".into())
}

fn with_headers(mut resp: Resp, s: &SpecServer, r: &crate::openapi::Response) -> Resp {
    for (name, schema) in &r.headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-type" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        let v = crate::openapi::synthesise(&s.doc, schema, Fill::Plain, true);
        let text = crate::capture::value_text(&v);
        if hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_ok()
            && hyper::header::HeaderValue::from_str(&text).is_ok()
        {
            resp.extra.push((lower, text));
        }
    }
    resp
}

/// Writes path parameter values into the fields of the same name (`GET /contacts/{contact_id}`
/// answers with that `contact_id`), when the field's schema takes them.
fn inject(doc: &Doc, schema: &Value, body: &mut Value, params: &[(String, String)]) {
    if let Value::Object(m) = body {
        for (k, v) in params {
            if let Some(slot) = m.get_mut(k) {
                let field = crate::openapi::property_schema(doc, schema, k).unwrap_or(json!({}));
                let value = crate::openapi::coerce(doc, &field, v);
                if crate::openapi::validate_response(doc, &field, &value, k).is_empty() {
                    *slot = value;
                }
            }
        }
    }
}

/// An RFC 9457 problem: `{type, title, status, detail, errors}`.
pub fn problem(status: u16, title: &str, detail: &str, errors: &[String]) -> Resp {
    let mut body =
        json!({"type": "about:blank", "title": title, "status": status, "detail": detail});
    if !errors.is_empty() {
        body["errors"] = json!(
            errors
                .iter()
                .map(|e| match e.split_once(": ") {
                    Some((field, message)) => json!({"field": field, "message": message}),
                    None => json!({"message": e}),
                })
                .collect::<Vec<_>>()
        );
    }
    Resp::json(status, &body).with_content_type("application/problem+json")
}

fn media_matches(documented: &str, given: &str) -> bool {
    let d = documented
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if d == given || d == "*/*" {
        return true;
    }
    if let Some(prefix) = d.strip_suffix("/*") {
        return given.starts_with(prefix);
    }
    // `application/json` and `application/merge-patch+json` read the same.
    d.ends_with("json") && given.ends_with("json")
}

fn place_name(p: In) -> &'static str {
    match p {
        In::Path => "path",
        In::Query => "query",
        In::Header => "header",
        In::Cookie => "cookie",
        In::Form => "form",
    }
}

fn prefer_value(prefer: &str, key: &str) -> Option<String> {
    prefer.split([',', ';']).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn bearer_token(auth: &str) -> Option<&str> {
    let t = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?;
    let t = t.trim();
    (!t.is_empty()).then_some(t)
}

fn cookie(req: &Req, name: &str) -> Option<String> {
    req.header("cookie")?.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
