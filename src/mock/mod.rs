//! The mock server: a general engine with the Constant Contact simulation as its first pack.
//!
//! ```text
//! socket ─> front.rs (hyper, own runtime thread): read body, faults ─> route() ─┬─ /__postie/... admin.rs
//!                                                                               ├─ stub files     engine/stubs.rs
//!                                                                               ├─ /oauth2/...    oauth.rs (authorization server)
//!                                                                               ├─ /v3/...        packs/constant_contact (bearer ─> contacts | lists | activities)
//!                                                                               └─ a document     engine/spec.rs
//! engine/: spec (serve an OpenAPI document), stubs, faults, record (proxy → stub file)
//! all pack state: Shared.sim (one lock); with --state each request's changes are one journal
//! record, durable before the response (wal.rs), merged into a snapshot in the background;
//! bulk activities applied a slice at a time by a background task between requests
//! (front.rs ─> packs/constant_contact/applying.rs)
//! ```
//! Dependencies point one way: packs → engine, never the engine → a pack.
//! It knows nothing of the runner; the CLI wires the two together for `--mock`.

pub mod admin;
pub mod cli;
pub mod config;
pub mod engine;
pub mod front;
pub mod http;
pub mod oauth;
pub mod packs;
pub mod wal;

use packs::constant_contact::store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use config::MockConfig;
use front::run;
use http::{Req, Resp};
use oauth::{Claims, Keys};
use packs::constant_contact::{api, cors, seeded};
use store::Sim;

/// 9999-12-31T23:59:59Z in ms: the last instant RFC 3339 can write.
const LAST_INSTANT_MS: i64 = 253_402_300_799_000;

/// Largest request body accepted (an import of 40,000 contacts fits well within it).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Verified-signature cache size before it is cleared.
const TOKEN_CACHE: usize = 100_000;

/// One journal line: no query strings, headers or bodies, so no secrets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalEntry {
    /// Mock-clock time (ms); shown as RFC 3339.
    #[serde(serialize_with = "ser_ts")]
    pub at: i64,
    /// Method.
    pub method: String,
    /// Path only.
    pub path: String,
    /// Status.
    pub status: u16,
    /// Route that answered.
    pub route: &'static str,
    /// Handling time in microseconds.
    pub micros: u64,
    /// The injected faults that shaped this answer (status 0: none was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Which stub answered, or why none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The request journal: the newest entries in a ring, each new one written over the oldest in
/// place, so a request touches one slot (a queue's pop and push touched two, far apart). The
/// n-th entry ever recorded (from 0) lives in slot n mod the ring's size.
#[derive(Debug, Default)]
struct Ring {
    slots: Vec<JournalEntry>,
    /// Entries ever recorded.
    total: u64,
}

impl Ring {
    /// Records `e`, keeping at most `cap` entries; returns the entry it replaced.
    fn push(&mut self, e: JournalEntry, cap: usize) -> Option<JournalEntry> {
        let at = (self.total % cap as u64) as usize;
        self.total += 1;
        if self.slots.len() < cap {
            self.slots.push(e);
            return None;
        }
        Some(std::mem::replace(&mut self.slots[at], e))
    }

    /// The newest `limit` entries, oldest first.
    fn newest(&self, limit: usize) -> Vec<JournalEntry> {
        // The oldest is where the next entry goes (slot 0 until the ring is full).
        let oldest = match self.slots.len() {
            0 => 0,
            n => (self.total % n as u64) as usize,
        };
        let (newer, older) = self.slots.split_at(oldest);
        let skip = self.slots.len().saturating_sub(limit);
        older.iter().chain(newer).skip(skip).cloned().collect()
    }
}

/// An HTTP POST the mock makes to someone else (a webhook), after the request that caused it.
#[derive(Debug, Clone)]
pub struct Callback {
    /// Where.
    pub url: String,
    /// The JSON sent.
    pub body: Value,
    /// What it is, for the journal (`webhook test topic 1`).
    pub what: String,
}

fn ser_ts<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&store::Ts(*ms), s)
}

/// A cheap hasher for the verified-token cache: a JWT's last bytes are its signature, random
/// enough to spread keys; equality still compares whole tokens, so collisions cost only time.
#[derive(Default)]
struct TailHasher(u64);

