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

use super::Meta;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A segment is closed and a new one started past this size.
const SEGMENT_SIZE: u64 = 32 * 1024 * 1024;
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

/// One journal entry.
#[derive(Debug)]
pub enum Record {
    /// A new message, or a relocated one: full state and content.
    Put(Meta, Arc<[u8]>),
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
}

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:010}.seg"))
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
    /// Records that were torn or corrupt (and ignored).
    pub damaged: usize,
}

impl Spool {
    /// Replays the journal in `dir` and starts the writer on a fresh segment.
    pub fn open(dir: &Path) -> Result<(Spool, Replayed), SpoolError> {
        fs::create_dir_all(dir)?;
        let segs = segments(dir)?;
        let mut live: std::collections::BTreeMap<u64, (Meta, Location)> = Default::default();
        let mut order: Vec<u64> = Vec::new();
        let mut damaged = 0;
        for &seg in &segs {
            damaged += replay_segment(&seg_path(dir, seg), seg, &mut live, &mut order)?;
        }
        let messages = order
            .into_iter()
            .filter_map(|id| live.remove(&id))
            .collect();
        let next = segs.last().map(|s| s + 1).unwrap_or(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let active = Arc::new(std::sync::atomic::AtomicU64::new(next));
        let mut writer = Writer::create(dir.to_path_buf(), next, active.clone())?;
        std::thread::Builder::new()
            .name("postern-spool".into())
            .spawn(move || writer.run(rx))
            .map_err(SpoolError::from)?;
        Ok((
            Spool {
                tx,
                dir: Arc::new(dir.to_path_buf()),
                active,
            },
            Replayed { messages, damaged },
        ))
    }

    /// Appends a record and waits until it is on disk. For `Put`, returns the content location.
    pub async fn append(&self, rec: Record) -> Result<Option<Location>, SpoolError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Append(rec, Some(tx)))
            .map_err(|_| SpoolError::Stopped)?;
        rx.await.map_err(|_| SpoolError::Stopped)?
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
        let _ = self.tx.send(Request::Trim(seg));
    }

    /// The segment being written now.
    pub fn active_segment(&self) -> u64 {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reads a message's content (blocking; call from a blocking thread).
    pub fn read(&self, loc: Location) -> Result<Vec<u8>, SpoolError> {
        let f = File::open(seg_path(&self.dir, loc.seg))?;
        let mut buf = vec![0u8; loc.len as usize];
        f.read_exact_at(&mut buf, loc.offset)?;
        Ok(buf)
    }
}

/// Replays one segment into `live`; returns how many damaged records ended it.
fn replay_segment(
    path: &Path,
    seg: u64,
    live: &mut std::collections::BTreeMap<u64, (Meta, Location)>,
    order: &mut Vec<u64>,
) -> Result<usize, SpoolError> {
    let mut r = BufReader::new(File::open(path)?);
    let mut pos = 0u64;
    loop {
        let mut head = [0u8; 9];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let kind = head[8];
        let mut body = vec![0u8; len as usize];
        if r.read_exact(&mut body).is_err() {
            return Ok(1); // torn tail
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&[kind]);
        h.update(&body);
        if h.finalize() != crc || body.len() < 4 {
            return Ok(1);
        }
        let meta_len = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
        if 4 + meta_len > body.len() {
            return Ok(1);
        }
        let meta_bytes = &body[4..4 + meta_len];
        let content_offset = pos + 9 + 4 + meta_len as u64;
        let content_len = (body.len() - 4 - meta_len) as u64;
        match kind {
            PUT | UPDATE => {
                let Ok(meta) = serde_json::from_slice::<Meta>(meta_bytes) else {
                    return Ok(1);
                };
                let id = meta.id;
                if kind == PUT {
                    let loc = Location {
                        seg,
                        offset: content_offset,
                        len: content_len,
                    };
                    if !live.contains_key(&id) {
                        order.push(id);
                    }
                    live.insert(id, (meta, loc));
                } else if let Some(entry) = live.get_mut(&id) {
                    entry.0 = meta;
                }
            }
            REMOVE => {
                if let Ok(id) = serde_json::from_slice::<u64>(meta_bytes) {
                    live.remove(&id);
                }
            }
            _ => return Ok(1),
        }
        pos += 9 + len;
    }
}

/// Encodes a record; returns the bytes and, for `Put`, the content offset within them.
fn encode(rec: &Record) -> (Vec<u8>, Option<(u64, u64)>) {
    let (kind, meta, data): (u8, Vec<u8>, &[u8]) = match rec {
        Record::Put(m, d) => (PUT, serde_json::to_vec(m).expect("meta serialises"), d),
        Record::Update(m) => (UPDATE, serde_json::to_vec(m).expect("meta serialises"), &[]),
        Record::Remove(id) => (REMOVE, serde_json::to_vec(id).expect("id serialises"), &[]),
    };
    let body_len = 4 + meta.len() + data.len();
    let mut out = Vec::with_capacity(9 + body_len);
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&(meta.len() as u32).to_le_bytes());
    h.update(&meta);
    h.update(data);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    let content_at = out.len() as u64;
    out.extend_from_slice(data);
    let put = (kind == PUT).then_some((content_at, data.len() as u64));
    (out, put)
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

    fn write_batch(&mut self, batch: Vec<Request>) {
        let mut buf = Vec::new();
        let mut waiters = Vec::new();
        let mut flushes = Vec::new();
        let mut trims = Vec::new();
        let start = self.size;
        for req in batch {
            match req {
                Request::Append(rec, done) => {
                    let (bytes, put) = encode(&rec);
                    let base = start + buf.len() as u64;
                    let loc = put.map(|(off, len)| Location {
                        seg: self.seg,
                        offset: base + off,
                        len,
                    });
                    buf.extend_from_slice(&bytes);
                    waiters.push((done, loc));
                }
                Request::Flush(tx) => flushes.push(tx),
                Request::Trim(below) => trims.push(below),
            }
        }
        let result = if buf.is_empty() {
            Ok(())
        } else {
            self.file
                .write_all(&buf)
                .and_then(|_| self.file.sync_data())
        };
        let outcome = match result {
            Ok(()) => {
                self.size += buf.len() as u64;
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
