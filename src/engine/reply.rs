//! [`Reply`]: an SMTP reply the server sends (code, enhanced status, text), and every such
//! reply named once, in the spirit of mox's `smtp/codes.go`. Handlers and the access gate
//! use these names; no reply text is typed anywhere else. Below both the session and the gate,
//! which produce replies.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// One SMTP reply. `text` starts with the enhanced status code where one applies; a
/// multi-line reply has its lines separated by `\n` (written as `250-...` continuation lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Enhanced status and text, without CRLF.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// The text without its enhanced status code (`4.7.0 `), for a POP3 `-ERR` or an IMAP
    /// `NO`/`BYE` worded from the gate's SMTP reply.
    pub fn plain_text(&self) -> String {
        let t = self.text.as_ref();
        match t.split_once(' ') {
            Some((code, rest)) if code.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                rest.to_string()
            }
            _ => t.to_string(),
        }
    }

    /// A reply with fixed text (for the constants below).
    pub const fn fixed(code: u16, text: &'static str) -> Reply {
        Reply {
            code,
            text: Cow::Borrowed(text),
        }
    }

    /// A reply with text made at run time.
    pub fn new(code: u16, text: String) -> Reply {
        Reply {
            code,
            text: Cow::Owned(text),
        }
    }

    /// A multi-line reply: every line but the last is sent as a `code-` continuation.
    pub fn lines(code: u16, lines: &[String]) -> Reply {
        Reply::new(code, lines.join("\n"))
    }

    /// 4xx and 5xx: counted towards the session's error limit.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The reply as it goes on the wire, CRLF-terminated.
    pub fn wire(&self) -> String {
        self.on_wire().to_string()
    }

    /// The reply as it goes on the wire, to be formatted where it is queued (no string made).
    pub fn on_wire(&self) -> OnWire<'_> {
        OnWire(self)
    }

    /// The reply as one log line (continuation lines joined with " / ").
    pub fn logged(&self) -> String {
        if self.text.contains('\n') {
            self.text.replace('\n', " / ")
        } else {
            format!("{} {}", self.code, self.text)
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// A [`Reply`] formatted as sent: each line `code-text` (`code text` for the last), CRLF
/// after each.
pub struct OnWire<'a>(&'a Reply);

impl fmt::Display for OnWire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = self.0.text.split('\n').peekable();
        while let Some(l) = lines.next() {
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            write!(f, "{}{sep}{l}\r\n", self.0.code)?;
        }
        Ok(())
    }
}

// Session life.

/// 220: the greeting.
pub fn greeting(host: &str) -> Reply {
    Reply::new(220, format!("{host} ESMTP Postern"))
}
/// 250: HELO.
pub fn hello(server: &str, client: &str, ip: IpAddr) -> Reply {
    Reply::new(250, format!("{server} Hello {client} [{ip}]"))
}
/// 250: EHLO, with the extensions offered.
pub fn ehlo(server: &str, client: &str, ip: IpAddr, extensions: &[String]) -> Reply {
    let mut lines = vec![format!("{server} Hello {client} [{ip}]")];
    lines.extend_from_slice(extensions);
    Reply::lines(250, &lines)
}
/// 221: QUIT.
pub const BYE: Reply = Reply::fixed(221, "2.0.0 Bye");
/// 421: graceful shutdown.
pub const SHUTTING_DOWN: Reply =
    Reply::fixed(421, "4.3.2 Service shutting down, closing connection");
/// 421: no command within the command timeout.
pub const COMMAND_TIMEOUT: Reply = Reply::fixed(
    421,
    "4.4.2 Timeout waiting for a command, closing connection",
);
/// 421: no message data within the data timeout or minimum rate.
pub const DATA_TIMEOUT: Reply = Reply::fixed(
    421,
    "4.4.2 Timeout waiting for message data, closing connection",
);
/// 421: the session's error allowance is used up.
pub const TOO_MANY_ERRORS: Reply = Reply::fixed(421, "4.7.0 Too many errors, closing connection");
/// 421: the listener this session came in on was closed (a configuration change).
pub const LISTENER_CLOSED: Reply = Reply::fixed(
    421,
    "4.3.2 This service was closed by the administrator, closing connection",
);
/// 421: the account this session logged in as was removed or its password changed.
pub const LOGIN_REVOKED: Reply = Reply::fixed(
    421,
    "4.7.0 Your login was changed or removed by the administrator, closing connection",
);
/// 421: too many commands that make no progress.
pub const TOO_MANY_JUNK_COMMANDS: Reply = Reply::fixed(
    421,
    "4.7.0 Too many commands without a message, closing connection",
);
/// 421: Max Connections Per Port reached.
pub const TOO_MANY_CONNECTIONS: Reply =
    Reply::fixed(421, "4.7.0 Too many connections, try again later");

