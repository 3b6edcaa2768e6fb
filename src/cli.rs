//! The command line: parse, dispatch, print, choose the exit code. Thin by design — the work
//! happens in the runner, the mock and the auth engine; the REPL reuses the same functions.

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use clap::{Args, Parser, Subcommand};

use crate::collection::Collection;
use crate::output::{self, Style};
use crate::report::{self, ReportSpec};
use crate::runner::{FlowResult, RunOptions, Runner};

/// Exit code: an assertion failed.
pub const EXIT_ASSERT: i32 = 1;
/// Exit code: collection or template error; nothing sent.
pub const EXIT_COLLECTION: i32 = 2;
/// Exit code: HTTP or network error.
pub const EXIT_HTTP: i32 = 3;

/// postie — an API workbench with automatic chaining and a Constant Contact mock.
#[derive(Debug, Parser)]
#[command(name = "postie", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 assertion failed, 2 collection/template error (nothing sent), 3 HTTP/network error.\n`postie COLLECTION` opens the REPL."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that send requests.
#[derive(Debug, Clone, Args)]
pub struct SendOpts {
    /// Environment from the collection's `environments:`.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Set a variable (highest precedence); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Ignore saved state (variables, tokens, mock data) and start clean.
    #[arg(long)]
    pub fresh: bool,
    /// Start the bundled Constant Contact mock in-process and select its `mock` environment.
    #[arg(long)]
    pub mock: bool,
    /// Show response headers.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a flow: one line per step, failures in detail.
    Run {
        /// The collection file.
        collection: PathBuf,
        /// The flow (default: the first).
        #[arg(long, short = 'f')]
        flow: Option<String>,
        /// Start at this step.
        #[arg(long)]
        from: Option<String>,
        /// Stop after this step.
        #[arg(long)]
        to: Option<String>,
        /// Write a report: junit=PATH or json=PATH; repeatable.
        #[arg(long = "report", value_name = "KIND=PATH")]
        reports: Vec<ReportSpec>,
        /// Treat warnings (such as the PUT guard) as failures.
        #[arg(long)]
        strict: bool,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: SendOpts,
    },
    /// Send one request and print the response.
    Send {
        /// The collection file.
        collection: PathBuf,
        /// The request name.
        request: String,
        /// Send a PUT even when it would null fields the resource has.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: SendOpts,
    },
    /// Check structure, flows, templates and captures without sending anything.
    Validate {
        /// The collection file.
        collection: PathBuf,
    },
    /// Print the variables in scope (secrets masked).
    Vars {
        /// The collection file.
        collection: PathBuf,
        /// Environment.
        #[arg(long, short = 'e')]
        env: Option<String>,
    },
    /// Run the Constant Contact mock server.
    Mock(crate::mock::cli::MockArgs),
    /// Open the REPL on a collection.
    Repl {
        /// The collection file.
        collection: PathBuf,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: SendOpts,
    },
    /// OAuth2: log in, refresh, or show token status.
    Auth {
        /// login, refresh or status.
        #[arg(value_parser = ["login", "refresh", "status"])]
        action: String,
        /// The collection file.
        collection: PathBuf,
        /// Use the device flow.
        #[arg(long)]
        device: bool,
        /// Print the authorize URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: SendOpts,
    },
    /// Decode a JWT (header, claims, expiry, scopes) without verifying it.
    Jwt {
        /// The token (or `-` to read it from stdin).
        token: String,
    },
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

/// Entry point: returns the process exit code.
pub fn main() -> i32 {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `postie COLLECTION` opens the REPL.
    if let Some(first) = args.get(1).and_then(|a| a.to_str())
        && (first.ends_with(".yaml") || first.ends_with(".yml"))
    {
        args.insert(1, "repl".into());
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Validate { collection } => validate_cmd(&collection),
        Command::Jwt { token } => jwt_cmd(&token),
        Command::Mock(args) => crate::mock::cli::run(args),
        other => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return EXIT_HTTP;
                }
            };
            rt.block_on(dispatch(other))
        }
    }
}

