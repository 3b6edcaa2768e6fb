//! Running a request's scripts (see [`crate::script`]): what they see is built from the scope,
//! what they did flows back into variables, assertions, console lines and the flow's next step.

use serde_json::Value;

use super::{Runner, StepResult};
use crate::assert::AssertResult;
use crate::chain::Binding;
use crate::exchange::{Exchange, Rendered};
use crate::script::{self, Header, Input, Layers, Output, RequestView, ResponseView};

/// Which side of the request the scripts run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the request is rendered and sent (`script.pre`).
    Pre,
    /// After the response (`script.post`).
    Post,
}

/// What a phase's scripts did, ready to merge into the step's result.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// The sandbox's output.
    pub output: Output,
    /// Variables the scripts set (for the step line).
    pub set: Vec<Binding>,
}

impl Ran {
    /// Merges tests, console lines, variables set and script errors into a step's result;
    /// returns the problems (failed tests, script errors) that fail the step.
    pub fn merge_into(self, result: &mut StepResult) -> Vec<String> {
        let mut problems = Vec::new();
        for t in &self.output.tests {
            if !t.passed {
                problems.push(format!(
                    "test \"{}\" failed: {}",
                    t.name,
                    t.error.as_deref().unwrap_or("failed")
                ));
            }
        }
        problems.extend(self.output.errors.iter().map(|e| e.message.clone()));
        result
            .asserts
            .extend(self.output.tests.into_iter().map(|t| AssertResult {
                description: t.name,
                passed: t.passed,
                actual: t.error,
                skipped: t.skipped,
                script: true,
            }));
        result.console.extend(self.output.console);
        for b in self.set {
            result.set.retain(|x| x.name != b.name);
            result.set.push(b);
        }
        if self.output.next.is_some() {
            result.next = self.output.next;
        }
        problems
    }
}

impl Runner {
    /// Runs the request's scripts for a phase, when it has any, and applies their variable
    /// changes. `rendered` and `exchange` are what was sent and received (post phase).
    pub fn run_scripts(
        &mut self,
        name: &str,
        phase: Phase,
        rendered: Option<&Rendered>,
        exchange: Option<&Exchange>,
    ) -> Option<Ran> {
        let post = phase == Phase::Post;
        let sources = self.collection.scripts_for(name, post);
        if sources.is_empty() {
            return None;
        }
        let layers = self.scope().script_layers();
        let input = Input {
            event: if post { "test" } else { "prerequest" },
            environment_name: self.inputs.env.clone(),
            iteration: self.iteration.0,
            iteration_count: self.iteration.1,
            vars: layers,
            request: Some(self.request_view(name, rendered)),
            response: exchange.map(|ex| {
                let mut view = response_view(ex);
                view.cookies = self
                    .sender
                    .cookies_for(&ex.request.url)
                    .into_iter()
                    .map(|(key, value)| Header { key, value })
                    .collect();
                view
            }),
        };
        let output = script::run(&input, &sources, &self.script_limits);
        drop(sources);
        let set = self.apply_ops(name, &output, &input.vars);
        Some(Ran { output, set })
    }

