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
use std::sync::Arc;

use crate::assert::{self, AssertResult};
use crate::chain::{self, Binding};
use crate::collection::{Collection, Step, suggest};
use crate::exchange::{Exchange, Rendered, SendError, Sender};
use crate::exit::{INTERRUPTED as EXIT_INTERRUPTED, PARTIAL as EXIT_PARTIAL};
use crate::redact::Redactor;
use crate::scope::{Inputs, Scope};
use crate::state::{EnvState, StateError, Store};
use crate::template::Templates;

pub mod data;
mod flow;
mod scripts;
mod undefined;

pub use flow::ALL;
pub use scripts::{Phase, Ran};

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
    /// The request would carry a secret to a host it is not bound to; nothing was sent (exit 2,
    /// even after earlier steps: the collection, not the run, must change).
    Secret,
}

impl FailureKind {
    /// The documented exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Assertion => 1,
            FailureKind::Template | FailureKind::Secret => 2,
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
    /// What the request's scripts printed.
    pub console: Vec<crate::script::ConsoleLine>,
    /// A script's `setNextRequest`.
    pub next: Option<crate::script::Next>,
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
    /// `--folder` names a folder no step of the flow is in.
    #[error("no step of flow `{1}` is in folder `{0}`{2}")]
    NoSuchFolder(String, String, String),
    /// `--from`/`--to` name a step that is not in the flow.
    #[error("`{0}` is not a step of flow `{1}`{2}")]
    NoSuchStep(String, String, String),
    /// `--to` comes before `--from`.
    #[error("`--to {to}` comes before `--from {from}` in flow `{flow}`; nothing would run")]
    EmptyRange {
        /// The flow.
        flow: String,
        /// `--from`.
        from: String,
        /// `--to`.
        to: String,
    },
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
    /// The in-process mock's URL, bound to `mock_url`.
    pub mock_url: Option<String>,
    /// `--fresh`: start from empty state for this run (the saved state is kept).
    pub fresh: bool,
    /// Override the state directory (default `.postie` beside the collection).
    pub state_dir: Option<PathBuf>,
    /// TLS options from the command line (over the collection's `tls:`).
    pub tls: crate::exchange::TlsOptions,
    /// `--allow-secret-host NAME=HOST`: secrets let through to another host for this run.
    pub allow_secret_hosts: Vec<(String, String)>,
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
    /// This collection's saved state.
    pub store: Store,
    /// Every secret value seen so far; grows as responses bind secrets.
    redactor: Redactor,
    /// The root variable names each request's templates use, computed once per request.
    roots: std::sync::Mutex<std::collections::HashMap<String, Arc<RequestRefs>>>,
    /// Seconds added to the wall clock (follows an in-process mock's virtual clock).
    pub clock_offset: i64,
    /// `--yes`: send a PUT even when the guard fires.
    pub put_guard_confirmed: bool,
    /// A PUT guard warning stops the request (headless commands); otherwise it is a note.
    pub put_guard_strict: bool,
    /// The PUT guard's warning was already shown to the user who confirmed it.
    pub put_guard_shown: bool,
    /// `--strict`: automatic chaining that replaces a variable another request set fails the step.
    pub strict_chaining: bool,
    /// `--fail-on-status`: a status of 400 or more fails a step that asserts no status.
    pub fail_on_status: bool,
    /// This process's requests, one line each (the REPL's `history`), newest last.
    sent: std::collections::VecDeque<String>,
    /// The iteration (0-based) and how many the run has (`run --data`).
    pub iteration: (usize, usize),
    /// `--folder`: run only the flow's steps whose request is in this folder.
    pub folder: Option<String>,
    /// Run every step of a flow whatever failed before (Newman's way; `--bail` turns it off).
    pub keep_going: bool,
    /// Limits for scripts.
    pub script_limits: crate::script::Limits,
    /// `--allow-secret-host NAME=HOST` pairs.
    pub allow_secret_hosts: Vec<(String, String)>,
    /// Secret-named process environment variables (bound to the collection's hosts).
    env_secrets: Vec<(String, String)>,
    /// Which variables the secret-host check renders, for the environment it was made for.
    secret_plan: std::sync::Mutex<Option<(Option<String>, Arc<crate::secret_hosts::Plan>)>>,
}

/// How many lines [`Runner::sent_log`] keeps.
const KEEP_SENT_LOG: usize = 1000;

