//! The last scan of each recently used folder, kept in memory so that a SELECT, a STATUS or a
//! POP3 login on a folder nobody changed costs three `stat`s instead of a listing of every
//! file (Dovecot skips its Maildir listing the same way, by the directories' times).
//!
//! A scan is reused only while `new/`, `cur/` and the UID list file show the times they had
//! before that scan listed them: every delivery, rename, unlink and UID assignment changes one
//! of them. A time within [`SETTLE`] of now is not trusted (a change in the same clock tick
//! as the listing would leave it unchanged), so a folder changed in the last moments is always
//! listed. A scan that wrote the UID list is not kept (its own write moved the time); the next
//! one is. At most [`MAX_FOLDERS`] folders are kept.

use super::folder::Scan;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

/// How old a directory's time must be before a scan keyed by it is kept or reused.
const SETTLE: Duration = Duration::from_secs(2);

/// Folders kept (the oldest dropped first).
const MAX_FOLDERS: usize = 64;

/// What a folder's files looked like, by their times: `new/`, `cur/` and the UID list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps([Option<(SystemTime, u64)>; 3]);

/// Folder directory -> (its stamps, the scan, when it was last used).
type Cache = HashMap<PathBuf, (Stamps, Scan, u64)>;

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);
static USE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The folder's stamps now, or `None` when one of its times is too recent to be trusted.
pub fn stamps(dir: &Path) -> io::Result<Option<Stamps>> {
    let now = SystemTime::now();
    let mut out = [None; 3];
    let paths = [
        dir.join("new"),
        dir.join("cur"),
        dir.join(super::uidlist::FILE),
    ];
    for (slot, p) in out.iter_mut().zip(paths) {
        match fs::metadata(&p) {
            Ok(m) => {
                let t = m.modified()?;
                if now.duration_since(t).map_or(true, |age| age < SETTLE) {
                    return Ok(None);
                }
                *slot = Some((t, m.len()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(Stamps(out)))
}

/// The scan kept for `dir` if it was made when the folder looked as `now` says.
pub fn get(dir: &Path, now: &Stamps) -> Option<Scan> {
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let (st, scan, used) = c.get_mut(dir)?;
    if st != now {
        return None;
    }
    *used = USE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(scan.clone())
}

/// Keeps `scan` of `dir`, made after the folder showed `before`.
pub fn put(dir: &Path, before: Stamps, scan: &Scan) {
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= MAX_FOLDERS && !c.contains_key(dir) {
        let oldest = c.iter().min_by_key(|(_, v)| v.2).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            c.remove(&k);
        }
    }
    let used = USE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    c.insert(dir.to_path_buf(), (before, scan.clone(), used));
}

/// Forgets `dir` (its scan can no longer be trusted, or it is gone).
pub fn forget(dir: &Path) {
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
}

#[cfg(test)]
mod tests {
    use super::super::folder::Folder;
    use super::*;
    use std::fs::File;

    /// Sets the times of `new/`, `cur/` and the UID list to `t`.
    fn age(dir: &Path, t: SystemTime) {
        for p in ["new", "cur", super::super::uidlist::FILE] {
            File::open(dir.join(p)).unwrap().set_modified(t).unwrap();
        }
    }

    #[test]
    fn an_unchanged_folder_is_not_listed_again_and_any_change_is_seen() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        let past = SystemTime::now() - Duration::from_secs(10);
        fs::write(d.path().join("new/100.M1P1Q1.h"), "a\r\n").unwrap();
        assert_eq!(f.scan().unwrap().messages.len(), 1, "wrote the UID list");
        assert!(
            stamps(d.path()).unwrap().is_none(),
            "just changed: not trusted"
        );
        age(d.path(), past);
        assert_eq!(f.scan().unwrap().messages.len(), 1, "listed, and kept");
        // A file slipped in without moving the times (as in the listing's own clock tick):
        // the kept scan answers, so it was not listed.
        fs::write(d.path().join("new/101.M2P1Q2.h"), "b\r\n").unwrap();
        age(d.path(), past);
        assert_eq!(f.scan().unwrap().messages.len(), 1, "from memory");
        // A real change moves new/'s time: listed again.
        fs::write(d.path().join("new/102.M3P1Q3.h"), "c\r\n").unwrap();
        let s = f.scan().unwrap();
        assert_eq!(
            s.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // A rename in cur/ (a flag) is a change too.
        age(d.path(), past);
        assert_eq!(f.scan().unwrap().messages.len(), 3);
        let mut m = f.scan().unwrap().messages.remove(0);
        assert!(f.set_flags(&mut m, "S").unwrap());
        assert_eq!(f.scan().unwrap().messages[0].flags(), "S");
        forget(d.path());
    }
}
