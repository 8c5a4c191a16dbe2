//! A selected folder as one session shows it: the messages in sequence-number order with
//! their flags as last told to the client, and [`Selected::sync`], which compares that with
//! a new scan of the folder and yields the untagged updates (EXPUNGE, EXISTS, FETCH FLAGS)
//! that bring the client up to date. Keywords are the folder's `postern-keywords` letters.

use crate::engine::store::mailbox::{Folder, Message, Scan, keywords};
use imap_codec::imap_types::core::Atom;
use imap_codec::imap_types::flag::Flag;
use std::collections::HashMap;

/// One message of the selected folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file, UID and size.
    pub message: Message,
    /// Its flags as the client was last told.
    pub flags: Vec<Flag<'static>>,
    /// Its file was gone at a scan where an EXPUNGE could not be sent yet.
    pub gone: bool,
}

/// The selected folder.
pub struct Selected {
    /// The folder's name, as the client gave it.
    pub name: String,
    /// Its files.
    pub folder: Folder,
    /// EXAMINE: nothing may change.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT as of the last scan.
    pub uidnext: u32,
    /// Message n is `entries[n - 1]`.
    pub entries: Vec<Entry>,
    /// The folder's keyword list.
    pub keywords: Vec<String>,
}

/// An untagged update for the client.
#[derive(Debug, PartialEq)]
pub enum Update {
    /// `* N EXPUNGE`.
    Expunge(u32),
    /// `* N EXISTS`.
    Exists(u32),
    /// `* N FETCH (FLAGS (...))` (with UID when asked).
    Flags(u32),
}

/// The IMAP flags of a Maildir info (`FRS` and keyword letters).
pub fn flags_of(info: &str, kw: &[String]) -> Vec<Flag<'static>> {
    let mut out = Vec::new();
    for c in info.chars() {
        match c {
            'D' => out.push(Flag::Draft),
            'F' => out.push(Flag::Flagged),
            'R' => out.push(Flag::Answered),
            'S' => out.push(Flag::Seen),
            'T' => out.push(Flag::Deleted),
            _ => {}
        }
    }
    for w in keywords::words(kw, info) {
        if let Ok(a) = Atom::try_from(w.to_string()) {
            out.push(Flag::Keyword(a));
        }
    }
    out
}

/// The Maildir system-flag letters of IMAP flags, and their keywords.
pub fn info_of(flags: &[Flag<'_>]) -> (String, Vec<String>) {
    let mut letters = String::new();
    let mut words = Vec::new();
    for f in flags {
        match f {
            Flag::Draft => letters.push('D'),
            Flag::Flagged => letters.push('F'),
            Flag::Answered => letters.push('R'),
            Flag::Seen => letters.push('S'),
            Flag::Deleted => letters.push('T'),
            Flag::Keyword(a) => words.push(a.as_ref().to_string()),
            Flag::Extension(_) => {}
        }
    }
    (letters, words)
}

impl Selected {
    /// The folder as first scanned.
    pub fn new(name: String, folder: Folder, read_only: bool, scan: Scan) -> Selected {
        let keywords = keywords::read(folder.dir()).unwrap_or_default();
        let entries = scan
            .messages
            .into_iter()
            .map(|message| Entry {
                flags: flags_of(message.flags(), &keywords),
                message,
                gone: false,
            })
            .collect();
        Selected {
            name,
            folder,
            read_only,
            uidvalidity: scan.uidvalidity,
            uidnext: scan.uidnext,
            entries,
            keywords,
        }
    }

    /// Messages shown.
    pub fn exists(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Brings the view up to date with `scan` and returns what to tell the client. Without
    /// `expunge` (during FETCH, STORE, SEARCH) vanished messages are kept, marked gone.
    pub fn sync(&mut self, scan: Scan, expunge: bool) -> Vec<Update> {
        self.keywords = keywords::read(self.folder.dir()).unwrap_or_default();
        let mut now: HashMap<u32, Message> =
            scan.messages.into_iter().map(|m| (m.uid, m)).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            match now.remove(&self.entries[i].message.uid) {
                Some(m) => {
                    let flags = flags_of(m.flags(), &self.keywords);
                    let e = &mut self.entries[i];
                    if flags != e.flags {
                        e.flags = flags;
                        out.push(Update::Flags(i as u32 + 1));
                    }
                    e.message = m;
                    e.gone = false;
                    i += 1;
                }
                None if expunge => {
                    self.entries.remove(i);
                    out.push(Update::Expunge(i as u32 + 1));
                }
                None => {
                    self.entries[i].gone = true;
                    i += 1;
                }
            }
        }
        let last = self.entries.last().map_or(0, |e| e.message.uid);
        let mut fresh: Vec<Message> = now.into_values().filter(|m| m.uid > last).collect();
        fresh.sort_by_key(|m| m.uid);
        if !fresh.is_empty() {
            for message in fresh {
                self.entries.push(Entry {
                    flags: flags_of(message.flags(), &self.keywords),
                    message,
                    gone: false,
                });
            }
            out.push(Update::Exists(self.exists()));
        }
        self.uidnext = scan.uidnext;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn sync_reports_flags_expunges_and_new_mail_in_order() {
        let d = tempfile::tempdir().unwrap();
        let f = Folder::new(d.path());
        f.create().unwrap();
        for i in 0..3 {
            fs::write(d.path().join(format!("cur/100.M{i}P1Q{i}.h:2,")), "x\r\n").unwrap();
        }
        let mut sel = Selected::new("INBOX".into(), f.clone(), false, f.scan().unwrap());
        assert_eq!(sel.exists(), 3);
        // Another reader: message 1 seen, message 2 expunged, one new message.
        fs::rename(
            d.path().join("cur/100.M0P1Q0.h:2,"),
            d.path().join("cur/100.M0P1Q0.h:2,S"),
        )
        .unwrap();
        fs::remove_file(d.path().join("cur/100.M1P1Q1.h:2,")).unwrap();
        fs::write(d.path().join("new/101.M0P1Q9.h"), "y\r\n").unwrap();
        // During FETCH/STORE/SEARCH the vanished message stays, marked gone.
        let held = sel.sync(f.scan().unwrap(), false);
        assert_eq!(held, [Update::Flags(1), Update::Exists(4)]);
        assert!(sel.entries[1].gone);
        assert_eq!(sel.entries[0].flags, [Flag::Seen]);
        // At the next command that allows it, the EXPUNGE.
        let later = sel.sync(f.scan().unwrap(), true);
        assert_eq!(later, [Update::Expunge(2)]);
        assert_eq!(
            sel.entries
                .iter()
                .map(|e| e.message.uid)
                .collect::<Vec<_>>(),
            [1, 3, 4]
        );
    }

    #[test]
    fn maildir_letters_and_imap_flags_map_both_ways() {
        let kw = vec!["$Junk".to_string()];
        let flags = flags_of("DFRSTa", &kw);
        assert_eq!(flags.len(), 6);
        let (letters, words) = info_of(&flags);
        assert_eq!(letters, "DFRST");
        assert_eq!(words, ["$Junk"]);
    }
}
