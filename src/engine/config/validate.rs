//! Validation of a parsed [`Config`]: every rule that serde's types cannot express, each error
//! keyed by the dotted path of its field. All errors are collected, not just the first.

use super::{Config, MailServiceConfig, ServiceDefaults, normalize_domain};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `smtp.incoming.port` or `accounts[2].address`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem with `cfg`; empty when it is valid.
pub fn validate(cfg: &Config) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut err = |path: &str, message: String| {
        errs.push(FieldError {
            path: path.to_string(),
            message,
        })
    };

    if !is_hostname(&cfg.server.hostname) {
        err(
            "server.hostname",
            format!("`{}` is not a valid host name", cfg.server.hostname),
        );
    }

    let smtp = &cfg.smtp;
    for (path, port) in [
        ("smtp.incoming.port", smtp.incoming.port),
        ("smtp.outgoing.port", smtp.outgoing.port),
    ] {
        if port == 0 {
            err(path, "must be a port number from 1 to 65535".into());
        }
    }
    for (path, ip) in [
        ("smtp.incoming.listen_ip", &smtp.incoming.listen_ip),
        ("smtp.outgoing.listen_ip", &smtp.outgoing.listen_ip),
    ] {
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() && !is_hostname(ip) {
            err(
                path,
                format!("`{ip}` is neither an IP address nor a host name (empty = all addresses)"),
            );
        }
    }
    if smtp.outgoing.enabled
        && smtp.outgoing.port == smtp.incoming.port
        && smtp.outgoing.listen_ip != smtp.incoming.listen_ip
        && (smtp.outgoing.listen_ip.is_empty() || smtp.incoming.listen_ip.is_empty())
    {
        err(
            "smtp.outgoing.listen_ip",
            "shares its port with the incoming SMTP, so it must listen on the same IP".into(),
        );
    }
    if let Some(p) = smtp.tls.implicit_port {
        if p == 0 {
            err(
                "smtp.tls.implicit_port",
                "must be a port number from 1 to 65535, or None".into(),
            );
        } else if p == smtp.incoming.port || (smtp.outgoing.enabled && p == smtp.outgoing.port) {
            err(
                "smtp.tls.implicit_port",
                format!("port {p} is already used by a plain SMTP listener"),
            );
        }
    }
    if smtp.max_connections_per_port == 0 {
        err("smtp.max_connections_per_port", "must be at least 1".into());
    }
    if smtp.max_recipients_per_mail < 100 {
        err(
            "smtp.max_recipients_per_mail",
            "must be at least 100 (RFC 5321 4.5.3.1.8)".into(),
        );
    }
    if smtp.max_message_size < 1024 {
        err(
            "smtp.max_message_size",
            "must be at least 1024 octets".into(),
        );
    }
    if smtp.max_message_size > MAX_MESSAGE_SIZE {
        err(
            "smtp.max_message_size",
            format!(
                "must be at most {MAX_MESSAGE_SIZE} octets (1 GiB, what the queue's records hold)"
            ),
        );
    }
    if smtp.max_junk_commands == 0 {
        err("smtp.max_junk_commands", "must be at least 1".into());
    }
    if smtp.max_errors_per_session == 0 {
        err("smtp.max_errors_per_session", "must be at least 1".into());
    }
    for (path, d) in [
        ("smtp.timeouts.command", smtp.timeouts.command),
        ("smtp.timeouts.data", smtp.timeouts.data),
    ] {
        if d.0.as_secs() < 1 {
            err(
                path,
                "must be at least 1s (RFC 5321 recommends minutes)".into(),
            );
        }
    }
    if smtp.tls.certificate.is_empty() != smtp.tls.key.is_empty() {
        err(
            "smtp.tls.key",
            "certificate and key must be given together (both empty = self-signed)".into(),
        );
    }

    check_sections(cfg, &mut err);

    let mut seen = Vec::new();
    for (i, d) in cfg.domains.iter().enumerate() {
        let path = format!("domains[{i}]");
        if let Some(why) = domain_problem(d) {
            err(&path, why);
        }
        let n = normalize_domain(d);
        if seen.contains(&n) {
            err(&path, format!("`{d}` is listed twice"));
        }
        seen.push(n);
    }
    let mut seen = Vec::new();
    for (i, a) in cfg.accounts.iter().enumerate() {
        let path = format!("accounts[{i}].address");
        match a.address.rsplit_once('@') {
            Some((user, domain)) if is_local_part(user) => {
                if !cfg.is_local_domain(domain) {
                    err(&path, format!("domain `{domain}` is not a local domain"));
                }
            }
            _ => err(&path, format!("`{}` is not user@domain", a.address)),
        }
        if seen.contains(&a.address) {
            err(&path, format!("`{}` is listed twice", a.address));
        }
        seen.push(a.address.clone());
        if !a.password.starts_with("$argon2") {
            err(
                &format!("accounts[{i}].password"),
                "must be an argon2 hash (set it with `postern account passwd`)".into(),
            );
        }
        if a.max_size != 0 && a.max_size < MIN_ACCOUNT_SIZE {
            err(
                &format!("accounts[{i}].max_size"),
                format!(
                    "{} octets cannot hold a message; give at least {MIN_ACCOUNT_SIZE} (1K), or 0 for unlimited",
                    a.max_size
                ),
            );
        }
    }
    errs
}

