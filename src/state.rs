//! State that survives between invocations: variables, recent exchanges and the OAuth2 grant,
//! per collection and environment.
//!
//! Each collection has its own file, `.postie/<collection file name>.state.json`, beside it (the
//! directory git-ignores itself), so two collections in one folder never share tokens. Inside,
//! state is keyed by environment, so a mock token is never sent to production. Tokens carry the
//! [`Grant`] that says where they came from (token endpoint, client) and when they expire.
//!
//! The file is written atomically with mode 0600 because it holds tokens. Several postie
//! processes may use it at once (a REPL and `postie run` in another shell): a [`Store`] saves by
//! re-reading the file under an advisory lock and applying only what this process changed since
//! it last synchronised, so nobody writes back a token another process has just replaced.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many past exchanges are kept per request (two, for `diff`).
pub const KEEP_EXCHANGES: usize = 2;

/// Largest response body kept in state; larger bodies are summarised (`body_omitted`).
pub const KEEP_BODY_BYTES: usize = 1 << 20;

/// How many earlier secret values are remembered for masking (rotated tokens, hand-set ones).
const KEEP_SEEN_SECRETS: usize = 32;

/// The state file format version written by this postie.
const VERSION: u32 = 2;

/// One collection's state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Format version (absent in files written before per-collection state).
    #[serde(default)]
    pub version: u32,
    /// Which collection the file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionId>,
    /// Per-environment state (`default` when no `--env`).
    #[serde(default)]
    pub envs: BTreeMap<String, EnvState>,
}

/// The identity of the collection a state file belongs to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CollectionId {
    /// The collection's file name.
    pub file: String,
    /// Its `name:`.
    pub name: String,
}

/// One environment's variables, exchanges and grant. Every change goes through a method that
/// remembers what changed, so a save applies just those changes to the file (see [`Store`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnvState {
    /// Variables set by responses (or `set`), in the order they were first set.
    #[serde(default)]
    vars: IndexMap<String, StoredVar>,
    /// Recent exchanges per request, newest last, as JSON text: parsed only when something
    /// reads one, so loading and saving a long history costs a copy, not a parse.
    #[serde(default)]
    exchanges: IndexMap<String, Vec<StoredExchange>>,
    /// Sequence number of the newest exchange (orders exchanges across requests).
    #[serde(default)]
    pub seq: u64,
    /// Where the current OAuth2 tokens came from and when they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grant: Option<Grant>,
    /// Earlier secret values (rotated tokens, replaced secrets), kept so they stay masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seen_secrets: Vec<String>,
    /// Values scripts set in Postman's scopes (`environment`, `collection`, `globals`) of a
    /// `compat: newman` collection, each layer apart so Postman's precedence holds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    layers: BTreeMap<String, IndexMap<String, LayerVar>>,
    /// What this process changed since it last synchronised with the file.
    #[serde(skip)]
    changes: Changes,
}

/// An exchange as stored (`Exchange::to_value` as JSON text).
pub type StoredExchange = Box<serde_json::value::RawValue>;

/// The names of what changed in an [`EnvState`].
#[derive(Debug, Clone, Default)]
struct Changes {
    vars: std::collections::HashSet<String>,
    exchanges: std::collections::HashSet<String>,
    layers: std::collections::HashSet<(String, String)>,
    grant: bool,
    seen: bool,
}

impl Changes {
    fn any(&self) -> bool {
        !self.vars.is_empty()
            || !self.exchanges.is_empty()
            || !self.layers.is_empty()
            || self.grant
            || self.seen
    }
}

/// A value a script set in one of Postman's scopes; `None` when it unset the name (which also
/// hides the collection's or environment's definition of it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerVar {
    /// The value, or `None` for unset.
    pub value: Option<Value>,
    /// Whether it is secret.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
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

/// How an OAuth2 client authenticated at the token endpoint.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

impl std::fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Post => "post",
            ClientAuth::None => "none",
        })
    }
}

/// The OAuth2 grant behind the stored tokens: who issued them, to which client, until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    /// Random id of this token set; tells processes apart when they rotate tokens.
    pub id: String,
    /// The token endpoint that issued the tokens (without query).
    pub token_url: String,
    /// The client the grant was issued to.
    pub client_id: String,
    /// How that client authenticated.
    pub client_auth: ClientAuth,
    /// When the access token was received (unix seconds, on the clock the runner follows).
    pub issued_at: i64,
    /// When the access token expires: `issued_at + expires_in`, or a JWT's `exp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Which access token this describes (a short SHA-256 of it), so a token set by hand is not
    /// mistaken for the granted one.
    pub access_token_sha: String,
    /// The granted scope, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Set when the token endpoint rejected the refresh token (`invalid_grant`): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_dead: Option<String>,
}

