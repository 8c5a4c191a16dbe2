//! Postern's configuration: the settings of the SMTP Settings dialog (and later the Access
//! Control and Outgoing Mails dialogs) as one RON file.
//!
//! `Config` is the serde shape of the file; [`validate`] turns it into a list of field errors
//! keyed by dotted path; [`file`] loads and saves it atomically; [`keys`] reads and writes single
//! dotted keys for `postern config get/set`; [`edit`] changes the file under a lock (the
//! domain, account and relay-user operations, with typed errors).

pub mod duration;
pub mod edit;
pub mod file;
pub mod keys;
mod mailbox;
pub mod ranges;
pub mod schedule;
mod sections;
pub mod size;
pub mod validate;

pub use duration::HumanDuration;
pub use edit::EditError;
pub use file::{ConfigError, load, load_or_create, save};
pub use mailbox::{
    Imap, ImapConfig, MailServiceConfig, PlaintextLogin, Pop3, Pop3Config, ServiceDefaults,
};
pub use sections::*;
pub use validate::{FieldError, validate};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    /// Identity of this server.
    pub server: ServerConfig,
    /// The SMTP Settings dialog.
    pub smtp: SmtpConfig,
    /// Outgoing SMTP Access Control: who may relay.
    pub access: AccessConfig,
    /// Abuse and spam defences.
    pub abuse: AbuseConfig,
    /// The Outgoing Mails dialog: the queue and how it delivers.
    pub outgoing_mails: OutgoingMailsConfig,
    /// Message authentication: DKIM signing of the mail our domains send.
    pub auth: AuthConfig,
    /// The POP3 dialog: reading mail over POP3.
    pub pop3: Pop3Config,
    /// The IMAP4 dialog: reading mail over IMAP.
    pub imap: ImapConfig,
    /// The daily log files.
    pub logs: LogsConfig,
    /// Local domains: mail for these is delivered to local mailboxes, never relayed.
    pub domains: Vec<String>,
    /// Local accounts (`user@domain`, domain must be in `domains`) with argon2 password hashes.
    pub accounts: Vec<Account>,
}

/// `auth.*`: message authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// DKIM signing of mail leaving through the queue (`engine::dkim`), and verification of
    /// inbound mail's signatures.
    pub dkim: DkimConfig,
    /// DMARC (RFC 7489) evaluation of inbound mail and what a failing `p=quarantine` or
    /// `p=reject` gets.
    pub dmarc: DmarcConfig,
}

/// `auth.dkim.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// Sign mail whose `From:` is in a local domain when it leaves through the queue (keys
    /// are made for every local domain either way).
    pub enabled: bool,
    /// Also sign with an Ed25519 key (RFC 8463), a second signature beside the RSA one.
    pub ed25519: bool,
    /// Verify the DKIM signatures of inbound mail (from clients that neither logged in nor
    /// are Safe IPs, for local accounts); the results go into `Authentication-Results:`.
    pub verify: bool,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            enabled: true,
            ed25519: false,
            verify: true,
        }
    }
}

/// `auth.dmarc.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmarcConfig {
    /// Evaluate DMARC on inbound mail (needs `auth.dkim.verify`) and honour a failing
    /// message's `p=quarantine`/`p=reject` with `action`; the result is in
    /// `Authentication-Results:` either way.
    pub enabled: bool,
    /// What a message failing DMARC under `p=quarantine` or `p=reject` gets: refused at the
    /// end of DATA (`550 5.7.1`), or delivered with an `X-Postern-Warning:` (the default: a
    /// desktop server should not lose mail to a sender's misconfigured DNS).
    pub action: Action,
}

impl Default for DmarcConfig {
    fn default() -> Self {
        DmarcConfig {
            enabled: true,
            action: Action::Tag,
        }
    }
}

/// `logs.*`: the daily files in `DATA/logs` (the live log panes always get every event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// The lowest severity written to the files.
    pub level: LogLevel,
    /// Days of files kept; older ones are deleted (0 = no limit).
    pub retention_days: u32,
    /// The files together at most this many octets: the oldest are deleted first, and when
    /// today's file alone reaches it, its further lines are dropped until tomorrow (0 = no
    /// limit).
    pub max_total_size: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            level: LogLevel::Info,
            retention_days: 14,
            max_total_size: 200 * 1024 * 1024,
        }
    }
}

/// A severity, for `logs.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Everything, protocol detail included (every command and reply).
    Debug,
    /// Normal operation and up.
    Info,
    /// Refusals and degradations and up.
    Warn,
    /// Failures only.
    Error,
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The name used in the greeting, EHLO, `Received:` and the self-signed certificate.
    pub hostname: String,
}

