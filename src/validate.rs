//! `postie validate`: every template, condition and capture checked without sending anything.

use crate::collection::{Collection, LoadError, Step, VarDef};
use crate::template::{Templates, sole_expression};

/// Checks all templates and conditions; returns every problem found, each located.
pub fn validate(c: &Collection, t: &Templates) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let mut check = |path: Vec<String>, src: &str, is_condition: bool| {
        let res = if is_condition {
            t.check_condition(src)
        } else if let Some(expr) = sole_expression(src) {
            t.check_condition(expr)
        } else {
            t.check(src)
        };
        if let Err(e) = res {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            errors.push(c.error_at(
                &refs,
                format!("template error in `{}`: {e}", path.join(".")),
            ));
        }
    };
    let mut vars: Vec<(Vec<String>, &VarDef)> = c
        .variables
        .iter()
        .map(|(k, v)| (vec!["variables".into(), k.clone()], v))
        .collect();
    for (env, map) in &c.environments {
        vars.extend(
            map.iter()
                .map(|(k, v)| (vec!["environments".into(), env.clone(), k.clone()], v)),
        );
    }
    for (path, def) in vars {
        let mut strings = Vec::new();
        crate::capture::json_strings(def.value(), &mut strings);
        for s in strings {
            check(path.clone(), &s, false);
        }
    }
    for (name, req) in &c.requests {
        let base = |field: &str| vec!["requests".to_string(), name.clone(), field.to_string()];
        check(base("url"), &req.url, false);
        for (k, v) in &req.query {
            check(
                vec!["requests".into(), name.clone(), "query".into(), k.clone()],
                &v.0,
                false,
            );
        }
        for (k, v) in &req.headers {
            check(
                vec!["requests".into(), name.clone(), "headers".into(), k.clone()],
                &v.0,
                false,
            );
        }
        if let Some(f) = &req.form {
            for (k, v) in f {
                check(
                    vec!["requests".into(), name.clone(), "form".into(), k.clone()],
                    &v.0,
                    false,
                );
            }
        }
        if let Some(text) = &req.text {
            check(base("text"), text, false);
        }
        if let Some(j) = &req.json {
            let mut strings = Vec::new();
            crate::capture::json_strings(j, &mut strings);
            for s in strings {
                check(base("json"), &s, false);
            }
        }
        match &req.auth {
            Some(crate::collection::Auth::Basic { user, password }) => {
                check(base("auth"), user, false);
                check(base("auth"), password, false);
            }
            Some(crate::collection::Auth::Bearer(tok)) => check(base("auth"), tok, false),
            None => {}
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
                    check(at("when"), w, true);
                }
                if let Some(u) = &d.until {
                    check(at("until"), u, true);
                }
            }
        }
    }
    errors
}
