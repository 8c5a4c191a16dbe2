//! Reading one IMAP command off the wire: its lines and literals, within limits, before
//! imap-codec parses the whole. A line ending in `{N}` announces a synchronising literal: the
//! server answers `+ OK` (or refuses) and reads exactly N octets; `{N+}` (LITERAL+, RFC 7888)
//! is sent at once without waiting. Limits: [`MAX_LINE`] per line, [`MAX_LITERAL`] per
//! literal in any command but APPEND, [`MAX_APPEND`] for APPEND's message, [`MAX_COMMAND`]
//! for everything but APPEND's message together.

use crate::engine::listener::Stream;
use crate::engine::wire::{ReadError, Wire};
use std::time::Duration;

/// Longest line of a command (between literals), CRLF included.
pub const MAX_LINE: usize = 8192;
/// Longest literal of a command other than APPEND (a mailbox name, a search string, a
/// password).
pub const MAX_LITERAL: u64 = 64 * 1024;
/// Longest message APPEND takes (it is held in memory while it is stored).
pub const MAX_APPEND: u64 = 64 * 1024 * 1024;
/// Longest command, literals other than APPEND's message included.
pub const MAX_COMMAND: usize = 256 * 1024;

/// A command as read: its bytes for the parser, and its first line for the log.
pub struct Raw {
    /// Every octet of the command, CRLFs and literals included.
    pub bytes: Vec<u8>,
    /// The first line (before any literal), for the log and for error replies.
    pub first: Vec<u8>,
}

impl Raw {
    /// The tag (the first word), or `*` when there is none.
    pub fn tag(&self) -> String {
        let t: String = self
            .first
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
            .iter()
            .take(64)
            .map(|&b| b as char)
            .filter(|c| {
                c.is_ascii_graphic() && !matches!(c, '{' | '"' | '\\' | '%' | '*' | '(' | ')' | '+')
            })
            .collect();
        if t.is_empty() { "*".into() } else { t }
    }

    /// The first line for the log, with what follows LOGIN or AUTHENTICATE's mechanism
    /// replaced: passwords never reach a log line.
    pub fn redacted(&self) -> String {
        let line = String::from_utf8_lossy(&self.first);
        let mut words = line.splitn(4, ' ');
        let (tag, verb, arg) = (
            words.next().unwrap_or(""),
            words.next().unwrap_or(""),
            words.next(),
        );
        let cut: String = if verb.eq_ignore_ascii_case("LOGIN") {
            format!("{tag} {verb} <redacted>")
        } else if verb.eq_ignore_ascii_case("AUTHENTICATE") {
            format!("{tag} {verb} {} <redacted>", arg.unwrap_or(""))
        } else {
            line.chars().take(200).collect()
        };
        cut
    }
}

/// Why no command could be read.
pub enum Failure {
    /// A line over [`MAX_LINE`] or a command over [`MAX_COMMAND`]: answered `BAD`, the rest
    /// of the command dropped. The tag, when known.
    TooLong(String),
    /// A synchronising literal over the limit: refused before the client sent it.
    LiteralTooBig(String),
    /// A non-synchronising literal over the limit: its octets are on their way and cannot be
    /// refused, so the session ends.
    NonSyncTooBig(String),
    /// The connection failed, closed or timed out.
    Wire(ReadError),
}

/// `{N}` or `{N+}` at the end of a line: (N, non-synchronising).
pub fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let rest = line.strip_suffix(b"}")?;
    let open = rest.iter().rposition(|&b| b == b'{')?;
    let mut digits = &rest[open + 1..];
    let nonsync = digits.last() == Some(&b'+');
    if nonsync {
        digits = &digits[..digits.len() - 1];
    }
    // `~{N}` (literal8, BINARY) has the same shape after the tilde.
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, nonsync))
}

/// Why [`line`] returned no line.
enum Long {
    /// The line was over [`MAX_LINE`]: read to its end and dropped; its first octets.
    Head(Vec<u8>),
    /// The connection failed, closed or timed out.
    Wire(ReadError),
}

