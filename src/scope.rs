//! The variable scope a request is rendered in, and which of its values are secret.
//!
//! Precedence, lowest first: collection `variables` < the chosen environment's overrides <
//! variables set by responses (state) < `--var` on the command line. Exchanges are reachable under
//! their request's name, the process environment and `.env` under `env`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use crate::collection::{Collection, VarDef};
use crate::redact::{Redactor, is_secret_name};
use crate::state::EnvState;
use crate::template::Templates;

/// A built scope.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The template context (a JSON object).
    pub ctx: Value,
    /// Names whose values are secret.
    pub secret_names: BTreeSet<String>,
    /// Collection variables whose templates failed, with why (reported when a request uses them).
    pub unresolved: BTreeMap<String, String>,
    /// Where each response-set variable came from.
    pub provenance: BTreeMap<String, String>,
}

/// Reads a `.env` file (KEY=VALUE lines, `#` comments, optional `export`, optional quotes).
pub fn read_dotenv(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = if v.len() >= 2
                && (v.starts_with('"') && v.ends_with('"')
                    || v.starts_with('\'') && v.ends_with('\''))
            {
                &v[1..v.len() - 1]
            } else {
                v
            };
            out.insert(k.trim().to_string(), v.to_string());
        }
    }
    out
}

/// Inputs that are not in the collection.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Environment name, if chosen.
    pub env: Option<String>,
    /// `--var k=v` pairs.
    pub vars: Vec<(String, String)>,
    /// `.env` merged under the process environment.
    pub process_env: BTreeMap<String, String>,
}

impl Inputs {
    /// The process environment over the collection's `.env`.
    pub fn environment_for(collection_dir: &Path) -> BTreeMap<String, String> {
        let mut env = read_dotenv(&collection_dir.join(".env"));
        env.extend(std::env::vars());
        env
    }
}

impl Scope {
    /// Builds the scope for a request.
    pub fn build(c: &Collection, t: &Templates, inputs: &Inputs, state: &EnvState) -> Scope {
        let mut ctx = Map::new();
        let mut scope = Scope::default();
        let env_obj: Map<String, Value> = inputs
            .process_env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        ctx.insert("env".into(), Value::Object(env_obj));
        for (name, list) in &state.exchanges {
            if let Some(last) = list.last() {
                ctx.insert(name.clone(), last.clone());
            }
        }
        // Definitions from the collection, with environment overrides replacing defaults in place.
        let mut defs: indexmap::IndexMap<&str, &VarDef> =
            c.variables.iter().map(|(k, v)| (k.as_str(), v)).collect();
        if let Some(env) = inputs.env.as_deref().and_then(|e| c.environments.get(e)) {
            for (k, v) in env {
                defs.insert(k.as_str(), v);
            }
        }
        for (name, def) in &defs {
            if def.declared_secret() {
                scope.secret_names.insert((*name).to_string());
            }
        }
        // Response-set variables and CLI vars are known before collection templates render, so
        // `api_url: <<mock_url>>` can use a `--var mock_url=...`.
        let mut high = Map::new();
        for (name, v) in &state.vars {
            high.insert(name.clone(), v.value.clone());
            if v.secret {
                scope.secret_names.insert(name.clone());
            }
            if let Some(src) = &v.source {
                scope.provenance.insert(name.clone(), src.clone());
            }
        }
        for (k, v) in &inputs.vars {
            high.insert(k.clone(), Value::String(v.clone()));
        }
        for (k, v) in &high {
            ctx.insert(k.clone(), v.clone());
        }
        let mut ctx_value = Value::Object(ctx);
        for (name, def) in defs {
            if high.contains_key(name) {
                continue;
            }
            match t.render_json(def.value(), &ctx_value) {
                Ok(v) => {
                    if let Value::Object(m) = &mut ctx_value {
                        m.insert(name.to_string(), v);
                    }
                }
                Err(e) => {
                    let hint = match e.undefined.as_deref().and_then(|u| u.strip_prefix("env.")) {
                        Some(var) => format!(
                            "{e} — set {var} in the environment or in {}",
                            c.dir().join(".env").display()
                        ),
                        None => e.to_string(),
                    };
                    scope.unresolved.insert(name.to_string(), hint);
                }
            }
        }
        for name in ctx_value
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            // An exchange kept under a request's name (e.g. `token`) is not itself a secret; its
            // secret fields are found by field name in `redactor`.
            if is_secret_name(&name) && !state.exchanges.contains_key(&name) {
                scope.secret_names.insert(name);
            }
        }
        scope.ctx = ctx_value;
        scope
    }

    /// A redactor over every secret value in scope: secret variables, secret-named fields of
    /// stored exchanges, and secret-named process environment variables.
    pub fn redactor(&self) -> Redactor {
        let mut values: Vec<&str> = Vec::new();
        let Some(map) = self.ctx.as_object() else {
            return Redactor::default();
        };
        for name in &self.secret_names {
            if let Some(v) = map.get(name) {
                crate::capture::json_str_refs(v, &mut values);
            }
        }
        if let Some(Value::Object(env)) = map.get("env") {
            for (k, v) in env {
                if is_secret_name(k) {
                    crate::capture::json_str_refs(v, &mut values);
                }
            }
        }
        for (k, v) in map {
            if k != "env" && v.get("status").is_some() {
                collect_secret_fields(v.get("body").unwrap_or(&Value::Null), &mut values);
            }
        }
        Redactor::new(values)
    }
}

fn collect_secret_fields<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if is_secret_name(k) {
                    crate::capture::json_str_refs(x, out);
                } else {
                    collect_secret_fields(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_fields(x, out)),
        _ => {}
    }
}
