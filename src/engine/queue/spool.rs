//! The spool: an append-only journal of segment files in `DATA/spool/`, written by one thread.
//!
//! A queued message is one `Put` record (its state and its content); state changes are `Update`
//! records and a finished message gets a `Remove`. Every record carries a length and a CRC, so
//! a record torn by a crash is recognised and ignored at replay. Appends from concurrent sessions
//! are batched: the writer takes everything waiting, writes it in one go, calls `fdatasync` once,
//! then answers every waiter (group commit). A session answers `250` only after its answer.
//! A failed write (full disk) is rolled back by truncating the segment and reported to every
//! waiter of that batch, who answer `452`.
//!
//! Segments are only ever appended to; after a restart a new one is started. The queue manager
//! trims segments that no live message needs any more, relocating the few long-lived messages
//! that pin an old segment.
//!
//! A batch of state changes alone (`append_nowait`: updates and removals, no one waiting) is
//! written without its own `fdatasync`: the next synced batch carries it to disk (a sync covers
//! the whole file), and a power cut before that can only make a delivered mail be sent again,
//! never lose one (a process crash loses nothing: the write is in the page cache).
//!
//! Readers keep the segments they read open ([`Spool::content_now`]): a small message is read
//! in one `pread` on the caller's thread, with no `open` and no hop to a blocking thread.

use super::Meta;
use super::text::Interner;
use crate::engine::store::body::Body;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A segment is closed and a new one started past this size.
const SEGMENT_SIZE: u64 = 32 * 1024 * 1024;
/// A message up to this size is read whole by [`Spool::content_now`].
pub const READ_NOW: u64 = 128 * 1024;
/// Segments kept open for reading at most.
const OPEN_SEGMENTS: usize = 16;
/// Largest batch written with one sync.
const MAX_BATCH: usize = 512;
/// Record kinds.
const PUT: u8 = 1;
const UPDATE: u8 = 2;
const REMOVE: u8 = 3;

/// Why the spool could not do something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    /// A write, sync or read failed (full disk, I/O error).
    #[error("spool I/O error: {0}")]
    Io(String),
    /// The writer thread has stopped.
    #[error("the spool writer has stopped")]
    Stopped,
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> Self {
        SpoolError::Io(e.to_string())
    }
}

/// Where a message's content is: segment number, offset and length inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Segment number.
    pub seg: u64,
    /// Offset of the content inside the segment file.
    pub offset: u64,
    /// Length of the content.
    pub len: u64,
}

/// What a `Put` record holds.
#[derive(Debug)]
pub enum Content {
    /// Octets in memory (notices, tests).
    Bytes(Arc<[u8]>),
    /// Trace fields, then a session's message body (in memory or spilled to a file); the body
    /// is copied into the segment in chunks, never loaded whole.
    Message {
        /// Put in front of the body.
        prefix: Vec<u8>,
        /// The message.
        body: Arc<Body>,
    },
    /// A message already in the spool, copied from where it is (relocation).
    Moved(Location),
}

impl Content {
    /// Octets in memory.
    pub fn bytes(data: impl Into<Vec<u8>>) -> Content {
        Content::Bytes(Arc::from(data.into()))
    }
}

/// One journal entry.
#[derive(Debug)]
pub enum Record {
    /// A new message, or a relocated one: full state and content.
    Put(Meta, Content),
    /// New state of a message already in the spool.
    Update(Meta),
    /// The message is finished or deleted.
    Remove(u64),
}

enum Request {
    Append(
        Record,
        Option<oneshot::Sender<Result<Option<Location>, SpoolError>>>,
    ),
    /// Delete every closed segment numbered below this.
    Trim(u64),
    /// Reply when everything before this has been written and synced.
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Spool {
    /// Requests to the writer.
    tx: std::sync::mpsc::Sender<Request>,
    /// `DATA/spool`.
    dir: Arc<PathBuf>,
    /// The segment being written, readable by anyone.
    active: Arc<std::sync::atomic::AtomicU64>,
    /// Segments open for reading, by number (at most [`OPEN_SEGMENTS`]).
    readers: Arc<std::sync::Mutex<std::collections::BTreeMap<u64, Arc<File>>>>,
}

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:010}.seg"))
}

