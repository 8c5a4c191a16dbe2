//! LIST-EXTENDED's options (RFC 5258) as SPECIAL-USE clients send them (RFC 6154:
//! `LIST (SPECIAL-USE) "" "*"`, `LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)`), which
//! imap-codec 2.0.0-alpha.7 does not parse: the options are taken off the command here, and
//! the plain LIST that is left goes to the parser. RETURN (STATUS (...)) (RFC 5819, part of
//! IMAP4rev2) asks for a STATUS line after each folder's LIST line. One pattern only (no
//! pattern lists).

/// What the selection and return options ask for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `(SUBSCRIBED)`: only subscribed folders, marked `\Subscribed`.
    pub subscribed_only: bool,
    /// `(SPECIAL-USE)`: only folders with a special use.
    pub special_only: bool,
    /// `RETURN (SUBSCRIBED)`: mark subscribed folders.
    pub return_subscribed: bool,
    /// `RETURN (STATUS (...))`: these STATUS items for each folder listed.
    pub status: StatusItems,
}

/// The STATUS items a `RETURN (STATUS (...))` names (none: no STATUS lines).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatusItems {
    pub messages: bool,
    pub uidnext: bool,
    pub uidvalidity: bool,
    pub unseen: bool,
    pub deleted: bool,
    pub recent: bool,
}

impl StatusItems {
    /// Whether any item was asked for.
    pub fn any(&self) -> bool {
        *self != StatusItems::default()
    }

    /// Reads `MESSAGES UNSEEN ...`; `None` on an item it does not know.
    fn parse(list: &str) -> Option<StatusItems> {
        let mut s = StatusItems::default();
        for w in list.split_whitespace() {
            match w.to_ascii_uppercase().as_str() {
                "MESSAGES" => s.messages = true,
                "UIDNEXT" => s.uidnext = true,
                "UIDVALIDITY" => s.uidvalidity = true,
                "UNSEEN" => s.unseen = true,
                "DELETED" => s.deleted = true,
                "RECENT" => s.recent = true,
                _ => return None,
            }
        }
        s.any().then_some(s)
    }
}

/// The command without its LIST-EXTENDED options, and the options; `None` when `raw` is not
/// a one-line LIST with options (it then goes to the parser as it is).
pub fn strip(raw: &[u8]) -> Option<(Vec<u8>, Options)> {
    let line = raw.strip_suffix(b"\r\n")?;
    if line.contains(&b'\n') {
        return None;
    }
    let line = std::str::from_utf8(line).ok()?;
    let (tag, rest) = line.split_once(' ')?;
    let (verb, mut args) = rest.split_once(' ')?;
    if !verb.eq_ignore_ascii_case("LIST") {
        return None;
    }
    let mut o = Options::default();
    let mut found = false;
    if let Some(inner) = args.strip_prefix('(') {
        let (opts, after) = inner.split_once(')')?;
        for w in opts.split_whitespace() {
            match w.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => o.subscribed_only = true,
                "SPECIAL-USE" => o.special_only = true,
                "REMOTE" | "RECURSIVEMATCH" => {}
                _ => return None,
            }
        }
        args = after.strip_prefix(' ')?;
        found = true;
    }
    let upper = args.to_ascii_uppercase();
    if let Some(at) = upper.rfind(" RETURN (")
        && upper.ends_with(')')
    {
        let mut opts = args[at + " RETURN (".len()..args.len() - 1].to_string();
        if let Some(p) = opts.to_ascii_uppercase().find("STATUS (") {
            let close = p + opts[p..].find(')')?;
            o.status = StatusItems::parse(&opts[p + "STATUS (".len()..close])?;
            opts.replace_range(p..=close, "");
        }
        for w in opts.split_whitespace() {
            match w.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => o.return_subscribed = true,
                "SPECIAL-USE" | "CHILDREN" => {}
                _ => return None,
            }
        }
        args = &args[..at];
        found = true;
    }
    found.then(|| (format!("{tag} {verb} {args}\r\n").into_bytes(), o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_off_and_a_plain_list_is_left() {
        let (cmd, o) = strip(b"a LIST (SPECIAL-USE) \"\" \"*\"\r\n").unwrap();
        assert_eq!(cmd, b"a LIST \"\" \"*\"\r\n");
        assert!(o.special_only && !o.subscribed_only);
        let (cmd, o) = strip(b"b list \"\" % RETURN (SUBSCRIBED CHILDREN)\r\n").unwrap();
        assert_eq!(cmd, b"b list \"\" %\r\n");
        assert!(o.return_subscribed);
        assert_eq!(strip(b"c LIST \"\" *\r\n"), None);
        assert_eq!(strip(b"d LIST (BOGUS) \"\" *\r\n"), None);
        let (cmd, o) =
            strip(b"e LIST \"\" * RETURN (SUBSCRIBED STATUS (MESSAGES unseen) CHILDREN)\r\n")
                .unwrap();
        assert_eq!(cmd, b"e LIST \"\" *\r\n");
        assert!(o.return_subscribed && o.status.messages && o.status.unseen);
        assert!(!o.status.uidnext);
        assert_eq!(strip(b"f LIST \"\" * RETURN (STATUS (BOGUS))\r\n"), None);
        assert_eq!(strip(b"g LIST \"\" * RETURN (STATUS ())\r\n"), None);
    }
}
