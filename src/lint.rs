//! `postie lint`: what must not be committed, and what is probably a mistake, in collections
//! shared in git. Errors (exit 1): a credential in the file (a JWT, a bearer or basic value, a
//! known key prefix, a private key block, a random-looking literal under a secret-looking name),
//! a secret variable with a literal value, the state directory or `.env` not ignored by git.
//! Warnings: unused variables, requests in no flow, a response-only `<<var>>` in a flow's first
//! step, hand-written PUT bodies, plain http to a non-loopback host.
//!
//! A line carrying `postie-lint: allow RULE` in a comment (or the line before it) silences that
//! rule there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::collection::{Collection, LoadError, Step, VarDef};
use crate::template::{Templates, is_template};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fails the lint (exit 1).
    Error,
    /// Reported; the lint passes.
    Warning,
}

/// One finding, located.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The collection file.
    pub file: PathBuf,
    /// 1-based line (0 when the finding is about the file as a whole).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Error or warning.
    pub level: Level,
    /// The rule's name (what `postie-lint: allow` takes).
    pub rule: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `file:line:col: level: message [rule]`
    Text,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::message`).
    Github,
}

/// The rules, with what each finds (for `--help` and the docs).
pub const RULES: &[(&str, &str)] = &[
    (
        "credential",
        "a JWT, bearer/basic value, known key prefix or private key in the file",
    ),
    (
        "random-literal",
        "a random-looking literal under a secret-looking name",
    ),
    (
        "literal-secret",
        "a `secret: true` variable with a literal value",
    ),
    (
        "unignored",
        "`.postie/` or `.env` next to the collection not ignored by git",
    ),
    ("unused-variable", "a variable nothing uses"),
    ("no-flow", "a request no flow runs"),
    (
        "response-first",
        "a `<<var>>` only a response provides, in a flow's first step",
    ),
    (
        "put-body",
        "a PUT with a hand-written body (fields left out may be nulled)",
    ),
    (
        "plain-http",
        "an http:// URL to a host that is not loopback",
    ),
];

struct Pattern {
    what: &'static str,
    re: Regex,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |what, re: &str| Pattern {
        what,
        re: Regex::new(re).expect("static pattern"),
    };
    vec![
        p(
            "a JWT",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ),
        p(
            "a private key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        ),
        p("a bearer credential", r"\bBearer\s+[A-Za-z0-9._~+/=-]{12,}"),
        p("basic credentials", r"\bBasic\s+[A-Za-z0-9+/]{12,}={0,2}"),
        p("a Stripe key", r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"),
        p("a GitHub token", r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
        p("a GitHub token", r"\bgithub_pat_[0-9A-Za-z_]{40,}"),
        p("a Slack token", r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
        p("an AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        p("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        p("a GitLab token", r"\bglpat-[0-9A-Za-z_-]{20,}"),
        p(
            "a SendGrid key",
            r"\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}",
        ),
        p("an npm token", r"\bnpm_[0-9A-Za-z]{36}\b"),
        p("a PyPI token", r"\bpypi-[0-9A-Za-z_-]{50,}"),
    ]
});

static ALLOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"postie-lint:\s*allow\s+([a-z-]+(?:\s*,\s*[a-z-]+)*)").expect("static pattern")
});

/// Lints one loaded collection.
pub fn lint(c: &Collection, t: &Templates) -> Vec<Finding> {
    let mut out = Vec::new();
    credentials(c, &mut out);
    random_literals(c, &mut out);
    literal_secrets(c, &mut out);
    unignored(c, &mut out);
    usage(c, t, &mut out);
    put_bodies(c, &mut out);
    plain_http(c, &mut out);
    // One finding per line and rule; an error on a line hides the same line's other errors.
    out.sort_by_key(|f| (f.line, f.level, f.column));
    let mut seen_error_lines = BTreeSet::new();
    out.retain(|f| {
        if f.level == Level::Error && f.line > 0 {
            seen_error_lines.insert(f.line)
        } else {
            true
        }
    });
    let lines: Vec<&str> = c.source.lines().collect();
    out.retain(|f| !allowed(&lines, f.line, f.rule));
    out
}

/// Whether `postie-lint: allow RULE` covers a line (on it or on the line before).
fn allowed(lines: &[&str], line: usize, rule: &str) -> bool {
    if line == 0 {
        return false;
    }
    let covers = |l: Option<&&str>| {
        l.and_then(|text| ALLOW.captures(text)).is_some_and(|cap| {
            cap[1]
                .split(',')
                .any(|r| r.trim() == rule || r.trim() == "all")
        })
    };
    covers(lines.get(line - 1)) || (line >= 2 && covers(lines.get(line - 2)))
}

fn finding(
    c: &Collection,
    at: Option<(usize, usize)>,
    level: Level,
    rule: &'static str,
    message: String,
) -> Finding {
    let (line, column) = at.unwrap_or((0, 0));
    Finding {
        file: c.path.clone(),
        line,
        column,
        level,
        rule,
        message,
    }
}

fn at_path(c: &Collection, path: &[&str]) -> Option<(usize, usize)> {
    crate::collection::locate(&c.source, path)
}

/// Credentials anywhere in the text, comments included.
fn credentials(c: &Collection, out: &mut Vec<Finding>) {
    for (i, line) in c.source.lines().enumerate() {
        for p in PATTERNS.iter() {
            if let Some(m) = p.re.find(line) {
                // `Bearer <<token>>`-style templates never match; a documented placeholder
                // (`Bearer YOUR_TOKEN_HERE`) has no digits.
                let text = m.as_str();
                if p.what.contains("bearer") || p.what.contains("basic") {
                    let token = text.split_whitespace().nth(1).unwrap_or("");
                    if !looks_random(token) {
                        continue;
                    }
                }
                out.push(finding(
                    c,
                    Some((i + 1, line[..m.start()].chars().count() + 1)),
                    Level::Error,
                    "credential",
                    format!(
                        "{} is written in the file; take it out (and revoke it: it is in git history once committed) and read it from the environment, e.g. `<<env.API_TOKEN>>` with API_TOKEN in `.env`",
                        p.what
                    ),
                ));
                break;
            }
        }
    }
}

/// Whether a value looks like a generated credential rather than a placeholder or a word.
pub fn looks_random(s: &str) -> bool {
    if s.len() < 16 || s.contains(char::is_whitespace) {
        return false;
    }
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    let has_alpha = s.chars().any(|c| c.is_ascii_alphabetic());
    has_digit && has_alpha && entropy(s) >= 3.5
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let n = s.chars().count() as f64;
    for ch in s.chars() {
        *counts.entry(ch).or_insert(0usize) += 1;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Random-looking literals under secret-looking keys, anywhere in the document.
fn random_literals(c: &Collection, out: &mut Vec<Finding>) {
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&c.source) else {
        return;
    };
    let mut path = Vec::new();
    walk(c, &doc, &mut path, out);
}

fn walk(c: &Collection, v: &serde_yaml::Value, path: &mut Vec<String>, out: &mut Vec<Finding>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, x) in m {
                let Some(key) = k.as_str() else { continue };
                path.push(key.to_string());
                // `{value: ..., secret: true}`: the value belongs to the variable's name.
                let name = if key == "value" && path.len() >= 2 {
                    path[path.len() - 2].clone()
                } else {
                    key.to_string()
                };
                if let serde_yaml::Value::String(s) = x
                    && crate::redact::is_secret_name(&name)
                    && !is_template(s)
                    && looks_random(s)
                {
                    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                    out.push(finding(
                        c,
                        at_path(c, &refs),
                        Level::Error,
                        "random-literal",
                        format!(
                            "`{}` holds what looks like a real credential ({} random-looking characters); read it from the environment instead (`<<env.{}>>`, set in `.env`)",
                            path.join("."),
                            s.len(),
                            name.to_ascii_uppercase().replace(['-', '.'], "_")
                        ),
                    ));
                }
                walk(c, x, path, out);
                path.pop();
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(c, x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn variables(c: &Collection) -> Vec<(Vec<String>, &String, &VarDef)> {
    let mut out: Vec<(Vec<String>, &String, &VarDef)> = c
        .variables
        .iter()
        .map(|(k, v)| (vec!["variables".to_string(), k.clone()], k, v))
        .collect();
    for (e, m) in &c.environments {
        for (k, v) in m {
            out.push((vec!["environments".into(), e.clone(), k.clone()], k, v));
        }
    }
    out
}

/// `secret: true` on a literal: the secret is in the file.
fn literal_secrets(c: &Collection, out: &mut Vec<Finding>) {
    for (path, name, def) in variables(c) {
        if !def.declared_secret() {
            continue;
        }
        let mut strs = Vec::new();
        crate::capture::json_str_refs(def.value(), &mut strs);
        let templated = strs.iter().any(|s| is_template(s));
        if templated || def.value().is_null() {
            continue;
        }
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(finding(
            c,
            at_path(c, &refs),
            Level::Error,
            "literal-secret",
            format!(
                "secret variable `{name}` has its value written in the file; write `{name}: {{value: \"<<env.{}>>\", secret: true}}` and put the value in `.env` (ignored by git) or the environment",
                name.to_ascii_uppercase()
            ),
        ));
    }
}

