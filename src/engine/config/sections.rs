//! The configuration sections of the Access Control, abuse and Outgoing Mails dialogs.

use super::HumanDuration;
use serde::{Deserialize, Serialize};

/// `access.*`: Outgoing SMTP Access Control. With nothing enabled the outgoing SMTP is an
/// open relay (allowed, but reported loudly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct AccessConfig {
    /// Enable SMTP Authentication.
    pub smtp_auth: SmtpAuthConfig,
    /// Enable IP Range Control.
    pub ip_range: IpRangeConfig,
    /// Block IP addresses assigned to this computer (against spoofing).
    pub block_own_ips: bool,
    /// Safe IPs: always allowed, overruling every restriction and every abuse block.
    pub safe_ips: Vec<String>,
    /// Allow IP addresses assigned to this computer (treated as Safe IPs).
    pub allow_own_ips: bool,
    /// Authenticated senders may only use their own address in MAIL FROM.
    pub sender_must_match_login: bool,
}

/// `access.smtp_auth.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpAuthConfig {
    /// Relaying needs a login.
    pub enabled: bool,
    /// Allow Any Accounts Login Details (true) or Allow Only The Following (false).
    pub allow_any_account: bool,
    /// Allow Only The Following: user name.
    pub only_user: String,
    /// Allow Only The Following: argon2 hash of the password.
    pub only_password: String,
}

/// `access.ip_range.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct IpRangeConfig {
    /// Relaying needs a client address in `ranges`.
    pub enabled: bool,
    /// Single addresses, CIDR blocks and `start-end` ranges, IPv4 and IPv6.
    pub ranges: Vec<String>,
}

/// Refuse, or accept and mark with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Refuse with a 5xx.
    Refuse,
    /// Accept and add an `X-Postern-Warning:` header.
    Tag,
}

/// `abuse.*`: limits and checks from the Ocean and Ability manuals. Safe IPs are exempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbuseConfig {
    /// Simultaneous connections from one IP (0 = no limit).
    pub max_connections_per_ip: u32,
    /// IPv6 clients count as one per network of this prefix length (a host is handed a /64,
    /// so counting each address alone would give it unlimited connections and guesses).
    pub ipv6_prefix: u8,
    /// Failed-login lockout (anti-hammering).
    pub lockout: LockoutConfig,
    /// Slowing down clients that try many bad recipients.
    pub tarpit: TarpitConfig,
    /// Messages and bytes per IP per hour (0 = no limit).
    pub transfer: TransferConfig,
    /// DNS block lists.
    pub rbl: RblConfig,
    /// SPF check of the MAIL FROM domain.
    pub spf: CheckConfig,
    /// Reverse DNS / HELO check.
    pub rdns: CheckConfig,
}

/// `abuse.lockout.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// On or off.
    pub enabled: bool,
    /// Failed AUTH attempts ...
    pub failures: u32,
    /// ... within this window ...
    pub window: HumanDuration,
    /// ... block the IP for this long.
    pub block_for: HumanDuration,
}

/// `abuse.tarpit.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TarpitConfig {
    /// On or off.
    pub enabled: bool,
    /// Failed RCPTs in a session before replies slow down.
    pub after_failures: u32,
    /// Added delay per failed RCPT beyond that.
    pub delay: HumanDuration,
    /// Failed RCPTs in a session after which the IP is blocked (0 = never).
    pub block_after: u32,
    /// How long that block lasts.
    pub block_for: HumanDuration,
}

/// `abuse.transfer.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct TransferConfig {
    /// Messages per IP per hour (0 = no limit).
    pub max_messages_per_hour: u32,
    /// Octets per IP per hour (0 = no limit).
    pub max_bytes_per_hour: u64,
}

/// `abuse.rbl.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RblConfig {
    /// On or off.
    pub enabled: bool,
    /// DNSBL zones, e.g. "zen.spamhaus.org".
    pub zones: Vec<String>,
    /// How many zones must list the IP before `action` applies.
    pub trigger: u32,
    /// Refuse or tag.
    pub action: Action,
}

/// `abuse.spf.*`, `abuse.rdns.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// On or off.
    pub enabled: bool,
    /// Refuse or tag on failure.
    pub action: Action,
}

/// Independent (MX lookup) or Relay (everything through one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMode {
    /// Look up each domain's MX and deliver there.
    Independent,
    /// Send every outbound mail through `outgoing_mails.relay`.
    Relay,
}

/// TLS towards a relay host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayTls {
    /// Plain SMTP.
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (465 style).
    Implicit,
}

/// STARTTLS policy in Independent mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboundTls {
    /// Never use TLS.
    None,
    /// Use STARTTLS when offered (certificates not verified), else plain.
    Opportunistic,
    /// Refuse to deliver without STARTTLS.
    Required,
}