/// The segments found at start, opened, and the number of the next one.
struct Segments {
    /// Segment number, path and open file, in order.
    files: Vec<(u64, PathBuf, File)>,
    /// The first number after them: the writer's new segment.
    next: u64,
}

/// Makes `dir` if needed and opens every segment in it.
fn list(dir: &Path) -> Result<Segments, SpoolError> {
    fs::create_dir_all(dir)?;
    let segs = segments(dir)?;
    let next = segs.last().map(|s| s + 1).unwrap_or(1);
    let files = segs
        .into_iter()
        .map(|seg| {
            let path = seg_path(dir, seg);
            Ok((seg, path.clone(), File::open(&path)?))
        })
        .collect::<io::Result<_>>()?;
    Ok(Segments { files, next })
}

/// Replays `files` in order: the live messages, in arrival order, and the damage skipped.
fn replay_all(files: Vec<(u64, PathBuf, File)>) -> Result<Replayed, SpoolError> {
    let mut live: std::collections::BTreeMap<u64, (Meta, Location)> = Default::default();
    let mut order: Vec<u64> = Vec::new();
    let mut damaged = Vec::new();
    // One buffer for every segment, as large as the largest: reading into memory already
    // mapped costs a copy, not a page fault and a cleared page per 4 KiB as a fresh buffer
    // per segment did, and one allocation leaves no growing buffers' holes in the heap.
    let largest = files
        .iter()
        .map(|(_, _, f)| f.metadata().map(|m| m.len()))
        .try_fold(0, |a, l| l.map(|l| a.max(l)))?;
    let mut buf = Vec::with_capacity(usize::try_from(largest).unwrap_or(0) + 1);
    // Equal strings of the messages (the same sender, client, error) are one copy.
    let mut texts = Interner::default();
    let mut state = ReplayState {
        live: &mut live,
        order: &mut order,
        texts: &mut texts,
    };
    for (seg, path, mut file) in files {
        buf.clear();
        io::Read::read_to_end(&mut file, &mut buf)?;
        damaged.extend(replay_segment(&buf, &path, seg, &mut state));
    }
    let messages = order
        .into_iter()
        .filter_map(|id| live.remove(&id))
        .collect();
    Ok(Replayed { messages, damaged })
}

/// Starts the writer thread on segment `next`.
fn start_writer(dir: &Path, next: u64) -> Result<Spool, SpoolError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let active = Arc::new(std::sync::atomic::AtomicU64::new(next));
    let mut writer = Writer::create(dir.to_path_buf(), next, active.clone())?;
    std::thread::Builder::new()
        .name("postern-spool".into())
        .spawn(move || writer.run(rx))
        .map_err(SpoolError::from)?;
    Ok(Spool {
        tx,
        dir: Arc::new(dir.to_path_buf()),
        active,
        readers: Arc::default(),
    })
}

/// Lists segment numbers in order.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// What replay found: the live messages with their content location.
pub struct Replayed {
    /// Live messages, in arrival order.
    pub messages: Vec<(Meta, Location)>,
    /// Stretches that held no valid record (skipped, their bytes kept aside).
    pub damaged: Vec<Damage>,
}

/// A replay running on its own thread (see [`Spool::open_in_background`]).
pub type PendingReplay = oneshot::Receiver<Result<Replayed, SpoolError>>;

impl Spool {
    /// Replays the journal in `dir` and starts the writer on a fresh segment.
    pub fn open(dir: &Path) -> Result<(Spool, Replayed), SpoolError> {
        let segs = list(dir)?;
        let replayed = replay_all(segs.files)?;
        Ok((start_writer(dir, segs.next)?, replayed))
    }

    /// Starts the writer on a fresh segment at once and replays the older segments on a
    /// thread of their own, so a server with a long queue listens without waiting for the
    /// replay. Only the segments that exist now are replayed (every record written from now
    /// on goes to the new segment); each is opened here, so a missing permission is an error
    /// now, not later. Nothing may trim the spool before the replay's result is taken in.
    pub fn open_in_background(dir: &Path) -> Result<(Spool, PendingReplay), SpoolError> {
        let segs = list(dir)?;
        let spool = start_writer(dir, segs.next)?;
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("postern-replay".into())
            .spawn(move || {
                let _ = tx.send(replay_all(segs.files));
            })
            .map_err(SpoolError::from)?;
        Ok((spool, rx))
    }