/// What a request's templates refer to.
#[derive(Debug, Default)]
pub struct RequestRefs {
    /// Root variable names (`access_token`, `find_contact`, `env`, ...).
    pub roots: std::collections::BTreeSet<String>,
}

/// A request ready to go (phase one of a send).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What will be sent.
    pub rendered: Rendered,
    /// What its pre-request scripts did.
    pub pre: Option<Ran>,
}

/// The result of a flow run.
#[derive(Debug, Clone, Default)]
pub struct FlowResult {
    /// The flow's name.
    pub flow: String,
    /// Step results in order.
    pub steps: Vec<StepResult>,
    /// Steps that did not run because an earlier one failed (or the run was interrupted).
    pub not_run: Vec<String>,
    /// The run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Which iteration of how many (`run --data` with more than one row).
    pub iteration: Option<(usize, usize)>,
}

impl FlowResult {
    /// The flow's name, with the iteration when there are several.
    pub fn label(&self) -> String {
        match self.iteration {
            Some((i, n)) => format!("{} (iteration {i}/{n})", self.flow),
            None => self.flow.clone(),
        }
    }
}

impl FlowResult {
    /// The exit code: 130 when interrupted, else the first failure's kind (a template failure
    /// after something was sent is 4, not 2, which promises nothing was sent), or 0.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            return EXIT_INTERRUPTED;
        }
        let Some(i) = self.steps.iter().position(|s| s.failure.is_some()) else {
            return 0;
        };
        let kind = self.steps[i].failure.as_ref().map(|f| f.kind);
        let sent_before = self.steps[..i].iter().any(|s| s.exchange.is_some());
        match kind {
            Some(FailureKind::Template) if sent_before => EXIT_PARTIAL,
            Some(k) => k.exit_code(),
            None => 0,
        }
    }
}

impl Runner {
    /// Creates a runner over the collection's saved state (empty for this run when `fresh`).
    pub fn new(collection: Collection, opts: RunOptions) -> Result<Runner, SetupError> {
        Runner::with_templates(collection, Templates::new(), opts)
    }