async fn dispatch(cmd: Command) -> i32 {
    match cmd {
        Command::Run {
            collection,
            flow,
            from,
            to,
            reports,
            strict,
            opts,
        } => run_cmd(&collection, flow, from, to, &reports, strict, &opts).await,
        Command::Send {
            collection,
            request,
            yes,
            opts,
        } => send_cmd(&collection, &request, yes, &opts).await,
        Command::Vars { collection, env } => vars_cmd(&collection, env),
        Command::Repl { collection, opts } => crate::repl::run(&collection, &opts).await,
        Command::Auth {
            action,
            collection,
            device,
            no_browser,
            opts,
        } => crate::auth::cli(&action, &collection, device, no_browser, &opts).await,
        Command::Validate { .. } | Command::Jwt { .. } | Command::Mock(_) => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// Loads and validates a collection, printing errors; `Err` carries the exit code.
pub fn load(path: &Path) -> Result<Collection, i32> {
    let c = Collection::load(path).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_COLLECTION
    })?;
    let errors = crate::validate::validate(&c, &crate::template::Templates::new());
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(EXIT_COLLECTION);
    }
    Ok(c)
}

/// A runner for a collection with the shared options, starting the in-process mock when asked.
/// The returned guard keeps the mock alive.
pub fn open_runner(
    path: &Path,
    opts: &SendOpts,
) -> Result<(Runner, Option<crate::mock::MockServer>), i32> {
    let c = load(path)?;
    let mut vars = opts.vars.clone();
    let mut env = opts.env.clone();
    let mut mock = None;
    if opts.mock {
        let state_file = crate::state::state_dir(&c.dir()).join("mock.json");
        if opts.fresh {
            let _ = std::fs::remove_file(&state_file);
        }
        let config = crate::mock::MockConfig::bundled().map_err(|e| {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        })?;
        // In-process, the consent step is approved at once so flows and `login` run headless.
        let mut config = config.with_state_file(state_file);
        config.auto_approve = true;
        match crate::mock::MockServer::start(config) {
            Ok(m) => {
                vars.retain(|(k, _)| k != "mock_url");
                vars.push(("mock_url".into(), m.url().to_string()));
                if env.is_none() && c.environments.contains_key("mock") {
                    env = Some("mock".into());
                }
                mock = Some(m);
            }
            Err(e) => {
                eprintln!("error: cannot start the mock: {e}");
                return Err(EXIT_HTTP);
            }
        }
    }
    let runner = Runner::new(
        c,
        RunOptions {
            env,
            vars,
            fresh: opts.fresh,
            state_dir: None,
        },
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        EXIT_COLLECTION
    })?;
    Ok((runner, mock))
}

#[allow(clippy::too_many_arguments)]
async fn run_cmd(
    path: &Path,
    flow: Option<String>,
    from: Option<String>,
    to: Option<String>,
    reports: &[ReportSpec],
    strict: bool,
    opts: &SendOpts,
) -> i32 {
    let (mut runner, _mock) = match open_runner(path, opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let flow = match flow.map(Ok).unwrap_or_else(|| runner.default_flow()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_COLLECTION;
        }
    };
    runner.put_guard_strict = strict;
    let style = Style::detect();
    println!("{} {} [{}]", style.bold("flow"), flow, runner.env_key());
    let mut printed = |r: &crate::runner::StepResult, red: &crate::redact::Redactor| {
        print!("{}", output::step_line(r, red, style))
    };
    let result = match runner
        .run_flow(&flow, from.as_deref(), to.as_deref(), &mut printed)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_COLLECTION;
        }
    };
    finish(&mut runner, &[result], reports)
}

fn finish(runner: &mut Runner, results: &[FlowResult], reports: &[ReportSpec]) -> i32 {
    let red = runner.redactor();
    if let Err(e) = runner.save() {
        eprintln!("warning: {}", red.mask(&e.to_string()));
    }
    if let Err(e) = report::write_reports(
        reports,
        &runner.collection.name,
        &runner.env_key(),
        results,
        &red,
    ) {
        eprintln!("error: cannot write report: {e}");
    }
    let code = results
        .iter()
        .map(FlowResult::exit_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    let steps: usize = results.iter().map(|r| r.steps.len()).sum();
    let failed = results
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| !s.ok())
        .count();
    let skipped = results
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| s.skipped.is_some())
        .count();
    println!(
        "{} passed, {failed} failed, {skipped} skipped",
        steps - failed - skipped
    );
    code
}

