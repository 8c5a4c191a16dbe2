//! A queued message's Subject, for the queue list: read once when the message is queued, from
//! the first [`HEAD`] octets of its header section only (never the body), its Subject field
//! alone decoded by mail-parser (RFC 2047 encoded words, folded lines), cut to [`MAX_CHARS`]
//! and stripped of control characters so a list or a log line shows it as one plain line.

use crate::engine::store::body::{field_alone, header_section};
use mail_parser::MessageParser;

/// How much of the message is read for its header section.
pub const HEAD: usize = 16 * 1024;

/// Longest subject kept, in characters.
pub const MAX_CHARS: usize = 200;

/// The decoded Subject of a message whose first octets are `head`; empty when it has none.
pub fn subject_of(head: &[u8]) -> String {
    let head = &head[..head.len().min(HEAD)];
    // Only the header section (a cut-off head is parsed as it is), and of it only the Subject
    // field (the last one, as mail-parser would take it from the whole section).
    let Some(one) = field_alone(header_section(head), "Subject") else {
        return String::new();
    };
    let Some(msg) = MessageParser::new().parse_headers(&one[..]) else {
        return String::new();
    };
    let Some(s) = msg.subject() else {
        return String::new();
    };
    let mut out = String::new();
    for (n, c) in s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .enumerate()
    {
        if n == MAX_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_encoded_folded_and_missing() {
        assert_eq!(
            subject_of(b"From: a@b\r\nSubject: Hello there\r\n\r\nbody"),
            "Hello there"
        );
        assert_eq!(
            subject_of(b"Subject: =?UTF-8?B?w6lsw6h2ZQ==?= =?ISO-8859-1?Q?caf=E9?=\r\n\r\n"),
            "élèvecafé"
        );
        assert_eq!(subject_of(b"Subject: one\r\n two\r\n\r\n"), "one two");
        assert_eq!(subject_of(b"From: a@b\r\n\r\nSubject: in the body\r\n"), "");
        assert_eq!(subject_of(b""), "");
    }

    #[test]
    fn bounded_and_one_line() {
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(1000));
        let s = subject_of(long.as_bytes());
        assert_eq!(s.chars().count(), MAX_CHARS + 1);
        assert_eq!(subject_of(b"Subject: a\x1bb\tc\r\n\r\n"), "a b c");
    }
}
