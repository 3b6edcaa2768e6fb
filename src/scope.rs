//! The variable scope a request is rendered in, and which of its values are secret.
//!
//! Precedence, highest first:
//! 1. `--var NAME=VALUE` (and `mock_url` from `--mock`), and one-time values the OAuth2 engine
//!    sets during a login (`state`, `code`, PKCE);
//! 2. values scripts set with `pm.variables.set` (local to the run), then the iteration's data
//!    row (`run --data`);
//! 3. the exchange stored under a request's name (`<<token.body.access_token>>`);
//! 4. variables set by responses, scripts or by hand (state);
//! 5. the chosen environment's overrides, then the collection's `variables` (templates, rendered
//!    on use);
//! 6. `env`: the process environment over `.env` beside the collection.
//!
//! A `compat: newman` collection follows Postman's scopes instead (see [`Scope::get`]): after
//! `--var` and values set by hand come local, data, then environment (script-set over defined),
//! collection (likewise), globals, and last the exchanges.
//!
//! A [`Scope`] is a view, built in O(1): it resolves only the names a template refers to, so the
//! cost of rendering a request does not grow with the history kept in state.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Map, Value};

use crate::collection::{Collection, VarDef};
use crate::redact::is_secret_name;
use crate::state::EnvState;
use crate::template::Templates;

/// How deep collection variables may refer to each other before it is called a loop.
const MAX_DEF_DEPTH: usize = 16;

/// Reads a `.env` file: `KEY=VALUE` lines, `#` comments (also after an unquoted value), optional
/// `export`, optional single or double quotes (inside quotes, `#` is kept).
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
            out.insert(k.trim().to_string(), dotenv_value(v.trim()));
        }
    }
    out
}

fn dotenv_value(v: &str) -> String {
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q)
            && let Some(end) = rest.find(q)
        {
            return rest[..end].to_string();
        }
    }
    // Unquoted: a ` #` starts a comment (as in shells and dotenv tools).
    match v.find(" #").or_else(|| v.find("\t#")) {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

/// Inputs that are not in the collection.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Environment name, if chosen.
    pub env: Option<String>,
    /// `--var k=v` pairs.
    pub vars: Vec<(String, String)>,
    /// The in-process mock's URL (`--mock`), bound to `mock_url`.
    pub mock_url: Option<String>,
    /// `.env` merged under the process environment.
    pub process_env: BTreeMap<String, String>,
    /// One-time values (a login's `state`, `code`, PKCE pair, an ephemeral redirect URI): they
    /// live only while the engine needs them and are never saved.
    pub transient: BTreeMap<String, Value>,
    /// Values scripts set with `pm.variables.set`: they last for the run, never saved.
    pub local: BTreeMap<String, Value>,
    /// The current iteration's row (`run --data`), never saved.
    pub data: BTreeMap<String, Value>,
    env_value: std::sync::OnceLock<Value>,
}

impl Inputs {
    /// Inputs for an environment, `--var`s and a process environment.
    pub fn new(
        env: Option<String>,
        vars: Vec<(String, String)>,
        process_env: BTreeMap<String, String>,
    ) -> Inputs {
        Inputs {
            env,
            vars,
            process_env,
            ..Default::default()
        }
    }

    /// The process environment over the collection's `.env`.
    pub fn environment_for(collection_dir: &Path) -> BTreeMap<String, String> {
        let mut env = read_dotenv(&collection_dir.join(".env"));
        env.extend(std::env::vars());
        env
    }

