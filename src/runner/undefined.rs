//! Explaining an undefined variable: which request and field, and which step would set it.

use super::Runner;
use crate::collection::suggest;
use crate::scope::Scope;

impl Runner {
    /// Explains an undefined variable: which request and field, and who would have set it.
    pub(super) fn undefined_message(
        &self,
        request: &str,
        field: &str,
        var: &str,
        scope: &Scope,
        flow: Option<(&str, usize)>,
    ) -> String {
        let root = crate::scope::root_of(var);
        let mut msg = format!("request `{request}`, {field}: `<<{var}>>` is undefined");
        if let Some(why) = scope.unresolved(root) {
            msg.push_str(&format!(
                " — variable `{root}` could not be rendered: {why}"
            ));
            return msg;
        }
        if root == "env" {
            let name = var.strip_prefix("env.").unwrap_or(var);
            msg.push_str(&format!(
                " — set {name} in the environment or in {}",
                self.collection.dir().join(".env").display()
            ));
            return msg;
        }
        if root != var && scope.get(root).is_some() {
            let omitted = self
                .env_state()
                .last_exchange(root)
                .is_some_and(|e| e.get("body_omitted").is_some());
            msg.push_str(&format!(
                " — `{root}` exists but has no `{}`{}",
                &var[root.len() + 1..],
                if omitted {
                    " (its body was too large to keep in state; send it again in this run)"
                } else {
                    ""
                }
            ));
            return msg;
        }
        if root == "mock_url" {
            msg.push_str(
                " — pass --mock to start the bundled mock in-process, or --var mock_url=http://127.0.0.1:8911 to use a `postie mock` you started",
            );
            return msg;
        }
        if let Some(o) = &self.collection.oauth2
            && (root == o.code || root == o.state)
        {
            msg.push_str(&format!(
                " — it is a one-time value of a login: `{}` sets it for the exchange (or `send {}` binds it from the redirect), and it is forgotten once used",
                self.command_hint("auth login", None),
                o.authorize
            ));
            return msg;
        }
        if let Some(o) = &self.collection.oauth2
            && (root == o.access_token || root == o.refresh_token)
        {
            msg.push_str(&format!(
                " — log in first: `{}` (or `login` in the REPL)",
                self.command_hint("auth login", None)
            ));
            return msg;
        }
        let producers = self.producers_of(root, flow);
        let ran = producers.first().and_then(|p| {
            self.env_state()
                .last_exchange(p)
                .map(|e| (p.clone(), e.get("status").cloned()))
        });
        if let Some((p, status)) = ran {
            msg.push_str(&format!(
                " — step `{p}` ran (last status {}) but its response did not set it; check that response (`{} -v`)",
                status.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                self.command_hint("send", Some(&p))
            ));
        } else if let Some(p) = producers.first() {
            msg.push_str(&format!(
                " — it is set by step `{p}`, which has not run{}; run it first (`{}`) or run the flow from there",
                flow.map(|(f, _)| format!(" in flow `{f}`")).unwrap_or_default(),
                self.command_hint("send", Some(p))
            ));
        } else if let Some(envs) = self.environments_defining(root) {
            msg.push_str(&format!(
                " — environment{} {envs} define{} it; choose one with --env",
                if envs.contains(',') { "s" } else { "" },
                if envs.contains(',') { "" } else { "s" }
            ));
        } else {
            let known = scope.names();
            msg.push_str(&format!(
                " — define it under `variables:`, pass `--var {root}=...`, or send the request whose response sets it{}",
                suggest(root, known.iter())
            ));
        }
        msg
    }

    /// A command line to suggest: `postie SUB FILE [ARG] [--env E] [--mock]`, as this run was
    /// started.
    pub fn command_hint(&self, sub: &str, arg: Option<&str>) -> String {
        let mut out = format!("postie {sub} {}", self.collection.path.display());
        if let Some(a) = arg {
            out.push(' ');
            out.push_str(a);
        }
        if self.inputs.mock_url.is_some() {
            out.push_str(" --mock");
        } else if let Some(e) = &self.inputs.env {
            out.push_str(&format!(" --env {e}"));
        }
        out
    }

    /// The environments (other than the chosen one) that define a variable, comma-separated.
    fn environments_defining(&self, var: &str) -> Option<String> {
        let names: Vec<&str> = self
            .collection
            .environments
            .iter()
            .filter(|(name, vars)| {
                vars.contains_key(var) && self.inputs.env.as_deref() != Some(name.as_str())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// Requests that would set a variable: the one that set it before, explicit captures, a
    /// request of that name, and the steps before this one in the current flow (automatic capture).
    pub(super) fn producers_of(&self, var: &str, flow: Option<(&str, usize)>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        if let Some(src) = self
            .env_state()
            .vars()
            .get(var)
            .and_then(|v| v.source.clone())
        {
            add(&src);
        }
        if self.collection.requests.contains_key(var) {
            add(var);
        }
        for (name, req) in &self.collection.requests {
            if req.capture.contains_key(var) {
                add(name);
            }
        }
        if let Some((f, idx)) = flow
            && let Some(flow) = self.collection.flows.get(f)
        {
            // The nearest earlier step is the likeliest automatic producer.
            if let Some(prev) = flow.steps[..idx.min(flow.steps.len())].last() {
                add(prev.request());
            }
        }
        out
    }
}