    /// [`Runner::new`] with a template engine that already analysed the collection (validation).
    pub fn with_templates(
        collection: Collection,
        templates: Templates,
        opts: RunOptions,
    ) -> Result<Runner, SetupError> {
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
        let store = Store::open(
            &collection.path,
            &collection.name,
            opts.state_dir.as_deref(),
            opts.fresh,
        )?;
        let mut inputs = Inputs::new(
            opts.env.clone(),
            opts.vars.clone(),
            Inputs::environment_for(&collection.dir()),
        );
        inputs.mock_url = opts.mock_url.clone();
        let mut tls = opts.tls.over(
            &collection
                .tls
                .clone()
                .unwrap_or_default()
                .relative_to(&collection.dir()),
        );
        // Newman keeps the cookies responses set for the rest of the run.
        tls.cookie_jar |= collection.newman();
        let mut script_limits = crate::script::Limits::default();
        if let Some(t) = collection
            .script_timeout
            .as_deref()
            .and_then(|t| crate::util::parse_duration(t).ok())
        {
            script_limits.timeout = t;
        }
        let mut runner = Runner {
            collection,
            templates,
            sender: Sender::with_tls(&tls)?,
            inputs,
            store,
            redactor: Redactor::default(),
            roots: Default::default(),
            clock_offset: 0,
            put_guard_confirmed: false,
            put_guard_strict: false,
            put_guard_shown: false,
            strict_chaining: false,
            fail_on_status: false,
            sent: Default::default(),
            iteration: (0, 1),
            script_limits,
            folder: None,
            keep_going: false,
            allow_secret_hosts: opts.allow_secret_hosts.clone(),
            env_secrets: Vec::new(),
            secret_plan: Default::default(),
        };
        runner.env_secrets = runner
            .inputs
            .process_env
            .iter()
            .filter(|(k, _)| crate::redact::is_secret_name(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        runner.keep_going = runner.collection.newman();
        runner.rebuild_redactor();
        Ok(runner)
    }

    /// Recomputes the redactor from everything in scope and every stored exchange (when the
    /// environment or the inputs change; once per command otherwise).
    pub fn rebuild_redactor(&mut self) {
        let mut values = self.scope().secret_values();
        let st = self.env_state();
        for list in st.exchanges().values() {
            // Only a stored exchange that mentions a secret-looking name is parsed.
            for raw in list
                .iter()
                .filter(|r| crate::redact::mentions_secret_name(r.get()))
            {
                let Some(ex) = crate::state::parse_stored(raw) else {
                    continue;
                };
                let mut found = Vec::new();
                crate::scope::secret_fields(ex.get("body").unwrap_or(&Value::Null), &mut found);
                values.extend(found.into_iter().map(String::from));
            }
        }
        self.redactor = Redactor::new(values);
    }

    /// The key state is stored under: the environment name, or `default`.
    pub fn env_key(&self) -> String {
        self.inputs.env.clone().unwrap_or_else(|| "default".into())
    }

    /// This environment's state.
    pub fn env_state(&self) -> &EnvState {
        static EMPTY: std::sync::LazyLock<EnvState> = std::sync::LazyLock::new(EnvState::default);
        self.store
            .state
            .envs
            .get(self.inputs.env.as_deref().unwrap_or("default"))
            .unwrap_or(&EMPTY)
    }

    /// Mutable access to this environment's state.
    pub fn env_state_mut(&mut self) -> &mut EnvState {
        let key = self.env_key();
        self.store.state.env_mut(&key)
    }

    /// The scope: a view over inputs, state and the collection (built in O(1)).
    pub fn scope(&self) -> Scope<'_> {
        Scope::new(
            &self.collection,
            &self.templates,
            &self.inputs,
            self.env_state(),
        )
    }

    /// A variable's current value, by the scope's precedence.
    pub fn value(&self, name: &str) -> Option<Value> {
        self.scope().get(name).map(|v| v.into_owned())
    }

    /// The redactor for everything secret seen so far.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Saves state if anything changed (only this process's changes; see [`Store::save`]).
    pub fn save(&mut self) -> Result<(), StateError> {
        self.store.save()
    }

    /// Sets a variable by hand (REPL `set`), persisted in state.
    pub fn set_var(&mut self, name: &str, value: Value, secret: bool) {
        let secret = secret || crate::redact::is_secret_name(name);
        if secret {
            let mut strs = Vec::new();
            crate::capture::json_str_refs(&value, &mut strs);
            let strs: Vec<String> = strs.into_iter().map(String::from).collect();
            self.redactor.extend(strs);
        }
        self.env_state_mut().set(name, value, None, secret);
    }

    /// This process's requests, one line each, oldest first (unmasked: mask before showing).
    pub fn sent_log(&self) -> &std::collections::VecDeque<String> {
        &self.sent
    }

    /// Adds values to mask everywhere (a login's authorization code).
    pub fn add_secrets(&mut self, values: impl IntoIterator<Item = String>) {
        self.redactor.extend(values);
    }

    /// Removes a variable from state; returns whether it existed.
    pub fn unset_var(&mut self, name: &str) -> bool {
        self.env_state_mut().remove_var(name).is_some()
    }

    /// What a request's templates refer to (computed once per request).
    pub fn request_refs(&self, name: &str) -> Arc<RequestRefs> {
        let mut cache = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(name) {
            return r.clone();
        }
        let mut refs = RequestRefs::default();
        if let Some(req) = self.collection.requests.get(name) {
            for (_, src) in req.template_sources() {
                for path in self.templates.references(src) {
                    refs.roots.insert(crate::scope::root_of(&path).to_string());
                }
            }
        }
        let refs = Arc::new(refs);
        cache.insert(name.to_string(), refs.clone());
        refs
    }

    /// The template context for a request: just the names it uses.
    pub fn context_for_request(&self, scope: &Scope<'_>, name: &str) -> Value {
        let refs = self.request_refs(name);
        let mut ctx = scope.context_for(refs.roots.iter().map(String::as_str));
        // Newman sends a name nothing defines as it is written: `{{name}}`.
        if self.collection.newman()
            && let Value::Object(m) = &mut ctx
        {
            for r in &refs.roots {
                if !m.contains_key(r) {
                    m.insert(r.clone(), Value::String(format!("{{{{{r}}}}}")));
                }
            }
        }
        ctx
    }

    /// Names a request uses that nothing defines (sent as `{{name}}` under `compat: newman`).
    pub fn undefined_roots(&self, scope: &Scope<'_>, name: &str) -> Vec<String> {
        self.request_refs(name)
            .roots
            .iter()
            .filter(|r| scope.get(r).is_none())
            .cloned()
            .collect()
    }

    /// The template context for a `when:`/`until:` condition.
    pub fn context_for_condition(&self, scope: &Scope<'_>, expr: &str) -> Value {
        let roots: Vec<String> = self
            .templates
            .referenced_in_condition(expr)
            .iter()
            .map(|p| crate::scope::root_of(p).to_string())
            .collect();
        scope.context_for(roots.iter().map(String::as_str))
    }

    /// Renders a request in the current scope without sending it.
    /// A request that would carry a secret to a host it is not bound to is refused.
    pub fn render(&self, name: &str) -> Result<Rendered, StepResult> {
        let scope = self.scope();
        let r = self.render_in(name, &scope, None)?;
        self.check_secret_hosts(&scope, &r)?;
        Ok(r)
    }

    /// Renders a request for display only (secrets are masked by whoever shows it), with what
    /// sending it would say about its secrets' hosts: `Some(refusal)` when it would be refused.
    pub fn render_for_display(&self, name: &str) -> Result<(Rendered, Option<String>), StepResult> {
        let scope = self.scope();
        let r = self.render_in(name, &scope, None)?;
        let refusal = self
            .check_secret_hosts(&scope, &r)
            .err()
            .and_then(|f| f.failure.map(|f| f.message));
        Ok((r, refusal))
    }

    /// Checks that every secret the request carries is bound to its host (see
    /// [`crate::secret_hosts`]); the notes say which ones `--allow-secret-host` let through.
    pub fn check_secret_hosts(
        &self,
        scope: &Scope<'_>,
        r: &Rendered,
    ) -> Result<Vec<String>, StepResult> {
        // Made once per environment (the REPL can switch): each step then renders only the
        // variables that matter, however many the collection defines.
        let plan = {
            let mut cached = self.secret_plan.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some((env, plan)) if *env == self.inputs.env => plan.clone(),
                _ => {
                    let plan = Arc::new(crate::secret_hosts::Plan::new(scope));
                    *cached = Some((self.inputs.env.clone(), plan.clone()));
                    plan
                }
            }
        };
        crate::secret_hosts::check(scope, &plan, &self.env_secrets, &self.allow_secret_hosts, r)
            .map(|v| v.allowed_once)
            .map_err(|msg| {
                let mut fail = StepResult::failed(&r.name, FailureKind::Secret, msg);
                fail.notes.clear();
                fail
            })
    }