    /// Appends a record and waits until it is on disk. For `Put`, returns the content location.
    pub async fn append(&self, rec: Record) -> Result<Option<Location>, SpoolError> {
        self.send(rec).await
    }

    /// Hands a record to the writer now, so that it is written before anything sent after
    /// this call, and returns what waits for it to be on disk (for `Put`, its location).
    pub fn send(
        &self,
        rec: Record,
    ) -> impl Future<Output = Result<Option<Location>, SpoolError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(Request::Append(rec, Some(tx))).is_ok();
        async move {
            if !sent {
                return Err(SpoolError::Stopped);
            }
            rx.await.map_err(|_| SpoolError::Stopped)?
        }
    }

    /// Appends a record without waiting for the sync (state updates: losing one in a crash
    /// means a retry, never a lost message).
    pub fn append_nowait(&self, rec: Record) {
        let _ = self.tx.send(Request::Append(rec, None));
    }

    /// Waits until every record sent before has been written and synced.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Deletes closed segments numbered below `seg`.
    pub fn trim_below(&self, seg: u64) {
        self.readers
            .lock()
            .expect("spool readers")
            .retain(|&s, _| s >= seg);
        let _ = self.tx.send(Request::Trim(seg));
    }

    /// A small message's content (at most [`READ_NOW`] octets) read whole, at once, on the
    /// caller's thread: one `pread` of a segment kept open (it was just written, so it is in
    /// the page cache). `None` for a bigger one: read it with [`Spool::body`] on a blocking
    /// thread.
    pub fn content_now(&self, loc: Location) -> Option<Result<Body, SpoolError>> {
        if loc.len > READ_NOW {
            return None;
        }
        let read = || -> io::Result<Body> {
            let file = self.reader(loc.seg)?;
            let mut v = vec![0; loc.len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut v, loc.offset)?;
            Ok(Body::from_bytes(v))
        };
        Some(read().map_err(SpoolError::from))
    }

    /// Segment `seg` open for reading, opened now if it is not yet.
    fn reader(&self, seg: u64) -> io::Result<Arc<File>> {
        if let Some(f) = self.readers.lock().expect("spool readers").get(&seg) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(seg_path(&self.dir, seg))?);
        let mut readers = self.readers.lock().expect("spool readers");
        if readers.len() >= OPEN_SEGMENTS {
            // The oldest go first: new mail is read from the newest segments.
            readers.pop_first();
        }
        readers.insert(seg, f.clone());
        Ok(f)
    }

    /// The size of segment `seg` on disk (`None` if it is gone).
    pub fn segment_len(&self, seg: u64) -> Option<u64> {
        fs::metadata(seg_path(&self.dir, seg)).ok().map(|m| m.len())
    }

    /// The segment being written now.
    pub fn active_segment(&self) -> u64 {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reads a message's content (blocking; call from a blocking thread).
    pub fn read(&self, loc: Location) -> Result<Vec<u8>, SpoolError> {
        Ok(self.body(loc)?.to_vec()?)
    }

    /// A message's content as a body read from its segment in chunks (the file is opened
    /// here, so a segment trimmed later stays readable through it).
    pub fn body(&self, loc: Location) -> Result<Body, SpoolError> {
        body_at(&self.dir, loc).map_err(SpoolError::from)
    }
}

/// The longest record replay accepts: the largest message the configuration allows (see
/// `config::validate`, which bounds `smtp.max_message_size` by this) plus room for its state.
pub const MAX_RECORD: u64 = crate::engine::config::validate::MAX_MESSAGE_SIZE + 1024 * 1024;

/// A stretch of a segment that held no valid record: skipped at replay, its bytes kept aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Segment number.
    pub seg: u64,
    /// Where the stretch starts.
    pub offset: u64,
    /// How long it is.
    pub len: u64,
    /// Whether it runs to the end of the segment (a write torn by a crash: those mails were
    /// never acknowledged) rather than lying between valid records (damage on disk: mail
    /// after it was acknowledged and is kept).
    pub tail: bool,
    /// Where its bytes were saved, if they could be.
    pub saved: Option<PathBuf>,
}