impl std::hash::Hasher for TailHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // The last sixteen bytes as two words (zero-padded in front for a shorter key).
        let n = bytes.len();
        let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
        let (a, b) = if n >= 16 {
            (word(&bytes[n - 16..n - 8]), word(&bytes[n - 8..]))
        } else {
            let mut t = [0u8; 16];
            t[16 - n..].copy_from_slice(bytes);
            (word(&t[..8]), word(&t[8..]))
        };
        self.0 = (self.0.rotate_left(5) ^ a).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 =
            (self.0.rotate_left(5) ^ b).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ bytes.len() as u64;
    }
}

/// Verified access tokens by their bytes as sent: a cached token is found without checking its
/// text again (about a thousand bytes, once per request).
type TokenCache = HashMap<Box<[u8]>, Arc<Claims>, std::hash::BuildHasherDefault<TailHasher>>;

/// Everything the handlers share.
pub struct Shared {
    /// Configuration.
    pub cfg: MockConfig,
    /// The signing key, replaced when a fault rotates it.
    keys: std::sync::RwLock<Arc<Keys>>,
    /// Key ids rotated away (their tokens fail as `fault.key_rotated`).
    retired_kids: Mutex<Vec<String>>,
    /// Access tokens issued at or before this instant (ms) fail: "expire every token now".
    tokens_cutoff: AtomicI64,
    /// The simulation (one lock).
    pub sim: Mutex<Sim>,
    verified: Mutex<TokenCache>,
    journal: Mutex<Ring>,
    /// The durable journal (with `--state`).
    wal: Option<Arc<wal::Wal>>,
    /// Mirror of `Sim::clock_offset_ms`, read without the lock on every request.
    clock_offset: AtomicI64,
    /// Faults in force (configuration, `/__postie/faults`, the REPL).
    pub faults: engine::faults::Faults,
    /// Callbacks a request asked for (a webhook test): the front sends them after answering.
    outbox: Mutex<Vec<Callback>>,
    /// Whether `outbox` holds any: read on every request without the lock.
    has_callbacks: std::sync::atomic::AtomicBool,
    /// The vendor's Swagger behind the pack, read on first use (`MockConfig::vendor_contract`).
    vendor: std::sync::OnceLock<Option<Arc<engine::spec::SpecServer>>>,
    /// The exclusive lock on the state file, held while the mock runs: two mocks writing one
    /// file would each acknowledge writes the other then overwrites.
    _state_lock: Option<std::fs::File>,
}

thread_local! {
    /// The newest journal record a request made on this thread (see [`SimGuard`]).
    static LAST_RECORD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The locked simulation. Dropping it journals what changed while it was held.
pub struct SimGuard<'a> {
    guard: MutexGuard<'a, Sim>,
    wal: Option<&'a wal::Wal>,
}

impl std::ops::Deref for SimGuard<'_> {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        &self.guard
    }
}

impl std::ops::DerefMut for SimGuard<'_> {
    fn deref_mut(&mut self) -> &mut Sim {
        &mut self.guard
    }
}

impl Drop for SimGuard<'_> {
    fn drop(&mut self) {
        match self.wal {
            Some(w) => {
                let seq = w.append(&mut self.guard);
                if seq > 0 {
                    LAST_RECORD.with(|l| l.set(l.get().max(seq)));
                }
            }
            // Without a state file there is nothing to journal; forget what changed.
            None if self.guard.has_changes() => {
                let mut sink = Vec::new();
                let _ = self.guard.take_changes(&mut sink);
            }
            None => {}
        }
    }
}

