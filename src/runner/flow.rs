//! Flows: choosing the steps, checking them before anything is sent, and running them with
//! `when:` and polling `until:`.

use std::borrow::Cow;

use super::{Failure, FailureKind, FlowResult, Runner, SetupError, StepResult};
use crate::collection::{Flow, Step, suggest};
use crate::redact::Redactor;

/// The flow a collection without `flows:` has: every request, in file order (as Newman runs a
/// collection's items).
pub const ALL: &str = "all";

/// How many steps a flow may run in all when scripts jump back with `setNextRequest`, per step
/// of the flow (and at least [`MIN_JUMP_BUDGET`]).
const JUMPS_PER_STEP: usize = 100;
const MIN_JUMP_BUDGET: usize = 10_000;

impl Runner {
    /// A flow by name; a collection without flows has one, [`ALL`].
    pub fn flow(&self, name: &str) -> Option<Cow<'_, Flow>> {
        if let Some(f) = self.collection.flows.get(name) {
            return Some(Cow::Borrowed(f));
        }
        (self.collection.flows.is_empty() && name == ALL && !self.collection.requests.is_empty())
            .then(|| {
                Cow::Owned(Flow {
                    description: Some("every request, in file order".into()),
                    steps: self
                        .collection
                        .requests
                        .keys()
                        .map(|k| Step::Name(k.clone()))
                        .collect(),
                })
            })
    }

    /// Whether a request is in `folder` (or a folder inside it).
    fn in_folder(&self, request: &str, folder: &str) -> bool {
        self.collection
            .requests
            .get(request)
            .and_then(|r| r.folder.as_deref())
            .is_some_and(|f| {
                f == folder || f.strip_prefix(folder).is_some_and(|r| r.starts_with('/'))
            })
    }

    /// The steps of a flow between `from` and `to` (inclusive), with their indexes.
    pub fn flow_steps(
        &self,
        flow: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<(usize, Step)>, SetupError> {
        let f = self.flow(flow).ok_or_else(|| {
            SetupError::UnknownFlow(
                flow.to_string(),
                suggest(flow, self.collection.flows.keys()),
            )
        })?;
        let f: Cow<'_, Flow> = match &self.folder {
            None => f,
            Some(folder) => {
                let steps: Vec<Step> = f
                    .steps
                    .iter()
                    .filter(|s| self.in_folder(s.request(), folder))
                    .cloned()
                    .collect();
                if steps.is_empty() {
                    let mut folders: Vec<String> = self
                        .collection
                        .requests
                        .values()
                        .filter_map(|r| r.folder.clone())
                        .collect();
                    folders.dedup();
                    return Err(SetupError::NoSuchFolder(
                        folder.clone(),
                        flow.to_string(),
                        suggest(folder, folders.iter()),
                    ));
                }
                Cow::Owned(Flow {
                    description: f.description.clone(),
                    steps,
                })
            }
        };
        let find = |n: &str| {
            f.steps
                .iter()
                .position(|s| s.request() == n)
                .ok_or_else(|| {
                    let names: Vec<String> =
                        f.steps.iter().map(|s| s.request().to_string()).collect();
                    SetupError::NoSuchStep(
                        n.to_string(),
                        flow.to_string(),
                        suggest(n, names.iter()),
                    )
                })
        };
        let start = from.map(find).transpose()?.unwrap_or(0);
        let end = to.map(find).transpose()?.unwrap_or(f.steps.len() - 1);
        if end < start {
            return Err(SetupError::EmptyRange {
                flow: flow.to_string(),
                from: from.unwrap_or_default().to_string(),
                to: to.unwrap_or_default().to_string(),
            });
        }
        Ok(f.steps
            .iter()
            .cloned()
            .enumerate()
            .skip(start)
            .take(end.saturating_sub(start) + 1)
            .collect())
    }

    /// The default flow: the first one, or [`ALL`] when the collection has none.
    pub fn default_flow(&self) -> Result<String, SetupError> {
        match self.collection.flows.keys().next() {
            Some(f) => Ok(f.clone()),
            None if !self.collection.requests.is_empty() => Ok(ALL.to_string()),
            None => Err(SetupError::NoFlows),
        }
    }

    /// Checks, before anything is sent, that every variable the flow's steps use is defined or
    /// can be produced by an earlier step in the run.
    pub fn preflight(&self, flow: &str, steps: &[(usize, Step)]) -> Result<(), StepResult> {
        let scope = self.scope();
        let mut produced: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (pos, (idx, step)) in steps.iter().enumerate() {
            let req = &self.collection.requests[step.request()];
            let mut refs: Vec<(String, String)> = Vec::new();
            for (field, src) in req.template_sources() {
                let field = field.join(".");
                refs.extend(
                    self.templates
                        .references(src)
                        .into_iter()
                        .map(|r| (field.clone(), r)),
                );
            }
            if let Some(w) = step.when() {
                refs.extend(
                    self.templates
                        .referenced_in_condition(w)
                        .into_iter()
                        .map(|r| ("when".to_string(), r)),
                );
            }
            for (field, path) in refs {
                let root = crate::scope::root_of(&path).to_string();
                if !produced.contains(&root)
                    && let Some(why) = scope.unresolved(&root)
                {
                    return Err(StepResult::failed(
                        step.request(),
                        FailureKind::Template,
                        format!(
                            "request `{}`, {field}: `<<{root}>>` could not be rendered: {why}",
                            step.request()
                        ),
                    ));
                }
                let defined = produced.contains(&root) || scope.get(&root).is_some();
                // Only the first step of the run cannot get a value from an earlier response
                // (or from its own pre-request scripts, which may set anything).
                // Under `compat: newman` it is sent as `{{name}}`, as Newman does.
                if !defined
                    && pos == 0
                    && !self.collection.newman()
                    && self
                        .collection
                        .scripts_for(step.request(), false)
                        .is_empty()
                {
                    return Err(StepResult::failed(
                        step.request(),
                        FailureKind::Template,
                        self.undefined_message(
                            step.request(),
                            &field,
                            &path,
                            &scope,
                            Some((flow, *idx)),
                        ),
                    ));
                }
            }
            produced.insert(step.request().to_string());
            produced.extend(req.capture.keys().cloned());
            if self.collection.has_scripts(step.request()) {
                // Scripts set what they like: what they set cannot be known before they run.
                produced.extend(scripted_names(&self.collection, step.request()));
            }
            // What this step's last response set, if it ran before: names it will likely set again.
            produced.extend(self.env_state().last_body_scalars(step.request()));
        }
        Ok(())
    }

    /// Runs a flow (or part of it), calling `on_step` after each step; stops at the first failure,
    /// or when `cancel` resolves (Ctrl-C): the step in flight is dropped and the result says which
    /// steps ran and which did not.
    pub async fn run_flow(
        &mut self,
        flow: &str,
        from: Option<&str>,
        to: Option<&str>,
        on_step: &mut dyn FnMut(&StepResult, &Redactor),
        cancel: &mut (dyn std::future::Future<Output = ()> + Unpin),
    ) -> Result<FlowResult, SetupError> {
        let steps = self.flow_steps(flow, from, to)?;
        let mut out = FlowResult {
            flow: flow.to_string(),
            ..Default::default()
        };
        if let Err(fail) = self.preflight(flow, &steps) {
            on_step(&fail, self.redactor());
            out.steps.push(fail);
            out.not_run = steps.iter().map(|(_, s)| s.request().to_string()).collect();
            return Ok(out);
        }
        // Newman runs every request whatever failed before (unless told to bail); postie's own
        // flows stop at the first failure, since later steps build on earlier ones.
        let keep_going = self.keep_going;
        let budget = (steps.len() * JUMPS_PER_STEP).max(MIN_JUMP_BUDGET);
        let mut i = 0;
        let mut ran = 0usize;
        let mut ended_early = false;
        while let Some((idx, step)) = steps.get(i).cloned() {
            let outcome = tokio::select! {
                r = self.run_step(flow, idx, &step) => Some(r),
                _ = &mut *cancel => None,
            };
            let Some(mut r) = outcome else {
                out.interrupted = true;
                break;
            };
            ran += 1;
            i += 1;
            let mut stop = !r.ok() && !keep_going;
            // `setNextRequest` from a script: null ends the run, a name jumps to its step.
            if let Some(next) = r.next.clone() {
                match next.value {
                    None => {
                        r.notes
                            .push("setNextRequest(null): the run ends here".into());
                        ended_early = true;
                        stop = true;
                    }
                    Some(target) => match self.step_named(&steps, &target) {
                        Some(j) if ran < budget => i = j,
                        Some(_) => {
                            push_failure(
                                &mut r,
                                format!(
                                    "setNextRequest(\"{target}\"): the flow ran {ran} steps; stopping here (at most {budget} with jumps)"
                                ),
                            );
                            stop = true;
                        }
                        None => {
                            let names: Vec<String> =
                                steps.iter().map(|(_, s)| s.request().to_string()).collect();
                            push_failure(
                                &mut r,
                                format!(
                                    "setNextRequest(\"{target}\"): no step of flow `{flow}` sends a request by that name or title{}",
                                    suggest(&target, names.iter())
                                ),
                            );
                            stop = true;
                        }
                    },
                }
            }
            on_step(&r, self.redactor());
            // The result stays for the summary and the reports, which need no body: drop it, so a
            // long flow's memory does not grow with every response.
            if let Some(ex) = r.exchange.as_mut() {
                ex.raw = bytes::Bytes::new();
                ex.body = String::new();
                ex.json = None;
            }
            out.steps.push(r);
            if stop {
                break;
            }
        }
        if !ended_early {
            out.not_run = steps
                .iter()
                .skip(i)
                .map(|(_, s)| s.request().to_string())
                .collect();
        }
        Ok(out)
    }

    /// The index of the step that sends a request, by its name or its title.
    fn step_named(&self, steps: &[(usize, Step)], target: &str) -> Option<usize> {
        steps
            .iter()
            .position(|(_, s)| s.request() == target)
            .or_else(|| {
                steps.iter().position(|(_, s)| {
                    self.collection
                        .requests
                        .get(s.request())
                        .and_then(|r| r.title.as_deref())
                        == Some(target)
                })
            })
    }

    /// Runs one flow step: its `when`, the request, and its polling.
    pub async fn run_step(&mut self, flow: &str, idx: usize, step: &Step) -> StepResult {
        let name = step.request();
        if let Some(cond) = step.when() {
            let ctx = self.context_for_condition(&self.scope(), cond);
            match self.templates.condition(cond, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    return StepResult {
                        request: name.to_string(),
                        skipped: Some(format!("when: {cond} is false")),
                        ..Default::default()
                    };
                }
                Err(e) => {
                    let msg = match &e.undefined {
                        Some(var) => self.undefined_message(
                            name,
                            "when",
                            var,
                            &self.scope(),
                            Some((flow, idx)),
                        ),
                        None => format!("step `{name}`, when: {e}"),
                    };
                    return StepResult::failed(name, FailureKind::Template, msg);
                }
            }
        }
        let Some(poll) = step.poll() else {
            return self.send_step(name, Some((flow, idx))).await;
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut r = self.send_step(name, Some((flow, idx))).await;
            r.attempts = attempt;
            if r.failure.is_some() {
                return r;
            }
            let ctx = self.context_for_condition(&self.scope(), poll.until);
            match self.templates.condition(poll.until, &ctx) {
                Ok(true) => return r,
                Ok(false) if attempt >= poll.max_attempts => {
                    r.failure = Some(Failure {
                        kind: FailureKind::Assertion,
                        message: format!(
                            "until: `{}` still false after {attempt} attempts",
                            poll.until
                        ),
                    });
                    return r;
                }
                Ok(false) => tokio::time::sleep(poll.interval).await,
                Err(e) => {
                    r.failure = Some(Failure {
                        kind: FailureKind::Template,
                        message: format!("step `{name}`, until: {e}"),
                    });
                    return r;
                }
            }
        }
    }
}

/// Adds a problem to a step's failure (an assertion failure when it had none).
fn push_failure(r: &mut StepResult, message: String) {
    match &mut r.failure {
        Some(f) => {
            f.message.push('\n');
            f.message.push_str(&message);
        }
        None => {
            r.failure = Some(Failure {
                kind: FailureKind::Assertion,
                message,
            })
        }
    }
}

/// Names a request's scripts may set (see [`crate::script::names_set`]).
fn scripted_names(c: &crate::collection::Collection, request: &str) -> Vec<String> {
    let mut out = Vec::new();
    for post in [false, true] {
        for s in c.scripts_for(request, post) {
            out.extend(crate::script::names_set(s.code));
        }
    }
    out
}
