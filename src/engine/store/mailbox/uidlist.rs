//! `postern-uidlist`: the persistent UIDs of one folder, in the spirit of Dovecot's
//! `dovecot-uidlist`. The first line holds the UIDVALIDITY and the next UID to hand out; each
//! further line is `UID BASE`, where BASE is a Maildir file name without its `:2,FLAGS` info,
//! so a message keeps its UID when its flags change (the file is renamed).
//!
//! The file is only ever replaced whole: written to `postern-uidlist.tmp`, fsynced, renamed
//! over, and the directory fsynced; a reader never sees a torn file, and a torn tmp file (a
//! crash mid-write) is simply overwritten by the next writer. Whoever reads, assigns and writes
//! holds `postern-uidlist.lock` (an OS file lock, released with the process even after
//! `kill -9`), so two sessions, or a POP3 and an IMAP session, never hand out the same UID.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file name in the folder's directory.
pub const FILE: &str = "postern-uidlist";
/// Written first, then renamed to [`FILE`].
const TMP: &str = "postern-uidlist.tmp";
/// Held while the list is read, extended and written.
const LOCK: &str = "postern-uidlist.lock";
/// The first word of the file (and its format version).
const MAGIC: &str = "postern-uidlist 1";

/// One folder's UIDs as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// IMAP UIDVALIDITY: changes only when the UIDs are no longer valid (a lost list).
    pub uidvalidity: u32,
    /// The next UID to hand out; never goes down.
    pub uidnext: u32,
    /// UID of each base name.
    pub uids: HashMap<String, u32>,
}

impl UidList {
    /// A new, empty list with a fresh UIDVALIDITY (the time, as Dovecot does).
    pub fn fresh() -> UidList {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        UidList {
            uidvalidity: now.max(1),
            uidnext: 1,
            uids: HashMap::new(),
        }
    }

    /// Parses the file's text; `None` when it is not a whole, well-formed list.
    pub fn parse(text: &str) -> Option<UidList> {
        let mut lines = text.split('\n');
        let head = lines.next()?.strip_prefix(MAGIC)?;
        let mut words = head.split_whitespace();
        let uidvalidity = words.next()?.strip_prefix('V')?.parse().ok()?;
        let uidnext: u32 = words.next()?.strip_prefix('N')?.parse().ok()?;
        let mut uids = HashMap::new();
        let mut ended = false;
        for line in lines {
            if ended {
                return None;
            }
            if line.is_empty() {
                // Only the final newline may leave an empty piece.
                ended = true;
                continue;
            }
            let (uid, base) = line.split_once(' ')?;
            let uid: u32 = uid.parse().ok()?;
            if uid == 0 || uid >= uidnext {
                return None;
            }
            uids.insert(base.to_string(), uid);
        }
        // A list not ending in a newline was cut short.
        ended.then_some(UidList {
            uidvalidity,
            uidnext,
            uids,
        })
    }

    /// The file's text, entries in UID order.
    pub fn render(&self) -> String {
        let mut entries: Vec<_> = self.uids.iter().collect();
        entries.sort_by_key(|(_, uid)| **uid);
        let mut out = format!("{MAGIC} V{} N{}\n", self.uidvalidity, self.uidnext);
        for (base, uid) in entries {
            out.push_str(&format!("{uid} {base}\n"));
        }
        out
    }

    /// Hands out the next UID.
    pub fn assign(&mut self, base: String) -> u32 {
        let uid = self.uidnext;
        self.uidnext += 1;
        self.uids.insert(base, uid);
        uid
    }
}

/// The lock on one folder's list; the list may be read and written while it is held.
pub struct Locked {
    /// The folder's directory.
    dir: PathBuf,
    /// The open lock file; the OS lock lasts as long as it is open.
    _lock: File,
}

impl Locked {
    /// Waits for the folder's lock. Blocking: call it from a blocking thread.
    pub fn acquire(dir: &Path) -> io::Result<Locked> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK))?;
        lock.lock()?;
        Ok(Locked {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The stored list; a fresh one (a new UIDVALIDITY) when there is none or it is damaged.
    pub fn read(&self) -> io::Result<UidList> {
        match fs::read_to_string(self.dir.join(FILE)) {
            Ok(text) => Ok(UidList::parse(&text).unwrap_or_else(UidList::fresh)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UidList::fresh()),
            // Not UTF-8: damaged.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(UidList::fresh()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the stored list atomically (tmp, fsync, rename, fsync of the directory).
    pub fn write(&self, list: &UidList) -> io::Result<()> {
        let tmp = self.dir.join(TMP);
        let mut f = File::create(&tmp)?;
        f.write_all(list.render().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_cut_list() {
        let mut l = UidList::fresh();
        l.assign("1.M1P1Q0.h".into());
        l.assign("2.M1P1Q1.h".into());
        let text = l.render();
        assert_eq!(UidList::parse(&text), Some(l.clone()));
        assert_eq!(UidList::parse(&text[..text.len() - 1]), None);
        assert_eq!(UidList::parse(&text[..text.len() - 5]), None);
        assert_eq!(UidList::parse(""), None);
        assert_eq!(UidList::parse("postern-uidlist 1 V5 N2\n7 x\n"), None);
    }

    #[test]
    fn a_torn_tmp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let locked = Locked::acquire(dir.path()).unwrap();
        let mut l = locked.read().unwrap();
        l.assign("a".into());
        locked.write(&l).unwrap();
        // A writer killed half-way through its tmp file.
        fs::write(dir.path().join(TMP), "postern-uidlist 1 V9 N7\n3 b").unwrap();
        assert_eq!(locked.read().unwrap(), l);
        l.assign("b".into());
        locked.write(&l).unwrap();
        assert_eq!(locked.read().unwrap().uids["b"], 2);
    }
}