/// A short fingerprint of a token, for [`Grant::access_token_sha`].
pub fn token_sha(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
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
        "{path}: the state file is damaged ({message}); nothing was changed — fix or remove it, or clear it with `postie state clear`"
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

/// The files that hold one collection's state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The state file.
    pub state: PathBuf,
    /// The advisory lock beside it.
    pub lock: PathBuf,
    /// The REPL's history of typed lines.
    pub history: PathBuf,
}

impl Paths {
    /// The files for the collection at `collection` (state under `dir`, default `.postie/`).
    pub fn for_collection(collection: &Path, dir: Option<&Path>) -> Paths {
        let parent = crate::util::dir_of(collection);
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| state_dir(&parent));
        let file = collection_file_name(collection);
        Paths {
            state: dir.join(format!("{file}.state.json")),
            lock: dir.join(format!("{file}.lock")),
            history: dir.join(format!("{file}.history")),
        }
    }
}

fn collection_file_name(collection: &Path) -> String {
    collection
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "collection".into())
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
        let bytes = self.to_bytes();
        crate::util::write_private_atomic(path, &bytes).map_err(io)
    }

    /// The file's bytes: compact JSON (it is read by postie, and kept small so a long history
    /// loads and saves fast).
    fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Versioned<'a> {
            version: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            collection: &'a Option<CollectionId>,
            envs: &'a BTreeMap<String, EnvState>,
        }
        serde_json::to_vec(&Versioned {
            version: VERSION,
            collection: &self.collection,
            envs: &self.envs,
        })
        .unwrap_or_default()
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
    /// Variables set by responses or by hand.
    pub fn vars(&self) -> &IndexMap<String, StoredVar> {
        &self.vars
    }

    /// Recent exchanges per request, as stored (see [`EnvState::exchange_values`]).
    pub fn exchanges(&self) -> &IndexMap<String, Vec<StoredExchange>> {
        &self.exchanges
    }

    /// A request's recent exchanges, parsed, oldest first.
    pub fn exchange_values(&self, name: &str) -> Vec<Value> {
        self.exchanges
            .get(name)
            .map(|l| l.iter().filter_map(|r| parse_stored(r)).collect())
            .unwrap_or_default()
    }

    /// The grant behind the stored tokens.
    pub fn grant(&self) -> Option<&Grant> {
        self.grant.as_ref()
    }

    /// Replaces the grant.
    pub fn set_grant(&mut self, grant: Option<Grant>) {
        self.grant = grant;
        self.changes.grant = true;
    }

    /// The grant, to change it.
    pub fn grant_mut(&mut self) -> Option<&mut Grant> {
        self.changes.grant = true;
        self.grant.as_mut()
    }

    /// Earlier secret values, for masking.
    pub fn seen_secrets(&self) -> &[String] {
        &self.seen_secrets
    }

    /// Records an exchange under its request name, keeping the last [`KEEP_EXCHANGES`]. A body
    /// larger than [`KEEP_BODY_BYTES`] is replaced by a note of its size.
    pub fn record_exchange(&mut self, name: &str, value: Value, body_bytes: usize) {
        self.record_stored(name, body_bytes, |seq, omitted| {
            let mut value = value;
            if let Value::Object(m) = &mut value {
                m.insert("seq".into(), Value::from(seq));
                if let Some(note) = omitted {
                    m.insert("body".into(), Value::Null);
                    m.insert("body_omitted".into(), note);
                }
            }
            serde_json::value::to_raw_value(&value).ok()
        });
    }

    /// Records an exchange that `write` turns into its stored JSON, given its sequence number
    /// and, when its body is over [`KEEP_BODY_BYTES`], the note to keep in the body's place.
    pub fn record_stored(
        &mut self,
        name: &str,
        body_bytes: usize,
        write: impl FnOnce(u64, Option<Value>) -> Option<Box<serde_json::value::RawValue>>,
    ) {
        self.seq += 1;
        let omitted = (body_bytes > KEEP_BODY_BYTES)
            .then(|| serde_json::json!({"bytes": body_bytes, "kept_up_to": KEEP_BODY_BYTES}));
        let Some(raw) = write(self.seq, omitted) else {
            return;
        };
        let list = self.exchanges.entry(name.to_string()).or_default();
        list.push(raw);
        if list.len() > KEEP_EXCHANGES {
            let extra = list.len() - KEEP_EXCHANGES;
            list.drain(..extra);
        }
        if !self.changes.exchanges.contains(name) {
            self.changes.exchanges.insert(name.to_string());
        }
    }

    /// The names of the members of the latest response body of a request that hold a plain value
    /// (not an object or a list), read without building the exchange; empty when the body is not
    /// an object or the request never ran.
    pub fn last_body_scalars(&self, name: &str) -> Vec<String> {
        self.exchanges
            .get(name)
            .and_then(|v| v.last())
            .map(|r| stored_body_scalars(r))
            .unwrap_or_default()
    }

    /// The latest exchange of a request, parsed.
    pub fn last_exchange(&self, name: &str) -> Option<Value> {
        self.exchanges
            .get(name)
            .and_then(|v| v.last())
            .and_then(|r| parse_stored(r))
    }

    /// Sets a variable. A secret value it replaces is remembered, so it stays masked.
    pub fn set(&mut self, name: &str, value: Value, source: Option<&str>, secret: bool) {
        if let Some(old) = self.vars.get(name)
            && (old.secret || secret)
            && old.value != value
            && let Value::String(s) = &old.value
        {
            let s = s.clone();
            self.remember_secret(s);
        }
        self.vars.insert(
            name.to_string(),
            StoredVar {
                value,
                source: source.map(String::from),
                secret,
            },
        );
        if !self.changes.vars.contains(name) {
            self.changes.vars.insert(name.to_string());
        }
    }

    /// A Postman scope's script-set values (`environment`, `collection`, `globals`).
    pub fn layer(&self, layer: &str) -> Option<&IndexMap<String, LayerVar>> {
        self.layers.get(layer)
    }

    /// Sets (or with `None` unsets) a name in a Postman scope. A secret value it replaces is
    /// remembered, so it stays masked.
    pub fn set_layer(&mut self, layer: &str, name: &str, value: Option<Value>, secret: bool) {
        let map = self.layers.entry(layer.to_string()).or_default();
        let old = map.insert(name.to_string(), LayerVar { value, secret });
        if let Some(LayerVar {
            value: Some(Value::String(s)),
            secret: true,
        }) = old
        {
            self.remember_secret(s);
        }
        self.changes
            .layers
            .insert((layer.to_string(), name.to_string()));
    }

    /// Removes a variable (a secret one stays remembered for masking).
    pub fn remove_var(&mut self, name: &str) -> Option<StoredVar> {
        let old = self.vars.shift_remove(name)?;
        if old.secret
            && let Value::String(s) = &old.value
        {
            let s = s.clone();
            self.remember_secret(s);
        }
        self.changes.vars.insert(name.to_string());
        Some(old)
    }

    /// Remembers a secret value for masking (bounded; the oldest is forgotten first).
    pub fn remember_secret(&mut self, value: String) {
        if value.len() < 4 || self.seen_secrets.contains(&value) {
            return;
        }
        self.seen_secrets.push(value);
        if self.seen_secrets.len() > KEEP_SEEN_SECRETS {
            let extra = self.seen_secrets.len() - KEEP_SEEN_SECRETS;
            self.seen_secrets.drain(..extra);
        }
        self.changes.seen = true;
    }

    /// Whether this process changed anything here since it last synchronised.
    pub fn is_dirty(&self) -> bool {
        self.changes.any()
    }

    /// Applies this process's changes onto `target` (the file's current content): variables set
    /// or removed, exchanges recorded, the grant, remembered secrets.
    fn apply_changes_to(&self, target: &mut EnvState) {
        for k in &self.changes.vars {
            match self.vars.get(k) {
                Some(v) => {
                    target.vars.insert(k.clone(), v.clone());
                }
                None => {
                    target.vars.shift_remove(k);
                }
            }
        }
        for k in &self.changes.exchanges {
            if let Some(list) = self.exchanges.get(k) {
                target.exchanges.insert(k.clone(), list.clone());
            }
        }
        for (layer, k) in &self.changes.layers {
            if let Some(v) = self.layers.get(layer).and_then(|m| m.get(k)) {
                target
                    .layers
                    .entry(layer.clone())
                    .or_default()
                    .insert(k.clone(), v.clone());
            }
        }
        if self.changes.grant {
            target.grant = self.grant.clone();
        }
        if self.changes.seen {
            for s in &self.seen_secrets {
                if !target.seen_secrets.contains(s) {
                    target.seen_secrets.push(s.clone());
                }
            }
            let extra = target.seen_secrets.len().saturating_sub(KEEP_SEEN_SECRETS);
            target.seen_secrets.drain(..extra);
        }
        target.seq = target.seq.max(self.seq);
    }

    fn clear_changes(&mut self) {
        self.changes = Changes::default();
    }
}