// Simple verbs.

/// 250: RSET, NOOP.
pub const OK: Reply = Reply::fixed(250, "2.0.0 OK");
/// 214: HELP.
pub const HELP: Reply = Reply::fixed(
    214,
    "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY STARTTLS AUTH",
);
/// 252: VRFY (never confirms an address).
pub const VRFY: Reply = Reply::fixed(
    252,
    "2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
);
/// 502: EXPN, BDAT, ETRN and the other verbs not offered.
pub const NOT_IMPLEMENTED: Reply = Reply::fixed(502, "5.5.1 Command not implemented");

// Command syntax.

/// 500: a command line over 512 octets.
pub const LINE_TOO_LONG: Reply = Reply::fixed(500, "5.5.2 Line too long");
/// 500: a CR inside a command line.
pub const BARE_CR_IN_COMMAND: Reply = Reply::fixed(500, "5.5.2 Bare CR in command line");
/// 500: a NUL inside a command line.
pub const NUL_IN_COMMAND: Reply = Reply::fixed(500, "5.5.2 NUL in command line");
/// 500: not a command.
pub const UNRECOGNIZED: Reply = Reply::fixed(500, "5.5.2 Command unrecognized");
/// 501: a sender smtp-proto could not parse.
pub const BAD_SENDER_SYNTAX: Reply = Reply::fixed(501, "5.1.7 Bad sender address syntax");
/// 501: a recipient smtp-proto could not parse, or one without a domain.
pub const BAD_RECIPIENT_SYNTAX: Reply = Reply::fixed(501, "5.1.3 Bad recipient address syntax");
/// 501: any other syntax error.
pub const SYNTAX_ERROR: Reply = Reply::fixed(501, "5.5.4 Syntax error");
/// 501: a syntax error smtp-proto described.
pub fn syntax(usage: &str) -> Reply {
    Reply::new(501, format!("5.5.4 Syntax: {usage}"))
}
/// 501: a parameter with a bad value.
pub fn invalid_parameter(param: &str) -> Reply {
    Reply::new(501, format!("5.5.4 Invalid parameter {param}"))
}
/// 555: a parameter we do not know.
pub fn unsupported_parameter(param: &str) -> Reply {
    Reply::new(555, format!("5.5.4 Unsupported parameter {param}"))
}
/// 553: a sender that parses but is not a mailbox we handle.
pub fn bad_sender(why: &str) -> Reply {
    Reply::new(553, format!("5.1.7 Bad sender address: {why}"))
}
/// 553: a recipient that parses but is not a mailbox we handle.
pub fn bad_recipient(why: &str) -> Reply {
    Reply::new(553, format!("5.1.3 Bad recipient address: {why}"))
}

// Sequence.

/// 501: EHLO without a name.
pub const EHLO_SYNTAX: Reply = Reply::fixed(501, "5.5.4 Syntax: EHLO hostname");
/// 503: MAIL before HELO/EHLO.
pub const HELO_FIRST: Reply = Reply::fixed(503, "5.5.1 Send HELO or EHLO first");
/// 503: AUTH before EHLO.
pub const EHLO_FIRST: Reply = Reply::fixed(503, "5.5.1 Send EHLO first");
/// 503: MAIL inside a transaction.
pub const NESTED_MAIL: Reply = Reply::fixed(503, "5.5.1 Nested MAIL command");
/// 503: RCPT or DATA without MAIL.
pub const MAIL_FIRST: Reply = Reply::fixed(503, "5.5.1 Need MAIL command first");
/// 503: DATA without an accepted recipient.
pub const RCPT_FIRST: Reply =
    Reply::fixed(503, "5.5.1 Need RCPT command first (no valid recipients)");

// MAIL and RCPT.