    /// `env` as a template value (built once).
    pub fn env_value(&self) -> &Value {
        self.env_value.get_or_init(|| {
            Value::Object(
                self.process_env
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        })
    }

    /// A `--var` (the last one given wins), or `mock_url` from `--mock`.
    pub fn var(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.vars.iter().rev().find(|(k, _)| k == name) {
            return Some(v);
        }
        match (&self.mock_url, name) {
            (Some(u), "mock_url") => Some(u),
            _ => None,
        }
    }
}

/// Where a variable's value comes from (for `vars`).
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// `--var`.
    CommandLine,
    /// `--mock` (`mock_url`).
    Mock,
    /// A one-time value of the OAuth2 engine.
    Engine,
    /// Set by the response to this request.
    Response(String),
    /// Set by hand (REPL `set`).
    Set,
    /// Set by a script in a Postman scope (`environment`, `collection`, `globals`).
    Script(String),
    /// `pm.variables.set` in a script (this run only).
    Local,
    /// The iteration's data row.
    Data,
    /// The chosen environment's definition.
    Environment(String),
    /// The collection's `variables`.
    Collection,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("--var"),
            Origin::Mock => f.write_str("--mock"),
            Origin::Engine => f.write_str("login"),
            Origin::Response(r) => write!(f, "from {r}"),
            Origin::Set => f.write_str("set"),
            Origin::Script(l) => write!(f, "script, {l}"),
            Origin::Local => f.write_str("script, local"),
            Origin::Data => f.write_str("data row"),
            Origin::Environment(e) => write!(f, "environment {e}"),
            Origin::Collection => f.write_str("collection"),
        }
    }
}

/// A view of every variable in scope for one collection, environment and state.
pub struct Scope<'a> {
    collection: &'a Collection,
    templates: &'a Templates,
    inputs: &'a Inputs,
    state: &'a EnvState,
    rendered: RefCell<HashMap<String, Result<Value, String>>>,
    depth: std::cell::Cell<usize>,
}

