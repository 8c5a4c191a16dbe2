//! Failure notices and delay warnings: RFC 3464 delivery status notifications
//! (`multipart/report; report-type=delivery-status`) sent from the null sender, so a notice
//! can never cause another notice.
//!
//! A notice has three parts: the text for a person (US-ASCII when it is, else UTF-8 in
//! quoted-printable), the `message/delivery-status` fields, and the original's header section.
//! Every header field is folded at spaces to 78 octets where it can be (RFC 5322 2.2.3) and no
//! line of the notice passes 998 octets, however long a server's reply was.
//!
//! [`diagnose`] tells a remote server's reply (`Diagnostic-Code: smtp`, with its
//! `Remote-MTA`) from Postern's own words (`Diagnostic-Code: X-Postern`), by the shapes
//! `engine::delivery` and the queue manager give a recipient's last error.

use super::{Meta, Rcpt, id_text, now_secs};
use crate::engine::config::schedule;
use crate::engine::config::{Config, OutgoingMailsConfig};
use std::net::IpAddr;

/// Where header fields are folded and text is wrapped (RFC 5322 2.1.1: "SHOULD" 78).
const WIDTH: usize = 78;
/// The longest line a message may have, CRLF not counted (RFC 5322 2.1.1 "MUST").
pub const MAX_LINE: usize = 998;
/// Quoted-printable's longest encoded line (RFC 2045 6.7), the soft break's `=` included.
const QP_WIDTH: usize = 76;
/// The most of the original's header section a notice returns.
pub const ORIGINAL_HEAD: usize = 64 * 1024;

/// What a recipient's last error is, for its `Diagnostic-Code` and `Remote-MTA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis<'a> {
    /// A reply of a remote server: the host delivery connected to, as it named it (MX host,
    /// domain map or relay host), and the reply from its three-digit code on.
    Remote {
        /// The host name (or IP address) the reply came from.
        host: &'a str,
        /// The reply, e.g. `550 5.1.1 User unknown`.
        reply: &'a str,
    },
    /// Postern's own words: DNS trouble, a connection that failed, a loop, a local mailbox.
    Own,
}

/// Reads a recipient's last error. A reply of a remote server has one of the two shapes the
/// delivery client gives it: `HOST[IP] said: REPLY (in reply to COMMAND)` (a refused
/// command of a transaction) or `HOST[IP] refused WHAT: REPLY` (a host given up on, then
/// behind our own status code, e.g. `4.4.1 `); the queue manager puts
/// `gave up after N attempts; last error: ` before the last one when it gives up. Anything
/// else (`host[ip]:25: cannot connect`, `4.4.3 MX lookup ...`, `5.4.6 ... loops back`,
/// `4.3.0 cannot write the local mailbox`) is [`Diagnosis::Own`].
pub fn diagnose(err: &str) -> Diagnosis<'_> {
    let err = strip_gave_up(err);
    let err = strip_status(err);
    let Some((host, rest)) = split_peer(err) else {
        return Diagnosis::Own;
    };
    let reply = if let Some(said) = rest.strip_prefix(" said: ") {
        said.rsplit_once(" (in reply to ")
            .filter(|(_, cmd)| cmd.ends_with(')'))
            .map_or(said, |(reply, _)| reply)
    } else if let Some(refused) = rest.strip_prefix(" refused ") {
        match refused.split_once(": ") {
            Some((_, reply)) => reply,
            None => return Diagnosis::Own,
        }
    } else {
        return Diagnosis::Own;
    };
    if is_reply(reply) {
        Diagnosis::Remote { host, reply }
    } else {
        Diagnosis::Own
    }
}