    fn render_in(
        &self,
        name: &str,
        scope: &Scope<'_>,
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
        let role = self
            .collection
            .oauth2
            .as_ref()
            .and_then(|o| o.token_role(name));
        let ctx = self.context_for_request(scope, name);
        let mut rendered = Rendered::render_with(
            &self.templates,
            name,
            req,
            &ctx,
            role.is_some(),
            Some(&self.collection),
        )
        .map_err(|e| {
            let msg = match &e.error.undefined {
                Some(var) => self.undefined_message(name, &e.field, var, scope, flow),
                None => format!("request `{name}`, {}: {}", e.field, e.error.message),
            };
            StepResult::failed(name, FailureKind::Template, msg)
        })?;
        if let Some(role) = role {
            crate::auth::apply_client_auth(self, scope, role, &mut rendered)
                .map_err(|msg| StepResult::failed(name, FailureKind::Template, msg))?;
        }
        rendered.check().map_err(|msg| {
            StepResult::failed(
                name,
                FailureKind::Template,
                format!("request `{name}`, {msg}"),
            )
        })?;
        Ok(rendered)
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
        let outcome = self.send_prepared(&prepared).await;
        let result = self.complete(prepared, outcome, notes);
        self.replay_after_401(name, flow, result).await
    }

    /// Phase two of a send: the request on the wire (redirects keep secrets on their host).
    pub async fn send_prepared(&self, prepared: &Prepared) -> Result<Exchange, SendError> {
        let redactor = &self.redactor;
        self.sender
            .send_guarded(&prepared.rendered, &|t| redactor.finds(t))
            .await
    }

