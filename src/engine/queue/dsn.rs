//! Failure notices and delay warnings: RFC 3464 delivery status notifications
//! (`multipart/report; report-type=delivery-status`) sent from the null sender, so a notice
//! can never cause another notice.

use super::{Meta, Rcpt, id_text};

/// The first `limit` octets of the header section of `message`.
fn headers_of(message: &[u8], limit: usize) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(message.len());
    &message[..end.min(limit)]
}

/// The Status code of an error text: its first `x.y.z`, or 5.0.0 / 4.0.0.
fn status_of(err: &str, delayed: bool) -> String {
    err.split_whitespace()
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && matches!(p[0], "2" | "4" | "5")
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            if delayed {
                "4.0.0".into()
            } else {
                "5.0.0".into()
            }
        })
}

/// The most of the original's header section a notice returns.
pub const ORIGINAL_HEAD: usize = 64 * 1024;

/// Builds the complete notice (headers and body, CRLF line ends).
pub fn notice(host: &str, meta: &Meta, rcpts: &[Rcpt], original: &[u8], delayed: bool) -> Vec<u8> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let arrival = time::OffsetDateTime::from_unix_timestamp(meta.created as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default();
    let boundary = format!("postern-{}", id_text(meta.id));
    let id = id_text(meta.id);
    let (subject, action, intro) = if delayed {
        (
            "Delivery delayed: your message has not been delivered yet",
            "delayed",
            "Your message has not been delivered yet to the recipients below. This is only a\r\nwarning; Postern keeps trying and will tell you if it gives up.",
        )
    } else {
        (
            "Undelivered Mail Returned to Sender",
            "failed",
            "Your message could not be delivered to the recipients below. Postern has given up;\r\nthe reasons are given for each recipient.",
        )
    };
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", meta.from));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!(
        "Message-ID: <{id}.{}.dsn@{host}>\r\n",
        if delayed { "delay" } else { "fail" }
    ));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at host {host}.\r\n\r\n{intro}\r\n\r\n"
    ));
    for r in rcpts {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            r.addr,
            r.last_error.replace(['\r', '\n'], " ")
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!(
        "Reporting-MTA: dns; {host}\r\nX-Postern-Queue-ID: {id}\r\nArrival-Date: {arrival}\r\n"
    ));
    for r in rcpts {
        m.push_str("\r\n");
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", r.addr));
        m.push_str(&format!("Action: {action}\r\n"));
        m.push_str(&format!(
            "Status: {}\r\n",
            status_of(&r.last_error, delayed)
        ));
        if !r.last_error.is_empty() {
            m.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                r.last_error.replace(['\r', '\n'], " ")
            ));
        }
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(headers_of(original, ORIGINAL_HEAD));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::RcptState;

    #[test]
    fn failure_notice_is_a_delivery_status_report() {
        let meta = Meta {
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
        };
        let rcpt = Rcpt {
            addr: "bob@far.test".into(),
            state: RcptState::Failed,
            last_error: "550 5.1.1 User unknown".into(),
            notified: false,
        };
        let n = String::from_utf8(notice(
            "mx.test",
            &meta,
            &[rcpt],
            b"Subject: hi\r\n\r\nbody\r\n",
            false,
        ))
        .unwrap();
        assert!(n.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(n.contains(
            "Final-Recipient: rfc822; bob@far.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(n.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n"));
        assert!(
            !n.contains("body"),
            "only the headers of the original are returned"
        );
    }
}
