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
//! `{"seq":N,"changes":[[table,key,value|null],...],"clock":ms?}` (read by name: older records
//! carry the clock first). A snapshot is JSON lines: a
//! header `{"postie_mock_snapshot":1,"seq":N,"clock_offset_ms":ms,"entries":N}`, one
//! `[table,key,value]` a line (a contact's value is its fields by position), and a footer
//! `{"end":lines}`. Recovery loads the snapshot and replays the journal records after
//! its `seq`; a torn last record (a crash mid-write) fails its checksum and is dropped, with a
//! message. A damaged snapshot is refused, naming the file and the byte offset; nothing is
//! overwritten.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::mock::packs::constant_contact::store::Sim;

/// When an acknowledged write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SyncMode {
    /// Each write is on disk (fdatasync) before its response; writes that arrive together share
    /// one fdatasync.
    Always,
    /// Writes are gathered until the mock has nothing else to do, or for at most half a
    /// millisecond, and share one fdatasync; a response waits for it (at most a few
    /// milliseconds).
    #[default]
    Batch,
    /// Writes reach the operating system, not the disk, before their response: a crash of the
    /// machine (not of the mock) can lose the last ones.
    None,
}

/// How long `batch` gathers writes at most before an fdatasync, when the mock stays busy
/// throughout (it is written as soon as the mock has nothing else to do, [`Wal::idle`]).
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
    /// The active journal segment.
    pub wal: PathBuf,
    /// A sealed segment as older versions named it (merged first).
    pub sealed: PathBuf,
    /// A zero-filled segment made ahead of need, the next active journal.
    pub next: PathBuf,
}

impl Files {
    /// The files for a `--state` path.
    pub fn new(state: &Path) -> Files {
        let with = |ext: &str| suffixed(state, ext);
        Files {
            snapshot: state.to_path_buf(),
            wal: with(".wal"),
            sealed: with(".wal.sealed"),
            next: with(".wal.next"),
        }
    }

    /// Sealed segment number `n` (`<state>.wal.sealed.<n>`).
    fn sealed_segment(&self, n: u64) -> PathBuf {
        suffixed(&self.sealed, &format!(".{n}"))
    }

    /// The sealed segments in the order they were written, with their numbers (the older single
    /// `<state>.wal.sealed` first, as 0).
    pub fn sealed_segments(&self) -> Vec<(u64, PathBuf)> {
        let mut out = Vec::new();
        if self.sealed.exists() {
            out.push((0, self.sealed.clone()));
        }
        let Some(name) = self.sealed.file_name() else {
            return out;
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut numbered: Vec<(u64, PathBuf)> =
            std::fs::read_dir(crate::util::dir_of(&self.sealed))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let digits = n.strip_prefix(&prefix)?;
                    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| digits.parse().ok())
                        .flatten()
                        .map(|k: u64| (k, e.path()))
                })
                .collect();
        numbered.sort();
        out.extend(numbered);
        out
    }

    /// The temporary name of a segment being zero-filled.
    fn next_tmp(&self) -> PathBuf {
        suffixed(&self.next, ".tmp")
    }

    /// The sealed segments' paths, in the order they were written.
    fn sealed_paths(&self) -> Vec<PathBuf> {
        self.sealed_segments().into_iter().map(|(_, p)| p).collect()
    }
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
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
    /// Where the active journal's records end (zeros made ahead may follow).
    pub wal_end: u64,
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
    let _ = std::fs::remove_file(files.next_tmp());
    let mut journals: Vec<PathBuf> = files.sealed_paths();
    journals.push(files.wal.clone());
    for path in &journals {
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
        let end = replay(path, s, &mut rec)?;
        if *path == files.wal {
            rec.wal_end = end;
        }
    }
    if let Some(s) = sim.as_mut() {
        s.forget_changes();
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

/// A snapshot that holds a contact twice, refused at the second of its lines (found by reading
/// the file again: contacts are indexed only once all are read, so the line is not at hand).
fn contact_twice(path: &Path, id: uuid::Uuid) -> WalError {
    let prefix = format!("[\"contacts\",\"{id}\"");
    let mut at = 0u64;
    let mut first = None;
    if let Ok(file) = File::open(path) {
        for line in BufReader::new(file).split(b'\n').map_while(Result::ok) {
            if line.starts_with(prefix.as_bytes()) {
                match first {
                    None => first = Some(at),
                    Some(f) => {
                        return corrupt(
                            path,
                            at,
                            format!("the contact {id} is in it twice; the first is at byte {f}"),
                        );
                    }
                }
            }
            at += line.len() as u64 + 1;
        }
    }
    corrupt(path, 0, format!("the contact {id} is in it twice"))
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
        /// How many entries follow (newer snapshots say; a hint for sizing tables).
        #[serde(default)]
        entries: Option<u64>,
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
        return Ok((sim, 0, true));
    };
    offset += n as u64;
    let mut sim = Sim {
        clock_offset_ms: header.clock_offset_ms,
        ..Default::default()
    };
    if let Some(n) = header.entries {
        // Most entries are contacts: their table and email index are sized once instead of
        // growing as they fill.
        sim.contacts.reserve(n as usize);
        sim.by_email.reserve(n as usize);
    }
    load_entries(path, r, offset, &mut sim)?;
    Ok((sim, header.seq, false))
}

/// What a parser made of one block of snapshot lines: its entries in order, and what ended the
/// block if not its last line.
struct Parsed {
    entries: Vec<crate::mock::packs::constant_contact::store::ParsedChange>,
    end: Option<BlockEnd>,
}

enum BlockEnd {
    /// The footer line (its offset and text).
    Footer(u64, String),
    /// A line that is not an entry: its offset and why.
    Bad(u64, String),
    /// The file ended without a footer, at this offset.
    Truncated(u64),
}

/// The snapshot's entries after the header, read in blocks of whole lines by one thread,
/// parsed on every core, and applied here in order; checks the footer's count. Returns it.
fn load_entries(
    path: &Path,
    mut r: BufReader<File>,
    offset: u64,
    sim: &mut Sim,
) -> Result<u64, WalError> {
    let read = move |send: &mut dyn FnMut((u64, Vec<u8>)) -> bool,
                     recycled: &Receiver<(u64, Vec<u8>)>| {
        let mut at = offset;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut block = recycled.try_recv().map(|(_, b)| b).unwrap_or_default();
            block.clear();
            block.reserve(carry.len() + LOAD_BLOCK);
            block.extend_from_slice(&carry);
            // Into the buffer's spare room, which a file read does not need zeroed first.
            let n = (&mut r).take(LOAD_BLOCK as u64).read_to_end(&mut block)?;
            let eof = n < LOAD_BLOCK;
            // Whole lines only; the rest starts the next block.
            let cut = match block.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if eof => 0,
                None => {
                    carry = block;
                    continue;
                }
            };
            carry.clear();
            carry.extend_from_slice(&block[cut..]);
            block.truncate(cut);
            let len = block.len() as u64;
            if !block.is_empty() && !send((at, block)) {
                return Ok(());
            }
            at += len;
            if eof {
                // A last line without its newline: the file was cut short.
                send((at, Vec::new()));
                return Ok(());
            }
        }
    };
    let mut lines = 0u64;
    let mut loading = crate::mock::packs::constant_contact::store::Loading::default();
    let apply = |parsed: Parsed| {
        for e in parsed.entries {
            if let Err(id) = sim.load_parsed(e, &mut loading) {
                return Some(Err(contact_twice(path, id)));
            }
            lines += 1;
        }
        match parsed.end? {
            BlockEnd::Footer(at, text) => {
                Some(check_footer(path, at, &text, lines).and_then(|n| {
                    sim.finish_load(&mut loading)
                        .map(|()| n)
                        .map_err(|id| contact_twice(path, id))
                }))
            }
            BlockEnd::Bad(at, message) => Some(Err(corrupt(path, at, message))),
            BlockEnd::Truncated(at) => Some(Err(corrupt(
                path,
                at,
                "it ends before its footer (truncated)",
            ))),
        }
    };
    match in_order(read, |(at, block)| parse_block(*at, block), apply) {
        (Some(Ok(n)), _) => Ok(n),
        // A read error is the cause of whatever went wrong after it.
        (_, Err(e)) => Err(io(path)(e)),
        (Some(Err(e)), Ok(())) => Err(e),
        (None, Ok(())) => Err(corrupt(
            path,
            offset,
            "the snapshot could not be read to its end",
        )),
    }
}

/// Work read by one thread, parsed on every core and used here in the order it was read: how
/// a snapshot and the journal are loaded. `read` hands each unit to `send` (false: nobody takes
/// more) and may reuse the units that come back parsed on `recycled`; `parse` runs on the
/// parsers; `apply` takes the results in order and returns `Some` to stop. Returns what `apply`
/// stopped with (None: the reader ran out first) and the reader's own result.
fn in_order<B: Send, P: Send, R>(
    read: impl FnOnce(&mut dyn FnMut(B) -> bool, &Receiver<B>) -> std::io::Result<()> + Send,
    parse: impl Fn(&B) -> P + Sync,
    mut apply: impl FnMut(P) -> Option<R>,
) -> (Option<R>, std::io::Result<()>) {
    // A parser per core the process may use, as the server has a worker per core.
    let threads = crate::mock::workers();
    let parse = &parse;
    std::thread::scope(|scope| {
        // Unit k goes to parser k % threads, and its result comes back on that parser's
        // channel: taking them in turn keeps the reader's order. Channels are bounded, so only
        // a few units are in memory at once.
        let mut to_parsers = Vec::new();
        let mut from_parsers = Vec::new();
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<B>();
        for _ in 0..threads {
            let (btx, brx) = std::sync::mpsc::sync_channel::<B>(2);
            let (ptx, prx) = std::sync::mpsc::sync_channel::<P>(2);
            let recycle = recycle_tx.clone();
            scope.spawn(move || {
                while let Ok(unit) = brx.recv() {
                    let parsed = parse(&unit);
                    let _ = recycle.send(unit);
                    if ptx.send(parsed).is_err() {
                        return;
                    }
                }
            });
            to_parsers.push(btx);
            from_parsers.push(prx);
        }
        drop(recycle_tx);
        let reader = scope.spawn(move || {
            let mut k = 0usize;
            let mut send = |unit: B| {
                k += 1;
                to_parsers[(k - 1) % threads].send(unit).is_ok()
            };
            read(&mut send, &recycle_rx)
        });
        let mut k = 0usize;
        let result = loop {
            let Ok(parsed) = from_parsers[k % threads].recv() else {
                break None;
            };
            k += 1;
            if let Some(r) = apply(parsed) {
                break Some(r);
            }
        };
        // The parsers stop when their results have nowhere to go, and the reader when its
        // units have nowhere to go.
        drop(from_parsers);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the reader stopped")));
        (result, read)
    })
}

