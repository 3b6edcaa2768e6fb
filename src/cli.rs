//! The command line: parse, dispatch, print, choose the exit code. Thin by design — the work
//! happens in the runner, the mock and the auth engine; what the CLI and the REPL share lives in
//! [`crate::session`].

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::output::{self, Style};
use crate::report::{self, ReportSpec};
use crate::runner::{FlowResult, RunOptions, Runner};
use crate::session::{
    self, EXIT_ASSERT, EXIT_COLLECTION, EXIT_HTTP, EXIT_INTERRUPTED, EXIT_OK, SendOpts,
};

/// postie — an API workbench with automatic chaining and a Constant Contact mock.
#[derive(Debug, Parser)]
#[command(name = "postie", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success; 1 a check failed (assertion, capture, polling, PUT guard, --fail-on-status); 2 the collection, a template, an argument or the saved state is not usable — nothing was sent; 3 HTTP, network or authorization-server error; 4 a later step could not be rendered after earlier steps were sent; 130 interrupted (Ctrl-C).\n`postie COLLECTION` opens the REPL."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Raise or lower a bound on what postie reads: collection-size, requests, template-output,
    /// template-steps (e.g. `--limit collection-size=128MiB`); repeatable.
    #[arg(long = "limit", global = true, value_name = "NAME=VALUE")]
    pub limits: Vec<crate::limits::LimitSpec>,
    /// Colour: auto (a terminal, unless NO_COLOR is set), always, never — everywhere, the REPL
    /// included.
    #[arg(long, global = true, value_enum, default_value_t = crate::output::ColorChoice::Auto)]
    pub color: crate::output::ColorChoice,
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
        /// Write a report: junit=PATH, json=PATH or html=PATH (one self-contained page with each
        /// request and response, secrets masked); repeatable (parent directories are created).
        #[arg(long = "report", value_name = "KIND=PATH")]
        reports: Vec<ReportSpec>,
        /// Send a PUT even when the PUT guard says it would null fields the resource has.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Fail a step when automatic chaining replaces a variable another request set.
        #[arg(long)]
        strict: bool,
        /// Fail a step whose response status is 400 or more when it asserts no status.
        #[arg(long)]
        fail_on_status: bool,
        /// Run the flow once per row of this CSV or JSON file, its columns as variables.
        #[arg(long, short = 'd', value_name = "FILE")]
        data: Option<PathBuf>,
        /// Run only the steps whose request is in this folder (or a folder inside it).
        #[arg(long)]
        folder: Option<String>,
        /// Stop at the first failing step (the default, except under `compat: newman`).
        #[arg(long)]
        bail: bool,
        /// Write the run's exchanges as a stub file, credentials taken out (`postie mock --stubs
        /// FILE` replays it; see `postie record`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// A live progress line on stderr (steps done/total, the request in flight, elapsed):
        /// auto (a terminal, not CI), always, never.
        #[arg(long, value_enum, default_value_t = crate::progress::When::Auto)]
        progress: crate::progress::When,
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
        /// Fail when the response status is 400 or more and the request asserts no status.
        #[arg(long)]
        fail_on_status: bool,
        /// Write the response body (as received, decoded) to this file instead of printing it.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: SendOpts,
    },
    /// Check structure, flows, templates and captures without sending anything.
    Validate {
        /// The collection file.
        collection: PathBuf,
    },
    /// Check collections before they are shared: credentials in the file (errors, exit 1) and
    /// likely mistakes (warnings). `file:line:col: level: message [rule]`; silence a rule on a
    /// line with a `# postie-lint: allow RULE` comment on it or above it.
    Lint {
        /// Collection files (with --staged and none given: every staged collection).
        collections: Vec<PathBuf>,
        /// Lint the versions staged for commit (`git show :FILE`), for a pre-commit hook.
        #[arg(long)]
        staged: bool,
        /// Output format: text, or GitHub Actions annotations.
        #[arg(long, value_enum, default_value_t = crate::lint::Format::Text)]
        format: crate::lint::Format,
    },
    /// What a change to a collection means: requests added, removed, renamed and changed
    /// (method, URL parts, query, headers, body fields, auth, captures, asserts, notes), flows'
    /// steps, variables and environments; secrets masked. Exit 1 when they differ. Also a git
    /// diff driver (`git config diff.postie.command "postie diff"`).
    Diff {
        /// OLD.yaml NEW.yaml; with --git, the files to compare (default: every collection changed
        /// since REV); as git's diff driver, the seven arguments git passes.
        files: Vec<PathBuf>,
        /// Compare the working copy with this git revision.
        #[arg(long, value_name = "REV")]
        git: Option<String>,
    },
    /// Living documentation: the collection as Markdown (description, OAuth2 setup, flows as
    /// numbered steps, each request with its curl line, variables and where each comes from).
    Doc {
        /// The collection file.
        collection: PathBuf,
        /// Write here instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE.md")]
        output: Option<PathBuf>,
    },
    /// Print the variables in scope (secrets masked) and where each comes from.
    Vars {
        /// The collection file.
        collection: PathBuf,
        /// Environment.
        #[arg(long, short = 'e')]
        env: Option<String>,
    },
    /// Run the mock server: the Constant Contact pack, an OpenAPI document (--spec), or both.
    Mock(crate::mock::cli::MockArgs),
    /// Record an API through a reverse proxy into a stub file, credentials taken out
    /// (`postie mock --stubs FILE` replays it).
    Record(crate::mock::engine::record::RecordArgs),
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
    /// Saved state: delete a collection's variables, tokens and responses.
    State {
        /// clear.
        #[arg(value_parser = ["clear"])]
        action: String,
        /// The collection file.
        collection: PathBuf,
        /// Only this environment (default: every environment of the collection).
        #[arg(long, short = 'e')]
        env: Option<String>,
    },
    /// Bring in what you have: a Postman collection, an OpenAPI/Swagger spec, curl lines, a HAR.
    Import {
        /// What to import.
        #[command(subcommand)]
        what: crate::interop::cli::ImportWhat,
    },
    /// Write a collection out: as a Postman collection (and environments), or as curl lines.
    Export {
        /// What to write.
        #[command(subcommand)]
        what: crate::interop::cli::ExportWhat,
    },
    /// Print a shell completion script: `postie completions bash > ~/.local/share/bash-completion/completions/postie`.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Decode a JWT (header, claims, expiry, scopes) without verifying it.
    Jwt {
        /// The token (or `-` to read it from stdin).
        token: String,
    },
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
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_COLLECTION } else { 0 };
        }
    };
    crate::limits::set(crate::limits::from_specs(&cli.limits));
    crate::output::set_color(cli.color);
    match cli.command {
        Command::Validate { collection } => validate_cmd(&collection),
        Command::Lint {
            collections,
            staged,
            format,
        } => lint_cmd(collections, staged, format),
        Command::Diff { files, git } => diff_cmd(&files, git.as_deref()),
        Command::Doc { collection, output } => doc_cmd(&collection, output.as_deref()),
        Command::Jwt { token } => jwt_cmd(&token),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "postie", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(&script);
            EXIT_OK
        }
        Command::Import { what } => crate::interop::cli::import(what),
        Command::Mock(args) => crate::mock::cli::run(args),
        Command::Record(args) => crate::mock::engine::record::run(args),
        Command::State {
            collection, env, ..
        } => state_cmd(&collection, env.as_deref()),
        other => {
            // The REPL blocks a worker on its line editor, so it needs two; a command runs its
            // steps one after another, and one thread saves every cross-thread wake-up.
            let mut builder = match other {
                Command::Repl { .. } => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(2);
                    b
                }
                _ => tokio::runtime::Builder::new_current_thread(),
            };
            let rt = match builder.enable_all().build() {
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
            yes,
            strict,
            fail_on_status,
            data,
            folder,
            bail,
            record,
            progress,
            opts,
        } => {
            let how = RunHow {
                progress,
                yes,
                strict,
                fail_on_status,
                data,
                folder,
                bail,
                record,
            };
            run_cmd(&collection, flow, from, to, &reports, how, &opts).await
        }
        Command::Send {
            collection,
            request,
            yes,
            fail_on_status,
            output,
            opts,
        } => {
            let how = SendHow {
                yes,
                fail_on_status,
                output,
            };
            send_cmd(&collection, &request, how, &opts).await
        }
        Command::Vars { collection, env } => vars_cmd(&collection, env),
        Command::Repl { collection, opts } => crate::repl::run(&collection, &opts).await,
        Command::Auth {
            action,
            collection,
            device,
            no_browser,
            opts,
        } => auth_cmd(&action, &collection, device, no_browser, &opts).await,
        Command::Export { what } => crate::interop::cli::export(what).await,
        Command::Validate { .. }
        | Command::Lint { .. }
        | Command::Diff { .. }
        | Command::Doc { .. }
        | Command::Import { .. }
        | Command::Jwt { .. }
        | Command::Completions { .. }
        | Command::Mock(_)
        | Command::Record(_)
        | Command::State { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// `postie lint`: exit 0 clean or warnings only, 1 on an error finding, 2 when a file cannot be
/// read or parsed.
fn lint_cmd(paths: Vec<PathBuf>, staged: bool, format: crate::lint::Format) -> i32 {
    use crate::lint::{Level, from_load_error, lint, render, staged_collections, staged_text};
    let paths = if paths.is_empty() {
        if !staged {
            eprintln!("error: name the collection files to lint (or pass --staged)");
            return EXIT_COLLECTION;
        }
        match staged_collections() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_COLLECTION;
            }
        }
    } else {
        paths
    };
    let mut findings = Vec::new();
    let mut unreadable = false;
    let mut skipped = 0usize;
    for path in &paths {
        let loaded = if staged {
            match staged_text(path) {
                // A hook framework passes every staged YAML file: lint only collections.
                Ok(text) if !text.lines().any(|l| l.starts_with("requests:")) => {
                    skipped += 1;
                    continue;
                }
                Ok(text) => crate::collection::Collection::parse(path, text),
                Err(e) => {
                    eprintln!("error: {e}");
                    unreadable = true;
                    continue;
                }
            }
        } else {
            crate::collection::Collection::load(path)
        };
        match loaded {
            Ok(c) => {
                let t = crate::template::Templates::new();
                for e in crate::validate::validate(&c, &t) {
                    let mut f = from_load_error(&e);
                    f.rule = "validate";
                    findings.push(f);
                }
                findings.extend(lint(&c, &t));
            }
            Err(e) => {
                unreadable = true;
                findings.push(from_load_error(&e));
            }
        }
    }
    print!("{}", render(&findings, format));
    let _ = std::io::stdout().flush();
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.len() - errors;
    if format == crate::lint::Format::Text || errors + warnings > 0 {
        eprintln!(
            "{} {}, {} {} in {} collection{}",
            errors,
            if errors == 1 { "error" } else { "errors" },
            warnings,
            if warnings == 1 { "warning" } else { "warnings" },
            paths.len() - skipped,
            if paths.len() - skipped == 1 { "" } else { "s" }
        );
    }
    if unreadable {
        EXIT_COLLECTION
    } else if errors > 0 {
        EXIT_ASSERT
    } else {
        EXIT_OK
    }
}