/// Takes the exclusive lock beside a state file, waiting up to `wait` for another process.
fn lock_state_file(path: &std::path::Path, wait: Duration) -> Result<std::fs::File, MockError> {
    let lock_path = {
        let mut p = path.as_os_str().to_owned();
        p.push(".lock");
        std::path::PathBuf::from(p)
    };
    if let Some(dir) = parent_dir(path) {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(MockError::Config(format!(
                        "{} is in use by another mock (a `postie mock --state` or another postie run with --mock in this folder); stop it, or share it: run `postie mock --state {}` once and pass --var mock_url=<its URL> instead of --mock",
                        path.display(),
                        path.display()
                    )));
                }
                if !said {
                    eprintln!(
                        "waiting for {}: another postie process is using the mock's data",
                        path.display()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A path's directory, `None` for a bare file name (the current directory).
fn parent_dir(path: &std::path::Path) -> Option<&std::path::Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// Mock errors at start-up.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// Configuration.
    #[error("{0}")]
    Config(String),
    /// Socket or runtime.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn real_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Shared {
    /// Builds the shared state: from the state file when it exists, else seeded fresh.
    pub fn new(cfg: MockConfig) -> Result<Shared, MockError> {
        let keys = Keys::from_pem(&cfg.key_pem, &cfg.file.key_id).map_err(MockError::Config)?;
        let state_lock = match &cfg.state_file {
            Some(p) => Some(lock_state_file(p, cfg.lock_wait)?),
            None => None,
        };
        let (sim, wal) = match &cfg.state_file {
            Some(p) => {
                let files = wal::Files::new(p);
                let mut loaded = None;
                let rec = wal::recover(&files, &mut loaded)
                    .map_err(|e| MockError::Config(e.to_string()))?;
                for n in &rec.notes {
                    eprintln!("postie mock: {n}");
                }
                let first = loaded.is_none() || !rec.notes.is_empty();
                let mut sim = loaded.unwrap_or_else(|| seeded(&cfg));
                if first {
                    // A snapshot to replay against: the seeded account, or the converted file.
                    if let Some(dir) = parent_dir(p) {
                        if dir.file_name().is_some_and(|n| n == ".postie") {
                            crate::state::ensure_state_dir(dir)?;
                        } else {
                            std::fs::create_dir_all(dir)?;
                        }
                    }
                    wal::write_snapshot(p, &sim, rec.seq)
                        .map_err(|e| MockError::Config(e.to_string()))?;
                    sim.forget_changes();
                }
                let w = wal::Wal::start(files, cfg.sync, &rec)
                    .map_err(|e| MockError::Config(e.to_string()))?;
                (sim, Some(w))
            }
            None => (seeded(&cfg), None),
        };
        let offset = sim.clock_offset_ms;
        let faults = engine::faults::Faults::new(real_ms() as u64);
        for f in &cfg.faults {
            faults.add(f.clone()).map_err(MockError::Config)?;
        }
        if let Some(stubs) = &cfg.stubs {
            stubs.install_faults(&faults).map_err(MockError::Config)?;
        }
        Ok(Shared {
            faults,
            clock_offset: AtomicI64::new(offset),
            cfg,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            retired_kids: Mutex::new(Vec::new()),
            tokens_cutoff: AtomicI64::new(i64::MIN),
            sim: Mutex::new(sim),
            verified: Mutex::new(TokenCache::default()),
            journal: Mutex::new(Ring::default()),
            wal,
            vendor: std::sync::OnceLock::new(),
            outbox: Mutex::new(Vec::new()),
            has_callbacks: std::sync::atomic::AtomicBool::new(false),
            _state_lock: state_lock,
        })
    }

    /// Sends a callback after the current request is answered (the front takes it).
    pub fn send_later(&self, cb: Callback) {
        self.outbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cb);
        self.has_callbacks.store(true, Ordering::Release);
    }

    /// The callbacks waiting; cheap when there are none (the usual case, on every request).
    fn take_callbacks(&self) -> Vec<Callback> {
        if !self.has_callbacks.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The document served beside the pack: `--spec`, else (with the pack) the vendor's Swagger,
    /// read the first time a request needs it.
    pub fn document(&self) -> Option<&engine::spec::SpecServer> {
        if let Some(s) = &self.cfg.spec {
            return Some(s);
        }
        if !(self.cfg.pack && self.cfg.vendor_contract) {
            return None;
        }
        self.vendor
            .get_or_init(|| {
                let doc = crate::openapi::Doc::parse(config::VENDOR_SWAGGER, false).ok()?;
                Some(Arc::new(
                    engine::spec::SpecServer::new(doc, 0, true).with_error_shape(http::cc_shape),
                ))
            })
            .as_deref()
    }

    /// Locks the simulation (a panic elsewhere never wedges the server). When the guard is
    /// dropped, what changed becomes one journal record, queued before the lock is released so
    /// records keep the order of the changes; the request then waits for it to be durable
    /// ([`Shared::written`]) without holding the lock.
    pub fn lock(&self) -> SimGuard<'_> {
        SimGuard {
            guard: self.sim.lock().unwrap_or_else(|e| e.into_inner()),
            wal: self.wal.as_deref(),
        }
    }

    /// Waits until the changes this thread's last requests made are durable; false when the
    /// journal could not be written.
    pub async fn written(&self, seq: u64) -> bool {
        match &self.wal {
            Some(w) => w.durable(seq).await,
            None => true,
        }
    }

    /// A runtime worker has run out of work: the journal writes what is queued now
    /// ([`wal::Wal::idle`]).
    pub fn idle(&self) {
        if let Some(w) = &self.wal {
            w.idle();
        }
    }

    /// Writes what is queued and merges the journal into the snapshot (at shutdown).
    pub fn close(&self) {
        if let Some(w) = &self.wal {
            w.shutdown();
        }
    }

    /// Mock-clock now in ms.
    pub fn now_ms(&self) -> i64 {
        real_ms() + self.clock_offset.load(Ordering::Acquire)
    }

    /// Advances the clock; the mock's time stays before year 10000 (RFC 3339's last).
    pub fn try_advance(&self, d: Duration) -> Result<i64, String> {
        let mut sim = self.lock();
        let add = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let offset = sim.clock_offset_ms.saturating_add(add);
        if real_ms().saturating_add(offset) > LAST_INSTANT_MS {
            return Err("the mock clock cannot go past 9999-12-31T23:59:59Z".into());
        }
        sim.clock_offset_ms = offset;
        self.clock_offset
            .store(sim.clock_offset_ms, Ordering::Release);
        Ok(real_ms() + sim.clock_offset_ms)
    }

    /// Advances the clock by a duration known to be small (tests).
    pub fn advance(&self, d: Duration) -> i64 {
        self.try_advance(d).unwrap_or_else(|_| self.now_ms())
    }

    /// Sets the clock to an absolute time (ms).
    pub fn set_clock(&self, at_ms: i64) {
        let mut sim = self.lock();
        sim.clock_offset_ms = at_ms - real_ms();
        self.clock_offset
            .store(sim.clock_offset_ms, Ordering::Release);
    }

    /// Resets to the seeded account.
    pub fn reset(&self) {
        self.replace(seeded(&self.cfg));
    }

    /// Replaces the whole simulation; with a journal, as a new snapshot.
    fn replace(&self, sim: Sim) {
        let mut guard = self.sim.lock().unwrap_or_else(|e| e.into_inner());
        *guard = sim;
        if let Some(w) = &self.wal
            && let Err(e) = w.rewrite(&mut guard)
        {
            eprintln!("postie mock: {e}");
        }
        self.clock_offset
            .store(guard.clock_offset_ms, Ordering::Release);
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Replaces the whole simulation (state import).
    pub fn import(&self, mut sim: Sim) {
        sim.reindex();
        self.replace(sim);
    }

    /// The journal's newest `limit` entries and the total ever recorded.
    pub fn journal(&self, limit: usize) -> (u64, Vec<JournalEntry>) {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        (j.total, j.newest(limit))
    }

    fn record(&self, e: JournalEntry) {
        let cap = self.cfg.file.journal_size.max(1);
        let old = self
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e, cap);
        // The entry written over is freed after the lock is released.
        drop(old);
    }

    /// The signing key in use.
    pub fn keys(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Token fault: a new signing key. The JWKS shows only it; tokens signed before fail.
    /// Returns the new key id.
    pub fn rotate_signing_key(&self) -> Result<String, String> {
        let old = self.keys();
        let n = self
            .retired_kids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + 1;
        let base = self.cfg.file.key_id.as_str();
        let kid = format!("{base}-rotated-{n}");
        let fresh = Keys::generate(&kid)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        self.retired_kids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(old.kid.clone());
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(kid)
    }

    /// Token fault: every access token issued so far fails from now on. The mock clock moves
    /// to the next whole second (tokens carry `iat` in seconds), so tokens issued afterwards
    /// are told apart from those before.
    pub fn expire_access_tokens(&self) {
        let now = self.now_ms();
        self.tokens_cutoff.fetch_max(now, Ordering::AcqRel);
        let to_next_second = 1000 - now.rem_euclid(1000);
        self.advance(Duration::from_millis(to_next_second as u64));
    }

    /// Token fault: refresh tokens (of one client, or all) stop working. Returns how many.
    pub fn revoke_refresh_tokens(&self, client_id: Option<&str>) -> usize {
        let mut sim = self.lock();
        let mut n = 0;
        for mut g in sim
            .refresh_tokens
            .values_mut()
            .filter(|g| !g.revoked && client_id.is_none_or(|c| g.client_id == c))
        {
            g.revoked = true;
            n += 1;
        }
        n
    }

    /// Why a verified token no longer counts, when a token fault says so.
    fn faulted(&self, claims: &Claims) -> Option<Resp> {
        (claims.iat * 1000 <= self.tokens_cutoff.load(Ordering::Acquire))
            .then(|| http::unauthorized().route("fault.tokens_expired"))
    }

    /// Verifies a bearer token: signature once (cached), expiry against the mock clock each time.
    fn bearer(&self, req: &Req, now_ms: i64) -> Result<Arc<Claims>, Resp> {
        let raw = req
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|h| {
                let h = h.as_bytes();
                h.strip_prefix(b"Bearer ")
                    .or_else(|| h.strip_prefix(b"bearer "))
            })
            .map(<[u8]>::trim_ascii)
            .ok_or_else(http::unauthorized)?;
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(raw)
            .cloned();
        let claims = match cached {
            Some(c) => c,
            None => {
                // A token is text; one that is not fails as any unverifiable token does.
                let token = std::str::from_utf8(raw).map_err(|_| http::unauthorized())?;
                let keys = self.keys();
                let Some(c) = keys.verify(token, &self.cfg) else {
                    let retired = jsonwebtoken::decode_header(token)
                        .ok()
                        .and_then(|h| h.kid)
                        .is_some_and(|k| {
                            self.retired_kids
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .contains(&k)
                        });
                    let r = http::unauthorized();
                    return Err(if retired {
                        r.route("fault.key_rotated")
                    } else {
                        r
                    });
                };
                let c = Arc::new(c);
                let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= TOKEN_CACHE {
                    cache.clear();
                }
                cache.insert(raw.into(), c.clone());
                c
            }
        };
        if claims.exp * 1000 <= now_ms {
            return Err(http::unauthorized());
        }
        if let Some(r) = self.faulted(&claims) {
            return Err(r);
        }
        Ok(claims)
    }
}

/// A path's segments, empty ones left out (`/v3//contacts/` is `v3`, `contacts`). Found byte by
/// byte: `str::split` searches for each slash through its general searcher, which when it was not
/// inlined cost more than the rest of routing (540 instructions a GET).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
            let seg = &rest[..end];
            rest = &rest[(end + 1).min(rest.len())..];
            if !seg.is_empty() {
                return Some(seg);
            }
        }
    })
}

