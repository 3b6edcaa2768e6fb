//! Scripts: Postman-style JavaScript run before a request (`pre`) and after its response
//! (`post`), in an embedded QuickJS engine with the `pm` API (`pm.js`) and the libraries Newman
//! exposes (Chai, lodash, crypto-js, moment — loaded on first use).
//!
//! The sandbox sees plain data the runner hands in ([`Input`]: the variable layers, the request,
//! the response) and hands back what the scripts did ([`Output`]: test outcomes, variable
//! operations, console lines, `setNextRequest`). It has no file or network access. Each script has
//! a time limit (CPU time: waiting for a `setTimeout` does not count) and the engine a memory
//! limit; a script that passes either is stopped and the engine is rebuilt for the next one.
//!
//! One engine per thread, built on the first script: steps without scripts cost nothing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, Context, Ctx, Function, Object, Promise, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PM_JS: &str = include_str!("pm.js");

/// A library the sandbox can load, by the name `pm.js` asks for.
fn library(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "chai" => ("chai.js", include_str!("vendor/chai.js")),
        "lodash" => ("lodash.min.js", include_str!("vendor/lodash.min.js")),
        "crypto-js" => ("crypto-js.js", include_str!("vendor/crypto-js.js")),
        "moment" => ("moment.min.js", include_str!("vendor/moment.min.js")),
        _ => return None,
    })
}

/// How long one script may run and how much memory the engine may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// CPU time per script (time spent waiting for timers is not counted).
    pub timeout: Duration,
    /// The engine's heap, libraries included.
    pub memory: usize,
    /// How long one script may wait for its timers in all.
    pub timer_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(1),
            memory: 64 << 20,
            timer_wait: Duration::from_secs(60),
        }
    }
}

/// One script to run, with a label for messages (`collection pre-request script`).
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// Where it comes from.
    pub label: String,
    /// The JavaScript.
    pub code: &'a str,
}

/// Postman's variable layers as the scripts see them, widest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Layers {
    /// `pm.globals`.
    pub globals: serde_json::Map<String, Value>,
    /// `pm.collectionVariables`.
    pub collection: serde_json::Map<String, Value>,
    /// `pm.environment`.
    pub environment: serde_json::Map<String, Value>,
    /// `pm.iterationData`.
    pub data: serde_json::Map<String, Value>,
    /// `pm.variables` (local).
    pub local: serde_json::Map<String, Value>,
}

/// A header as scripts see it.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// Name as sent or received.
    pub key: String,
    /// Value.
    pub value: String,
}

/// The request as scripts see it (`pm.request`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request's name in the collection.
    pub id: String,
    /// Its title (the name it had where it was imported from), else its name.
    pub name: String,
    /// Method.
    pub method: String,
    /// URL (rendered after the request was sent; the template before).
    pub url: String,
    /// Headers.
    pub headers: Vec<Header>,
    /// Body text.
    pub body: Option<String>,
    /// `raw`, `urlencoded` or `formdata`.
    pub body_mode: Option<String>,
}

/// The response as scripts see it (`pm.response`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseView {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order received.
    pub headers: Vec<Header>,
    /// Body as text.
    pub body: String,
    /// Milliseconds.
    pub response_time: u64,
    /// Body bytes.
    pub size: usize,
    /// The cookies the run's jar holds for the request's URL (`pm.cookies`), besides those the
    /// response sets.
    pub cookies: Vec<Header>,
}

/// Everything a phase's scripts see.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// `prerequest` or `test`.
    pub event: &'static str,
    /// `pm.environment.name`.
    pub environment_name: Option<String>,
    /// 0-based iteration.
    pub iteration: usize,
    /// Iterations in the run.
    pub iteration_count: usize,
    /// Variable layers.
    pub vars: Layers,
    /// The request.
    pub request: Option<RequestView>,
    /// The response (test scripts only).
    pub response: Option<ResponseView>,
}

/// One `pm.test` (or legacy `tests[…]`) outcome.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The assertion's message when it failed.
    pub error: Option<String>,
    /// `pm.test.skip`, or a test without a function.
    #[serde(default)]
    pub skipped: bool,
    /// Index of the script that ran it.
    pub script: usize,
}

/// A script that failed: a syntax error, an uncaught exception, or a limit.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ScriptError {
    /// Index of the script.
    pub script: usize,
    /// What happened.
    pub message: String,
    /// The JavaScript stack, when there is one.
    #[serde(default)]
    pub stack: String,
}

