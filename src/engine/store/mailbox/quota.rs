//! Max Account Size accounting (storage only: the limit comes from the configuration, the
//! decision to refuse from the SMTP session and the queue): what an account's folders hold,
//! kept cheap with a Maildir++ `maildirsize` file as Courier and Dovecot keep it.
//!
//! `DATA/mailboxes/DOMAIN/USER/maildirsize` is a header line with the limit (`<octets>S`),
//! then lines of `<octets> <messages>` whose sums are the usage: the first written by a scan,
//! the others appended (one `O_APPEND` write each) as messages come and go. It is rebuilt by a
//! scan of every folder's `new/` and `cur/` (never `tmp/`) when it is missing, unreadable,
//! longer than 5,120 octets (the Maildir++ rule), written for another limit, or older than a
//! folder's `new/` or `cur/` directory: a change Postern did not record (a client editing the
//! Maildir directly, a folder renamed) moves a directory's modification time past the file's,
//! while every change Postern makes is followed by its record, which touches the file last.
//!
//! The figures are exact after a scan; between scans two writers racing a rebuild can make
//! them off by a message until the next rebuild (Dovecot's Maildir++ quota has the same
//! window). A scan of a 10,000-message account takes tens of milliseconds (README has the
//! figure); reading the file takes a few `stat`s and one small read.
//!
//! For readers (IMAP, POP3): [`Quota::usage`] and [`Quota::would_exceed`] before APPEND or
//! COPY (IMAP's `[OVERQUOTA]`, RFC 9208); after a message is added by any other path than
//! [`super::super::maildir::deliver`] (which records its own), [`Quota::record_add`] with the
//! file's size; [`super::Folder::delete`] records its own removal (IMAP EXPUNGE, POP3 DELE at
//! UPDATE); a message removed otherwise needs [`Quota::record_remove`], and a folder deleted
//! or renamed away [`Quota::forget`] (the next call scans). [`super::Folder::set_flags`] and
//! [`super::Folder::transfer`] record their own (a flag rename or a MOVE touches the file so
//! it stays newer than the folders; a COPY adds the copy's size). The limit is
//! `config::Account::max_size`.

use super::Account;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The file's name in the account directory (Maildir++).
pub const FILE: &str = "maildirsize";

/// Past this length the file is rebuilt by a scan (Maildir++: 5,120 octets).
const MAX_LEN: u64 = 5120;

/// What an account's folders hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Octets of every message file in `new/` and `cur/` of every folder.
    pub octets: u64,
    /// Messages.
    pub messages: u64,
}

/// One account's usage against its Max Account Size.
#[derive(Debug, Clone)]
pub struct Quota {
    /// The account directory (INBOX).
    dir: PathBuf,
    /// Max Account Size in octets; 0 = unlimited.
    limit: u64,
}

impl Account {
    /// This account's quota accounting under `limit` octets (0 = unlimited).
    pub fn quota(&self, limit: u64) -> Quota {
        Quota::new(self.dir(), limit)
    }
}

impl Quota {
    /// The accounting of the account directory `dir` (`DATA/mailboxes/DOMAIN/USER`).
    pub fn new(dir: &Path, limit: u64) -> Quota {
        Quota {
            dir: dir.to_path_buf(),
            limit,
        }
    }

    /// The limit (0 = unlimited).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// What the folders hold: from `maildirsize`, rebuilt first by a scan when it is missing,
    /// too long, for another limit or older than a folder. An account with no directory yet
    /// holds nothing. Blocking (a few `stat`s; a scan when rebuilt).
    pub fn usage(&self) -> io::Result<Usage> {
        if !self.dir.is_dir() {
            return Ok(Usage::default());
        }
        if let Some(u) = self.read_file()? {
            return Ok(u);
        }
        let u = scan(&self.dir)?;
        self.write_file(u)?;
        Ok(u)
    }

    /// Whether `octets` more would take the account past its limit (never when unlimited).
    pub fn would_exceed(&self, octets: u64) -> io::Result<bool> {
        if self.limit == 0 {
            return Ok(false);
        }
        Ok(self.usage()?.octets.saturating_add(octets) > self.limit)
    }

    /// Whether the account is at or over its limit already (never when unlimited).
    pub fn is_full(&self) -> io::Result<bool> {
        if self.limit == 0 {
            return Ok(false);
        }
        Ok(self.usage()?.octets >= self.limit)
    }