/// Snapshot bytes read and parsed as one block.
const LOAD_BLOCK: usize = 1 << 20;

/// Parses a block of whole lines starting at file offset `at` (an empty block: the file ended
/// there without a footer).
fn parse_block(mut at: u64, block: &[u8]) -> Parsed {
    let mut entries = Vec::with_capacity(block.len() / 256);
    let end = (|| {
        if block.is_empty() {
            return Some(BlockEnd::Truncated(at));
        }
        for line in block.split_inclusive(|&b| b == b'\n') {
            let this = at;
            at += line.len() as u64;
            let Ok(text) = std::str::from_utf8(line) else {
                return Some(BlockEnd::Bad(this, "not UTF-8 text".into()));
            };
            if !text.ends_with('\n') {
                return Some(BlockEnd::Truncated(this));
            }
            let text = text.trim_end();
            if text.starts_with('{') {
                return Some(BlockEnd::Footer(this, text.to_string()));
            }
            match Sim::parse_change(text) {
                Ok(c) => entries.push(c),
                Err(e) => return Some(BlockEnd::Bad(this, e)),
            }
        }
        None
    })();
    Parsed { entries, end }
}

fn check_footer(path: &Path, at: u64, text: &str, lines: u64) -> Result<u64, WalError> {
    #[derive(serde::Deserialize)]
    struct Footer {
        end: u64,
    }
    let f: Footer =
        serde_json::from_str(text).map_err(|e| corrupt(path, at, format!("a bad footer: {e}")))?;
    if f.end != lines {
        return Err(corrupt(
            path,
            at,
            format!("the footer counts {} entries, the file has {lines}", f.end),
        ));
    }
    Ok(lines)
}

/// Replays a journal file onto `sim` and returns where its records end. The records end at zeros
/// (a segment made ahead of need) or at a bad record (a torn write): the file is then cut there so
/// the next records follow good ones. Frames are read by one thread and their records parsed on
/// every core ([`in_order`]), as a snapshot is loaded.
fn replay(path: &Path, sim: &mut Sim, rec: &mut Recovered) -> Result<u64, WalError> {
    let total = std::fs::metadata(path).map(|m| m.len()).map_err(io(path))?;
    let mut frames = Frames::open(path)?;
    let read = move |send: &mut dyn FnMut(FrameBatch) -> bool, recycled: &Receiver<FrameBatch>| {
        loop {
            let mut batch = recycled.try_recv().unwrap_or_default();
            batch.bytes.clear();
            batch.frames.clear();
            while batch.bytes.len() < LOAD_BLOCK {
                let start = batch.bytes.len();
                match frames.next_frame_into(&mut batch.bytes)? {
                    Some(at) => batch.frames.push((at, start, frames.pos)),
                    None => {
                        send(batch);
                        return Ok(());
                    }
                }
            }
            if !send(batch) {
                return Ok(());
            }
        }
    };
    // Records the snapshot already holds are skipped unparsed.
    let base = rec.seq;
    let mut good = 0u64;
    let apply = |records: Vec<Replayed>| {
        for r in records {
            match r {
                Replayed::Record {
                    seq,
                    clock,
                    changes,
                    end,
                } => {
                    if seq > rec.seq {
                        for c in changes {
                            sim.apply_parsed(c);
                        }
                        if let Some(c) = clock {
                            sim.clock_offset_ms = c;
                        }
                        rec.seq = seq;
                        rec.replayed += 1;
                    }
                    good = end;
                }
                // A record whose frame is whole but whose text is not: a torn write.
                Replayed::Torn => return Some(Ok(())),
                Replayed::Bad(at, message) => return Some(Err(corrupt(path, at, message))),
            }
        }
        None
    };
    let parse = |batch: &FrameBatch| parse_records(batch, base);
    match in_order(read, parse, apply) {
        (Some(Err(e)), _) => return Err(e),
        (_, Err(e)) => return Err(io(path)(e)),
        _ => {}
    }
    if good < total && !zeros_from(path, good).map_err(io(path))? {
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
    Ok(good)
}

/// Journal frames read as one unit: their payloads end to end, and for each the file offset of
/// its payload and where it lies in `bytes` (start, and the file offset where the frame ends).
#[derive(Default)]
struct FrameBatch {
    bytes: Vec<u8>,
    frames: Vec<(u64, usize, u64)>,
}

/// A journal record parsed for replay.
enum Replayed {
    /// Its sequence, clock and changes (none when the snapshot already holds it), and the file
    /// offset where its frame ends.
    Record {
        seq: u64,
        clock: Option<i64>,
        changes: Vec<crate::mock::packs::constant_contact::store::ParsedChange>,
        end: u64,
    },
    /// A frame that is whole but is not a record: the records end before it.
    Torn,
    /// A record with a change that cannot be read: its offset and why.
    Bad(u64, String),
}

/// Parses a batch of frames up to the first that is not a whole record, or that has a change
/// that cannot be read. The changes of a record the snapshot holds are dropped.
fn parse_records(batch: &FrameBatch, base: u64) -> Vec<Replayed> {
    use crate::mock::packs::constant_contact::store::ParsedChange;
    let mut out = Vec::with_capacity(batch.frames.len());
    for (i, &(at, start, end)) in batch.frames.iter().enumerate() {
        let stop = batch.frames.get(i + 1).map_or(batch.bytes.len(), |f| f.1);
        let r = match read_record::<ParsedChange>(&batch.bytes[start..stop], base) {
            FrameRead::Record(r) => Replayed::Record {
                seq: r.seq,
                clock: r.clock,
                changes: if r.seq > base { r.changes } else { Vec::new() },
                end,
            },
            FrameRead::Held { seq, clock } => Replayed::Record {
                seq,
                clock,
                changes: Vec::new(),
                end,
            },
            FrameRead::Torn => Replayed::Torn,
            FrameRead::Bad(e) => Replayed::Bad(at, e),
        };
        let last = !matches!(r, Replayed::Record { .. });
        out.push(r);
        if last {
            break;
        }
    }
    out
}

/// Whether everything in the file from `at` on is zero bytes.
fn zeros_from(path: &Path, at: u64) -> std::io::Result<bool> {
    use std::io::Seek;
    let mut f = File::open(path)?;
    f.seek(std::io::SeekFrom::Start(at))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(true),
            n if buf[..n].iter().any(|&b| b != 0) => return Ok(false),
            _ => {}
        }
    }
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

/// A journal record with its changes read as `C` in the same pass: a merge wants each change's
/// table, key and where its value is ([`RawEntry`]), replay the values themselves. (Read as a
/// [`Record`] and then change by change, every change was scanned twice.)
#[derive(serde::Deserialize)]
struct Typed<C> {
    seq: u64,
    #[serde(default)]
    clock: Option<i64>,
    changes: Vec<C>,
}

/// How a journal frame reads.
enum FrameRead<C> {
    /// A record, whole.
    Record(Typed<C>),
    /// A record at or below the snapshot's sequence whose changes do not read: it is not read
    /// further, as the snapshot already holds it.
    Held { seq: u64, clock: Option<i64> },
    /// Not a record: what was written ends before it (a torn write).
    Torn,
    /// A record with a change that cannot be read, and why.
    Bad(String),
}

/// Reads a journal frame in one pass; only one that does not read so is read again as a
/// [`Record`] and change by change, to tell a torn write from a change that cannot be read.
fn read_record<'a, C: serde::Deserialize<'a>>(bytes: &'a [u8], base: u64) -> FrameRead<C> {
    let e = match serde_json::from_slice::<Typed<C>>(bytes) {
        Ok(r) => return FrameRead::Record(r),
        Err(e) => e,
    };
    match serde_json::from_slice::<Record<'_>>(bytes) {
        Err(_) => FrameRead::Torn,
        Ok(r) if r.seq <= base => FrameRead::Held {
            seq: r.seq,
            clock: r.clock,
        },
        Ok(r) => {
            let bad = (r.changes.iter()).find_map(|c| serde_json::from_str::<C>(c.get()).err());
            FrameRead::Bad(bad.unwrap_or(e).to_string())
        }
    }
}

/// An entry's table and key (as JSON) borrowed, to look up the owned pair a merge keeps.
#[derive(Hash)]
struct EntryName<'a>(&'a str, &'a str);

impl indexmap::Equivalent<(String, String)> for EntryName<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// Reads a journal frame by frame (never the whole file into memory). A frame that is cut
/// short or fails its checksum ends it: `pos` is then where the last whole frame ended.
struct Frames {
    r: BufReader<File>,
    pos: u64,
}

