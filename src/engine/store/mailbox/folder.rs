//! One Maildir folder (`tmp/`, `new/`, `cur/`): its messages with their persistent UIDs, and
//! the changes a reader makes: moving a message it has seen from `new/` to `cur/`, setting
//! Maildir flags (`:2,FRST` in the file name, changed by rename), deleting.
//!
//! A scan lists `new/` and `cur/` under the folder's UID lock: a file the list does not know
//! yet (delivered while the server was down, or while a session is open) gets the next UID,
//! in delivery order; an entry whose file is gone is dropped. Only names and sizes are kept,
//! never message contents, so a folder of any size costs a few dozen octets per message.
//! Every change is one rename or one unlink, so a `kill -9` leaves each message either in
//! its old state or its new one, never half. A folder unchanged since its last scan is not
//! listed again ([`super::scan_cache`]).

use super::uidlist::{Locked, UidList};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The Maildir info separator and version: `BASE:2,FLAGS`.
const INFO: &str = ":2,";

/// One message as a scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its persistent UID.
    pub uid: u32,
    /// The file name without the `:2,` info: what the UID is keyed by.
    pub base: String,
    /// The whole file name.
    pub name: String,
    /// In `new/` (not yet seen by any reader) rather than `cur/`.
    pub in_new: bool,
    /// Size in octets as stored (as received: CRLF line endings).
    pub size: u64,
}

impl Message {
    /// The Maildir flags (`D`, `F`, `P`, `R`, `S`, `T`), sorted.
    pub fn flags(&self) -> &str {
        self.name.split_once(INFO).map_or("", |(_, f)| f)
    }

    /// Whether a flag is set.
    pub fn has_flag(&self, flag: char) -> bool {
        self.flags().contains(flag)
    }
}

/// A folder's messages in UID order, with its UIDVALIDITY.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The next UID the folder will hand out.
    pub uidnext: u32,
    /// The messages, lowest UID first.
    pub messages: Vec<Message>,
}

/// A Maildir folder on disk.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Its directory (holding `tmp/`, `new/`, `cur/`).
    dir: PathBuf,
}

/// The order mail was delivered in, from a name like `1700000000.M123P45Q6.host`: seconds,
/// then microseconds, then the name itself.
fn delivery_key(name: &str) -> (u64, u64, &str) {
    let mut parts = name.split('.');
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let micros = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (secs, micros, name)
}

/// The base of a Maildir file name (before `:2,`).
pub fn base_of(name: &str) -> &str {
    name.split_once(INFO).map_or(name, |(b, _)| b)
}

