//! `postern-keywords`: a folder's IMAP keywords ($Forwarded, $Junk, a user's labels), each
//! given a lowercase letter of the Maildir info (`:2,Sa` = \Seen and the first keyword), as
//! Dovecot's `dovecot-keywords` does. Line *n* (from 0) is the keyword of letter `a` + *n*;
//! 26 at most. The list only grows, replaced whole (tmp, fsync, rename) under the folder's
//! UID lock, so a letter never changes its meaning.

use super::uidlist::Locked;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The file name in the folder's directory.
pub const FILE: &str = "postern-keywords";
/// Letters available: `a` to `z`.
pub const MAX: usize = 26;

/// Reads a folder's keyword list (empty when there is none).
pub fn read(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(dir.join(FILE)) {
        Ok(t) => Ok(t
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The letters of `words` in the folder, adding the ones the list lacks; a keyword beyond
/// the 26th is left out. Blocking.
pub fn letters(dir: &Path, words: &[String]) -> io::Result<String> {
    let mut list = read(dir)?;
    let find = |list: &[String], w: &str| list.iter().position(|k| k.eq_ignore_ascii_case(w));
    if words.iter().any(|w| find(&list, w).is_none()) {
        let _lock = Locked::acquire(dir)?;
        list = read(dir)?;
        let before = list.len();
        for w in words {
            if find(&list, w).is_none() && list.len() < MAX {
                list.push(w.clone());
            }
        }
        if list.len() != before {
            let tmp = dir.join("postern-keywords.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(list.join("\n").as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, dir.join(FILE))?;
        }
    }
    Ok(words
        .iter()
        .filter_map(|w| find(&list, w).map(|i| (b'a' + i as u8) as char))
        .collect())
}

/// The keywords a Maildir info's lowercase letters stand for.
pub fn words<'l>(list: &'l [String], flags: &str) -> Vec<&'l str> {
    flags
        .bytes()
        .filter(u8::is_ascii_lowercase)
        .filter_map(|b| list.get((b - b'a') as usize).map(String::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_stable_and_shared() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(letters(d.path(), &["$Junk".into()]).unwrap(), "a");
        assert_eq!(
            letters(d.path(), &["work".into(), "$junk".into()]).unwrap(),
            "ba"
        );
        let list = read(d.path()).unwrap();
        assert_eq!(words(&list, "FSab"), ["$Junk", "work"]);
    }
}