/// The least Max Account Size other than 0 (unlimited): below it no mail fits, so a smaller
/// figure is a slip (octets written where megabytes were meant).
pub const MIN_ACCOUNT_SIZE: u64 = 1024;

/// Rules of the access, abuse and outgoing-mail sections.
fn check_sections(cfg: &Config, err: &mut impl FnMut(&str, String)) {
    check_mail_service(cfg, &cfg.pop3, err);
    check_mail_service(cfg, &cfg.imap, err);
    use super::ranges::IpRange;
    use crate::engine::config::DeliveryMode;
    let a = &cfg.access;
    if a.smtp_auth.enabled && !a.smtp_auth.allow_any_account {
        if a.smtp_auth.only_user.trim().is_empty() {
            err(
                "access.smtp_auth.only_user",
                "Allow Only The Following needs a user name".into(),
            );
        }
        if !a.smtp_auth.only_password.starts_with("$argon2") {
            err(
                "access.smtp_auth.only_password",
                "must be an argon2 hash (set it in the dialog or with `postern access relay-user`)"
                    .into(),
            );
        }
    }
    for (list, path) in [
        (&a.ip_range.ranges, "access.ip_range.ranges"),
        (&a.safe_ips, "access.safe_ips"),
    ] {
        for (i, r) in list.iter().enumerate() {
            if let Err(m) = IpRange::parse(r) {
                err(&format!("{path}[{i}]"), m.to_string());
            }
        }
    }
    if cfg.auth.dmarc.enabled && !cfg.auth.dkim.verify {
        err(
            "auth.dmarc.enabled",
            "DMARC needs the DKIM results: turn on auth.dkim.verify, or DMARC off".into(),
        );
    }
    let lg = &cfg.logs;
    if lg.max_total_size != 0 && lg.max_total_size < 1024 * 1024 {
        err(
            "logs.max_total_size",
            "must be 0 (no limit) or at least 1048576 octets (1 MiB)".into(),
        );
    }
    let ab = &cfg.abuse;
    if !(32..=128).contains(&ab.ipv6_prefix) {
        err(
            "abuse.ipv6_prefix",
            "must be between 32 and 128 (64: one client per /64 network)".into(),
        );
    }
    if ab.lockout.enabled && ab.lockout.failures == 0 {
        err("abuse.lockout.failures", "must be at least 1".into());
    }
    if ab.rbl.enabled && ab.rbl.trigger == 0 {
        err("abuse.rbl.trigger", "must be at least 1".into());
    }
    for (i, z) in ab.rbl.zones.iter().enumerate() {
        if !is_hostname(z) {
            err(
                &format!("abuse.rbl.zones[{i}]"),
                format!("`{z}` is not a DNS zone"),
            );
        }
    }
    let o = &cfg.outgoing_mails;
    if o.resend_attempts == 0 && o.give_up_after.is_none() {
        err(
            "outgoing_mails.resend_attempts",
            "must be at least 1 (0, no limit, only with outgoing_mails.give_up_after)".into(),
        );
    }
    if o.give_up_after.is_some_and(|g| g.0.as_secs() < 60) {
        err("outgoing_mails.give_up_after", "must be at least 1m".into());
    }
    if o.resend_delay.0.as_secs() < 1 {
        err("outgoing_mails.resend_delay", "must be at least 1s".into());
    }
    if o.max_connections == 0 {
        err(
            "outgoing_mails.max_connections",
            "must be at least 1".into(),
        );
    }
    if o.max_connections_per_domain == 0 {
        err(
            "outgoing_mails.max_connections_per_domain",
            "must be at least 1".into(),
        );
    }
    if o.connection_cache_time.0 > Duration::from_secs(60) {
        err(
            "outgoing_mails.connection_cache_time",
            "must be at most 60s (an idle connection holds a place at the other server)".into(),
        );
    }
    for (i, h) in o.dns_hosts.iter().enumerate() {
        if parse_dns_host(h).is_none() {
            err(
                &format!("outgoing_mails.dns_hosts[{i}]"),
                format!("`{h}` is not an IP address or ip:port"),
            );
        }
    }
    if o.mode == DeliveryMode::Relay && o.relay.host.is_empty() {
        err(
            "outgoing_mails.relay.host",
            "Relay mode needs a relay host".into(),
        );
    }
    if !o.relay.host.is_empty()
        && o.relay.host.parse::<IpAddr>().is_err()
        && !is_hostname(&o.relay.host)
    {
        err(
            "outgoing_mails.relay.host",
            format!("`{}` is not a host name or IP address", o.relay.host),
        );
    }
    if o.relay.port == 0 {
        err(
            "outgoing_mails.relay.port",
            "must be a port number from 1 to 65535".into(),
        );
    }
    for (i, m) in o.domain_maps.iter().enumerate() {
        if !is_hostname(&m.domain) {
            err(
                &format!("outgoing_mails.domain_maps[{i}].domain"),
                format!("`{}` is not a domain", m.domain),
            );
        }
        if m.host.parse::<IpAddr>().is_err() && !is_hostname(&m.host) {
            err(
                &format!("outgoing_mails.domain_maps[{i}].host"),
                format!("`{}` is not a host name or IP address", m.host),
            );
        }
        if m.port == 0 {
            err(
                &format!("outgoing_mails.domain_maps[{i}].port"),
                "must be a port number from 1 to 65535".into(),
            );
        }
    }
}

