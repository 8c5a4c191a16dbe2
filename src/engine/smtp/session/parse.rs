//! The one command parser (shared with the fuzzers): smtp-proto's syntax plus our own rules
//! for what a command line and a mailbox may be, and how a command may appear in the log.

use crate::engine::access::relay;
use crate::engine::reply::{self, Reply};
use crate::engine::store::trace::header_safe;
use smtp_proto::Request;

/// Parses one command line (without its CRLF) as the session does. Besides smtp-proto's
/// syntax: a CR inside the line is refused (smtp-proto would drop it inside a path, changing
/// the address); MAIL and RCPT paths must be mailboxes (printable ASCII, a domain name, as no
/// SMTPUTF8 is offered); the sender comes back in forward-path form (local part re-quoted when
/// it is not a dot-atom), as it will be written to the next hop.
pub fn parse_command(line: &[u8]) -> Result<Request<String>, Reply> {
    if line.contains(&b'\r') {
        return Err(reply::BARE_CR_IN_COMMAND);
    }
    if line.contains(&0) {
        return Err(reply::NUL_IN_COMMAND);
    }
    let mut l = Vec::with_capacity(line.len() + 2);
    l.extend_from_slice(line);
    l.extend_from_slice(b"\r\n");
    let request = Request::parse(&mut l.iter())
        .map_err(|e| parse_error_reply(&e))?
        .into_owned();
    match request {
        Request::Mail { mut from } => {
            if !from.address.is_empty() {
                if let Err(why) = mailbox_error(&from.address) {
                    return Err(reply::bad_sender(why));
                }
                from.address = relay::forward_path(&from.address);
            }
            Ok(Request::Mail { from })
        }
        Request::Rcpt { to } => {
            if !to.address.is_empty()
                && let Err(why) = mailbox_error(&to.address)
            {
                return Err(reply::bad_recipient(why));
            }
            Ok(Request::Rcpt { to })
        }
        other => Ok(other),
    }
}

/// Why `address` (as smtp-proto gives it: unquoted) is not a mailbox we handle, if it is not.
fn mailbox_error(address: &str) -> Result<(), &'static str> {
    let (local, domain) = address.rsplit_once('@').ok_or("no domain")?;
    if !address.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("only printable ASCII is accepted (no SMTPUTF8)");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("the local part must have 1 to 64 characters");
    }
    if !crate::engine::config::validate::is_hostname(domain) {
        return Err("the domain is not a domain name");
    }
    Ok(())
}

/// The reply for a command smtp-proto could not parse.
fn parse_error_reply(e: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error::*;
    match e {
        UnknownCommand => reply::UNRECOGNIZED,
        InvalidSenderAddress => reply::BAD_SENDER_SYNTAX,
        InvalidRecipientAddress => reply::BAD_RECIPIENT_SYNTAX,
        SyntaxError { syntax } => reply::syntax(syntax),
        InvalidParameter { param } => reply::invalid_parameter(param),
        UnsupportedParameter { param } => reply::unsupported_parameter(&header_safe(param)),
        _ => reply::SYNTAX_ERROR,
    }
}

/// The command as it may appear in a log: AUTH data is replaced. (Control characters are
/// escaped where every event is formatted.)
pub fn redact(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_ascii_whitespace();
    if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH")) {
        return match words.next() {
            Some(mech) => format!("AUTH {mech} ****"),
            None => "AUTH".into(),
        };
    }
    text.chars().take(512).collect()
}