    fn request_view(&self, name: &str, rendered: Option<&Rendered>) -> RequestView {
        let req = self.collection.requests.get(name);
        let title = req
            .and_then(|r| r.title.clone())
            .unwrap_or_else(|| name.to_string());
        match rendered {
            Some(r) => RequestView {
                id: name.to_string(),
                name: title,
                method: r.method.clone(),
                url: r.url.clone(),
                headers: r
                    .effective_headers()
                    .into_iter()
                    .map(|(key, value)| Header { key, value })
                    .collect(),
                body: r.body_text(),
                body_mode: body_mode(&r.body),
            },
            None => {
                // Before rendering, scripts see the request's templates (as Postman shows
                // `{{var}}` in a pre-request script).
                let (body, mode) = match req {
                    Some(r) if r.json.is_some() => (
                        r.json.as_ref().map(|j| j.to_string()),
                        Some("raw".to_string()),
                    ),
                    Some(r) if r.text.is_some() => (r.text.clone(), Some("raw".to_string())),
                    Some(r) if r.form.is_some() => (
                        r.form.as_ref().map(|f| {
                            f.iter()
                                .map(|(k, v)| format!("{k}={}", v.0))
                                .collect::<Vec<_>>()
                                .join("&")
                        }),
                        Some("urlencoded".to_string()),
                    ),
                    Some(r) if !r.multipart.is_empty() => (None, Some("formdata".to_string())),
                    _ => (None, None),
                };
                RequestView {
                    id: name.to_string(),
                    name: title,
                    method: req
                        .map(|r| r.method.to_ascii_uppercase())
                        .unwrap_or_default(),
                    url: req.map(|r| r.url.clone()).unwrap_or_default(),
                    headers: req
                        .map(|r| {
                            r.headers
                                .iter()
                                .map(|(k, v)| Header {
                                    key: k.clone(),
                                    value: v.0.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    body,
                    body_mode: mode,
                }
            }
        }
    }

    /// Applies the scripts' variable changes to the scopes: under `compat: newman` each Postman
    /// scope keeps its own values; otherwise a script's `set` is like a capture.
    fn apply_ops(&mut self, name: &str, out: &Output, seen: &Layers) -> Vec<Binding> {
        let newman = self.collection.newman();
        let mut set: Vec<Binding> = Vec::new();
        for op in &out.ops {
            let key = op.key.clone().unwrap_or_default();
            if op.layer == "local" {
                match op.op.as_str() {
                    "set" => {
                        self.inputs
                            .local
                            .insert(key, op.value.clone().unwrap_or(Value::Null));
                    }
                    "unset" => {
                        self.inputs.local.remove(&key);
                    }
                    _ => self.inputs.local.clear(),
                }
                continue;
            }
            if !matches!(op.layer.as_str(), "environment" | "collection" | "globals") {
                continue;
            }
            let secret = op.key.as_deref().is_some_and(|k| self.scope().is_secret(k));
            match op.op.as_str() {
                "set" => {
                    let value = op.value.clone().unwrap_or(Value::Null);
                    if secret {
                        let mut strs = Vec::new();
                        crate::capture::json_str_refs(&value, &mut strs);
                        let strs: Vec<String> = strs.into_iter().map(String::from).collect();
                        self.add_secrets(strs);
                    }
                    let env = self.env_state_mut();
                    if newman {
                        env.set_layer(&op.layer, &key, Some(value.clone()), secret);
                    } else {
                        env.set(&key, value.clone(), Some(name), secret);
                    }
                    set.retain(|b| b.name != key);
                    set.push(Binding {
                        name: key,
                        value,
                        secret,
                        explicit: true,
                        replaced: None,
                    });
                }
                "unset" => {
                    let env = self.env_state_mut();
                    if newman {
                        env.set_layer(&op.layer, &key, None, false);
                    } else {
                        env.remove_var(&key);
                    }
                    set.retain(|b| b.name != key);
                }
                _ => {
                    let layer = match op.layer.as_str() {
                        "environment" => &seen.environment,
                        "collection" => &seen.collection,
                        _ => &seen.globals,
                    };
                    let mut names: Vec<String> = layer.keys().cloned().collect();
                    let env = self.env_state_mut();
                    if newman {
                        if let Some(l) = env.layer(&op.layer) {
                            names.extend(l.keys().cloned());
                        }
                        for k in names {
                            env.set_layer(&op.layer, &k, None, false);
                        }
                    } else {
                        for k in names {
                            env.remove_var(&k);
                        }
                    }
                    set.clear();
                }
            }
        }
        set
    }

    /// Applies a pre-request script's header changes to the rendered request.
    pub fn apply_request_ops(rendered: &mut Rendered, ops: &[script::RequestOp]) {
        for op in ops {
            match op.op.as_str() {
                "add" => rendered
                    .headers
                    .push((op.key.clone(), op.value.clone().unwrap_or_default())),
                "upsert" => {
                    let value = op.value.clone().unwrap_or_default();
                    match rendered
                        .headers
                        .iter_mut()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&op.key))
                    {
                        Some(h) => h.1 = value,
                        None => rendered.headers.push((op.key.clone(), value)),
                    }
                }
                _ => rendered.remove_header(&op.key),
            }
        }
    }
}

fn body_mode(b: &crate::exchange::Body) -> Option<String> {
    use crate::exchange::Body;
    match b {
        Body::None => None,
        Body::Json(_) | Body::Text(_) => Some("raw".into()),
        Body::Form(_) => Some("urlencoded".into()),
        Body::Multipart { .. } => Some("formdata".into()),
    }
}

fn response_view(ex: &Exchange) -> ResponseView {
    ResponseView {
        code: ex.status,
        reason: reqwest::StatusCode::from_u16(ex.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string(),
        headers: ex
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        body: if ex.binary {
            String::new()
        } else {
            ex.body.clone()
        },
        response_time: ex.elapsed.as_millis() as u64,
        size: ex.raw.len(),
        cookies: vec![],
    }
}