/// One record parsed at `pos` of `buf`: its kind, meta bytes, content offset and length, and
/// the position after it; `None` when no valid record starts there.
fn record_at(buf: &[u8], pos: usize) -> Option<(u8, &[u8], u64, u64, usize)> {
    let head = buf.get(pos..pos + 9)?;
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let kind = head[8];
    if !matches!(kind, PUT | UPDATE | REMOVE) || !(4..=MAX_RECORD).contains(&len) {
        return None;
    }
    let end = pos.checked_add(9 + len as usize)?;
    let body = buf.get(pos + 9..end)?;
    let meta_len = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
    if 4 + meta_len > body.len() {
        return None;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(body);
    if h.finalize() != crc {
        return None;
    }
    let content_offset = (pos + 9 + 4 + meta_len) as u64;
    let content_len = (body.len() - 4 - meta_len) as u64;
    Some((
        kind,
        &body[4..4 + meta_len],
        content_offset,
        content_len,
        end,
    ))
}

/// Replays one segment into `live`. A stretch that holds no valid record (a torn tail, or
/// damage in the middle) is skipped: replay resynchronises on the next valid record, so mail
/// written after the damage is kept, and the skipped bytes are saved in `damaged/` beside the
/// segments. Returns the stretches skipped.
fn replay_segment(buf: &[u8], path: &Path, seg: u64, state: &mut ReplayState) -> Vec<Damage> {
    let mut damage = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let parsed = record_at(buf, pos).and_then(|(kind, meta, offset, len, end)| {
            apply(kind, meta, seg, offset, len, state).then_some(end)
        });
        if let Some(end) = parsed {
            pos = end;
            continue;
        }
        // Resynchronise: the next position where a whole valid record starts.
        let next = (pos + 1..buf.len())
            .find(|&p| record_at(buf, p).is_some())
            .unwrap_or(buf.len());
        let saved = save_damage(path, seg, pos, &buf[pos..next]);
        damage.push(Damage {
            seg,
            offset: pos as u64,
            len: (next - pos) as u64,
            tail: next == buf.len(),
            saved,
        });
        pos = next;
    }
    damage
}

/// What the replay has found so far.
struct ReplayState<'a> {
    /// The live messages by id.
    live: &'a mut std::collections::BTreeMap<u64, (Meta, Location)>,
    /// Their ids in arrival order (with ids removed since).
    order: &'a mut Vec<u64>,
    /// Shares their equal strings.
    texts: &'a mut Interner,
}

/// Applies one record to the replayed state; `false` when its meta does not decode.
fn apply(kind: u8, meta: &[u8], seg: u64, offset: u64, len: u64, state: &mut ReplayState) -> bool {
    let ReplayState { live, order, texts } = state;
    match kind {
        PUT | UPDATE => {
            let Ok(meta) = serde_json::from_slice::<Meta>(meta) else {
                return false;
            };
            let meta = texts.meta(meta);
            let id = meta.id;
            if kind == PUT {
                if !live.contains_key(&id) {
                    order.push(id);
                }
                live.insert(id, (meta, Location { seg, offset, len }));
            } else if let Some(entry) = live.get_mut(&id) {
                entry.0 = meta;
            }
            true
        }
        _ => match serde_json::from_slice::<u64>(meta) {
            Ok(id) => {
                live.remove(&id);
                true
            }
            Err(_) => false,
        },
    }
}

/// The content at `loc` of a segment in `dir`.
fn body_at(dir: &Path, loc: Location) -> io::Result<Body> {
    let f = File::open(seg_path(dir, loc.seg))?;
    Ok(Body::in_file(f, loc.offset, loc.len))
}

/// Keeps the bytes of a damaged stretch in `damaged/SEG-OFFSET.bin` beside the segments.
fn save_damage(segment: &Path, seg: u64, offset: usize, bytes: &[u8]) -> Option<PathBuf> {
    let dir = segment.parent()?.join("damaged");
    fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{seg:010}-{offset}.bin"));
    fs::write(&path, bytes).ok()?;
    Some(path)
}

/// A record's octets up to its content, given the content's length and CRC: length, CRC,
/// kind, meta length, meta.
fn record_head(kind: u8, meta: &[u8], content_len: u64, content: &crc32fast::Hasher) -> Vec<u8> {
    let body_len = 4 + meta.len() as u64 + content_len;
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&(meta.len() as u32).to_le_bytes());
    h.update(meta);
    h.combine(content);
    let mut out = Vec::with_capacity(13 + meta.len());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out
}