    /// Records a message of `octets` added to any folder.
    pub fn record_add(&self, octets: u64) -> io::Result<()> {
        record(&self.dir, octets as i128, 1)
    }

    /// Records a message of `octets` removed from any folder.
    pub fn record_remove(&self, octets: u64) -> io::Result<()> {
        record(&self.dir, -(octets as i128), -1)
    }

    /// Drops `maildirsize` so the next [`Quota::usage`] scans (after a folder is deleted).
    pub fn forget(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join(FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The usage the file says, or `None` when it must be rebuilt.
    fn read_file(&self) -> io::Result<Option<Usage>> {
        let path = self.dir.join(FILE);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.len() > MAX_LEN || newer_folder(&self.dir, meta.modified()?)? {
            return Ok(None);
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(parse(&text, self.limit))
    }

    /// Replaces the file with a header and `u` (tmp + rename, so a reader sees one or the
    /// other). Not synced: it is a cache a scan rebuilds.
    fn write_file(&self, u: Usage) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp_dir = self.dir.join("tmp");
        fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(format!(
            "{FILE}.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let text = format!("{}S\n{} {}\n", self.limit, u.octets, u.messages);
        let r = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, self.dir.join(FILE)));
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }
}

/// Appends one `<octets> <messages>` line to the account's `maildirsize`, if it has one (when
/// it does not, the next scan counts the change anyway).
pub(crate) fn record(dir: &Path, octets: i128, messages: i64) -> io::Result<()> {
    let mut f = match OpenOptions::new().append(true).open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    f.write_all(format!("{octets} {messages}\n").as_bytes())
}

/// Marks the account's `maildirsize` as current after a change that moves no octets (a flag
/// rename, a MOVE between folders): its modification time is set to now, so the folder
/// directories the change touched are not newer than it and the next [`Quota::usage`] reads
/// the file instead of scanning every folder. No file, nothing to do.
pub(crate) fn touch(dir: &Path) -> io::Result<()> {
    match OpenOptions::new().append(true).open(dir.join(FILE)) {
        Ok(f) => f.set_modified(SystemTime::now()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The sums of a `maildirsize` text written for `limit`; `None` when it is not one.
fn parse(text: &str, limit: u64) -> Option<Usage> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let octets_limit = header
        .split(',')
        .find_map(|p| p.trim().strip_suffix('S'))?
        .parse::<u64>()
        .ok()?;
    if octets_limit != limit || !text.ends_with('\n') {
        return None;
    }
    let (mut octets, mut messages) = (0i128, 0i128);
    for line in lines {
        let mut it = line.split_ascii_whitespace();
        octets += it.next()?.parse::<i128>().ok()?;
        messages += it.next()?.parse::<i128>().ok()?;
    }
    Some(Usage {
        octets: u64::try_from(octets).ok()?,
        messages: u64::try_from(messages).ok()?,
    })
}

/// The account directory and its `.Folder` subdirectories.
fn folders(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name != "." && name != ".." && e.file_type()?.is_dir() {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// Whether some folder's `new/` or `cur/` changed after `than`.
fn newer_folder(dir: &Path, than: SystemTime) -> io::Result<bool> {
    for f in folders(dir)? {
        for sub in ["new", "cur"] {
            match fs::metadata(f.join(sub)) {
                Ok(m) if m.modified()? > than => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(false)
}

/// Counts every message file in `new/` and `cur/` of every folder: the size from a
/// `,S=<octets>` in its name when there is one (Dovecot's names), else from `stat`.
pub fn scan(dir: &Path) -> io::Result<Usage> {
    let mut u = Usage::default();
    for f in folders(dir)? {
        for sub in ["new", "cur"] {
            let entries = match fs::read_dir(f.join(sub)) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    continue;
                }
                let size = match size_in_name(&name) {
                    Some(s) => s,
                    None => match e.metadata() {
                        Ok(m) if m.is_file() => m.len(),
                        Ok(_) => continue,
                        // Gone since the listing (expunged, or moved to cur/ and counted there).
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    },
                };
                u.octets += size;
                u.messages += 1;
            }
        }
    }
    Ok(u)
}

/// The `S=` size of a Maildir file name (`1700000000.M1P2.host,S=1234:2,S`).
fn size_in_name(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .skip(1)
        .find_map(|p| p.strip_prefix("S="))?
        .parse()
        .ok()
}

/// Keeps the file system's modification times apart in tests (coarse clocks).
#[cfg(test)]
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(20));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> (tempfile::TempDir, Account) {
        let d = tempfile::tempdir().unwrap();
        let a = Account::new(d.path(), "alice@example.test").unwrap();
        a.prepare().unwrap();
        (d, a)
    }

    fn put(dir: &Path, name: &str, octets: usize) {
        fs::write(dir.join(name), vec![b'x'; octets]).unwrap();
    }

    #[test]
    fn usage_counts_every_folder_new_and_cur_but_not_tmp() {
        let (_d, a) = account();
        put(&a.dir().join("new"), "1.M1.h", 100);
        put(&a.dir().join("cur"), "2.M2.h:2,S", 200);
        put(&a.dir().join("tmp"), "3.M3.h", 10_000);
        put(&a.folder("Sent").dir().join("cur"), "4.M4.h:2,S", 300);
        put(&a.folder("Archive").dir().join("new"), "5.M5.h,S=450", 1);
        let q = a.quota(1000);
        assert_eq!(
            q.usage().unwrap(),
            Usage {
                octets: 1050,
                messages: 4
            }
        );
        assert!(a.dir().join(FILE).is_file());
        assert!(q.is_full().unwrap());
        assert!(!a.quota(0).would_exceed(u64::MAX).unwrap());
        assert!(!a.quota(2000).would_exceed(950).unwrap());
        assert!(a.quota(2000).would_exceed(951).unwrap());
    }

    #[test]
    fn records_add_and_remove_without_a_scan_and_rescans_after_an_outside_change() {
        let (_d, a) = account();
        let q = a.quota(1 << 20);
        assert_eq!(q.usage().unwrap(), Usage::default());
        tick();
        // A change Postern makes: the message, then its record (which touches the file last).
        put(&a.dir().join("new"), "1.M1.h", 100);
        q.record_add(100).unwrap();
        put(&a.folder("Sent").dir().join("cur"), "2.M2.h:2,S", 50);
        q.record_add(50).unwrap();
        let text = fs::read_to_string(a.dir().join(FILE)).unwrap();
        assert_eq!(text, "1048576S\n0 0\n100 1\n50 1\n");
        assert_eq!(
            q.usage().unwrap(),
            Usage {
                octets: 150,
                messages: 2
            }
        );
        fs::remove_file(a.dir().join("new/1.M1.h")).unwrap();
        q.record_remove(100).unwrap();
        assert_eq!(q.usage().unwrap().octets, 50);
        // The figures come from the file: a wrong record is believed...
        q.record_add(7).unwrap();
        assert_eq!(q.usage().unwrap().octets, 57);
        // ...until a change nobody recorded touches a folder, which makes the next call scan.
        tick();
        put(&a.folder("Trash").dir().join("cur"), "3.M3.h:2,ST", 25);
        assert_eq!(
            q.usage().unwrap(),
            Usage {
                octets: 75,
                messages: 2
            }
        );
        assert_eq!(
            fs::read_to_string(a.dir().join(FILE)).unwrap(),
            "1048576S\n75 2\n"
        );
        // Another limit, a damaged file or a missing one are rebuilt too.
        assert_eq!(a.quota(4096).usage().unwrap().octets, 75);
        assert!(
            fs::read_to_string(a.dir().join(FILE))
                .unwrap()
                .starts_with("4096S\n")
        );
        fs::write(a.dir().join(FILE), "4096S\nrubbish\n").unwrap();
        assert_eq!(a.quota(4096).usage().unwrap().octets, 75);
        q.forget().unwrap();
        q.forget().unwrap();
        assert_eq!(q.usage().unwrap().octets, 75);
    }

    #[test]
    fn a_delete_through_the_folder_is_recorded() {
        let (_d, a) = account();
        let q = a.quota(0);
        assert_eq!(q.usage().unwrap(), Usage::default());
        tick();
        let sent = a.folder("Sent");
        put(&sent.dir().join("cur"), "1.M1.h:2,S", 300);
        q.record_add(300).unwrap();
        put(&a.dir().join("cur"), "2.M2.h:2,S", 40);
        q.record_add(40).unwrap();
        let mut m = sent.scan().unwrap().messages.remove(0);
        sent.delete(&mut m).unwrap();
        let mut m = a.inbox().scan().unwrap().messages.remove(0);
        a.inbox().delete(&mut m).unwrap();
        let text = fs::read_to_string(a.dir().join(FILE)).unwrap();
        assert!(text.ends_with("\n-300 -1\n-40 -1\n"), "{text}");
        assert_eq!(q.usage().unwrap(), Usage::default());
    }

    #[test]
    fn flag_changes_copies_and_moves_keep_the_file_current() {
        let (_d, a) = account();
        let q = a.quota(0);
        assert_eq!(q.usage().unwrap(), Usage::default());
        tick();
        put(&a.dir().join("new"), "1.M1.h", 300);
        q.record_add(300).unwrap();
        let (inbox, archive) = (a.inbox(), a.folder("Archive"));
        let mut m = inbox.scan().unwrap().messages.remove(0);
        tick();
        assert!(inbox.set_flags(&mut m, "S").unwrap());
        tick();
        inbox
            .transfer(&mut m, &archive, "h", "S", true)
            .unwrap()
            .unwrap();
        tick();
        inbox
            .transfer(&mut m, &archive, "h", "S", false)
            .unwrap()
            .unwrap();
        // No scan since the first: its line, the add, and the copy's add.
        let text = fs::read_to_string(a.dir().join(FILE)).unwrap();
        assert_eq!(text, "0S\n0 0\n300 1\n300 1\n");
        assert_eq!(
            q.usage().unwrap(),
            Usage {
                octets: 600,
                messages: 2
            }
        );
        assert_eq!(fs::read_to_string(a.dir().join(FILE)).unwrap(), text);
        assert_eq!(scan(a.dir()).unwrap().octets, 600, "what a scan finds");
    }

    #[test]
    fn a_long_file_is_rebuilt() {
        let (_d, a) = account();
        let q = a.quota(0);
        put(&a.dir().join("cur"), "1.M1.h:2,", 10);
        assert_eq!(q.usage().unwrap().octets, 10);
        for _ in 0..1000 {
            q.record_add(1).unwrap();
            q.record_remove(1).unwrap();
        }
        assert!(fs::metadata(a.dir().join(FILE)).unwrap().len() > MAX_LEN);
        assert_eq!(q.usage().unwrap().octets, 10);
        assert!(fs::metadata(a.dir().join(FILE)).unwrap().len() < 100);
    }

    #[test]
    fn an_account_without_a_directory_holds_nothing() {
        let d = tempfile::tempdir().unwrap();
        let a = Account::new(d.path(), "nobody@example.test").unwrap();
        assert_eq!(a.quota(1024).usage().unwrap(), Usage::default());
        assert!(!a.quota(1024).would_exceed(1024).unwrap());
        assert!(a.quota(1024).would_exceed(1025).unwrap());
        assert!(!d.path().join("example.test").exists());
    }

    #[test]
    fn sizes_in_dovecot_names() {
        assert_eq!(size_in_name("1.M2P3.h,S=1234:2,S"), Some(1234));
        assert_eq!(size_in_name("1.M2P3.h,S=1234,W=1300"), Some(1234));
        assert_eq!(size_in_name("1.M2P3.h:2,S"), None);
    }

    /// A 10,000-message account: the scan and the cached read agree (the timings are printed
    /// with `--nocapture`; README quotes them).
    #[test]
    fn ten_thousand_messages() {
        let (_d, a) = account();
        for i in 0..10_000 {
            let f = if i % 2 == 0 { "cur" } else { "new" };
            put(&a.dir().join(f), &format!("{i}.M{i}.h"), 10);
        }
        let q = a.quota(0);
        let t = std::time::Instant::now();
        let u = q.usage().unwrap();
        let scan_time = t.elapsed();
        let t = std::time::Instant::now();
        assert_eq!(q.usage().unwrap(), u);
        let read_time = t.elapsed();
        eprintln!("10,000 messages: scan {scan_time:?}, cached read {read_time:?}");
        assert_eq!(
            u,
            Usage {
                octets: 100_000,
                messages: 10_000
            }
        );
    }
}
