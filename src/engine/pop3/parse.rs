//! The POP3 command parser (RFC 1939, 2449, 2595, 5034). POP3's grammar is a keyword of up
//! to four letters and at most two arguments, so it is parsed here by hand. `pop3-codec` 0.3
//! was tried (it builds here and parses every command right, on nom 7 plus `abnf-core`), but
//! every refusal comes back as the same nom `Tag` error at the line's start, so an unknown
//! command, a missing argument and a bad number could not get their own `-ERR` text without
//! parsing the keyword again here; it also takes `RETR 0` as message 0.

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPA (RFC 2449).
    Capa,
    /// STLS (RFC 2595).
    Stls,
    /// USER name.
    User(String),
    /// PASS password (the rest of the line: a password may hold spaces).
    Pass(String),
    /// AUTH [mechanism [initial-response]] (RFC 5034).
    Auth {
        /// The mechanism, upper-cased; `None` asks for the list.
        mechanism: Option<String>,
        /// SASL-IR, still base64.
        initial: Option<String>,
    },
    /// STAT.
    Stat,
    /// LIST [n].
    List(Option<usize>),
    /// UIDL [n].
    Uidl(Option<usize>),
    /// RETR n.
    Retr(usize),
    /// TOP n lines.
    Top(usize, u64),
    /// DELE n.
    Dele(usize),
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
}

/// Why a line is not a command: the `-ERR` text to send (from [`super::reply`]).
pub type ParseError = String;

fn number(arg: Option<&str>, usage: &str) -> Result<usize, ParseError> {
    match arg {
        Some(a) if !a.is_empty() && a.len() <= 9 && a.bytes().all(|b| b.is_ascii_digit()) => {
            match a.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(super::reply::NO_SUCH_MESSAGE.into()),
            }
        }
        _ => Err(super::reply::syntax(usage)),
    }
}

fn optional(arg: Option<&str>, usage: &str) -> Result<Option<usize>, ParseError> {
    arg.map(|a| number(Some(a), usage)).transpose()
}

/// Parses one command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    use super::reply;
    if line
        .iter()
        .any(|&b| b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(reply::BAD_CHARACTERS.into());
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(reply::BAD_CHARACTERS.into());
    };
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let mut args = rest.map(|r| r.split(' ')).into_iter().flatten();
    let (a1, a2) = (args.next(), args.next());
    let extra = args.next().is_some();
    let none = |c: Command| {
        if rest.is_some() {
            Err(reply::syntax(keyword))
        } else {
            Ok(c)
        }
    };
    match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "STAT" => none(Command::Stat),
        "RSET" => none(Command::Rset),
        "NOOP" => none(Command::Noop),
        "QUIT" => none(Command::Quit),
        "USER" => match rest {
            Some(u) if !u.is_empty() && !u.contains(' ') => Ok(Command::User(u.into())),
            _ => Err(reply::syntax("USER name")),
        },
        "PASS" => match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.into())),
            _ => Err(reply::syntax("PASS password")),
        },
        "AUTH" if extra => Err(reply::syntax("AUTH mechanism [initial-response]")),
        "AUTH" => Ok(Command::Auth {
            mechanism: a1.filter(|m| !m.is_empty()).map(str::to_ascii_uppercase),
            initial: a2.map(str::to_string),
        }),
        "LIST" if a2.is_some() => Err(reply::syntax("LIST [message]")),
        "LIST" => Ok(Command::List(optional(a1, "LIST [message]")?)),
        "UIDL" if a2.is_some() => Err(reply::syntax("UIDL [message]")),
        "UIDL" => Ok(Command::Uidl(optional(a1, "UIDL [message]")?)),
        "RETR" if a2.is_some() => Err(reply::syntax("RETR message")),
        "RETR" => Ok(Command::Retr(number(a1, "RETR message")?)),
        "DELE" if a2.is_some() => Err(reply::syntax("DELE message")),
        "DELE" => Ok(Command::Dele(number(a1, "DELE message")?)),
        "TOP" if extra => Err(reply::syntax("TOP message lines")),
        "TOP" => {
            let n = number(a1, "TOP message lines")?;
            match a2 {
                Some(l)
                    if !l.is_empty() && l.len() <= 12 && l.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    Ok(Command::Top(n, l.parse().unwrap_or(u64::MAX)))
                }
                _ => Err(reply::syntax("TOP message lines")),
            }
        }
        _ => Err(reply::UNKNOWN_COMMAND.into()),
    }
}

/// The line as logged: the password of PASS and AUTH's SASL data never reach a log.
pub fn redact(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("PASS ") {
        "PASS ****".into()
    } else if upper.starts_with("AUTH ") && text.split(' ').count() > 2 {
        let mut w = text.split(' ');
        format!("AUTH {} ****", w.nth(1).unwrap_or_default())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let ok = [
            ("capa", Command::Capa),
            ("STAT", Command::Stat),
            (
                "USER alice@example.test",
                Command::User("alice@example.test".into()),
            ),
            (
                "PASS with spaces ok",
                Command::Pass("with spaces ok".into()),
            ),
            (
                "AUTH plain dGVzdA==",
                Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial: Some("dGVzdA==".into()),
                },
            ),
            (
                "AUTH",
                Command::Auth {
                    mechanism: None,
                    initial: None,
                },
            ),
            ("LIST", Command::List(None)),
            ("list 3", Command::List(Some(3))),
            ("UIDL 12", Command::Uidl(Some(12))),
            ("RETR 1", Command::Retr(1)),
            ("TOP 2 0", Command::Top(2, 0)),
            ("DELE 7", Command::Dele(7)),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("QUIT", Command::Quit),
            ("STLS", Command::Stls),
        ];
        for (line, want) in ok {
            assert_eq!(parse(line.as_bytes()), Ok(want), "{line}");
        }
    }

    #[test]
    fn refuses_bad_lines_with_a_clear_text() {
        let bad = [
            ("XYZZY", "-ERR Unknown command"),
            ("", "-ERR Unknown command"),
            ("RETR", "-ERR Syntax: RETR message"),
            ("RETR x", "-ERR Syntax: RETR message"),
            ("RETR 0", "-ERR No such message"),
            ("RETR -1", "-ERR Syntax: RETR message"),
            ("RETR 99999999999", "-ERR Syntax: RETR message"),
            ("TOP 1", "-ERR Syntax: TOP message lines"),
            ("LIST 1 2", "-ERR Syntax: LIST [message]"),
            ("STAT now", "-ERR Syntax: STAT"),
            ("USER", "-ERR Syntax: USER name"),
            ("NOOP\0", "-ERR Invalid characters in the command"),
        ];
        for (line, want) in bad {
            assert_eq!(parse(line.as_bytes()), Err(want.to_string()), "{line:?}");
        }
        assert_eq!(
            parse(b"USER \xff"),
            Err("-ERR Invalid characters in the command".into())
        );
    }

    #[test]
    fn passwords_are_never_logged() {
        assert_eq!(redact(b"pass hunter2"), "PASS ****");
        assert_eq!(
            redact(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            "AUTH PLAIN ****"
        );
        assert_eq!(redact(b"USER alice"), "USER alice");
    }
}
