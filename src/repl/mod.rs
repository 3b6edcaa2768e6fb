//! The REPL: walk a collection's documented sequence one step at a time, inspect and diff
//! responses, decode JWTs, log in once, control the in-process mock.
//!
//! Every command is a line handled by [`Session::execute`]; the same runner, auth engine and
//! output functions serve `postie send`/`run`/`auth`, so the REPL is another face of one command
//! layer. When stdin is not a terminal it reads one command per line, echoes each as it would
//! appear interactively (without colour) and exits non-zero if any command failed.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::SendOpts;
use crate::collection::Step;
use crate::exchange::{Exchange, Rendered};
use crate::output::{self, Style};
use crate::redact::Redactor;
use crate::runner::{Runner, StepResult};

mod editor;
mod inspect;
mod mock_control;

use editor::{ReplHelper, append_history, helper};

/// Commands and their one-line help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("help", "help [COMMAND] — this list, or one command"),
    (
        "requests",
        "requests — requests and flows, with their notes",
    ),
    (
        "show",
        "show REQUEST [--curl] — the fully rendered request (secrets masked), or as curl",
    ),
    (
        "send",
        "send REQUEST [--yes] [-v] — send it (or just type the request's name)",
    ),
    ("flow", "flow NAME — start stepping through a flow"),
    (
        "next",
        "next — send the current flow step and show what it set",
    ),
    ("skip", "skip — move past the current flow step"),
    ("continue", "continue — run the rest of the flow"),
    ("where", "where — the position in the flow"),
    ("vars", "vars — variables in scope (secrets masked)"),
    (
        "set",
        "set NAME VALUE — set a variable (JSON values allowed)",
    ),
    ("unset", "unset NAME — forget a variable"),
    ("env", "env [NAME] — show or switch the environment"),
    ("last", "last — the last response: status, headers, body"),
    ("get", "get PATH — a JSONPath into the last response body"),
    (
        "diff",
        "diff [REQUEST] [--ignore-volatile] — the last two responses of a request, compared",
    ),
    (
        "jwt",
        "jwt [VARIABLE] — decode a JWT (default: the access token)",
    ),
    (
        "login",
        "login [--device] [--no-browser] — OAuth2 login through the browser or the device flow",
    ),
    ("refresh", "refresh — refresh the access token now"),
    ("status", "status — access and refresh token status"),
    (
        "mock",
        "mock start|stop|status|clock ADVANCE|journal|reset — the in-process mock",
    ),
    ("history", "history — this session's requests"),
    ("quit", "quit — leave (Ctrl-D too)"),
];

struct FlowCursor {
    flow: String,
    steps: Vec<(usize, Step)>,
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
    sent: Vec<String>,
    cursor: Option<FlowCursor>,
    pending_answers: Vec<String>,
    /// Set when any command failed.
    pub failed: bool,
    /// Ctrl-C while a command runs (interactive only; a listener holds SIGINT for the session).
    interrupts: Option<std::sync::Arc<tokio::sync::Notify>>,
}

fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
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
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
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
            sent: vec![],
            cursor: None,
            pending_answers: vec![],
            interrupts: None,
            failed: false,
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

    fn red(&self) -> Redactor {
        self.runner.redactor()
    }

    fn say(&self, text: &str) {
        let text = self.red().mask(text);
        if text.ends_with('\n') {
            print!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn sync_clock(&mut self) {
        if let Some(m) = &self.mock {
            self.runner.clock_offset =
                m.shared().now_ms().div_euclid(1000) - crate::util::unix_now();
        }
    }

    /// Masks a typed line for the history file (secret values, and values set for secret names).
    pub fn history_line(&self, line: &str) -> String {
        let words = split_words(line);
        if words.first().map(String::as_str) == Some("set")
            && words.len() >= 3
            && crate::redact::is_secret_name(&words[1])
        {
            return format!("set {} {}", words[1], crate::redact::MASK);
        }
        self.red().mask(line)
    }

    /// Runs one line. Returns false to quit.
    pub async fn execute(&mut self, line: &str) -> bool {
        let words = split_words(line);
        let Some(cmd) = words.first().map(String::as_str) else {
            return true;
        };
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let result = match cmd {
            "quit" | "exit" => return false,
            "help" => Ok(self.help(args.first().copied())),
            "requests" => Ok(self.requests()),
            "show" => self.show(&args),
            "send" => self.send(&args).await,
            "flow" => self.flow(&args),
            "next" => self.next().await,
            "skip" => self.skip(),
            "continue" => self.continue_flow().await,
            "where" => self.where_(),
            "vars" => Ok(crate::cli::vars_text(&self.runner)),
            "set" => self.set(&args),
            "unset" => self.unset(&args),
            "env" => self.env(&args),
            "last" => self.last(),
            "get" => self.get(&args),
            "diff" => self.diff(&args),
            "jwt" => self.jwt(&args),
            "login" => self.login(&args).await,
            "refresh" => crate::auth::refresh(&mut self.runner, "requested").await,
            "status" => Ok(crate::auth::status(&self.runner)),
            "mock" => self.mock(&args),
            "history" => Ok(self
                .sent
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{:>3}  {s}\n", i + 1))
                .collect()),
            name if self.runner.collection.requests.contains_key(name) => {
                self.send(&words.iter().map(String::as_str).collect::<Vec<_>>())
                    .await
            }
            other => Err(format!(
                "unknown command `{other}`{} — type `help`",
                crate::collection::suggest(
                    other,
                    COMMANDS
                        .iter()
                        .map(|(c, _)| c.to_string())
                        .collect::<Vec<_>>()
                        .iter()
                )
            )),
        };
        match result {
            Ok(text) if !text.is_empty() => self.say(&text),
            Ok(_) => {}
            Err(e) => {
                self.failed = true;
                self.say(&format!("{} {e}", self.style.bad("error:")));
            }
        }
        let _ = self.runner.save();
        true
    }

    fn help(&self, cmd: Option<&str>) -> String {
        match cmd {
            Some(c) => COMMANDS
                .iter()
                .find(|(n, _)| *n == c)
                .map(|(_, h)| format!("{h}\n"))
                .unwrap_or_else(|| format!("no command `{c}`\n")),
            None => COMMANDS.iter().map(|(_, h)| format!("  {h}\n")).collect(),
        }
    }

    fn requests(&self) -> String {
        let c = &self.runner.collection;
        let mut out = String::from("requests:\n");
        for (name, r) in &c.requests {
            out.push_str(&format!("  {name:<24} {} {}\n", r.method, r.url));
            if let Some(n) = &r.note {
                out.push_str(&format!(
                    "  {:<24} {}\n",
                    "",
                    self.style.dim(n.lines().next().unwrap_or(""))
                ));
            }
        }
        out.push_str("flows:\n");
        for (name, f) in &c.flows {
            let steps: Vec<&str> = f.steps.iter().map(Step::request).collect();
            out.push_str(&format!("  {name:<24} {}\n", steps.join(" → ")));
            if let Some(d) = &f.description {
                out.push_str(&format!("  {:<24} {}\n", "", self.style.dim(d)));
            }
        }
        out
    }

    fn need<'a>(&self, args: &[&'a str], what: &str) -> Result<&'a str, String> {
        args.iter()
            .find(|a| !a.starts_with('-'))
            .copied()
            .ok_or_else(|| format!("which {what}?"))
    }

    fn show(&self, args: &[&str]) -> Result<String, String> {
        let name = self.need(args, "request")?;
        let r = self
            .runner
            .render(name)
            .map_err(|f| f.failure.map(|f| f.message).unwrap_or_default())?;
        let m = masked(&r, &self.red());
        Ok(if args.contains(&"--curl") {
            format!("{}\n", m.to_curl())
        } else {
            output::request_text(&m, &self.red())
        })
    }

    /// Asks a yes/no question: on the terminal, or from the next script line.
    fn confirm(&mut self, question: &str) -> bool {
        if self.interactive {
            return crate::cli::ask(question);
        }
        let answer = if self.pending_answers.is_empty() {
            String::new()
        } else {
            self.pending_answers.remove(0)
        };
        println!("{question}{answer}");
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }

    /// The PUT guard before a send: ask, unless `--yes`.
    fn guard(&mut self, name: &str, yes: bool) -> Result<(), String> {
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
        }
        Ok(())
    }

    async fn send(&mut self, args: &[&str]) -> Result<String, String> {
        let name = self.need(args, "request")?.to_string();
        let yes = args.contains(&"--yes") || args.contains(&"-y");
        let verbose = args.contains(&"-v");
        self.guard(&name, yes)?;
        let result = self
            .cancellable(|r| Box::pin(r.send_owned(name.clone())))
            .await;
        self.runner.put_guard_confirmed = false;
        let result = result?;
        Ok(self.report(&result, verbose, true))
    }

    /// Runs a runner operation; Ctrl-C cancels it without leaving the REPL.
    async fn cancellable<F>(&mut self, op: F) -> Result<StepResult, String>
    where
        F: for<'a> FnOnce(
            &'a mut Runner,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = StepResult> + 'a>>,
    {
        let fut = op(&mut self.runner);
        let out = if self.interactive {
            tokio::select! {
                r = fut => Ok(r),
                _ = wait_interrupt(self.interrupts.clone()) => Err("cancelled (Ctrl-C)".to_string()),
            }
        } else {
            Ok(fut.await)
        };
        self.sync_clock();
        out
    }

    /// Renders a step result: notes, the step line, then the response.
    fn report(&mut self, r: &StepResult, verbose: bool, body: bool) -> String {
        let red = self.red();
        let mut out = output::step_line(r, &red, self.style);
        if let Some(ex) = &r.exchange {
            if body {
                out.push_str(&output::response_text(ex, verbose, &red, self.style));
            }
            self.sent.push(format!(
                "{} {} {} → {} ({:.0}ms)",
                r.request,
                ex.request.method,
                red.mask(&ex.request.url),
                ex.status,
                ex.elapsed.as_secs_f64() * 1000.0
            ));
            self.last = Some(ex.clone());
        }
        if r.failure.is_some() {
            self.failed = true;
        }
        out
    }

    fn flow(&mut self, args: &[&str]) -> Result<String, String> {
        let name = match args.first() {
            Some(n) => n.to_string(),
            None => self.runner.default_flow().map_err(|e| e.to_string())?,
        };
        let steps = self
            .runner
            .flow_steps(&name, None, None)
            .map_err(|e| e.to_string())?;
        self.cursor = Some(FlowCursor {
            flow: name.clone(),
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
            out.push_str(&format!("{}\n", self.style.dim(note.trim())));
        }
        if let Some(w) = step.when() {
            out.push_str(&format!("when: {w}\n"));
        }
        match self.runner.render(name) {
            Ok(r) => out.push_str(&output::request_text(&masked(&r, &self.red()), &self.red())),
            Err(f) => out.push_str(&format!(
                "(not renderable yet: {})\n",
                f.failure.map(|f| f.message).unwrap_or_default()
            )),
        }
        out
    }

    async fn next(&mut self) -> Result<String, String> {
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
        self.runner.put_guard_confirmed = false;
        let result = result?;
        let mut out = self.report(&result, false, true);
        if result.ok() {
            if let Some(c) = &mut self.cursor {
                c.pos += 1;
            }
            out.push_str(&self.preview());
        }
        Ok(out)
    }

    fn skip(&mut self) -> Result<String, String> {
        let c = self.cursor.as_mut().ok_or("no flow started")?;
        if c.pos >= c.steps.len() {
            return Err("the flow is finished".into());
        }
        c.pos += 1;
        Ok(self.preview())
    }

    async fn continue_flow(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let Some(c) = &self.cursor else {
                return Err("no flow started".into());
            };
            if c.pos >= c.steps.len() {
                break;
            }
            let (idx, step) = c.steps[c.pos].clone();
            let flow = c.flow.clone();
            if let Err(e) = self.guard(step.request(), false) {
                out.push_str(&format!("{e}\n"));
                self.failed = true;
                break;
            }
            let result = self
                .cancellable(|r| Box::pin(r.run_step_owned(flow, idx, step)))
                .await;
            self.runner.put_guard_confirmed = false;
            let result = result?;
            out.push_str(&self.report(&result, false, false));
            if !result.ok() {
                break;
            }
            if let Some(c) = &mut self.cursor {
                c.pos += 1;
            }
        }
        if let Some(c) = &self.cursor
            && c.pos >= c.steps.len()
        {
            out.push_str(&format!("flow {} finished\n", c.flow));
        }
        Ok(out)
    }

    fn where_(&self) -> Result<String, String> {
        let c = self.cursor.as_ref().ok_or("no flow started")?;
        let mut out = format!("flow {}\n", c.flow);
        for (i, (_, s)) in c.steps.iter().enumerate() {
            let mark = if i == c.pos {
                "→"
            } else if i < c.pos {
                "✓"
            } else {
                " "
            };
            out.push_str(&format!("  {mark} {}\n", s.request()));
        }
        Ok(out)
    }

    fn set(&mut self, args: &[&str]) -> Result<String, String> {
        let (Some(name), Some(_)) = (args.first(), args.get(1)) else {
            return Err("set NAME VALUE".into());
        };
        let raw = args[1..].join(" ");
        let value = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
        self.runner.set_var(name, value, false);
        Ok(String::new())
    }

    fn unset(&mut self, args: &[&str]) -> Result<String, String> {
        let name = self.need(args, "variable")?;
        if self.runner.unset_var(name) {
            Ok(String::new())
        } else {
            Err(format!("`{name}` is not a stored variable"))
        }
    }

    fn env(&mut self, args: &[&str]) -> Result<String, String> {
        let c = &self.runner.collection;
        match args.first() {
            None => {
                let names: Vec<&String> = c.environments.keys().collect();
                Ok(format!(
                    "environment: {} (available: {})\n",
                    self.runner.env_key(),
                    names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            Some(name) if c.environments.contains_key(*name) => {
                self.runner.inputs.env = Some(name.to_string());
                Ok(format!("environment: {name}\n"))
            }
            Some(name) => Err(format!(
                "no environment `{name}`{}",
                crate::collection::suggest(name, c.environments.keys())
            )),
        }
    }

    async fn login(&mut self, args: &[&str]) -> Result<String, String> {
        let mut say = |s: &str| println!("{s}");
        let out = if args.contains(&"--device") {
            crate::auth::login_device(&mut self.runner, &mut say).await
        } else {
            crate::auth::login(&mut self.runner, args.contains(&"--no-browser"), &mut say).await
        };
        self.sync_clock();
        out
    }
}

async fn wait_interrupt(n: Option<std::sync::Arc<tokio::sync::Notify>>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Owns SIGINT for the session, so Ctrl-C during a command cancels it instead of killing the REPL
/// (at the prompt the terminal is raw and Ctrl-C is a key, not a signal).
fn listen_for_interrupts() -> std::sync::Arc<tokio::sync::Notify> {
    let n = std::sync::Arc::new(tokio::sync::Notify::new());
    let n2 = n.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            n2.notify_one();
        }
    });
    n
}

