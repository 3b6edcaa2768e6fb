//! The mock's durable storage: a snapshot plus an append-only journal of changes.
//!
//! ```text
//! request ─ handler changes Sim (tracked tables) ─ lock released: changes become one record ─┐
//!   ┌────────────────────────────────────────────────────────────────────────────────────────┘
//!   └─> queue ─ writer thread: append to <state>.wal, fdatasync (one for many records) ─> durable
//!        the response waits for its record to be durable (--sync batch|always), not for the lock
//! <state>.wal grows past a size ─ sealed (<state>.wal.sealed) ─ compactor thread merges it into a
//! new snapshot <state> (streaming, off the simulation lock) ─ sealed segment deleted
//! ```
//!
//! A record is `[u32 length][u32 CRC-32][payload]`, the payload
//! `{"seq":N,"clock":ms?,"changes":[[table,key,value|null],...]}`. A snapshot is JSON lines: a
//! header `{"postie_mock_snapshot":1,"seq":N,"clock_offset_ms":ms}`, one `[table,key,value]` a line,
//! and a footer `{"end":lines}`. Recovery loads the snapshot and replays the journal records after
//! its `seq`; a torn last record (a crash mid-write) fails its checksum and is dropped, with a
//! message. A damaged snapshot is refused, naming the file and the byte offset; nothing is
//! overwritten.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::mock::packs::constant_contact::store::Sim;

/// When an acknowledged write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SyncMode {
    /// Each write is on disk (fdatasync) before its response; writes that arrive together share
    /// one fdatasync.
    Always,
    /// Writes are gathered for up to a millisecond and share one fdatasync; a response waits for
    /// it (at most a few milliseconds).
    #[default]
    Batch,
    /// Writes reach the operating system, not the disk, before their response: a crash of the
    /// machine (not of the mock) can lose the last ones.
    None,
}

/// How long `batch` gathers writes before an fdatasync.
const BATCH_WINDOW: Duration = Duration::from_micros(500);
/// Journal size that triggers a compaction into the snapshot.
const COMPACT_AT_BYTES: u64 = 64 << 20;

/// Errors opening or recovering the store.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A damaged snapshot.
    #[error(
        "{path}: the mock's snapshot is damaged at byte {offset} ({message}); nothing was changed — restore it from a backup, or move it away to start from the seeded account"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The files of one state.
#[derive(Debug, Clone)]
pub struct Files {
    /// The snapshot (the `--state` path).
    pub snapshot: PathBuf,
    /// The active journal.
    pub wal: PathBuf,
    /// A journal being merged into the snapshot.
    pub sealed: PathBuf,
}

impl Files {
    /// The files for a `--state` path.
    pub fn new(state: &Path) -> Files {
        let with = |ext: &str| {
            let mut s = state.as_os_str().to_owned();
            s.push(ext);
            PathBuf::from(s)
        };
        Files {
            snapshot: state.to_path_buf(),
            wal: with(".wal"),
            sealed: with(".wal.sealed"),
        }
    }
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The last sequence number applied.
    pub seq: u64,
    /// Journal records replayed.
    pub replayed: u64,
    /// Things to tell the user (a torn record dropped, a format upgraded).
    pub notes: Vec<String>,
}

/// Loads the snapshot (or an older whole-JSON state file) and replays the journal. Returns `None`
/// when there is no snapshot yet.
pub fn recover(files: &Files, sim: &mut Option<Sim>) -> Result<Recovered, WalError> {
    let mut rec = Recovered::default();
    remove_stale_temps(&files.snapshot);
    if files.snapshot.exists() {
        let (loaded, seq, legacy) = read_snapshot(&files.snapshot)?;
        *sim = Some(loaded);
        rec.seq = seq;
        if legacy {
            rec.notes.push(format!(
                "{}: converted from the older whole-file format",
                files.snapshot.display()
            ));
        }
    }
    for path in [&files.sealed, &files.wal] {
        if !path.exists() {
            continue;
        }
        let Some(s) = sim.as_mut() else {
            rec.notes.push(format!(
                "{}: a journal without a snapshot was ignored",
                path.display()
            ));
            continue;
        };
        replay(path, s, &mut rec)?;
    }
    Ok(rec)
}

