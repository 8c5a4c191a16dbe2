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

pub mod folder;
pub mod quota;
pub mod uidlist;

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
