//! Stub files (`mocks/NAME.yaml`): requests matched by method, path template, query, headers and
//! body, answered by templated responses, sequences and scenario states; a request that matches
//! nothing gets a report of the nearest stubs and the first condition each one failed.
//!
//! A postie collection is a stub file too: each request's saved `examples:` (what the Postman
//! and HAR importers keep) answer that request's method and path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::capture::JsonPath;
use crate::mock::engine::faults::{FaultSpec, Faults};
use crate::mock::engine::pattern::{PathPattern, Seg, percent_decode};
use crate::mock::http::{Req, Resp};
use crate::template::Templates;

/// A stub file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    stubs: Vec<StubDef>,
    /// Faults in force while the file is served (see Faults in docs/mock.md).
    #[serde(default)]
    faults: Vec<FaultSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StubDef {
    #[serde(default)]
    name: Option<String>,
    /// Lower first (WireMock's convention); 5 when absent.
    #[serde(default)]
    priority: Option<i64>,
    request: MatchDef,
    #[serde(default)]
    response: Option<AnswerDef>,
    /// A sequence: the 1st call gets the first, and so on; then the last repeats (or, with
    /// `cycle: true`, the sequence starts over).
    #[serde(default)]
    responses: Option<Vec<AnswerDef>>,
    #[serde(default)]
    cycle: bool,
    #[serde(default)]
    scenario: Option<String>,
    /// The scenario state the stub needs (`Started` at first).
    #[serde(default)]
    state: Option<String>,
    /// The scenario state after the stub answers.
    #[serde(default)]
    next_state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchDef {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    query: IndexMap<String, CondDef>,
    #[serde(default)]
    headers: IndexMap<String, CondDef>,
    #[serde(default)]
    body: Vec<BodyCondDef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CondDef {
    Test(TestDef),
    Equals(Value),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestDef {
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    matches: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    absent: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyCondDef {
    #[serde(default)]
    jsonpath: Option<String>,
    #[serde(default)]
    form: Option<String>,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    matches: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    absent: Option<bool>,
}

/// A response as written: the fields of a collection's saved example, plus `delay`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerDef {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: IndexMap<String, String>,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    delay: Option<String>,
}

#[derive(Debug)]
enum Test {
    Equals(Value),
    Matches(regex::Regex),
    Contains(String),
    Present,
    Absent,
}

impl Test {
    fn of(d: TestDef) -> Result<Test, String> {
        let mut found = Vec::new();
        if let Some(v) = d.equals {
            found.push(Test::Equals(v));
        }
        if let Some(r) = d.matches {
            let re = regex::Regex::new(&r).map_err(|e| format!("matches `{r}`: {e}"))?;
            found.push(Test::Matches(re));
        }
        if let Some(c) = d.contains {
            found.push(Test::Contains(c));
        }
        match d.present {
            Some(true) => found.push(Test::Present),
            Some(false) => found.push(Test::Absent),
            None => {}
        }
        match d.absent {
            Some(true) => found.push(Test::Absent),
            Some(false) => found.push(Test::Present),
            None => {}
        }
        if found.len() != 1 {
            return Err(format!(
                "give exactly one of equals, matches, contains, present, absent (found {})",
                found.len()
            ));
        }
        Ok(found.remove(0))
    }

    fn of_cond(c: CondDef) -> Result<Test, String> {
        match c {
            CondDef::Test(t) => Test::of(t),
            CondDef::Equals(v) => Ok(Test::Equals(v)),
        }
    }

    /// Checks a text value; why not when it fails.
    fn text(&self, got: Option<&str>) -> Result<(), String> {
        let shown = |g: Option<&str>| match g {
            Some(g) => format!("`{}`", clip(g)),
            None => "nothing".into(),
        };
        let ok = match (self, got) {
            (Test::Present, g) => g.is_some(),
            (Test::Absent, g) => g.is_none(),
            (_, None) => false,
            (Test::Equals(v), Some(g)) => text_of(v) == g,
            (Test::Matches(re), Some(g)) => re.is_match(g),
            (Test::Contains(c), Some(g)) => g.contains(c.as_str()),
        };
        if ok {
            return Ok(());
        }
        Err(format!("expected {}, got {}", self.describe(), shown(got)))
    }

    /// Checks what a JSONPath selected.
    fn json(&self, got: &[&Value]) -> Result<(), String> {
        let ok = match self {
            Test::Present => !got.is_empty(),
            Test::Absent => got.is_empty(),
            Test::Equals(v) => got
                .iter()
                .any(|g| *g == v || (v.is_string() && !g.is_object() && text_of(g) == text_of(v))),
            Test::Matches(re) => got.iter().any(|g| re.is_match(&text_of(g))),
            Test::Contains(c) => got.iter().any(|g| text_of(g).contains(c.as_str())),
        };
        if ok {
            return Ok(());
        }
        let shown = match got {
            [] => "nothing".to_string(),
            [one] => format!("`{}`", clip(&one.to_string())),
            many => format!("{} values", many.len()),
        };
        Err(format!("expected {}, got {shown}", self.describe()))
    }

    fn describe(&self) -> String {
        match self {
            Test::Equals(v) => format!("`{}`", clip(&text_of(v))),
            Test::Matches(re) => format!("a match of `{}`", re.as_str()),
            Test::Contains(c) => format!("text containing `{c}`"),
            Test::Present => "a value".into(),
            Test::Absent => "none".into(),
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        return s.to_string();
    }
    let head: String = s.chars().take(57).collect();
    format!("{head}...")
}

#[derive(Debug)]
enum Source {
    Json(JsonPath),
    Form(String),
    Text,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    json: Option<Value>,
    text: Option<String>,
    delay: Option<(u64, u64)>,
}

/// One stub, checked and ready to match.
#[derive(Debug)]
struct Stub {
    /// `NAME` or `METHOD PATH`, with its file and index: what reports and the journal show.
    label: String,
    priority: i64,
    method: Option<String>,
    path: PathPattern,
    path_text: String,
    query: Vec<(String, Test)>,
    headers: Vec<(String, Test)>,
    body: Vec<(Source, Test)>,
    answers: Vec<Answer>,
    cycle: bool,
    scenario: Option<(String, Option<String>, Option<String>)>,
    calls: AtomicU64,
}

/// What one stub made of a request: matched, or how far it got.
enum Outcome {
    Matched(Vec<(String, String)>),
    /// How many conditions held, and the first that did not.
    Failed(usize, String),
}

impl Stub {
    fn check(&self, req: &Req, json_body: Option<&Value>, scenarios: &Scenarios) -> Outcome {
        // The path first: a stub whose path fits is nearer than one whose method does.
        let Some(params) = self.path.captures(&req.path) else {
            return Outcome::Failed(
                0,
                format!("path: `{}` does not fit `{}`", req.path, self.path_text),
            );
        };
        let mut held = 1;
        if let Some(m) = &self.method {
            if *m != req.method {
                return Outcome::Failed(held, format!("method: expected {m}, got {}", req.method));
            }
            held += 1;
        }
        for (name, test) in &self.query {
            if let Err(e) = test.text(req.q(name)) {
                return Outcome::Failed(held, format!("query `{name}`: {e}"));
            }
            held += 1;
        }
        for (name, test) in &self.headers {
            if let Err(e) = test.text(req.header(name)) {
                return Outcome::Failed(held, format!("header `{name}`: {e}"));
            }
            held += 1;
        }
        for (source, test) in &self.body {
            let result = match source {
                Source::Json(p) => match json_body {
                    Some(b) => test
                        .json(&p.select(b))
                        .map_err(|e| format!("{}: {e}", p.as_str())),
                    None => Err(format!(
                        "{}: the body is not JSON (content type {})",
                        p.as_str(),
                        req.header("content-type").unwrap_or("none")
                    )),
                },
                Source::Form(field) => {
                    let value = url::form_urlencoded::parse(&req.body)
                        .find(|(k, _)| k == field)
                        .map(|(_, v)| v.into_owned());
                    test.text(value.as_deref())
                        .map_err(|e| format!("form field `{field}`: {e}"))
                }
                Source::Text => test
                    .text(std::str::from_utf8(&req.body).ok())
                    .map_err(|e| format!("body: {e}")),
            };
            if let Err(e) = result {
                return Outcome::Failed(held, format!("body {e}"));
            }
            held += 1;
        }
        if let Some((name, Some(want), _)) = &self.scenario {
            let now = scenarios.get(name);
            if now != *want {
                return Outcome::Failed(
                    held,
                    format!("scenario `{name}`: needs state `{want}`, is `{now}`"),
                );
            }
        }
        Outcome::Matched(params)
    }
}

/// A path's first segment, decoded.
fn first_segment(path: &str) -> std::borrow::Cow<'_, str> {
    let seg = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    if seg.contains('%') {
        std::borrow::Cow::Owned(percent_decode(seg))
    } else {
        std::borrow::Cow::Borrowed(seg)
    }
}

/// Scenario states, `Started` until a stub moves them.
#[derive(Debug, Default)]
struct Scenarios(Mutex<std::collections::HashMap<String, String>>);

impl Scenarios {
    fn get(&self, name: &str) -> String {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_else(|| "Started".into())
    }
}

/// The stubs of one or more files, in matching order.
#[derive(Debug, Default)]
struct Set {
    stubs: Vec<Stub>,
    /// Faults each file declares.
    faults: Vec<FaultSpec>,
    /// Stubs (their indexes, ascending) by the literal first segment of their path...
    by_first: std::collections::HashMap<String, Vec<usize>>,
    /// ...and those whose path starts with a parameter or `*`, or is `/`, which any path may fit.
    any_first: Vec<usize>,
}

type Times = Vec<(PathBuf, Option<std::time::SystemTime>)>;

/// Served stubs: matching, answers, the report when nothing matches, reloading.
pub struct Stubs {
    paths: Vec<PathBuf>,
    set: RwLock<Arc<Set>>,
    /// The files' modification times when last read.
    times: Mutex<Times>,
    scenarios: Scenarios,
    templates: Templates,
    /// When the files were last looked at (Unix ms), so a reload check costs one stat a second
    /// at most.
    checked: AtomicI64,
    /// The faults the files declared, as the fault list knows them.
    fault_ids: Mutex<Vec<u64>>,
}

impl std::fmt::Debug for Stubs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stubs")
            .field("paths", &self.paths)
            .field("stubs", &self.len())
            .finish()
    }
}

/// How many stubs a no-match report names.
const NEAREST: usize = 3;

impl Stubs {
    /// Reads the files; an error names the file (and line and column where YAML gives them).
    pub fn load(paths: &[PathBuf]) -> Result<Stubs, String> {
        let times = times_of(paths);
        let set = read_all(paths)?;
        Ok(Stubs {
            paths: paths.to_vec(),
            set: RwLock::new(Arc::new(set)),
            times: Mutex::new(times),
            scenarios: Scenarios::default(),
            templates: Templates::new(),
            checked: AtomicI64::new(wall_ms()),
            fault_ids: Mutex::new(Vec::new()),
        })
    }

    fn current(&self) -> Arc<Set> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many stubs are served.
    pub fn len(&self) -> usize {
        self.current().stubs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts the files' faults in force (replacing those of an earlier reading).
    pub fn install_faults(&self, faults: &Faults) -> Result<(), String> {
        let mut ids = self.fault_ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids.drain(..) {
            faults.remove(id);
        }
        for f in &self.current().faults {
            ids.push(faults.add(f.clone())?);
        }
        Ok(())
    }

    /// Reads the files again when one changed (checked at most once a second); a file that no
    /// longer reads keeps the stubs as they were, and says why on stderr.
    pub fn reload_if_changed(&self, faults: &Faults) {
        let now = wall_ms();
        let last = self.checked.load(Ordering::Relaxed);
        if now - last < 1000
            || self
                .checked
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let _ = self.reload(faults, false);
    }

    /// Reads the files again (when `force`, even unchanged); returns how many stubs there are.
    /// A file that no longer reads leaves the stubs as they were.
    pub fn reload(&self, faults: &Faults, force: bool) -> Result<usize, String> {
        let times = times_of(&self.paths);
        {
            let mut known = self.times.lock().unwrap_or_else(|e| e.into_inner());
            if *known == times && !force {
                return Ok(self.len());
            }
            // Remembered even when the reading fails, so a broken file is reported once.
            *known = times;
        }
        match read_all(&self.paths) {
            Ok(set) => {
                let n = set.stubs.len();
                *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                self.scenarios
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                eprintln!("stubs reloaded: {n} stubs");
                self.install_faults(faults).map(|_| n)
            }
            Err(e) => {
                eprintln!("error: {e} (the stubs stay as they were)");
                Err(e)
            }
        }
    }

    /// Forgets how often each stub answered and every scenario's state.
    pub fn reset(&self) {
        for s in &self.current().stubs {
            s.calls.store(0, Ordering::Relaxed);
        }
        self.scenarios
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The stubs with their call counts and the scenario states, for the admin API.
    pub fn listing(&self) -> Value {
        let set = self.current();
        let stubs: Vec<Value> = set
            .stubs
            .iter()
            .map(|s| {
                json!({
                    "stub": s.label,
                    "method": s.method.clone().unwrap_or_else(|| "ANY".into()),
                    "path": s.path_text,
                    "priority": s.priority,
                    "calls": s.calls.load(Ordering::Relaxed),
                    "responses": s.answers.len(),
                })
            })
            .collect();
        let scenarios: serde_json::Map<String, Value> = self
            .scenarios
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({"stubs": stubs, "scenarios": scenarios})
    }

    /// The answer of the first stub that matches; when none does, the report of the nearest.
    pub fn handle(&self, req: &Req, now_ms: i64) -> Result<Resp, Miss> {
        let set = self.current();
        let json_body = parse_json_body(req);
        // Only the stubs whose first path segment can fit are tried, in matching order.
        let first = first_segment(&req.path);
        let named = set
            .by_first
            .get(first.as_ref())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let (mut a, mut b) = (named.iter().peekable(), set.any_first.iter().peekable());
        while let Some(&i) = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        } {
            let stub = &set.stubs[i];
            let Outcome::Matched(params) = stub.check(req, json_body.as_ref(), &self.scenarios)
            else {
                continue;
            };
            if let Some((name, want, next)) = &stub.scenario {
                // Check and move the state in one step, so two requests cannot both take the
                // same transition.
                let mut states = self.scenarios.0.lock().unwrap_or_else(|e| e.into_inner());
                let now = states.get(name).map(String::as_str).unwrap_or("Started");
                if want.as_deref().is_some_and(|w| w != now) {
                    continue;
                }
                if let Some(n) = next {
                    states.insert(name.clone(), n.clone());
                }
            }
            let call = stub.calls.fetch_add(1, Ordering::Relaxed) as usize;
            let n = stub.answers.len();
            let answer = if stub.cycle {
                &stub.answers[call % n]
            } else {
                &stub.answers[call.min(n - 1)]
            };
            return Ok(self.render(stub, answer, req, json_body, params, now_ms, call));
        }
        // Nothing matched: how near every stub came (most conditions held; matching order among
        // equals).
        let mut nearest: Vec<(usize, &Stub, String)> = set
            .stubs
            .iter()
            .map(
                |stub| match stub.check(req, json_body.as_ref(), &self.scenarios) {
                    Outcome::Failed(held, why) => (held, stub, why),
                    Outcome::Matched(_) => {
                        (usize::MAX, stub, "its scenario moved meanwhile".into())
                    }
                },
            )
            .collect();
        nearest.sort_by_key(|(held, _, _)| std::cmp::Reverse(*held));
        nearest.truncate(NEAREST);
        Err(Miss {
            nearest: nearest
                .into_iter()
                .map(|(_, s, why)| (s.label.clone(), why))
                .collect(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        stub: &Stub,
        answer: &Answer,
        req: &Req,
        json_body: Option<Value>,
        params: Vec<(String, String)>,
        now_ms: i64,
        call: usize,
    ) -> Resp {
        let ctx = context(req, json_body, params, now_ms, call);
        let rendered = (|| -> Result<Resp, String> {
            let mut resp = match (&answer.json, &answer.text) {
                (Some(j), _) => {
                    let v = self
                        .templates
                        .render_json(j, &ctx)
                        .map_err(|e| format!("json: {}", e.message))?;
                    Resp::json(answer.status, &v)
                }
                (None, Some(t)) => {
                    let body = self
                        .templates
                        .render(t, &ctx)
                        .map_err(|e| format!("text: {}", e.message))?;
                    let mut r = Resp::empty(answer.status);
                    r.body = bytes::Bytes::from(body);
                    r.with("content-type", "text/plain; charset=utf-8")
                }
                (None, None) => Resp::empty(answer.status),
            };
            for (k, v) in &answer.headers {
                let value = self
                    .templates
                    .render(v, &ctx)
                    .map_err(|e| format!("header `{k}`: {}", e.message))?;
                if k.eq_ignore_ascii_case("content-type") {
                    resp = resp.with_content_type(&value);
                } else {
                    resp.extra.push((k.clone(), value));
                }
            }
            Ok(resp)
        })();
        let mut resp = match rendered {
            Ok(r) => r.route("stub").note(format!("stub {}", stub.label)),
            Err(e) => super::spec::problem(
                500,
                "Stub template error",
                &format!("stub {}: {e}", stub.label),
                &[],
            )
            .route("stub.template_error")
            .note(format!("stub {}: {e}", stub.label)),
        };
        if let Some((lo, hi)) = answer.delay {
            let ms = if hi > lo {
                lo + crate::template::random_u64() % (hi - lo + 1)
            } else {
                lo
            };
            resp.delay_ms = u32::try_from(ms).unwrap_or(u32::MAX);
        }
        resp
    }
}

/// Why no stub answered: the nearest stubs and the first condition each failed.
#[derive(Debug)]
pub struct Miss {
    /// (stub, failed condition), nearest first.
    pub nearest: Vec<(String, String)>,
}

impl Miss {
    /// The 404 a request that matched nothing gets, with the report.
    pub fn response(&self, req: &Req) -> Resp {
        let nearest: Vec<Value> = self
            .nearest
            .iter()
            .map(|(s, why)| json!({"stub": s, "failed": why}))
            .collect();
        let body = json!({
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": format!("no stub matches {} {}", req.method, req.path),
            "nearest": nearest,
        });
        Resp::json(404, &body)
            .with_content_type("application/problem+json")
            .route("stub.no_match")
            .note(self.summary())
    }

    /// One line for the journal.
    pub fn summary(&self) -> String {
        if self.nearest.is_empty() {
            return "no stub matched (none served)".into();
        }
        let parts: Vec<String> = self
            .nearest
            .iter()
            .map(|(s, why)| format!("{s}: {why}"))
            .collect();
        format!("no stub matched; nearest: {}", parts.join("; "))
    }
}

fn parse_json_body(req: &Req) -> Option<Value> {
    if req.body.is_empty() {
        return None;
    }
    let ct = req.header("content-type").unwrap_or("");
    if !(ct.is_empty() || ct.contains("json")) {
        return None;
    }
    serde_json::from_slice(&req.body).ok()
}

/// What a response template sees.
fn context(
    req: &Req,
    json_body: Option<Value>,
    params: Vec<(String, String)>,
    now_ms: i64,
    call: usize,
) -> Value {
    let mut query = serde_json::Map::new();
    for (k, v) in &req.query {
        query.entry(k.clone()).or_insert_with(|| json!(v));
    }
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers.iter() {
        if let Ok(v) = v.to_str() {
            headers
                .entry(k.as_str().to_string())
                .or_insert_with(|| json!(v));
        }
    }
    let form: serde_json::Map<String, Value> = if req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        url::form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), json!(v)))
            .collect()
    } else {
        Default::default()
    };
    let body = json_body.unwrap_or_else(|| json!(String::from_utf8_lossy(&req.body)));
    let path: serde_json::Map<String, Value> =
        params.into_iter().map(|(k, v)| (k, json!(v))).collect();
    json!({
        "request": {"method": req.method, "path": req.path, "url": format!("{}{}", req.base_url(), req.path)},
        "path": path,
        "query": query,
        "headers": headers,
        "body": body,
        "form": form,
        "call": call + 1,
        crate::template::CLOCK_VAR: now_ms,
    })
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn times_of(paths: &[PathBuf]) -> Times {
    paths.iter().map(|p| (p.clone(), modified(p))).collect()
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn read_all(paths: &[PathBuf]) -> Result<Set, String> {
    let mut set = Set::default();
    let mut order = 0usize;
    let mut all: Vec<(i64, usize, Stub)> = Vec::new();
    let templates = Templates::new();
    for path in paths {
        let source = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the stub file: {e}", path.display()))?;
        let (stubs, faults) = read_file(path, source, &templates)?;
        for s in stubs {
            all.push((s.priority, order, s));
            order += 1;
        }
        set.faults.extend(faults);
    }
    all.sort_by_key(|(p, o, _)| (*p, *o));
    set.stubs = all.into_iter().map(|(_, _, s)| s).collect();
    for (i, s) in set.stubs.iter().enumerate() {
        match s.path.segs().first() {
            Some(Seg::Lit(l)) => set.by_first.entry(l.clone()).or_default().push(i),
            _ => set.any_first.push(i),
        }
    }
    Ok(set)
}

/// One file: a stub file, or a postie collection whose saved examples become stubs.
fn read_file(
    path: &Path,
    source: String,
    templates: &Templates,
) -> Result<(Vec<Stub>, Vec<FaultSpec>), String> {
    let shown = path.display().to_string();
    // A collection has a top-level `requests:`; a stub file never does.
    let top_level = |key: &str| {
        source.lines().any(|l| {
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
    };
    if top_level("requests") && !top_level("stubs") {
        let c = crate::collection::Collection::parse(path, source).map_err(|e| e.to_string())?;
        return Ok((from_collection(&c, &shown, templates)?, Vec::new()));
    }
    if let Err((line, col, message)) = crate::util::yaml_nesting(&source) {
        return Err(
            crate::collection::LoadError::at(path, &source, line, col, message).to_string(),
        );
    }
    let file: FileDef = serde_yaml::from_str(&source).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        crate::collection::LoadError::at(
            path,
            &source,
            line,
            col,
            crate::collection::friendly_yaml_message(&e.to_string()),
        )
        .to_string()
    })?;
    let mut stubs = Vec::new();
    for (i, def) in file.stubs.into_iter().enumerate() {
        let (label, named) = match &def.name {
            Some(n) => (format!("`{n}`"), format!(" `{n}`")),
            None => (
                format!(
                    "{} {} ({shown} stubs[{i}])",
                    def.request.method.as_deref().unwrap_or("ANY"),
                    def.request.path
                ),
                String::new(),
            ),
        };
        stubs.push(
            compile(def, label, templates)
                .map_err(|e| format!("{shown}: stubs[{i}]{named}: {e}"))?,
        );
    }
    let check = Faults::default();
    for (i, f) in file.faults.iter().enumerate() {
        check
            .add(f.clone())
            .map_err(|e| format!("{shown}: faults[{i}]: {e}"))?;
    }
    Ok((stubs, file.faults))
}

fn compile(def: StubDef, label: String, templates: &Templates) -> Result<Stub, String> {
    let method = def
        .request
        .method
        .map(|m| m.to_ascii_uppercase())
        .filter(|m| m != "ANY" && m != "*");
    let path = PathPattern::parse(
        &def.request.path,
        &format!("request.path `{}`", def.request.path),
    )?;
    let mut query = Vec::new();
    for (k, c) in def.request.query {
        query.push((
            k.clone(),
            Test::of_cond(c).map_err(|e| format!("query `{k}`: {e}"))?,
        ));
    }
    let mut headers = Vec::new();
    for (k, c) in def.request.headers {
        headers.push((
            k.to_ascii_lowercase(),
            Test::of_cond(c).map_err(|e| format!("header `{k}`: {e}"))?,
        ));
    }
    let mut body = Vec::new();
    for (i, b) in def.request.body.into_iter().enumerate() {
        let source = match (&b.jsonpath, &b.form) {
            (Some(p), None) => Source::Json(
                JsonPath::parse(p).map_err(|e| format!("request.body[{i}]: jsonpath: {e}"))?,
            ),
            (None, Some(f)) => Source::Form(f.clone()),
            (None, None) => Source::Text,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "request.body[{i}]: give `jsonpath` or `form`, not both"
                ));
            }
        };
        let test = Test::of(TestDef {
            equals: b.equals,
            matches: b.matches,
            contains: b.contains,
            present: b.present,
            absent: b.absent,
        })
        .map_err(|e| format!("request.body[{i}]: {e}"))?;
        body.push((source, test));
    }
    let defs = match (def.response, def.responses) {
        (Some(r), None) => vec![r],
        (None, Some(rs)) if !rs.is_empty() => rs,
        (None, Some(_)) => return Err("`responses` is empty; give at least one".into()),
        (None, None) => return Err("give `response` (or `responses`, a sequence)".into()),
        (Some(_), Some(_)) => {
            return Err("give `response` or `responses` (a sequence), not both".into());
        }
    };
    let mut answers = Vec::new();
    for (i, a) in defs.into_iter().enumerate() {
        answers.push(answer_of(a, templates).map_err(|e| format!("responses[{i}]: {e}"))?);
    }
    let scenario = match (def.scenario, def.state, def.next_state) {
        (Some(s), state, next) => Some((s, state, next)),
        (None, None, None) => None,
        (None, _, _) => {
            return Err("`state` and `next_state` belong to a `scenario`: name it".into());
        }
    };
    Ok(Stub {
        label,
        priority: def.priority.unwrap_or(5),
        method,
        path_text: def.request.path,
        path,
        query,
        headers,
        body,
        answers,
        cycle: def.cycle,
        scenario,
        calls: AtomicU64::new(0),
    })
}

