//! State that survives between invocations: variables and the last exchanges, per environment.
//!
//! Lives in `.postie/state.json` beside the collection (the directory git-ignores itself), written
//! atomically with mode 0600 because it holds tokens. Keyed by environment so a mock token is never
//! sent to production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many past exchanges are kept per request (two, for `diff`).
pub const KEEP_EXCHANGES: usize = 2;

/// The whole state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Per-environment state (`default` when no `--env`).
    #[serde(default)]
    pub envs: BTreeMap<String, EnvState>,
}

/// One environment's variables and exchanges.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnvState {
    /// Variables set by responses (or `set`), in the order they were first set.
    #[serde(default)]
    pub vars: IndexMap<String, StoredVar>,
    /// Recent exchanges per request, newest last.
    #[serde(default)]
    pub exchanges: IndexMap<String, Vec<Value>>,
    /// Sequence number of the newest exchange (orders exchanges across requests).
    #[serde(default)]
    pub seq: u64,
}

/// A stored variable with where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredVar {
    /// The value.
    pub value: Value,
    /// The request whose response set it (None when set by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether it is secret.
    #[serde(default)]
    pub secret: bool,
}

/// Errors reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid state JSON.
    #[error(
        "{path}: the state file is damaged ({message}); nothing was changed — fix or remove it, or pass --fresh to start clean"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
}

/// The state directory for a collection directory.
pub fn state_dir(collection_dir: &Path) -> PathBuf {
    collection_dir.join(".postie")
}

impl State {
    /// Loads state from a file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(StateError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Writes state atomically (0600), creating the self-ignoring directory.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |e| StateError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent() {
            ensure_state_dir(dir).map_err(io)?;
        }
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        crate::util::write_private_atomic(path, &bytes).map_err(io)
    }

    /// The state of one environment (created on demand).
    pub fn env_mut(&mut self, env: &str) -> &mut EnvState {
        self.envs.entry(env.to_string()).or_default()
    }
}

/// Creates the state directory with a `.gitignore` that ignores everything in it.
pub fn ensure_state_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            ignore,
            "# postie state: tokens and responses; never commit\n*\n",
        )?;
    }
    Ok(())
}

impl EnvState {
    /// Records an exchange under its request name, keeping the last [`KEEP_EXCHANGES`].
    pub fn record_exchange(&mut self, name: &str, mut value: Value) {
        self.seq += 1;
        if let Value::Object(m) = &mut value {
            m.insert("seq".into(), Value::from(self.seq));
        }
        let list = self.exchanges.entry(name.to_string()).or_default();
        list.push(value);
        if list.len() > KEEP_EXCHANGES {
            let extra = list.len() - KEEP_EXCHANGES;
            list.drain(..extra);
        }
    }

    /// The latest exchange of a request.
    pub fn last_exchange(&self, name: &str) -> Option<&Value> {
        self.exchanges.get(name).and_then(|v| v.last())
    }

    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: Value, source: Option<&str>, secret: bool) {
        self.vars.insert(
            name.to_string(),
            StoredVar {
                value,
                source: source.map(String::from),
                secret,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_private_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_dir(dir.path()).join("state.json");
        let mut s = State::default();
        s.env_mut("mock").set(
            "access_token",
            Value::String("AT".into()),
            Some("token"),
            true,
        );
        for i in 0..5 {
            s.env_mut("mock")
                .record_exchange("token", serde_json::json!({"status": i}));
        }
        s.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!(
            back.envs["mock"].vars["access_token"].source.as_deref(),
            Some("token")
        );
        assert_eq!(back.envs["mock"].exchanges["token"].len(), KEEP_EXCHANGES);
        assert_eq!(
            back.envs["mock"].last_exchange("token").unwrap()["status"],
            4
        );
        assert!(
            std::fs::read_to_string(path.parent().unwrap().join(".gitignore"))
                .unwrap()
                .contains('*')
        );
        std::fs::write(&path, "{not json").unwrap();
        assert!(
            State::load(&path)
                .unwrap_err()
                .to_string()
                .contains("--fresh")
        );
    }
}
