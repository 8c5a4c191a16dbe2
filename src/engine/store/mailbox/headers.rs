//! The header blocks of messages IMAP has read lately, kept in memory, so that a client's
//! second look at a folder (`FETCH 1:* (... BODY.PEEK[HEADER.FIELDS (...)])`, ENVELOPE, a
//! header SEARCH) does not open every file again. Dovecot keeps the same fields in its
//! `dovecot.index.cache`; Postern keeps them in memory, bounded, for the server's lifetime.
//!
//! A Maildir file's content never changes (a flag change renames it, an expunge unlinks it),
//! so a header is keyed by the folder, the message's base name and its size, and is never
//! stale. At most [`MAX_BYTES`] of headers are kept, each at most [`MAX_ONE`]; past the total
//! the folder used longest ago is dropped whole. Entries of expunged messages go with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// Header octets kept in all.
const MAX_BYTES: usize = 64 << 20;

/// A header longer than this is not kept (read from the file each time).
const MAX_ONE: usize = 64 << 10;

/// One folder's headers: base name -> (size, header block).
#[derive(Default)]
struct FolderHeaders {
    map: HashMap<Box<str>, (u64, Arc<[u8]>)>,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Cache {
    folders: HashMap<PathBuf, FolderHeaders>,
    bytes: usize,
    tick: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kept header of message `base` (of `size` octets) in folder `dir`.
pub fn get(dir: &Path, base: &str, size: u64) -> Option<Arc<[u8]>> {
    let mut c = cache();
    c.tick += 1;
    let tick = c.tick;
    let f = c.folders.get_mut(dir)?;
    f.used = tick;
    f.map
        .get(base)
        .filter(|(s, _)| *s == size)
        .map(|(_, h)| h.clone())
}

/// Keeps the header of message `base` (of `size` octets) in folder `dir`.
pub fn put(dir: &Path, base: &str, size: u64, header: &[u8]) {
    if header.len() > MAX_ONE {
        return;
    }
    let mut c = cache();
    c.tick += 1;
    let tick = c.tick;
    while c.bytes + header.len() > MAX_BYTES {
        let oldest = c
            .folders
            .iter()
            .min_by_key(|(_, f)| f.used)
            .map(|(k, _)| k.clone());
        let Some(k) = oldest else { break };
        if let Some(f) = c.folders.remove(&k) {
            c.bytes -= f.bytes;
        }
    }
    let f = c.folders.entry(dir.to_path_buf()).or_default();
    f.used = tick;
    let old = f
        .map
        .insert(Box::from(base), (size, Arc::from(header)))
        .map_or(0, |(_, h)| h.len());
    f.bytes = f.bytes + header.len() - old;
    c.bytes = c.bytes + header.len() - old;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_kept_by_folder_name_and_size() {
        let dir = Path::new("/nonexistent/headers-test/.Sent");
        assert!(get(dir, "1.M1.h", 10).is_none());
        put(dir, "1.M1.h", 10, b"Subject: a\r\n\r\n");
        assert_eq!(
            get(dir, "1.M1.h", 10).as_deref(),
            Some(&b"Subject: a\r\n\r\n"[..])
        );
        assert!(
            get(dir, "1.M1.h", 11).is_none(),
            "another size: another file"
        );
        assert!(get(Path::new("/nonexistent/other"), "1.M1.h", 10).is_none());
        put(dir, "2.M2.h", 10, &vec![b'x'; MAX_ONE + 1]);
        assert!(get(dir, "2.M2.h", 10).is_none(), "too long to keep");
    }
}
