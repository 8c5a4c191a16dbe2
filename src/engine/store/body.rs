//! A message body of any size in bounded memory.
//!
//! A session receives DATA into a [`Body`] from the engine's [`Spill`]: small messages stay in
//! memory; past [`MEMORY_THRESHOLD`] octets (or sooner, when all sessions together hold
//! [`ENGINE_MEMORY_BUDGET`] octets of message data in memory) the body moves to an unnamed
//! file in `DATA/spool/incoming` (`O_TMPFILE`: nothing is left behind by a crash) and only a
//! write buffer stays in memory. So a session's memory does not grow with the message, and the
//! bytes held in memory across all sessions are capped. A body read back from the spool is a
//! stretch of a segment file, read in chunks, never whole.
//!
//! The body keeps the CRC-32 of its octets as they arrive, so the spool can write its record
//! header before copying the content. A write that fails (a full disk) is remembered: the body
//! keeps counting what arrives, and [`Body::finish`] reports the error so the session answers
//! `452`, never `250`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A body up to this size stays in memory.
pub const MEMORY_THRESHOLD: usize = 128 * 1024;
/// Message data held in memory by all bodies together; past it, new data goes to disk.
pub const ENGINE_MEMORY_BUDGET: usize = 32 * 1024 * 1024;
/// A spilled body's write buffer, and the size of the chunks a body is read back in.
pub const CHUNK: usize = 64 * 1024;

/// Where bodies spill, and the memory they hold together. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Spill {
    /// `DATA/spool/incoming`.
    dir: Arc<PathBuf>,
    /// Octets of message data held in memory by the bodies of this spill.
    in_memory: Arc<AtomicUsize>,
    /// The most they may hold.
    budget: usize,
}

impl Spill {
    /// Bodies spilling into `dir` (created, private, when first needed), within the engine's
    /// memory budget.
    pub fn new(dir: &Path) -> Spill {
        Spill::with_budget(dir, ENGINE_MEMORY_BUDGET)
    }

    /// As [`Spill::new`] with another memory budget (0: every body goes to disk at once).
    pub fn with_budget(dir: &Path, budget: usize) -> Spill {
        Spill {
            dir: Arc::new(dir.to_path_buf()),
            in_memory: Arc::new(AtomicUsize::new(0)),
            budget,
        }
    }

    /// A new, empty body.
    pub fn body(&self) -> Body {
        Body {
            data: Data::Memory(Vec::new()),
            buf: Vec::new(),
            len: 0,
            crc: crc32fast::Hasher::new(),
            spill: Some(self.clone()),
            counted: 0,
            error: None,
        }
    }

    /// Octets of message data held in memory now by all bodies of this spill.
    pub fn in_memory(&self) -> usize {
        self.in_memory.load(Ordering::Relaxed)
    }

    /// Whether `more` octets fit in the memory budget.
    fn fits(&self, more: usize) -> bool {
        self.in_memory() + more <= self.budget
    }

    /// A new unnamed file in the spill directory.
    fn file(&self) -> io::Result<File> {
        std::fs::create_dir_all(&*self.dir)?;
        tempfile::tempfile_in(&*self.dir)
    }
}

/// Where a body's octets are.
#[derive(Debug)]
enum Data {
    /// All of them, in memory.
    Memory(Vec<u8>),
    /// In a file from `offset` on (a spill file from 0; a spool segment at the record's
    /// content), with `Body::buf` holding the last octets not yet written.
    File { file: File, offset: u64 },
}

/// A message body: in memory while small, otherwise in a file (see the module header).
#[derive(Debug)]
pub struct Body {
    /// The octets.
    data: Data,
    /// Write buffer of a spilled body (empty once finished).
    buf: Vec<u8>,
    /// Octets pushed (or the stretch's length).
    len: u64,
    /// CRC-32 of the octets pushed.
    crc: crc32fast::Hasher,
    /// Where it spills and whose memory budget it counts against (none for a body made from
    /// bytes already in memory, or read from the spool).
    spill: Option<Spill>,
    /// Octets counted against the budget now.
    counted: usize,
    /// The first write that failed.
    error: Option<io::Error>,
}

