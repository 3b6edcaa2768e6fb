//! Flows: choosing the steps, checking them before anything is sent, and running them with
//! `when:` and polling `until:`.

use serde_json::Value;

use super::{Failure, FailureKind, FlowResult, Runner, SetupError, StepResult};
use crate::collection::{Step, suggest};
use crate::redact::Redactor;

impl Runner {
    /// The steps of a flow between `from` and `to` (inclusive), with their indexes.
    pub fn flow_steps(
        &self,
        flow: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<(usize, Step)>, SetupError> {
        let f = self.collection.flows.get(flow).ok_or_else(|| {
            SetupError::UnknownFlow(
                flow.to_string(),
                suggest(flow, self.collection.flows.keys()),
            )
        })?;
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

    /// The default flow: the first one.
    pub fn default_flow(&self) -> Result<String, SetupError> {
        self.collection
            .flows
            .keys()
            .next()
            .cloned()
            .ok_or(SetupError::NoFlows)
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
                // Only the first step of the run cannot get a value from an earlier response.
                if !defined && pos == 0 {
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
            // What this step's last response set, if it ran before: names it will likely set again.
            if let Some(last) = self.env_state().last_exchange(step.request())
                && let Some(Value::Object(body)) = last.get("body")
            {
                produced.extend(
                    body.iter()
                        .filter(|(_, v)| !v.is_object() && !v.is_array())
                        .map(|(k, _)| k.clone()),
                );
            }
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
        let mut rest = steps.into_iter().peekable();
        while let Some((idx, step)) = rest.peek().cloned() {
            let outcome = tokio::select! {
                r = self.run_step(flow, idx, &step) => Some(r),
                _ = &mut *cancel => None,
            };
            let Some(mut r) = outcome else {
                out.interrupted = true;
                break;
            };
            rest.next();
            on_step(&r, self.redactor());
            let stop = !r.ok();
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
        out.not_run = rest.map(|(_, s)| s.request().to_string()).collect();
        Ok(out)
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