/// `postie doc`: the collection as Markdown, on stdout or into a file.
fn doc_cmd(path: &Path, output: Option<&Path>) -> i32 {
    let templates = crate::template::Templates::new();
    let c = match session::load_with(path, &templates) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let text = crate::doc::markdown(&c, &templates);
    match output {
        None => {
            print!("{text}");
            EXIT_OK
        }
        Some(p) => {
            if let Err(e) = report::prepare_path(p)
                .and_then(|_| std::fs::write(p, text.as_bytes()).map_err(|e| e.to_string()))
            {
                eprintln!("error: cannot write {}: {e}", p.display());
                return EXIT_COLLECTION;
            }
            eprintln!("wrote {}", p.display());
            EXIT_OK
        }
    }
}

/// `postie diff`: two files, a git revision, or git's seven driver arguments.
fn diff_cmd(files: &[PathBuf], rev: Option<&str>) -> i32 {
    use crate::diff::{Doc, diff, plain, render};
    let read = |p: &Path| -> Result<String, String> {
        if p == Path::new("/dev/null") || !p.exists() {
            return Ok(String::new());
        }
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let compare = |old_name: &str, new_name: &str, old: &str, new: &str| -> Result<bool, String> {
        let parse = |name: &str, text: &str| Doc::parse(name, text);
        let (a, b) = (parse(old_name, old)?, parse(new_name, new)?);
        if !a.is_collection() && !b.is_collection() {
            return Err(format!("{new_name}: not a collection (no `requests:`)"));
        }
        let sections = diff(&a, &b);
        if sections.is_empty() {
            if old != new {
                println!(
                    "--- {old_name}\n+++ {new_name}\n  no change in meaning (formatting, comments or order only)"
                );
            }
            return Ok(false);
        }
        print!("{}", render(old_name, new_name, &sections));
        Ok(true)
    };
    // git's external diff: path old-file old-hex old-mode new-file new-hex new-mode.
    if rev.is_none() && files.len() == 7 {
        let name = files[0].display().to_string();
        let (old, new) = match (read(&files[1]), read(&files[4])) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                return EXIT_COLLECTION;
            }
        };
        let (a, b) = (format!("a/{name}"), format!("b/{name}"));
        if compare(&a, &b, &old, &new).is_err() {
            // Not a collection (or not one yet): git still gets a diff.
            print!("{}", plain(&a, &b, &old, &new));
        }
        // git stops at an external diff that exits non-zero.
        return EXIT_OK;
    }
    let mut differ = false;
    let mut failed = false;
    let mut one = |old_name: &str, new_name: &str, old: String, new: String| match compare(
        old_name, new_name, &old, &new,
    ) {
        Ok(d) => differ |= d,
        Err(e) => {
            eprintln!("error: {e}");
            failed = true;
        }
    };
    match (rev, files.len()) {
        (Some(rev), _) => {
            let paths: Vec<PathBuf> = if files.is_empty() {
                match crate::diff::changed_collections(rev) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_COLLECTION;
                    }
                }
            } else {
                files.to_vec()
            };
            for p in &paths {
                let old = match crate::diff::at_revision(rev, p) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_COLLECTION;
                    }
                };
                let new = match read(p) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_COLLECTION;
                    }
                };
                one(
                    &format!("{rev}:{}", p.display()),
                    &p.display().to_string(),
                    old,
                    new,
                );
            }
        }
        (None, 2) => {
            let (old, new) = match (read(&files[0]), read(&files[1])) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return EXIT_COLLECTION;
                }
            };
            for f in files {
                if !f.exists() {
                    eprintln!("error: {}: no such file", f.display());
                    return EXIT_COLLECTION;
                }
            }
            one(
                &files[0].display().to_string(),
                &files[1].display().to_string(),
                old,
                new,
            );
        }
        _ => {
            eprintln!(
                "error: postie diff takes OLD.yaml NEW.yaml, or --git REV [FILE...], or the seven arguments of git's diff driver"
            );
            return EXIT_COLLECTION;
        }
    }
    if failed {
        EXIT_COLLECTION
    } else if differ {
        EXIT_ASSERT
    } else {
        EXIT_OK
    }
}