/// Parses a stored exchange (a damaged one reads as absent).
pub fn parse_stored(raw: &serde_json::value::RawValue) -> Option<Value> {
    serde_json::from_str(raw.get()).ok()
}

/// The names of a stored exchange's body members that hold a plain value, read without building
/// the exchange: everything else is skipped as it is read.
pub fn stored_body_scalars(raw: &serde_json::value::RawValue) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// Whether a value is plain (not an object or a list); its contents are skipped.
    struct Plain;
    impl<'de> DeserializeSeed<'de> for Plain {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Plain {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<bool, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(false)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<bool, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(false)
        }
    }

    /// The plain members of a body that is an object, collected as they are read (reading the
    /// body as a map of them first cost 3,000 instructions a step). Any other body fails to
    /// read, and so gives no names, as a damaged record does.
    struct Names;
    impl<'de> Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a response body that is an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Vec<String>, A::Error> {
            let mut names = Vec::new();
            while let Some(k) = a.next_key::<String>()? {
                if a.next_value_seed(Plain)? {
                    names.push(k);
                }
            }
            Ok(names)
        }
    }
    fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_map(Names)
    }

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "names")]
        body: Vec<String>,
    }
    serde_json::from_str::<Body>(raw.get())
        .map(|b| b.body)
        .unwrap_or_default()
}