impl Frames {
    fn open(path: &Path) -> Result<Frames, WalError> {
        let f = File::open(path).map_err(io(path))?;
        Ok(Frames {
            r: BufReader::with_capacity(1 << 20, f),
            pos: 0,
        })
    }

    /// The next whole frame: (the file offset of its payload, its payload).
    fn next_frame(&mut self) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        let mut payload = Vec::new();
        Ok(self.next_frame_into(&mut payload)?.map(|at| (at, payload)))
    }

    /// Appends the next whole frame's payload to `buf` and returns its file offset; `buf` is as
    /// it was when there is none.
    fn next_frame_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
        let mut head = [0u8; 8];
        if !read_full(&mut self.r, &mut head)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        // A zero length is where a segment made ahead of need has not been written yet.
        if len == 0 || len > MAX_RECORD {
            return Ok(None);
        }
        let start = buf.len();
        buf.resize(start + len, 0);
        if !read_full(&mut self.r, &mut buf[start..])? || crc32fast::hash(&buf[start..]) != crc {
            buf.truncate(start);
            return Ok(None);
        }
        let at = self.pos + 8;
        self.pos += 8 + len as u64;
        Ok(Some(at))
    }
}

/// A journal record of what changed in `sim` since the last one (which it forgets): its
/// sequence, its changes written in place (JSON values end to end, comma-separated), then the
/// mock clock when it moved, which only taking the changes tells. Read back by name, so records
/// that carry the clock first (written before 2026-12-07) read the same.
fn record(seq: u64, sim: &mut Sim) -> Vec<u8> {
    let mut payload = Vec::with_capacity(512);
    payload.extend_from_slice(b"{\"seq\":");
    let _ = serde_json::to_writer(&mut payload, &seq);
    payload.extend_from_slice(b",\"changes\":[");
    let clock = sim.take_changes(&mut payload);
    payload.push(b']');
    if let Some(c) = clock {
        payload.extend_from_slice(b",\"clock\":");
        let _ = serde_json::to_writer(&mut payload, &c);
    }
    payload.push(b'}');
    payload
}

/// Frames a record: its length and checksum (little-endian u32 each), then the record.
fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
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
            &serde_json::json!({"postie_mock_snapshot": 1, "seq": seq, "clock_offset_ms": sim.clock_offset_ms, "entries": sim.entry_count()}),
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

/// Deletes temporary snapshots a killed compaction left (`<state>.<pid>.<n>.tmp`).
fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    if let Ok(rd) = std::fs::read_dir(crate::util::dir_of(path)) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix)
                && n.ends_with(".tmp")
                && n.len() > prefix.len() + 4
                && n[prefix.len()..n.len() - 4]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A temporary file's name beside `path`, unique in this process (a merge and a reset may each
/// be writing one).
fn temp_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    suffixed(path, &format!(".{}.{n}.tmp", std::process::id()))
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

/// Merges sealed segments into the snapshot and deletes them (nothing else may change the
/// files meanwhile: used at shutdown, once the writer has stopped).
fn compact(files: &Files, segments: &[PathBuf]) -> Result<(), WalError> {
    if let Merged::Into(tmp) = merge(files, segments, None)? {
        std::fs::rename(&tmp, &files.snapshot).map_err(io(&files.snapshot))?;
    }
    remove_segments(segments)
}

/// A merge's pace. Beside the server, often on the same core, it sleeps two milliseconds after
/// each one of work, so requests keep most of the CPU; once the server has stopped (no `stop`
/// to watch) it runs at full speed.
struct Pace<'a> {
    worked: Instant,
    stop: Option<&'a AtomicBool>,
}

impl Pace<'_> {
    fn new(stop: Option<&AtomicBool>) -> Pace<'_> {
        Pace {
            worked: Instant::now(),
            stop,
        }
    }

    /// Sleeps when a millisecond of work is done; whether the merge was asked to stop.
    fn stopped(&mut self) -> bool {
        let Some(stop) = self.stop else {
            return false;
        };
        if self.worked.elapsed() >= Duration::from_millis(1) {
            std::thread::sleep(Duration::from_millis(2));
            self.worked = Instant::now();
        }
        stop.load(Ordering::Acquire)
    }
}

/// What a merge made.
enum Merged {
    /// A new snapshot in this temporary file (synced: rename it over the snapshot).
    Into(PathBuf),
    /// Nothing: the segments hold nothing newer than the snapshot.
    Nothing,
    /// It was stopped before it finished, leaving nothing behind.
    Stopped,
}

fn remove_segments(segments: &[PathBuf]) -> Result<(), WalError> {
    for p in segments {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(p)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Where a value is in the sealed segments: (segment, offset, length).
type Place = (usize, u64, usize);

/// What a merge knows of one changed entry.
enum Latest {
    /// Its newest value is here.
    At(Place),
    /// The journal removed it.
    Removed,
    /// Already written in the snapshot's place for it.
    Written,
}

/// Merges sealed segments (in order) into a new snapshot without the simulation: the snapshot
/// is streamed line by line, each entry replaced by the journal's newer value (or dropped), new
/// entries appended in the order they were created. Beside a running server (`stop` given) it
/// paces itself, and stops between two entries once `stop` is set.
fn merge(
    files: &Files,
    segments: &[PathBuf],
    stop: Option<&AtomicBool>,
) -> Result<Merged, WalError> {
    let path = &files.snapshot;
    // Where each changed entry's newest value is in the segments, in the order entries first
    // changed; the values stay on disk until they are written out.
    let mut latest: indexmap::IndexMap<(String, String), Latest, foldhash::fast::RandomState> =
        indexmap::IndexMap::default();
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
    let mut pace = Pace::new(stop);
    for (i, seg) in segments.iter().enumerate() {
        let mut frames = Frames::open(seg)?;
        while let Some((at, payload)) = frames.next_frame().map_err(io(seg))? {
            if pace.stopped() {
                return Ok(Merged::Stopped);
            }
            let r = match read_record::<RawEntry<'_>>(&payload, snapshot_seq) {
                FrameRead::Record(r) if r.seq > snapshot_seq => r,
                FrameRead::Record(_) | FrameRead::Held { .. } => continue,
                FrameRead::Torn => break,
                FrameRead::Bad(e) => return Err(corrupt(seg, at, e)),
            };
            for (t, k, v) in r.changes {
                let newest = match v {
                    Some(v) => {
                        let rel = v.get().as_ptr() as usize - payload.as_ptr() as usize;
                        Latest::At((i, at + rel as u64, v.get().len()))
                    }
                    None => Latest::Removed,
                };
                match latest.get_mut(&EntryName(t, k.get())) {
                    Some(e) => *e = newest,
                    None => {
                        latest.insert((t.to_string(), k.get().to_string()), newest);
                    }
                }
            }
            if r.clock.is_some() {
                clock = r.clock;
            }
            last_seq = r.seq;
        }
    }
    if last_seq == 0 {
        return Ok(Merged::Nothing);
    }
    let opened = segments
        .iter()
        .map(|p| File::open(p).map_err(io(p)))
        .collect::<Result<Vec<_>, _>>()?;
    let value_at = |(i, at, len): (usize, u64, usize)| -> Result<String, WalError> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        opened[i]
            .read_exact_at(&mut buf, at)
            .map_err(io(&segments[i]))?;
        String::from_utf8(buf).map_err(|e| corrupt(&segments[i], at, e.to_string()))
    };
    let tmp = temp_beside(path);
    let result = (|| -> Result<bool, WalError> {
        let src = File::open(path).map_err(io(path))?;
        let mut r = BufReader::with_capacity(1 << 20, src);
        let out = create_private(&tmp).map_err(io(&tmp))?;
        let mut w = Trickle {
            w: BufWriter::with_capacity(1 << 20, out),
            unsynced: 0,
            on: stop.is_some(),
            path: &tmp,
        };
        let mut line = String::new();
        r.read_line(&mut line).map_err(io(path))?;
        let mut header: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| corrupt(path, 0, e.to_string()))?;
        header["seq"] = last_seq.into();
        // At most this many (a hint for sizing tables when it is read).
        if let Some(n) = header.get("entries").and_then(serde_json::Value::as_u64) {
            header["entries"] = (n + latest.len() as u64).into();
        }
        if let Some(c) = clock {
            header["clock_offset_ms"] = c.into();
        }
        let write = |w: &mut Trickle<'_>, s: &str| w.line(s);
        write(&mut w, &header.to_string())?;
        let mut n = 0u64;
        let mut offset = line.len() as u64;
        loop {
            if pace.stopped() {
                return Ok(false);
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
            // Marked written, not removed: removing from the middle of the map shifts every
            // later entry, and a journal that changed a million snapshot entries took hours.
            match latest
                .get_mut(&tk)
                .map(|e| std::mem::replace(e, Latest::Written))
            {
                None => {
                    write(&mut w, text)?;
                    n += 1;
                }
                Some(Latest::At(place)) => {
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
                Some(Latest::Removed | Latest::Written) => {}
            }
            offset += read as u64;
        }
        for ((t, k), v) in latest {
            if pace.stopped() {
                return Ok(false);
            }
            if let Latest::At(place) = v {
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
        let f = w.w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&tmp))?;
        Ok(true)
    })();
    match result {
        Ok(true) => Ok(Merged::Into(tmp)),
        Ok(false) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(Merged::Stopped)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The merged snapshot as it is written. Beside a running server (`on`) it goes to disk a
/// megabyte at a time. Left to the kernel, hundreds of megabytes would be written back at once
/// when the file is synced, and every journal fdatasync meanwhile would wait behind them (p99
/// went from 6 to 31 ms while 900 MB were merged).
struct Trickle<'a> {
    w: BufWriter<File>,
    unsynced: usize,
    on: bool,
    path: &'a Path,
}

impl Trickle<'_> {
    fn line(&mut self, s: &str) -> Result<(), WalError> {
        self.w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(io(self.path))?;
        self.unsynced += s.len() + 1;
        if self.on && self.unsynced >= 1 << 20 {
            self.unsynced = 0;
            self.w
                .flush()
                .and_then(|_| self.w.get_ref().sync_data())
                .map_err(io(self.path))?;
        }
        Ok(())
    }
}

/// How the journal is cut into segments and batched: fixed in the mock, set apart in tests.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// The size of a segment made ahead of need (zero-filled, so appending to it never changes
    /// the file's size: an fdatasync then writes the data alone, not the inode too).
    pub segment: u64,
    /// A journal that has grown this far asks for segments made ahead (a mock that takes a few
    /// writes never writes zeros).
    pub prepare_after: u64,
    /// Sealed segments that make a compaction due (or the snapshot's size, when larger).
    pub compact_at: u64,
    /// How long `batch` gathers records at most ([`BATCH_WINDOW`]).
    pub batch_window: Duration,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            segment: 32 << 20,
            prepare_after: 1 << 20,
            compact_at: COMPACT_AT_BYTES,
            batch_window: BATCH_WINDOW,
        }
    }
}