/// How `run` treats the PUT guard, rebinding and error statuses, and what it iterates over.
struct RunHow {
    progress: crate::progress::When,
    yes: bool,
    strict: bool,
    fail_on_status: bool,
    data: Option<PathBuf>,
    folder: Option<String>,
    bail: bool,
    record: Option<PathBuf>,
}

async fn run_cmd(
    path: &Path,
    flow: Option<String>,
    from: Option<String>,
    to: Option<String>,
    reports: &[ReportSpec],
    how: RunHow,
    opts: &SendOpts,
) -> i32 {
    for spec in reports {
        if let Err(e) = report::prepare_path(spec.path()) {
            eprintln!("error: {e}");
            return EXIT_COLLECTION;
        }
    }
    if let Some(p) = &how.record
        && let Err(e) = report::prepare_path(p)
    {
        eprintln!("error: {e}");
        return EXIT_COLLECTION;
    }
    let mut recorded: Vec<crate::mock::engine::record::Exchange> = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    let rows = match &how.data {
        Some(p) => match crate::runner::data::load_rows(p) {
            Ok(rows) => Some(rows),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_COLLECTION;
            }
        },
        None => None,
    };
    let (mut runner, _mock) = match session::open_runner(path, opts) {
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
    // A nulling PUT is never sent headless unless confirmed: `--yes`.
    runner.put_guard_confirmed = how.yes;
    runner.put_guard_strict = true;
    runner.strict_chaining = how.strict;
    runner.fail_on_status = how.fail_on_status;
    runner.folder = how.folder.clone();
    if how.bail {
        runner.keep_going = false;
    }
    let style = Style::detect();
    let verbose = opts.verbose;
    // A terminal sees each step as it completes; a pipe or a file gets them in large writes.
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut ctrl_c = Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let iterations = rows.as_ref().map(Vec::len).unwrap_or(1);
    // The HTML report shows bodies, which the runner drops after each step: keep a masked copy.
    let keep_details = reports.iter().any(|r| matches!(r, ReportSpec::Html(_)));
    let mut details: Vec<Vec<report::html::Detail>> = Vec::new();
    // The live progress line: the planned steps give the total and the next request's name.
    let planned: Vec<String> = runner
        .flow_steps(&flow, from.as_deref(), to.as_deref())
        .map(|s| s.iter().map(|(_, s)| s.request().to_string()).collect())
        .unwrap_or_default();
    let progress = crate::progress::Progress::start(how.progress, planned.len() * iterations);
    let flush_each = tty || how.progress == crate::progress::When::Always;
    let mut done = 0usize;
    let mut rows = rows.map(|r| r.into_iter());
    let mut results = Vec::with_capacity(iterations);
    for i in 0..iterations {
        runner.iteration = (i, iterations);
        runner.inputs.local.clear();
        if let Some(row) = rows.as_mut().and_then(|r| r.next()) {
            runner.inputs.data = row;
        }
        let label = if iterations > 1 {
            format!(" (iteration {}/{iterations})", i + 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} {flow}{label} [{}]",
            style.bold("flow"),
            runner.env_key()
        );
        let recording = how.record.is_some();
        let mut these: Vec<report::html::Detail> = Vec::new();
        progress.around(planned.first().map(String::as_str), done, || {
            let _ = out.flush();
        });
        let mut printed = |r: &crate::runner::StepResult, red: &crate::redact::Redactor| {
            done += 1;
            let next = planned.get(done % planned.len().max(1)).map(String::as_str);
            let next = if done >= planned.len() * iterations {
                None
            } else {
                next
            };
            if keep_details {
                these.push(report::html::Detail::of(r, red));
            }
            if recording && let Some(ex) = &r.exchange {
                recorded.push(crate::mock::engine::record::Exchange::of(ex));
                if red.len() > secrets.len() {
                    secrets = red.values().to_vec();
                }
            }
            progress.around(next, done, || {
                let _ = write!(out, "{}", output::step_line(r, red, style, verbose));
                if flush_each {
                    let _ = out.flush();
                }
            });
        };
        let result = runner
            .run_flow(
                &flow,
                from.as_deref(),
                to.as_deref(),
                &mut printed,
                &mut ctrl_c,
            )
            .await;
        let mut result = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = out.flush();
                eprintln!("error: {e}");
                return EXIT_COLLECTION;
            }
        };
        if iterations > 1 {
            result.iteration = Some((i + 1, iterations));
        }
        details.push(these);
        let interrupted = result.interrupted;
        let failed = result.exit_code() != 0;
        results.push(result);
        if interrupted || (failed && how.bail) {
            break;
        }
    }
    progress.finish();
    let _ = out.flush();
    drop(out);
    if results.iter().any(|r| r.interrupted) {
        eprintln!("interrupted");
    }
    if let Some(p) = &how.record {
        let text = crate::mock::engine::record::stub_file_with(
            &recorded,
            &format!("a run of {}", path.display()),
            &secrets,
        );
        match crate::util::write_private_atomic(p, text.as_bytes()) {
            Ok(()) => eprintln!(
                "recorded {} exchanges into {} (replay: postie mock --stubs {})",
                recorded.len(),
                p.display(),
                p.display()
            ),
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", p.display());
                return EXIT_COLLECTION;
            }
        }
    }
    finish(&mut runner, &results, &details, reports, style)
}