/// 250: MAIL accepted.
pub const SENDER_OK: Reply = Reply::fixed(250, "2.1.0 Sender OK");
/// 250: RCPT accepted.
pub const RECIPIENT_OK: Reply = Reply::fixed(250, "2.1.5 Recipient OK");
/// 555: a MAIL parameter we do not offer.
pub const MAIL_PARAMETER: Reply = Reply::fixed(555, "5.5.4 MAIL parameter not supported");
/// 555: MAIL parameters after HELO.
pub const MAIL_PARAMETER_NEEDS_EHLO: Reply = Reply::fixed(555, "5.5.4 MAIL parameters need EHLO");
/// 555: a RCPT parameter we do not offer.
pub const RCPT_PARAMETER: Reply = Reply::fixed(555, "5.5.4 RCPT parameter not supported");
/// 552: SIZE or the message over the limit.
pub fn too_big(max: u64) -> Reply {
    Reply::new(
        552,
        format!("5.3.4 Message size exceeds fixed maximum message size ({max} octets)"),
    )
}
/// 553: the envelope sender is not the logged-in account's.
pub const SENDER_NOT_OWNED: Reply = Reply::fixed(
    553,
    "5.7.1 Sender address does not belong to the logged-in user",
);
/// 550: the `From:` header names an address the logged-in user may not use
/// (`access.sender_must_match_login`).
pub const FROM_NOT_OWNED: Reply = Reply::fixed(
    550,
    "5.7.1 From: header address does not belong to the logged-in user",
);
/// 550: DMARC failed and the From: domain asks for rejection or quarantine
/// (`auth.dmarc.action` = Refuse).
pub fn dmarc_failed(domain: &str, policy: &str) -> Reply {
    Reply::new(
        550,
        format!("5.7.1 Message refused: it fails the DMARC check of {domain} (policy {policy})"),
    )
}
/// 452: more recipients than `smtp.max_recipients_per_mail` (RFC 5321 4.5.3.1.10).
pub const TOO_MANY_RECIPIENTS: Reply = Reply::fixed(452, "4.5.3 Too many recipients");
/// 550: `<postmaster>` with no postmaster account.
pub const NO_POSTMASTER: Reply = Reply::fixed(550, "5.1.1 No postmaster mailbox here");
/// 550: a local domain without that account.
pub const USER_UNKNOWN: Reply = Reply::fixed(550, "5.1.1 User unknown in local recipient table");
/// 552: RCPT for a local account at or over its Max Account Size, or one the size declared at
/// MAIL (`SIZE=`) would take past it (RFC 3463 5.2.2, as Dovecot and Postfix say it).
pub const MAILBOX_FULL: Reply = Reply::fixed(
    552,
    "5.2.2 Mailbox full: the account has reached its Max Account Size",
);
/// 552 after DATA: the message would take every local recipient past its Max Account Size
/// (and there was no other recipient); also the reason in a failure notice when a queued
/// copy finds the mailbox full.
pub const MESSAGE_OVER_QUOTA: Reply = Reply::fixed(
    552,
    "5.2.2 Mailbox full: this message would take the account past its Max Account Size",
);
/// 550: another domain from a client that may not relay.
pub const RELAY_DENIED: Reply = Reply::fixed(550, "5.7.1 Relaying denied");

// Checks.

/// 554: refused at connect by Access Control (a separate outgoing port).
pub fn access_denied(why: &str) -> Reply {
    Reply::new(554, format!("5.7.1 {why}"))
}
/// 554: listed in DNS block lists.
pub fn dnsbl_listed(ip: IpAddr, zones: &str) -> Reply {
    Reply::new(
        554,
        format!("5.7.1 Service unavailable; client [{ip}] is listed in {zones}"),
    )
}
/// 550: forward-confirmed reverse DNS failed.
pub fn rdns_failed(why: &str) -> Reply {
    Reply::new(550, format!("5.7.25 Reverse DNS check failed: {why}"))
}
/// 550: SPF fail.
pub fn spf_failed(domain: &str, why: &str) -> Reply {
    Reply::new(550, format!("5.7.23 SPF check failed for {domain}: {why}"))
}

// Abuse limits.

/// 421: too many connections from one address.
pub fn too_many_from(ip: IpAddr) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 Too many connections from {ip}, try again later"),
    )
}
/// 421: an address under a block.
pub fn blocked(ip: IpAddr, left: &str) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 {ip} is temporarily blocked, try again in {left}"),
    )
}
/// 421: failed-login lockout.
pub fn locked_out(ip: IpAddr, for_: &str) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 Too many failed login attempts, {ip} is blocked for {for_}"),
    )
}
/// 421: tarpit block after too many refused recipients.
pub fn tarpit_blocked(ip: IpAddr, for_: &str) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 Too many invalid recipients, {ip} is blocked for {for_}"),
    )
}
/// 452: hourly message limit.
pub fn hourly_messages(ip: IpAddr) -> Reply {
    Reply::new(
        452,
        format!("4.7.0 Hourly message limit reached for {ip}, try again later"),
    )
}
/// 452: hourly transfer limit.
pub fn hourly_bytes(ip: IpAddr) -> Reply {
    Reply::new(
        452,
        format!("4.7.0 Hourly transfer limit reached for {ip}, try again later"),
    )
}

// DATA.

