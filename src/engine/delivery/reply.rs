//! The replies the outbound client reads: one reply at a time from the shared [`Wire`], each
//! line checked first ([`reply_line`]: a code from 200 to 599, the same code on every line, at
//! most 512 octets a line and 100 lines), then parsed by smtp-proto (at most 4096 octets of
//! text) into a [`Reply`]. Every line received goes to the detailed log. The replies our own
//! server sends are `engine::reply`.

use super::{HostFailure, Log};
use crate::engine::wire::{ReadError, Wire};
use smtp_proto::Response;
use smtp_proto::response::parser::{MAX_RESPONSE_LENGTH, ResponseReceiver};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF.
pub const MAX_REPLY_LINE: usize = 512;
/// The most lines we read of one reply (an EHLO reply has one per extension).
pub const MAX_REPLY_LINES: usize = 100;

/// One reply of the server, as smtp-proto parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code (RFC 3463); `[0, 0, 0]` when the reply has none.
    pub esc: [u8; 3],
    /// The text of the lines, without codes and separators, joined by LF.
    pub message: String,
}

impl From<Response<String>> for Reply {
    fn from(r: Response<String>) -> Reply {
        Reply {
            code: r.code,
            esc: r.esc,
            message: r.message,
        }
    }
}

impl Reply {
    /// The reply as one line for logs and statuses: "250 2.0.0 first / second" (empty lines
    /// left out, control characters shown as `?`).
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut text = self.code.to_string();
        if self.esc != [0, 0, 0] {
            let [class, subject, detail] = self.esc;
            text.push_str(&format!(" {class}.{subject}.{detail}"));
        }
        // smtp-proto turns an empty continuation line ("250-") into two LFs; blank lines say
        // nothing in a status anyway.
        let lines = self.message.split('\n').filter(|l| !l.trim().is_empty());
        for (i, line) in lines.enumerate() {
            let sep = if i == 0 { " " } else { " / " };
            let _ = write!(text, "{sep}{}", Printable(line.as_bytes()));
        }
        text.trim_end().to_string()
    }

    /// A 2xx reply.
    pub(super) fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Reads one (possibly multi-line) reply from `conn`, waiting at most `timeout` for the whole
/// of it (a server trickling lines does not get `timeout` per line); also returns it as received (every line ending in CRLF), for the EHLO parser. Every
/// line is logged (detailed log); `peer` (`host[ip]`) starts every error.
pub(super) async fn read<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Wire<S>,
    peer: &str,
    log: &Log,
    timeout: Duration,
) -> Result<(Reply, Vec<u8>), HostFailure> {
    let until = Instant::now() + timeout;
    let mut code = None;
    let mut raw = Vec::with_capacity(128);
    for n in 1.. {
        if n > MAX_REPLY_LINES {
            return Err(HostFailure(format!(
                "{peer}: reply longer than {MAX_REPLY_LINES} lines"
            )));
        }
        // Each line is read straight onto the end of the reply as received.
        let start = raw.len();
        conn.read_line_into(
            MAX_REPLY_LINE,
            until.saturating_duration_since(Instant::now()),
            &mut raw,
        )
        .await
        .map_err(|e| match e {
            ReadError::TooLong => HostFailure(format!(
                "{peer}: reply line longer than {MAX_REPLY_LINE} octets"
            )),
            ReadError::Closed => HostFailure(format!("{peer}: connection closed by the server")),
            ReadError::Timeout => {
                HostFailure(format!("{peer}: no reply within {} s", timeout.as_secs()))
            }
            ReadError::Io(e) => HostFailure::connection_lost(peer, e),
        })?;
        let line = &raw[start..];
        let (c, last) = reply_line(line).ok_or_else(|| {
            HostFailure(format!(
                "{peer}: malformed reply line `{}`",
                Printable(line)
            ))
        })?;
        if *code.get_or_insert(c) != c {
            return Err(HostFailure(format!(
                "{peer}: multi-line reply changes its code ({} then {c})",
                code.unwrap_or(c)
            )));
        }
        log.detail(format_args!(
            "<<< {c}{}{}",
            if last { " " } else { "-" },
            Printable(line.get(4..).unwrap_or_default())
        ));
        raw.extend_from_slice(b"\r\n");
        if last {
            break;
        }
    }
    let response = ResponseReceiver::default()
        .parse(&mut raw.iter())
        .map_err(|e| match e {
            smtp_proto::Error::ResponseTooLong => HostFailure(format!(
                "{peer}: reply longer than {MAX_RESPONSE_LENGTH} octets"
            )),
            e => HostFailure(format!("{peer}: malformed reply: {e}")),
        })?;
    Ok((Reply::from(response), raw))
}