/// One line without its CRLF, as `Wire::read_line` (the whole line within `timeout`), but an
/// over-long line keeps its first octets, so the `BAD` can carry the client's tag.
async fn line(wire: &mut Wire<Box<dyn Stream>>, timeout: Duration) -> Result<Vec<u8>, Long> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut head: Option<Vec<u8>> = None;
    loop {
        let pending = wire.pending();
        if let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let mut l = pending[..i].to_vec();
            wire.consume(i + 1);
            if let Some(h) = head {
                return Err(Long::Head(h));
            }
            if i + 1 > MAX_LINE {
                l.truncate(64);
                return Err(Long::Head(l));
            }
            if l.last() == Some(&b'\r') {
                l.pop();
            }
            return Ok(l);
        }
        if pending.len() > MAX_LINE {
            if head.is_none() {
                head = Some(pending[..64].to_vec());
            }
            let n = pending.len();
            wire.consume(n);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        wire.fill(left, crate::engine::wire::LINE_CHUNK)
            .await
            .map_err(Long::Wire)?;
    }
}

/// Reads one command: lines and literals until a line without a literal at its end.
pub async fn command(wire: &mut Wire<Box<dyn Stream>>, timeout: Duration) -> Result<Raw, Failure> {
    let mut raw = Raw {
        bytes: Vec::new(),
        first: Vec::new(),
    };
    let mut append = false;
    loop {
        let line = match line(wire, timeout).await {
            Ok(l) => l,
            Err(Long::Head(head)) => {
                if raw.first.is_empty() {
                    raw.first = head;
                }
                return Err(Failure::TooLong(raw.tag()));
            }
            Err(Long::Wire(e)) => return Err(Failure::Wire(e)),
        };
        if raw.first.is_empty() && raw.bytes.is_empty() {
            raw.first = line.clone();
            let verb: Vec<u8> = line
                .split(|&b| b == b' ')
                .skip(1)
                .find(|w| !w.eq_ignore_ascii_case(b"UID"))
                .unwrap_or_default()
                .to_ascii_uppercase();
            append = verb == b"APPEND";
        }
        raw.bytes.extend_from_slice(&line);
        raw.bytes.extend_from_slice(b"\r\n");
        let Some((n, nonsync)) = literal_at_end(&line) else {
            return Ok(raw);
        };
        let limit = if append { MAX_APPEND } else { MAX_LITERAL };
        if n > limit || (!append && raw.bytes.len() as u64 + n > MAX_COMMAND as u64) {
            return Err(if nonsync {
                Failure::NonSyncTooBig(raw.tag())
            } else {
                Failure::LiteralTooBig(raw.tag())
            });
        }
        if !append && raw.bytes.len() > MAX_COMMAND {
            return Err(Failure::TooLong(raw.tag()));
        }
        if !nonsync {
            wire.queue("+ OK\r\n");
            wire.flush().await.map_err(|e| Failure::Wire(e.into()))?;
        }
        let n = n as usize;
        raw.bytes.reserve(n);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = 0;
        while got < n {
            let pending = wire.pending();
            let take = pending.len().min(n - got);
            raw.bytes.extend_from_slice(&pending[..take]);
            wire.consume(take);
            got += take;
            if got < n {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                wire.fill(left, (n - got).min(64 * 1024))
                    .await
                    .map_err(Failure::Wire)?;
            }
        }
        wire.shrink();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_found_at_the_end_only() {
        assert_eq!(literal_at_end(b"a APPEND INBOX {12}"), Some((12, false)));
        assert_eq!(literal_at_end(b"a LOGIN {5+}"), Some((5, true)));
        assert_eq!(literal_at_end(b"a APPEND INBOX ~{3}"), Some((3, false)));
        assert_eq!(literal_at_end(b"a SEARCH {x}"), None);
        assert_eq!(literal_at_end(b"a NOOP {}"), None);
        assert_eq!(literal_at_end(b"a NOOP"), None);
    }
}
