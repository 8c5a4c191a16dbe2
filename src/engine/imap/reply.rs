//! Every IMAP reply text the server sends, named once (the tagged and untagged status
//! lines; data responses are built by the session and serialised by imap-codec).

/// The greeting's text.
pub const GREETING: &str = "Postern IMAP4rev2 server ready";
/// Tagged OK texts.
pub const DONE: &str = "completed";
/// Command unknown or arguments invalid.
pub const BAD_SYNTAX: &str = "Command unknown or arguments invalid";
/// A command in the wrong state, or one Postern does not implement (SORT, THREAD, ...).
pub const WRONG_STATE: &str = "Command not supported or not allowed in this state";
/// A line or command over the limit.
pub const TOO_LONG: &str = "[TOOBIG] Line or command too long";
/// A synchronising literal over the limit.
pub const LITERAL_TOO_BIG: &str = "[TOOBIG] Literal too big";
/// A non-synchronising literal over the limit (the session ends).
pub const NONSYNC_TOO_BIG: &str = "[TOOBIG] Non-synchronising literal too big";
/// Login refused before TLS.
pub const PRIVACY_REQUIRED: &str = "[PRIVACYREQUIRED] Log in over TLS (STARTTLS or the SSL port)";
/// Wrong password or unknown user.
pub const AUTH_FAILED: &str = "[AUTHENTICATIONFAILED] Invalid credentials";
/// The password check is busy (too many at once).
pub const AUTH_BUSY: &str = "[UNAVAILABLE] Try again later";
/// AUTHENTICATE with a mechanism we lack.
pub const UNKNOWN_MECHANISM: &str = "Unsupported authentication mechanism";
/// AUTHENTICATE cancelled by `*`.
pub const AUTH_CANCELLED: &str = "Authentication cancelled";
/// AUTHENTICATE data that is not PLAIN.
pub const AUTH_MALFORMED: &str = "Malformed authentication data";
/// STARTTLS when TLS is on already.
pub const TLS_ACTIVE: &str = "TLS is already active";
/// STARTTLS without a certificate or with Use Explicit SSL off.
pub const TLS_UNAVAILABLE: &str = "[UNAVAILABLE] TLS not available";
/// STARTTLS accepted.
pub const STARTTLS_GO: &str = "Begin TLS negotiation now";
/// The mailbox does not exist.
pub const NO_MAILBOX: &str = "[NONEXISTENT] No such mailbox";
/// COPY/MOVE/APPEND to a mailbox that does not exist.
pub const TRY_CREATE: &str = "[TRYCREATE] No such mailbox";
/// APPEND or COPY that would take the account past its Max Account Size (RFC 9208).
pub const OVER_QUOTA: &str = "[OVERQUOTA] Mailbox is full (Max Account Size)";
/// GETQUOTA of a root the account does not have (RFC 9208; an unlimited account has none).
pub const NO_QUOTA_ROOT: &str = "[NONEXISTENT] No such quota root";
/// SETQUOTA: the limit is the administrator's.
pub const QUOTA_FIXED: &str = "[NOPERM] Max Account Size is set by the administrator";
/// CREATE of an existing mailbox.
pub const EXISTS: &str = "[ALREADYEXISTS] Mailbox already exists";
/// A name we cannot store (dots, INBOX/..., control characters).
pub const BAD_NAME: &str = "[CANNOT] Invalid mailbox name (no dots, no empty levels)";
/// DELETE or RENAME of INBOX.
pub const INBOX_FIXED: &str = "[CANNOT] INBOX cannot be deleted or renamed";
/// A disk operation failed.
pub const SERVER_BUG: &str = "[SERVERBUG] Mailbox operation failed";
/// A change in a read-only (EXAMINEd) mailbox.
pub const READ_ONLY: &str = "[READ-ONLY] Mailbox is read-only";
/// The configuration changed and the login no longer holds.
pub const LOGIN_REVOKED: &str = "Login no longer valid";
/// Idle time-out.
pub const TIMEOUT: &str = "Idle time-out";
/// Engine shutdown.
pub const SHUTTING_DOWN: &str = "Server shutting down";
/// The listener was closed.
pub const LISTENER_CLOSED: &str = "Listener closed";
/// Too many bad commands.
pub const TOO_MANY_ERRORS: &str = "Too many errors";
/// LOGOUT.
pub const LOGOUT: &str = "Logging out";
/// IDLE accepted.
pub const IDLING: &str = "idling";
/// The message a FETCH asked for was expunged by another session.
pub const EXPUNGED: &str = "[EXPUNGEISSUED] Some messages were expunged meanwhile";
/// The selected folder's UID list was lost and made again.
pub const UIDVALIDITY_CHANGED: &str = "Mailbox UIDVALIDITY changed, please reconnect";
/// LOGIN or AUTHENTICATE succeeded (after the CAPABILITY code).
pub const LOGGED_IN: &str = "Logged in";
/// SELECT's PERMANENTFLAGS line.
pub const PERMANENT_FLAGS: &str = "Flags permitted";
/// SELECT's UIDVALIDITY line.
pub const UIDS_VALID: &str = "UIDs valid";
/// SELECT's UIDNEXT line.
pub const UIDNEXT: &str = "Predicted next UID";
/// SELECT's UNSEEN line (IMAP4rev1).
pub const FIRST_UNSEEN: &str = "First unseen";
/// EXAMINE's tagged OK.
pub const EXAMINED: &str = "[READ-ONLY] EXAMINE completed";
/// SELECT's tagged OK.
pub const SELECTED: &str = "[READ-WRITE] SELECT completed";
/// MOVE's untagged OK with COPYUID.
pub const MOVED: &str = "Moved";
/// Anything but DONE during IDLE.
pub const EXPECTED_DONE: &str = "Expected DONE";
/// A sequence number beyond the folder.
pub const BAD_SEQUENCE: &str = "Invalid message sequence number";