impl<'a> Scope<'a> {
    /// A view; nothing is computed until a name is looked up.
    pub fn new(
        collection: &'a Collection,
        templates: &'a Templates,
        inputs: &'a Inputs,
        state: &'a EnvState,
    ) -> Scope<'a> {
        Scope {
            collection,
            templates,
            inputs,
            state,
            rendered: RefCell::new(HashMap::new()),
            depth: std::cell::Cell::new(0),
        }
    }

    /// The collection the scope reads.
    pub fn collection(&self) -> &'a Collection {
        self.collection
    }

    /// The active environment's name.
    pub fn env_name(&self) -> Option<&'a str> {
        self.inputs.env.as_deref()
    }

    /// The definition of a variable: the environment's override, else the collection's.
    pub fn def(&self, name: &str) -> Option<&'a VarDef> {
        self.inputs
            .env
            .as_deref()
            .and_then(|e| self.collection.environments.get(e))
            .and_then(|m| m.get(name))
            .or_else(|| self.collection.variables.get(name))
    }

    /// Whether the user declared this name as an input: in the collection, the environment, on
    /// the command line, or by hand. Automatic chaining never replaces such a value.
    pub fn is_declared(&self, name: &str) -> bool {
        self.def(name).is_some()
            || self.inputs.var(name).is_some()
            || self.inputs.data.contains_key(name)
            || self.inputs.local.contains_key(name)
            || self
                .state
                .vars()
                .get(name)
                .is_some_and(|v| v.source.is_none())
    }

    /// The value of a name, by precedence.
    pub fn get(&self, name: &str) -> Option<Cow<'a, Value>> {
        if let Some(v) = self.inputs.transient.get(name) {
            return Some(Cow::Borrowed(v));
        }
        if let Some(v) = self.inputs.var(name) {
            return Some(Cow::Owned(Value::String(v.to_string())));
        }
        if self.collection.newman() {
            return self.get_newman(name);
        }
        if let Some(v) = self
            .inputs
            .local
            .get(name)
            .or_else(|| self.inputs.data.get(name))
        {
            return Some(Cow::Borrowed(v));
        }
        if let Some(ex) = self.state.last_exchange(name) {
            return Some(Cow::Owned(ex));
        }
        if let Some(v) = self.state.vars().get(name) {
            return Some(Cow::Borrowed(&v.value));
        }
        if self.def(name).is_some() {
            return self.render_def(name).ok().map(Cow::Owned);
        }
        (name == "env").then(|| Cow::Borrowed(self.inputs.env_value()))
    }

    /// Postman's order, narrowest first: set by hand, local, data, environment, collection,
    /// globals; a value a script unset hides the definition at its level. Exchanges come last.
    fn get_newman(&self, name: &str) -> Option<Cow<'a, Value>> {
        if let Some(v) = self.state.vars().get(name) {
            return Some(Cow::Borrowed(&v.value));
        }
        if let Some(v) = self
            .inputs
            .local
            .get(name)
            .or_else(|| self.inputs.data.get(name))
        {
            return Some(Cow::Borrowed(v));
        }
        let env_def = self
            .inputs
            .env
            .as_deref()
            .and_then(|e| self.collection.environments.get(e))
            .and_then(|m| m.get(name));
        match self.layer_value("environment", name) {
            Some(Some(v)) => return Some(Cow::Borrowed(v)),
            Some(None) => {}
            None if env_def.is_some() => return self.render_def(name).ok().map(Cow::Owned),
            None => {}
        }
        match self.layer_value("collection", name) {
            Some(Some(v)) => return Some(Cow::Borrowed(v)),
            Some(None) => {}
            None => {
                if let Some(def) = self.collection.variables.get(name) {
                    return self
                        .render_def_as(&format!("\u{0}collection.{name}"), name, def)
                        .ok()
                        .map(Cow::Owned);
                }
            }
        }
        if let Some(Some(v)) = self.layer_value("globals", name) {
            return Some(Cow::Borrowed(v));
        }
        if let Some(ex) = self.state.last_exchange(name) {
            return Some(Cow::Owned(ex));
        }
        (name == "env").then(|| Cow::Borrowed(self.inputs.env_value()))
    }

    /// A script-set value in a Postman scope: `Some(None)` when a script unset it.
    fn layer_value(&self, layer: &str, name: &str) -> Option<Option<&'a Value>> {
        self.state
            .layer(layer)
            .and_then(|m| m.get(name))
            .map(|v| v.value.as_ref())
    }

    /// Where a name's value comes from.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        if self.inputs.transient.contains_key(name) {
            return Some(Origin::Engine);
        }
        if self.inputs.vars.iter().any(|(k, _)| k == name) {
            return Some(Origin::CommandLine);
        }
        if self.inputs.var(name).is_some() {
            return Some(Origin::Mock);
        }
        if let Some(v) = self.state.vars().get(name) {
            return Some(match &v.source {
                Some(s) => Origin::Response(s.clone()),
                None => Origin::Set,
            });
        }
        if self.inputs.local.contains_key(name) {
            return Some(Origin::Local);
        }
        if self.inputs.data.contains_key(name) {
            return Some(Origin::Data);
        }
        for layer in ["environment", "collection", "globals"] {
            if let Some(Some(_)) = self.layer_value(layer, name) {
                return Some(Origin::Script(layer.to_string()));
            }
        }
        let env = self.inputs.env.as_deref();
        match env.and_then(|e| self.collection.environments.get(e)) {
            Some(m) if m.contains_key(name) => {
                Some(Origin::Environment(env.unwrap_or_default().to_string()))
            }
            _ => self
                .collection
                .variables
                .contains_key(name)
                .then_some(Origin::Collection),
        }
    }

    /// Renders a collection variable (once per view: `random_state()` gives one value per
    /// request, however often the request uses it).
    fn render_def(&self, name: &str) -> Result<Value, String> {
        let Some(def) = self.def(name) else {
            return Err(format!("`{name}` is not defined"));
        };
        self.render_def_as(name, name, def)
    }

    /// Renders a definition, remembered under `key` for this view.
    fn render_def_as(&self, key: &str, name: &str, def: &VarDef) -> Result<Value, String> {
        if let Some(r) = self.rendered.borrow().get(key) {
            return r.clone();
        }
        if self.depth.get() >= MAX_DEF_DEPTH {
            return Err(format!(
                "variables refer to each other in a loop (through `{name}`)"
            ));
        }
        self.depth.set(self.depth.get() + 1);
        let result = if crate::template::has_template(def.value()) {
            let mut strings = Vec::new();
            crate::capture::json_str_refs(def.value(), &mut strings);
            let roots: BTreeSet<String> = strings
                .iter()
                .flat_map(|s| self.templates.references(s))
                .map(|p| root_of(&p).to_string())
                .collect();
            let ctx = self.context_for(roots.iter().map(String::as_str));
            self.templates.render_json(def.value(), &ctx).map_err(|e| {
                match e.undefined.as_deref() {
                    Some(u) if u.starts_with("env.") => format!(
                        "{e} — set {} in the environment or in {}",
                        &u[4..],
                        self.collection.dir().join(".env").display()
                    ),
                    Some("mock_url") => format!(
                        "{e} — pass --mock to start the bundled mock in-process, or --var mock_url=http://127.0.0.1:8911 to use a `postie mock` you started"
                    ),
                    _ => e.to_string(),
                }
            })
        } else {
            Ok(def.value().clone())
        };
        self.depth.set(self.depth.get() - 1);
        self.rendered
            .borrow_mut()
            .insert(key.to_string(), result.clone());
        result
    }

    /// Why a defined variable cannot be rendered (a missing `env.X`, an undefined reference).
    pub fn unresolved(&self, name: &str) -> Option<String> {
        if self.inputs.var(name).is_some()
            || self.inputs.transient.contains_key(name)
            || self.inputs.local.contains_key(name)
            || self.inputs.data.contains_key(name)
            || self.state.vars().contains_key(name)
            || ["environment", "collection", "globals"]
                .iter()
                .any(|l| self.layer_value(l, name).is_some())
            || self.def(name).is_none()
        {
            return None;
        }
        self.render_def(name).err()
    }

    /// A template context holding just these root names (those that resolve).
    pub fn context_for<'s>(&self, roots: impl IntoIterator<Item = &'s str>) -> Value {
        let mut m = Map::new();
        for r in roots {
            if !m.contains_key(r)
                && let Some(v) = self.get(r)
            {
                m.insert(r.to_string(), v.into_owned());
            }
        }
        Value::Object(m)
    }

    /// Whether a name's value is secret: declared `secret: true`, stored as secret, or named like
    /// a secret (an exchange under a request's name is not itself a secret).
    pub fn is_secret(&self, name: &str) -> bool {
        self.def(name).is_some_and(VarDef::declared_secret)
            || self
                .collection
                .variables
                .get(name)
                .is_some_and(VarDef::declared_secret)
            || self.state.vars().get(name).is_some_and(|v| v.secret)
            || ["environment", "collection", "globals"].iter().any(|l| {
                self.state
                    .layer(l)
                    .and_then(|m| m.get(name))
                    .is_some_and(|v| v.secret)
            })
            || (is_secret_name(name) && !self.collection.requests.contains_key(name))
    }

    /// Every variable name in scope (not exchanges, not `env`), each once, in a stable order.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let env_defs = self
            .inputs
            .env
            .as_deref()
            .and_then(|e| self.collection.environments.get(e));
        let all = self
            .collection
            .variables
            .keys()
            .chain(env_defs.into_iter().flat_map(|m| m.keys()))
            .chain(self.state.vars().keys())
            .chain(
                ["environment", "collection", "globals"]
                    .iter()
                    .filter_map(|l| self.state.layer(l))
                    .flat_map(|m| m.iter().filter(|(_, v)| v.value.is_some()).map(|(k, _)| k)),
            )
            .chain(self.inputs.local.keys())
            .chain(self.inputs.data.keys())
            .chain(self.inputs.vars.iter().map(|(k, _)| k))
            .chain(self.inputs.mock_url.iter().map(|_| &*MOCK_URL))
            .chain(self.inputs.transient.keys());
        for k in all {
            if seen.insert(k.clone()) {
                out.push(k.clone());
            }
        }
        out
    }

    /// The variables as a script sees them, in Postman's layers. Under `compat: newman` each
    /// layer holds its definitions with what scripts set over them; otherwise the environment
    /// layer holds everything postie's own scope has (definitions, state, `--var`), and the
    /// collection layer the collection's definitions.
    pub fn script_layers(&self) -> crate::script::Layers {
        use serde_json::Map;
        let mut out = crate::script::Layers::default();
        let render = |key: String, name: &str, def: &VarDef| -> Value {
            self.render_def_as(&key, name, def)
                .unwrap_or_else(|_| def.value().clone())
        };
        let env_defs = self
            .inputs
            .env
            .as_deref()
            .and_then(|e| self.collection.environments.get(e));
        let overlay = |m: &mut Map<String, Value>, layer: &str| {
            if let Some(l) = self.state.layer(layer) {
                for (k, v) in l {
                    match &v.value {
                        Some(v) => {
                            m.insert(k.clone(), v.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                }
            }
        };
        for (k, def) in &self.collection.variables {
            out.collection
                .insert(k.clone(), render(format!("\u{0}collection.{k}"), k, def));
        }
        for (k, def) in env_defs.into_iter().flatten() {
            out.environment.insert(k.clone(), render(k.clone(), k, def));
        }
        if self.collection.newman() {
            overlay(&mut out.globals, "globals");
            overlay(&mut out.collection, "collection");
            overlay(&mut out.environment, "environment");
            for (k, v) in self.state.vars() {
                out.local.insert(k.clone(), v.value.clone());
            }
        } else {
            for (k, v) in self.state.vars() {
                out.environment.insert(k.clone(), v.value.clone());
            }
        }
        for (k, v) in &self.inputs.vars {
            out.environment.insert(k.clone(), Value::String(v.clone()));
        }
        if let Some(u) = &self.inputs.mock_url {
            out.environment
                .insert("mock_url".into(), Value::String(u.clone()));
        }
        out.data
            .extend(self.inputs.data.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.local.extend(
            self.inputs
                .local
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    /// Secret values this view can see without sending anything: secret variables that render,
    /// secret-named process environment values, and remembered secrets. Stored exchanges are the
    /// runner's to add as they arrive.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for name in self.names() {
            if self.is_secret(&name)
                && let Some(v) = self.get(&name)
            {
                let mut strs = Vec::new();
                crate::capture::json_str_refs(&v, &mut strs);
                out.extend(strs.into_iter().map(String::from));
            }
        }
        for (k, v) in &self.inputs.process_env {
            if is_secret_name(k) {
                out.push(v.clone());
            }
        }
        out.extend(self.state.seen_secrets().iter().cloned());
        out
    }
}

static MOCK_URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "mock_url".into());

/// The first segment of a dotted variable path.
pub fn root_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

/// Secret-named fields anywhere in a JSON value (an access token inside a token response).
pub fn secret_fields<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if is_secret_name(k) {
                    crate::capture::json_str_refs(x, out);
                } else {
                    secret_fields(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| secret_fields(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_comments_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(
            &p,
            "# comment\nA=plain # note\nB=\"quoted # kept\" # note\nexport C='single'\nD=a#b\nE=\n",
        )
        .unwrap();
        let env = read_dotenv(&p);
        assert_eq!(env["A"], "plain");
        assert_eq!(env["B"], "quoted # kept");
        assert_eq!(env["C"], "single");
        assert_eq!(env["D"], "a#b");
        assert_eq!(env["E"], "");
    }
}