/// `err` without the queue manager's `gave up after N attempts[ in TIME]; last error: `.
fn strip_gave_up(err: &str) -> &str {
    err.strip_prefix("gave up after ")
        .and_then(|r| r.split_once("; last error: "))
        .filter(|(what, _)| {
            what.split_once(" attempts")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map_or(err, |(_, last)| last)
}

/// `err` without a leading enhanced status code (`4.4.1 `) of our own.
fn strip_status(err: &str) -> &str {
    match err.split_once(' ') {
        Some((code, rest)) if is_status_code(code) => rest,
        _ => err,
    }
}

/// `x.y.z` with x 2, 4 or 5 (RFC 3463).
fn is_status_code(w: &str) -> bool {
    let p: Vec<&str> = w.split('.').collect();
    p.len() == 3
        && matches!(p[0], "2" | "4" | "5")
        && p.iter()
            .all(|x| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
}

/// `HOST[IP]` at the start of `s`: the host and what follows the `]`.
fn split_peer(s: &str) -> Option<(&str, &str)> {
    let (host, rest) = s.split_once('[')?;
    let (ip, rest) = rest.split_once(']')?;
    let plain = !host.is_empty() && !host.contains(|c: char| c.is_whitespace() || c == ':');
    (plain && ip.parse::<IpAddr>().is_ok()).then_some((host, rest))
}

/// An SMTP reply as `Reply::text` writes it: a code from 200 to 599, then a space or nothing.
fn is_reply(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && (b'2'..=b'5').contains(&b[0])
        && matches!(b.get(3), None | Some(b' '))
}

/// The Status code of an error text: its first `x.y.z`, or 5.0.0 / 4.0.0.
fn status_of(err: &str, delayed: bool) -> String {
    err.split_whitespace()
        .find(|w| is_status_code(w))
        .map(str::to_string)
        .unwrap_or_else(|| {
            if delayed {
                "4.0.0".into()
            } else {
                "5.0.0".into()
            }
        })
}

/// Breaks `text` at spaces into lines of at most [`WIDTH`] octets; lines after the first
/// start with `indent`. A word too long for a line gets a line of its own, and one that would
/// pass [`MAX_LINE`] is cut there (at a character boundary). Runs of white space and control
/// characters become one space.
fn wrap(text: &str, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let words = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    for word in words {
        if !line.is_empty() {
            if line.len() + 1 + word.len() <= WIDTH {
                line.push(' ');
            } else {
                lines.push(std::mem::replace(&mut line, indent.to_string()));
            }
        }
        let mut rest = word;
        while line.len() + rest.len() > MAX_LINE {
            let mut cut = MAX_LINE - line.len();
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            line.push_str(&rest[..cut]);
            lines.push(std::mem::replace(&mut line, indent.to_string()));
            rest = &rest[cut..];
        }
        line.push_str(rest);
    }
    lines.push(line);
    lines
}

/// One header field, folded (RFC 5322 2.2.3: a fold is CRLF before a space, so unfolding
/// gives the value back, white space runs made one space; a word cut at [`MAX_LINE`] gains
/// a space), with its CRLF.
fn field(name: &str, value: &str) -> String {
    let mut f = wrap(&format!("{name}: {value}"), " ").join("\r\n");
    f.push_str("\r\n");
    f
}

/// `s` for a `message/delivery-status` field, which RFC 3464 keeps to US-ASCII: any other
/// character becomes `?` (the text for a person has it as it was).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// An RFC 5322 date (`Tue, 14 Nov 2023 22:13:20 +0000`) for unix seconds.
fn date(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// When a message still pending will be given up (the time of its last attempt), by the
/// re-send schedule (`config::schedule`): the next attempt at `next_try` (now, if that is
/// past), then one after each wait until `resend_attempts` are made, or until it has waited
/// `give_up_after`. An estimate: slow attempts and connection limits push it back.
fn give_up_time(meta: &Meta, om: &OutgoingMailsConfig, now: u64) -> u64 {
    let start = meta.next_try.max(now);
    let by_attempts = (om.resend_attempts > 0).then(|| {
        (meta.attempts + 1..om.resend_attempts)
            .map(|a| schedule::wait_after(om, a).as_secs())
            .fold(start, u64::saturating_add)
    });
    let by_age = om
        .give_up_after
        .map(|g| meta.created.saturating_add(g.0.as_secs()).max(start));
    match (by_attempts, by_age) {
        (Some(a), Some(g)) => a.min(g),
        (a, g) => a.or(g).unwrap_or(start),
    }
}

/// Quoted-printable (RFC 2045 6.7) of CRLF-ended lines, each encoded line at most
/// [`QP_WIDTH`] characters (soft breaks where needed).
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_terminator("\r\n") {
        let bytes = line.as_bytes();
        let mut len = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal = (b == b' ' && !last) || ((b'!'..=b'~').contains(&b) && b != b'=');
            let token = if literal {
                char::from(b).to_string()
            } else {
                format!("={b:02X}")
            };
            if len + token.len() > QP_WIDTH - 1 {
                out.push_str("=\r\n");
                len = 0;
            }
            out.push_str(&token);
            len += token.len();
        }
        out.push_str("\r\n");
    }
    out
}

/// Appends `p` to `text`, wrapped ([`wrap`]), each line ended by CRLF.
fn paragraph(text: &mut String, p: &str, indent: &str) {
    for line in wrap(p, indent) {
        text.push_str(&line);
        text.push_str("\r\n");
    }
}

/// The part for a person: its header fields and its (encoded) text.
fn human_part(host: &str, intro: &str, rcpts: &[Rcpt]) -> String {
    let mut text = String::new();
    paragraph(
        &mut text,
        &format!("This is the mail system at host {host}."),
        "",
    );
    text.push_str("\r\n");
    paragraph(&mut text, intro, "");
    text.push_str("\r\n");
    for r in rcpts {
        let line = format!("<{}>: {}", r.addr, r.last_error);
        paragraph(&mut text, &line, "    ");
    }
    if text.is_ascii() {
        format!("Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}")
    } else {
        format!(
            "Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n{}",
            quoted_printable(&text)
        )
    }
}

/// The `message/delivery-status` part: the per-message fields, then one block per recipient.
fn status_part(cfg: &Config, meta: &Meta, rcpts: &[Rcpt], delayed: bool, now: u64) -> String {
    let host = &cfg.server.hostname;
    let mut m = String::from("Content-Type: message/delivery-status\r\n\r\n");
    m.push_str(&field("Reporting-MTA", &format!("dns; {host}")));
    m.push_str(&field("X-Postern-Queue-ID", &id_text(meta.id)));
    m.push_str(&field("Arrival-Date", &date(meta.created)));
    for r in rcpts {
        m.push_str("\r\n");
        m.push_str(&field(
            "Final-Recipient",
            &format!("rfc822; {}", ascii(&r.addr)),
        ));
        m.push_str(&field("Action", if delayed { "delayed" } else { "failed" }));
        m.push_str(&field("Status", &status_of(&r.last_error, delayed)));
        if !r.last_error.is_empty() {
            let code = match diagnose(&r.last_error) {
                Diagnosis::Remote { host: mta, reply } => {
                    m.push_str(&field("Remote-MTA", &format!("dns; {}", ascii(mta))));
                    format!("smtp; {}", ascii(reply))
                }
                Diagnosis::Own => format!("X-Postern; {}", ascii(&r.last_error)),
            };
            m.push_str(&field("Diagnostic-Code", &code));
        }
        // A failure notice is made right after the attempt that settled it; a delay warning
        // comes from a timer, and the queue keeps no time of the last attempt, so it has none.
        if !delayed && meta.attempts > 0 {
            m.push_str(&field("Last-Attempt-Date", &date(now)));
        }
        if delayed {
            let until = give_up_time(meta, &cfg.outgoing_mails, now);
            m.push_str(&field("Will-Retry-Until", &date(until)));
        }
    }
    m
}

/// The original's header section: at most `limit` octets, cut after a whole line.
fn headers_of(message: &[u8], limit: usize) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(message.len());
    if end <= limit {
        return &message[..end];
    }
    let cut = message[..limit]
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .map_or(0, |p| p + 2);
    &message[..cut]
}

/// Builds the complete notice (headers and body, CRLF line ends) for `rcpts` of `meta`:
/// a failure notice, or with `delayed` a delay warning. `original` is the message, or at
/// least its header section.
pub fn notice(
    cfg: &Config,
    meta: &Meta,
    rcpts: &[Rcpt],
    original: &[u8],
    delayed: bool,
) -> Vec<u8> {
    build(cfg, meta, rcpts, original, delayed, now_secs())
}

/// [`notice`] made at `now` (unix seconds).
fn build(
    cfg: &Config,
    meta: &Meta,
    rcpts: &[Rcpt],
    original: &[u8],
    delayed: bool,
    now: u64,
) -> Vec<u8> {
    let host = &cfg.server.hostname;
    let id = id_text(meta.id);
    let boundary = format!("postern-{id}");
    let (subject, kind, intro) = if delayed {
        (
            "Delivery delayed: your message has not been delivered yet",
            "delay",
            "Your message has not been delivered yet to the recipients below. This is only a \
             warning; Postern keeps trying and will tell you if it gives up.",
        )
    } else {
        (
            "Undelivered Mail Returned to Sender",
            "fail",
            "Your message could not be delivered to the recipients below. Postern has given \
             up; the reasons are given for each recipient.",
        )
    };
    let mut m = String::new();
    m.push_str(&field(
        "From",
        &format!("Mail Delivery System <MAILER-DAEMON@{host}>"),
    ));
    m.push_str(&field("To", &format!("<{}>", meta.from)));
    m.push_str(&field("Subject", subject));
    m.push_str(&field("Date", &date(now)));
    m.push_str(&field("Message-ID", &format!("<{id}.{kind}.dsn@{host}>")));
    m.push_str(&field("Auto-Submitted", "auto-replied"));
    m.push_str(&field("MIME-Version", "1.0"));
    m.push_str(&field(
        "Content-Type",
        &format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\""),
    ));
    m.push_str("\r\nThis is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str(&human_part(host, intro, rcpts));
    m.push_str(&format!("\r\n--{boundary}\r\n"));
    m.push_str(&status_part(cfg, meta, rcpts, delayed, now));
    m.push_str(&format!("\r\n--{boundary}\r\n"));
    let head = headers_of(original, ORIGINAL_HEAD);
    m.push_str("Content-Type: text/rfc822-headers\r\n");
    if !head.is_ascii() {
        m.push_str("Content-Transfer-Encoding: 8bit\r\n");
    }
    m.push_str("\r\n");
    let mut out = m.into_bytes();
    out.extend_from_slice(head);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::HumanDuration;
    use crate::engine::queue::RcptState;

    const NOW: u64 = 1_700_000_600;

    fn config() -> Config {
        let mut c = Config::default();
        c.server.hostname = "mx.test".into();
        c
    }

    fn meta() -> Meta {
        Meta {
            id: 0xAB,
            created: 1_700_000_000,
            from: "alice@example.test".into(),
            rcpts: vec![],
            attempts: 5,
            next_try: 0,
            held: false,
            warned: false,
            size: 10,
            client: "127.0.0.1".into(),
            subject: "".into(),
        }
    }

    fn rcpt(addr: &str, last_error: &str) -> Rcpt {
        Rcpt {
            addr: addr.into(),
            state: RcptState::Failed,
            last_error: last_error.into(),
            notified: false,
        }
    }

    fn make(rcpts: &[Rcpt], delayed: bool) -> String {
        let original = b"Subject: hi\r\n\r\nbody\r\n";
        String::from_utf8(build(&config(), &meta(), rcpts, original, delayed, NOW)).unwrap()
    }

    /// The value of the first `name:` field after `from` in `n`, unfolded.
    fn unfolded(n: &str, from: usize, name: &str) -> Option<String> {
        let start = from + n[from..].find(&format!("\r\n{name}: "))? + 2;
        let rest = &n[start + name.len() + 2..];
        let mut end = 0;
        loop {
            let eol = end + rest[end..].find("\r\n")?;
            end = eol + 2;
            if !rest[end..].starts_with([' ', '\t']) {
                return Some(rest[..eol].replace("\r\n", ""));
            }
        }
    }

    #[test]
    fn failure_notice_is_a_delivery_status_report() {
        let n = make(
            &[rcpt(
                "bob@far.test",
                "mx.far.test[192.0.2.7] said: 550 5.1.1 User unknown (in reply to RCPT TO)",
            )],
            false,
        );
        assert!(n.contains(
            "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="
        ));
        assert!(n.contains(
            "Final-Recipient: rfc822; bob@far.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Remote-MTA: dns; mx.far.test\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
             Last-Attempt-Date: Tue, 14 Nov 2023 22:23:20 +0000\r\n"
        ));
        assert!(!n.contains("Will-Retry-Until"), "{n}");
        assert!(n.contains("Content-Type: text/plain; charset=us-ascii\r\n\r\n"));
        assert!(n.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n"));
        assert!(
            !n.contains("body"),
            "only the headers of the original are returned"
        );
    }

    #[test]
    fn replies_and_own_words_are_told_apart() {
        let remote = |host, reply| Diagnosis::Remote { host, reply };
        for (err, want) in [
            (
                "mx.far.test[192.0.2.7] said: 550 5.1.1 User unknown (in reply to RCPT TO)",
                remote("mx.far.test", "550 5.1.1 User unknown"),
            ),
            (
                "mx[2001:db8::1] said: 452 too many (in reply to x) (in reply to end of DATA)",
                remote("mx", "452 too many (in reply to x)"),
            ),
            (
                "gave up after 3 attempts; last error: 127.0.0.1[127.0.0.1] said: 450 4.2.0 \
                 busy (in reply to MAIL FROM)",
                remote("127.0.0.1", "450 4.2.0 busy"),
            ),
            (
                "gave up after 5 attempts; last error: 4.4.1 mx.far.test[192.0.2.7] refused \
                 greeting: 554 5.7.1 go away",
                remote("mx.far.test", "554 5.7.1 go away"),
            ),
            (
                "4.4.2 relay.isp.test[192.0.2.9] refused MAIL FROM: 421 4.3.2 closing",
                remote("relay.isp.test", "421 4.3.2 closing"),
            ),
        ] {
            assert_eq!(diagnose(err), want, "{err}");
        }
        for own in [
            "4.4.1 mx.far.test: host has no address",
            "gave up after 5 attempts; last error: 4.4.1 127.0.0.1[127.0.0.1]:25: cannot \
             connect: Connection refused (os error 111)",
            "4.4.1 mx[192.0.2.7]: no reply within 300 s",
            "4.4.1 mx[192.0.2.7]: malformed reply line `hello 550 x`",
            "5.4.6 mail for far.test loops back to myself (mx.test[127.0.0.1]:25)",
            "4.3.0 cannot write the local mailbox: disk full",
            "5.3.4 message of 9 octets is larger than the 5 octets mx[192.0.2.7] accepts",
            "4.4.3 MX lookup for far.test: timed out",
            "mx[192.0.2.7] said: hello (in reply to RCPT TO)",
            "mx[not an ip] said: 550 no (in reply to RCPT TO)",
            "",
        ] {
            assert_eq!(diagnose(own), Diagnosis::Own, "{own}");
        }
    }

    #[test]
    fn own_words_are_an_x_postern_diagnostic_without_remote_mta() {
        let err = "gave up after 1 attempts; last error: 4.4.1 far.test: host has no address";
        let n = make(&[rcpt("bob@far.test", err)], false);
        let d = unfolded(&n, 0, "Diagnostic-Code").unwrap();
        assert_eq!(d, format!("X-Postern; {err}"));
        assert!(!n.contains("Remote-MTA"), "{n}");
        assert!(n.contains("Status: 4.4.1\r\n"), "{n}");
    }

    #[test]
    fn long_replies_are_folded_within_998_octets() {
        // What `Reply::text` makes of a reply of 100 lines of 512 octets: lines joined by " / ".
        let line = "lorem ipsum dolor ".repeat(28);
        let lines = vec![line.trim_end(); 100].join(" / ");
        let reply = format!("550 5.7.1 {lines}");
        let word = "y".repeat(3000);
        let rcpts = [
            rcpt(
                "bob@far.test",
                &format!("mx[192.0.2.7] said: {reply} (in reply to end of DATA)"),
            ),
            rcpt("carol@far.test", &format!("4.4.1 {word}")),
        ];
        for delayed in [false, true] {
            let n = make(&rcpts, delayed);
            for l in n.split("\r\n") {
                assert!(l.len() <= MAX_LINE, "a line of {} octets", l.len());
                assert!(!l.contains('\n') && !l.contains('\r'));
            }
            // Folded at spaces: unfolding gives the reply back.
            let d = unfolded(&n, 0, "Diagnostic-Code").unwrap();
            assert_eq!(d, format!("smtp; {reply}"));
            // Header lines keep to 78 octets when there are spaces to fold at.
            let status = n.find("message/delivery-status").unwrap();
            let carol = n.find("Final-Recipient: rfc822; carol").unwrap();
            let bob = &n[status..carol];
            assert!(bob.split("\r\n").all(|l| l.len() <= WIDTH), "{bob}");
            // A word longer than a line is cut there, not left whole.
            let d = unfolded(&n, carol, "Diagnostic-Code").unwrap();
            assert_eq!(d.replace(' ', ""), format!("X-Postern;4.4.1{word}"));
        }
    }

    #[test]
    fn wrap_cuts_a_word_at_a_character_boundary() {
        let word = "é".repeat(700); // 1400 octets
        let lines = wrap(&format!("Name: {word}"), " ");
        assert_eq!(lines[0], "Name:");
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), format!("Name:{word}"));
        assert_eq!(wrap("a  b\r\n\tc", ""), ["a b c"]);
    }

    #[test]
    fn non_ascii_text_is_utf8_in_quoted_printable() {
        let err = "mx[192.0.2.7] said: 550 5.1.1 Benutzer unbekannt – Postfach gelöscht \
                   (in reply to RCPT TO)";
        let n = make(&[rcpt("bob@far.test", err)], false);
        assert!(
            n.contains(
                "Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ),
            "{n}"
        );
        assert!(n.contains("gel=C3=B6scht"), "{n}");
        assert!(n.is_ascii(), "the whole notice stays 7-bit: {n}");
        let d = unfolded(&n, 0, "Diagnostic-Code").unwrap();
        assert_eq!(d, "smtp; 550 5.1.1 Benutzer unbekannt ? Postfach gel?scht");
        // Every encoded line within 76, and decoding gives the text back.
        let start = n.find("quoted-printable\r\n\r\n").unwrap() + 20;
        let end = start + n[start..].find("\r\n--").unwrap();
        let qp = &n[start..end];
        assert!(qp.split("\r\n").all(|l| l.len() <= QP_WIDTH), "{qp}");
        let text = decode_qp(qp);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(
            words.join(" ").contains("Postfach gelöscht (in reply to"),
            "{text}"
        );
    }

    /// A plain quoted-printable decoder, for the test.
    fn decode_qp(qp: &str) -> String {
        let joined = qp.replace("=\r\n", "");
        let b = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' {
                out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoted_printable_keeps_to_its_rules() {
        assert_eq!(quoted_printable("a=b \r\nc\r\n"), "a=3Db=20\r\nc\r\n");
        let long = quoted_printable(&format!("{}\r\n", "ü".repeat(40)));
        assert!(long.split("\r\n").all(|l| l.len() <= QP_WIDTH), "{long}");
        assert_eq!(decode_qp(&long), format!("{}\r\n", "ü".repeat(40)));
    }

    #[test]
    fn delay_warning_says_until_when_it_retries() {
        let mut cfg = config();
        cfg.outgoing_mails.resend_attempts = 5;
        cfg.outgoing_mails.resend_delay = HumanDuration::from_secs(3600);
        let mut m = meta();
        // Never tried yet: first attempt at once, four more an hour apart.
        m.attempts = 0;
        m.next_try = m.created;
        assert_eq!(
            give_up_time(&m, &cfg.outgoing_mails, m.created),
            m.created + 4 * 3600
        );
        // Two attempts made, the next one due in ten minutes: it and two more.
        m.attempts = 2;
        m.next_try = NOW + 600;
        let until = give_up_time(&m, &cfg.outgoing_mails, NOW);
        assert_eq!(until, NOW + 600 + 2 * 3600);
        let r = Rcpt {
            state: RcptState::Pending,
            ..rcpt("bob@far.test", "4.4.1 far.test: host has no address")
        };
        let n =
            String::from_utf8(build(&cfg, &m, &[r], b"Subject: hi\r\n\r\n", true, NOW)).unwrap();
        assert!(n.contains("Action: delayed\r\nStatus: 4.4.1\r\n"), "{n}");
        assert!(
            n.contains(&format!("Will-Retry-Until: {}\r\n", date(until))),
            "{n}"
        );
        assert!(!n.contains("Last-Attempt-Date"), "{n}");
        // Past the configured attempts (lowered since): the next attempt is the last.
        m.attempts = 9;
        assert_eq!(give_up_time(&m, &cfg.outgoing_mails, NOW), NOW + 600);
    }

    #[test]
    fn the_returned_header_section_ends_with_a_whole_line() {
        let original = b"A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody";
        assert_eq!(headers_of(original, 1024), b"A: 1\r\nB: 2\r\nC: 3\r\n");
        assert_eq!(headers_of(original, 13), b"A: 1\r\nB: 2\r\n");
        assert_eq!(headers_of(original, 12), b"A: 1\r\nB: 2\r\n");
        assert_eq!(headers_of(original, 11), b"A: 1\r\n");
    }
}
