//! The REPL: walk a collection's documented sequence one step at a time, inspect and diff
//! responses, decode JWTs, log in once, control the in-process mock.
//!
//! Every command is a line handled by [`Session::execute`]; the same runner, auth engine and
//! output functions serve `postie send`/`run`/`auth`, so the REPL is another face of one command
//! layer ([`crate::session`]). When stdin is not a terminal it reads one command per line, echoes
//! each as it would appear interactively (without colour) and exits non-zero if any command failed.
//!
//! A line is split like a shell would (quotes group words and are removed only where they
//! delimit a word), except for `set NAME VALUE` and `get PATH`, whose value and path are taken
//! raw from the rest of the line so JSON and JSONPath keep their quotes. Every command checks its
//! arguments: an unknown flag or an extra word is an error, never silently ignored.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::collection::Step;
use crate::exchange::{Exchange, Rendered};
use crate::output::{self, Style};
use crate::redact::Redactor;
use crate::runner::{Runner, StepResult};
use crate::session::SendOpts;

mod editor;
mod inspect;
mod mock_control;
mod paste;

use editor::{ReplHelper, append_history, helper};

/// Commands, their one-line help, and the flags each accepts (for checking and completion).
pub const COMMANDS: &[(&str, &str, &[&str])] = &[
    ("help", "help [COMMAND] — this list, or one command", &[]),
    (
        "requests",
        "requests — requests and flows, with their notes",
        &[],
    ),
    (
        "show",
        "show REQUEST [--curl] — the fully rendered request (secrets masked), or as curl",
        &["--curl"],
    ),
    (
        "send",
        "send REQUEST [--yes] [-v] — send it (or just type the request's name)",
        &["--yes", "-y", "-v"],
    ),
    ("flow", "flow [NAME] — start stepping through a flow", &[]),
    (
        "next",
        "next — send the current flow step and show what it set",
        &[],
    ),
    ("skip", "skip — move past the current flow step", &[]),
    (
        "continue",
        "continue — run the rest of the flow, each step as it completes",
        &[],
    ),
    ("where", "where — the position in the flow", &[]),
    ("vars", "vars — variables in scope (secrets masked)", &[]),
    (
        "set",
        "set NAME VALUE — set a variable (the rest of the line; JSON values allowed)",
        &[],
    ),
    ("unset", "unset NAME — forget a variable", &[]),
    ("env", "env [NAME] — show or switch the environment", &[]),
    (
        "last",
        "last [--save FILE] — the last response: status, headers, body; or save its body",
        &["--save"],
    ),
    (
        "get",
        "get PATH — a JSONPath into the last response body (the rest of the line)",
        &[],
    ),
    (
        "diff",
        "diff [REQUEST] [--ignore-volatile] — the last two responses of a request, compared",
        &["--ignore-volatile", "-i"],
    ),
    (
        "jwt",
        "jwt [VARIABLE] — decode a JWT (default: the access token)",
        &[],
    ),
    (
        "login",
        "login [--device] [--no-browser] — OAuth2 login through the browser or the device flow",
        &["--device", "--no-browser"],
    ),
    ("refresh", "refresh — refresh the access token now", &[]),
    ("status", "status — access and refresh token status", &[]),
    (
        "mock",
        "mock start|stop|status|clock ADVANCE|journal|reset|fault add|list|clear|tokens expire|revoke|rotate — the in-process mock and its faults",
        &["--no-auto-approve"],
    ),
    ("history", "history — this session's requests", &[]),
    (
        "import",
        "import curl [COMMAND] — a curl command (on the line, or pasted until an empty line) becomes a request",
        &[],
    ),
    (
        "save",
        "save — write the requests `import` added into the collection file (comments kept)",
        &[],
    ),
    ("quit", "quit — leave (Ctrl-D too)", &[]),
];

/// What happened to a flow step in this session (for `where`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Todo,
    Passed,
    Failed,
    SkippedByWhen,
    SkippedByUser,
}

struct FlowCursor {
    flow: String,
    steps: Vec<(usize, Step)>,
    marks: Vec<Mark>,
    pos: usize,
}