/// The last durable record, and the requests waiting for theirs: each is woken once, when its
/// record is durable. (tokio's watch channel, used before, woke every waiting request at every
/// batch, and those whose record was still to come were polled again for nothing.)
struct Durable(Mutex<DurableState>);

struct DurableState {
    seq: u64,
    /// Each waiting request's record and waker, roughly in record order.
    waiting: Vec<(u64, std::task::Waker)>,
}

impl Durable {
    fn new(seq: u64) -> Durable {
        Durable(Mutex::new(DurableState {
            seq,
            waiting: Vec::new(),
        }))
    }

    /// Records up to `seq` are durable: wakes whoever waits for one of them.
    fn advance(&self, seq: u64) {
        let woken: Vec<_> = {
            let mut d = lock(&self.0);
            d.seq = d.seq.max(seq);
            let now = d.seq;
            d.waiting.extract_if(.., |(s, _)| *s <= now).collect()
        };
        for (_, w) in woken {
            w.wake();
        }
    }

    /// Ready once record `seq` is durable. Listed once: polled again before then (hyper polls
    /// a request's future whenever its connection stirs), it is not listed again.
    async fn reached(&self, seq: u64) {
        let mut listed = false;
        std::future::poll_fn(|cx| {
            let mut d = lock(&self.0);
            if d.seq >= seq {
                return std::task::Poll::Ready(());
            }
            // Listed again only if its waker changed (a task's does not, in tokio); an entry
            // with another waker may be another request's, and is left alone.
            let waker = cx.waker();
            if !listed
                || !d
                    .waiting
                    .iter()
                    .any(|(s, w)| *s == seq && w.will_wake(waker))
            {
                d.waiting.push((seq, waker.clone()));
            }
            listed = true;
            std::task::Poll::Pending
        })
        .await
    }
}

struct Queue {
    /// Encoded records waiting for the writer.
    bytes: Vec<u8>,
    /// The sequence of the last queued record.
    last: u64,
    /// When the first of them was queued.
    since: Option<Instant>,
    /// A runtime worker ran out of work: write them now ([`Wal::idle`]).
    idle: bool,
    stop: bool,
}

/// The active segment, as the writer holds it.
struct Active {
    file: File,
    /// Where its records end; from here to `cap` it holds zeros.
    end: u64,
    /// Its length.
    cap: u64,
    /// It was made ahead of need (another is wanted once it is in use).
    made_ahead: bool,
    /// The number the next sealed segment gets.
    next_no: u64,
}

/// The journal: queue, writer thread, compactor thread, and a thread that makes segments ahead.
pub struct Wal {
    files: Files,
    mode: SyncMode,
    tuning: Tuning,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Records are queued: read without the queue's lock by [`Wal::idle`], which runs whenever a
    /// runtime worker runs out of work.
    queued: AtomicBool,
    /// The next sequence number (assigned under the simulation lock, so the order is its order).
    next: AtomicU64,
    durable: Durable,
    failed: AtomicBool,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    compact_tx: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    prepare_tx: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    active: Mutex<Active>,
    /// Bytes in sealed segments not merged yet.
    sealed_bytes: AtomicU64,
    /// The snapshot's size when it was last written.
    snapshot_bytes: AtomicU64,
    /// A compaction is under way.
    compacting: AtomicBool,
    /// Asks the merge under way to stop (set by [`Wal::shutdown`], which merges what is left
    /// itself, at full speed).
    merge_stop: Mutex<Arc<AtomicBool>>,
    /// Merges started again at normal priority because the journal outgrew them.
    urgent_merges: AtomicU64,
    /// `files.next` is ready.
    spare_ready: AtomicBool,
    /// One is being made, or making one failed (then the journal just grows).
    spare_asked: AtomicBool,
    /// Bumped when the journal is superseded ([`Wal::rewrite`]): a compaction that began before
    /// must not replace the snapshot.
    generation: AtomicU64,
    /// Held while a snapshot replaces another.
    publish: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes a directory's entries (a rename) durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(crate::util::dir_of(path))?.sync_all()
}

/// How much of a segment made ahead is written and synced at a time.
const ZERO_CHUNK: usize = 1 << 20;