fn answer_of(a: AnswerDef, templates: &Templates) -> Result<Answer, String> {
    let _ = a.name;
    let status = a.status.unwrap_or(200);
    if !(100..=599).contains(&status) {
        return Err(format!("status {status} is not an HTTP status (100-599)"));
    }
    if a.json.is_some() && a.text.is_some() {
        return Err("give `json` or `text`, not both".into());
    }
    // Template syntax is checked now, not on the first request.
    let mut texts: Vec<&str> = a.headers.values().map(String::as_str).collect();
    if let Some(t) = &a.text {
        texts.push(t);
    }
    let mut strings = Vec::new();
    if let Some(j) = &a.json {
        collect_strings(j, &mut strings);
    }
    for t in texts.into_iter().chain(strings.iter().map(String::as_str)) {
        templates
            .analyse(t, false)
            .map_err(|e| format!("template `{}`: {}", clip(t), e.message))?;
    }
    let delay = match &a.delay {
        None => None,
        Some(d) => Some(delay_range(d)?),
    };
    Ok(Answer {
        status,
        headers: a.headers.into_iter().collect(),
        json: a.json,
        text: a.text,
        delay,
    })
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

fn delay_range(d: &str) -> Result<(u64, u64), String> {
    let ms = |t: &str| {
        crate::util::parse_duration(t.trim())
            .map(|d| d.as_millis() as u64)
            .map_err(|e| format!("delay `{d}`: {e}"))
    };
    match d.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (ms(a)?, ms(b)?);
            if b < a {
                return Err(format!("delay `{d}`: the range ends before it starts"));
            }
            Ok((a, b))
        }
        None => ms(d).map(|m| (m, m)),
    }
}

