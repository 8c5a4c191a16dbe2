//! Change notices per account: whoever changes an account's Maildirs (local delivery, an IMAP
//! session, a POP3 UPDATE) pokes the account, and every IMAP session that has the account
//! open, IDLE or between commands, learns of it at once, without polling the disk.
//!
//! One process owns a data directory (`postern.lock`), so a table in memory, keyed by the
//! account's directory, is the whole truth. Each account has a `watch` channel holding a
//! counter; a session compares the counter it last saw with the current one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use tokio::sync::watch;

/// The accounts someone is watching, by directory.
static TABLE: LazyLock<Mutex<HashMap<PathBuf, watch::Sender<u64>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A receiver of an account's change notices; `changed()` wakes at the next poke.
pub type Watch = watch::Receiver<u64>;

/// Starts watching the account whose directory (INBOX) is `dir`.
pub fn subscribe(dir: &Path) -> Watch {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    t.entry(dir.to_path_buf())
        .or_insert_with(|| watch::channel(0).0)
        .subscribe()
}

/// Tells everyone watching the account in `dir` (or, given a folder's directory, its account)
/// that something changed. Cheap when nobody watches.
pub fn poke(dir: &Path) {
    let account = account_of(dir);
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let gone = match t.get(account) {
        Some(tx) => {
            tx.send_modify(|n| *n = n.wrapping_add(1));
            tx.receiver_count() == 0
        }
        None => false,
    };
    if gone {
        t.remove(account);
    }
}

/// The account directory of a folder directory (`USER/.Sent` -> `USER`).
fn account_of(dir: &Path) -> &Path {
    match (dir.file_name(), dir.parent()) {
        (Some(n), Some(parent)) if n.to_string_lossy().starts_with('.') => parent,
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poke_of_a_folder_wakes_the_account() {
        let d = tempfile::tempdir().unwrap();
        let mut w = subscribe(d.path());
        poke(&d.path().join(".Sent"));
        tokio::time::timeout(std::time::Duration::from_secs(5), w.changed())
            .await
            .unwrap()
            .unwrap();
        assert!(!w.has_changed().unwrap());
    }
}