fn corrupt(path: &Path, offset: u64, message: impl Into<String>) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        message: message.into(),
    }
}

/// Reads a snapshot: (simulation, sequence, was the older format).
fn read_snapshot(path: &Path) -> Result<(Sim, u64, bool), WalError> {
    let file = File::open(path).map_err(io(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut offset = 0u64;
    let n = r.read_line(&mut line).map_err(io(path))?;
    #[derive(serde::Deserialize)]
    struct Header {
        postie_mock_snapshot: u32,
        seq: u64,
        #[serde(default)]
        clock_offset_ms: i64,
    }
    let header: Option<Header> = serde_json::from_str(line.trim_end()).ok();
    let Some(header) = header.filter(|h| h.postie_mock_snapshot == 1) else {
        // The older format: the whole simulation as one JSON value.
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).map_err(io(path))?;
        let mut all = line.into_bytes();
        all.extend(rest);
        let mut sim: Sim = serde_json::from_slice(&all).map_err(|e| {
            corrupt(
                path,
                0,
                format!("neither a snapshot nor an older state file: {e}"),
            )
        })?;
        sim.reindex();
        sim.forget_changes();
        return Ok((sim, 0, true));
    };
    offset += n as u64;
    let mut sim = Sim {
        clock_offset_ms: header.clock_offset_ms,
        ..Default::default()
    };
    // Lines are parsed in batches on every core, then applied in order.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let mut lines = 0u64;
    let mut batch: Vec<(u64, String)> = Vec::with_capacity(PARSE_BATCH);
    let footer: (u64, String);
    loop {
        let mut text = String::new();
        let n = r.read_line(&mut text).map_err(io(path))?;
        if n == 0 {
            return Err(corrupt(
                path,
                offset,
                "it ends before its footer (truncated)",
            ));
        }
        let at = offset;
        offset += n as u64;
        let done = text.starts_with('{');
        if !done {
            batch.push((at, text.clone()));
        }
        if batch.len() >= PARSE_BATCH || (done && !batch.is_empty()) {
            let parsed = parse_batch(&batch, threads);
            for ((at, _), p) in batch.iter().zip(parsed) {
                let change = p.map_err(|e| corrupt(path, *at, e))?;
                sim.apply_parsed(change);
                lines += 1;
            }
            batch.clear();
        }
        if done {
            footer = (at, text);
            break;
        }
    }
    #[derive(serde::Deserialize)]
    struct Footer {
        end: u64,
    }
    let (at, text) = footer;
    let f: Footer = serde_json::from_str(text.trim_end())
        .map_err(|e| corrupt(path, at, format!("a bad footer: {e}")))?;
    if f.end != lines {
        return Err(corrupt(
            path,
            at,
            format!("the footer counts {} entries, the file has {lines}", f.end),
        ));
    }
    sim.reindex();
    sim.forget_changes();
    Ok((sim, header.seq, false))
}

/// Snapshot lines parsed together.
const PARSE_BATCH: usize = 16_384;

/// Parses lines on `threads` threads, keeping their order.
fn parse_batch(
    lines: &[(u64, String)],
    threads: usize,
) -> Vec<Result<crate::mock::packs::constant_contact::store::ParsedChange, String>> {
    if threads <= 1 || lines.len() < 1024 {
        return lines
            .iter()
            .map(|(_, l)| Sim::parse_change(l.trim_end()))
            .collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, l)| Sim::parse_change(l.trim_end()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a parser thread failed".to_string())])
            })
            .collect()
    })
}