/// A collection's saved examples as stubs: the first example of a request answers its method and
/// path; each one also answers when asked for by name or status, as Postman's mock servers do
/// (`x-mock-response-name`, `x-mock-response-code`).
fn from_collection(
    c: &crate::collection::Collection,
    shown: &str,
    templates: &Templates,
) -> Result<Vec<Stub>, String> {
    let mut out = Vec::new();
    for (name, r) in &c.requests {
        for (i, e) in r.examples.iter().enumerate() {
            let req = e.request.clone().unwrap_or_default();
            let method = req
                .method
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| r.method.clone())
                .to_ascii_uppercase();
            let url = req
                .url
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| r.url.clone());
            let path = path_template(&url);
            let answer = AnswerDef {
                name: e.name.clone(),
                status: Some(e.status),
                headers: e
                    .headers
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.to_ascii_lowercase().as_str(),
                            "content-length"
                                | "transfer-encoding"
                                | "connection"
                                | "content-encoding"
                        )
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                json: e.json.clone(),
                text: e.text.clone(),
                delay: None,
            };
            let label = match &e.name {
                Some(n) if !n.is_empty() => format!("`{name}` example `{n}`"),
                _ => format!("`{name}` example {}", i + 1),
            };
            let mk = |headers: IndexMap<String, CondDef>, priority: i64| -> Result<Stub, String> {
                compile(
                    StubDef {
                        name: None,
                        priority: Some(priority),
                        request: MatchDef {
                            method: Some(method.clone()),
                            path: path.clone(),
                            query: IndexMap::new(),
                            headers,
                            body: Vec::new(),
                        },
                        response: Some(answer.clone()),
                        responses: None,
                        cycle: false,
                        scenario: None,
                        state: None,
                        next_state: None,
                    },
                    label.clone(),
                    templates,
                )
                .map_err(|e| format!("{shown}: request `{name}` example {}: {e}", i + 1))
            };
            if let Some(n) = e.name.as_ref().filter(|n| !n.is_empty()) {
                let mut h = IndexMap::new();
                h.insert("x-mock-response-name".into(), CondDef::Equals(json!(n)));
                out.push(mk(h, 3)?);
            }
            let mut h = IndexMap::new();
            h.insert(
                "x-mock-response-code".into(),
                CondDef::Equals(json!(e.status.to_string())),
            );
            out.push(mk(h, 4)?);
            if i == 0 {
                out.push(mk(IndexMap::new(), 5)?);
            }
        }
    }
    Ok(out)
}

