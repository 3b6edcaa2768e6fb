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

mod flow;
mod undefined;

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
            let names: Vec<&str> = collection.environments.keys().map(String::as_str).collect();
            let hint = match suggest(e, collection.environments.keys()) {
                h if !h.is_empty() => h,
                _ if names.is_empty() => " (it defines none)".into(),
                _ => format!(" (available: {})", names.join(", ")),
            };
            return Err(SetupError::UnknownEnv(e.clone(), hint));
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
                .references(s)
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
        // Bind and assert against the collection first, then update state.
        let (bindings, capture_errors, asserts) = match self.collection.requests.get(&name) {
            Some(req) => {
                let (b, e) = chain::bind(req, &ex);
                let a: Vec<AssertResult> =
                    req.assert.iter().map(|a| assert::check(a, &ex)).collect();
                (b, e, a)
            }
            None => (vec![], vec![], vec![]),
        };
        let env = self.env_state_mut();
        env.record_exchange(&name, ex.to_value());
        let mut secret_changed = false;
        for b in &bindings {
            secret_changed |= b.secret && env.vars.get(&b.name).is_none_or(|v| v.value != b.value);
            env.set(&b.name, b.value.clone(), Some(&name), b.secret);
        }
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