/// Replays a journal file onto `sim`; a bad record ends it (a torn write), and the file is cut
/// there so the next records follow good ones.
fn replay(path: &Path, sim: &mut Sim, rec: &mut Recovered) -> Result<(), WalError> {
    let total = std::fs::metadata(path).map(|m| m.len()).map_err(io(path))?;
    let mut frames = Frames::open(path)?;
    while let Some((pos, payload)) = frames.next_frame().map_err(io(path))? {
        let Ok(r) = serde_json::from_slice::<Record<'_>>(&payload) else {
            frames.good = pos - 8;
            break;
        };
        if r.seq > rec.seq {
            for c in r.changes {
                sim.apply_change(c.get())
                    .map_err(|e| corrupt(path, pos, e))?;
            }
            if let Some(c) = r.clock {
                sim.clock_offset_ms = c;
            }
            rec.seq = r.seq;
            rec.replayed += 1;
        }
    }
    let good = frames.good;
    if good < total {
        rec.notes.push(format!(
            "{}: dropped {} bytes after byte {good}: a record that was being written when the mock stopped (it was never acknowledged)",
            path.display(),
            total - good
        ));
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(good))
            .map_err(io(path))?;
    }
    sim.reindex();
    sim.forget_changes();
    Ok(())
}

/// A journal record as read back.
#[derive(serde::Deserialize)]
struct Record<'a> {
    seq: u64,
    #[serde(default)]
    clock: Option<i64>,
    #[serde(borrow)]
    changes: Vec<&'a serde_json::value::RawValue>,
}

/// Reads a journal frame by frame (never the whole file into memory). A frame that is cut
/// short or fails its checksum ends it: `good` is where the last whole frame ended.
struct Frames {
    r: BufReader<File>,
    pos: u64,
    good: u64,
}

impl Frames {
    fn open(path: &Path) -> Result<Frames, WalError> {
        let f = File::open(path).map_err(io(path))?;
        Ok(Frames {
            r: BufReader::with_capacity(1 << 20, f),
            pos: 0,
            good: 0,
        })
    }

    /// The next whole frame: (the file offset of its payload, its payload).
    fn next_frame(&mut self) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        let mut head = [0u8; 8];
        if !read_full(&mut self.r, &mut head)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            return Ok(None);
        }
        let mut payload = vec![0u8; len];
        if !read_full(&mut self.r, &mut payload)? || crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        let at = self.pos + 8;
        self.pos += 8 + len as u64;
        self.good = self.pos;
        Ok(Some((at, payload)))
    }
}

/// The largest record read back (a 40,000-row import completing is far below it).
const MAX_RECORD: usize = 1 << 30;

/// Fills `buf`; false when the input ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..])? {
            0 => return Ok(false),
            n => done += n,
        }
    }
    Ok(true)
}