fn finish(
    runner: &mut Runner,
    results: &[FlowResult],
    details: &[Vec<report::html::Detail>],
    reports: &[ReportSpec],
    style: Style,
) -> i32 {
    if let Err(e) = runner.save() {
        eprintln!("warning: {}", runner.redactor().mask(&e.to_string()));
    }
    let red = runner.redactor();
    let mut code = results
        .iter()
        .map(FlowResult::exit_code)
        .find(|c| *c != 0)
        .unwrap_or(EXIT_OK);
    if let Err(e) = report::write_reports(
        reports,
        &runner.collection.name,
        &runner.env_key(),
        results,
        details,
        red,
    ) {
        eprintln!("error: {e}");
        if code == EXIT_OK {
            code = EXIT_COLLECTION;
        }
    }
    let c = report::Counts::of(results);
    let mut line = format!(
        "{} passed, {} failed, {} skipped",
        c.passed, c.failed, c.skipped
    );
    if c.not_run > 0 {
        line.push_str(&format!(", {} not run", c.not_run));
    }
    println!("{}", if c.failed > 0 { style.bad(&line) } else { line });
    code
}

/// How `send` treats the PUT guard, error statuses and the body.
struct SendHow {
    yes: bool,
    fail_on_status: bool,
    output: Option<PathBuf>,
}