/// Routes one request. Synchronous: everything is in memory.
///
/// The admin area first; then the Constant Contact pack (its authorization server and `/v3`),
/// when it is on; then a served document for whatever the pack does not implement; then 404.
pub fn route(shared: &Shared, req: &Req) -> Resp {
    let now = shared.now_ms();
    let path = req.path.trim_end_matches('/');
    // The path's segments, on the stack when there are few (every route the pack has).
    let mut parts = segments(path);
    let mut few = [""; 8];
    let n = few
        .iter_mut()
        .zip(&mut parts)
        .map(|(slot, s)| *slot = s)
        .count();
    let many: Vec<&str>;
    let segs: &[&str] = if parts.next().is_none() {
        &few[..n]
    } else {
        many = segments(path).collect();
        &many
    };
    let cfg = &shared.cfg;
    if let ["__postie", rest @ ..] = segs {
        if let Some(token) = &cfg.admin_token
            && !admin::authorized(req, token)
        {
            return admin::unauthorized();
        }
        return admin::handle(shared, req, rest);
    }
    // Stubs answer first where they match; what they miss goes on, and when nothing else
    // answers it either, the 404 says which stubs came nearest.
    let mut miss = None;
    if let Some(stubs) = &cfg.stubs {
        stubs.reload_if_changed(&shared.faults);
        match stubs.handle(req, now) {
            Ok(r) => return r,
            Err(m) => miss = Some(m),
        }
    }
    if (cfg.pack || cfg.oauth)
        && let Some(r) = oauth_route(shared, req, segs, now)
    {
        return r;
    }
    if cfg.pack
        && let ["v3", rest @ ..] = segs
    {
        let r = api(shared, req, rest, now);
        // What the pack does not implement, a served document may: `--spec`, else the vendor's
        // own Swagger.
        let unknown = matches!(r.route, "not_found" | "method_not_allowed");
        if unknown
            && let Some(spec) = shared.document()
            && let Some(s) = spec.handle(req, &SharedBearer { shared, now })
        {
            return cors(s);
        }
        return r;
    }
    if let Some(spec) = &cfg.spec {
        if let Some(r) = spec.handle(req, &SharedBearer { shared, now }) {
            return r;
        }
        if let Some(m) = miss {
            return m.response(req);
        }
        return engine::spec::problem(
            404,
            "Not Found",
            &format!(
                "no operation of the served document matches {} {}",
                req.method, req.path
            ),
            &[],
        )
        .route("not_found");
    }
    if cfg.pack {
        return Resp::json(403, &json!({"message": "Forbidden"})).route("forbidden");
    }
    if let Some(m) = miss {
        return m.response(req);
    }
    engine::spec::problem(
        404,
        "Not Found",
        &format!("nothing is served at {}", req.path),
        &[],
    )
    .route("not_found")
}