/// Writes a whole snapshot of `sim` at `seq` (temporary file, fsync, rename).
pub fn write_snapshot(path: &Path, sim: &Sim, seq: u64) -> Result<(), WalError> {
    let tmp = temp_beside(path);
    let result = (|| -> std::io::Result<()> {
        let f = create_private(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        serde_json::to_writer(
            &mut w,
            &serde_json::json!({"postie_mock_snapshot": 1, "seq": seq, "clock_offset_ms": sim.clock_offset_ms}),
        )?;
        w.write_all(b"\n")?;
        let n = sim.write_entries(&mut w)?;
        writeln!(w, "{{\"end\":{n}}}")?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(io(path))
}

/// Deletes temporary snapshots a killed compaction left (`<state>.<pid>.tmp`).
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix)
                && n.ends_with(".tmp")
                && n.len() > prefix.len() + 4
                && n[prefix.len()..n.len() - 4]
                    .chars()
                    .all(|c| c.is_ascii_digit())
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn temp_beside(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(s)
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// A snapshot line: `[table, key, value]`.
type RawEntry<'a> = (
    &'a str,
    &'a serde_json::value::RawValue,
    Option<&'a serde_json::value::RawValue>,
);

/// The table and the key (as JSON) of a snapshot line `["table","key",...]`, read without
/// parsing the value; None when the line is not that simple (then it is parsed).
fn entry_key(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("[\"")?;
    let t_end = rest.find('"')?;
    let table = &rest[..t_end];
    let rest = rest[t_end..].strip_prefix("\",\"")?;
    let k_end = rest.find('"')?;
    let key = &rest[..k_end];
    if table.contains('\\') || key.contains('\\') || !rest[k_end..].starts_with("\",") {
        return None;
    }
    Some((table.to_string(), format!("\"{key}\"")))
}

/// Puts the calling thread at the lowest priority the platform offers without privileges:
/// `SCHED_IDLE` on Linux, else the lowest niceness. Refused: it runs at normal priority.
fn low_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        if set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
        .is_ok()
        {
            return;
        }
    }
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// Merges a sealed journal into the snapshot without the simulation: the snapshot is streamed
/// line by line, each entry replaced by the journal's newer value (or dropped), new entries
/// appended in the order they were created.
fn compact(files: &Files) -> Result<(), WalError> {
    let path = &files.snapshot;
    // Where each changed entry's newest value is in the sealed journal (None: removed), in the
    // order entries first changed; the values stay on disk until they are written out.
    let mut latest: indexmap::IndexMap<(String, String), Option<(u64, usize)>> =
        indexmap::IndexMap::new();
    let mut last_seq = 0u64;
    let mut clock = None;
    let snapshot_seq = {
        let mut first = String::new();
        let f = File::open(path).map_err(io(path))?;
        BufReader::new(f).read_line(&mut first).map_err(io(path))?;
        serde_json::from_str::<serde_json::Value>(&first)
            .ok()
            .and_then(|h| h.get("seq").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| corrupt(path, 0, "no snapshot header"))?
    };
    let mut frames = Frames::open(&files.sealed)?;
    while let Some((at, payload)) = frames.next_frame().map_err(io(&files.sealed))? {
        let Ok(r) = serde_json::from_slice::<Record<'_>>(&payload) else {
            break;
        };
        if r.seq <= snapshot_seq {
            continue;
        }
        for c in r.changes {
            let (t, k, v): RawEntry<'_> = serde_json::from_str(c.get())
                .map_err(|e| corrupt(&files.sealed, at, e.to_string()))?;
            let place = v.map(|v| {
                let rel = v.get().as_ptr() as usize - payload.as_ptr() as usize;
                (at + rel as u64, v.get().len())
            });
            latest.insert((t.to_string(), k.get().to_string()), place);
        }
        if r.clock.is_some() {
            clock = r.clock;
        }
        last_seq = r.seq;
    }
    drop(frames);
    if last_seq == 0 {
        let _ = std::fs::remove_file(&files.sealed);
        return Ok(());
    }
    let sealed = File::open(&files.sealed).map_err(io(&files.sealed))?;
    let value_at = |(at, len): (u64, usize)| -> Result<String, WalError> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        sealed
            .read_exact_at(&mut buf, at)
            .map_err(io(&files.sealed))?;
        String::from_utf8(buf).map_err(|e| corrupt(&files.sealed, at, e.to_string()))
    };
    let tmp = temp_beside(path);
    let result = (|| -> Result<(), WalError> {
        let src = File::open(path).map_err(io(path))?;
        let mut r = BufReader::with_capacity(1 << 20, src);
        let out = create_private(&tmp).map_err(io(&tmp))?;
        let mut w = BufWriter::with_capacity(1 << 20, out);
        let mut line = String::new();
        r.read_line(&mut line).map_err(io(path))?;
        let mut header: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| corrupt(path, 0, e.to_string()))?;
        header["seq"] = last_seq.into();
        if let Some(c) = clock {
            header["clock_offset_ms"] = c.into();
        }
        let write = |w: &mut BufWriter<File>, s: &str| -> Result<(), WalError> {
            w.write_all(s.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .map_err(io(&tmp))
        };
        write(&mut w, &header.to_string())?;
        let mut n = 0u64;
        let mut offset = line.len() as u64;
        let mut worked = Instant::now();
        loop {
            // Compaction runs beside the server, often on the same core: after each
            // millisecond of work it sleeps two, so requests keep most of the CPU.
            if worked.elapsed() >= Duration::from_millis(1) {
                std::thread::sleep(Duration::from_millis(2));
                worked = Instant::now();
            }
            line.clear();
            let read = r.read_line(&mut line).map_err(io(path))?;
            if read == 0 {
                return Err(corrupt(
                    path,
                    offset,
                    "it ends before its footer (truncated)",
                ));
            }
            let text = line.trim_end();
            if text.starts_with('{') {
                break;
            }
            let tk = match entry_key(text) {
                Some(tk) => tk,
                None => {
                    let (t, k, _): RawEntry<'_> = serde_json::from_str(text)
                        .map_err(|e| corrupt(path, offset, e.to_string()))?;
                    (t.to_string(), k.get().to_string())
                }
            };
            match latest.shift_remove(&tk) {
                None => {
                    write(&mut w, text)?;
                    n += 1;
                }
                Some(Some(place)) => {
                    let (t, k) = tk;
                    let v = value_at(place)?;
                    write(
                        &mut w,
                        &format!(
                            "[{},{k},{v}]",
                            serde_json::to_string(&t).unwrap_or_default()
                        ),
                    )?;
                    n += 1;
                }
                Some(None) => {}
            }
            offset += read as u64;
        }
        for ((t, k), v) in latest {
            if let Some(place) = v {
                let v = value_at(place)?;
                write(
                    &mut w,
                    &format!(
                        "[{},{k},{v}]",
                        serde_json::to_string(&t).unwrap_or_default()
                    ),
                )?;
                n += 1;
            }
        }
        write(&mut w, &format!("{{\"end\":{n}}}"))?;
        let f = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::remove_file(&files.sealed).map_err(io(&files.sealed))
}

struct Queue {
    /// Encoded records waiting for the writer.
    bytes: Vec<u8>,
    /// The sequence of the last queued record.
    last: u64,
    /// When the first of them was queued.
    since: Option<Instant>,
    stop: bool,
}

/// The journal: queue, writer thread, compactor thread.
pub struct Wal {
    files: Files,
    mode: SyncMode,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The next sequence number (assigned under the simulation lock, so the order is its order).
    next: AtomicU64,
    durable: tokio::sync::watch::Sender<u64>,
    failed: AtomicBool,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    compact_tx: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Wal {
    /// Starts the writer and the compactor after recovery up to `seq`.
    pub fn start(files: Files, mode: SyncMode, seq: u64) -> Result<Arc<Wal>, WalError> {
        let (durable, _) = tokio::sync::watch::channel(seq);
        let wal = Arc::new(Wal {
            files,
            mode,
            queue: Mutex::new(Queue {
                bytes: Vec::new(),
                last: seq,
                since: None,
                stop: false,
            }),
            wake: Condvar::new(),
            next: AtomicU64::new(seq + 1),
            durable,
            failed: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            compact_tx: Mutex::new(None),
        });
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal.files.wal)
            .map_err(io(&wal.files.wal))?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        *wal.compact_tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let w = wal.clone();
        let writer = std::thread::Builder::new()
            .name("postie-mock-wal".into())
            .spawn(move || w.write_loop(file))
            .map_err(io(&wal.files.wal))?;
        let c = wal.clone();
        let compactor = std::thread::Builder::new()
            .name("postie-mock-compact".into())
            .spawn(move || {
                // Compaction is background work: it takes the CPU only when the server does not
                // want it (SCHED_IDLE on Linux: a request arriving preempts it at once), so
                // requests sharing its core are not delayed by a snapshot being rewritten. Under
                // sustained full load it waits, and the journal grows until the load stops.
                low_priority();
                while rx.recv().is_ok() {
                    if let Err(e) = compact(&c.files) {
                        eprintln!("postie mock: compaction failed: {e}");
                    }
                }
            })
            .map_err(io(&wal.files.wal))?;
        wal.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([writer, compactor]);
        Ok(wal)
    }

    /// Queues the changes `sim` records as one record; returns its sequence number (0 when
    /// nothing changed). Called with the simulation locked, so records keep its order.
    pub fn append(&self, sim: &mut Sim) -> u64 {
        if !sim.has_changes() {
            return 0;
        }
        let mut changes = Vec::with_capacity(256);
        let clock = sim.take_changes(&mut changes);
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let mut payload = format!("{{\"seq\":{seq},").into_bytes();
        if let Some(c) = clock {
            payload.extend_from_slice(format!("\"clock\":{c},").as_bytes());
        }
        payload.extend_from_slice(b"\"changes\":[");
        payload.extend_from_slice(&changes);
        payload.extend_from_slice(b"]}");
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.bytes.is_empty();
        q.bytes
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        q.bytes
            .extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        q.bytes.extend_from_slice(&payload);
        q.last = seq;
        q.since.get_or_insert_with(Instant::now);
        drop(q);
        // Only the first record of a batch wakes the writer: waking it for every record would
        // switch threads tens of thousands of times a second, on the core the requests need.
        if was_empty {
            self.wake.notify_one();
        }
        seq
    }

    /// Waits until record `seq` is durable as the sync mode promises (at once for `none`).
    pub async fn durable(&self, seq: u64) -> bool {
        if seq == 0 || self.mode == SyncMode::None {
            return true;
        }
        let mut rx = self.durable.subscribe();
        let ok = rx.wait_for(|d| *d >= seq).await.is_ok();
        ok && !self.failed.load(Ordering::Relaxed)
    }

    fn write_loop(self: Arc<Self>, mut file: File) {
        let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
        loop {
            let (bytes, last, stop) = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.bytes.is_empty() && !q.stop {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if self.mode == SyncMode::Batch
                    && let Some(since) = q.since
                    && !q.stop
                {
                    // Gather what arrives within the window into this fdatasync (records are
                    // queued meanwhile without waking anyone).
                    let wait = BATCH_WINDOW.saturating_sub(since.elapsed());
                    if !wait.is_zero() {
                        drop(q);
                        std::thread::sleep(wait);
                        q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    }
                }
                q.since = None;
                (std::mem::take(&mut q.bytes), q.last, q.stop)
            };
            if !bytes.is_empty() {
                let ok = file.write_all(&bytes).is_ok()
                    && (self.mode == SyncMode::None || file.sync_data().is_ok());
                if !ok {
                    self.failed.store(true, Ordering::Relaxed);
                    eprintln!(
                        "postie mock: cannot write {}; writes are no longer durable",
                        self.files.wal.display()
                    );
                }
                size += bytes.len() as u64;
                self.durable.send_replace(last);
                let snapshot = std::fs::metadata(&self.files.snapshot)
                    .map(|m| m.len())
                    .unwrap_or(0);
                // Compact when the journal is as large as the snapshot (at least 64 MiB), so the
                // snapshot is rewritten at most once per its own size of writes.
                if size >= COMPACT_AT_BYTES.max(snapshot) && !self.files.sealed.exists() {
                    // Seal this journal and start another; the compactor merges the sealed one.
                    let _ = file.sync_all();
                    if std::fs::rename(&self.files.wal, &self.files.sealed).is_ok()
                        && let Ok(f) = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&self.files.wal)
                    {
                        file = f;
                        size = 0;
                        if let Some(tx) =
                            &*self.compact_tx.lock().unwrap_or_else(|e| e.into_inner())
                        {
                            let _ = tx.send(());
                        }
                    }
                }
            }
            if stop {
                let _ = file.sync_all();
                return;
            }
        }
    }

    /// Replaces everything with a snapshot of `sim` (a reset or a state import): the journal so
    /// far is superseded. Call with the simulation locked.
    pub fn rewrite(&self, sim: &mut Sim) -> Result<(), WalError> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.bytes.clear();
        q.since = None;
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        write_snapshot(&self.files.snapshot, sim, seq)?;
        sim.forget_changes();
        // The writer appends to the journal file it holds open; empty it in place.
        for p in [&self.files.wal, &self.files.sealed] {
            if p.exists() {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .and_then(|f| f.set_len(0))
                    .map_err(io(p))?;
            }
        }
        let _ = std::fs::remove_file(&self.files.sealed);
        q.last = seq;
        drop(q);
        self.durable.send_replace(seq);
        Ok(())
    }

    /// Stops the threads after writing what is queued, then merges the journal into the
    /// snapshot, so the next start reads one file.
    pub fn shutdown(&self) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.stop = true;
        }
        self.wake.notify_all();
        self.compact_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        // Whatever is journaled goes into the snapshot.
        let have = |p: &Path| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false);
        if have(&self.files.sealed)
            && let Err(e) = compact(&self.files)
        {
            eprintln!(
                "postie mock: could not compact {}: {e}",
                self.files.sealed.display()
            );
            return;
        }
        if have(&self.files.wal) && std::fs::rename(&self.files.wal, &self.files.sealed).is_ok() {
            if let Err(e) = compact(&self.files) {
                eprintln!(
                    "postie mock: could not compact {}: {e}",
                    self.files.sealed.display()
                );
            }
        } else if self.files.wal.exists() {
            let _ = std::fs::remove_file(&self.files.wal);
        }
    }
}