async fn send_cmd(path: &Path, request: &str, how: SendHow, opts: &SendOpts) -> i32 {
    let SendHow {
        yes,
        fail_on_status,
        output,
    } = how;
    let (mut runner, _mock) = match session::open_runner(path, opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let style = Style::detect();
    runner.put_guard_confirmed = yes;
    runner.put_guard_strict = true;
    runner.fail_on_status = fail_on_status;
    if !yes && let Some(warning) = runner.put_guard_warning(request) {
        eprintln!("{}", style.warn(&runner.redactor().mask(&warning)));
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "{} not sent; pass --yes to send it anyway",
                style.bad("error:")
            );
            return EXIT_ASSERT;
        }
        if !session::ask("send it anyway? [y/N] ") {
            eprintln!("not sent");
            return EXIT_ASSERT;
        }
        runner.put_guard_confirmed = true;
    }
    let result = tokio::select! {
        r = runner.send(request) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted");
            let _ = runner.save();
            return EXIT_INTERRUPTED;
        }
    };
    let red = runner.redactor();
    for n in &result.notes {
        eprintln!("{}", style.warn(&red.mask(n)));
    }
    let mut code = EXIT_OK;
    if let Some(ex) = &result.exchange {
        match &output {
            Some(file) => {
                let mut head = ex.clone();
                head.raw = bytes::Bytes::new();
                head.body.clear();
                head.json = None;
                head.binary = false;
                print!("{}", output::response_text(&head, opts.verbose, red, style));
                match std::fs::write(file, &ex.raw) {
                    Ok(()) => eprintln!(
                        "body ({}) written to {}",
                        output::human_bytes(ex.raw.len()),
                        file.display()
                    ),
                    Err(e) => {
                        eprintln!("{} {}: {e}", style.bad("error:"), file.display());
                        code = EXIT_COLLECTION;
                    }
                }
            }
            None => print!("{}", output::response_text(ex, opts.verbose, red, style)),
        }
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
        eprintln!("warning: {}", runner.redactor().mask(&e.to_string()));
    }
    result.failure.map(|f| f.kind.exit_code()).unwrap_or(code)
}