/// `postie repl COLLECTION` / `postie COLLECTION`.
pub async fn run(path: &Path, opts: &SendOpts) -> i32 {
    let (runner, mock) = match crate::cli::open_runner(path, opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let interactive = std::io::stdin().is_terminal();
    let history = crate::state::state_dir(&runner.collection.dir()).join("repl_history");
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
                    return crate::cli::EXIT_COLLECTION;
                }
            };
        let _ = ed.load_history(&history);
        loop {
            ed.set_helper(Some(helper(&s)));
            let prompt = s.prompt();
            match tokio::task::block_in_place(|| ed.readline(&prompt)) {
                Ok(line) => {
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
        let line = lines[i].trim().to_string();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A script answers a question (the PUT guard's) with a following `y` or `n` line.
        s.pending_answers.clear();
        if let Some(answer) = lines
            .get(i)
            .map(|l| l.trim())
            .filter(|l| matches!(*l, "y" | "n" | "yes" | "no"))
        {
            s.pending_answers.push(answer.to_string());
            i += 1;
        }
        let masked = s.history_line(&line);
        println!("{}{masked}", s.prompt());
        append_history(&history, &masked);
        if !s.execute(&line).await {
            break;
        }
    }
    let _ = s.runner.save();
    if s.failed { 1 } else { 0 }
}