    /// When the API rejected the access token with 401: one refresh (unless another task already
    /// replaced the token) and one replay.
    async fn replay_after_401(
        &mut self,
        name: &str,
        flow: Option<(&str, usize)>,
        mut result: StepResult,
    ) -> StepResult {
        if !(result.exchange.as_ref().is_some_and(|e| e.status == 401)
            && self.uses_access_token(name))
        {
            return result;
        }
        let carried_current = result
            .rendered
            .as_ref()
            .is_some_and(|r| self.access_token_in(r).is_some());
        match crate::auth::refresh_if_current(self, carried_current, "rejected with 401").await {
            Ok(note) => {
                let mut notes = vec![note];
                let prepared = match self.prepare(name, flow, &mut notes).await {
                    Ok(p) => p,
                    Err(fail) => return fail,
                };
                let outcome = self.send_prepared(&prepared).await;
                self.complete(prepared, outcome, notes)
            }
            Err(e) => {
                crate::auth::refresh_failed(self, &mut result, e);
                result
            }
        }
    }

    /// The access token a rendered request carries, if it carries the current one.
    pub fn access_token_in(&self, r: &Rendered) -> Option<String> {
        let token = crate::auth::access_token(self)?;
        let carried = r.url.contains(&token)
            || r.headers.iter().any(|(_, v)| v.contains(&token))
            || r.body_text().is_some_and(|b| b.contains(&token));
        carried.then_some(token)
    }