async fn auth_cmd(
    action: &str,
    path: &Path,
    device: bool,
    no_browser: bool,
    opts: &SendOpts,
) -> i32 {
    let (mut r, _mock) = match session::open_runner(path, opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut say = |s: &str| eprintln!("{s}");
    let work = async {
        match action {
            "login" if device => crate::auth::login_device(&mut r, &mut say).await,
            "login" => crate::auth::login(&mut r, no_browser, &mut say).await,
            "refresh" => crate::auth::refresh(&mut r, "requested").await,
            _ => Ok(String::new()),
        }
    };
    let outcome = tokio::select! {
        o = work => Some(o),
        _ = tokio::signal::ctrl_c() => None,
    };
    r.inputs.transient.clear();
    let _ = r.save();
    match outcome {
        None => {
            eprintln!("cancelled (Ctrl-C)");
            EXIT_INTERRUPTED
        }
        Some(Ok(msg)) if msg.is_empty() => {
            print!("{}", crate::auth::status(&r));
            EXIT_OK
        }
        Some(Ok(msg)) => {
            println!("{msg}");
            EXIT_OK
        }
        Some(Err(e)) => {
            eprintln!("error: {}", r.redactor().mask(&e.message));
            e.exit_code()
        }
    }
}

fn validate_cmd(path: &Path) -> i32 {
    match session::load(path) {
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
            for w in &report.warnings {
                println!("warning: {w}");
            }
            if !report.from_responses.is_empty() {
                let list: Vec<String> = report
                    .from_responses
                    .iter()
                    .map(|(v, first)| format!("{v} (first used by {first})"))
                    .collect();
                println!("expected from responses: {}", list.join(", "));
            }
            EXIT_OK
        }
        Err(code) => code,
    }
}

fn vars_cmd(path: &Path, env: Option<String>) -> i32 {
    let c = match session::load(path) {
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
            print!("{}", session::vars_text(&r));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        }
    }
}

fn state_cmd(path: &Path, env: Option<&str>) -> i32 {
    let c = match session::load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(e) = env
        && !c.environments.contains_key(e)
    {
        eprintln!(
            "error: environment `{e}` is not defined in the collection{}",
            crate::collection::suggest(e, c.environments.keys())
        );
        return EXIT_COLLECTION;
    }
    let mut store = match crate::state::Store::open(&c.path, &c.name, None, true) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_COLLECTION;
        }
    };
    match store.clear(env) {
        Ok(n) => {
            println!(
                "cleared {} of {} ({})",
                match env {
                    Some(e) => format!("environment {e}"),
                    None => format!("{n} environment{}", if n == 1 { "" } else { "s" }),
                },
                path.display(),
                store.paths.state.display()
            );
            EXIT_OK
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
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        }
    }
}