/// The authorization server's routes.
fn oauth_route(shared: &Shared, req: &Req, segs: &[&str], now: i64) -> Option<Resp> {
    let m = req.method.as_str();
    let cfg = &shared.cfg;
    Some(match segs {
        ["oauth2", _server, "v1", "authorize"] if m == "GET" => {
            oauth::authorize(cfg, &mut shared.lock(), req, now).route("authorize")
        }
        ["oauth2", _server, "v1", "authorize", "decision"] if m == "POST" => {
            oauth::decision(cfg, &mut shared.lock(), req, now).route("authorize_decision")
        }
        ["oauth2", _server, "v1", "token"] if m == "POST" => {
            let mut sim = shared.lock();
            if cfg.rate_limit
                && let Some(r) = token_rate_limit(cfg, &mut sim, req, now)
            {
                return Some(r.route("token.rate_limited"));
            }
            oauth::token(cfg, &shared.keys(), &mut sim, req, now).route("token")
        }
        ["oauth2", _server, "v1", "device", "authorize"] if m == "POST" => {
            oauth::device_authorize(cfg, &mut shared.lock(), req, now).route("device_authorize")
        }
        ["oauth2", _server, "v1", "keys"] if m == "GET" => {
            oauth::jwks(&shared.keys()).route("keys")
        }
        ["activate"] if m == "GET" || m == "POST" => {
            oauth::activate(&mut shared.lock(), req, now).route("activate")
        }
        ["oauth2", ..] | [".well-known", ..] => {
            http::oauth_error(404, "not_found", "Not found").route("not_found")
        }
        _ => return None,
    })
}

