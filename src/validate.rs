//! `postie validate`: every template, condition and capture checked without sending anything.
//!
//! Beyond syntax, it looks at which variables the requests use. A name that no variable,
//! environment, request or capture defines is expected from a response (automatic chaining), and
//! is listed as such — unless it is used only once and is a near miss of a name that is defined or
//! used elsewhere, which is almost always a typo and is reported as an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::collection::{Collection, LoadError, Step, near_miss};
use crate::template::Templates;

/// Names the OAuth2 engine sets itself (`login`), so a collection may use them undeclared.
const ENGINE_VARS: [&str; 5] = [
    "oauth_state",
    "code_verifier",
    "code_challenge",
    "code",
    "state",
];

/// What `validate` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Errors, each located.
    pub errors: Vec<LoadError>,
    /// Variables no definition provides, which responses are expected to set, with the first
    /// request that uses each.
    pub from_responses: BTreeMap<String, String>,
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
    let mut defined: BTreeSet<String> = ENGINE_VARS.iter().map(|s| s.to_string()).collect();
    defined.insert("env".into());
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
    for (name, req) in &c.requests {
        defined.insert(name.clone());
        defined.extend(req.capture.keys().cloned());
        for (field, src) in req.template_sources() {
            let mut path = vec!["requests".to_string(), name.clone()];
            path.extend(field);
            sources.push((path, src, false));
        }
    }
    if let Some(o) = &c.oauth2 {
        defined.extend([o.access_token.clone(), o.refresh_token.clone()]);
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
                for r in refs {
                    let root = r.split('.').next().unwrap_or(&r).to_string();
                    uses.push((path.clone(), root));
                }
            }
        }
    }
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
    report
}