/// The check each reply line passes before smtp-proto parses the reply: a code from 200 to 599,
/// then a space, a hyphen, or nothing. Returns the code and whether this is the last line.
/// smtp-proto's `ResponseReceiver` alone is more lenient than we want to be: it takes any
/// three digits (999) and reads the code of the first line only, so a multi-line reply that
/// changes its code would pass; the caller compares the codes.
fn reply_line(raw: &[u8]) -> Option<(u16, bool)> {
    let digits = raw.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(200..600).contains(&code) {
        return None;
    }
    match raw.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        Some(_) => None,
    }
}

/// Received octets shown as text safe for logs: invalid UTF-8 and control characters replaced
/// by `?` (formatted only where used: the detailed log line of a reply is made only when that
/// log is kept).
struct Printable<'a>(&'a [u8]);

impl std::fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in String::from_utf8_lossy(self.0).chars() {
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Replies read from an in-memory pipe the "server" has already written to.
    use super::*;
    use crate::engine::events::EventBus;
    use tokio::io::{AsyncWriteExt, DuplexStream, duplex};

    const PEER: &str = "peer.test[192.0.2.1]";

    /// A connection whose server has sent `replies`, and the server's end (kept open).
    async fn wire_after(replies: &str) -> (Wire<DuplexStream>, DuplexStream) {
        let (client, mut server) = duplex(1 << 16);
        server.write_all(replies.as_bytes()).await.unwrap();
        (Wire::new(client), server)
    }

    fn log(events: &EventBus) -> Log {
        Log::new(events, "T", true)
    }

    #[test]
    fn reply_lines_are_checked_before_parsing() {
        assert_eq!(reply_line(b"250 ok"), Some((250, true)));
        assert_eq!(reply_line(b"250-ok"), Some((250, false)));
        assert_eq!(reply_line(b"250"), Some((250, true)));
        assert_eq!(reply_line(b"25 ok"), None);
        assert_eq!(reply_line(b"250x"), None);
        assert_eq!(reply_line(b"999 no"), None);
        assert_eq!(reply_line(b"199 no"), None);
    }

    #[tokio::test]
    async fn replies_are_parsed_by_smtp_proto() {
        let events = EventBus::new();
        let log = log(&events);
        let input = concat!(
            "250-2.0.0 first\r\n250-\r\n250 2.0.0 second\r\n",
            "550 5.7.26 a\x07b\r\n",
            "250\r\n",
            "354 go ahead\r\n",
            "250 999 no\r\n",
        );
        let (mut conn, _server) = wire_after(input).await;
        let t = Duration::from_secs(5);
        let (r, raw) = read(&mut conn, PEER, &log, t).await.unwrap();
        assert_eq!((r.code, r.esc), (250, [2, 0, 0]));
        assert_eq!(r.text(), "250 2.0.0 first / second");
        assert_eq!(raw, b"250-2.0.0 first\r\n250-\r\n250 2.0.0 second\r\n");
        for want in ["550 5.7.26 a?b", "250", "354 go ahead", "250 999 no"] {
            let (r, _) = read(&mut conn, PEER, &log, t).await.unwrap();
            assert_eq!(r.text(), want);
        }
        // Every line is logged as received.
        let l: Vec<String> = events.recent().iter().map(|e| e.kind.to_string()).collect();
        for want in [
            "<<< 250-2.0.0 first",
            "<<< 250-",
            "<<< 550 5.7.26 a?b",
            "<<< 250 ",
        ] {
            assert!(l.iter().any(|l| l.ends_with(want)), "{want}: {l:#?}");
        }
    }

    #[tokio::test]
    async fn a_reply_past_smtp_protos_limit_is_refused() {
        let events = EventBus::new();
        let line = format!("250-{}\r\n", "x".repeat(500));
        let input = format!("{}250 end\r\n", line.repeat(10));
        let (mut conn, _server) = wire_after(&input).await;
        let e = read(&mut conn, PEER, &log(&events), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.0.contains("reply longer than 4096 octets"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let events = EventBus::new();
        let (mut conn, _server) = wire_after("").await;
        // The real waits are minutes (RFC 5321 4.5.3.2); the mechanism is the same.
        let r = read(&mut conn, PEER, &log(&events), Duration::from_secs(1)).await;
        assert_eq!(
            r.unwrap_err().0,
            "peer.test[192.0.2.1]: no reply within 1 s"
        );
    }
}
