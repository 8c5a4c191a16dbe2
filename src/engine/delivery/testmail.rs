//! A test mail sent to our own listener, as a mail client of this server would send it: the
//! window's "Send Test Mail" uses it. It is the outbound client ([`Session`]) pointed at
//! 127.0.0.1 and our own port: greeting, EHLO, STARTTLS when offered (our own certificate is
//! accepted, as towards MX hosts: it is our own server), AUTH as the chosen account when a
//! password is given, one transaction. The result is typed: the server's 250 after the data
//! with the queue id it names, or the stage that failed and the server's reply text. What
//! happens to the mail afterwards (local delivery, the queue) is for the caller to follow.

use super::client::{CONNECT_TIMEOUT, HostFailure, Login, Params, Session, TlsPolicy};
use super::{Log, RcptStatus};
use crate::engine::events::EventBus;
use crate::engine::store::body::Body;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The longest a test mail may take, from connect to the reply after the data.
pub const TEST_MAIL_TIME_LIMIT: Duration = Duration::from_secs(120);

/// One test mail.
#[derive(Debug, Clone)]
pub struct TestMail {
    /// The listener to hand it to (loopback and our port).
    pub addr: SocketAddr,
    /// Our name in EHLO.
    pub helo: String,
    /// Envelope sender.
    pub from: String,
    /// The one recipient.
    pub to: String,
    /// AUTH as this account, when a password was typed (kept only for this send).
    pub login: Option<Login>,
    /// The whole message, CRLF line ends.
    pub message: Vec<u8>,
}

/// The server took the mail: its reply after the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The reply as one line ("250 2.0.0 Ok: queued as 0123...").
    pub reply: String,
    /// What the reply says became of it.
    pub outcome: Taken,
}

/// What a 250 after the data says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// "delivered as ID": written to the local mailbox(es) already.
    Delivered(String),
    /// "queued as ID": in the outgoing queue, to be followed by its id.
    Queued(String),
    /// Another server's wording (no id to follow).
    Other,
}

/// Why a test mail was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestMailError {
    /// Nothing listens there, or the connection broke; the text says which.
    #[error("{0}")]
    Connection(String),
    /// The server refused the greeting, EHLO, STARTTLS or AUTH (its reply), or offers no
    /// login while a password was given.
    #[error("{0}")]
    Session(String),
    /// The server refused the sender, the recipient or the message: its reply.
    #[error("{0}")]
    Refused(String),
}

/// Sends `t`; log lines go to the SMTP Out view under the session name "test-mail".
pub async fn send(t: &TestMail, events: &EventBus) -> Result<Accepted, TestMailError> {
    let log = Log::new(events, "test-mail", true);
    let deadline = Instant::now() + TEST_MAIL_TIME_LIMIT;
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(t.addr)).await {
        Err(_) => {
            return Err(TestMailError::Connection(format!(
                "{}: connection timed out",
                t.addr
            )));
        }
        Ok(Err(e)) => {
            return Err(TestMailError::Connection(format!(
                "{}: cannot connect: {e}",
                t.addr
            )));
        }
        Ok(Ok(s)) => s,
    };
    let p = Params {
        helo: &t.helo,
        host: "localhost",
        ip: t.addr.ip(),
        tls: TlsPolicy::Opportunistic,
        login: t.login.as_ref(),
        verify: None,
        deadline,
    };
    let mut s =
        Session::open(Box::new(tcp), &p, &log)
            .await
            .map_err(|e| match HostFailure::from(e) {
                HostFailure(text) if text.contains(": connection lost: ") => {
                    TestMailError::Connection(text)
                }
                HostFailure(text) => TestMailError::Session(text),
            })?;
    let body = Body::from_bytes(t.message.clone());
    let eight_bit = t.message.iter().any(|b| *b >= 0x80);
    let r = s
        .transaction(&t.from, std::slice::from_ref(&t.to), &body, eight_bit, None)
        .await;
    s.quit().await;
    match r {
        Err((HostFailure(text), _)) => Err(TestMailError::Connection(text)),
        Ok(st) => match st.into_iter().next() {
            Some(RcptStatus::Delivered(reply)) => Ok(Accepted {
                outcome: taken(&reply),
                reply,
            }),
            Some(RcptStatus::Temporary(text) | RcptStatus::Permanent(text)) => {
                Err(TestMailError::Refused(text))
            }
            None => Err(TestMailError::Connection(
                "no answer for the recipient".into(),
            )),
        },
    }
}

/// What our own 250 after the data says ([`crate::engine::reply::queued_as`] and
/// `delivered_as`).
fn taken(reply: &str) -> Taken {
    let id = |marker: &str| {
        reply.find(marker).map(|i| {
            reply[i + marker.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
    };
    if let Some(id) = id("queued as ") {
        Taken::Queued(id)
    } else if let Some(id) = id("delivered as ") {
        Taken::Delivered(id)
    } else {
        Taken::Other
    }
}

/// A short test message: `From:`, `To:`, `Subject:`, `Date:`, `Message-ID:` and `text`, CRLF
/// line ends (the text's own line ends are made CRLF).
pub fn message(from: &str, to: &str, subject: &str, text: &str, host: &str) -> Vec<u8> {
    let safe = crate::engine::store::trace::header_safe;
    let mut m = format!(
        "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\n",
        safe(from),
        safe(to),
        encoded_word(subject)
    );
    m.push_str(&crate::engine::store::trace::submission_fields(
        b"\r\n", host,
    ));
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    for line in text.lines() {
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// `text` as a header field body: as it is when printable ASCII, else RFC 2047 encoded words
/// (UTF-8, base64, at most 45 octets each so that a word stays under 75 characters), folded.
fn encoded_word(text: &str) -> String {
    use base64::Engine as _;
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return text;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            let b = base64::engine::general_purpose::STANDARD.encode(w.as_bytes());
            format!("=?utf-8?B?{b}?=")
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_id_is_read_from_our_replies() {
        let q = crate::engine::reply::queued_as("00AB").logged();
        assert_eq!(taken(&q), Taken::Queued("00AB".into()), "{q}");
        assert_eq!(
            taken("250 2.0.0 Ok: delivered as 12"),
            Taken::Delivered("12".into())
        );
        assert_eq!(taken("250 2.0.0 taken"), Taken::Other);
    }

    #[test]
    fn the_message_has_the_fields_a_receiver_wants() {
        let m = String::from_utf8(message(
            "a@b.c",
            "d@e.f",
            "Postern test mail",
            "hi\nthere",
            "h",
        ))
        .unwrap();
        assert!(
            m.contains("\r\nDate: ") && m.contains("\r\nMessage-ID: <"),
            "{m}"
        );
        assert!(m.ends_with("\r\n\r\nhi\r\nthere\r\n"), "{m}");
        assert!(m.contains("\r\nSubject: Postern test mail\r\n"), "{m}");
    }

    #[test]
    fn a_subject_beyond_ascii_is_encoded_and_decodes_back() {
        let subject = "Prüfung: Grüße aus Köln, ein längerer Betreff über viele Wörter";
        let m = message("a@b.c", "d@e.f", subject, "x", "h");
        assert!(m.is_ascii());
        let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
        assert_eq!(parsed.subject(), Some(subject));
    }
}