/// `outgoing_mails.*`: the Outgoing Mails dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutgoingMailsConfig {
    /// Attempts before the mail is returned to its sender with a failure notice (0: no limit
    /// by attempts; then `give_up_after` must be set).
    pub resend_attempts: u32,
    /// Delay between attempts (the first wait, with `backoff`).
    pub resend_delay: HumanDuration,
    /// Each wait twice the one before, up to four hours (as Postfix backs off).
    pub backoff: bool,
    /// Return a mail that has waited this long, whatever attempts are left (None: by
    /// attempts only).
    pub give_up_after: Option<HumanDuration>,
    /// Send the sender a delay warning once a mail has waited this long (None = never).
    pub delay_warning: Option<HumanDuration>,
    /// Independent or Relay.
    pub mode: DeliveryMode,
    /// DNS servers (`ip` or `ip:port`); empty = the system's.
    pub dns_hosts: Vec<String>,
    /// Relay mode's host.
    pub relay: RelayConfig,
    /// Domain Mapping "Via SMTP": static routes, obeyed in Independent mode only.
    pub domain_maps: Vec<DomainMap>,
    /// STARTTLS policy in Independent mode.
    pub outbound_tls: OutboundTls,
    /// More Detailed Logging: every connection, command, reply and DNS answer.
    pub detailed_logging: bool,
    /// The port MX hosts are contacted on: 25, except in test labs.
    pub mx_port: u16,
    /// Outbound connections at once, overall.
    pub max_connections: u32,
    /// Outbound connections at once to one destination (20, Postfix's
    /// `default_destination_concurrency_limit`: in Relay mode every mail goes to the one relay
    /// host, and 5 did not keep up with the accept rate on a 2-CPU machine; see
    /// docs/figures.md).
    pub max_connections_per_domain: u32,
    /// How long a connection stays open after a delivery, waiting for the next mail to the
    /// same server (0 s: close at once). Postfix's `smtp_connection_cache_time_limit`.
    pub connection_cache_time: HumanDuration,
}

/// `outgoing_mails.relay.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login (empty = no AUTH).
    pub username: String,
    /// Password for the relay host (sent to it, so kept as given; the file is private).
    pub password: String,
    /// TLS towards it.
    pub tls: RelayTls,
    /// Check the relay host's certificate (name and chain) before sending the login and mail.
    pub verify_certificate: bool,
    /// Extra trusted certificates (PEM), e.g. a relay's self-signed one; empty = the system's
    /// trust store only.
    pub ca_file: String,
}

/// One Domain Mapping "Via SMTP" route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainMap {
    /// The recipient domain.
    pub domain: String,
    /// Where to send its mail.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Default for SmtpAuthConfig {
    fn default() -> Self {
        SmtpAuthConfig {
            enabled: true,
            allow_any_account: true,
            only_user: String::new(),
            only_password: String::new(),
        }
    }
}

impl Default for AbuseConfig {
    fn default() -> Self {
        AbuseConfig {
            max_connections_per_ip: 10,
            ipv6_prefix: 64,
            lockout: LockoutConfig::default(),
            tarpit: TarpitConfig::default(),
            transfer: TransferConfig::default(),
            rbl: RblConfig::default(),
            spf: CheckConfig::default(),
            rdns: CheckConfig::default(),
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            enabled: true,
            failures: 5,
            window: HumanDuration::from_secs(600),
            block_for: HumanDuration::from_secs(1800),
        }
    }
}

impl Default for TarpitConfig {
    fn default() -> Self {
        TarpitConfig {
            enabled: true,
            after_failures: 3,
            delay: HumanDuration::from_secs(1),
            block_after: 20,
            block_for: HumanDuration::from_secs(1800),
        }
    }
}

impl Default for RblConfig {
    fn default() -> Self {
        RblConfig {
            enabled: false,
            zones: Vec::new(),
            trigger: 1,
            action: Action::Refuse,
        }
    }
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            enabled: false,
            action: Action::Tag,
        }
    }
}

impl Default for OutgoingMailsConfig {
    fn default() -> Self {
        OutgoingMailsConfig {
            resend_attempts: 5,
            resend_delay: HumanDuration::from_secs(300),
            backoff: false,
            give_up_after: None,
            delay_warning: None,
            mode: DeliveryMode::Independent,
            dns_hosts: Vec::new(),
            relay: RelayConfig::default(),
            domain_maps: Vec::new(),
            outbound_tls: OutboundTls::Opportunistic,
            detailed_logging: false,
            mx_port: 25,
            max_connections: 20,
            max_connections_per_domain: 20,
            connection_cache_time: HumanDuration::from_secs(2),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            host: String::new(),
            port: 25,
            username: String::new(),
            password: String::new(),
            tls: RelayTls::StartTls,
            verify_certificate: true,
            ca_file: String::new(),
        }
    }
}
