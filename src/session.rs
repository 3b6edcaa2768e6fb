//! What the command line and the REPL share, below both of them: the options of commands that
//! send requests, opening a collection's runner (with the in-process mock), the exit codes,
//! asking a yes/no question, and the variables listing.

use std::path::Path;

use clap::Args;

use crate::collection::Collection;
use crate::runner::{RunOptions, Runner};

pub use crate::exit::{
    ASSERT as EXIT_ASSERT, COLLECTION as EXIT_COLLECTION, HTTP as EXIT_HTTP,
    INTERRUPTED as EXIT_INTERRUPTED, OK as EXIT_OK,
};

/// Options shared by commands that send requests.
#[derive(Debug, Clone, Default, Args)]
pub struct SendOpts {
    /// Environment from the collection's `environments:`.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Set a variable (highest precedence); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Start from empty state for this run: saved variables, tokens and mock data are ignored
    /// (not deleted; `postie state clear` deletes them).
    #[arg(long)]
    pub fresh: bool,
    /// Start the bundled Constant Contact mock in-process and select its `mock` environment.
    #[arg(long)]
    pub mock: bool,
    /// Show response headers (and whole URLs in step lines).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Trust the certificates in this PEM file (a private CA) besides the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Present this PEM client certificate (mutual TLS); with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's PEM private key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Do not verify TLS certificates (warned about on every run).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Let secret NAME go to HOST this once, though it is bound to other hosts (said on the step
    /// line); repeatable. `*=HOST` allows every secret.
    #[arg(long = "allow-secret-host", value_name = "NAME=HOST", value_parser = crate::secret_hosts::parse_allow)]
    pub allow_secret_hosts: Vec<(String, String)>,
}

impl SendOpts {
    /// The TLS options given on the command line.
    pub fn tls(&self) -> crate::exchange::TlsOptions {
        crate::exchange::TlsOptions {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure: self.insecure,
            cookie_jar: false,
        }
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if is_variable_name(k) => Ok((k.to_string(), v.to_string())),
        Some((k, _)) => Err(format!(
            "`{k}` is not a variable name (letters, digits and `_`, not starting with a digit)"
        )),
        None => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

/// Whether a name can be used as `<<name>>`.
pub fn is_variable_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Loads and validates a collection, printing errors; `Err` carries the exit code.
pub fn load(path: &Path) -> Result<Collection, i32> {
    load_with(path, &crate::template::Templates::new())
}

/// [`load`] with a template engine that keeps what validation analysed, for the runner to reuse.
pub fn load_with(path: &Path, templates: &crate::template::Templates) -> Result<Collection, i32> {
    let c = Collection::load(path).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_COLLECTION
    })?;
    let errors = crate::validate::validate(&c, templates);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(EXIT_COLLECTION);
    }
    Ok(c)
}

/// The in-process mock's configuration for a collection directory: auto-approve, and its data
/// kept in `.postie/mock.json` (in memory only with `fresh`).
pub fn mock_config(dir: &Path, fresh: bool) -> Result<crate::mock::MockConfig, String> {
    let mut config = crate::mock::MockConfig::bundled()?;
    if !fresh {
        config = config.with_state_file(crate::state::state_dir(dir).join("mock.json"));
    }
    // In-process, the consent step is approved at once so flows and `login` run headless.
    config.auto_approve = true;
    // Another postie process may hold the same data file: wait for it rather than lose writes.
    config.lock_wait = std::time::Duration::from_secs(60);
    Ok(config)
}

/// A runner for a collection with the shared options, starting the in-process mock when asked.
/// The returned mock keeps running while it lives.
pub fn open_runner(
    path: &Path,
    opts: &SendOpts,
) -> Result<(Runner, Option<crate::mock::MockServer>), i32> {
    let templates = crate::template::Templates::new();
    let c = load_with(path, &templates)?;
    let mut env = opts.env.clone();
    let mut mock = None;
    let mut mock_url = None;
    if opts.mock {
        let config = mock_config(&c.dir(), opts.fresh).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_COLLECTION
        })?;
        match crate::mock::MockServer::start(config) {
            Ok(m) => {
                mock_url = Some(m.url().to_string());
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
    let runner = Runner::with_templates(
        c,
        templates,
        RunOptions {
            env,
            vars: opts.vars.clone(),
            mock_url,
            fresh: opts.fresh,
            state_dir: None,
            tls: opts.tls(),
            allow_secret_hosts: opts.allow_secret_hosts.clone(),
        },
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        EXIT_COLLECTION
    })?;
    if opts.insecure || runner.collection.tls.as_ref().is_some_and(|t| t.insecure) {
        eprintln!(
            "warning: TLS certificate verification is off ({}): any server can answer for any host",
            if opts.insecure {
                "--insecure"
            } else {
                "tls.insecure in the collection"
            }
        );
    }
    for n in &runner.store.notices {
        eprintln!("note: {n}");
    }
    Ok((runner, mock))
}

/// Asks a yes/no question on the terminal. Ctrl-C or end of input answer no.
pub fn ask(question: &str) -> bool {
    let Ok(mut ed) = rustyline::DefaultEditor::new() else {
        return false;
    };
    match ed.readline(question) {
        Ok(answer) => is_yes(&answer),
        Err(_) => {
            eprintln!("(no)");
            false
        }
    }
}

/// Whether an answer means yes (`y`, `yes`, any case).
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Whether a line is an answer to a yes/no question (`y`, `n`, `yes`, `no`, any case).
pub fn is_answer(line: &str) -> bool {
    matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "n" | "no"
    )
}

/// Lines describing every variable in scope (masked) and where each comes from, for `vars`.
pub fn vars_text(runner: &Runner) -> String {
    let scope = runner.scope();
    let red = runner.redactor();
    let mut out = String::new();
    let mut unresolved = Vec::new();
    for k in scope.names() {
        let Some(v) = scope.get(&k) else {
            if let Some(why) = scope.unresolved(&k) {
                unresolved.push((k, why));
            }
            continue;
        };
        let shown = if scope.is_secret(&k) {
            crate::redact::MASK.to_string()
        } else {
            red.mask(&crate::capture::value_text(&v))
        };
        let origin = scope.origin(&k).map(|o| o.to_string()).unwrap_or_default();
        out.push_str(&format!("{k} = {shown}  ({origin})\n"));
    }
    for (k, why) in unresolved {
        out.push_str(&format!("{k} = <unresolved: {}>\n", red.mask(&why)));
    }
    let st = runner.env_state();
    if !st.exchanges().is_empty() {
        let names: Vec<&str> = st.exchanges().keys().map(String::as_str).collect();
        out.push_str(&format!("responses: {}\n", names.join(", ")));
    }
    out
}
