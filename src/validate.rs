//! `postie validate`: every template, condition and capture checked without sending anything.
//!
//! Beyond syntax, it looks at which variables the requests use. A name that no variable,
//! environment, request or capture defines is expected from a response (automatic chaining), and
//! is listed as such — unless it is used only once and is a near miss of a name that is defined or
//! used elsewhere, which is almost always a typo and is reported as an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::collection::{Collection, LoadError, Step, near_miss};
use crate::template::Templates;

/// Names that usually mean something different in each response (`id`, `name`, ...): when more
/// than one earlier step may set one, `validate` warns that a request using it may get the wrong
/// one.
pub const GENERIC_NAMES: &[&str] = &[
    "id",
    "name",
    "status",
    "state",
    "type",
    "code",
    "message",
    "value",
    "key",
    "title",
    "data",
    "result",
    "url",
    "created_at",
    "updated_at",
    "count",
    "total",
];

/// What `validate` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Errors, each located.
    pub errors: Vec<LoadError>,
    /// Warnings, each located: things that work but may not do what the author meant.
    pub warnings: Vec<LoadError>,
    /// Variables no definition provides, which responses are expected to set, with the first
    /// request that uses each.
    pub from_responses: BTreeMap<String, String>,
    /// Every variable use: where (a key path) and the root name.
    pub uses: Vec<(Vec<String>, String)>,
}

/// Checks all templates and conditions; returns every problem found, each located.
pub fn validate(c: &Collection, t: &Templates) -> Vec<LoadError> {
    analyse(c, t).errors
}