/// The token endpoint's own limit (about one request a second per application, under
/// `--rate-limit`): 429 with the vendor's throttling body.
fn token_rate_limit(cfg: &MockConfig, sim: &mut Sim, req: &Req, now: i64) -> Option<Resp> {
    let client = oauth::basic_client(req)
        .or_else(|| {
            url::form_urlencoded::parse(&req.body)
                .find(|(k, _)| k == "client_id")
                .map(|(_, v)| v.into_owned())
        })
        .or_else(|| req.q("client_id").map(String::from))
        .unwrap_or_default();
    let w = sim.rates.entry(format!("token:{client}")).or_default();
    let second = now.div_euclid(1000);
    if w.second != second {
        w.second = second;
        w.in_second = 0;
    }
    if w.in_second >= cfg.file.rate_limit.token_per_second {
        return Some(Resp::json(
            429,
            &json!({"error_key": "throttled", "error_message": "Too Many Requests"}),
        ));
    }
    w.in_second += 1;
    None
}

/// A served document's bearer check: with `--oauth`, the mock's own tokens (signature and the
/// mock clock); otherwise any token.
struct SharedBearer<'a> {
    shared: &'a Shared,
    now: i64,
}

impl engine::spec::Bearer for SharedBearer<'_> {
    fn scopes(&self, req: &Req, _token: &str) -> Option<Vec<String>> {
        if !(self.shared.cfg.oauth || self.shared.cfg.pack) {
            return None;
        }
        self.shared
            .bearer(req, self.now)
            .ok()
            .map(|c| c.scp.clone())
    }
    fn now_ms(&self) -> i64 {
        self.now
    }
    fn accepts(&self, req: &Req, token: &str) -> bool {
        if self.shared.cfg.oauth || self.shared.cfg.pack {
            self.shared.bearer(req, self.now).is_ok()
        } else {
            !token.is_empty()
        }
    }
}

