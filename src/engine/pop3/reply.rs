//! Every POP3 reply text, named once (as `engine::reply` does for SMTP). Response codes in
//! brackets are RFC 2449's extended codes: `[IN-USE]` and `[LOGIN-DELAY]` (RFC 2449),
//! `[SYS/TEMP]`, `[SYS/PERM]` and `[AUTH]` (RFC 3206).

/// `+OK` greeting.
pub fn greeting(host: &str) -> String {
    format!("+OK {host} POP3 server ready")
}
/// After STLS: start the handshake.
pub const STLS_READY: &str = "+OK Begin TLS negotiation";
/// CAPA's first line.
pub const CAPA: &str = "+OK Capability list follows";
/// USER accepted (the password decides).
pub const USER_OK: &str = "+OK Send your password";
/// AUTH continuation (an empty challenge).
pub const AUTH_CONTINUE: &str = "+ ";
/// Logged in.
pub fn logged_in(count: usize, size: u64) -> String {
    format!("+OK Logged in, {count} messages ({size} octets)")
}
/// STAT.
pub fn stat(count: usize, size: u64) -> String {
    format!("+OK {count} {size}")
}
/// LIST without an argument.
pub fn list(count: usize, size: u64) -> String {
    format!("+OK {count} messages ({size} octets)")
}
/// LIST/UIDL of one message: `+OK n value`.
pub fn one(n: usize, value: &str) -> String {
    format!("+OK {n} {value}")
}
/// UIDL without an argument.
pub const UIDL: &str = "+OK Unique-ID listing follows";
/// RETR.
pub fn retr(size: u64) -> String {
    format!("+OK {size} octets")
}
/// TOP.
pub const TOP: &str = "+OK Top of message follows";
/// DELE.
pub fn deleted(n: usize) -> String {
    format!("+OK Message {n} deleted")
}
/// RSET.
pub fn reset(count: usize, size: u64) -> String {
    format!("+OK {count} messages ({size} octets)")
}
/// NOOP.
pub const NOOP: &str = "+OK";
/// QUIT in the AUTHORIZATION state.
pub const BYE: &str = "+OK Bye";
/// QUIT after the UPDATE state.
pub fn updated(deleted: usize, left: usize) -> String {
    format!("+OK Bye: {deleted} messages deleted, {left} left")
}

/// A command we do not know.
pub const UNKNOWN_COMMAND: &str = "-ERR Unknown command";
/// A command not valid in this state.
pub const WRONG_STATE: &str = "-ERR Command not valid in this state";
/// Arguments missing or malformed.
pub fn syntax(usage: &str) -> String {
    format!("-ERR Syntax: {usage}")
}
/// The command line was over the limit.
pub const LINE_TOO_LONG: &str = "-ERR Line too long";
/// A command line with a NUL or other control characters.
pub const BAD_CHARACTERS: &str = "-ERR Invalid characters in the command";
/// Too many bad commands.
pub const TOO_MANY_ERRORS: &str = "-ERR Too many errors, closing the connection";
/// Too many commands in one session.
pub const TOO_MANY_COMMANDS: &str = "-ERR Too many commands, closing the connection";
/// Idle time-out.
pub const TIMEOUT: &str = "-ERR Idle time-out, closing the connection";
/// The engine is stopping.
pub const SHUTTING_DOWN: &str = "-ERR [SYS/TEMP] Server shutting down";
/// The listener was closed by a configuration change.
pub const LISTENER_CLOSED: &str = "-ERR [SYS/TEMP] Service no longer offered on this port";
/// A refusal at accept (too many connections, blocked IP), with the gate's text.
pub fn refused(text: &str) -> String {
    format!("-ERR [SYS/TEMP] {text}")
}

/// STLS when TLS is running.
pub const TLS_ACTIVE: &str = "-ERR TLS is already active";
/// STLS without a certificate, or turned off.
pub const TLS_UNAVAILABLE: &str = "-ERR TLS is not available";
/// A login before TLS where it is required.
pub const TLS_REQUIRED: &str = "-ERR [AUTH] Logins need TLS: use STLS or the SSL port";
/// PASS without USER.
pub const USER_FIRST: &str = "-ERR Send USER first";
/// Wrong user or password.
pub const AUTH_FAILED: &str = "-ERR [AUTH] Invalid user name or password";
/// An IP locked out or blocked (the gate's text follows).
pub fn blocked(text: &str) -> String {
    format!("-ERR [AUTH] {text}")
}
/// Every password check is busy.
pub const AUTH_BUSY: &str = "-ERR [SYS/TEMP] Server busy, try again later";
/// A SASL mechanism we do not offer.
pub const UNKNOWN_MECHANISM: &str = "-ERR Unsupported authentication mechanism";
/// The client cancelled AUTH with `*`.
pub const AUTH_CANCELLED: &str = "-ERR AUTH cancelled";
/// The SASL data was not base64 of `authzid NUL user NUL password` in UTF-8.
pub const AUTH_MALFORMED: &str = "-ERR Malformed AUTH PLAIN response";
/// Another POP3 session has the mailbox.
pub const IN_USE: &str = "-ERR [IN-USE] Mailbox is in use by another POP3 session";
/// The mailbox could not be read.
pub const MAILBOX_ERROR: &str = "-ERR [SYS/TEMP] Mailbox cannot be opened, try again later";
/// The account was changed or removed during the session.
pub const LOGIN_REVOKED: &str = "-ERR [AUTH] The account has changed, log in again";

/// A message number that is not in the list.
pub const NO_SUCH_MESSAGE: &str = "-ERR No such message";
/// A message marked deleted.
pub fn already_deleted(n: usize) -> String {
    format!("-ERR Message {n} is deleted")
}
/// A message that vanished from disk during the session.
pub const MESSAGE_GONE: &str = "-ERR [SYS/TEMP] Message is no longer available";
/// The deletions could not all be made.
pub const UPDATE_FAILED: &str = "-ERR [SYS/TEMP] Some deleted messages could not be removed";