/// The path of a collection URL as a stub's path template: the scheme, host and any leading
/// `<<base_url>>` go, `<<name>>` segments become `{name}`, the query goes.
fn path_template(url: &str) -> String {
    let mut rest = url.trim();
    if let Some(after) = rest.split_once("://").map(|(_, r)| r) {
        rest = after.find('/').map(|i| &after[i..]).unwrap_or("/");
    } else if rest.starts_with("<<") {
        // `<<base_url>>/users`: the variable stands for scheme, host and any base path.
        rest = rest.find(">>").map(|i| &rest[i + 2..]).unwrap_or(rest);
    } else if let Some(i) = rest.find('/') {
        // `api.example.com/users`.
        if !rest.starts_with('/') {
            rest = &rest[i..];
        }
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            match s.strip_prefix("<<").and_then(|s| s.strip_suffix(">>")) {
                Some(name) => {
                    let name: String = name
                        .trim()
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '_' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    format!(
                        "{{{}}}",
                        if name.is_empty() {
                            format!("p{i}")
                        } else {
                            name
                        }
                    )
                }
                // `:id` (Postman path variables) and `{id}` are parameters too.
                None if s.starts_with(':') && s.len() > 1 => format!("{{{}}}", &s[1..]),
                None if s.contains("<<") => format!("{{p{i}}}"),
                None => s.to_string(),
            }
        })
        .collect();
    format!("/{}", segs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_urls_become_path_templates() {
        assert_eq!(path_template("<<base_url>>/posts/<<id>>"), "/posts/{id}");
        assert_eq!(
            path_template("https://api.example.com/v1/users/<<user.id>>?x=1"),
            "/v1/users/{user_id}"
        );
        assert_eq!(path_template("api.example.com/users/:id"), "/users/{id}");
        assert_eq!(path_template("/a/b"), "/a/b");
        assert_eq!(path_template("<<base>>"), "/");
    }

    #[test]
    fn tests_say_what_they_expected() {
        let t = Test::Equals(json!("2"));
        assert!(t.text(Some("2")).is_ok());
        assert_eq!(t.text(Some("3")).unwrap_err(), "expected `2`, got `3`");
        assert!(Test::Equals(json!(2)).json(&[&json!(2)]).is_ok());
        assert!(Test::Equals(json!("2")).json(&[&json!(2)]).is_ok());
        assert!(Test::Absent.json(&[]).is_ok());
        assert!(Test::Present.text(None).is_err());
        assert!(
            Test::of(TestDef {
                equals: Some(json!(1)),
                contains: Some("x".into()),
                ..TestDef::default()
            })
            .is_err()
        );
    }

    #[test]
    fn delays_and_paths_are_checked() {
        assert_eq!(delay_range("100ms").unwrap(), (100, 100));
        assert_eq!(delay_range("1s..2s").unwrap(), (1000, 2000));
        assert!(delay_range("2s..1s").is_err());
        assert!(PathPattern::parse("users", "p").is_err());
        assert!(PathPattern::parse("/a/*/b", "p").is_err());
        assert!(PathPattern::parse("/a/{}", "p").is_err());
    }
}