/// The mock's runtime workers: one per core the process may run on (taskset narrows it), at most
/// 8. More workers than cores only take turns on them and add to the latency tail.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// A running mock: its own runtime thread; stops (and saves) when dropped.
pub struct MockServer {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Binds (127.0.0.1 unless configured otherwise) and starts serving.
    pub fn start(cfg: MockConfig) -> Result<MockServer, MockError> {
        let listener = std::net::TcpListener::bind((cfg.host.as_str(), cfg.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg)?);
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let url = format!("http://{host}:{}", addr.port());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let s = shared.clone();
        let idle = shared.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers())
            .on_thread_park(move || idle.idle())
            .thread_name("postie-mock")
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("postie-mock".into())
            .spawn(move || rt.block_on(run(listener, s, rx)))?;
        Ok(MockServer {
            url,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The shared state (clock, journal, reset) for in-process control.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving, waits for the thread and saves state.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paths_segments_are_what_splitting_at_slashes_leaves() {
        for path in [
            "",
            "/",
            "//",
            "/v3/contacts/3f2b8f9e-5a1c-11f1-8b25-fa163e5c9b01",
            "/v3//contacts/",
            "v3/contacts",
            "/oauth2/default/v1/token/",
            "/é/ü//ñ/",
            "/a/b/c/d/e/f/g/h/i/j",
        ] {
            let want: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            assert_eq!(segments(path).collect::<Vec<_>>(), want, "{path:?}");
        }
    }

    fn entry(n: usize) -> JournalEntry {
        JournalEntry {
            at: n as i64,
            method: "GET".into(),
            path: format!("/{n}"),
            status: 200,
            route: "r",
            micros: 0,
            fault: None,
            note: None,
        }
    }

    fn paths(v: Vec<JournalEntry>) -> Vec<String> {
        v.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn the_journal_ring_keeps_the_newest_entries_oldest_first() {
        let mut ring = Ring::default();
        assert!(ring.newest(5).is_empty());
        for n in 1..=2 {
            assert!(ring.push(entry(n), 3).is_none());
        }
        assert_eq!(paths(ring.newest(10)), ["/1", "/2"]);
        assert!(ring.push(entry(3), 3).is_none());
        assert_eq!(paths(ring.newest(10)), ["/1", "/2", "/3"]);
        // From here each entry replaces the oldest, which is handed back.
        for n in 4..=8 {
            let old = ring.push(entry(n), 3).expect("the ring is full");
            assert_eq!(old.path, format!("/{}", n - 3));
            let want: Vec<String> = (n - 2..=n).map(|k| format!("/{k}")).collect();
            assert_eq!(paths(ring.newest(10)), want);
            assert_eq!(paths(ring.newest(2)), want[1..]);
            assert!(ring.newest(0).is_empty());
        }
        assert_eq!(ring.total, 8);
        assert_eq!(ring.slots.len(), 3);
    }
}