/// `smtp.*`: the SMTP Settings dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Incoming SMTP: accepts mail for local accounts only.
    pub incoming: ListenerConfig,
    /// Outgoing SMTP: where mail clients submit mail.
    pub outgoing: OutgoingConfig,
    /// Simultaneous connections per listening port; one more gets `421 4.7.0`.
    pub max_connections_per_port: u32,
    /// Recipients accepted in one transaction (RFC 5321 asks for at least 100).
    pub max_recipients_per_mail: u32,
    /// Largest message accepted, in octets (advertised with SIZE).
    pub max_message_size: u64,
    /// Failed commands after which a session is closed with `421`.
    pub max_errors_per_session: u32,
    /// Free space (octets) the data directory keeps in reserve: below
    /// `max(1.5 × max_message_size, min_free_space)` free, MAIL is answered `452 4.3.1`, so a
    /// full disk turns mail away before it is sent rather than failing it after DATA.
    pub min_free_space: u64,
    /// Commands that make no progress (NOOP, RSET, VRFY, HELP, a repeated HELO/EHLO) allowed
    /// between two accepted messages; one more gets `421` (Postfix's junk command limit).
    pub max_junk_commands: u32,
    /// Session timeouts (RFC 5321 4.5.3.2).
    pub timeouts: TimeoutConfig,
    /// Slowest message transfer accepted, in octets per second beyond `timeouts.data`
    /// (0 = no minimum): a client trickling DATA to hold a connection is cut off.
    pub min_data_rate: u64,
    /// Certificates and TLS policy.
    pub tls: TlsConfig,
}

/// `smtp.incoming.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// TCP port.
    pub port: u16,
    /// Listen Only on IP: empty = every address; an IP, or a host name resolved at bind time.
    pub listen_ip: String,
}

/// `smtp.outgoing.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutgoingConfig {
    /// Enable Outgoing SMTP.
    pub enabled: bool,
    /// TCP port; may equal the incoming port.
    pub port: u16,
    /// Listen Only on IP, as for incoming.
    pub listen_ip: String,
}

/// `smtp.timeouts.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// Waiting for the next command line, whole (RFC 5321: at least 5 minutes).
    pub command: HumanDuration,
    /// Waiting for the next block of message data (RFC 5321: 3 minutes).
    pub data: HumanDuration,
}

/// `smtp.tls.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; empty = a self-signed certificate kept in the data directory.
    pub certificate: String,
    /// PEM private key; empty together with `certificate`.
    pub key: String,
    /// Port for implicit TLS (465 style); `None` = off.
    pub implicit_port: Option<u16>,
    /// Refuse AUTH (and do not advertise it) on a connection that is not encrypted.
    pub auth_requires_tls: bool,
}

/// One local account.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// `user@domain`, lower case.
    pub address: String,
    /// PHC string of an argon2 hash; never the password itself.
    pub password: String,
    /// Max Account Size: octets all its folders may hold (`store::mailbox::quota`); 0 (or
    /// absent from the file) = unlimited. Mail that would go past it is refused with
    /// `552 5.2.2`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_size: u64,
}

/// Whether an optional number is at its default (left out of the file).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: system_hostname(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            incoming: ListenerConfig {
                port: 25,
                listen_ip: String::new(),
            },
            outgoing: OutgoingConfig::default(),
            max_connections_per_port: 100,
            max_recipients_per_mail: 100,
            max_message_size: 25 * 1024 * 1024,
            max_errors_per_session: 10,
            max_junk_commands: 100,
            min_free_space: 100 * 1024 * 1024,
            timeouts: TimeoutConfig::default(),
            min_data_rate: 1024,
            tls: TlsConfig::default(),
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            port: 25,
            listen_ip: String::new(),
        }
    }
}

impl Default for OutgoingConfig {
    fn default() -> Self {
        OutgoingConfig {
            enabled: false,
            port: 2525,
            listen_ip: String::new(),
        }
    }
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            command: HumanDuration::from_secs(300),
            data: HumanDuration::from_secs(180),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: String::new(),
            key: String::new(),
            implicit_port: None,
            auth_requires_tls: true,
        }
    }
}

impl Config {
    /// Whether `domain` (any case, trailing dot allowed) is one of the local domains.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = normalize_domain(domain);
        self.domains.iter().any(|x| normalize_domain(x) == d)
    }

    /// The account with this address, if any (case-insensitive).
    pub fn account(&self, address: &str) -> Option<&Account> {
        let a = normalize_address(address);
        self.accounts.iter().find(|x| x.address == a)
    }
}

/// Lower case, without a trailing dot: the form domains are compared and stored in.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

/// `user@domain` in the form accounts are stored in (lower case, domain normalised).
pub fn normalize_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((user, domain)) => format!("{}@{}", user.to_lowercase(), normalize_domain(domain)),
        None => address.to_lowercase(),
    }
}

/// This machine's host name, or "localhost" when it cannot be read.
fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end])
            && !s.is_empty()
        {
            return s.to_string();
        }
    }
    "localhost".to_string()
}
