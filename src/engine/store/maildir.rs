//! Maildir delivery (`DATA/mailboxes/DOMAIN/USER/{tmp,new,cur}`).
//!
//! A message for several local recipients is first written and fsynced into each recipient's
//! `tmp/`; only when every copy is safe are they renamed into `new/` and the directories synced.
//! If any write fails (a full disk), every copy is removed and the caller answers 4xx: the
//! client retries and nobody gets the message twice. Each copy delivered is recorded in its
//! account's `maildirsize` ([`super::mailbox::quota`]).

use super::body::Body;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One local recipient: the mailbox and the headers that go only into its copy.
pub struct Recipient {
    /// Lower-case domain.
    pub domain: String,
    /// Lower-case user (local part), already checked to be a safe directory name.
    pub user: String,
    /// Trace headers for this copy (Return-Path, Delivered-To, Received), CRLF-terminated.
    pub headers: Vec<u8>,
}

/// The Maildir of `user@domain` under `root` (`DATA/mailboxes`).
pub fn mailbox_dir(root: &Path, domain: &str, user: &str) -> PathBuf {
    root.join(domain).join(user)
}

/// A new Maildir file name: `SECONDS.MmicrosPpidQseq.HOST`, unique in this process.
pub fn unique_name(host: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        host
    )
}

/// Writes `body` (with each recipient's headers in front) to every recipient's Maildir and
/// returns the paths in `new/`. The body is copied in chunks. Blocking: call it from a
/// blocking thread.
pub fn deliver(
    root: &Path,
    host: &str,
    rcpts: &[Recipient],
    body: &Body,
) -> io::Result<Vec<PathBuf>> {
    let mut staged: Vec<(PathBuf, PathBuf, u64)> = Vec::with_capacity(rcpts.len());
    let result = (|| {
        for r in rcpts {
            let dir = mailbox_dir(root, &r.domain, &r.user);
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(dir.join(sub))?;
            }
            let name = unique_name(host);
            let tmp = dir.join("tmp").join(&name);
            let new = dir.join("new").join(&name);
            staged.push((tmp.clone(), new, r.headers.len() as u64 + body.len()));
            let mut f = File::create_new(&tmp)?;
            f.write_all(&r.headers)?;
            body.copy_to(&mut f)?;
            f.sync_all()?;
        }
        let mut delivered = Vec::with_capacity(staged.len());
        for (tmp, new, _) in &staged {
            fs::rename(tmp, new)?;
            delivered.push(new.clone());
        }
        for (_, new, _) in &staged {
            if let Some(dir) = new.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        // IMAP sessions on these accounts (IDLE or selected) look again.
        for r in rcpts {
            super::mailbox::watch::poke(&mailbox_dir(root, &r.domain, &r.user));
        }
        Ok(delivered)
    })();
    if result.is_ok() {
        // The usage record is a cache a scan rebuilds: a failure to append is not a failed
        // delivery.
        for ((_, _, octets), r) in staged.iter().zip(rcpts) {
            let dir = mailbox_dir(root, &r.domain, &r.user);
            let _ = super::mailbox::quota::record(&dir, *octets as i128, 1);
        }
    }
    if result.is_err() {
        for (tmp, new, _) in &staged {
            let _ = fs::remove_file(tmp);
            let _ = fs::remove_file(new);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_each_copy_with_its_own_headers() {
        let dir = tempfile::tempdir().unwrap();
        let rcpts = [("a", "x.test"), ("b", "y.test")].map(|(u, d)| Recipient {
            domain: d.into(),
            user: u.into(),
            headers: format!("Delivered-To: {u}@{d}\r\n").into_bytes(),
        });
        let paths = deliver(
            dir.path(),
            "h",
            &rcpts,
            &Body::from_bytes(b"Subject: t\r\n\r\nhi\r\n".to_vec()),
        )
        .unwrap();
        assert_eq!(paths.len(), 2);
        let a = fs::read_to_string(&paths[0]).unwrap();
        assert_eq!(a, "Delivered-To: a@x.test\r\nSubject: t\r\n\r\nhi\r\n");
        assert!(paths[1].starts_with(dir.path().join("y.test/b/new")));
        assert_eq!(
            fs::read_dir(dir.path().join("x.test/a/tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_failed_copy_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the second mailbox's directory should be makes its write fail.
        fs::create_dir_all(dir.path().join("y.test")).unwrap();
        fs::write(dir.path().join("y.test/b"), b"not a dir").unwrap();
        let rcpts = [("a", "x.test"), ("b", "y.test")].map(|(u, d)| Recipient {
            domain: d.into(),
            user: u.into(),
            headers: Vec::new(),
        });
        assert!(
            deliver(
                dir.path(),
                "h",
                &rcpts,
                &Body::from_bytes(b"x\r\n".to_vec())
            )
            .is_err()
        );
        assert_eq!(
            fs::read_dir(dir.path().join("x.test/a/tmp"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            fs::read_dir(dir.path().join("x.test/a/new"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn each_copy_is_recorded_in_its_accounts_maildirsize() {
        use crate::engine::store::mailbox::{Account, quota::Usage};
        let dir = tempfile::tempdir().unwrap();
        let a = Account::new(dir.path(), "a@x.test").unwrap();
        a.prepare().unwrap();
        let q = a.quota(1 << 20);
        assert_eq!(q.usage().unwrap(), Usage::default());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let rcpts = [Recipient {
            domain: "x.test".into(),
            user: "a".into(),
            headers: b"Delivered-To: a@x.test\r\n".to_vec(),
        }];
        let paths = deliver(
            dir.path(),
            "h",
            &rcpts,
            &Body::from_bytes(b"Subject: t\r\n\r\nhi\r\n".to_vec()),
        )
        .unwrap();
        let octets = fs::metadata(&paths[0]).unwrap().len();
        let text = fs::read_to_string(a.dir().join("maildirsize")).unwrap();
        assert!(text.ends_with(&format!("\n{octets} 1\n")), "{text}");
        assert_eq!(
            q.usage().unwrap(),
            Usage {
                octets,
                messages: 1
            }
        );
    }
}