/// Writes a zero-filled segment of `size` bytes as `files.next` (whole and synced, or not at all).
fn make_segment(files: &Files, size: u64) -> std::io::Result<()> {
    let tmp = files.next_tmp();
    let result = (|| {
        let mut f = create_private(&tmp)?;
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            // A little at a time, with pauses: the writer's fdatasyncs share the disk, and
            // one waiting behind many megabytes of zeros would hold up its responses.
            f.sync_data()?;
            std::thread::sleep(Duration::from_millis(2));
            left -= n as u64;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &files.next)?;
        sync_dir(&files.next)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Wal {
    /// Starts the writer, the compactor and the segment maker after recovery.
    pub fn start(files: Files, mode: SyncMode, rec: &Recovered) -> Result<Arc<Wal>, WalError> {
        Wal::start_tuned(files, mode, rec, Tuning::default())
    }

    /// [`Wal::start`] with its segment sizes given.
    pub fn start_tuned(
        files: Files,
        mode: SyncMode,
        rec: &Recovered,
        tuning: Tuning,
    ) -> Result<Arc<Wal>, WalError> {
        let seq = rec.seq;
        let durable = Durable::new(seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&files.wal)
            .map_err(io(&files.wal))?;
        let cap = file.metadata().map_err(io(&files.wal))?.len();
        let end = rec.wal_end.min(cap);
        let sealed = files.sealed_segments();
        let next_no = sealed.last().map_or(1, |(n, _)| n + 1);
        let sealed_bytes = sealed
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let snapshot_bytes = std::fs::metadata(&files.snapshot).map_or(0, |m| m.len());
        let spare_ready = files.next.exists();
        let wal = Arc::new(Wal {
            mode,
            tuning,
            queue: Mutex::new(Queue {
                bytes: Vec::new(),
                last: seq,
                since: None,
                idle: false,
                stop: false,
            }),
            wake: Condvar::new(),
            queued: AtomicBool::new(false),
            next: AtomicU64::new(seq + 1),
            durable,
            failed: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            compact_tx: Mutex::new(None),
            prepare_tx: Mutex::new(None),
            active: Mutex::new(Active {
                file,
                end,
                cap,
                made_ahead: cap > end,
                next_no,
            }),
            sealed_bytes: AtomicU64::new(sealed_bytes),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            compacting: AtomicBool::new(false),
            merge_stop: Mutex::new(Arc::new(AtomicBool::new(false))),
            urgent_merges: AtomicU64::new(0),
            spare_ready: AtomicBool::new(spare_ready),
            spare_asked: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            publish: Mutex::new(()),
            files,
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(io(&wal.files.wal))
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        *lock(&wal.compact_tx) = Some(tx);
        let (ptx, prx) = std::sync::mpsc::channel::<()>();
        *lock(&wal.prepare_tx) = Some(ptx);
        let w = wal.clone();
        let writer = spawn("postie-mock-wal", Box::new(move || w.write_loop()))?;
        let c = wal.clone();
        let compactor = spawn(
            "postie-mock-compact",
            Box::new(move || {
                while rx.recv().is_ok() {
                    c.compact_sealed();
                    c.compacting.store(false, Ordering::Release);
                }
            }),
        )?;
        let p = wal.clone();
        let preparer = spawn(
            "postie-mock-prep",
            Box::new(move || {
                while prx.recv().is_ok() {
                    match make_segment(&p.files, p.tuning.segment) {
                        Ok(()) => {
                            p.spare_ready.store(true, Ordering::Release);
                            p.spare_asked.store(false, Ordering::Release);
                        }
                        // Asked no more: the journal grows as it is written.
                        Err(e) => eprintln!(
                            "postie mock: cannot make a journal segment ahead ({}: {e}); the journal grows as it is written",
                            p.files.next.display()
                        ),
                    }
                }
            }),
        )?;
        lock(&wal.threads).extend([writer, compactor, preparer]);
        if sealed_bytes > 0 {
            // Segments a stopped mock left: merge them now.
            wal.ask_compaction();
        }
        Ok(wal)
    }

    /// Queues the changes `sim` records as one record; returns its sequence number (0 when
    /// nothing changed). Called with the simulation locked, so records keep its order.
    pub fn append(&self, sim: &mut Sim) -> u64 {
        if !sim.has_changes() {
            return 0;
        }
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let payload = record(seq, sim);
        let mut q = lock(&self.queue);
        let was_empty = q.bytes.is_empty();
        push_frame(&mut q.bytes, &payload);
        q.last = seq;
        q.since.get_or_insert_with(Instant::now);
        if was_empty {
            self.queued.store(true, Ordering::Relaxed);
        }
        drop(q);
        // Only the first record of a batch wakes the writer: waking it for every record would
        // switch threads tens of thousands of times a second, on the core the requests need.
        if was_empty {
            self.wake.notify_one();
        }
        seq
    }

    /// Called whenever a runtime worker runs out of work (just before it parks): nothing the
    /// mock is doing will add to the records queued, so in `batch` they are written now rather
    /// than at the end of the window, and a lone write is answered without waiting for it.
    /// Under a steady load the workers run out of work about as often as the window ends
    /// (measured at 64 connections: the same fdatasyncs a second and the same rate). Waiting
    /// longer for bigger batches does not pay either: at 1 ms, or 100 µs past the workers
    /// running out, the requests waiting for a batch left the core idle and the rate fell by a
    /// fifth (docs/benchmarks.md).
    pub fn idle(&self) {
        if self.mode != SyncMode::Batch || !self.queued.load(Ordering::Relaxed) {
            return;
        }
        let mut q = lock(&self.queue);
        if !q.bytes.is_empty() && !q.idle {
            q.idle = true;
            drop(q);
            self.wake.notify_one();
        }
    }

    /// Waits until record `seq` is durable as the sync mode promises (at once for `none`).
    pub async fn durable(&self, seq: u64) -> bool {
        if seq == 0 || self.mode == SyncMode::None {
            return true;
        }
        self.durable.reached(seq).await;
        !self.failed.load(Ordering::Relaxed)
    }

    /// Sealed bytes (or one growing segment) past which a compaction is due.
    fn compact_threshold(&self) -> u64 {
        self.tuning
            .compact_at
            .max(self.snapshot_bytes.load(Ordering::Relaxed))
    }

    /// Whether the sealed journal has reached twice the size that makes a merge due: a merge
    /// then takes its share of the CPU, whatever the load.
    fn overdue(&self) -> bool {
        self.sealed_bytes.load(Ordering::Acquire) >= self.compact_threshold().saturating_mul(2)
    }

    fn ask_compaction(&self) {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        match &*lock(&self.compact_tx) {
            Some(tx) if tx.send(()).is_ok() => {}
            _ => self.compacting.store(false, Ordering::Release),
        }
    }

    fn ask_segment(&self) {
        if self.spare_ready.load(Ordering::Acquire) || self.spare_asked.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if let Some(tx) = &*lock(&self.prepare_tx) {
            let _ = tx.send(());
        }
    }

    /// Seals the active segment (cut to its records) and starts the next: the one made ahead
    /// when `ahead`, else an empty file. Records go to the new segment only once both names are
    /// durable.
    fn roll(&self, a: &mut Active, ahead: bool) -> std::io::Result<()> {
        let files = &self.files;
        if a.end > 0 {
            a.file.set_len(a.end)?;
            std::fs::rename(&files.wal, files.sealed_segment(a.next_no))?;
            a.next_no += 1;
            self.sealed_bytes.fetch_add(a.end, Ordering::AcqRel);
        } else if !ahead {
            return Ok(());
        }
        let made_ahead = ahead && std::fs::rename(&files.next, &files.wal).is_ok();
        if ahead {
            self.spare_ready.store(false, Ordering::Release);
        }
        if !made_ahead {
            create_private(&files.wal)?;
        }
        sync_dir(&files.wal)?;
        let file = OpenOptions::new().read(true).write(true).open(&files.wal)?;
        let cap = file.metadata()?.len();
        *a = Active {
            file,
            end: 0,
            cap,
            made_ahead,
            next_no: a.next_no,
        };
        if self.sealed_bytes.load(Ordering::Acquire) >= self.compact_threshold() {
            self.ask_compaction();
        }
        Ok(())
    }

    /// Appends a batch of records to the active segment, starting the next segment first when
    /// they do not fit in the zeros made ahead and another is ready (or, without one, when the
    /// segment has grown past the compaction size); makes them durable as the mode says.
    fn write_batch(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut a = lock(&self.active);
        let len = bytes.len() as u64;
        if a.end + len > a.cap {
            if self.spare_ready.load(Ordering::Acquire) {
                self.roll(&mut a, true)?;
            } else if a.end >= self.compact_threshold() {
                self.roll(&mut a, false)?;
            }
        }
        a.file.write_all_at(bytes, a.end)?;
        a.end += len;
        a.cap = a.cap.max(a.end);
        if self.mode != SyncMode::None {
            a.file.sync_data()?;
        }
        if a.made_ahead || a.end >= self.tuning.prepare_after {
            self.ask_segment();
        }
        Ok(())
    }

    fn write_loop(self: Arc<Self>) {
        loop {
            let (bytes, last, stop) = {
                let mut q = lock(&self.queue);
                while q.bytes.is_empty() && !q.stop {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if self.mode == SyncMode::Batch {
                    // Gather what arrives into this fdatasync until the mock has nothing else
                    // to do, or to the end of the window (records are queued meanwhile without
                    // waking anyone).
                    while let Some(since) = q.since
                        && !q.idle
                        && !q.stop
                    {
                        let wait = self.tuning.batch_window.saturating_sub(since.elapsed());
                        if wait.is_zero() {
                            break;
                        }
                        q = self
                            .wake
                            .wait_timeout(q, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
                q.since = None;
                q.idle = false;
                self.queued.store(false, Ordering::Relaxed);
                (std::mem::take(&mut q.bytes), q.last, q.stop)
            };
            if !bytes.is_empty() {
                if let Err(e) = self.write_batch(&bytes) {
                    self.failed.store(true, Ordering::Relaxed);
                    eprintln!(
                        "postie mock: cannot write {} ({e}); writes are no longer durable",
                        self.files.wal.display()
                    );
                }
                self.durable.advance(last);
            }
            if stop {
                let _ = lock(&self.active).file.sync_all();
                return;
            }
        }
    }

    /// Merges the sealed segments into the snapshot (the compactor thread), unless the journal
    /// was superseded meanwhile.
    ///
    /// Compaction is background work. The merge runs on a thread of its own at the lowest
    /// priority (SCHED_IDLE on Linux: a request arriving preempts it at once), and it also
    /// sleeps two milliseconds after each one of work. So requests sharing its core are not
    /// delayed by a snapshot being rewritten. A sustained full load leaves it no CPU at all, though.
    /// When the sealed journal reaches twice the size that made the merge due, the merge is
    /// started again at normal priority, still pacing itself (at most a third of a core). The
    /// journal then stays bounded under any load, at the cost of some throughput while it
    /// merges.
    fn compact_sealed(&self) {
        let mut urgent = self.overdue();
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let segments: Vec<PathBuf> = self.files.sealed_paths();
            let bytes: u64 = segments
                .iter()
                .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                .sum();
            let stop = Arc::new(AtomicBool::new(false));
            *lock(&self.merge_stop) = stop.clone();
            if lock(&self.queue).stop {
                return;
            }
            let merged = self.merge_beside_server(&segments, &stop, urgent);
            if matches!(merged, Ok(Merged::Stopped)) {
                if lock(&self.queue).stop {
                    return;
                }
                urgent = true;
                self.urgent_merges.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "postie mock: the journal reached {} MiB under a load that left its merge no CPU; merging it now beside the requests",
                    self.sealed_bytes.load(Ordering::Relaxed) >> 20
                );
                continue;
            }
            return self.publish_merge(generation, &segments, bytes, merged);
        }
    }

    /// Runs a merge on a thread of its own, at the lowest priority unless `urgent`, and waits for
    /// it. A merge at the lowest priority that the journal outgrows meanwhile is left to stop by
    /// itself when it next runs: the result is then [`Merged::Stopped`] at once.
    fn merge_beside_server(
        &self,
        segments: &[PathBuf],
        stop: &Arc<AtomicBool>,
        urgent: bool,
    ) -> Result<Merged, WalError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (files, owned, flag) = (self.files.clone(), segments.to_vec(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("postie-mock-merge".into())
            .spawn(move || {
                if !urgent {
                    low_priority();
                }
                let merged = merge(&files, &owned, Some(&flag));
                // Nobody waits for it any more: what it made goes.
                if let Err(std::sync::mpsc::SendError(Ok(Merged::Into(tmp)))) = tx.send(merged) {
                    let _ = std::fs::remove_file(tmp);
                }
            });
        if spawned.is_err() {
            return merge(&self.files, segments, Some(stop));
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(merged) => return merged,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) || (!urgent && self.overdue()) {
                        stop.store(true, Ordering::Release);
                        return Ok(Merged::Stopped);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(io(&self.files.snapshot)(std::io::Error::other(
                        "the merge stopped unexpectedly",
                    )));
                }
            }
        }
    }

    /// Puts a merge's result in place of the snapshot, unless the journal was superseded
    /// meanwhile, and forgets the segments it merged.
    fn publish_merge(
        &self,
        generation: u64,
        segments: &[PathBuf],
        bytes: u64,
        merged: Result<Merged, WalError>,
    ) {
        let _g = lock(&self.publish);
        let current = self.generation.load(Ordering::Acquire) == generation;
        let result = match merged {
            Ok(Merged::Into(tmp)) if !current => {
                let _ = std::fs::remove_file(&tmp);
                Ok(())
            }
            Ok(Merged::Into(tmp)) => std::fs::rename(&tmp, &self.files.snapshot)
                .map_err(io(&self.files.snapshot))
                .and_then(|()| remove_segments(segments)),
            Ok(Merged::Nothing) if current => remove_segments(segments),
            Ok(Merged::Nothing | Merged::Stopped) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if current => {
                self.sealed_bytes.fetch_sub(
                    bytes.min(self.sealed_bytes.load(Ordering::Acquire)),
                    Ordering::AcqRel,
                );
                self.snapshot_bytes.store(
                    std::fs::metadata(&self.files.snapshot).map_or(0, |m| m.len()),
                    Ordering::Relaxed,
                );
            }
            Ok(()) => {}
            Err(e) => eprintln!("postie mock: compaction failed: {e}"),
        }
    }

    /// Replaces everything with a snapshot of `sim` (a reset or a state import): the journal so
    /// far is superseded. Call with the simulation locked.
    pub fn rewrite(&self, sim: &mut Sim) -> Result<(), WalError> {
        let mut q = lock(&self.queue);
        q.bytes.clear();
        q.since = None;
        q.idle = false;
        self.queued.store(false, Ordering::Relaxed);
        // Waits for a batch being written; a compaction under way will not publish.
        let mut a = lock(&self.active);
        let _g = lock(&self.publish);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        write_snapshot(&self.files.snapshot, sim, seq)?;
        sim.forget_changes();
        self.snapshot_bytes.store(
            std::fs::metadata(&self.files.snapshot).map_or(0, |m| m.len()),
            Ordering::Relaxed,
        );
        a.file.set_len(0).map_err(io(&self.files.wal))?;
        a.end = 0;
        a.cap = 0;
        a.made_ahead = false;
        for p in self.files.sealed_paths() {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
        self.sealed_bytes.store(0, Ordering::Release);
        q.last = seq;
        drop(a);
        drop(q);
        self.durable.advance(seq);
        Ok(())
    }

    /// Stops the threads after writing what is queued, then merges the journal into the
    /// snapshot, so the next start reads one file.
    pub fn shutdown(&self) {
        lock(&self.queue).stop = true;
        self.wake.notify_all();
        lock(&self.merge_stop).store(true, Ordering::Release);
        lock(&self.compact_tx).take();
        lock(&self.prepare_tx).take();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
        let files = &self.files;
        let _ = std::fs::remove_file(&files.next);
        let _ = std::fs::remove_file(files.next_tmp());
        // Whatever is journaled goes into the snapshot.
        let mut segments: Vec<PathBuf> = files.sealed_paths();
        let a = lock(&self.active);
        if a.end > 0 {
            let last = files.sealed_segment(a.next_no);
            if a.file.set_len(a.end).is_ok() && std::fs::rename(&files.wal, &last).is_ok() {
                segments.push(last);
            }
        } else {
            let _ = std::fs::remove_file(&files.wal);
        }
        drop(a);
        if !segments.is_empty()
            && let Err(e) = compact(files, &segments)
        {
            eprintln!("postie mock: could not merge the journal into the snapshot: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::store::ContactList;

    fn list(name: &str) -> ContactList {
        ContactList::new(uuid::Uuid::new_v4(), name, 1)
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
        let wal = Wal::start(files.clone(), SyncMode::Always, &Recovered::default()).unwrap();
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

    /// Replay reads a record and its changes in one pass; a frame that is whole but is not a
    /// record ends the journal (dropped, with a note), and a record with a change that cannot be
    /// read is refused at its offset.
    #[test]
    fn replay_tells_a_torn_record_from_a_change_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        write_snapshot(&files.snapshot, &Sim::default(), 0).unwrap();
        let mut sim = Sim::default();
        sim.lists.insert(uuid::Uuid::new_v4(), list("b"));
        let mut good = Vec::new();
        push_frame(&mut good, &record(1, &mut sim));
        sim.lists.insert(uuid::Uuid::new_v4(), list("c"));
        push_frame(&mut good, &record(2, &mut sim));
        for (last, torn) in [
            (&br#"{"seq":3,"changes":[["lists","#[..], true),
            (br#"{"seq":3,"changes":[["no_such_table","k",1]]}"#, false),
            (
                br#"{"seq":3,"changes":[["lists","not an id",null]]}"#,
                false,
            ),
        ] {
            let mut bytes = good.clone();
            let at = bytes.len() as u64 + 8;
            push_frame(&mut bytes, last);
            std::fs::write(&files.wal, &bytes).unwrap();
            let mut loaded = None;
            match recover(&files, &mut loaded) {
                Ok(rec) => {
                    assert!(torn, "{}", String::from_utf8_lossy(last));
                    assert_eq!((rec.seq, rec.replayed), (2, 2));
                    assert_eq!(names(&loaded.unwrap()), ["b", "c"]);
                    assert!(
                        rec.notes.iter().any(|n| n.contains("dropped")),
                        "{:?}",
                        rec.notes
                    );
                    assert_eq!(std::fs::metadata(&files.wal).unwrap().len(), at - 8);
                }
                Err(WalError::Corrupt { path, offset, .. }) => {
                    assert!(!torn, "{}", String::from_utf8_lossy(last));
                    assert_eq!((path, offset), (files.wal.clone(), at));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// An empty snapshot in a new directory and a `batch` journal over it, tuned so.
    fn batch_journal(tuning: Tuning) -> (tempfile::TempDir, Files, Sim, Arc<Wal>) {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let sim = Sim::default();
        write_snapshot(&files.snapshot, &sim, 0).unwrap();
        let wal = Wal::start_tuned(
            files.clone(),
            SyncMode::Batch,
            &Recovered::default(),
            tuning,
        )
        .unwrap();
        (dir, files, sim, wal)
    }

    /// In `batch`, queued records wait for the window, unless a runtime worker runs out of
    /// work first ([`Wal::idle`]): they are written then. The window here is an hour, so a
    /// record written before it ends was written because of `idle`.
    #[test]
    fn a_batch_is_written_when_the_mock_has_nothing_else_to_do() {
        let (_dir, files, mut sim, wal) = batch_journal(Tuning {
            batch_window: Duration::from_secs(3600),
            ..Tuning::default()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let durable_within = |seq, ms| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(ms), wal.durable(seq))
                    .await
                    .is_ok_and(|ok| ok)
            })
        };
        // Not written in a third of a second of an hour's window; written within 20 s of idle.
        let not_yet = |seq| !durable_within(seq, 300);
        let written = |seq| durable_within(seq, 20_000);
        // Nothing queued: idle has nothing to write.
        wal.idle();
        sim.lists.insert(uuid::Uuid::new_v4(), list("a"));
        let s1 = wal.append(&mut sim);
        sim.lists.insert(uuid::Uuid::new_v4(), list("b"));
        let s2 = wal.append(&mut sim);
        assert!(not_yet(s1), "written before the window ended, with no idle");
        wal.idle();
        assert!(written(s2), "idle did not write the batch");
        // The next batch waits for its own idle, not the last one's.
        sim.lists.insert(uuid::Uuid::new_v4(), list("c"));
        let s3 = wal.append(&mut sim);
        assert!(not_yet(s3), "the last batch's idle wrote the next one");
        wal.idle();
        assert!(written(s3));
        wal.shutdown();
        let mut loaded = None;
        recover(&files, &mut loaded).unwrap();
        assert_eq!(names(&loaded.unwrap()), ["a", "b", "c"]);
    }

    /// A request waiting for its record is woken once that record is durable, not by an
    /// earlier batch; one whose record is already durable does not wait.
    #[test]
    fn a_waiting_request_is_woken_once_its_record_is_durable() {
        use std::future::Future;
        use std::sync::atomic::AtomicUsize;
        use std::task::{Context, Wake, Waker};
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let durable = Durable::new(3);
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let mut futures: Vec<_> = [5u64, 7, 3]
            .into_iter()
            .map(|seq| Box::pin(durable.reached(seq)))
            .collect();
        fn ready<F: Future>(f: std::pin::Pin<&mut F>, count: &Arc<Count>) -> bool {
            let waker = Waker::from(count.clone());
            f.poll(&mut Context::from_waker(&waker)).is_ready()
        }
        let mut poll = |i: usize| ready(futures[i].as_mut(), &counts[i]);
        assert_eq!((poll(0), poll(1)), (false, false));
        assert!(poll(2), "record 3 was durable already");
        // Polled again before its record is durable: still listed once.
        assert!(!poll(1));
        assert_eq!(lock(&durable.0).waiting.len(), 2);
        let woken = || {
            counts
                .iter()
                .map(|c| c.0.load(Ordering::SeqCst))
                .collect::<Vec<_>>()
        };
        durable.advance(4);
        assert_eq!(woken(), [0, 0, 0]);
        durable.advance(6);
        assert_eq!(woken(), [1, 0, 0]);
        assert!(poll(0));
        durable.advance(6);
        durable.advance(9);
        assert_eq!(woken(), [1, 1, 0]);
        assert!(poll(1));
        assert!(lock(&durable.0).waiting.is_empty());
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Appends a list per call and waits until its record is durable, and until a segment asked
    /// for is made (so when segments roll does not depend on how busy the machine is).
    fn add_lists(wal: &Wal, sim: &mut Sim, names: impl Iterator<Item = String>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for n in names {
            let l = list(&n);
            sim.lists.insert(l.id, l);
            let seq = wal.append(sim);
            assert!(rt.block_on(wal.durable(seq)));
            wait_until("the segment asked for", || {
                !wal.spare_asked.load(Ordering::Acquire)
            });
        }
    }

    #[test]
    fn segments_made_ahead_roll_replay_in_order_and_merge() {
        let (dir, files, mut sim, wal) = batch_journal(Tuning {
            segment: 4096,
            prepare_after: 1024,
            compact_at: u64::MAX,
            ..Tuning::default()
        });
        // The first kilobyte grows the journal; past it a zero-filled segment is made ahead.
        add_lists(&wal, &mut sim, (0..8).map(|i| format!("l{i}")));
        wait_until("a segment made ahead", || files.next.exists());
        assert_eq!(std::fs::read(&files.next).unwrap(), vec![0u8; 4096]);
        add_lists(&wal, &mut sim, (8..80).map(|i| format!("l{i}")));
        let sealed = files.sealed_segments();
        assert!(sealed.len() >= 3, "{sealed:?}");
        // The active segment ends in zeros that were never written.
        let active = std::fs::read(&files.wal).unwrap();
        assert_eq!(active.len(), 4096, "the active segment keeps its size");
        assert_eq!(*active.last().unwrap(), 0);
        // A crash now: recovery reads every segment in order, quietly past the zeros.
        wait_until("the next segment", || {
            !wal.spare_asked.load(Ordering::Acquire)
        });
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        assert!(rec.notes.is_empty(), "{:?}", rec.notes);
        assert_eq!((rec.seq, rec.replayed), (80, 80));
        assert_eq!(names(&loaded.unwrap()), names(&sim));
        assert!(rec.wal_end > 0 && rec.wal_end < 4096);
        // A torn record in the zeros is still reported and cut off.
        {
            use std::os::unix::fs::FileExt;
            let f = OpenOptions::new().write(true).open(&files.wal).unwrap();
            f.write_all_at(&[40, 0, 0, 0, 9, 9, 9, 9, b'{'], rec.wal_end)
                .unwrap();
        }
        let rec2 = recover(&files, &mut None).unwrap();
        assert!(
            rec2.notes.iter().any(|n| n.contains("dropped")),
            "{:?}",
            rec2.notes
        );
        assert_eq!(std::fs::metadata(&files.wal).unwrap().len(), rec.wal_end);
        // A clean stop merges them all and leaves one file.
        wal.shutdown();
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["s.json"]);
        let mut again = None;
        let rec = recover(&files, &mut again).unwrap();
        assert_eq!((rec.seq, rec.replayed), (80, 0));
        assert_eq!(names(&again.unwrap()), names(&sim));
    }

    /// A merge keeps each entry where it first changed with its newest value, and names the
    /// segment and offset of a change that is not `[table, key, value]`.
    #[test]
    fn a_merge_keeps_the_newest_value_and_names_a_change_that_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        write_snapshot(&files.snapshot, &Sim::default(), 0).unwrap();
        let seg = dir.path().join("seg");
        let mut bytes = Vec::new();
        for payload in [
            r#"{"seq":1,"changes":[["t","a",{"v":1}],["t","b",[2]]]}"#,
            r#"{"seq":2,"changes":[["t","a",{"v":"3 \" ]"}],["t","c",4],["t","c",null]],"clock":5}"#,
        ] {
            push_frame(&mut bytes, payload.as_bytes());
        }
        std::fs::write(&seg, &bytes).unwrap();
        let Ok(Merged::Into(tmp)) = merge(&files, std::slice::from_ref(&seg), None) else {
            panic!("no merge");
        };
        let text = std::fs::read_to_string(&tmp).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains(r#""seq":2"#) && lines[0].contains(r#""clock_offset_ms":5"#));
        assert_eq!(
            lines[1..],
            [
                r#"["t","a",{"v":"3 \" ]"}]"#,
                r#"["t","b",[2]]"#,
                r#"{"end":2}"#
            ]
        );
        // A record whose change lacks its key and value, after the good ones.
        let at = bytes.len() as u64 + 8;
        push_frame(&mut bytes, br#"{"seq":3,"changes":[["t","a",1],["t"]]}"#);
        std::fs::write(&seg, &bytes).unwrap();
        match merge(&files, std::slice::from_ref(&seg), None) {
            Err(WalError::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (seg, at)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("merged a change that is not one"),
        }
    }

    /// A journal of 2 KiB segments whose sealed ones are merged past 4 KiB (or the snapshot's
    /// size), every write synced.
    fn start_small(files: &Files) -> Arc<Wal> {
        let tuning = Tuning {
            segment: 2048,
            prepare_after: 512,
            compact_at: 4096,
            ..Tuning::default()
        };
        Wal::start_tuned(
            files.clone(),
            SyncMode::Always,
            &Recovered::default(),
            tuning,
        )
        .unwrap()
    }

    #[test]
    fn sealed_segments_are_merged_in_the_background_and_a_rewrite_supersedes_them() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let mut sim = Sim::default();
        write_snapshot(&files.snapshot, &sim, 0).unwrap();
        let wal = start_small(&files);
        add_lists(&wal, &mut sim, (0..120).map(|i| format!("m{i}")));
        // Enough was sealed for a merge: the snapshot takes the sealed records (how many depends
        // on how far the writes had gone when it began).
        wait_until("a background merge", || {
            std::fs::read_to_string(&files.snapshot)
                .unwrap()
                .contains("\"m0\"")
                && !wal.compacting.load(Ordering::Acquire)
                && !wal.spare_asked.load(Ordering::Acquire)
        });
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        assert_eq!(rec.seq, 120);
        assert!(rec.replayed < 120, "replayed {}", rec.replayed);
        assert_eq!(names(&loaded.unwrap()), names(&sim));
        // A reset replaces everything, segments included.
        let mut fresh = Sim::default();
        let only = list("only");
        fresh.lists.insert(only.id, only);
        wal.rewrite(&mut fresh).unwrap();
        assert!(files.sealed_segments().is_empty());
        add_lists(&wal, &mut fresh, ["after".to_string()].into_iter());
        let mut loaded = None;
        recover(&files, &mut loaded).unwrap();
        assert_eq!(names(&loaded.unwrap()), ["only", "after"]);
        wal.shutdown();
        let mut loaded = None;
        recover(&files, &mut loaded).unwrap();
        assert_eq!(names(&loaded.unwrap()), ["only", "after"]);
    }

    /// A merge at the lowest priority that the journal outgrows (the server left it no CPU) is
    /// started again at normal priority; the one left behind removes what it wrote.
    #[test]
    fn a_merge_the_journal_outgrows_is_started_again_at_normal_priority() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        // A snapshot of about 10 MB: a paced merge of it takes well over 50 ms.
        let mut sim = Sim::default();
        for i in 0..50_000 {
            let mut l = list(&format!("s{i}"));
            l.description = Some("x".repeat(150));
            sim.lists.insert(l.id, l);
        }
        write_snapshot(&files.snapshot, &sim, 0).unwrap();
        sim.forget_changes();
        let wal = start_small(&files);
        add_lists(&wal, &mut sim, (0..30).map(|i| format!("m{i}")));
        assert!(!files.sealed_paths().is_empty());
        assert!(
            !wal.overdue(),
            "the snapshot's size keeps the merge from being due yet"
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // The journal outgrows the merge while it runs.
                std::thread::sleep(Duration::from_millis(10));
                wal.sealed_bytes.fetch_add(1 << 40, Ordering::AcqRel);
            });
            wal.compact_sealed();
        });
        assert_eq!(wal.urgent_merges.load(Ordering::Relaxed), 1);
        assert!(
            files.sealed_paths().is_empty(),
            "the urgent merge took them"
        );
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        // What the active segment holds is replayed; the rest came from the merged snapshot.
        assert_eq!(rec.seq, 30);
        assert!(rec.replayed < 30, "replayed {}", rec.replayed);
        assert_eq!(names(&loaded.unwrap()), names(&sim));
        let temps = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".tmp")
                })
                .count()
        };
        wait_until("the merge left behind to clean up", || temps() == 0);
        wal.shutdown();
    }

    #[test]
    fn temporary_files_are_unique_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (a, b) = (temp_beside(&path), temp_beside(&path));
        assert_ne!(a, b, "a merge and a reset each write their own");
        for t in [&a, &b] {
            std::fs::write(t, "x").unwrap();
        }
        let keep = dir.path().join("s.json.wal.sealed.1");
        std::fs::write(&keep, "x").unwrap();
        remove_stale_temps(&path);
        assert!(!a.exists() && !b.exists() && keep.exists());
    }

    #[test]
    fn a_snapshot_of_many_blocks_loads_in_order_and_a_fault_in_a_late_block_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let mut sim = Sim::default();
        for i in 0..6000 {
            let mut l = list(&format!("list {i}"));
            l.description = Some("d".repeat(600));
            sim.lists.insert(l.id, l);
        }
        write_snapshot(&files.snapshot, &sim, 7).unwrap();
        let text = std::fs::read_to_string(&files.snapshot).unwrap();
        assert!(text.len() > 3 * LOAD_BLOCK, "{} bytes", text.len());
        assert!(text.lines().next().unwrap().contains("\"entries\":6000"));
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        assert_eq!(rec.seq, 7);
        assert_eq!(names(&loaded.unwrap()), names(&sim));
        // A damaged line in the fourth megabyte: refused at its offset.
        let at = text.find("\"list 5000\"").unwrap();
        let line_start = text[..at].rfind('\n').unwrap() + 1;
        let damaged = format!("{}{}", &text[..at], &text[at + 1..]);
        std::fs::write(&files.snapshot, &damaged).unwrap();
        let err = recover(&files, &mut None).unwrap_err().to_string();
        assert!(err.contains(&format!("byte {line_start} ")), "{err}");
        // Cut in the middle of a line: truncated, at that line.
        std::fs::write(&files.snapshot, &text[..at]).unwrap();
        let err = recover(&files, &mut None).unwrap_err().to_string();
        assert!(
            err.contains("truncated") && err.contains(&format!("byte {line_start} ")),
            "{err}"
        );
        // A footer that counts otherwise.
        let miscounted = text.replace("{\"end\":6000}", "{\"end\":5999}");
        std::fs::write(&files.snapshot, miscounted).unwrap();
        let err = recover(&files, &mut None).unwrap_err().to_string();
        assert!(
            err.contains("the footer counts 5999 entries, the file has 6000"),
            "{err}"
        );
    }

    /// Records carry the clock after their changes since they are written in one buffer; the
    /// ones written before carry it first. Both read the same, and a record without a clock
    /// has none.
    #[test]
    fn a_record_reads_the_same_with_its_clock_before_or_after_its_changes() {
        let mut sim = Sim::default();
        let l = list("first");
        sim.lists.insert(l.id, l);
        sim.clock_offset_ms = 42_000;
        let new = record(9, &mut sim);
        let r: Record<'_> = serde_json::from_slice(&new).unwrap();
        assert_eq!((r.seq, r.clock, r.changes.len()), (9, Some(42_000), 1));
        let change = r.changes[0].get();
        assert!(change.starts_with(r#"["lists","#), "{change}");
        let old = format!(r#"{{"seq":9,"clock":42000,"changes":[{change}]}}"#);
        let o: Record<'_> = serde_json::from_slice(old.as_bytes()).unwrap();
        assert_eq!(
            (o.seq, o.clock, o.changes[0].get()),
            (r.seq, r.clock, change)
        );
        // Nothing moved since: the next record has no changes and no clock.
        let quiet = record(10, &mut sim);
        assert_eq!(quiet, br#"{"seq":10,"changes":[]}"#);
    }

    /// Replay reads frames on one thread and parses them on every core: records must still be
    /// applied in order across many batches, records the snapshot holds skipped, and a fault in
    /// a late batch found at its offset (a bad change) or cut there (a torn record).
    #[test]
    fn a_journal_of_many_batches_replays_in_order_and_a_fault_in_a_late_batch_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        // 20,000 records of one list each, about 5 MiB: five batches and more.
        let n = 20_000u64;
        let mut sim = Sim::default();
        let mut journal = Vec::new();
        let mut offsets = Vec::new();
        let mut snapshot_at_100 = None;
        for i in 1..=n {
            let mut l = list(&format!("l{i}"));
            l.description = Some("x".repeat(150));
            sim.lists.insert(l.id, l);
            if i == 7_000 {
                sim.clock_offset_ms = 42_000;
            }
            offsets.push(journal.len() as u64);
            push_frame(&mut journal, &record(i, &mut sim));
            if i == 100 {
                snapshot_at_100 = Some(sim.clone());
            }
        }
        assert!(journal.len() > 4 * LOAD_BLOCK, "{} bytes", journal.len());
        let expected: Vec<String> = (1..=n).map(|i| format!("l{i}")).collect();

        // The snapshot holds the first 100 records: they are skipped, the rest applied in order.
        write_snapshot(&files.snapshot, snapshot_at_100.as_ref().unwrap(), 100).unwrap();
        std::fs::write(&files.wal, &journal).unwrap();
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(
            (rec.seq, rec.replayed, rec.wal_end),
            (n, n - 100, journal.len() as u64)
        );
        assert_eq!(names(&loaded), expected);
        assert_eq!(loaded.clock_offset_ms, 42_000);
        assert!(rec.notes.is_empty(), "{:?}", rec.notes);

        // A record in the fourth megabyte whose change cannot be read: refused at its offset.
        let k = offsets
            .iter()
            .position(|&o| o > 3 * LOAD_BLOCK as u64)
            .unwrap();
        let mut bad = journal[..offsets[k] as usize].to_vec();
        push_frame(
            &mut bad,
            format!(
                r#"{{"seq":{},"changes":[["lists","not a uuid",{{}}]]}}"#,
                k + 1
            )
            .as_bytes(),
        );
        bad.extend_from_slice(&journal[offsets[k + 1] as usize..]);
        std::fs::write(&files.wal, &bad).unwrap();
        match recover(&files, &mut None) {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, files.wal);
                assert_eq!(offset, offsets[k] + 8);
            }
            other => panic!("{:?}", other.map(|r| r.seq)),
        }
        assert_eq!(
            std::fs::read(&files.wal).unwrap(),
            bad,
            "a refused journal is left alone"
        );

        // A torn record there instead (a whole frame whose text is cut): the records end before
        // it, and the file is cut there.
        let mut torn = journal[..offsets[k] as usize].to_vec();
        push_frame(&mut torn, b"{\"seq\":");
        torn.extend_from_slice(&journal[offsets[k + 1] as usize..]);
        std::fs::write(&files.wal, &torn).unwrap();
        let mut loaded = None;
        let rec = recover(&files, &mut loaded).unwrap();
        assert_eq!((rec.seq, rec.wal_end), (k as u64, offsets[k]));
        assert_eq!(names(&loaded.unwrap()), expected[..k]);
        assert!(
            rec.notes[0].contains("a record that was being written"),
            "{:?}",
            rec.notes
        );
        assert_eq!(std::fs::metadata(&files.wal).unwrap().len(), offsets[k]);
    }

    /// Contacts are appended as a snapshot is read and indexed at its end, a shard at a time:
    /// the loaded contacts must be the written ones, in order, found by id and by address,
    /// counted and zoned; a contact twice is refused; a removal in a snapshot still applies.
    #[test]
    fn a_snapshot_of_contacts_loads_indexed_in_order_and_a_contact_twice_is_refused() {
        use crate::mock::store::{Contact, Email, Permission, Source};
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(&dir.path().join("s.json"));
        let mut sim = Sim::default();
        let members = list("members");
        let members_id = members.id;
        sim.lists.insert(members.id, members);
        for i in 0..8000i64 {
            let id = uuid::Uuid::new_v4();
            let mut c = Contact::new(id, 1_000_000 + i * 1000, Source::Account);
            c.first_name = Some(format!("Contact number {i} {}", "x".repeat(200)));
            if i % 3 == 0 {
                c.list_memberships.push(members_id);
            }
            if i % 5 != 0 {
                let address = format!("c{i}@example.com");
                c.email = Some(Email::new(&address, Permission::Implicit, c.created_at));
                sim.contacts.insert(id, Box::new(c));
                sim.set_email_index(id, None, Some(&address));
            } else {
                sim.contacts.insert(id, Box::new(c));
            }
        }
        write_snapshot(&files.snapshot, &sim, 3).unwrap();
        let text = std::fs::read_to_string(&files.snapshot).unwrap();
        assert!(text.len() > 2 * LOAD_BLOCK, "{} bytes", text.len());
        let mut loaded = None;
        recover(&files, &mut loaded).unwrap();
        let loaded = loaded.unwrap();
        let ids = |s: &Sim| s.contacts.values().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(&loaded), ids(&sim));
        for c in sim.contacts.values() {
            assert_eq!(
                loaded.contacts.get_full(&c.id).map(|(p, _, _)| p),
                sim.contacts.get_full(&c.id).map(|(p, _, _)| p)
            );
            if let Some(e) = &c.email {
                assert_eq!(loaded.find_email(&e.address), Some(c.id), "{}", e.address);
            }
        }
        assert_eq!(loaded.find_email("nobody@example.com"), None);
        let kept = |s: &Sim| s.contacts.tally().matching(&[members_id], None);
        assert_eq!(kept(&loaded), kept(&sim));
        assert_eq!(kept(&loaded), Some(2667));
        let t = 1_000_000 + 6000 * 1000;
        let after = |s: &Sim| {
            s.contacts
                .iter_after(0, t)
                .filter(|(_, _, c)| c.updated_at > t)
                .count()
        };
        assert_eq!(after(&loaded), 1999);
        // Zones were kept as the contacts were appended: most of the walk is passed over.
        assert!(loaded.contacts.iter_after(0, t).count() < 2200);

        // A contact's line twice (the footer counting it): refused, naming the contact.
        let lines: Vec<&str> = text.lines().collect();
        let k = lines
            .iter()
            .position(|l| l.contains("Contact number 4000 "))
            .unwrap();
        let twice_id = sim.contacts.values().nth(4000).unwrap().id;
        // The snapshot with one more line at `at` (before the footer), its footer counting it.
        let footer = lines.last().unwrap();
        let count = lines.len() - 2;
        let with_line = |at: usize, line: String| {
            let mut out: Vec<String> = lines[..lines.len() - 1]
                .iter()
                .map(|l| l.to_string())
                .collect();
            out.insert(at, line);
            out.push(footer.replace(
                &format!("\"end\":{count}"),
                &format!("\"end\":{}", count + 1),
            ));
            std::fs::write(&files.snapshot, out.join("\n") + "\n").unwrap();
            out
        };
        let twice = with_line(7000, lines[k].to_string());
        let err = recover(&files, &mut None).unwrap_err().to_string();
        let byte = |line: usize| twice[..line].iter().map(|l| l.len() + 1).sum::<usize>();
        assert!(
            err.contains(&format!(
                "damaged at byte {} (the contact {twice_id} is in it twice; the first is at byte {})",
                byte(7000),
                byte(k)
            )),
            "{err}"
        );

        // A removal in a snapshot (none is written, but it reads as one): applied after the
        // contacts before it are indexed.
        let gone = sim.contacts.values().nth(11).unwrap().clone();
        with_line(
            lines.len() - 1,
            format!("[\"contacts\",\"{}\",null]", gone.id),
        );
        let mut loaded = None;
        recover(&files, &mut loaded).unwrap();
        let loaded = loaded.unwrap();
        assert!(loaded.contacts.get(&gone.id).is_none());
        assert_eq!(loaded.contacts.len(), 7999);
        assert_eq!(loaded.find_email(&gone.email.unwrap().address), None);
        let other = sim.contacts.values().nth(12).unwrap();
        assert_eq!(
            loaded.find_email(&other.email.as_ref().unwrap().address),
            Some(other.id)
        );
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
