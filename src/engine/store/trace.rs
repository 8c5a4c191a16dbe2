//! Trace header fields (RFC 5321 4.4), built here once: `Received:` for a message taken in
//! by a session, and `Return-Path:`/`Delivered-To:` for the copy written to a local mailbox,
//! whether it comes straight from a session or out of the queue.

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