/// `pop3.*` and `imap.*`: ports, the address, the limits; a service's ports must not be an SMTP
/// listener's nor another enabled mailbox service's.
fn check_mail_service<K: ServiceDefaults>(
    cfg: &Config,
    p: &MailServiceConfig<K>,
    err: &mut impl FnMut(&str, String),
) {
    let name = K::NAME;
    if !p.listen_ip.is_empty()
        && p.listen_ip.parse::<IpAddr>().is_err()
        && !is_hostname(&p.listen_ip)
    {
        err(
            &format!("{name}.listen_ip"),
            format!(
                "`{}` is neither an IP address nor a host name (empty = all addresses)",
                p.listen_ip
            ),
        );
    }
    if p.max_connections == 0 {
        err(
            &format!("{name}.max_connections"),
            "must be at least 1".into(),
        );
    }
    if p.idle_timeout.0 < std::time::Duration::from_secs(K::IDLE_SECS) {
        err(
            &format!("{name}.idle_timeout"),
            format!(
                "must be at least {} minutes (the protocol's RFC asks for it)",
                K::IDLE_SECS / 60
            ),
        );
    }
    if !p.enabled {
        return;
    }
    let s = &cfg.smtp;
    let mut taken: Vec<(u16, &str)> = [
        Some(s.incoming.port),
        s.outgoing.enabled.then_some(s.outgoing.port),
        s.tls.implicit_port,
    ]
    .into_iter()
    .flatten()
    .map(|port| (port, "an SMTP listener"))
    .collect();
    // The other mailbox service's ports (checked from one side only, so one error per clash).
    if name == "imap" && cfg.pop3.enabled {
        taken.push((cfg.pop3.port, "the POP3 service"));
        if cfg.pop3.implicit_ssl {
            taken.push((cfg.pop3.ssl_port, "the POP3 service"));
        }
    }
    let ssl_path = format!("{name}.ssl_port");
    let mut ports = vec![(format!("{name}.port"), p.port)];
    if p.implicit_ssl {
        ports.push((ssl_path.clone(), p.ssl_port));
    }
    for (path, port) in &ports {
        if *port == 0 {
            err(path, "must be a port number from 1 to 65535".into());
        } else if let Some((_, owner)) = taken.iter().find(|(t, _)| t == port) {
            err(path, format!("port {port} is already used by {owner}"));
        }
    }
    if p.implicit_ssl && p.port == p.ssl_port {
        err(
            &ssl_path,
            format!(
                "port {} is already the plain {} port",
                p.port,
                name.to_uppercase()
            ),
        );
    }
}

/// `ip` or `ip:port` (`[v6]:port` for IPv6) of a DNS server; port 53 when none is given.
pub fn parse_dns_host(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    s.parse().ok()
}

/// Why the settings make the outgoing SMTP an open relay, when they do.
pub fn open_relay_warning(cfg: &Config) -> Option<String> {
    let a = &cfg.access;
    let o = &cfg.smtp.outgoing;
    (o.enabled && !a.smtp_auth.enabled && !a.ip_range.enabled).then(|| {
        let ip = if o.listen_ip.trim().is_empty() {
            "every address"
        } else {
            o.listen_ip.trim()
        };
        let mut on = vec![format!("port {} on {ip}", o.port)];
        if let Some(p) = cfg.smtp.tls.implicit_port {
            on.push(format!("the implicit-TLS port {p} on {ip}"));
        }
        format!(
            "OPEN RELAY: outgoing SMTP ({}) is enabled with neither SMTP Authentication nor IP \
             Range Control, so anyone who can reach it can send mail anywhere through this server",
            on.join(" and ")
        )
    })
}

