//! LIST-EXTENDED's options (RFC 5258) as SPECIAL-USE clients send them (RFC 6154:
//! `LIST (SPECIAL-USE) "" "*"`, `LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)`), which
//! imap-codec 2.0.0-alpha.7 does not parse: the options are taken off the command here, and
//! the plain LIST that is left goes to the parser. One pattern only (no pattern lists).

/// What the selection and return options ask for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `(SUBSCRIBED)`: only subscribed folders, marked `\Subscribed`.
    pub subscribed_only: bool,
    /// `(SPECIAL-USE)`: only folders with a special use.
    pub special_only: bool,
    /// `RETURN (SUBSCRIBED)`: mark subscribed folders.
    pub return_subscribed: bool,
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
        let opts = &args[at + " RETURN (".len()..args.len() - 1];
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
        assert_eq!(strip(b"e LIST \"\" * RETURN (STATUS (MESSAGES))\r\n"), None);
    }
}