/// One REPL session.
pub struct Session {
    runner: Runner,
    mock: Option<crate::mock::MockServer>,
    path: PathBuf,
    style: Style,
    interactive: bool,
    last: Option<Exchange>,
    cursor: Option<FlowCursor>,
    pending_answer: Option<String>,
    answer_used: bool,
    /// Set when any command failed.
    pub failed: bool,
    /// Ctrl-C while a command runs (interactive only; a listener holds SIGINT for the session).
    interrupts: Option<std::sync::Arc<Interrupts>>,
    /// Lines of a paste `import curl` is collecting.
    pasting: Option<Vec<String>>,
    /// What `import` added, for `save`.
    added: paste::Added,
}

/// Counts Ctrl-Cs and wakes whoever waits for the next one.
#[derive(Default)]
struct Interrupts {
    count: std::sync::atomic::AtomicU64,
    notify: tokio::sync::Notify,
}

impl Interrupts {
    fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves at the first Ctrl-C after `seen` (a count read when the command started, so an
    /// earlier Ctrl-C — at a question, between commands — never cancels this one).
    async fn after(&self, seen: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() != seen {
                return;
            }
            notified.await;
        }
    }
}

/// Splits words like a shell: whitespace separates, quotes group and are removed where they
/// delimit, a backslash escapes the next character outside single quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed {q} quote"));
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// The first word of a line and the rest, untouched.
fn command_and_rest(line: &str) -> (&str, &str) {
    let t = line.trim_start();
    match t.find(char::is_whitespace) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, ""),
    }
}

/// A command's checked arguments.
struct Args {
    positional: Vec<String>,
    flags: Vec<String>,
    values: Vec<(String, String)>,
}

impl Args {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    fn value(&self, flag: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == flag)
            .map(|(_, v)| v.as_str())
    }
    fn first(&self) -> Option<&str> {
        self.positional.first().map(String::as_str)
    }
}

/// Flags that take a value.
const VALUE_FLAGS: &[&str] = &["--save"];

/// Checks words against a command's flags and a positional count.
fn parse_args(cmd: &str, words: &[String], max_positional: usize) -> Result<Args, String> {
    let allowed = COMMANDS
        .iter()
        .find(|(n, _, _)| *n == cmd)
        .map(|(_, _, f)| *f)
        .unwrap_or(&["--yes", "-y", "-v"]);
    let usage = COMMANDS
        .iter()
        .find(|(n, _, _)| *n == cmd)
        .map(|(_, h, _)| h.split(" — ").next().unwrap_or(cmd).to_string())
        .unwrap_or_else(|| format!("{cmd} [--yes] [-v]"));
    let mut out = Args {
        positional: vec![],
        flags: vec![],
        values: vec![],
    };
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w.starts_with('-') && w.len() > 1 {
            if !allowed.contains(&w.as_str()) {
                return Err(format!("`{cmd}` has no option `{w}` (usage: {usage})"));
            }
            if VALUE_FLAGS.contains(&w.as_str()) {
                let v = it
                    .next()
                    .ok_or_else(|| format!("`{w}` needs a value (usage: {usage})"))?;
                out.values.push((w.clone(), v.clone()));
            } else {
                out.flags.push(w.clone());
            }
        } else {
            out.positional.push(w.clone());
        }
    }
    if out.positional.len() > max_positional {
        return Err(format!(
            "`{cmd}` takes {}; unexpected `{}` (usage: {usage})",
            match max_positional {
                0 => "no arguments".to_string(),
                1 => "one argument".to_string(),
                n => format!("{n} arguments"),
            },
            out.positional[max_positional]
        ));
    }
    Ok(out)
}