impl ScriptError {
    /// The 1-based line in the script where it happened, when the engine says.
    pub fn line(&self) -> Option<u32> {
        let tag = format!("script{}:", self.script);
        [&self.stack, &self.message].iter().find_map(|s| {
            let at = s.find(&tag)? + tag.len();
            let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }
}

/// A console line.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConsoleLine {
    /// `log`, `info`, `warn`, `error`, `debug`.
    pub level: String,
    /// The formatted arguments.
    pub text: String,
}

/// A change a script made to a variable layer, in the order made.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct VarOp {
    /// `globals`, `collection`, `environment` or `local`.
    pub layer: String,
    /// `set`, `unset` or `clear`.
    pub op: String,
    /// The variable (absent for `clear`).
    #[serde(default)]
    pub key: Option<String>,
    /// The value for `set`.
    #[serde(default)]
    pub value: Option<Value>,
}

/// A change a pre-request script made to the outgoing request's headers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct RequestOp {
    /// `add`, `upsert` or `remove`.
    pub op: String,
    /// Header name.
    pub key: String,
    /// Header value (`add`, `upsert`).
    #[serde(default)]
    pub value: Option<String>,
}

/// `setNextRequest`: a request to run next, or `None` to stop the run.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Next {
    /// The request's name, or null to stop.
    pub value: Option<String>,
}

/// What a phase's scripts did.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// Test outcomes in the order the tests were declared.
    #[serde(default)]
    pub tests: Vec<TestOutcome>,
    /// Script failures.
    #[serde(default)]
    pub errors: Vec<ScriptError>,
    /// Console output.
    #[serde(default)]
    pub console: Vec<ConsoleLine>,
    /// Variable changes.
    #[serde(default)]
    pub ops: Vec<VarOp>,
    /// Header changes to the outgoing request.
    #[serde(default)]
    pub request_ops: Vec<RequestOp>,
    /// `pm.execution.skipRequest()`.
    #[serde(default)]
    pub skip: bool,
    /// `setNextRequest`, when called.
    #[serde(default)]
    pub next: Option<Next>,
}

struct Engine {
    rt: Runtime,
    ctx: Context,
    deadline: Rc<Cell<Instant>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Whether this thread's engine is built (for benchmarks and tests).
pub fn engine_ready() -> bool {
    ENGINE.with(|e| e.borrow().is_some())
}

/// Runs a phase's scripts in order, sharing the `pm` state (a variable one script sets, the
/// next sees), and returns what they did. Failures are in [`Output::errors`]; this never panics
/// on what a script does.
pub fn run(input: &Input, scripts: &[Source<'_>], limits: &Limits) -> Output {
    if scripts.is_empty() {
        return Output::default();
    }
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            match Engine::new(limits) {
                Ok(e) => *slot = Some(e),
                Err(message) => {
                    return Output {
                        errors: vec![ScriptError {
                            script: 0,
                            message,
                            stack: String::new(),
                        }],
                        ..Default::default()
                    };
                }
            }
        }
        let engine = slot.as_ref().expect("engine just built");
        let (out, poisoned) = engine.run(input, scripts, limits);
        if poisoned {
            // A script was stopped mid-way: start the next one from a clean engine.
            *slot = None;
        }
        out
    })
}

/// Checks a script's syntax without running it (`postie validate`).
pub fn check_syntax(code: &str) -> Result<(), ScriptError> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                Engine::new(&Limits::default()).map_err(|message| ScriptError {
                    script: 0,
                    message,
                    stack: String::new(),
                })?,
            );
        }
        let engine = slot.as_ref().expect("engine just built");
        engine.arm(Duration::from_secs(5));
        let wrapped = format!("(async function () {{{code}\n}})");
        engine.ctx.with(|ctx| {
            match ctx
                .eval_with_options::<Function, _>(wrapped, sloppy("script0"))
                .catch(&ctx)
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let (message, stack) = describe(&e);
                    Err(ScriptError {
                        script: 0,
                        message,
                        stack,
                    })
                }
            }
        })
    })
}