/// 354: go ahead.
pub const START_DATA: Reply = Reply::fixed(354, "End data with <CR><LF>.<CR><LF>");
/// 521: a bare CR or LF in DATA (SMTP smuggling); the session closes.
pub const BARE_LINE_ENDING: Reply = Reply::fixed(
    521,
    "5.5.2 Bare CR or LF in message data is not allowed (RFC 5321 2.3.8), closing connection",
);
/// 554: a NUL octet in message data (a smuggling ending at a receiver that strips NULs).
pub const NUL_IN_DATA: Reply =
    Reply::fixed(554, "5.6.0 NUL characters in message data are not allowed");
/// 554: the client sent more behind DATA before the 354 (RFC 2920 makes DATA the last
/// command of a group); the session closes.
pub const PIPELINED_PAST_DATA: Reply = Reply::fixed(
    554,
    "5.5.0 Improper use of SMTP command pipelining (data sent before the 354), closing connection",
);
/// 500: a text line over 1000 octets.
pub const TEXT_LINE_TOO_LONG: Reply =
    Reply::fixed(500, "5.5.2 Message has a line longer than 1000 octets");
/// 554: too many `Received:` fields.
pub const MAIL_LOOP: Reply = Reply::fixed(554, "5.4.6 Too many hops (mail loop?)");
/// 452: the message could not be made safe on disk, or (at MAIL) the disk is nearly full.
pub const STORAGE: Reply = Reply::fixed(452, "4.3.1 Insufficient system storage, try again later");
/// 250: the message is in the queue.
pub fn queued_as(id: &str) -> Reply {
    Reply::new(250, format!("2.0.0 Ok: queued as {id}"))
}
/// 250: the message is in every local mailbox.
pub fn delivered_as(id: &str) -> Reply {
    Reply::new(250, format!("2.0.0 Ok: delivered as {id}"))
}

// STARTTLS.

/// 220: go ahead with the handshake.
pub const TLS_READY: Reply = Reply::fixed(220, "2.0.0 Ready to start TLS");
/// 503: STARTTLS inside TLS.
pub const TLS_ACTIVE: Reply = Reply::fixed(503, "5.5.1 TLS already active");
/// 454: no certificate.
pub const TLS_UNAVAILABLE: Reply = Reply::fixed(454, "4.7.0 TLS not available");

// AUTH.

/// 235: logged in.
pub const AUTH_OK: Reply = Reply::fixed(235, "2.7.0 Authentication successful");
/// 454: every password check is busy.
pub const AUTH_BUSY: Reply = Reply::fixed(
    454,
    "4.7.0 Temporary authentication failure, try again later",
);
/// 535: wrong user or password.
pub const AUTH_INVALID: Reply = Reply::fixed(535, "5.7.8 Authentication credentials invalid");
/// 503: AUTH on a listener where a login grants nothing (the incoming SMTP).
pub const AUTH_NOT_ENABLED: Reply = Reply::fixed(503, "5.5.1 Authentication not enabled");
/// 503: a second AUTH.
pub const ALREADY_AUTHENTICATED: Reply = Reply::fixed(503, "5.5.1 Already authenticated");
/// 503: AUTH inside a transaction.
pub const AUTH_IN_TRANSACTION: Reply =
    Reply::fixed(503, "5.5.1 AUTH not permitted during a mail transaction");
/// 538: AUTH without TLS while `auth_requires_tls` is on.
pub const ENCRYPTION_REQUIRED: Reply = Reply::fixed(
    538,
    "5.7.11 Encryption required for requested authentication mechanism",
);
/// 504: a SASL mechanism we do not offer.
pub const UNKNOWN_MECHANISM: Reply = Reply::fixed(504, "5.5.4 Unrecognized authentication type");
/// 501: the continuation line could not be read.
pub const AUTH_UNREADABLE: Reply = Reply::fixed(501, "5.5.2 Cannot read authentication data");
/// 501: the client sent `*`.
pub const AUTH_CANCELLED: Reply = Reply::fixed(501, "5.0.0 Authentication cancelled");
/// 501: not base64.
pub const AUTH_BAD_BASE64: Reply = Reply::fixed(501, "5.5.2 Invalid base64 data");
/// 501: a PLAIN response without its three parts.
pub const AUTH_BAD_PLAIN: Reply = Reply::fixed(501, "5.5.2 Malformed PLAIN response");
/// 501: credentials that are not UTF-8.
pub const AUTH_NOT_UTF8: Reply = Reply::fixed(501, "5.5.2 Credentials are not UTF-8");
/// 334: a SASL challenge (base64, possibly empty).
pub fn challenge(prompt: &'static str) -> Reply {
    Reply::fixed(334, prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_use_continuations() {
        let r = Reply::lines(250, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(r.wire(), "250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(r.logged(), "a / b / c");
        assert_eq!(OK.wire(), "250 2.0.0 OK\r\n");
        assert!(!OK.is_error() && TOO_MANY_RECIPIENTS.is_error());
    }
}
