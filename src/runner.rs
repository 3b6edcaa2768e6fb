//! The runner: renders requests in scope, sends them, binds what comes back, runs flows.
//!
//! ```text
//! Collection ──> Scope (vars, env, state, --var) ──render──> Rendered ──send──> Exchange
//!                   ^                                                            │
//!                   └──────────── chain::bind (auto + capture) ── state ─────────┘
//! ```
//!
//! Every step returns a [`StepResult`] value describing what happened (request, response,
//! variables set, assertions, failure); the CLI, the REPL and the reports all render that value.
//! A step that fails before sending is also a `StepResult` (the `Err` of `render`/`prepare`), so
//! every path reports the same way; it is large, but it is the cold path.
#![allow(clippy::result_large_err)]

use serde_json::Value;
use std::path::PathBuf;

use crate::assert::{self, AssertResult};
use crate::chain::{self, Binding};
use crate::collection::{Collection, Step, suggest};
use crate::exchange::{Exchange, Rendered, SendError, Sender};
use crate::redact::Redactor;
use crate::scope::{Inputs, Scope};
use crate::state::{EnvState, State, StateError, state_dir};
use crate::template::Templates;

/// Why a step failed; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An assertion, capture or polling condition did not hold (exit 1).
    Assertion,
    /// The collection or a template is wrong; nothing was sent (exit 2).
    Template,
    /// The request could not complete (exit 3).
    Http,
}

impl FailureKind {
    /// The documented exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Assertion => 1,
            FailureKind::Template => 2,
            FailureKind::Http => 3,
        }
    }
}

/// A step failure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// Which kind.
    pub kind: FailureKind,
    /// What happened and what to do.
    pub message: String,
}

/// Everything that happened in one step.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    /// The request's name.
    pub request: String,
    /// The rendered request, when rendering succeeded.
    pub rendered: Option<Rendered>,
    /// The exchange, when a response arrived (the last attempt's, when polling).
    pub exchange: Option<Exchange>,
    /// Variables set by the response.
    pub set: Vec<Binding>,
    /// Assertion outcomes.
    pub asserts: Vec<AssertResult>,
    /// The failure, if any.
    pub failure: Option<Failure>,
    /// Why the step was skipped (`when:` false).
    pub skipped: Option<String>,
    /// Attempts made (more than one when polling).
    pub attempts: u32,
    /// Things worth telling the user (token refreshes, PUT guard warnings).
    pub notes: Vec<String>,
}

impl StepResult {
    fn failed(request: &str, kind: FailureKind, message: String) -> StepResult {
        StepResult {
            request: request.to_string(),
            failure: Some(Failure { kind, message }),
            ..Default::default()
        }
    }

    /// Whether the step passed (or was skipped).
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Errors setting up a runner (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Unknown environment.
    #[error("environment `{0}` is not defined in the collection{1}")]
    UnknownEnv(String, String),
    /// Unknown request.
    #[error("request `{0}` is not in the collection{1}")]
    UnknownRequest(String, String),
    /// Unknown flow.
    #[error("flow `{0}` is not in the collection{1}")]
    UnknownFlow(String, String),
    /// No flows at all.
    #[error("the collection has no flows; add a `flows:` section or use `postie send`")]
    NoFlows,
    /// `--from`/`--to` name a step that is not in the flow.
    #[error("`{0}` is not a step of flow `{1}`")]
    NoSuchStep(String, String),
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// HTTP client setup.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Options for a runner.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--env NAME`.
    pub env: Option<String>,
    /// `--var k=v`.
    pub vars: Vec<(String, String)>,
    /// `--fresh`: ignore saved state.
    pub fresh: bool,
    /// Override the state directory (default `.postie` beside the collection).
    pub state_dir: Option<PathBuf>,
}

/// Runs requests and flows of one collection in one environment.
pub struct Runner {
    /// The collection.
    pub collection: Collection,
    /// The template engine.
    pub templates: Templates,
    /// The HTTP client.
    pub sender: Sender,
    /// Environment, `--var`s and process environment.
    pub inputs: Inputs,
    /// All saved state.
    pub state: State,
    /// Where state is saved.
    pub state_path: PathBuf,
    dirty: bool,
    /// Seconds added to the wall clock (follows an in-process mock's virtual clock).
    pub clock_offset: i64,
    /// `--yes`: send a PUT even when the guard fires.
    pub put_guard_confirmed: bool,
    /// `--strict`: a PUT guard warning fails the step.
    pub put_guard_strict: bool,
}

/// A request ready to go (phase one of a send).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What will be sent.
    pub rendered: Rendered,
}