    /// Phase one of a send: a proactive token refresh, rendering, and the PUT guard.
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
                Err(e) if e.fatal => {
                    return Err(StepResult::failed(name, FailureKind::Http, e.message));
                }
                Err(e) => notes.push(format!("could not refresh the access token: {}", e.message)),
            }
        }
        let pre = self.run_scripts(name, Phase::Pre, None, None);
        if let Some(ran) = &pre
            && ran.output.skip
        {
            let mut r = StepResult {
                request: name.to_string(),
                skipped: Some("pm.execution.skipRequest() in a pre-request script".into()),
                ..Default::default()
            };
            let problems = ran.clone().merge_into(&mut r);
            if !problems.is_empty() {
                r.failure = Some(Failure {
                    kind: FailureKind::Assertion,
                    message: problems.join("\n"),
                });
            }
            return Err(r);
        }
        let scope = self.scope();
        let mut rendered = match self.render_in(name, &scope, flow) {
            Ok(r) => r,
            Err(mut fail) => {
                drop(scope);
                if let Some(ran) = pre {
                    let problems = ran.merge_into(&mut fail);
                    if let Some(f) = &mut fail.failure {
                        for p in problems {
                            f.message.push('\n');
                            f.message.push_str(&p);
                        }
                    }
                }
                return Err(fail);
            }
        };
        if self.collection.newman() {
            for r in self.undefined_roots(&scope, name) {
                notes.push(format!(
                    "`{r}` is not defined: sent as `{{{{{r}}}}}`, as Newman does"
                ));
            }
        }
        drop(scope);
        if let Some(ran) = &pre {
            Self::apply_request_ops(&mut rendered, &ran.output.request_ops);
        }
        // After the scripts: a header a script added is checked too.
        match self.check_secret_hosts(&self.scope(), &rendered) {
            Ok(allowed) => notes.extend(allowed),
            Err(fail) => return Err(fail),
        }
        if let Some(warning) = crate::guard::put_guard(&rendered, self.env_state()) {
            if self.put_guard_confirmed && self.put_guard_shown {
                notes.push("PUT guard: sent anyway (confirmed)".into());
            } else if self.put_guard_confirmed {
                notes.push(format!("{warning}\nsent anyway (--yes)"));
            } else if self.put_guard_strict {
                let mut r = StepResult::failed(
                    name,
                    FailureKind::Assertion,
                    format!(
                        "{warning}\nnot sent: pass --yes to send it anyway, or send the full resource"
                    ),
                );
                r.rendered = Some(rendered);
                return Err(r);
            } else {
                notes.push(format!("warning: {warning}"));
            }
        }
        Ok(Prepared { rendered, pre })
    }

    /// Phase three of a send: record the outcome (or the network failure).
    pub fn complete(
        &mut self,
        prepared: Prepared,
        outcome: Result<Exchange, SendError>,
        notes: Vec<String>,
    ) -> StepResult {
        let rendered = prepared.rendered;
        let pre = prepared.pre;
        let line = match &outcome {
            Ok(ex) => format!(
                "{} {} {} → {} ({:.0}ms)",
                rendered.name,
                rendered.method,
                rendered.url,
                ex.status,
                ex.elapsed.as_secs_f64() * 1000.0
            ),
            Err(e) => format!(
                "{} {} {} → {e}",
                rendered.name, rendered.method, rendered.url
            ),
        };
        if self.sent.len() >= KEEP_SENT_LOG {
            self.sent.pop_front();
        }
        self.sent.push_back(line);
        let mut result = StepResult {
            request: rendered.name.clone(),
            attempts: 1,
            notes,
            ..Default::default()
        };
        // A pre-request script's failures fail the step, but (as under Newman) the request
        // still goes.
        let pre_problems = pre
            .map(|ran| ran.merge_into(&mut result))
            .unwrap_or_default();
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
        if !pre_problems.is_empty() {
            match &mut result.failure {
                Some(f) => {
                    let rest = std::mem::take(&mut f.message);
                    f.message = format!("{}\n{rest}", pre_problems.join("\n"));
                }
                None => {
                    result.failure = Some(Failure {
                        kind: FailureKind::Assertion,
                        message: pre_problems.join("\n"),
                    })
                }
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

    /// Whether a request uses the OAuth2 access-token variable anywhere (URL, headers, auth,
    /// body) and is not itself one of the OAuth2 requests.
    pub fn uses_access_token(&self, name: &str) -> bool {
        let Some(o) = &self.collection.oauth2 else {
            return false;
        };
        !o.is_engine_request(name) && self.request_refs(name).roots.contains(&o.access_token)
    }

    /// Current time in unix seconds as the runner sees it (wall clock plus any offset set to
    /// follow a mock's virtual clock).
    pub fn now(&self) -> i64 {
        crate::util::unix_now() + self.clock_offset
    }

    /// Binds and asserts an exchange into `result`, updating state.
    pub fn record(&mut self, result: &mut StepResult, rendered: Rendered, ex: Exchange) {
        let name = rendered.name.clone();
        let oauth = self.collection.oauth2.clone();
        let role = oauth.as_ref().and_then(|o| o.token_role(&name));
        let (bindings, capture_errors, asserts) = match self.collection.requests.get(&name) {
            Some(req) => {
                let (b, e) = chain::bind(req, &ex);
                let a = self.check_asserts(&name, &ex);
                (b, e, a)
            }
            None => (vec![], vec![], vec![]),
        };
        // Automatic chaining never replaces what the user declared (collection, environment,
        // --var, `set`) nor hides an exchange; only an explicit capture may. The token
        // variables are the engine's own when a token response sets them.
        let newman = self.collection.newman();
        let bindings: Vec<Binding> = {
            let scope = self.scope();
            let engine_owned = |n: &str| {
                role.is_some()
                    && oauth
                        .as_ref()
                        .is_some_and(|o| n == o.access_token || n == o.refresh_token)
            };
            bindings
                .into_iter()
                .filter(|b| {
                    b.explicit
                        || engine_owned(&b.name)
                        // Newman has no automatic chaining: values come from captures and
                        // scripts only.
                        || !(newman
                            || self.collection.requests.contains_key(&b.name)
                            || b.name == "env"
                            || scope.is_declared(&b.name))
                })
                .collect()
        };
        let granted = role.is_some()
            && ex.status == 200
            && oauth
                .as_ref()
                .is_some_and(|o| bindings.iter().any(|b| b.name == o.access_token));
        let mut new_secrets: Vec<String> = Vec::new();
        {
            let mut found = Vec::new();
            if let Some(j) = &ex.json {
                crate::scope::secret_fields(j, &mut found);
            }
            new_secrets.extend(found.into_iter().map(String::from));
        }
        let code_var = oauth.as_ref().map(|o| o.code.clone());
        let token_vars: Vec<String> = oauth
            .as_ref()
            .map(|o| vec![o.access_token.clone(), o.refresh_token.clone()])
            .unwrap_or_default();
        let engine_token = |n: &str| token_vars.iter().any(|t| t == n);
        let env = self.env_state_mut();
        env.record_stored(&name, ex.body.len(), |seq, omitted| ex.stored(seq, omitted));
        let mut bindings = bindings;
        for b in &mut bindings {
            // The authorization code is a one-time credential: mask it.
            if code_var.as_deref() == Some(b.name.as_str()) {
                b.secret = true;
            }
            if let Some(old) = env.vars().get(&b.name)
                && old.value != b.value
                && let Some(src) = &old.source
                && *src != name
            {
                b.replaced = Some((
                    chain::short(&crate::capture::value_text(&old.value)),
                    src.clone(),
                ));
            }
            if b.secret {
                let mut strs = Vec::new();
                crate::capture::json_str_refs(&b.value, &mut strs);
                new_secrets.extend(strs.into_iter().map(String::from));
            }
            if newman && !engine_token(&b.name) {
                // A capture of an imported collection stands for `pm.environment.set`.
                env.set_layer("environment", &b.name, Some(b.value.clone()), b.secret);
            } else {
                env.set(&b.name, b.value.clone(), Some(&name), b.secret);
            }
        }
        self.redactor.extend(new_secrets);
        if granted && let (Some(o), Some(role)) = (&oauth, role) {
            crate::auth::record_grant(self, o, role, &rendered, &ex);
        }
        let mut problems: Vec<String> = capture_errors.iter().map(|e| e.to_string()).collect();
        let post = self.run_scripts(&name, Phase::Post, Some(&rendered), Some(&ex));
        for a in asserts.iter().filter(|a| !a.passed) {
            problems.push(format!(
                "assertion failed: {} (got {})",
                a.description,
                a.actual.as_deref().unwrap_or("?")
            ));
        }
        let asserts_status = self
            .collection
            .requests
            .get(&name)
            .is_some_and(|r| r.assert.iter().any(|a| a.status.is_some()));
        if self.fail_on_status && !asserts_status && ex.status >= 400 {
            problems.push(format!(
                "HTTP {} (--fail-on-status; assert a status to accept it)",
                ex.status
            ));
        }
        if self.strict_chaining {
            for b in bindings.iter().filter(|b| !b.explicit) {
                if let Some((_, from)) = &b.replaced {
                    problems.push(format!(
                        "automatic chaining replaced `{}` set by `{from}` (--strict); write `<<{from}.body.{}>>` where the old value is meant, or capture it under its own name",
                        b.name, b.name
                    ));
                }
            }
        }
        // New tokens are durable at once: a rotated refresh token must never be lost to a crash.
        // Everything else is saved at the end of the command (or REPL line).
        if granted && let Err(e) = self.save() {
            result
                .notes
                .push(format!("warning: could not save state: {e}"));
        }
        result.rendered = Some(rendered);
        result.exchange = Some(ex);
        result.set.extend(bindings);
        result.asserts.extend(asserts);
        if let Some(ran) = post {
            problems.extend(ran.merge_into(result));
        }
        if !problems.is_empty() {
            result.failure = Some(Failure {
                kind: FailureKind::Assertion,
                message: problems.join("\n"),
            });
        }
    }

    /// Checks a request's assertions; their expected values are templates like every string.
    fn check_asserts(&self, name: &str, ex: &Exchange) -> Vec<AssertResult> {
        let Some(req) = self.collection.requests.get(name) else {
            return vec![];
        };
        if req.assert.is_empty() {
            return vec![];
        }
        let scope = self.scope();
        req.assert
            .iter()
            .map(|a| assert::check_in(a, ex, &self.templates, &scope))
            .collect()
    }
}

/// Sends a request through a runner shared by concurrent tasks. The runner is locked only to
/// prepare (which refreshes an expiring token — so concurrent callers cause one refresh, the rest
/// see the new token) and to record; the HTTP exchanges themselves run in parallel. A 401 leads to
/// one refresh unless another task already replaced the token, then one replay.
pub async fn send_shared(shared: &tokio::sync::Mutex<Runner>, name: &str) -> StepResult {
    let mut notes = Vec::new();
    let (prepared, sender, redactor) = {
        let mut r = shared.lock().await;
        match r.prepare(name, None, &mut notes).await {
            Ok(p) => (p, r.sender.clone(), r.redactor.clone()),
            Err(mut fail) => {
                fail.notes.splice(0..0, notes);
                return fail;
            }
        }
    };
    let outcome = sender
        .send_guarded(&prepared.rendered, &|t| redactor.finds(t))
        .await;
    let mut r = shared.lock().await;
    let result = r.complete(prepared, outcome, notes);
    r.replay_after_401(name, None, result).await
}