/// The full analysis: errors plus the variables expected from responses.
pub fn analyse(c: &Collection, t: &Templates) -> Report {
    let mut report = Report::default();
    let located = |path: &[String], msg: String| {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        c.error_at(&refs, msg)
    };
    // (where, source, is a bare condition)
    let mut sources: Vec<(Vec<String>, &str, bool)> = Vec::new();
    let mut defined: BTreeSet<String> = BTreeSet::new();
    defined.insert("env".into());
    if let Some(o) = &c.oauth2 {
        // Set by `login` (one-time values) and by the token responses.
        defined.extend([
            o.state.clone(),
            o.code.clone(),
            o.access_token.clone(),
            o.refresh_token.clone(),
        ]);
        if o.pkce {
            defined.extend(["code_verifier".to_string(), "code_challenge".to_string()]);
        }
    }
    for (k, v) in &c.variables {
        defined.insert(k.clone());
        let mut strings = Vec::new();
        crate::capture::json_str_refs(v.value(), &mut strings);
        for s in strings {
            sources.push((vec!["variables".into(), k.clone()], s, false));
        }
    }
    for (env, map) in &c.environments {
        for (k, v) in map {
            defined.insert(k.clone());
            let mut strings = Vec::new();
            crate::capture::json_str_refs(v.value(), &mut strings);
            for s in strings {
                sources.push((
                    vec!["environments".into(), env.clone(), k.clone()],
                    s,
                    false,
                ));
            }
        }
    }
    // Scripts: their syntax, and the names they set (defined at run time).
    let mut scripts: Vec<(Vec<String>, &str)> = Vec::new();
    if let Some(s) = &c.script {
        for (phase, code) in [("pre", &s.pre), ("post", &s.post)] {
            if let Some(code) = code {
                scripts.push((vec!["script".into(), phase.into()], code));
            }
        }
    }
    for (name, f) in &c.folders {
        if let Some(s) = &f.script {
            for (phase, code) in [("pre", &s.pre), ("post", &s.post)] {
                if let Some(code) = code {
                    scripts.push((
                        vec![
                            "folders".into(),
                            name.clone(),
                            "script".into(),
                            phase.into(),
                        ],
                        code,
                    ));
                }
            }
        }
    }
    for (name, r) in &c.requests {
        if let Some(s) = &r.script {
            for (phase, code) in [("pre", &s.pre), ("post", &s.post)] {
                if let Some(code) = code {
                    scripts.push((
                        vec![
                            "requests".into(),
                            name.clone(),
                            "script".into(),
                            phase.into(),
                        ],
                        code,
                    ));
                }
            }
        }
    }
    for (path, code) in &scripts {
        defined.extend(crate::script::names_set(code));
        if let Err(e) = crate::script::check_syntax(code) {
            let msg = format!(
                "script{}: {} — fix the JavaScript",
                e.line().map(|l| format!(" line {l}")).unwrap_or_default(),
                e.message
            );
            let mut err = located(path, msg.clone());
            // A block scalar (`post: |`) starts on the next line: point at the script's line.
            let key_line = c
                .source
                .lines()
                .nth(err.line.saturating_sub(1))
                .unwrap_or("");
            if let Some(n) = e.line()
                && err.line > 0
                && key_line.trim_end().ends_with(['|', '>', '-', '+'])
            {
                let line = err.line + n as usize;
                let text = c.source.lines().nth(line - 1).unwrap_or("");
                let col = text.len() - text.trim_start().len() + 1;
                err = LoadError::at(&c.path, &c.source, line, col, msg);
            }
            report.errors.push(err);
        }
    }
    for (name, req) in &c.requests {
        defined.insert(name.clone());
        defined.extend(req.capture.keys().cloned());
        for (field, src) in req.template_sources() {
            let mut path = vec!["requests".to_string(), name.clone()];
            path.extend(field);
            sources.push((path, src, false));
        }
    }
    for (fname, flow) in &c.flows {
        for (i, step) in flow.steps.iter().enumerate() {
            if let Step::Detailed(d) = step {
                let at = |k: &str| {
                    vec![
                        "flows".to_string(),
                        fname.clone(),
                        "steps".into(),
                        i.to_string(),
                        k.to_string(),
                    ]
                };
                if let Some(w) = &d.when {
                    sources.push((at("when"), w.as_str(), true));
                }
                if let Some(u) = &d.until {
                    sources.push((at("until"), u.as_str(), true));
                }
            }
        }
    }
    // Syntax first; references only from what parses.
    let mut uses: Vec<(Vec<String>, String)> = Vec::new();
    // Collections repeat the same strings (`<<access_token>>`, base URLs): analyse each once.
    let mut seen: std::collections::HashMap<
        (&str, bool),
        Result<BTreeSet<String>, crate::template::TemplateError>,
    > = std::collections::HashMap::new();
    for (path, src, is_condition) in &sources {
        let analysed = seen
            .entry((*src, *is_condition))
            .or_insert_with(|| t.analyse(src, *is_condition))
            .clone();
        match analysed {
            Err(e) => report.errors.push(located(
                path,
                format!("template error in `{}`: {e}", path.join(".")),
            )),
            Ok(refs) => {
                for (kind, name) in t.unknown_callables(src, *is_condition) {
                    report.errors.push(located(
                        path,
                        format!(
                            "unknown {kind} `{name}` in `{}`{}",
                            path.join("."),
                            crate::collection::suggest(
                                &name,
                                crate::template::KNOWN_CALLABLES
                                    .iter()
                                    .map(|s| s.to_string())
                                    .collect::<Vec<_>>()
                                    .iter()
                            )
                        ),
                    ));
                }
                let calls: BTreeSet<String> = crate::template::called_names(src, *is_condition)
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect();
                for r in refs {
                    let root = crate::scope::root_of(&r).to_string();
                    if !calls.contains(&root) {
                        uses.push((path.clone(), root));
                    }
                }
            }
        }
    }
    check_urls(c, &mut report);
    if let Some(o) = &c.oauth2 {
        check_oauth2(c, t, o, &mut report);
    }
    generic_name_warnings(c, t, &mut report);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, root) in &uses {
        *counts.entry(root.as_str()).or_default() += 1;
    }
    // A typo is a name used once that is a near miss of a name defined, or used more than once.
    let mut candidates: BTreeSet<String> = defined.clone();
    candidates.extend(
        counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, _)| n.to_string()),
    );
    for (path, root) in &uses {
        if defined.contains(root) {
            continue;
        }
        let typo = (counts[root.as_str()] == 1)
            .then(|| near_miss(root, candidates.iter()))
            .flatten();
        match typo {
            Some(meant) => report.errors.push(located(
                path,
                format!("`<<{root}>>` is defined nowhere, set by no capture and used only here; did you mean `{meant}`?"),
            )),
            None if path.first().map(String::as_str) == Some("requests") => {
                report.from_responses.entry(root.clone()).or_insert_with(|| path[1].clone());
            }
            None => {}
        }
    }
    report.uses = uses;
    report
}

/// Literal URLs must be http(s) URLs (a URL that starts with a template is checked before
/// sending, where it is known).
fn check_urls(c: &Collection, report: &mut Report) {
    for (name, req) in &c.requests {
        let literal = !crate::template::is_template(&req.url);
        let prefix = req.url.split("<<").next().unwrap_or("");
        let problem = if literal {
            match url::Url::parse(&req.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => None,
                Ok(u) => Some(format!(
                    "`{}` uses `{}:`; postie sends http and https only",
                    req.url,
                    u.scheme()
                )),
                Err(e) => Some(format!(
                    "`{}` is not a URL ({e}); write e.g. `https://api.example.com/v1/...` or `<<base_url>>/...`",
                    req.url
                )),
            }
        } else if !prefix.is_empty()
            && prefix.contains(':')
            && !(prefix.starts_with("http://") || prefix.starts_with("https://"))
        {
            Some(format!(
                "`{}` does not start with http:// or https://",
                req.url
            ))
        } else {
            None
        };
        if let Some(msg) = problem {
            report
                .errors
                .push(c.error_at(&["requests", name, "url"], msg));
        }
    }
}