impl Folder {
    /// The folder in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Folder {
        Folder { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `tmp/`, `new/` and `cur/` if missing.
    pub fn create(&self) -> io::Result<()> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(self.dir.join(sub))?;
        }
        Ok(())
    }

    /// The path of a message's file.
    pub fn path(&self, m: &Message) -> PathBuf {
        self.dir
            .join(if m.in_new { "new" } else { "cur" })
            .join(&m.name)
    }

    /// Lists the folder and brings its UID list up to date (see the module header).
    /// Blocking: call it from a blocking thread.
    pub fn scan(&self) -> io::Result<Scan> {
        self.create()?;
        // Unchanged since the last scan (and not just now): that scan, without a listing.
        let before = super::scan_cache::stamps(&self.dir)?;
        if let Some(hit) = before
            .as_ref()
            .and_then(|b| super::scan_cache::get(&self.dir, b))
        {
            return Ok(hit);
        }
        let locked = Locked::acquire(&self.dir)?;
        let mut list = locked.read()?;
        let mut found = Vec::new();
        for (sub, in_new) in [("new", true), ("cur", false)] {
            for entry in fs::read_dir(self.dir.join(sub))? {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                // A file removed since the listing is simply not there.
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                found.push((name, in_new, meta.len()));
            }
        }
        // A message renamed between the listings of new/ and cur/ may appear twice: the
        // first one listed (from new/) is kept.
        let mut seen: HashSet<String> = HashSet::with_capacity(found.len());
        found.retain(|(name, _, _)| seen.insert(base_of(name).to_string()));
        let known = list.uids.len();
        list.uids.retain(|base, _| seen.contains(base));
        let mut changed = list.uids.len() != known;
        let mut messages = Vec::with_capacity(found.len());
        let mut fresh = Vec::new();
        for (name, in_new, size) in found {
            let base = base_of(&name).to_string();
            let m = Message {
                uid: list.uids.get(&base).copied().unwrap_or(0),
                base,
                name,
                in_new,
                size,
            };
            if m.uid == 0 {
                fresh.push(m);
            } else {
                messages.push(m);
            }
        }
        // New mail gets the next UIDs in the order it was delivered.
        fresh.sort_by(|a, b| delivery_key(&a.name).cmp(&delivery_key(&b.name)));
        for mut m in fresh {
            changed = true;
            m.uid = list.assign(m.base.clone());
            messages.push(m);
        }
        let wrote = changed || !self.dir.join(super::uidlist::FILE).exists();
        if wrote {
            locked.write(&list)?;
        }
        messages.sort_by_key(|m| m.uid);
        let UidList {
            uidvalidity,
            uidnext,
            ..
        } = list;
        let scan = Scan {
            uidvalidity,
            uidnext,
            messages,
        };
        // Kept when this scan left the folder as it found it (its own UID list write moves
        // the list's time: the next scan is kept instead).
        match before {
            Some(b) if !wrote => super::scan_cache::put(&self.dir, b, &scan),
            _ => super::scan_cache::forget(&self.dir),
        }
        Ok(scan)
    }

    /// Finds a message's file again after someone else renamed it (its flags changed).
    fn relocate(&self, m: &mut Message) -> io::Result<bool> {
        if self.path(m).exists() {
            return Ok(true);
        }
        for (sub, in_new) in [("cur", false), ("new", true)] {
            for entry in fs::read_dir(self.dir.join(sub))? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if base_of(&name) == m.base {
                    m.name = name;
                    m.in_new = in_new;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Opens a message for reading; `NotFound` when it has been deleted meanwhile.
    pub fn open(&self, m: &mut Message) -> io::Result<File> {
        match File::open(self.path(m)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.relocate(m)? => {
                File::open(self.path(m))
            }
            r => r,
        }
    }

    /// Moves a message to `cur/` with exactly these flags (any order, duplicates ignored),
    /// whatever flags its file has now (IMAP STORE: the session's view is the client's
    /// intent). `Ok(false)` when the message is gone.
    pub fn set_flags(&self, m: &mut Message, flags: &str) -> io::Result<bool> {
        self.update_flags(m, |_| flags.to_string())
    }

    /// Moves a message from `new/` to `cur/` keeping its flags ("seen by a reader"): when
    /// someone else has moved it meanwhile (an IMAP STORE, a POP3 session), it is left as
    /// that change left it, so no flag another session set is lost. `Ok(false)` when gone.
    pub fn to_cur(&self, m: &mut Message) -> io::Result<bool> {
        if !m.in_new {
            return Ok(true);
        }
        let name = format!("{}{INFO}{}", m.base, sorted(m.flags()));
        match fs::rename(self.path(m), self.dir.join("cur").join(&name)) {
            Ok(()) => {
                m.name = name;
                m.in_new = false;
                let _ = super::quota::touch(self.account_dir());
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.relocate(m)? {
                    return Ok(false);
                }
                // Moved by someone else, flags and all: kept as it is (moved to cur/ if it
                // was only renamed within new/).
                let flags = m.flags().to_string();
                self.set_flags(m, &flags)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives a message the flags `change` makes of its current ones (POP3 adding `S` after a
    /// RETR): when another session renamed the file meanwhile, `change` is applied to the
    /// flags it found there, so that session's flags are kept. `Ok(false)` when gone.
    pub fn update_flags(
        &self,
        m: &mut Message,
        change: impl Fn(&str) -> String,
    ) -> io::Result<bool> {
        for _ in 0..3 {
            let name = format!("{}{INFO}{}", m.base, sorted(&change(m.flags())));
            if !m.in_new && m.name == name {
                return Ok(true);
            }
            let to = self.dir.join("cur").join(&name);
            match fs::rename(self.path(m), &to) {
                Ok(()) => {
                    m.name = name;
                    m.in_new = false;
                    // Sizes are unchanged: the quota file stays current (a cache; see delete).
                    let _ = super::quota::touch(self.account_dir());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.relocate(m)? {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Deletes a message (one unlink); a message already gone is not an error. Call
    /// [`Folder::sync`] after a batch. The account's Max Account Size usage is told
    /// ([`super::quota`]), so IMAP EXPUNGE and POP3 DELE need not.
    pub fn delete(&self, m: &mut Message) -> io::Result<()> {
        for _ in 0..3 {
            match fs::remove_file(self.path(m)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.relocate(m)? {
                        return Ok(());
                    }
                }
                Ok(()) => {
                    // A cache a scan rebuilds: a failed append is not a failed delete.
                    let _ = super::quota::record(self.account_dir(), -(m.size as i128), -1);
                    return Ok(());
                }
                r => return r,
            }
        }
        Ok(())
    }

    /// Stores a new message (APPEND): written to `tmp/`, fsynced, given `mtime` as its
    /// internal date, then renamed into `cur/` with `flags` and the directory fsynced, so a
    /// `kill -9` leaves either no message or the whole one. Returns its base name (the scan
    /// that follows gives it its UID). Blocking.
    pub fn append(
        &self,
        host: &str,
        bytes: &[u8],
        flags: &str,
        mtime: Option<std::time::SystemTime>,
    ) -> io::Result<String> {
        self.create()?;
        let base = super::super::maildir::unique_name(host);
        let tmp = self.dir.join("tmp").join(&base);
        let mut f = File::create_new(&tmp)?;
        let written = (|| {
            io::Write::write_all(&mut f, bytes)?;
            if let Some(t) = mtime {
                f.set_modified(t)?;
            }
            f.sync_all()
        })();
        drop(f);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let to = self
            .dir
            .join("cur")
            .join(format!("{base}{INFO}{}", sorted(flags)));
        if let Err(e) = fs::rename(&tmp, &to) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        File::open(self.dir.join("cur"))?.sync_all()?;
        super::watch::poke(&self.dir);
        Ok(base)
    }

    /// Puts a copy of message `m` into `to` with `flags` (COPY): a hard link under a new name
    /// in `to`'s `cur/` (one atomic step; a plain copy through `tmp/` where links fail), or,
    /// for MOVE (`keep` false), a rename of the file itself. Returns the new base name, or
    /// `None` when the message is gone. Call [`Folder::sync`] on `to` after a batch. The
    /// account's Max Account Size accounting is told (a copy adds its size).
    pub fn transfer(
        &self,
        m: &mut Message,
        to: &Folder,
        host: &str,
        flags: &str,
        keep: bool,
    ) -> io::Result<Option<String>> {
        let base = super::super::maildir::unique_name(host);
        let dest = to
            .dir
            .join("cur")
            .join(format!("{base}{INFO}{}", sorted(flags)));
        for _ in 0..3 {
            let r = if keep {
                fs::hard_link(self.path(m), &dest)
            } else {
                fs::rename(self.path(m), &dest)
            };
            match r {
                Ok(()) => {
                    to.recorded(m.size, keep);
                    return Ok(Some(base));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.relocate(m)? {
                        return Ok(None);
                    }
                }
                Err(_) if keep => {
                    // No hard links here (another file system, FAT): copy through tmp/.
                    let tmp = to.dir.join("tmp").join(&base);
                    let mut src = self.open(m)?;
                    let mut out = File::create_new(&tmp)?;
                    io::copy(&mut src, &mut out)?;
                    out.sync_all()?;
                    fs::rename(&tmp, &dest)?;
                    to.recorded(m.size, keep);
                    return Ok(Some(base));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Tells the account's Max Account Size accounting of a message of `size` octets that
    /// came into this folder: a copy adds to the usage, a move within the account only keeps
    /// the file current. A cache a scan rebuilds: a failure is not the caller's.
    fn recorded(&self, size: u64, copy: bool) {
        let _ = if copy {
            super::quota::record(self.account_dir(), size as i128, 1)
        } else {
            super::quota::touch(self.account_dir())
        };
    }

    /// The modification time of a message's file (its internal date).
    pub fn mtime(&self, m: &mut Message) -> io::Result<std::time::SystemTime> {
        match fs::metadata(self.path(m)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.relocate(m)? => {
                fs::metadata(self.path(m))?.modified()
            }
            r => r?.modified(),
        }
    }

    /// The account directory: INBOX's own, a `.Folder`'s parent.
    fn account_dir(&self) -> &Path {
        let is_sub = self
            .dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        match self.dir.parent() {
            Some(p) if is_sub => p,
            _ => &self.dir,
        }
    }

    /// Makes renames and deletions in `new/` and `cur/` durable.
    pub fn sync(&self) -> io::Result<()> {
        for sub in ["new", "cur"] {
            File::open(self.dir.join(sub))?.sync_all()?;
        }
        Ok(())
    }
}

/// Maildir flags sorted and without duplicates (`"SaF"` -> `"FSa"`).
pub fn sorted(flags: &str) -> String {
    let mut f: Vec<char> = flags.chars().filter(char::is_ascii_alphabetic).collect();
    f.sort_unstable();
    f.dedup();
    f.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, sub: &str, name: &str, body: &str) {
        fs::write(dir.join(sub).join(name), body).unwrap();
    }

    #[test]
    fn uids_follow_delivery_order_and_survive_flag_changes() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        put(d.path(), "new", "100.M20P1Q1.h", "b\r\n");
        put(d.path(), "new", "100.M3P1Q0.h", "a\r\n");
        let s = f.scan().unwrap();
        assert_eq!(
            s.messages
                .iter()
                .map(|m| (m.uid, m.base.as_str()))
                .collect::<Vec<_>>(),
            [(1, "100.M3P1Q0.h"), (2, "100.M20P1Q1.h")]
        );
        let mut m = s.messages[0].clone();
        assert!(f.set_flags(&mut m, "SF").unwrap());
        assert_eq!(m.name, "100.M3P1Q0.h:2,FS");
        assert!(d.path().join("cur/100.M3P1Q0.h:2,FS").exists());
        put(d.path(), "new", "101.M1P1Q2.h", "c\r\n");
        let s2 = f.scan().unwrap();
        assert_eq!(s2.uidvalidity, s.uidvalidity);
        assert_eq!(
            s2.messages
                .iter()
                .map(|m| (m.uid, m.flags()))
                .collect::<Vec<_>>(),
            [(1, "FS"), (2, ""), (3, "")]
        );
        // A stale copy of the message finds its renamed file.
        let mut stale = s.messages[0].clone();
        let mut file = f.open(&mut stale).unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "a\r\n");
        f.delete(&mut stale).unwrap();
        f.delete(&mut stale).unwrap();
        let s3 = f.scan().unwrap();
        assert_eq!(
            s3.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(s3.uidnext, 4);
    }

    #[test]
    fn a_reader_moving_to_cur_or_adding_seen_keeps_flags_set_meanwhile() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        put(d.path(), "new", "100.M1P1Q1.h", "a\r\n");
        put(d.path(), "new", "100.M2P1Q2.h", "b\r\n");
        let s = f.scan().unwrap();
        // Another session flags both while this one still has them as they were in new/.
        let (mut a, mut b) = (s.messages[0].clone(), s.messages[1].clone());
        assert!(f.set_flags(&mut s.messages[0].clone(), "T").unwrap());
        assert!(f.set_flags(&mut s.messages[1].clone(), "F").unwrap());
        assert!(f.to_cur(&mut a).unwrap());
        assert_eq!(a.name, "100.M1P1Q1.h:2,T", "\\Deleted kept");
        assert!(f.update_flags(&mut b, |now| format!("{now}S")).unwrap());
        assert_eq!(b.name, "100.M2P1Q2.h:2,FS", "\\Flagged kept");
        let mut names: Vec<String> = fs::read_dir(d.path().join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["100.M1P1Q1.h:2,T", "100.M2P1Q2.h:2,FS"]);
        // A message in new/ that nobody touched moves with its flags.
        put(d.path(), "new", "101.M3P1Q3.h", "c\r\n");
        let mut c = f.scan().unwrap().messages.remove(2);
        assert!(f.to_cur(&mut c).unwrap());
        assert!(d.path().join("cur/101.M3P1Q3.h:2,").exists());
    }

    #[test]
    fn one_message_listed_in_new_and_cur_counts_once() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        // As if renamed from new/ to cur/ while the folder was being listed, with another
        // message whose name extends this one's.
        put(d.path(), "new", "100.M1P1Q1.h", "a\r\n");
        put(d.path(), "cur", "100.M1P1Q1.h:2,S", "a\r\n");
        put(d.path(), "new", "100.M1P1Q1.h.x", "b\r\n");
        let s = f.scan().unwrap();
        let mut bases: Vec<_> = s.messages.iter().map(|m| (m.uid, m.base.clone())).collect();
        bases.sort();
        assert_eq!(
            bases,
            [
                (1, "100.M1P1Q1.h".to_string()),
                (2, "100.M1P1Q1.h.x".to_string())
            ]
        );
    }

    #[test]
    fn concurrent_scans_never_hand_out_a_uid_twice() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        put(
                            f.dir(),
                            "new",
                            &format!("{}.M{i}P{t}Q0.h", 1000 + i),
                            "x\r\n",
                        );
                        f.scan().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = f.scan().unwrap();
        let mut uids: Vec<u32> = s.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids.len(), 100);
        uids.dedup();
        assert_eq!(uids.len(), 100, "a UID was handed out twice");
        assert_eq!(s.uidnext, 101);
    }
}