/// The variable names a script sets by name (`pm.environment.set("token", …)`,
/// `postman.setEnvironmentVariable('id', …)`): defined at run time, as far as `validate` can see.
pub fn names_set(code: &str) -> Vec<String> {
    static SET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?:\.set|set(?:Environment|Global)Variable)\(\s*["'`]([^"'`]+)["'`]"#)
            .expect("valid regex")
    });
    SET.captures_iter(code).map(|m| m[1].to_string()).collect()
}

impl Engine {
    fn new(limits: &Limits) -> Result<Engine, String> {
        let rt = Runtime::new().map_err(|e| format!("cannot start the script engine: {e}"))?;
        rt.set_memory_limit(limits.memory);
        rt.set_max_stack_size(512 << 10);
        let deadline = Rc::new(Cell::new(Instant::now() + Duration::from_secs(3600)));
        let d = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || Instant::now() > d.get())));
        let ctx = Context::full(&rt).map_err(|e| format!("cannot start the script engine: {e}"))?;
        ctx.with(|ctx| -> Result<(), String> {
            let load = Function::new(ctx.clone(), |ctx: Ctx<'_>, name: String| {
                let Some((file, code)) = library(&name) else {
                    return Err(rquickjs::Exception::throw_message(
                        &ctx,
                        &format!("no library `{name}`"),
                    ));
                };
                ctx.eval_with_options::<(), _>(code, sloppy(file))
            })
            .map_err(|e| e.to_string())?;
            ctx.globals()
                .set("__host_load", load)
                .map_err(|e| e.to_string())?;
            ctx.eval_with_options::<(), _>(PM_JS, sloppy("pm.js"))
                .catch(&ctx)
                .map_err(|e| format!("the script sandbox failed to start: {e}"))
        })?;
        Ok(Engine { rt, ctx, deadline })
    }

    /// Runs the scripts; the flag says the engine must be rebuilt.
    fn run(&self, input: &Input, scripts: &[Source<'_>], limits: &Limits) -> (Output, bool) {
        let input_json = match serde_json::to_string(input) {
            Ok(s) => s,
            Err(e) => {
                return (
                    failed(0, format!("cannot hand the step to the script: {e}")),
                    false,
                );
            }
        };
        self.arm(limits.timeout);
        let begun = self.ctx.with(|ctx| {
            let p: Object = ctx.globals().get("__postie")?;
            let begin: Function = p.get("begin")?;
            begin.call::<_, ()>((input_json,))
        });
        if let Err(e) = begun {
            return (failed(0, format!("the script sandbox failed: {e}")), true);
        }
        let mut stopped: Option<ScriptError> = None;
        for (i, s) in scripts.iter().enumerate() {
            if let Some(e) = self.run_one(i, s, limits) {
                stopped = Some(e);
                break;
            }
        }
        self.arm(limits.timeout);
        let ended: Result<String, String> = self.ctx.with(|ctx| {
            let p: Object = ctx.globals().get("__postie").map_err(|e| e.to_string())?;
            let end: Function = p.get("end").map_err(|e| e.to_string())?;
            end.call::<_, String>(())
                .catch(&ctx)
                .map_err(|e| e.to_string())
        });
        let poisoned = stopped.is_some();
        let mut out = match ended
            .and_then(|s| serde_json::from_str::<Output>(&s).map_err(|e| e.to_string()))
        {
            Ok(o) => o,
            Err(e) => failed(0, format!("the script sandbox failed: {e}")),
        };
        out.errors.extend(stopped);
        // Running out of the heap can surface as an exception the script saw: still the limit.
        let mut poisoned = poisoned;
        for e in &mut out.errors {
            if e.message.contains("out of memory") {
                e.message = format!(
                    "stopped: it used more than {} MiB of memory (the script memory limit)",
                    limits.memory >> 20
                );
                e.stack.clear();
                poisoned = true;
            }
        }
        for e in &mut out.errors {
            if let Some(s) = scripts.get(e.script) {
                let at = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
                e.message = format!("{}{at}: {}", s.label, e.message);
            }
        }
        (out, poisoned)
    }

    /// Runs one script to completion (its promise, jobs and timers). Returns an error only
    /// when the script was stopped by a limit (the engine must then be rebuilt); other failures
    /// are recorded by the sandbox itself.
    fn run_one(&self, i: usize, s: &Source<'_>, limits: &Limits) -> Option<ScriptError> {
        self.arm(limits.timeout);
        // The function header shares the script's first line, so line numbers are the script's.
        let wrapped = format!("(async function () {{{}\n}})", s.code);
        let compiled: rquickjs::Result<Option<(String, String)>> = self.ctx.with(|ctx| {
            match ctx
                .eval_with_options::<Function, _>(wrapped, sloppy(&format!("script{i}")))
                .catch(&ctx)
            {
                Ok(f) => {
                    let p: Object = ctx.globals().get("__postie")?;
                    let exec: Function = p.get("exec")?;
                    let promise: Promise = exec.call((i, f))?;
                    ctx.globals().set("__postie_current", promise)?;
                    Ok(None)
                }
                Err(e) => Ok(Some(describe(&e))),
            }
        });
        let compile_error = match compiled {
            Ok(e) => e,
            Err(e) => Some((e.to_string(), String::new())),
        };
        if let Some((message, stack)) = compile_error {
            if let Some(stop) = self.limit_hit(i, limits) {
                return Some(stop);
            }
            // A syntax error: recorded, and the other scripts still run.
            self.record_error(i, message, stack);
            return None;
        }
        let mut waited = Duration::ZERO;
        loop {
            let drained = self.ctx.with(|ctx| {
                while ctx.execute_pending_job() {}
                let p: Object = ctx.globals().get("__postie")?;
                let next: Function = p.get("nextTimer")?;
                next.call::<_, f64>(())
            });
            if let Some(stop) = self.limit_hit(i, limits) {
                return Some(stop);
            }
            let next = match drained {
                Ok(n) => n,
                Err(e) => {
                    return Some(ScriptError {
                        script: i,
                        message: format!("the script sandbox failed: {e}"),
                        stack: String::new(),
                    });
                }
            };
            if next < 0.0 {
                break;
            }
            let wait = Duration::from_millis(next as u64);
            if waited + wait > limits.timer_wait {
                return Some(ScriptError {
                    script: i,
                    message: format!(
                        "stopped: its timers would wait longer than {} in all",
                        crate::util::exact_duration(limits.timer_wait)
                    ),
                    stack: String::new(),
                });
            }
            std::thread::sleep(wait);
            waited += wait;
            // Waiting is not running: the CPU budget moves with it.
            self.deadline.set(self.deadline.get() + wait);
            let fired = self.ctx.with(|ctx| {
                let p: Object = ctx.globals().get("__postie")?;
                let fire: Function = p.get("fireTimer")?;
                fire.call::<_, ()>(())
            });
            if fired.is_err()
                && let Some(stop) = self.limit_hit(i, limits)
            {
                return Some(stop);
            }
        }
        let pending = self.ctx.with(|ctx| {
            let p: Option<Promise> = ctx.globals().get("__postie_current").ok();
            let _ = ctx.globals().remove("__postie_current");
            p.is_some_and(|p| matches!(p.state(), rquickjs::promise::PromiseState::Pending))
        });
        if pending {
            self.record_error(
                i,
                "the script awaits something that never happens (its promise is still pending when nothing is left to run)".into(),
                String::new(),
            );
        }
        None
    }

    fn arm(&self, timeout: Duration) {
        self.deadline.set(Instant::now() + timeout);
    }

    /// Whether the last error was a limit: the deadline passed or memory ran out.
    fn limit_hit(&self, i: usize, limits: &Limits) -> Option<ScriptError> {
        if Instant::now() > self.deadline.get() {
            return Some(ScriptError {
                script: i,
                message: format!(
                    "stopped: it ran longer than {} (the script time limit)",
                    crate::util::exact_duration(limits.timeout)
                ),
                stack: String::new(),
            });
        }
        let used = self.rt.memory_usage().malloc_size.max(0) as usize;
        if used + (1 << 20) >= limits.memory {
            return Some(ScriptError {
                script: i,
                message: format!(
                    "stopped: it used more than {} MiB of memory (the script memory limit)",
                    limits.memory >> 20
                ),
                stack: String::new(),
            });
        }
        None
    }

    fn record_error(&self, i: usize, message: String, stack: String) {
        let _ = self.ctx.with(|ctx| -> rquickjs::Result<()> {
            let e = Object::new(ctx.clone())?;
            e.set("message", message)?;
            e.set("stack", stack)?;
            let p: Object = ctx.globals().get("__postie")?;
            let rec: Function = p.get("recordError")?;
            rec.call::<_, ()>((i, e))
        });
    }
}

fn sloppy(file: &str) -> EvalOptions {
    let mut o = EvalOptions::default();
    o.strict = false;
    o.filename = Some(file.to_string());
    o
}

fn failed(script: usize, message: String) -> Output {
    Output {
        errors: vec![ScriptError {
            script,
            message,
            stack: String::new(),
        }],
        ..Default::default()
    }
}

/// An exception as `Name: message` and its stack.
fn describe(e: &rquickjs::CaughtError<'_>) -> (String, String) {
    match e {
        rquickjs::CaughtError::Exception(x) => {
            let name: Option<String> = x.as_object().get("name").ok();
            let message = x.message().unwrap_or_default();
            let head = match name {
                Some(n) if !n.is_empty() => format!("{n}: {message}"),
                _ => message,
            };
            (head, x.stack().unwrap_or_default())
        }
        other => (other.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests;