/// A warning when Relay mode would send the relay host's login without TLS.
pub fn relay_login_warning(cfg: &Config) -> Option<String> {
    let om = &cfg.outgoing_mails;
    let r = &om.relay;
    (om.mode == super::DeliveryMode::Relay
        && !r.username.is_empty()
        && r.tls == super::RelayTls::None)
        .then(|| {
            format!(
                "the relay host login `{}` is sent without TLS: anyone on the way can read the \
                 password (set outgoing_mails.relay.tls to StartTls or Implicit)",
                r.username
            )
        })
}

/// A warning when `server.hostname` (our EHLO/HELO name) is not a fully qualified domain
/// name, as the default from gethostname() often is: many receivers refuse such a HELO
/// (`504 5.5.2`, Postfix's `reject_non_fqdn_helo_hostname`). A name that is not a host name
/// at all is an error of [`validate`] instead.
pub fn hostname_warning(cfg: &Config) -> Option<String> {
    let name = &cfg.server.hostname;
    (is_hostname(name) && !is_fqdn(name)).then(|| {
        format!(
            "server.hostname `{name}` is not a fully qualified domain name; other servers may \
             refuse mail whose HELO is not one (e.g. mail.example.com)"
        )
    })
}

/// Whether the host name `name` is fully qualified: two labels at least, not an IP address,
/// a top label not all digits, not `localhost` nor under `.local` or `.localdomain`.
fn is_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let Some((_, top)) = name.rsplit_once('.') else {
        return false;
    };
    name.parse::<IpAddr>().is_err()
        && !top.bytes().all(|b| b.is_ascii_digit())
        && !matches!(top, "local" | "localdomain")
}

/// Every warning about settings that are valid but unsafe or likely to fail, for
/// `config check` and the log.
pub fn warnings(cfg: &Config) -> Vec<String> {
    open_relay_warning(cfg)
        .into_iter()
        .chain(relay_login_warning(cfg))
        .chain(hostname_warning(cfg))
        .chain(super::schedule::short_horizon_warning(&cfg.outgoing_mails))
        .collect()
}

/// The largest `smtp.max_message_size`: what a spool record holds (see `queue::spool`).
pub const MAX_MESSAGE_SIZE: u64 = 1024 * 1024 * 1024;

/// Why `d` cannot be a local domain, if it cannot: a host name with a dot, or `localhost`.
pub fn domain_problem(d: &str) -> Option<String> {
    (!is_hostname(d) || !d.contains('.') && d != "localhost")
        .then(|| format!("`{d}` is not a valid domain name"))
}

/// A DNS host name: dot-separated labels of letters, digits and hyphens.
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A local part we are willing to create a mailbox for: dot-atom text, no path tricks.
pub fn is_local_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-/=?^_`{|}~.".contains(&b))
        && !s.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Account;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Config::default()), vec![]);
    }

    #[test]
    fn a_hostname_that_is_not_fully_qualified_is_a_warning_not_an_error() {
        let mut c = Config::default();
        for name in [
            "box",
            "localhost",
            "localhost.localdomain",
            "box.local",
            "Box.LOCAL.",
            "192.0.2.1",
            "10.0.0",
        ] {
            c.server.hostname = name.into();
            assert_eq!(validate(&c), vec![], "{name}: still valid");
            let w = hostname_warning(&c).unwrap_or_else(|| panic!("{name}: no warning"));
            assert_eq!(
                w,
                format!(
                    "server.hostname `{name}` is not a fully qualified domain name; other \
                     servers may refuse mail whose HELO is not one (e.g. mail.example.com)"
                )
            );
            assert!(warnings(&c).contains(&w));
        }
        for name in [
            "mail.test",
            "mail.example.com",
            "mx1.example.com.",
            "a.b.c.d",
        ] {
            c.server.hostname = name.into();
            assert_eq!(hostname_warning(&c), None, "{name}");
        }
        c.server.hostname = "bad name".into();
        assert_eq!(
            hostname_warning(&c),
            None,
            "an invalid name is an error only"
        );
        assert_eq!(validate(&c).len(), 1);
    }

    #[test]
    fn collects_every_error_with_its_path() {
        let mut c = Config::default();
        c.smtp.max_recipients_per_mail = 5;
        c.smtp.incoming.port = 0;
        c.domains = vec!["bad domain".into()];
        c.accounts = vec![Account {
            address: "bob@elsewhere.test".into(),
            password: "clear".into(),
            max_size: 100,
        }];
        let paths: Vec<_> = validate(&c).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "smtp.incoming.port",
                "smtp.max_recipients_per_mail",
                "domains[0]",
                "accounts[0].address",
                "accounts[0].password",
                "accounts[0].max_size"
            ]
        );
    }
}