/// A request with its URL, headers and body masked — what `show` prints.
pub fn masked(r: &Rendered, red: &Redactor) -> Rendered {
    let mut m = r.clone();
    m.url = red.mask(&r.url);
    m.headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), red.mask_header(k, v)))
        .collect();
    m.body = match &r.body {
        crate::exchange::Body::Json(v) => crate::exchange::Body::Json(red.mask_json(v)),
        crate::exchange::Body::Form(f) => crate::exchange::Body::Form(
            f.iter()
                .map(|(k, v)| {
                    let v = if crate::redact::is_secret_name(k) {
                        crate::redact::MASK.to_string()
                    } else {
                        red.mask(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        crate::exchange::Body::Text(t) => crate::exchange::Body::Text(red.mask(t)),
        crate::exchange::Body::Multipart { parts, boundary } => crate::exchange::Body::Multipart {
            parts: parts
                .iter()
                .map(|(k, p)| {
                    let p = match p {
                        crate::exchange::PartValue::Text(v) if crate::redact::is_secret_name(k) => {
                            crate::exchange::PartValue::Text(crate::redact::MASK.to_string())
                        }
                        crate::exchange::PartValue::Text(v) => {
                            crate::exchange::PartValue::Text(red.mask(v))
                        }
                        file => file.clone(),
                    };
                    (k.clone(), p)
                })
                .collect(),
            boundary: boundary.clone(),
        },
        crate::exchange::Body::None => crate::exchange::Body::None,
    };
    m
}

impl Session {
    /// A session over a runner (and the mock it may have started).
    pub fn new(
        runner: Runner,
        mock: Option<crate::mock::MockServer>,
        path: &Path,
        interactive: bool,
    ) -> Session {
        let style = if interactive {
            Style::detect()
        } else {
            Style::plain()
        };
        let mut s = Session {
            runner,
            mock,
            path: path.to_path_buf(),
            style,
            interactive,
            last: None,
            cursor: None,
            pending_answer: None,
            answer_used: false,
            interrupts: None,
            failed: false,
            pasting: None,
            added: paste::Added::default(),
        };
        s.sync_clock();
        s
    }

    /// The prompt: collection, environment, token lifetime.
    pub fn prompt(&self) -> String {
        let token = match crate::auth::remaining(&self.runner) {
            Some(s) if s > 0 => format!(
                "token {}",
                crate::util::human_duration(Duration::from_secs(s as u64))
            ),
            Some(_) => "token expired".into(),
            None if crate::auth::access_token(&self.runner).is_some() => "token".into(),
            None if self.runner.collection.oauth2.is_some() => "no token".into(),
            None => String::new(),
        };
        let flow = match &self.cursor {
            Some(c) if c.pos < c.steps.len() => {
                format!(" {}[{}/{}]", c.flow, c.pos + 1, c.steps.len())
            }
            Some(c) => format!(" {}[done]", c.flow),
            None => String::new(),
        };
        let token = if token.is_empty() {
            token
        } else {
            format!(" {token}")
        };
        format!(
            "{} [{}]{token}{flow} > ",
            self.runner.collection.name,
            self.runner.env_key()
        )
    }

    fn red(&self) -> &Redactor {
        self.runner.redactor()
    }

    fn say(&self, text: &str) {
        let text = self.red().mask(text);
        if text.ends_with('\n') {
            print!("{text}");
        } else {
            println!("{text}");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }

    fn sync_clock(&mut self) {
        if let Some(m) = &self.mock {
            self.runner.clock_offset =
                m.shared().now_ms().div_euclid(1000) - crate::util::unix_now();
        }
    }

    /// Masks a typed line for the history file (secret values, and values set for secret names).
    pub fn history_line(&self, line: &str) -> String {
        let (cmd, rest) = command_and_rest(line);
        if cmd == "set" {
            let (name, value) = command_and_rest(rest);
            if !value.is_empty()
                && (crate::redact::is_secret_name(name) || self.runner.scope().is_secret(name))
            {
                return format!("set {name} {}", crate::redact::MASK);
            }
        }
        self.red().mask(line)
    }

    /// Runs one line. Returns false to quit.
    pub async fn execute(&mut self, line: &str) -> bool {
        if self.is_pasting() {
            let result = self.paste_line(line);
            self.answer(result);
            return true;
        }
        let (cmd, rest) = command_and_rest(line);
        if cmd.is_empty() {
            return true;
        }
        let result = match cmd {
            // The rest of the line is the value / path / command, raw.
            "set" => self.set(rest),
            "get" => self.get(rest),
            "import" => self.import_cmd(rest),
            _ => match split_words(rest) {
                Err(e) => Err(e),
                Ok(words) => match self.dispatch(cmd, &words).await {
                    Some(r) => r,
                    None => return false,
                },
            },
        };
        self.answer(result);
        if let Err(e) = self.runner.save() {
            self.say(&format!("warning: could not save state: {e}"));
        }
        true
    }

    /// Prints a command's outcome (an error marks the session failed).
    fn answer(&mut self, result: Result<String, String>) {
        match result {
            Ok(text) if !text.is_empty() => self.say(&text),
            Ok(_) => {}
            Err(e) => {
                self.failed = true;
                self.say(&format!(
                    "{} {}",
                    self.style.bad("error:"),
                    output::printable(&e)
                ));
            }
        }
    }

    /// Runs a command with checked arguments; `None` means quit.
    async fn dispatch(&mut self, cmd: &str, words: &[String]) -> Option<Result<String, String>> {
        let args = |n: usize| parse_args(cmd, words, n);
        Some(match cmd {
            "quit" | "exit" => match args(0) {
                Ok(_) => return None,
                Err(e) => Err(e),
            },
            "help" => args(1).map(|a| self.help(a.first())),
            "requests" => args(0).map(|_| self.requests()),
            "show" => match args(1) {
                Ok(a) => self.show(&a),
                Err(e) => Err(e),
            },
            "send" => match args(1) {
                Ok(a) => self.send(&a).await,
                Err(e) => Err(e),
            },
            "flow" => match args(1) {
                Ok(a) => self.flow(a.first()),
                Err(e) => Err(e),
            },
            "next" => match args(0) {
                Ok(_) => self.next().await,
                Err(e) => Err(e),
            },
            "skip" => args(0).and_then(|_| self.skip()),
            "continue" => match args(0) {
                Ok(_) => self.continue_flow().await,
                Err(e) => Err(e),
            },
            "where" => args(0).and_then(|_| self.where_()),
            "vars" => args(0).map(|_| crate::session::vars_text(&self.runner)),
            "unset" => args(1).and_then(|a| self.unset(a.first())),
            "env" => args(1).and_then(|a| self.env(a.first())),
            "last" => args(0).and_then(|a| self.last_cmd(a.value("--save"))),
            "diff" => args(1)
                .and_then(|a| self.diff(a.first(), a.has("--ignore-volatile") || a.has("-i"))),
            "jwt" => args(1).and_then(|a| self.jwt(a.first())),
            "login" => match args(0) {
                Ok(a) => self.login(a.has("--device"), a.has("--no-browser")).await,
                Err(e) => Err(e),
            },
            "refresh" => match args(0) {
                Ok(_) => self.refresh().await,
                Err(e) => Err(e),
            },
            "status" => args(0).map(|_| crate::auth::status(&self.runner)),
            "mock" => match parse_args(cmd, words, usize::MAX) {
                Ok(a) => self.mock(&a.positional, a.has("--no-auto-approve")),
                Err(e) => Err(e),
            },
            "history" => args(0).map(|_| self.history()),
            "save" => args(0).and_then(|_| self.save_cmd()),
            name if self.runner.collection.requests.contains_key(name) => {
                let mut all = vec![name.to_string()];
                all.extend(words.iter().cloned());
                match parse_args("send", &all, 1) {
                    Ok(a) => self.send(&a).await,
                    Err(e) => Err(e),
                }
            }
            other => Err(format!(
                "unknown command `{other}`{} — type `help`",
                crate::collection::suggest(
                    other,
                    COMMANDS
                        .iter()
                        .map(|(c, _, _)| c.to_string())
                        .chain(self.runner.collection.requests.keys().cloned())
                        .collect::<Vec<_>>()
                        .iter()
                )
            )),
        })
    }

    fn help(&self, cmd: Option<&str>) -> String {
        match cmd {
            Some(c) => COMMANDS
                .iter()
                .find(|(n, _, _)| *n == c)
                .map(|(_, h, _)| format!("{h}\n"))
                .unwrap_or_else(|| format!("no command `{c}`\n")),
            None => COMMANDS
                .iter()
                .map(|(_, h, _)| format!("  {h}\n"))
                .collect(),
        }
    }

    fn requests(&self) -> String {
        let c = &self.runner.collection;
        let width = output::term_width();
        let mut out = String::from("requests:\n");
        for (name, r) in &c.requests {
            out.push_str(&format!(
                "  {name:<24} {} {}\n",
                r.method,
                output::short_url(&r.url, false)
            ));
            if let Some(n) = &r.note {
                out.push_str(&self.style.dim(&output::wrap(n, width, 27)));
            }
        }
        out.push_str("flows:\n");
        for (name, f) in &c.flows {
            let steps: Vec<&str> = f.steps.iter().map(Step::request).collect();
            out.push_str(&format!("  {name:<24} {}\n", steps.join(" → ")));
            if let Some(d) = &f.description {
                out.push_str(&self.style.dim(&output::wrap(d, width, 27)));
            }
        }
        out
    }

    fn need<'a>(&self, a: &'a Args, what: &str) -> Result<&'a str, String> {
        a.first().ok_or_else(|| format!("which {what}?"))
    }

    fn show(&self, a: &Args) -> Result<String, String> {
        let name = self.need(a, "request")?;
        self.known_request(name)?;
        let (r, refusal) = self
            .runner
            .render_for_display(name)
            .map_err(|f| f.failure.map(|f| f.message).unwrap_or_default())?;
        let m = masked(&r, self.red());
        let mut out = if a.has("--curl") {
            format!("{}\n", m.to_curl())
        } else {
            output::request_text(&m, self.red())
        };
        if let Some(why) = refusal {
            out.push_str(&format!("warning: `send` would refuse it: {why}\n"));
        }
        Ok(out)
    }

    fn known_request(&self, name: &str) -> Result<(), String> {
        if self.runner.collection.requests.contains_key(name) {
            return Ok(());
        }
        Err(format!(
            "request `{name}` is not in the collection{}",
            crate::collection::suggest(name, self.runner.collection.requests.keys())
        ))
    }

    /// Asks a yes/no question: on the terminal (Ctrl-C answers no), or from the script line that
    /// follows the command.
    fn confirm(&mut self, question: &str) -> bool {
        if self.interactive {
            return crate::session::ask(question);
        }
        self.answer_used = true;
        let answer = self.pending_answer.take().unwrap_or_default();
        println!("{question}{answer}");
        crate::session::is_yes(&answer)
    }

    /// The PUT guard before a send: ask, unless `--yes`.
    fn guard(&mut self, name: &str, yes: bool) -> Result<(), String> {
        self.runner.put_guard_strict = true;
        if yes {
            // The runner reports the guard's finding as a note on the result.
            self.runner.put_guard_confirmed = true;
            return Ok(());
        }
        if let Some(w) = self.runner.put_guard_warning(name) {
            self.say(&self.style.warn(&w));
            if !self.confirm("send it anyway? [y/N] ") {
                return Err("not sent (PUT guard)".into());
            }
            self.runner.put_guard_confirmed = true;
            self.runner.put_guard_shown = true;
        }
        Ok(())
    }

    fn end_guard(&mut self) {
        self.runner.put_guard_confirmed = false;
        self.runner.put_guard_shown = false;
    }

    async fn send(&mut self, a: &Args) -> Result<String, String> {
        let name = self.need(a, "request")?.to_string();
        self.known_request(&name)?;
        let verbose = a.has("-v");
        self.guard(&name, a.has("--yes") || a.has("-y"))?;
        let result = self
            .cancellable(|r| Box::pin(r.send_owned(name.clone())))
            .await;
        self.end_guard();
        let result = result?;
        Ok(self.report(&result, verbose, true))
    }

    /// Runs a runner operation; Ctrl-C cancels it without leaving the REPL.
    async fn cancellable<F, T>(&mut self, op: F) -> Result<T, String>
    where
        F: for<'a> FnOnce(
            &'a mut Runner,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>,
    {
        let interrupts = self.interrupts.clone();
        let seen = interrupts.as_ref().map(|i| i.count()).unwrap_or(0);
        let fut = op(&mut self.runner);
        let out = match interrupts {
            Some(i) => {
                tokio::select! {
                    r = fut => Ok(r),
                    _ = i.after(seen) => Err("cancelled (Ctrl-C)".to_string()),
                }
            }
            None => Ok(fut.await),
        };
        self.runner.inputs.transient.clear();
        self.sync_clock();
        out
    }

    /// Renders a step result: notes, the step line, then the response.
    fn report(&mut self, r: &StepResult, verbose: bool, body: bool) -> String {
        let red = self.red().clone();
        let mut out = output::step_line(r, &red, self.style, verbose);
        if let Some(ex) = &r.exchange {
            if body {
                out.push_str(&output::response_text(ex, verbose, &red, self.style));
            }
            self.last = Some(ex.clone());
        }
        if r.failure.is_some() {
            self.failed = true;
        }
        out
    }

    fn flow(&mut self, name: Option<&str>) -> Result<String, String> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.runner.default_flow().map_err(|e| e.to_string())?,
        };
        let steps = self
            .runner
            .flow_steps(&name, None, None)
            .map_err(|e| e.to_string())?;
        self.cursor = Some(FlowCursor {
            flow: name.clone(),
            marks: vec![Mark::Todo; steps.len()],
            steps,
            pos: 0,
        });
        let mut out = format!(
            "flow {name}: `next` sends a step, `skip` passes it, `continue` runs the rest, `where` shows the position\n"
        );
        out.push_str(&self.preview());
        Ok(out)
    }

    fn preview(&self) -> String {
        let Some(c) = &self.cursor else {
            return String::new();
        };
        let Some((_, step)) = c.steps.get(c.pos) else {
            return format!("flow {} finished\n", c.flow);
        };
        let name = step.request();
        let mut out = format!(
            "\n{} {}\n",
            self.style
                .bold(&format!("[{}/{}]", c.pos + 1, c.steps.len())),
            self.style.bold(name)
        );
        if let Some(note) = &self.runner.collection.requests[name].note {
            out.push_str(
                &self
                    .style
                    .dim(&output::wrap(note.trim(), output::term_width(), 2)),
            );
        }
        if let Some(w) = step.when() {
            out.push_str(&format!("when: {w}\n"));
        }
        match self.runner.render_for_display(name) {
            Ok((r, refusal)) => {
                out.push_str(&output::request_text(&masked(&r, self.red()), self.red()));
                if let Some(why) = refusal {
                    out.push_str(&format!("warning: sending it would be refused: {why}\n"));
                }
            }
            Err(f) => out.push_str(&format!(
                "(not renderable yet: {})\n",
                f.failure.map(|f| f.message).unwrap_or_default()
            )),
        }
        out
    }

    /// Sends the current step; returns its result.
    async fn step_once(&mut self) -> Result<StepResult, String> {
        let Some(c) = &self.cursor else {
            return Err("no flow started; use `flow NAME`".into());
        };
        let Some((idx, step)) = c.steps.get(c.pos).cloned() else {
            return Err(format!("flow {} is finished", c.flow));
        };
        let flow = c.flow.clone();
        self.guard(step.request(), false)?;
        let result = self
            .cancellable(|r| Box::pin(r.run_step_owned(flow, idx, step)))
            .await;
        self.end_guard();
        let result = result?;
        if let Some(c) = &mut self.cursor {
            let mark = if result.skipped.is_some() {
                Mark::SkippedByWhen
            } else if result.ok() {
                Mark::Passed
            } else {
                Mark::Failed
            };
            c.marks[c.pos] = mark;
            if result.ok() {
                c.pos += 1;
            }
        }
        Ok(result)
    }

    async fn next(&mut self) -> Result<String, String> {
        let result = self.step_once().await?;
        let mut out = self.report(&result, false, true);
        if result.ok() {
            out.push_str(&self.preview());
        }
        Ok(out)
    }

    fn skip(&mut self) -> Result<String, String> {
        let c = self.cursor.as_mut().ok_or("no flow started")?;
        if c.pos >= c.steps.len() {
            return Err("the flow is finished".into());
        }
        c.marks[c.pos] = Mark::SkippedByUser;
        c.pos += 1;
        Ok(self.preview())
    }

    /// Runs the rest of the flow, printing each step as it completes (so a Ctrl-C or a question
    /// from the PUT guard comes after the steps that already ran, not before them).
    async fn continue_flow(&mut self) -> Result<String, String> {
        loop {
            let Some(c) = &self.cursor else {
                return Err("no flow started".into());
            };
            if c.pos >= c.steps.len() {
                return Ok(format!("flow {} finished\n", c.flow));
            }
            let result = self.step_once().await?;
            let out = self.report(&result, false, false);
            self.say(&out);
            if !result.ok() {
                return Err(format!(
                    "stopped at `{}`; fix it and `next`, or `skip` it",
                    result.request
                ));
            }
        }
    }

    fn where_(&self) -> Result<String, String> {
        let c = self.cursor.as_ref().ok_or("no flow started")?;
        let mut out = format!("flow {}\n", c.flow);
        for (i, (_, s)) in c.steps.iter().enumerate() {
            let mark = match (i == c.pos, c.marks[i]) {
                (true, Mark::Failed) => "✗",
                (true, _) => "→",
                (false, Mark::Passed) => "✓",
                (false, Mark::Failed) => "✗",
                (false, Mark::SkippedByWhen) => "-",
                (false, Mark::SkippedByUser) => "↷",
                (false, Mark::Todo) => " ",
            };
            let why = match c.marks[i] {
                Mark::SkippedByWhen => "  (when: false)",
                Mark::SkippedByUser => "  (skipped)",
                _ => "",
            };
            out.push_str(&format!("  {mark} {}{why}\n", s.request()));
        }
        Ok(out)
    }

    fn set(&mut self, rest: &str) -> Result<String, String> {
        let (name, raw) = command_and_rest(rest);
        if name.is_empty() || raw.is_empty() {
            return Err("usage: set NAME VALUE (the value is the rest of the line)".into());
        }
        if !crate::session::is_variable_name(name) {
            return Err(format!(
                "`{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if self.runner.collection.requests.contains_key(name) || name == "env" {
            return Err(format!(
                "`{name}` is the name of {}; `<<{name}>>` means that, so choose another name",
                if name == "env" {
                    "the process environment"
                } else {
                    "a request"
                }
            ));
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let secret = self.runner.scope().is_secret(name);
        self.runner.set_var(name, value.clone(), secret);
        let shown = if secret || crate::redact::is_secret_name(name) {
            crate::redact::MASK.to_string()
        } else {
            crate::chain::short(&value.to_string())
        };
        Ok(format!("{name} = {shown}\n"))
    }

    fn unset(&mut self, name: Option<&str>) -> Result<String, String> {
        let name = name.ok_or("which variable?")?;
        if self.runner.unset_var(name) {
            Ok(format!("{name} unset\n"))
        } else {
            Err(format!("`{name}` is not a stored variable"))
        }
    }

    fn env(&mut self, name: Option<&str>) -> Result<String, String> {
        let c = &self.runner.collection;
        match name {
            None => {
                let names: Vec<&str> = c.environments.keys().map(String::as_str).collect();
                Ok(format!(
                    "environment: {} (available: {})\n",
                    self.runner.env_key(),
                    names.join(", ")
                ))
            }
            Some(name) if c.environments.contains_key(name) => {
                self.runner.inputs.env = Some(name.to_string());
                self.runner.rebuild_redactor();
                Ok(format!("environment: {name}\n"))
            }
            Some(name) => Err(format!(
                "no environment `{name}`{}",
                crate::collection::suggest(name, c.environments.keys())
            )),
        }
    }

    async fn login(&mut self, device: bool, no_browser: bool) -> Result<String, String> {
        let out = self
            .cancellable(|r| {
                Box::pin(async move {
                    let mut say = |s: &str| println!("{s}");
                    if device {
                        crate::auth::login_device(r, &mut say).await
                    } else {
                        crate::auth::login(r, no_browser, &mut say).await
                    }
                })
            })
            .await?;
        out.map_err(|e| e.message)
    }

    async fn refresh(&mut self) -> Result<String, String> {
        let out = self
            .cancellable(|r| Box::pin(crate::auth::refresh(r, "requested")))
            .await?;
        out.map_err(|e| e.message)
    }

    fn history(&self) -> String {
        let red = self.red();
        self.runner
            .sent_log()
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:>3}  {}\n", i + 1, red.mask(s)))
            .collect()
    }
}

/// Owns SIGINT for the session, so Ctrl-C during a command cancels it instead of killing the REPL
/// (at the prompt the terminal is raw and Ctrl-C is a key, not a signal).
fn listen_for_interrupts() -> std::sync::Arc<Interrupts> {
    let i = std::sync::Arc::new(Interrupts::default());
    let i2 = i.clone();
    // Registered before the task runs, so no Ctrl-C between here and there kills the REPL.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    tokio::spawn(async move {
        let Some(sigint) = sigint.as_mut() else {
            return;
        };
        while sigint.recv().await.is_some() {
            i2.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            i2.notify.notify_waiters();
        }
    });
    i
}

/// `postie repl COLLECTION` / `postie COLLECTION`.
pub async fn run(path: &Path, opts: &SendOpts) -> i32 {
    let (runner, mock) = match crate::session::open_runner(path, opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let interactive = std::io::stdin().is_terminal();
    let history = runner.store.paths.history.clone();
    let mut s = Session::new(runner, mock, path, interactive);
    if interactive {
        s.interrupts = Some(listen_for_interrupts());
    }
    if let Some(m) = &s.mock {
        s.say(&format!(
            "mock listening on {} (environment {})",
            m.url(),
            s.runner.env_key()
        ));
    }
    if interactive {
        s.say(&format!(
            "postie {} — {} · `help` for commands, Tab completes, Ctrl-D quits",
            env!("CARGO_PKG_VERSION"),
            s.path.display()
        ));
        let config = rustyline::Config::builder().auto_add_history(false).build();
        let mut ed: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
            match rustyline::Editor::with_config(config) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: cannot start the line editor: {e}");
                    return crate::session::EXIT_COLLECTION;
                }
            };
        let _ = ed.load_history(&history);
        loop {
            ed.set_helper(Some(helper(&s)));
            let prompt = if s.is_pasting() {
                "… ".to_string()
            } else {
                s.prompt()
            };
            match tokio::task::block_in_place(|| ed.readline(&prompt)) {
                Ok(line) => {
                    // A paste is neither trimmed (continuations) nor kept in the history (it may
                    // hold a token).
                    if s.is_pasting() {
                        s.execute(&line).await;
                        continue;
                    }
                    let line = line.trim().to_string();
                    if line.is_empty() {
                        continue;
                    }
                    let masked = s.history_line(&line);
                    let _ = ed.add_history_entry(masked.as_str());
                    append_history(&history, &masked);
                    if !s.execute(&line).await {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
        let _ = s.runner.save();
        return 0;
    }
    let stdin = std::io::stdin();
    let lines: Vec<String> = stdin.lock().lines().map_while(Result::ok).collect();
    let mut i = 0;
    while i < lines.len() {
        if s.is_pasting() {
            s.execute(&lines[i]).await;
            i += 1;
            continue;
        }
        let line = lines[i].trim().to_string();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let masked = s.history_line(&line);
        println!("{}{masked}", s.prompt());
        if crate::session::is_answer(&line) {
            // An answer line right after a command that asked nothing answers no question.
            s.failed = true;
            s.say(&format!(
                "{} `{line}` answers no question: the command before it asked none",
                s.style.bad("error:")
            ));
            continue;
        }
        // A script answers a question (the PUT guard's) with the line that follows the command;
        // an answer line that no question took is reported on its own turn above.
        s.pending_answer = lines
            .get(i)
            .map(|l| l.trim().to_string())
            .filter(|l| crate::session::is_answer(l));
        s.answer_used = false;
        append_history(&history, &masked);
        if !s.execute(&line).await {
            break;
        }
        if s.answer_used
            && s.pending_answer.is_none()
            && lines.get(i).is_some_and(|l| crate::session::is_answer(l))
        {
            i += 1;
        }
        s.pending_answer = None;
    }
    let _ = s.runner.save();
    if s.failed { 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"show "a b" c'd e'f \"x"#).unwrap(),
            vec!["show", "a b", "cd ef", "\"x"]
        );
        assert!(split_words("say 'unclosed").is_err());
        assert_eq!(
            command_and_rest(r#"set obj {"a": 1}"#),
            ("set", r#"obj {"a": 1}"#)
        );
    }

    #[test]
    fn arguments_are_checked() {
        let w = |s: &str| split_words(s).unwrap();
        assert!(parse_args("send", &w("x --bogus"), 1).is_err());
        assert!(parse_args("quit", &w("extra"), 0).is_err());
        let a = parse_args("last", &w("--save out.bin"), 0).unwrap();
        assert_eq!(a.value("--save"), Some("out.bin"));
        assert!(parse_args("last", &w("--save"), 0).is_err());
    }
}