/// The sequence number of a stored exchange, read without building it.
pub fn stored_seq(raw: &serde_json::value::RawValue) -> u64 {
    #[derive(Deserialize)]
    struct Seq {
        #[serde(default)]
        seq: u64,
    }
    serde_json::from_str::<Seq>(raw.get())
        .map(|s| s.seq)
        .unwrap_or(0)
}

/// One process's view of a collection's state file: what it loaded, what it changed, and the
/// lock it may hold.
#[derive(Debug)]
pub struct Store {
    /// The files.
    pub paths: Paths,
    /// The state as this process sees it.
    pub state: State,
    /// Grant ids the file held when this process last read or wrote it, per environment.
    file_grants: HashMap<String, Option<String>>,
    /// The file's identity when this process last read or wrote it (to notice other writers).
    file_stamp: Option<FileStamp>,
    /// The lock, while held (refresh holds it across the token request).
    held: Option<std::fs::File>,
    /// The state in memory is the file's plus this process's changes (false after `--fresh`,
    /// which starts from empty state).
    synced_is_file: bool,
    /// Opened with `--fresh`: this process ignores what it did not set itself.
    fresh: bool,
    /// `file_grants` says what the file held (a fresh run learns it at its first look).
    grants_known: bool,
    /// Things to tell the user once (a migration).
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct FileStamp {
    modified: std::time::SystemTime,
    len: u64,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok()?,
        len: m.len(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

impl Store {
    /// Opens the state of the collection at `collection`. With `fresh`, this process starts from
    /// empty state but leaves the file as it is (what it sets is still saved).
    pub fn open(
        collection: &Path,
        name: &str,
        dir: Option<&Path>,
        fresh: bool,
    ) -> Result<Store, StateError> {
        let paths = Paths::for_collection(collection, dir);
        let mut notices = Vec::new();
        if dir.is_none() && !paths.state.exists() {
            migrate_legacy(collection, &paths, &mut notices);
        }
        // A fresh run does not read what it ignores; grants other processes store later are
        // still noticed (see `adopt_newer_grant`).
        let on_disk = if fresh {
            State::default()
        } else {
            State::load(&paths.state)?
        };
        let file_grants = grant_ids(&on_disk);
        let mut state = on_disk;
        state.collection = Some(CollectionId {
            file: collection_file_name(collection),
            name: name.to_string(),
        });
        Ok(Store {
            file_stamp: stamp(&paths.state),
            paths,
            state,
            file_grants,
            held: None,
            synced_is_file: !fresh,
            fresh,
            grants_known: !fresh,
            notices,
        })
    }

    /// Whether this process changed anything since it last synchronised.
    pub fn dirty(&self) -> bool {
        self.state.envs.values().any(EnvState::is_dirty)
    }

    /// Saves what changed: under the lock, re-reads the file and applies only this process's
    /// changes to it, so concurrent writers' changes to other values survive. When nobody else
    /// wrote the file since this process read it, the state in memory is written as it is.
    pub fn save(&mut self) -> Result<(), StateError> {
        if !self.dirty() {
            return Ok(());
        }
        let held = self.held.is_some();
        let _guard = if held {
            None
        } else {
            Some(lock_blocking(&self.paths.lock)?)
        };
        if self.synced_is_file && !self.changed_on_disk() {
            self.state.save(&self.paths.state)?;
            self.after_save();
            return Ok(());
        }
        let mut disk = State::load(&self.paths.state)?;
        disk.collection = self.state.collection.clone();
        for (env, mine) in &self.state.envs {
            if mine.is_dirty() {
                mine.apply_changes_to(disk.env_mut(env));
            }
        }
        disk.save(&self.paths.state)?;
        if self.fresh {
            // A `--fresh` run keeps ignoring what it did not set itself.
            self.file_grants = grant_ids(&disk);
            self.grants_known = true;
            self.after_save();
        } else {
            // From now on this process's view is the file's (others' changes merged in).
            self.state = disk;
            self.synced_is_file = true;
            self.after_save();
        }
        Ok(())
    }

    fn after_save(&mut self) {
        if !self.fresh {
            self.file_grants = grant_ids(&self.state);
            self.grants_known = true;
        }
        self.file_stamp = stamp(&self.paths.state);
        for e in self.state.envs.values_mut() {
            e.clear_changes();
        }
    }

    /// Whether another process wrote the file since this one last read or wrote it.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.paths.state) != self.file_stamp
    }

    /// If another process stored a different grant for `env` since this one last looked (a
    /// refresh or a login elsewhere), takes that grant and the token variables it names.
    /// Returns whether it did.
    pub fn adopt_newer_grant(&mut self, env: &str, token_vars: &[&str]) -> bool {
        let Ok(disk) = State::load(&self.paths.state) else {
            return false;
        };
        self.file_stamp = stamp(&self.paths.state);
        if !self.grants_known {
            // A fresh run never read the file: what it holds now is what it ignores.
            self.file_grants = grant_ids(&disk);
            self.grants_known = true;
            return false;
        }
        let theirs = disk.envs.get(env);
        let their_id = theirs.and_then(|e| e.grant.as_ref()).map(|g| g.id.clone());
        let known = self.file_grants.get(env).cloned().flatten();
        let ours = self
            .state
            .envs
            .get(env)
            .and_then(|e| e.grant.as_ref())
            .map(|g| g.id.clone());
        self.file_grants = grant_ids(&disk);
        let (Some(their_id), Some(theirs)) = (their_id, theirs) else {
            return false;
        };
        if Some(&their_id) == known.as_ref() || Some(&their_id) == ours.as_ref() {
            return false;
        }
        let adopted: Vec<(String, StoredVar)> = token_vars
            .iter()
            .filter_map(|n| theirs.vars.get(*n).map(|v| (n.to_string(), v.clone())))
            .collect();
        let grant = theirs.grant.clone();
        // Adopted values are the file's, not changes of ours: they are not marked changed.
        let e = self.state.env_mut(env);
        for (name, v) in adopted {
            e.vars.insert(name.clone(), v);
            e.changes.vars.remove(&name);
        }
        e.grant = grant;
        e.changes.grant = false;
        true
    }

    /// Takes the lock (waiting for another process's refresh to finish) and holds it until
    /// [`Store::release`].
    pub async fn hold(&mut self) -> Result<(), StateError> {
        if self.held.is_none() {
            self.held = Some(lock_async(&self.paths.lock).await?);
        }
        Ok(())
    }

    /// Releases the lock taken by [`Store::hold`].
    pub fn release(&mut self) {
        self.held = None;
    }

    /// Deletes the saved state of one environment, or of every environment of the collection.
    pub fn clear(&mut self, env: Option<&str>) -> Result<usize, StateError> {
        let _guard = lock_blocking(&self.paths.lock)?;
        let mut disk = State::load(&self.paths.state)?;
        let removed = match env {
            Some(e) => usize::from(disk.envs.remove(e).is_some()),
            None => std::mem::take(&mut disk.envs).len(),
        };
        disk.save(&self.paths.state)?;
        match env {
            Some(e) => {
                self.state.envs.remove(e);
            }
            None => {
                self.state.envs.clear();
            }
        }
        self.file_grants = grant_ids(&disk);
        self.file_stamp = stamp(&self.paths.state);
        Ok(removed)
    }
}

fn grant_ids(s: &State) -> HashMap<String, Option<String>> {
    s.envs
        .iter()
        .map(|(k, e)| (k.clone(), e.grant.as_ref().map(|g| g.id.clone())))
        .collect()
}

fn open_lock_file(path: &Path) -> Result<std::fs::File, StateError> {
    let io = |e| StateError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        ensure_state_dir(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(io)
}

/// Takes the exclusive advisory lock, blocking.
fn lock_blocking(path: &Path) -> Result<std::fs::File, StateError> {
    let f = open_lock_file(path)?;
    f.lock().map_err(|e| StateError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(f)
}

/// Takes the exclusive advisory lock without blocking the async runtime.
async fn lock_async(path: &Path) -> Result<std::fs::File, StateError> {
    let f = open_lock_file(path)?;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StateError::Io {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
}

/// Before per-collection state, one `.postie/state.json` served every collection in a folder.
/// It is taken over only when this is the folder's one collection: otherwise nobody can tell
/// whose tokens it holds, and sharing them is exactly the leak per-collection state prevents.
fn migrate_legacy(collection: &Path, paths: &Paths, notices: &mut Vec<String>) {
    let Some(dir) = paths.state.parent() else {
        return;
    };
    let legacy = dir.join("state.json");
    if !legacy.exists() {
        return;
    }
    let folder = dir.parent().unwrap_or(Path::new("."));
    let collections: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| looks_like_collection(p))
                .collect()
        })
        .unwrap_or_default();
    let ours = collection.file_name();
    if collections.len() == 1 && collections[0].file_name() == ours {
        match std::fs::rename(&legacy, &paths.state) {
            Ok(()) => notices.push(format!(
                "moved the old shared state {} to {} (state is now kept per collection)",
                legacy.display(),
                paths.state.display()
            )),
            Err(e) => notices.push(format!(
                "could not move the old state {}: {e}",
                legacy.display()
            )),
        }
    } else {
        notices.push(format!(
            "{} is the old state shared by the {} collections in this folder; it is no longer used, because nobody can tell whose tokens it holds. Log in again (`postie auth login`), or rename it to {} to give it to this collection.",
            legacy.display(),
            collections.len(),
            paths.state.display()
        ));
    }
}

fn looks_like_collection(p: &Path) -> bool {
    let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    yaml && std::fs::read_to_string(p)
        .map(|t| t.lines().any(|l| l.starts_with("requests:")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_bodys_plain_members_are_read_as_a_parse_would_find_them() {
        use serde_json::json;
        // What a full parse of the exchange finds: the body's members that are not objects or
        // lists.
        let parsed = |raw: &serde_json::value::RawValue| -> Vec<String> {
            match parse_stored(raw).as_ref().and_then(|v| v.get("body")) {
                Some(Value::Object(m)) => m
                    .iter()
                    .filter(|(_, v)| !v.is_object() && !v.is_array())
                    .map(|(k, _)| k.clone())
                    .collect(),
                _ => Vec::new(),
            }
        };
        let bodies = [
            json!({"id": "c-1", "n": 3, "f": 1.5, "neg": -2, "ok": true, "none": null,
                   "nested": {"a": {"b": [1, {"c": 2}]}}, "list": [1, [2], {"x": "y"}],
                   "text": "a \"quoted\" \\ value", "after": "last"}),
            json!({}),
            json!([{"id": 1}]),
            json!("plain text"),
            json!(null),
            json!(42),
        ];
        for body in bodies {
            let ex = json!({"seq": 7, "request": {"headers": {"a": "b"}}, "body": body,
                            "status": 200, "headers": [["x", "y"]]});
            let raw = serde_json::value::to_raw_value(&ex).unwrap();
            assert_eq!(stored_body_scalars(&raw), parsed(&raw), "{body}");
        }
        let cases = [
            // No body, a body omitted for its size, a damaged record.
            r#"{"seq": 1, "status": 204}"#,
            r#"{"seq": 2, "body": null, "body_omitted": {"bytes": 9}}"#,
            r#"{"seq": 3, "body": {"a": 1, "b": "#,
        ];
        for text in cases {
            let raw = serde_json::value::RawValue::from_string(text.to_string());
            match raw {
                Ok(raw) => assert_eq!(stored_body_scalars(&raw), parsed(&raw), "{text}"),
                // Not JSON at all: nothing to read either way.
                Err(_) => continue,
            }
        }
        // A body member before the body, and members in the original order.
        let raw = serde_json::value::RawValue::from_string(
            r#"{"body": {"z": 1, "a": {"q": 1}, "m": "x"}, "seq": 4}"#.to_string(),
        )
        .unwrap();
        assert_eq!(stored_body_scalars(&raw), ["z", "m"]);
    }

    fn store(dir: &Path, fresh: bool) -> Store {
        Store::open(&dir.join("c.yaml"), "c", None, fresh).unwrap()
    }

    #[test]
    fn round_trip_private_ignored_and_per_collection() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), false);
        let e = s.state.env_mut("mock");
        e.set(
            "access_token",
            Value::String("AT-1".into()),
            Some("token"),
            true,
        );
        for i in 0..5 {
            e.record_exchange("token", serde_json::json!({"status": i, "body": {}}), 2);
        }
        s.save().unwrap();
        let path = dir.path().join(".postie/c.yaml.state.json");
        let back = State::load(&path).unwrap();
        assert_eq!(back.version, VERSION);
        assert_eq!(back.collection.as_ref().unwrap().file, "c.yaml");
        assert_eq!(back.envs["mock"].exchanges["token"].len(), KEEP_EXCHANGES);
        assert_eq!(
            back.envs["mock"].last_exchange("token").unwrap()["status"],
            4
        );
        assert!(
            std::fs::read_to_string(dir.path().join(".postie/.gitignore"))
                .unwrap()
                .contains('*')
        );
        // Another collection in the same folder sees none of it.
        let other = Store::open(&dir.path().join("d.yaml"), "d", None, false).unwrap();
        assert!(other.state.envs.is_empty());
        std::fs::write(&path, "{not json").unwrap();
        let err = Store::open(&dir.path().join("c.yaml"), "c", None, false).unwrap_err();
        assert!(err.to_string().contains("state clear"), "{err}");
    }

    #[test]
    fn saves_merge_so_a_token_another_process_rotated_survives() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = store(dir.path(), false);
        first.state.env_mut("dev").set(
            "refresh_token",
            Value::String("RT-old".into()),
            Some("token"),
            true,
        );
        first.save().unwrap();
        // A long-lived process (the REPL) loads RT-old...
        let mut repl = store(dir.path(), false);
        // ...another process rotates it...
        let mut other = store(dir.path(), false);
        other.state.env_mut("dev").set(
            "refresh_token",
            Value::String("RT-new".into()),
            Some("refresh"),
            true,
        );
        other.save().unwrap();
        assert!(repl.changed_on_disk());
        // ...and the REPL saves an unrelated change: the rotated token stays.
        repl.state.env_mut("dev").set(
            "contact_id",
            Value::String("c1".into()),
            Some("find"),
            false,
        );
        repl.save().unwrap();
        let disk = State::load(&repl.paths.state).unwrap();
        assert_eq!(disk.envs["dev"].vars["refresh_token"].value, "RT-new");
        assert_eq!(disk.envs["dev"].vars["contact_id"].value, "c1");
    }