impl Body {
    /// A body of bytes already in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Body {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes);
        Body {
            len: bytes.len() as u64,
            data: Data::Memory(bytes),
            buf: Vec::new(),
            crc,
            spill: None,
            counted: 0,
            error: None,
        }
    }

    /// The `len` octets at `offset` of `file` (a message in a spool segment). Its CRC is not
    /// known: [`Body::crc`] reads it.
    pub fn in_file(file: File, offset: u64, len: u64) -> Body {
        Body {
            data: Data::File { file, offset },
            buf: Vec::new(),
            len,
            crc: crc32fast::Hasher::new(),
            spill: None,
            counted: 0,
            error: None,
        }
    }

    /// Appends octets. Never fails: a write error is kept for [`Body::finish`], and the octets
    /// are still counted.
    pub fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.crc.update(bytes);
        if self.error.is_some() {
            return;
        }
        if let Data::Memory(mem) = &mut self.data {
            let room = match &self.spill {
                None => true,
                Some(s) => mem.len() + bytes.len() <= MEMORY_THRESHOLD && s.fits(bytes.len()),
            };
            if room {
                let need = mem.len() + bytes.len();
                if need > mem.capacity() {
                    // Grow as a Vec does, from 4 KiB (a message arrives a line at a time: no
                    // string of small steps), but never past the threshold.
                    let target = (mem.capacity() * 2)
                        .max(4096)
                        .clamp(need, MEMORY_THRESHOLD.max(need));
                    mem.reserve_exact(target - mem.len());
                }
                mem.extend_from_slice(bytes);
                self.recount();
                return;
            }
            if let Err(e) = self.spill_now() {
                self.fail(e);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK
            && let Err(e) = self.write_buf()
        {
            self.fail(e);
        }
    }

    /// Writes what is still buffered; the body is then complete. Returns the first write error.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.write_buf()
        {
            self.fail(e);
        }
        self.buf = Vec::new();
        self.recount();
        match &self.error {
            None => Ok(()),
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Drops the octets (a refused message): memory and file are given back at once.
    pub fn discard(&mut self) {
        self.data = Data::Memory(Vec::new());
        self.buf = Vec::new();
        self.recount();
    }

    /// Its length in octets.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether its octets are in a file rather than in memory.
    pub fn is_spilled(&self) -> bool {
        matches!(self.data, Data::File { .. })
    }

    /// The octets, when they are all in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Memory(m) => Some(m),
            Data::File { .. } => None,
        }
    }

    /// The CRC-32 of its octets, as a hasher to combine with what precedes them.
    pub fn crc(&self) -> io::Result<crc32fast::Hasher> {
        if self.spill.is_some() || matches!(self.data, Data::Memory(_)) {
            return Ok(self.crc.clone());
        }
        let mut h = crc32fast::Hasher::new();
        self.for_each_chunk(|c| {
            h.update(c);
            Ok(())
        })?;
        Ok(h)
    }

    /// Its first `max` octets at most (the header section, for the checks at end of data).
    pub fn head(&self, max: usize) -> io::Result<Cow<'_, [u8]>> {
        let n = (self.len as usize).min(max);
        match &self.data {
            Data::Memory(m) => Ok(Cow::Borrowed(&m[..n.min(m.len())])),
            Data::File { file, offset } => {
                let mut v = vec![0; n];
                file.read_exact_at(&mut v, *offset)?;
                Ok(Cow::Owned(v))
            }
        }
    }

    /// Calls `f` with its octets in order, in chunks of at most [`CHUNK`] (blocking when the
    /// body is in a file).
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match &self.data {
            Data::Memory(m) => m.chunks(CHUNK).try_for_each(f),
            Data::File { file, offset } => {
                let mut chunk = vec![0; CHUNK.min(self.len as usize)];
                let mut at = 0u64;
                while at < self.len {
                    let n = CHUNK.min((self.len - at) as usize);
                    file.read_exact_at(&mut chunk[..n], offset + at)?;
                    f(&chunk[..n])?;
                    at += n as u64;
                }
                Ok(())
            }
        }
    }

    /// Replaces `buf`'s contents with up to `max` octets from position `at` (blocking when
    /// the body is in a file); `buf` is left empty at the end.
    pub fn read_at(&self, at: u64, max: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        let n = max.min(self.len.saturating_sub(at) as usize);
        match &self.data {
            Data::Memory(m) => {
                let from = (at as usize).min(m.len());
                buf.extend_from_slice(&m[from..(from + n).min(m.len())]);
            }
            Data::File { file, offset } => {
                buf.resize(n, 0);
                file.read_exact_at(buf, offset + at)?;
            }
        }
        Ok(())
    }

    /// Copies its octets into `into` (an empty body), leaving out the octets of `cut`
    /// (sorted, disjoint ranges), in chunks; `into` is returned finished.
    pub fn copy_without(&self, cut: &[std::ops::Range<u64>], mut into: Body) -> io::Result<Body> {
        let mut at = 0u64;
        self.for_each_chunk(|chunk| {
            let (start, end) = (at, at + chunk.len() as u64);
            let mut from = start;
            for r in cut.iter().filter(|r| r.start < end && r.end > start) {
                if r.start > from {
                    into.push(&chunk[(from - start) as usize..(r.start - start) as usize]);
                }
                from = from.max(r.end.min(end));
            }
            if from < end {
                into.push(&chunk[(from - start) as usize..]);
            }
            at = end;
            Ok(())
        })?;
        into.finish()?;
        Ok(into)
    }

    /// Copies its octets to `w` (blocking).
    pub fn copy_to(&self, w: &mut impl Write) -> io::Result<()> {
        self.for_each_chunk(|c| w.write_all(c))
    }

    /// Its octets in memory (tests, and small bodies).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.len as usize);
        self.copy_to(&mut v)?;
        Ok(v)
    }

    /// Moves the octets held in memory to a new spill file.
    fn spill_now(&mut self) -> io::Result<()> {
        let spill = self.spill.as_ref().expect("only a spilling body spills");
        let mut file = spill.file()?;
        if let Data::Memory(mem) = &self.data {
            file.write_all(mem)?;
        }
        self.data = Data::File { file, offset: 0 };
        self.buf = Vec::with_capacity(CHUNK);
        self.recount();
        Ok(())
    }

    /// Writes the buffer to the spill file.
    fn write_buf(&mut self) -> io::Result<()> {
        if let Data::File { file, .. } = &mut self.data
            && !self.buf.is_empty()
        {
            file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Remembers the first write error and lets go of the data.
    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
        self.discard();
    }

    /// Brings the budget's count in line with the memory held now.
    fn recount(&mut self) {
        let Some(spill) = &self.spill else { return };
        let now = self.buf.capacity()
            + match &self.data {
                Data::Memory(m) => m.capacity(),
                Data::File { .. } => 0,
            };
        if now == self.counted {
            // Nothing to tell the shared count (most pushes): no atomic write per line.
            return;
        }
        if now > self.counted {
            spill
                .in_memory
                .fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            spill
                .in_memory
                .fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(spill) = &self.spill {
            spill.in_memory.fetch_sub(self.counted, Ordering::Relaxed);
        }
    }
}

/// The header section at the start of `head`: through its blank line (CRLF CRLF, or LF LF in
/// a message with bare line ends), or all of `head` when the blank line is not within it.
pub fn header_section(head: &[u8]) -> &[u8] {
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(head.len());
    &head[..end]
}

/// The last field named `name` (ASCII, any case) in a header section, with its continuation
/// lines, as it stands: `Name: value CRLF [WSP more CRLF]...`. A parser then reads that one
/// field instead of the whole section (RFC 5322 2.2: a field starts at a line that does not
/// begin with a space or a tab; `Name :` of the obsolete syntax is found too).
pub fn last_field<'a>(section: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut found = None;
    let mut at = 0;
    while at < section.len() {
        let line_end = section[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(section.len(), |i| at + i + 1);
        let line = &section[at..line_end];
        let named = line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && line[name.len()..]
                .iter()
                .find(|&&b| b != b' ' && b != b'\t')
                == Some(&b':');
        if named {
            // The field runs on over the lines that start with a space or a tab.
            let mut end = line_end;
            while end < section.len() && matches!(section[end], b' ' | b'\t') {
                end = section[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(section.len(), |i| end + i + 1);
            }
            found = Some(&section[at..end]);
            at = end;
        } else {
            at = line_end;
        }
    }
    found
}

/// [`last_field`] as a header section of its own (ending in its blank line), for a parser
/// that reads sections.
pub fn field_alone(section: &[u8], name: &str) -> Option<Vec<u8>> {
    let field = last_field(section, name)?;
    let mut one = Vec::with_capacity(field.len() + 4);
    one.extend_from_slice(field);
    if !one.ends_with(b"\n") {
        one.extend_from_slice(b"\r\n");
    }
    one.extend_from_slice(b"\r\n");
    Some(one)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_field_of_a_name_with_its_folded_lines() {
        let h =
            b"Subject: first\r\nX-Subject: no\r\nsubject : one\r\n two\r\n\tthree\r\nTo: b\r\n\r\n";
        assert_eq!(
            last_field(h, "Subject"),
            Some(&b"subject : one\r\n two\r\n\tthree\r\n"[..])
        );
        assert_eq!(last_field(h, "to"), Some(&b"To: b\r\n"[..]));
        assert_eq!(last_field(h, "From"), None);
        assert_eq!(last_field(b"Subject", "Subject"), None);
        assert_eq!(last_field(b"Subject:x", "Subject"), Some(&b"Subject:x"[..]));
    }

    fn crc_of(bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }

    #[test]
    fn ranges_are_cut_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::with_budget(dir.path(), 0);
        let mut b = spill.body();
        let data: Vec<u8> = (0..(3 * CHUNK as u32 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        b.push(&data);
        b.finish().unwrap();
        let cut = [
            3..10u64,
            CHUNK as u64 - 5..CHUNK as u64 + 5,
            2 * CHUNK as u64..2 * CHUNK as u64 + 1,
        ];
        let out = b
            .copy_without(&cut, spill.body())
            .unwrap()
            .to_vec()
            .unwrap();
        let mut want = data.clone();
        for r in cut.iter().rev() {
            want.drain(r.start as usize..r.end as usize);
        }
        assert_eq!(out, want);
    }

    #[test]
    fn a_small_body_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path());
        let mut b = spill.body();
        b.push(b"Subject: x\r\n\r\n");
        b.push(b"hi\r\n");
        b.finish().unwrap();
        assert!(!b.is_spilled());
        assert_eq!(b.to_vec().unwrap(), b"Subject: x\r\n\r\nhi\r\n");
        assert_eq!(
            b.crc().unwrap().finalize(),
            crc_of(b"Subject: x\r\n\r\nhi\r\n")
        );
        assert!(spill.in_memory() > 0);
        drop(b);
        assert_eq!(spill.in_memory(), 0, "memory is given back");
    }

    #[test]
    fn a_big_body_goes_to_disk_and_memory_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(&dir.path().join("incoming"));
        let mut b = spill.body();
        let line = [b"x".repeat(998), b"\r\n".to_vec()].concat();
        let mut all = Vec::new();
        for _ in 0..2000 {
            b.push(&line);
            all.extend_from_slice(&line);
            assert!(spill.in_memory() <= MEMORY_THRESHOLD + CHUNK + line.len());
        }
        b.finish().unwrap();
        assert!(b.is_spilled());
        assert!(spill.in_memory() <= CHUNK, "{}", spill.in_memory());
        assert_eq!(b.len(), all.len() as u64);
        assert_eq!(b.to_vec().unwrap(), all);
        assert_eq!(b.crc().unwrap().finalize(), crc_of(&all));
        assert_eq!(&b.head(10).unwrap()[..], &all[..10]);
        // The spill file has no name: nothing is left in the directory.
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn the_engine_budget_sends_bodies_to_disk_sooner() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::with_budget(dir.path(), 1000);
        let mut a = spill.body();
        a.push(&[b'a'; 800]);
        assert!(!a.is_spilled());
        let mut b = spill.body();
        b.push(&[b'b'; 800]);
        assert!(b.is_spilled(), "no room left in memory");
        b.finish().unwrap();
        assert_eq!(b.to_vec().unwrap(), vec![b'b'; 800]);
    }

    #[test]
    fn a_failed_write_is_reported_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the spill directory should be: the spill cannot be created.
        let blocker = dir.path().join("incoming");
        std::fs::write(&blocker, b"").unwrap();
        let spill = Spill::with_budget(&blocker, 0);
        let mut b = spill.body();
        b.push(b"hello\r\n");
        b.push(b"more\r\n");
        assert_eq!(b.len(), 13);
        assert!(b.finish().is_err());
        assert_eq!(spill.in_memory(), 0);
    }

    #[test]
    fn a_stretch_of_a_file_reads_back() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"headerCONTENTtrailer").unwrap();
        let b = Body::in_file(f, 6, 7);
        assert_eq!(b.to_vec().unwrap(), b"CONTENT");
        assert_eq!(b.crc().unwrap().finalize(), crc_of(b"CONTENT"));
        assert_eq!(&b.head(100).unwrap()[..], b"CONTENT");
    }
}
