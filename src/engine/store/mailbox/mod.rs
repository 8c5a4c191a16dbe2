//! The mailboxes people read (storage only, no protocol): an account's folders over the
//! Maildirs [`super::maildir`] delivers into, with persistent UIDs ([`uidlist`]) and the
//! changes a reader makes ([`folder`]), and what its folders hold against its Max Account Size
//! ([`quota`]).
//!
//! Layout (Maildir++, as Dovecot and Courier keep it): the account's directory
//! `DATA/mailboxes/DOMAIN/USER` is INBOX; every other folder is a subdirectory named `.` and
//! its name (`.Sent`, `.Archive.2024` for `Archive/2024`), each a Maildir of its own with a
//! `maildirfolder` marker file. Every account has the SPECIAL-USE folders (RFC 6154) of
//! [`SPECIAL_USE`], made when the account is added and again whenever it is opened.
//! `subscriptions` in the account's directory lists the subscribed folders (IMAP SUBSCRIBE),
//! one name a line; [`watch`] tells readers of changes.

pub mod folder;
pub mod headers;
pub mod keywords;
pub mod quota;
pub mod scan_cache;
pub mod uidlist;
pub mod watch;

pub use folder::{Folder, Message, Scan};

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The folders every account has, with their RFC 6154 attribute.
pub const SPECIAL_USE: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// The subscription list's file name in the account's directory.
const SUBSCRIPTIONS: &str = "subscriptions";

/// Whether `name` can be a folder: levels separated by `/`, none empty, none with `.` (the
/// Maildir++ separator on disk), no control characters, not under INBOX.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.split('/').any(|l| l.is_empty() || l.contains('.'))
        && !name.chars().any(|c| c.is_control() || c == '\\')
        && !name.to_ascii_uppercase().starts_with("INBOX/")
}

/// One account's mail: INBOX and its folders.
#[derive(Debug, Clone)]
pub struct Account {
    /// `DATA/mailboxes/DOMAIN/USER`.
    dir: PathBuf,
}

impl Account {
    /// The account `address` (`user@domain`, as stored in the configuration) under
    /// `DATA/mailboxes`; `None` for an address without `@`.
    pub fn new(root: &Path, address: &str) -> Option<Account> {
        let (user, domain) = address.rsplit_once('@')?;
        if user.is_empty() || domain.is_empty() || user.contains('/') || domain.contains('/') {
            return None;
        }
        Some(Account {
            dir: super::maildir::mailbox_dir(root, domain, user),
        })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// INBOX.
    pub fn inbox(&self) -> Folder {
        Folder::new(&self.dir)
    }

    /// The folder `name` (`/` separates levels); INBOX for `INBOX` in any case.
    pub fn folder(&self, name: &str) -> Folder {
        if name.eq_ignore_ascii_case("INBOX") {
            return self.inbox();
        }
        Folder::new(self.dir.join(format!(".{}", name.replace('/', "."))))
    }

    /// Every folder's name (`/` between levels), INBOX first, the others sorted. Blocking.
    pub fn folders(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(rest) = name.strip_prefix('.') else {
                continue;
            };
            if rest.is_empty() || rest == "." || !entry.path().join("cur").is_dir() {
                continue;
            }
            out.push(rest.replace('.', "/"));
        }
        out.sort();
        out.insert(0, "INBOX".to_string());
        Ok(out)
    }

    /// Whether a folder of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.folder(name).dir().join("cur").is_dir()
    }

    /// Makes a folder (and its parents: `a/b` makes `a` too). Blocking.
    pub fn create(&self, name: &str) -> io::Result<()> {
        let mut path = String::new();
        for level in name.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(level);
            let f = self.folder(&path);
            f.create()?;
            let marker = f.dir().join("maildirfolder");
            if !marker.exists() {
                fs::write(marker, b"")?;
            }
        }
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Removes a folder and its messages (its subfolders stay). Blocking.
    pub fn delete(&self, name: &str) -> io::Result<()> {
        // Renamed away first, so a crash half-way through never leaves half a folder
        // that looks whole.
        let dir = self.folder(name).dir().to_path_buf();
        let doomed = self
            .dir
            .join(format!("..deleted.{}", super::maildir::unique_name("x")));
        fs::rename(&dir, &doomed)?;
        fs::File::open(&self.dir)?.sync_all()?;
        fs::remove_dir_all(&doomed)
    }

    /// Renames a folder and its subfolders. Blocking.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let prefix = format!("{from}/");
        for name in self.folders()? {
            let new = if name == from {
                to.to_string()
            } else if let Some(rest) = name.strip_prefix(&prefix) {
                format!("{to}/{rest}")
            } else {
                continue;
            };
            fs::rename(self.folder(&name).dir(), self.folder(&new).dir())?;
        }
        fs::File::open(&self.dir)?.sync_all()
    }

    /// The subscribed folders' names.
    pub fn subscriptions(&self) -> io::Result<Vec<String>> {
        match fs::read_to_string(self.dir.join(SUBSCRIPTIONS)) {
            Ok(t) => Ok(t
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()),
            // Never written: every folder is subscribed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.folders(),
            Err(e) => Err(e),
        }
    }

    /// Subscribes to (`on`) or unsubscribes from a folder name. Blocking.
    pub fn subscribe(&self, name: &str, on: bool) -> io::Result<()> {
        let mut list = self.subscriptions()?;
        list.retain(|n| n != name);
        if on {
            list.push(name.to_string());
        }
        list.sort();
        let tmp = self.dir.join("subscriptions.tmp");
        fs::write(
            &tmp,
            list.iter().map(|n| format!("{n}\n")).collect::<String>(),
        )?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, self.dir.join(SUBSCRIPTIONS))
    }

    /// Makes INBOX and the SPECIAL-USE folders where missing. Blocking.
    pub fn prepare(&self) -> io::Result<()> {
        self.inbox().create()?;
        for (name, _) in SPECIAL_USE {
            let f = self.folder(name);
            f.create()?;
            let marker = f.dir().join("maildirfolder");
            if !marker.exists() {
                fs::write(marker, b"")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_makes_inbox_and_the_special_use_folders() {
        let d = tempfile::tempdir().unwrap();
        let a = Account::new(d.path(), "alice@example.test").unwrap();
        a.prepare().unwrap();
        a.prepare().unwrap();
        let dir = d.path().join("example.test/alice");
        for sub in [
            "new",
            "cur",
            "tmp",
            ".Sent/cur",
            ".Trash/new",
            ".Archive/tmp",
        ] {
            assert!(dir.join(sub).is_dir(), "{sub}");
        }
        assert!(dir.join(".Junk/maildirfolder").is_file());
        assert_eq!(a.folder("Archive/2024").dir(), dir.join(".Archive.2024"));
        assert!(Account::new(d.path(), "nobody").is_none());
    }
}