/// `.postie/` and `.env` beside the collection must be ignored by git (when it is a git
/// work tree).
fn unignored(c: &Collection, out: &mut Vec<Finding>) {
    let dir = c.dir();
    for (rel, what) in [
        (".postie/state.json", "`.postie/` (tokens and responses)"),
        (".env", "`.env` (secrets)"),
    ] {
        let exists = dir.join(rel.split('/').next().unwrap_or(rel)).exists();
        if !exists {
            continue;
        }
        match git_ignores(&dir, rel) {
            Some(true) => {}
            Some(false) => {
                let shown = rel.split('/').next().unwrap_or(rel);
                out.push(finding(
                    c,
                    None,
                    Level::Error,
                    "unignored",
                    format!(
                        "{what} next to the collection is not ignored by git; add `{shown}` to .gitignore{}",
                        if git_tracks(&dir, shown) {
                            format!(" and untrack it: `git rm -r --cached {shown}`")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            None => {} // not a git work tree, or git is missing: nothing to commit by mistake
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    crate::util::git(dir, args).ok()
}

fn git_ignores(dir: &Path, rel: &str) -> Option<bool> {
    let o = git(dir, &["check-ignore", "-q", "--", rel])?;
    match o.status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

fn git_tracks(dir: &Path, rel: &str) -> bool {
    git(dir, &["ls-files", "--", rel]).is_some_and(|o| !o.stdout.is_empty())
}

/// Unused variables, requests in no flow, response-only variables in a flow's first step.
fn usage(c: &Collection, t: &Templates, out: &mut Vec<Finding>) {
    let report = crate::validate::analyse(c, t);
    let used: BTreeSet<&str> = report.uses.iter().map(|(_, r)| r.as_str()).collect();
    let scripts: String = c.script_texts().join("\n");
    let oauth_names: BTreeSet<&str> = c
        .oauth2
        .as_ref()
        .map(|o| o.named_variables())
        .unwrap_or_default();
    let mut reported = BTreeSet::new();
    for (path, name, _) in variables(c) {
        if used.contains(name.as_str())
            || oauth_names.contains(name.as_str())
            || used_by_scripts(&scripts, name)
            || !reported.insert(name.clone())
        {
            continue;
        }
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(finding(
            c,
            at_path(c, &refs),
            Level::Warning,
            "unused-variable",
            format!("variable `{name}` is used by no request, variable, flow or script; remove it, or use it as `<<{name}>>`"),
        ));
    }
    if !c.flows.is_empty() {
        let in_flows: BTreeSet<&str> = c
            .flows
            .values()
            .flat_map(|f| f.steps.iter().map(Step::request))
            .collect();
        for name in c.requests.keys() {
            let oauth = c.oauth2.as_ref().is_some_and(|o| {
                o.authorize == *name
                    || o.token == *name
                    || [&o.refresh, &o.device_authorize, &o.device_token]
                        .iter()
                        .any(|r| r.as_deref() == Some(name.as_str()))
            });
            if !in_flows.contains(name.as_str()) && !oauth {
                out.push(finding(
                    c,
                    at_path(c, &["requests", name]),
                    Level::Warning,
                    "no-flow",
                    format!("request `{name}` is in no flow; add it to one, or run it alone with `postie send`"),
                ));
            }
        }
    }
    for (fname, flow) in &c.flows {
        let Some(first) = flow.steps.first() else {
            continue;
        };
        let req = first.request();
        let needs: BTreeSet<&str> = report
            .uses
            .iter()
            .filter(|(p, _)| p.len() > 1 && p[0] == "requests" && p[1] == req)
            .map(|(_, r)| r.as_str())
            .filter(|r| report.from_responses.contains_key(*r))
            .collect();
        for var in needs {
            out.push(finding(
                c,
                at_path(c, &["flows", fname, "steps", "0"]),
                Level::Warning,
                "response-first",
                format!("flow `{fname}` starts with `{req}`, which uses `<<{var}>>`; only a response provides it and no step runs before — define it, or put the step that returns it first"),
            ));
        }
    }
}

/// Whether scripts name a variable: as a string (`pm.environment.get("name")`), or as
/// `{{name}}` in a string they build — not as any substring (`a` is in every script).
fn used_by_scripts(scripts: &str, name: &str) -> bool {
    ["\"", "'", "`"]
        .iter()
        .any(|q| scripts.contains(&format!("{q}{name}{q}")))
        || scripts.contains(&format!("{{{{{name}}}}}"))
}

/// A PUT whose JSON body is written out field by field: an API that replaces the resource
/// (Constant Contact's `PUT /contacts/{id}`) nulls every field it leaves out.
fn put_bodies(c: &Collection, out: &mut Vec<Finding>) {
    for (name, req) in &c.requests {
        if !req.method.eq_ignore_ascii_case("PUT") {
            continue;
        }
        if let Some(Value::Object(_)) = &req.json {
            out.push(finding(
                c,
                at_path(c, &["requests", name, "json"]),
                Level::Warning,
                "put-body",
                format!("PUT `{name}` sends a hand-written body; fields it leaves out are nulled where a PUT replaces the resource — send the whole resource, e.g. `json: \"<<merge(get_it.body, {{...}})>>\"`"),
            ));
        }
    }
}

fn loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.ends_with(".localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `http://` to a host that is not this machine: requests and tokens cross the network in clear.
fn plain_http(c: &Collection, out: &mut Vec<Finding>) {
    let mut check = |path: Vec<String>, text: &str| {
        // The literal start of the URL (before any template) names the scheme and host.
        let head = text.split("<<").next().unwrap_or("");
        if !head.starts_with("http://") {
            return;
        }
        let Ok(u) = url::Url::parse(head) else {
            return;
        };
        let Some(host) = u.host_str() else { return };
        if loopback(host) {
            return;
        }
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(finding(
            c,
            at_path(c, &refs),
            Level::Warning,
            "plain-http",
            // The host, not the whole URL: a query could carry a credential, and findings go
            // into CI logs.
            format!(
                "plain http to {host}; use https (tokens and bodies cross the network in clear)"
            ),
        ));
    };
    for (name, req) in &c.requests {
        check(
            vec!["requests".into(), name.clone(), "url".into()],
            &req.url,
        );
    }
    for (path, _, def) in variables(c) {
        if let Some(s) = def.value().as_str() {
            let mut p = path.clone();
            if matches!(def, VarDef::Detailed(_)) {
                p.push("value".into());
            }
            check(p, s);
        }
    }
}

/// Renders findings in a format.
pub fn render(findings: &[Finding], format: Format) -> String {
    let mut out = String::new();
    for f in findings {
        let file = f.file.display();
        match format {
            Format::Text => {
                let level = match f.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                };
                if f.line > 0 {
                    out.push_str(&format!("{file}:{}:{}: ", f.line, f.column));
                } else {
                    out.push_str(&format!("{file}: "));
                }
                out.push_str(&format!("{level}: {} [{}]\n", f.message, f.rule));
            }
            Format::Github => {
                let level = match f.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                };
                // Workflow commands end at a newline; `%`, `\r`, `\n` are escaped, and `,`/`:`
                // in properties.
                let esc = |s: &str| {
                    s.replace('%', "%25")
                        .replace('\r', "%0D")
                        .replace('\n', "%0A")
                };
                let prop = |s: &str| esc(s).replace(':', "%3A").replace(',', "%2C");
                let loc = if f.line > 0 {
                    format!(",line={},col={}", f.line, f.column)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "::{level} file={}{loc},title=postie lint: {}::{}\n",
                    prop(&file.to_string()),
                    f.rule,
                    esc(&f.message)
                ));
            }
        }
    }
    out
}

/// A load error as a lint finding (the file cannot be linted further).
pub fn from_load_error(e: &LoadError) -> Finding {
    Finding {
        file: e.file.clone(),
        line: e.line,
        column: e.column,
        level: Level::Error,
        rule: "load",
        message: e.message.clone(),
    }
}

/// The staged text of a file (`git show :./FILE`), for `--staged`.
pub fn staged_text(path: &Path) -> Result<String, String> {
    let dir = crate::util::dir_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file", path.display()))?;
    let o = git(&dir, &["show", &format!(":./{}", name.to_string_lossy())])
        .ok_or_else(|| "cannot run git".to_string())?;
    if !o.status.success() {
        return Err(format!(
            "{}: not staged ({})",
            path.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    String::from_utf8(o.stdout)
        .map_err(|_| format!("{}: the staged file is not UTF-8", path.display()))
}

/// The staged YAML files that are postie collections (a top-level `requests:` key), as paths
/// relative to the current directory.
pub fn staged_collections() -> Result<Vec<PathBuf>, String> {
    let o = git(
        Path::new("."),
        &[
            "diff",
            "--cached",
            "--name-only",
            "--diff-filter=ACMR",
            "--relative",
            "-z",
        ],
    )
    .ok_or_else(|| "cannot run git".to_string())?;
    if !o.status.success() {
        return Err(format!(
            "git diff --cached failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let mut out = Vec::new();
    for name in o.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = PathBuf::from(&name);
        if let Ok(text) = staged_text(&path)
            && text.lines().any(|l| l.starts_with("requests:"))
        {
            out.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_use_a_variable_by_its_quoted_name() {
        let js = "pm.environment.get('token'); const u = `{{base}}/x`; let a = 1;";
        assert!(used_by_scripts(js, "token"));
        assert!(used_by_scripts(js, "base"));
        assert!(!used_by_scripts(js, "a"));
        assert!(!used_by_scripts(js, "oken"));
    }

    #[test]
    fn randomness_tells_keys_from_placeholders() {
        assert!(looks_random("k-live-9f8e7d6c5b4a3f2e"));
        assert!(looks_random("mock-secret-Zk8xQ2vN7pLr4tYw"));
        assert!(!looks_random("your-client-secret-here"));
        assert!(!looks_random("changeme"));
        assert!(!looks_random("aaaaaaaaaaaaaaaa1"));
    }
}