/// The result of a flow run.
#[derive(Debug, Clone, Default)]
pub struct FlowResult {
    /// The flow's name.
    pub flow: String,
    /// Step results in order.
    pub steps: Vec<StepResult>,
}

impl FlowResult {
    /// The exit code: the first failure's kind, or 0.
    pub fn exit_code(&self) -> i32 {
        self.steps
            .iter()
            .find_map(|s| s.failure.as_ref())
            .map(|f| f.kind.exit_code())
            .unwrap_or(0)
    }
}

impl Runner {
    /// Creates a runner, loading saved state unless `fresh`.
    pub fn new(collection: Collection, opts: RunOptions) -> Result<Runner, SetupError> {
        if let Some(e) = &opts.env
            && !collection.environments.contains_key(e)
        {
            return Err(SetupError::UnknownEnv(
                e.clone(),
                suggest(e, collection.environments.keys()),
            ));
        }
        let dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| state_dir(&collection.dir()));
        let state_path = dir.join("state.json");
        let state = if opts.fresh {
            State::default()
        } else {
            State::load(&state_path)?
        };
        let inputs = Inputs {
            env: opts.env.clone(),
            vars: opts.vars.clone(),
            process_env: Inputs::environment_for(&collection.dir()),
        };
        Ok(Runner {
            collection,
            templates: Templates::new(),
            sender: Sender::new()?,
            inputs,
            state,
            state_path,
            dirty: opts.fresh,
            clock_offset: 0,
            put_guard_confirmed: false,
            put_guard_strict: false,
        })
    }

    /// The key state is stored under: the environment name, or `default`.
    pub fn env_key(&self) -> String {
        self.inputs.env.clone().unwrap_or_else(|| "default".into())
    }

    /// This environment's state.
    pub fn env_state(&self) -> &EnvState {
        static EMPTY: std::sync::LazyLock<EnvState> = std::sync::LazyLock::new(EnvState::default);
        self.state.envs.get(&self.env_key()).unwrap_or(&EMPTY)
    }

    /// Mutable access to this environment's state.
    pub fn env_state_mut(&mut self) -> &mut EnvState {
        self.dirty = true;
        let key = self.env_key();
        self.state.env_mut(&key)
    }

    /// The current scope.
    pub fn scope(&self) -> Scope {
        let key = self.env_key();
        let empty = EnvState::default();
        let st = self.state.envs.get(&key).unwrap_or(&empty);
        Scope::build(&self.collection, &self.templates, &self.inputs, st)
    }

    /// A redactor for everything currently in scope.
    pub fn redactor(&self) -> Redactor {
        self.scope().redactor()
    }

    /// Saves state if anything changed.
    pub fn save(&mut self) -> Result<(), StateError> {
        if self.dirty {
            self.state.save(&self.state_path)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Sets a variable by hand (REPL `set`), persisted in state.
    pub fn set_var(&mut self, name: &str, value: Value, secret: bool) {
        let secret = secret || crate::redact::is_secret_name(name);
        self.env_state_mut().set(name, value, None, secret);
    }

    /// Removes a variable from state; returns whether it existed.
    pub fn unset_var(&mut self, name: &str) -> bool {
        self.env_state_mut().vars.shift_remove(name).is_some()
    }

    /// Renders a request in the current scope without sending it.
    pub fn render(&self, name: &str) -> Result<Rendered, StepResult> {
        self.render_in(name, &self.scope(), None)
    }

    fn render_in(
        &self,
        name: &str,
        scope: &Scope,
        flow: Option<(&str, usize)>,
    ) -> Result<Rendered, StepResult> {
        let Some(req) = self.collection.requests.get(name) else {
            return Err(StepResult::failed(
                name,
                FailureKind::Template,
                format!(
                    "request `{name}` is not in the collection{}",
                    suggest(name, self.collection.requests.keys())
                ),
            ));
        };
        Rendered::render(&self.templates, name, req, &scope.ctx).map_err(|e| {
            let msg = match &e.error.undefined {
                Some(var) => self.undefined_message(name, &e.field, var, scope, flow),
                None => format!("request `{name}`, {}: {}", e.field, e.error.message),
            };
            StepResult::failed(name, FailureKind::Template, msg)
        })
    }

    /// Explains an undefined variable: which request and field, and who would have set it.
    fn undefined_message(
        &self,
        request: &str,
        field: &str,
        var: &str,
        scope: &Scope,
        flow: Option<(&str, usize)>,
    ) -> String {
        let root = var.split('.').next().unwrap_or(var);
        let mut msg = format!("request `{request}`, {field}: `<<{var}>>` is undefined");
        if let Some(why) = scope.unresolved.get(root) {
            msg.push_str(&format!(
                " — variable `{root}` could not be rendered: {why}"
            ));
            return msg;
        }
        if root == "env" {
            let name = var.strip_prefix("env.").unwrap_or(var);
            msg.push_str(&format!(
                " — set {name} in the environment or in {}",
                self.collection.dir().join(".env").display()
            ));
            return msg;
        }
        if root != var && scope.ctx.get(root).is_some() {
            msg.push_str(&format!(
                " — `{root}` exists but has no `{}`",
                &var[root.len() + 1..]
            ));
            return msg;
        }
        let producers = self.producers_of(root, flow);
        let file = self.collection.path.display();
        let ran = producers.first().and_then(|p| {
            self.env_state()
                .last_exchange(p)
                .map(|e| (p.clone(), e.get("status").cloned()))
        });
        if let Some((p, status)) = ran {
            msg.push_str(&format!(
                " — step `{p}` ran (last status {}) but its response did not set it; check that response (`postie send {file} {p} -v`)",
                status.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
            ));
        } else if let Some(p) = producers.first() {
            msg.push_str(&format!(
                " — it is set by step `{p}`, which has not run{}; run it first (`postie send {file} {p}`) or run the flow from there",
                flow.map(|(f, _)| format!(" in flow `{f}`")).unwrap_or_default()
            ));
        } else {
            let known: Vec<String> = scope
                .ctx
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            msg.push_str(&format!(
                " — define it under `variables:`, pass `--var {root}=...`, or send the request whose response sets it{}",
                suggest(root, known.iter())
            ));
        }
        msg
    }

    /// Requests that would set a variable: the one that set it before, explicit captures, a
    /// request of that name, and the steps before this one in the current flow (automatic capture).
    fn producers_of(&self, var: &str, flow: Option<(&str, usize)>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        if let Some(src) = self
            .state
            .envs
            .values()
            .find_map(|e| e.vars.get(var).and_then(|v| v.source.clone()))
        {
            add(&src);
        }
        if self.collection.requests.contains_key(var) {
            add(var);
        }
        for (name, req) in &self.collection.requests {
            if req.capture.contains_key(var) {
                add(name);
            }
        }
        if let Some((f, idx)) = flow
            && let Some(flow) = self.collection.flows.get(f)
        {
            // The nearest earlier step is the likeliest automatic producer.
            if let Some(prev) = flow.steps[..idx.min(flow.steps.len())].last() {
                add(prev.request());
            }
        }
        out
    }

    /// Sends one request by name: guard, refresh, render, send, bind, assert, record.
    pub async fn send(&mut self, name: &str) -> StepResult {
        self.send_step(name, None).await
    }

    /// [`Runner::send`] owning its argument (for futures that outlive the caller's borrow).
    pub async fn send_owned(&mut self, name: String) -> StepResult {
        self.send(&name).await
    }

    /// [`Runner::run_step`] owning its arguments.
    pub async fn run_step_owned(&mut self, flow: String, idx: usize, step: Step) -> StepResult {
        self.run_step(&flow, idx, &step).await
    }

    async fn send_step(&mut self, name: &str, flow: Option<(&str, usize)>) -> StepResult {
        let mut notes = Vec::new();
        let prepared = match self.prepare(name, flow, &mut notes).await {
            Ok(p) => p,
            Err(mut fail) => {
                fail.notes.splice(0..0, notes);
                return fail;
            }
        };
        let sender = self.sender.clone();
        let outcome = sender.send(&prepared.rendered).await;
        let mut result = self.complete(prepared, outcome, notes);
        // One reactive refresh and one replay when the API rejects the token.
        if result.exchange.as_ref().is_some_and(|e| e.status == 401)
            && result
                .rendered
                .as_ref()
                .is_some_and(|r| self.uses_access_token(&r.name))
        {
            let used = result
                .rendered
                .as_ref()
                .and_then(|r| r.header("authorization"))
                .map(String::from);
            match crate::auth::refresh_if_current(self, used.as_deref(), "rejected with 401").await
            {
                Ok(Some(note)) => {
                    let mut notes = vec![note];
                    let prepared = match self.prepare(name, flow, &mut notes).await {
                        Ok(p) => p,
                        Err(fail) => return fail,
                    };
                    let outcome = sender.send(&prepared.rendered).await;
                    result = self.complete(prepared, outcome, notes);
                }
                Ok(None) => {}
                Err(e) => result
                    .notes
                    .push(format!("access token rejected and refresh failed: {e}")),
            }
        }
        result
    }

    /// Phase one of a send: the PUT guard, a proactive token refresh, and rendering.
    pub async fn prepare(
        &mut self,
        name: &str,
        flow: Option<(&str, usize)>,
        notes: &mut Vec<String>,
    ) -> Result<Prepared, StepResult> {
        if self.uses_access_token(name) {
            match crate::auth::ensure_fresh(self).await {
                Ok(Some(note)) => notes.push(note),
                Ok(None) => {}
                Err(e) => notes.push(format!("could not refresh the access token: {e}")),
            }
        }
        let scope = self.scope();
        let rendered = self.render_in(name, &scope, flow)?;
        if let Some(warning) = crate::guard::put_guard(&rendered, self.env_state()) {
            if self.put_guard_confirmed {
                notes.push(format!("{warning}\nsent anyway (--yes)"));
            } else if self.put_guard_strict {
                let mut r = StepResult::failed(
                    name,
                    FailureKind::Assertion,
                    format!(
                        "{warning}\n(--strict: not sent; pass --yes or send the full resource)"
                    ),
                );
                r.rendered = Some(rendered);
                return Err(r);
            } else {
                notes.push(format!("warning: {warning}"));
            }
        }
        Ok(Prepared { rendered })
    }

    /// Phase three of a send: record the outcome (or the network failure).
    pub fn complete(
        &mut self,
        prepared: Prepared,
        outcome: Result<Exchange, SendError>,
        notes: Vec<String>,
    ) -> StepResult {
        let rendered = prepared.rendered;
        let mut result = StepResult {
            request: rendered.name.clone(),
            attempts: 1,
            notes,
            ..Default::default()
        };
        match outcome {
            Ok(ex) => self.record(&mut result, rendered, ex),
            Err(e) => {
                result.failure = Some(Failure {
                    kind: FailureKind::Http,
                    message: format!("{} {}: {e}", rendered.method, rendered.url),
                });
                result.rendered = Some(rendered);
            }
        }
        result
    }

    /// What the PUT guard would say about sending this request now (None when it is safe or
    /// cannot be rendered yet). The REPL and an interactive `send` ask before sending.
    pub fn put_guard_warning(&self, name: &str) -> Option<String> {
        let rendered = self.render(name).ok()?;
        crate::guard::put_guard(&rendered, self.env_state())
    }

    /// Whether a request's templates use the OAuth2 access-token variable (and it is not itself
    /// one of the OAuth2 requests).
    pub fn uses_access_token(&self, name: &str) -> bool {
        let Some(o) = &self.collection.oauth2 else {
            return false;
        };
        if [
            Some(&o.authorize),
            Some(&o.token),
            o.refresh.as_ref(),
            o.device_authorize.as_ref(),
            o.device_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|r| r == name)
        {
            return false;
        }
        let Some(req) = self.collection.requests.get(name) else {
            return false;
        };
        let mut sources: Vec<&str> = vec![req.url.as_str()];
        sources.extend(req.headers.values().map(|v| v.0.as_str()));
        sources.extend(req.query.values().map(|v| v.0.as_str()));
        if let Some(crate::collection::Auth::Bearer(t)) = &req.auth {
            sources.push(t);
        }
        sources.iter().any(|s| {
            self.templates
                .referenced(s)
                .iter()
                .any(|r| r.split('.').next() == Some(o.access_token.as_str()))
        })
    }

    /// Current time in unix seconds as the runner sees it (wall clock plus any offset set to
    /// follow a mock's virtual clock).
    pub fn now(&self) -> i64 {
        crate::util::unix_now() + self.clock_offset
    }

    /// Binds and asserts an exchange into `result`, updating state.
    pub fn record(&mut self, result: &mut StepResult, rendered: Rendered, ex: Exchange) {
        let name = rendered.name.clone();
        let req = self.collection.requests.get(&name).cloned();
        let (bindings, capture_errors) = match &req {
            Some(r) => chain::bind(r, &ex),
            None => (vec![], vec![]),
        };
        let env = self.env_state_mut();
        env.record_exchange(&name, ex.to_value());
        let mut secret_changed = false;
        for b in &bindings {
            secret_changed |= b.secret && env.vars.get(&b.name).is_none_or(|v| v.value != b.value);
            env.set(&b.name, b.value.clone(), Some(&name), b.secret);
        }
        let asserts: Vec<AssertResult> = req
            .as_ref()
            .map(|r| r.assert.iter().map(|a| assert::check(a, &ex)).collect())
            .unwrap_or_default();
        let mut problems: Vec<String> = capture_errors.iter().map(|e| e.to_string()).collect();
        for a in asserts.iter().filter(|a| !a.passed) {
            problems.push(format!(
                "assertion failed: {} (got {})",
                a.description,
                a.actual.as_deref().unwrap_or("?")
            ));
        }
        if !problems.is_empty() {
            result.failure = Some(Failure {
                kind: FailureKind::Assertion,
                message: problems.join("\n"),
            });
        }
        // New tokens are durable at once: a rotated refresh token must never be lost to a crash.
        // Everything else is saved at the end of the command (or REPL line).
        if secret_changed && let Err(e) = self.save() {
            result
                .notes
                .push(format!("warning: could not save state: {e}"));
        }
        result.rendered = Some(rendered);
        result.exchange = Some(ex);
        result.set = bindings;
        result.asserts = asserts;
    }

    /// The steps of a flow between `from` and `to` (inclusive), with their indexes.
    pub fn flow_steps(
        &self,
        flow: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<(usize, Step)>, SetupError> {
        let f = self.collection.flows.get(flow).ok_or_else(|| {
            SetupError::UnknownFlow(
                flow.to_string(),
                suggest(flow, self.collection.flows.keys()),
            )
        })?;
        let find = |n: &str| {
            f.steps
                .iter()
                .position(|s| s.request() == n)
                .ok_or_else(|| SetupError::NoSuchStep(n.to_string(), flow.to_string()))
        };
        let start = from.map(find).transpose()?.unwrap_or(0);
        let end = to.map(find).transpose()?.unwrap_or(f.steps.len() - 1);
        Ok(f.steps
            .iter()
            .cloned()
            .enumerate()
            .skip(start)
            .take(end.saturating_sub(start) + 1)
            .collect())
    }

    /// The default flow: the first one.
    pub fn default_flow(&self) -> Result<String, SetupError> {
        self.collection
            .flows
            .keys()
            .next()
            .cloned()
            .ok_or(SetupError::NoFlows)
    }

    /// Checks, before anything is sent, that every variable the flow's steps use is defined or
    /// can be produced by an earlier step in the run.
    pub fn preflight(&self, flow: &str, steps: &[(usize, Step)]) -> Result<(), StepResult> {
        let scope = self.scope();
        let mut produced: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (pos, (idx, step)) in steps.iter().enumerate() {
            let req = &self.collection.requests[step.request()];
            // (field, template source, whether the source is a bare expression)
            let mut sources: Vec<(String, String, bool)> =
                vec![("url".into(), req.url.clone(), false)];
            sources.extend(
                req.query
                    .iter()
                    .map(|(k, v)| (format!("query.{k}"), v.0.clone(), false)),
            );
            sources.extend(
                req.headers
                    .iter()
                    .map(|(k, v)| (format!("headers.{k}"), v.0.clone(), false)),
            );
            match &req.auth {
                Some(crate::collection::Auth::Basic { user, password }) => {
                    sources.push(("auth.basic.user".into(), user.clone(), false));
                    sources.push(("auth.basic.password".into(), password.clone(), false));
                }
                Some(crate::collection::Auth::Bearer(t)) => {
                    sources.push(("auth.bearer".into(), t.clone(), false))
                }
                None => {}
            }
            if let Some(f) = &req.form {
                sources.extend(
                    f.iter()
                        .map(|(k, v)| (format!("form.{k}"), v.0.clone(), false)),
                );
            }
            if let Some(t) = &req.text {
                sources.push(("text".into(), t.clone(), false));
            }
            if let Some(j) = &req.json {
                let mut strings = Vec::new();
                crate::capture::json_strings(j, &mut strings);
                sources.extend(strings.into_iter().map(|s| ("json".to_string(), s, false)));
            }
            if let Some(w) = step.when() {
                sources.push(("when".into(), w.to_string(), true));
            }
            let mut refs: Vec<(String, String)> = Vec::new();
            for (field, src, is_expr) in sources {
                let found = match (is_expr, crate::template::sole_expression(&src)) {
                    (true, _) => self.templates.referenced_in_condition(&src),
                    (false, Some(e)) => self.templates.referenced_in_condition(e),
                    (false, None) => self.templates.referenced(&src),
                };
                refs.extend(found.into_iter().map(|r| (field.clone(), r)));
            }
            for (field, path) in refs {
                let root = path.split('.').next().unwrap_or(&path).to_string();
                if let Some(why) = scope.unresolved.get(&root)
                    && !produced.contains(&root)
                {
                    return Err(StepResult::failed(
                        step.request(),
                        FailureKind::Template,
                        format!(
                            "request `{}`, {field}: `<<{root}>>` could not be rendered: {why}",
                            step.request()
                        ),
                    ));
                }
                let defined = scope.ctx.get(&root).is_some() || produced.contains(&root);
                // Only the first step of the run cannot get a value from an earlier response.
                if !defined && pos == 0 {
                    return Err(StepResult::failed(
                        step.request(),
                        FailureKind::Template,
                        self.undefined_message(
                            step.request(),
                            &field,
                            &path,
                            &scope,
                            Some((flow, *idx)),
                        ),
                    ));
                }
                // Later steps may get it from a response — unless it is a near miss of a name
                // we know, which is almost always a typo worth stopping for.
                if !defined {
                    let mut known: Vec<String> = scope
                        .ctx
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    known.extend(produced.iter().cloned());
                    let hint = suggest(&root, known.iter());
                    if !hint.is_empty() {
                        return Err(StepResult::failed(
                            step.request(),
                            FailureKind::Template,
                            format!(
                                "request `{}`, {field}: `<<{path}>>` is undefined and no earlier step is known to set it{hint}",
                                step.request()
                            ),
                        ));
                    }
                }
            }
            produced.insert(step.request().to_string());
            produced.extend(req.capture.keys().cloned());
            // What this step's last response set, if it ran before: names it will likely set again.
            if let Some(last) = self.env_state().last_exchange(step.request())
                && let Some(Value::Object(body)) = last.get("body")
            {
                produced.extend(
                    body.iter()
                        .filter(|(_, v)| !v.is_object() && !v.is_array())
                        .map(|(k, _)| k.clone()),
                );
            }
        }
        Ok(())
    }

    /// Runs a flow (or part of it), calling `on_step` after each step; stops at the first failure.
    pub async fn run_flow(
        &mut self,
        flow: &str,
        from: Option<&str>,
        to: Option<&str>,
        on_step: &mut dyn FnMut(&StepResult, &Redactor),
    ) -> Result<FlowResult, SetupError> {
        let steps = self.flow_steps(flow, from, to)?;
        let mut out = FlowResult {
            flow: flow.to_string(),
            steps: Vec::new(),
        };
        if let Err(fail) = self.preflight(flow, &steps) {
            on_step(&fail, &self.redactor());
            out.steps.push(fail);
            return Ok(out);
        }
        for (idx, step) in steps {
            let r = self.run_step(flow, idx, &step).await;
            on_step(&r, &self.redactor());
            let stop = !r.ok();
            out.steps.push(r);
            if stop {
                break;
            }
        }
        Ok(out)
    }

    /// Runs one flow step: its `when`, the request, and its polling.
    pub async fn run_step(&mut self, flow: &str, idx: usize, step: &Step) -> StepResult {
        let name = step.request();
        if let Some(cond) = step.when() {
            match self.templates.condition(cond, &self.scope().ctx) {
                Ok(true) => {}
                Ok(false) => {
                    return StepResult {
                        request: name.to_string(),
                        skipped: Some(format!("when: {cond} is false")),
                        ..Default::default()
                    };
                }
                Err(e) => {
                    let msg = match &e.undefined {
                        Some(var) => self.undefined_message(
                            name,
                            "when",
                            var,
                            &self.scope(),
                            Some((flow, idx)),
                        ),
                        None => format!("step `{name}`, when: {e}"),
                    };
                    return StepResult::failed(name, FailureKind::Template, msg);
                }
            }
        }
        let Some(poll) = step.poll() else {
            return self.send_step(name, Some((flow, idx))).await;
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut r = self.send_step(name, Some((flow, idx))).await;
            r.attempts = attempt;
            if r.failure.is_some() {
                return r;
            }
            match self.templates.condition(poll.until, &self.scope().ctx) {
                Ok(true) => return r,
                Ok(false) if attempt >= poll.max_attempts => {
                    r.failure = Some(Failure {
                        kind: FailureKind::Assertion,
                        message: format!(
                            "until: `{}` still false after {attempt} attempts",
                            poll.until
                        ),
                    });
                    return r;
                }
                Ok(false) => tokio::time::sleep(poll.interval).await,
                Err(e) => {
                    r.failure = Some(Failure {
                        kind: FailureKind::Template,
                        message: format!("step `{name}`, until: {e}"),
                    });
                    return r;
                }
            }
        }
    }
}

/// Sends a request through a runner shared by concurrent tasks. The runner is locked only to
/// prepare (which refreshes an expiring token — so concurrent callers cause one refresh, the rest
/// see the new token) and to record; the HTTP exchanges themselves run in parallel. A 401 leads to
/// one refresh unless another task already replaced the token, then one replay.
pub async fn send_shared(shared: &tokio::sync::Mutex<Runner>, name: &str) -> StepResult {
    let mut notes = Vec::new();
    let (prepared, sender) = {
        let mut r = shared.lock().await;
        match r.prepare(name, None, &mut notes).await {
            Ok(p) => (p, r.sender.clone()),
            Err(mut fail) => {
                fail.notes.splice(0..0, notes);
                return fail;
            }
        }
    };
    let outcome = sender.send(&prepared.rendered).await;
    let mut r = shared.lock().await;
    let result = r.complete(prepared, outcome, notes);
    let rejected =
        result.exchange.as_ref().is_some_and(|e| e.status == 401) && r.uses_access_token(name);
    if !rejected {
        return result;
    }
    let used = result
        .rendered
        .as_ref()
        .and_then(|x| x.header("authorization"))
        .map(String::from);
    match crate::auth::refresh_if_current(&mut r, used.as_deref(), "rejected with 401").await {
        Ok(Some(note)) => {
            let mut notes = vec![note];
            match r.prepare(name, None, &mut notes).await {
                Ok(p) => {
                    let outcome = sender.send(&p.rendered).await;
                    r.complete(p, outcome, notes)
                }
                Err(fail) => fail,
            }
        }
        Ok(None) => result,
        Err(e) => {
            let mut result = result;
            result
                .notes
                .push(format!("access token rejected and refresh failed: {e}"));
            result
        }
    }
}