    #[test]
    fn fresh_ignores_but_keeps_the_file_and_clear_deletes_one_env() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), false);
        s.state
            .env_mut("production")
            .set("x", Value::from(1), None, false);
        s.state
            .env_mut("mock")
            .set("y", Value::from(2), None, false);
        s.save().unwrap();
        let mut f = store(dir.path(), true);
        assert!(f.state.envs.is_empty());
        f.state
            .env_mut("mock")
            .set("z", Value::from(3), None, false);
        f.save().unwrap();
        let disk = State::load(&f.paths.state).unwrap();
        assert_eq!(disk.envs["production"].vars["x"].value, 1);
        assert_eq!(disk.envs["mock"].vars.len(), 2);
        assert_eq!(f.clear(Some("mock")).unwrap(), 1);
        let disk = State::load(&f.paths.state).unwrap();
        assert!(disk.envs.contains_key("production") && !disk.envs.contains_key("mock"));
    }

    #[test]
    fn legacy_state_moves_only_for_the_folders_one_collection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".postie")).unwrap();
        let legacy =
            r#"{"envs": {"dev": {"vars": {"access_token": {"value": "AT", "secret": true}}}}}"#;
        std::fs::write(dir.path().join(".postie/state.json"), legacy).unwrap();
        std::fs::write(dir.path().join("a.yaml"), "name: a\nrequests: {}\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "name: b\nrequests: {}\n").unwrap();
        let a = Store::open(&dir.path().join("a.yaml"), "a", None, false).unwrap();
        assert!(a.state.envs.is_empty(), "two collections: not migrated");
        assert!(a.notices[0].contains("nobody can tell"), "{:?}", a.notices);
        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        let a = Store::open(&dir.path().join("a.yaml"), "a", None, false).unwrap();
        assert_eq!(a.state.envs["dev"].vars["access_token"].value, "AT");
        assert!(!dir.path().join(".postie/state.json").exists());
    }

    /// An exchange is kept as the template context sees it, written without a value between.
    #[test]
    fn an_exchange_is_kept_with_its_headers_joined_and_a_big_body_left_out() {
        use crate::exchange::{Body, Exchange, Rendered};
        let sent = Rendered {
            name: "find".into(),
            method: "GET".into(),
            url: "http://h/v3/contacts?email=a%40x.io".into(),
            headers: vec![],
            body: Body::None,
            follow_redirects: false,
            timeout: std::time::Duration::from_secs(1),
        };
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("set-cookie".to_string(), "a=1".to_string()),
            ("x-n".to_string(), "\"q\"".to_string()),
            ("set-cookie".to_string(), "b=2".to_string()),
        ];
        let ex = Exchange::new(
            sent.clone(),
            200,
            headers.clone(),
            bytes::Bytes::from_static(br#"{"contacts":[{"id":"c1"}]}"#),
            std::time::Duration::from_micros(1500),
        );
        let mut e = EnvState::default();
        e.record_stored("find", ex.body.len(), |seq, omitted| {
            ex.stored(seq, omitted)
        });
        assert_eq!(
            e.exchanges["find"][0].get(),
            r#"{"status":200,"headers":{"content-type":"application/json","set-cookie":"a=1, b=2","x-n":"\"q\""},"body":{"contacts":[{"id":"c1"}]},"elapsed_ms":1.5,"method":"GET","url":"http://h/v3/contacts?email=a%40x.io","seq":1}"#
        );
        // Text stays text; a body over the limit leaves a note of its size in its place.
        let text = Exchange::new(
            sent,
            404,
            vec![],
            bytes::Bytes::from_static(b"not here"),
            std::time::Duration::ZERO,
        );
        e.record_stored("find", text.body.len(), |seq, omitted| {
            text.stored(seq, omitted)
        });
        assert_eq!(e.last_exchange("find").unwrap()["body"], "not here");
        e.record_stored("find", KEEP_BODY_BYTES + 1, |seq, omitted| {
            text.stored(seq, omitted)
        });
        let big = e.last_exchange("find").unwrap();
        assert!(big["body"].is_null());
        assert_eq!(big["body_omitted"]["bytes"], KEEP_BODY_BYTES + 1);
        assert_eq!(big["seq"], 3);
    }

    #[test]
    fn replaced_secrets_are_remembered_and_big_bodies_summarised() {
        let mut e = EnvState::default();
        e.set("t", Value::String("secret-one".into()), None, true);
        e.set("t", Value::String("secret-two".into()), None, true);
        assert_eq!(e.seen_secrets, vec!["secret-one".to_string()]);
        e.record_exchange(
            "big",
            serde_json::json!({"status": 200, "body": "x"}),
            KEEP_BODY_BYTES + 1,
        );
        let big = e.last_exchange("big").unwrap();
        assert!(big["body"].is_null());
        assert_eq!(big["body_omitted"]["bytes"], KEEP_BODY_BYTES + 1);
    }
}
