//! The interactive editor: completion, hints and the history file.

use std::path::Path;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::Session;

/// Completion and hints for the interactive editor.
pub(super) struct ReplHelper {
    commands: Vec<String>,
    requests: Vec<String>,
    flows: Vec<String>,
    envs: Vec<String>,
    vars: Vec<String>,
    mock: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &before[start..];
        let mut earlier = before[..start].split_whitespace();
        let first = earlier.next();
        let positional_given = earlier.filter(|w| !w.starts_with('-')).count();
        let flags: Vec<String> = first
            .map(|c| {
                let cmd = if self.requests.iter().any(|r| r == c) {
                    "send"
                } else {
                    c
                };
                super::COMMANDS
                    .iter()
                    .find(|(n, _, _)| *n == cmd)
                    .map(|(_, _, f)| f.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let pool: Vec<&String> = if word.starts_with('-') {
            flags.iter().collect()
        } else {
            match (first, positional_given) {
                (None, _) => self.commands.iter().chain(self.requests.iter()).collect(),
                (Some("send" | "show" | "diff"), 0) => self.requests.iter().collect(),
                (Some("flow"), 0) => self.flows.iter().collect(),
                (Some("env"), 0) => self.envs.iter().collect(),
                // Variables (tokens first for jwt) — never request names.
                (Some("jwt" | "set" | "unset"), 0) => self.vars.iter().collect(),
                (Some("help"), 0) => self.commands.iter().collect(),
                (Some("mock"), 0) => self.mock.iter().collect(),
                _ => vec![],
            }
        };
        let mut out: Vec<Pair> = pool
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair {
                display: c.clone(),
                replacement: format!("{c} "),
            })
            .collect();
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() || line.is_empty() || line.contains(' ') {
            return None;
        }
        self.commands
            .iter()
            .chain(self.requests.iter())
            .find(|c| c.starts_with(line) && c.len() > line.len())
            .map(|c| c[line.len()..].to_string())
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        // The line editor runs only on a terminal; `--color never` and NO_COLOR still hold.
        if crate::output::color_for(true) {
            std::borrow::Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            std::borrow::Cow::Borrowed(hint)
        }
    }
}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

pub(super) fn helper(s: &Session) -> ReplHelper {
    let c = &s.runner.collection;
    let mut vars = s.runner.scope().names();
    // Secret-looking names (tokens) first: they are what `jwt` decodes.
    vars.sort_by_key(|v| !crate::redact::is_secret_name(v));
    ReplHelper {
        commands: super::COMMANDS
            .iter()
            .map(|(n, _, _)| n.to_string())
            .collect(),
        requests: c.requests.keys().cloned().collect(),
        flows: c.flows.keys().cloned().collect(),
        envs: c.environments.keys().cloned().collect(),
        vars,
        mock: [
            "start", "stop", "status", "clock", "journal", "reset", "fault", "tokens",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }
}

pub(super) fn append_history(path: &Path, line: &str) {
    use std::io::Write as _;
    let _ = crate::state::ensure_state_dir(path.parent().unwrap_or(Path::new(".")));
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    if let Ok(mut f) = opts.open(path) {
        let _ = writeln!(f, "{line}");
    }
}
