//! The SMTP server: listeners ([`listener`]), the byte level ([`conn`]) and the session state
//! machine ([`session`]), which runs over any `AsyncRead + AsyncWrite`.

pub mod conn;
pub mod listener;
pub mod session;

use crate::engine::config::Config;
use crate::engine::events::EventBus;
use crate::engine::stats::Stats;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// What a listener's sessions may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Incoming SMTP: mail for local accounts only, never relayed.
    Incoming,
    /// Outgoing SMTP: where clients submit mail (local recipients delivered directly).
    Outgoing,
    /// One port serving both; who may relay is decided per session.
    Both,
}

impl Role {
    /// The name used in logs and status.
    pub fn name(self) -> &'static str {
        match self {
            Role::Incoming => "incoming",
            Role::Outgoing => "outgoing",
            Role::Both => "incoming+outgoing",
        }
    }
}

/// The configuration in force plus what is derived from it; replaced whole on reload.
pub struct Current {
    /// The validated configuration.
    pub config: Config,
    /// TLS for STARTTLS and the implicit port; `None` when the certificate could not be loaded.
    pub tls: Option<TlsAcceptor>,
}

/// What every session of one engine shares.
pub struct Shared {
    /// The configuration in force; sessions read it at each decision.
    pub current: watch::Receiver<Arc<Current>>,
    /// Where events go.
    pub events: EventBus,
    /// Cancelled when the engine stops: idle sessions answer 421 and close.
    pub shutdown: CancellationToken,
    /// Counters for the status display.
    pub stats: Arc<Stats>,
    /// `DATA/mailboxes`.
    pub mailroot: PathBuf,
    /// The outgoing queue (mail for other domains from sessions that may relay).
    pub queue: crate::engine::queue::Queue,
    /// Per-IP abuse state: connection counts, lockouts, tarpit blocks, transfer limits.
    pub abuse: crate::engine::access::abuse::Abuse,
    /// The resolver for DNSBL, SPF and rDNS checks.
    pub dns: DnsCache,
}

/// The resolver for the configured DNS hosts, rebuilt when they change.
#[derive(Default)]
pub struct DnsCache(std::sync::Mutex<Option<(Vec<String>, crate::engine::dns::Resolver)>>);

impl DnsCache {
    /// A resolver for `hosts` (empty = the system's), or the reason there is none.
    pub fn get(&self, hosts: &[String]) -> Result<crate::engine::dns::Resolver, String> {
        let mut slot = self.0.lock().expect("dns cache");
        if let Some((h, r)) = slot.as_ref()
            && h == hosts
        {
            return Ok(r.clone());
        }
        let r = crate::engine::dns::Resolver::new(hosts).map_err(|e| e.to_string())?;
        *slot = Some((hosts.to_vec(), r.clone()));
        Ok(r)
    }
}