async fn send_cmd(path: &Path, request: &str, yes: bool, opts: &SendOpts) -> i32 {
    let (mut runner, _mock) = match open_runner(path, opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let style = Style::detect();
    runner.put_guard_confirmed = yes;
    if !yes && let Some(warning) = runner.put_guard_warning(request) {
        eprintln!("{}", style.warn(&runner.redactor().mask(&warning)));
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "{} not sent; pass --yes to send it anyway",
                style.bad("error:")
            );
            return EXIT_ASSERT;
        }
        if !ask("send it anyway? [y/N] ") {
            eprintln!("not sent");
            return EXIT_ASSERT;
        }
        runner.put_guard_confirmed = true;
    }
    let result = runner.send(request).await;
    let red = runner.redactor();
    for n in &result.notes {
        eprintln!("{}", style.warn(&red.mask(n)));
    }
    if let Some(ex) = &result.exchange {
        print!("{}", output::response_text(ex, opts.verbose, &red, style));
    }
    if !result.set.is_empty() {
        let vars: Vec<String> = result
            .set
            .iter()
            .map(|b| format!("{}={}", b.name, red.mask(&crate::chain::display_value(b))))
            .collect();
        eprintln!("{} {}", style.dim("set"), vars.join(" "));
    }
    if let Some(f) = &result.failure {
        eprintln!("{} {}", style.bad("error:"), red.mask(&f.message));
    }
    if let Err(e) = runner.save() {
        eprintln!("warning: {}", red.mask(&e.to_string()));
    }
    result.failure.map(|f| f.kind.exit_code()).unwrap_or(0)
}

fn validate_cmd(path: &Path) -> i32 {
    match load(path) {
        Ok(c) => {
            let steps: usize = c.flows.values().map(|f| f.steps.len()).sum();
            println!(
                "{}: ok — {} requests, {} flows ({steps} steps), {} environments",
                path.display(),
                c.requests.len(),
                c.flows.len(),
                c.environments.len()
            );
            let report = crate::validate::analyse(&c, &crate::template::Templates::new());
            if !report.from_responses.is_empty() {
                let list: Vec<String> = report
                    .from_responses
                    .iter()
                    .map(|(v, first)| format!("{v} (first used by {first})"))
                    .collect();
                println!("expected from responses: {}", list.join(", "));
            }
            0
        }
        Err(code) => code,
    }
}

/// Lines describing every variable in scope (masked), for `vars`.
pub fn vars_text(runner: &Runner) -> String {
    let scope = runner.scope();
    let red = scope.redactor();
    let st = runner.env_state();
    let mut out = String::new();
    let map = scope.ctx.as_object().cloned().unwrap_or_default();
    for (k, v) in &map {
        if k == "env" || runner.collection.requests.contains_key(k) && v.get("status").is_some() {
            continue;
        }
        let shown = if scope.secret_names.contains(k) {
            crate::redact::MASK.to_string()
        } else {
            red.mask(&crate::capture::value_text(v))
        };
        let origin = match st.vars.get(k) {
            Some(sv) => sv
                .source
                .as_deref()
                .map(|s| format!("from {s}"))
                .unwrap_or_else(|| "set".into()),
            None if runner.inputs.vars.iter().any(|(n, _)| n == k) => "--var".into(),
            None => "collection".into(),
        };
        out.push_str(&format!("{k} = {shown}  ({origin})\n"));
    }
    for (k, why) in &scope.unresolved {
        out.push_str(&format!("{k} = <unresolved: {}>\n", red.mask(why)));
    }
    let exchanges: Vec<&String> = st.exchanges.keys().collect();
    if !exchanges.is_empty() {
        out.push_str(&format!(
            "responses: {}\n",
            exchanges
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

fn vars_cmd(path: &Path, env: Option<String>) -> i32 {
    let c = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match Runner::new(
        c,
        RunOptions {
            env,
            ..Default::default()
        },
    ) {
        Ok(r) => {
            print!("{}", vars_text(&r));
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        }
    }
}

fn jwt_cmd(token: &str) -> i32 {
    let token = if token == "-" {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s);
        s.trim().to_string()
    } else {
        token.to_string()
    };
    match crate::jwt::describe(&token, crate::util::unix_now()) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        }
    }
}

/// Asks a yes/no question on the terminal.
pub fn ask(question: &str) -> bool {
    use std::io::Write as _;
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