/// The `oauth2:` block names requests and variables; the requests must carry what it says.
fn check_oauth2(
    c: &Collection,
    t: &Templates,
    o: &crate::collection::OAuth2Config,
    report: &mut Report,
) {
    let uses = |request: &str, var: &str| {
        c.requests.get(request).is_some_and(|r| {
            r.template_sources()
                .iter()
                .flat_map(|(_, s)| t.references(s))
                .any(|p| crate::scope::root_of(&p) == var)
        })
    };
    let mut need = |request: &str, var: &str, why: &str| {
        if c.requests.contains_key(request) && !uses(request, var) {
            report.errors.push(c.error_at(
                &["requests", request],
                format!("request `{request}` never uses `<<{var}>>`, which {why}"),
            ));
        }
    };
    if o.pkce {
        need(
            &o.authorize,
            "code_challenge",
            "`pkce: true` needs in the authorize request (add `code_challenge: <<code_challenge>>` and `code_challenge_method: S256` to its query)",
        );
        need(
            &o.token,
            "code_verifier",
            "`pkce: true` needs in the token request (add `code_verifier: <<code_verifier>>` to its form)",
        );
    } else {
        need(
            &o.authorize,
            &o.state,
            &format!(
                "`login` sets to a fresh random value and checks on the way back (add `state: <<{}>>` to its query, name another variable with `oauth2.state`, or turn on `pkce: true`)",
                o.state
            ),
        );
    }
    need(
        &o.token,
        &o.code,
        &format!(
            "`login` sets to the authorization code (add `code: <<{}>>` to its form, or name the variable with `oauth2.code`)",
            o.code
        ),
    );
    if let Some(r) = &o.refresh {
        need(r, &o.refresh_token, "holds the refresh token");
    }
    if o.client_auth.is_some() {
        for r in [Some(&o.token), o.refresh.as_ref()].into_iter().flatten() {
            let Some(req) = c.requests.get(r) else {
                continue;
            };
            let form_secret = req
                .form
                .as_ref()
                .is_some_and(|f| f.contains_key("client_secret"));
            if req.auth.is_some() || form_secret {
                report.errors.push(c.error_at(
                    &["requests", r],
                    format!("request `{r}` authenticates the client itself, but `oauth2.client_auth` makes postie do it; remove its `auth:` and `client_secret`"),
                ));
            }
        }
    }
}

/// In each flow, a request that uses a generic name (`<<id>>`) which several earlier steps may
/// set (automatic chaining binds every top-level field) may get another step's value.
fn generic_name_warnings(c: &Collection, t: &Templates, report: &mut Report) {
    let declared =
        |n: &str| c.variables.contains_key(n) || c.environments.values().any(|e| e.contains_key(n));
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (fname, flow) in &c.flows {
        for (i, step) in flow.steps.iter().enumerate() {
            let Some(req) = c.requests.get(step.request()) else {
                continue;
            };
            for (field, src) in req.template_sources() {
                for path in t.references(src) {
                    let root = crate::scope::root_of(&path);
                    if !GENERIC_NAMES.contains(&root) || declared(root) {
                        continue;
                    }
                    // Only now (a generic name is used): the earlier steps that may set it.
                    let earlier: Vec<&str> = flow.steps[..i]
                        .iter()
                        .map(|s| s.request())
                        .filter(|r| *r != step.request())
                        .collect();
                    // An explicit capture of that name decides it.
                    let captured: Vec<&&str> = earlier
                        .iter()
                        .filter(|r| {
                            c.requests
                                .get(**r)
                                .is_some_and(|q| q.capture.contains_key(root))
                        })
                        .collect();
                    if !captured.is_empty() {
                        continue;
                    }
                    let mut producers: Vec<&str> = earlier.clone();
                    producers.dedup();
                    if producers.len() < 2
                        || !seen.insert((step.request().to_string(), root.to_string()))
                    {
                        continue;
                    }
                    let mut at: Vec<String> = vec!["requests".into(), step.request().into()];
                    at.extend(field.iter().cloned());
                    let at: Vec<&str> = at.iter().map(String::as_str).collect();
                    let first = producers[0];
                    report.warnings.push(c.error_at(
                        &at,
                        format!(
                            "`<<{root}>>` in `{}` (flow `{fname}`) is a generic name that any of the {} earlier steps ({}) may set, the last one to answer winning; write `<<{first}.body.{root}>>` to name the step, or capture it under its own name",
                            step.request(),
                            producers.len(),
                            producers.join(", ")
                        ),
                    ));
                }
            }
        }
    }
}