/// A record with content in memory, whole (tests).
#[cfg(test)]
fn encode(rec: &Record) -> Vec<u8> {
    let (kind, meta, data): (u8, Vec<u8>, &[u8]) = match rec {
        Record::Put(m, Content::Bytes(d)) => (PUT, serde_json::to_vec(m).unwrap(), d),
        Record::Update(m) => (UPDATE, serde_json::to_vec(m).unwrap(), &[]),
        Record::Remove(id) => (REMOVE, serde_json::to_vec(id).unwrap(), &[]),
        Record::Put(..) => unimplemented!("tests encode bytes"),
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let mut out = record_head(kind, &meta, data.len() as u64, &crc);
    out.extend_from_slice(data);
    out
}

/// Octets buffered before they are written out in the middle of a batch.
const BATCH_BUFFER: usize = 1024 * 1024;

/// A batch being written: records are encoded into `buf`, which is written out when it grows
/// large or a body has to be copied from its file.
struct BatchOut {
    /// Encoded and not yet written.
    buf: Vec<u8>,
    /// Written to the segment so far in this batch.
    written: u64,
}

impl BatchOut {
    /// Writes the buffer to `file`.
    fn drain(&mut self, file: &mut File) -> io::Result<()> {
        if !self.buf.is_empty() {
            file.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

struct Writer {
    dir: PathBuf,
    seg: u64,
    file: File,
    size: u64,
    active: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    fn create(
        dir: PathBuf,
        seg: u64,
        active: Arc<std::sync::atomic::AtomicU64>,
    ) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(seg_path(&dir, seg))?;
        File::open(&dir)?.sync_all()?;
        active.store(seg, std::sync::atomic::Ordering::Release);
        Ok(Writer {
            dir,
            seg,
            file,
            size: 0,
            active,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = Writer::create(self.dir.clone(), self.seg + 1, self.active.clone())?;
        *self = next;
        Ok(())
    }

    fn run(&mut self, rx: std::sync::mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
    }

    /// Encodes one record into the batch (copying a body from its file in chunks); for `Put`,
    /// returns where its content will be.
    fn append(
        &mut self,
        rec: &Record,
        start: u64,
        out: &mut BatchOut,
    ) -> io::Result<Option<Location>> {
        let json = |r: serde_json::Result<Vec<u8>>| r.map_err(io::Error::other);
        let (meta, content) = match rec {
            Record::Put(m, c) => (json(serde_json::to_vec(m))?, c),
            Record::Update(m) => {
                let head = record_head(
                    UPDATE,
                    &json(serde_json::to_vec(m))?,
                    0,
                    &crc32fast::Hasher::new(),
                );
                out.buf.extend_from_slice(&head);
                return Ok(None);
            }
            Record::Remove(id) => {
                let head = record_head(
                    REMOVE,
                    &json(serde_json::to_vec(id))?,
                    0,
                    &crc32fast::Hasher::new(),
                );
                out.buf.extend_from_slice(&head);
                return Ok(None);
            }
        };
        let moved;
        let (prefix, body): (&[u8], Option<&Body>) = match content {
            Content::Bytes(b) => (b, None),
            Content::Message { prefix, body } => (prefix, Some(body)),
            Content::Moved(loc) => {
                moved = body_at(&self.dir, *loc)?;
                (&[], Some(&moved))
            }
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(prefix);
        let mut len = prefix.len() as u64;
        if let Some(b) = body {
            crc.combine(&b.crc()?);
            len += b.len();
        }
        out.buf
            .extend_from_slice(&record_head(PUT, &meta, len, &crc));
        let offset = start + out.written + out.buf.len() as u64;
        out.buf.extend_from_slice(prefix);
        match body.map(|b| (b, b.as_bytes())) {
            None => {}
            Some((_, Some(bytes))) => out.buf.extend_from_slice(bytes),
            Some((b, None)) => {
                out.drain(&mut self.file)?;
                b.copy_to(&mut self.file)?;
                out.written += b.len();
            }
        }
        if out.buf.len() >= BATCH_BUFFER {
            out.drain(&mut self.file)?;
        }
        Ok(Some(Location {
            seg: self.seg,
            offset,
            len,
        }))
    }

    fn write_batch(&mut self, batch: Vec<Request>) {
        let mut out = BatchOut {
            buf: Vec::new(),
            written: 0,
        };
        let mut waiters = Vec::new();
        let mut flushes = Vec::new();
        let mut trims = Vec::new();
        let start = self.size;
        let mut result = Ok(());
        // Someone waits for this batch to be on disk (state changes alone do not).
        let mut awaited = false;
        for req in batch {
            match req {
                Request::Append(rec, done) => {
                    awaited |= done.is_some();
                    let loc = match &result {
                        Ok(()) => self.append(&rec, start, &mut out),
                        Err(_) => Ok(None),
                    };
                    match loc {
                        Ok(loc) => waiters.push((done, loc)),
                        Err(e) => {
                            result = Err(e);
                            waiters.push((done, None));
                        }
                    }
                }
                Request::Flush(tx) => {
                    awaited = true;
                    flushes.push(tx);
                }
                Request::Trim(below) => trims.push(below),
            }
        }
        let result = result
            .and_then(|()| out.drain(&mut self.file))
            .and_then(|()| {
                if out.written > 0 && awaited {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
        let outcome = match result {
            Ok(()) => {
                self.size += out.written;
                Ok(())
            }
            Err(e) => {
                // Roll back the partial write so the journal stays readable after it.
                let rolled_back = self
                    .file
                    .set_len(start)
                    .and_then(|_| self.file.seek(SeekFrom::End(0)));
                if rolled_back.is_err() {
                    let _ = self.rotate();
                }
                Err(SpoolError::from(e))
            }
        };
        for (done, loc) in waiters {
            if let Some(done) = done {
                let _ = done.send(outcome.clone().map(|_| loc));
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
        if self.size >= SEGMENT_SIZE {
            let _ = self.rotate();
        }
        for below in trims {
            if let Ok(segs) = segments(&self.dir) {
                for s in segs.into_iter().filter(|&s| s < below && s != self.seg) {
                    let _ = fs::remove_file(seg_path(&self.dir, s));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::test_meta as meta;

    #[tokio::test]
    async fn a_moved_message_and_a_spilled_body_read_back_whole_after_replay() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        // A body big enough to be on disk, behind a prefix of trace fields.
        let spill = crate::engine::store::body::Spill::with_budget(&dir.path().join("in"), 0);
        let mut body = spill.body();
        let text: Vec<u8> = (0..300_000u32)
            .map(|i| b"abcdefgh\r\n"[i as usize % 10])
            .collect();
        body.push(&text);
        body.finish().unwrap();
        assert!(body.is_spilled());
        let content = Content::Message {
            prefix: b"Received: x\r\n".to_vec(),
            body: Arc::new(body),
        };
        let first = spool
            .append(Record::Put(meta(1), content))
            .await
            .unwrap()
            .unwrap();
        let whole = [&b"Received: x\r\n"[..], &text].concat();
        assert_eq!(spool.read(first).unwrap(), whole);
        // Relocated: copied segment to segment, under a newer state.
        let mut newer = meta(1);
        newer.attempts = 3;
        let moved = spool
            .append(Record::Put(newer.clone(), Content::Moved(first)))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(moved.offset, first.offset);
        spool.flush().await;
        drop(spool);
        let (spool, replayed) = Spool::open(&spool_dir).unwrap();
        assert!(replayed.damaged.is_empty(), "{:?}", replayed.damaged);
        let [(m, loc)] = &replayed.messages[..] else {
            panic!("one message: {:?}", replayed.messages.len());
        };
        assert_eq!(m, &newer, "the relocated record is the one in force");
        assert_eq!(*loc, moved);
        assert_eq!(spool.read(*loc).unwrap(), whole);
    }

    #[tokio::test]
    async fn a_small_message_is_read_at_once_and_stays_readable_after_its_segment_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        let small = spool
            .append(Record::Put(meta(1), Content::bytes(b"small one".to_vec())))
            .await
            .unwrap()
            .unwrap();
        let big_text = vec![b'x'; READ_NOW as usize + 1];
        let big = spool
            .append(Record::Put(meta(2), Content::bytes(big_text.clone())))
            .await
            .unwrap()
            .unwrap();
        let body = spool.content_now(small).unwrap().unwrap();
        assert_eq!(
            body.as_bytes(),
            Some(&b"small one"[..]),
            "read whole, in memory"
        );
        assert!(
            spool.content_now(big).is_none(),
            "a big one is read in chunks later"
        );
        assert_eq!(spool.body(big).unwrap().to_vec().unwrap(), big_text);
        // The second read uses the segment kept open; it is let go when trimmed.
        assert!(spool.content_now(small).unwrap().is_ok());
        assert_eq!(spool.readers.lock().unwrap().len(), 1);
        spool.trim_below(small.seg + 1);
        assert!(spool.readers.lock().unwrap().is_empty());
        // A missing segment is an error, not a panic.
        let gone = Location {
            seg: small.seg + 7,
            ..small
        };
        assert!(spool.content_now(gone).unwrap().is_err());
    }

    #[tokio::test]
    async fn a_record_sent_is_ordered_before_anything_sent_after_it() {
        // What relocation relies on: the move is handed over before a later removal is, so a
        // message removed while its move is being written stays removed after replay.
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        let rec = Record::Put(meta(1), Content::bytes(b"hello".to_vec()));
        let first = spool.append(rec).await.unwrap().unwrap();
        let moving = spool.send(Record::Put(meta(1), Content::Moved(first)));
        spool.append_nowait(Record::Remove(1));
        assert!(moving.await.unwrap().is_some());
        spool.flush().await;
        drop(spool);
        let (_spool, replayed) = Spool::open(&spool_dir).unwrap();
        assert!(replayed.messages.is_empty(), "{:?}", replayed.messages);
    }

    #[tokio::test]
    async fn a_background_replay_sees_the_old_segments_while_new_records_go_to_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        let old = spool
            .append(Record::Put(meta(1), Content::bytes(b"old".to_vec())))
            .await
            .unwrap()
            .unwrap();
        spool.flush().await;
        drop(spool);
        let (spool, pending) = Spool::open_in_background(&spool_dir).unwrap();
        assert!(spool.active_segment() > old.seg);
        let new = spool
            .append(Record::Put(meta(2), Content::bytes(b"new".to_vec())))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(new.seg, spool.active_segment());
        let replayed = pending.await.unwrap().unwrap();
        let ids: Vec<u64> = replayed.messages.iter().map(|(m, _)| m.id).collect();
        assert_eq!(ids, [1], "only what was there at start");
        assert_eq!(spool.read(replayed.messages[0].1).unwrap(), b"old");
        drop(spool);
        let (_spool, all) = Spool::open(&spool_dir).unwrap();
        assert_eq!(all.messages.len(), 2);
    }

    #[tokio::test]
    async fn damage_in_the_middle_skips_only_the_damaged_record() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        let mut locs = Vec::new();
        for id in 1..=3 {
            let rec = Record::Put(meta(id), Content::bytes(b"hello".to_vec()));
            locs.push(spool.append(rec).await.unwrap().unwrap());
        }
        spool.flush().await;
        drop(spool);
        // Flip bytes inside the second message's content: its CRC no longer matches.
        let seg = seg_path(&spool_dir, locs[1].seg);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[locs[1].offset as usize] ^= 0xff;
        // And tear the tail: half of a fourth record.
        let torn = encode(&Record::Put(meta(4), Content::bytes(b"hello".to_vec())));
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        fs::write(&seg, &bytes).unwrap();

        let (_spool, replayed) = Spool::open(&spool_dir).unwrap();
        let ids: Vec<u64> = replayed.messages.iter().map(|(m, _)| m.id).collect();
        assert_eq!(
            ids,
            [1, 3],
            "the acknowledged mail after the damage is kept"
        );
        assert_eq!(replayed.damaged.len(), 2, "{:?}", replayed.damaged);
        let (middle, tail) = (&replayed.damaged[0], &replayed.damaged[1]);
        assert!(!middle.tail && tail.tail);
        let saved = fs::read(middle.saved.as_ref().expect("damaged bytes kept")).unwrap();
        assert_eq!(saved.len() as u64, middle.len);
        assert_eq!(
            &saved[..],
            &bytes[middle.offset as usize..(middle.offset + middle.len) as usize]
        );
        // The content of the kept mail still reads back.
        let (m3, loc3) = &replayed.messages[1];
        assert_eq!(m3.id, 3);
        assert_eq!(loc3.len, 5);
    }
}