/// Sizes for `mock status`: snapshot and journal bytes.
pub fn sizes(files: &Files) -> BTreeMap<&'static str, u64> {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    BTreeMap::from([
        ("snapshot", len(&files.snapshot)),
        ("journal", len(&files.wal) + len(&files.sealed)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::store::ContactList;

    fn list(name: &str) -> ContactList {
        ContactList {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            description: None,
            favorite: false,
            created_at: 1,
            updated_at: 1,
            deleted_at: None,
        }
    }

    fn names(sim: &Sim) -> Vec<String> {
        sim.lists.values().map(|l| l.name.clone()).collect()
    }

    #[test]
    fn journal_replays_drops_a_torn_tail_and_compacts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let mut sim = Sim::default();
        let a = list("a");
        let a_id = a.id;
        sim.lists.insert(a.id, a);
        write_snapshot(&files.snapshot, &sim, 0).unwrap();
        sim.forget_changes();
        let wal = Wal::start(files.clone(), SyncMode::Always, 0).unwrap();
        let b = list("b");
        sim.lists.insert(b.id, b);
        let s1 = wal.append(&mut sim);
        sim.lists.get_mut(&a_id).unwrap().name = "a2".into();
        let c = list("c");
        sim.lists.insert(c.id, c);
        let s2 = wal.append(&mut sim);
        assert_eq!((s1, s2), (1, 2));
        assert_eq!(wal.append(&mut sim), 0, "nothing changed, nothing written");
        // Wait for durability the way a request does.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(wal.durable(2)));
        // A crash mid-write leaves half a record.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&files.wal)
            .unwrap()
            .write_all(&[40, 0, 0, 0, 1, 2, 3, 4, b'{'])
            .unwrap();
        let before = std::fs::metadata(&files.wal).unwrap().len();
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!((rec.seq, rec.replayed), (2, 2));
        assert_eq!(names(&loaded), ["a2", "b", "c"]);
        assert!(rec.notes[0].contains("dropped 9 bytes"), "{:?}", rec.notes);
        assert_eq!(std::fs::metadata(&files.wal).unwrap().len(), before - 9);
        // A clean shutdown merges the journal into the snapshot, keeping the order.
        wal.shutdown();
        assert!(!files.wal.exists() && !files.sealed.exists());
        let mut again = None;
        let rec = recover(&files, &mut again).unwrap();
        assert_eq!(rec.replayed, 0);
        assert_eq!(rec.seq, 2);
        assert_eq!(names(&again.unwrap()), ["a2", "b", "c"]);
    }

    #[test]
    fn a_damaged_snapshot_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let mut sim = Sim::default();
        let a = list("a");
        sim.lists.insert(a.id, a);
        write_snapshot(&files.snapshot, &sim, 0).unwrap();
        let text = std::fs::read_to_string(&files.snapshot).unwrap();
        let damaged = text.replacen("\"a\"", "\"a", 1);
        std::fs::write(&files.snapshot, &damaged).unwrap();
        let mut loaded = None;
        let err = recover(&files, &mut loaded).unwrap_err().to_string();
        let header_len = text.lines().next().unwrap().len() + 1;
        assert!(
            err.contains("s.json: the mock's snapshot is damaged at byte")
                && err.contains(&format!("byte {header_len} ")),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&files.snapshot).unwrap(), damaged);
        // Truncated before its footer.
        let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&files.snapshot, cut).unwrap();
        let err = recover(&files, &mut None).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
