//! Trace header fields (RFC 5321 4.4), built here once: `Received:` for a message taken in
//! by a session, and `Return-Path:`/`Delivered-To:` for the copy written to a local mailbox,
//! whether it comes straight from a session or out of the queue; and the `Date:` and
//! `Message-ID:` a submitted message lacks (RFC 6409 8.2, 8.3).

use std::net::IpAddr;

/// What a `Received:` field says about the session that took the message in.
#[derive(Debug, Clone)]
pub struct Received {
    /// Our host name (`by`).
    pub host: String,
    /// The client's HELO/EHLO name (`from`).
    pub helo: String,
    /// The client's address.
    pub ip: IpAddr,
    /// The client used EHLO.
    pub esmtp: bool,
    /// The session runs over TLS.
    pub tls: bool,
    /// The client logged in.
    pub auth: bool,
    /// The message id (`id`).
    pub id: String,
}

impl Received {
    /// The field, CRLF-terminated; `for_rcpt` names the recipient when there is one.
    pub fn field(&self, for_rcpt: Option<&str>) -> String {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        // RFC 3848 protocol types.
        let proto = match (self.esmtp, self.tls, self.auth) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let ip = match self.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("IPv6:{v6}"),
        };
        let helo = header_safe(&self.helo);
        let to = for_rcpt
            .map(|r| format!("\r\n\tfor <{r}>"))
            .unwrap_or_default();
        format!(
            "Received: from {helo} ([{ip}])\r\n\tby {} (Postern) with {proto} id {}{to};\r\n\t{date}\r\n",
            self.host, self.id
        )
    }
}

/// `Return-Path:` and `Delivered-To:` for the copy of a message from `from` (empty for the
/// null sender) delivered to the local account `address`, CRLF-terminated.
pub fn delivery_fields(from: &str, address: &str) -> String {
    format!("Return-Path: <{from}>\r\nDelivered-To: {address}\r\n")
}

/// The `Date:` and `Message-ID:` fields a message submitted by a logged-in client lacks
/// (RFC 6409 8.2, 8.3: mail without them is refused or junked by the big receivers), CRLF
/// terminated; `head` is the start of the message, `host` names our server in the id.
/// Nothing is added when the header section does not end within `head` (then it cannot be
/// told whether the fields are there).
pub fn submission_fields(head: &[u8], host: &str) -> String {
    let end = if head.starts_with(b"\r\n") {
        Some(0)
    } else {
        head.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 2)
    };
    let Some(end) = end else {
        return String::new();
    };
    let has = |name: &str| {
        head[..end].split(|&b| b == b'\n').any(|line| {
            line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && line[name.len()..].trim_ascii_start().starts_with(b":")
        })
    };
    let mut out = String::new();
    if !has("Date") {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        out.push_str(&format!("Date: {date}\r\n"));
    }
    if !has("Message-ID") {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let id: u64 = rand::random();
        out.push_str(&format!(
            "Message-ID: <{now:x}.{id:016x}@{}>\r\n",
            header_safe(host).replace(['<', '>', ' '], "")
        ));
    }
    out
}

/// `X-Postern-Warning:` fields for the warnings the access checks tagged a message with.
pub fn warning_fields(tags: &[String]) -> String {
    tags.iter()
        .map(|t| format!("X-Postern-Warning: {}\r\n", header_safe(t)))
        .collect()
}

/// Printable ASCII only, at most 200 characters: a client-supplied value made safe to put in
/// a header field.
pub fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_names_protocol_and_recipient() {
        let r = Received {
            host: "mx.test".into(),
            helo: "client\r\nX-Evil: 1".into(),
            ip: "2001:db8::1".parse().unwrap(),
            esmtp: true,
            tls: true,
            auth: true,
            id: "S1.1".into(),
        };
        let f = r.field(Some("a@x.test"));
        assert!(f.starts_with("Received: from client??X-Evil: 1 ([IPv6:2001:db8::1])\r\n\tby mx.test (Postern) with ESMTPSA id S1.1\r\n\tfor <a@x.test>;\r\n\t"), "{f}");
        assert!(f.ends_with("\r\n") && f.matches("\r\n").count() == 4, "{f}");
        assert_eq!(
            delivery_fields("", "b@x.test"),
            "Return-Path: <>\r\nDelivered-To: b@x.test\r\n"
        );
    }
}

#[cfg(test)]
mod submission_tests {
    use super::submission_fields;

    #[test]
    fn date_and_message_id_are_added_only_when_missing() {
        let both = submission_fields(
            b"From: a@b.c\r\nSubject: x\r\n\r\nDate: in the body\r\n",
            "mail.test",
        );
        let lines: Vec<&str> = both.split("\r\n").collect();
        assert!(lines[0].starts_with("Date: "), "{both}");
        assert!(
            lines[1].starts_with("Message-ID: <") && lines[1].ends_with("@mail.test>"),
            "{both}"
        );
        assert_eq!(lines.len(), 3, "{both}");
        let none = submission_fields(
            b"date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMESSAGE-ID : <x@y>\r\n\r\n",
            "mail.test",
        );
        assert_eq!(none, "");
        let id_only = submission_fields(b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n", "h");
        assert!(id_only.starts_with("Message-ID: <"), "{id_only}");
        // A folded line mentioning Date is not a Date field.
        let folded =
            submission_fields(b"Subject: a\r\n Date: no\r\nMessage-ID: <x@y>\r\n\r\n", "h");
        assert!(folded.starts_with("Date: "), "{folded}");
        // Header section not within what was read: nothing is added.
        assert_eq!(submission_fields(b"Subject: a very long header", "h"), "");
        // No header fields at all.
        assert!(submission_fields(b"\r\nbody\r\n", "h").starts_with("Date: "));
    }
}
