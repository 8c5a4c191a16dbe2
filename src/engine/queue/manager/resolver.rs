//! The system's resolver for deliveries: made when there is none (at start, after a change
//! of DNS hosts, or again every few seconds after a failure), and made again when
//! `/etc/resolv.conf` changes while no DNS hosts are configured (a laptop moving between
//! networks).

use super::Manager;
use crate::engine::dns::Resolver;
use crate::engine::events::{EventKind, Level};
use std::time::Duration;

/// The system's resolver configuration, followed when no DNS hosts are configured.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How often a resolver that could not be made is tried again.
const RESOLVER_RETRY: Duration = Duration::from_secs(5);

/// What identifies a version of a file: modification time, size, inode (`None`: missing).
pub(super) type FileStamp = Option<(std::time::SystemTime, u64, u64)>;

/// The stamp of the file at `path` now.
fn file_stamp(path: &str) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl Manager {
    /// Makes the resolver when there is none (at start, after a change of DNS hosts, or after
    /// a failure: tried again every [`RESOLVER_RETRY`], not only when the configuration
    /// changes), and when no DNS hosts are configured, makes it again when the system's
    /// `/etc/resolv.conf` changes (a laptop moving between networks).
    pub(super) fn refresh_resolver(&mut self) {
        let hosts = &self.cfg.outgoing_mails.dns_hosts;
        let system = hosts.is_empty().then(|| file_stamp(RESOLV_CONF));
        let now = std::time::Instant::now();
        let changed = self.resolver.is_some() && system.is_some() && system != self.resolver_stamp;
        if self.resolver.is_some() && !changed {
            return;
        }
        if self.resolver.is_none() && self.resolver_retry.is_some_and(|at| now < at) {
            return;
        }
        match Resolver::new(hosts) {
            Ok(r) => {
                if changed {
                    self.deps.events.emit(
                        Level::Info,
                        None,
                        EventKind::Delivery {
                            text: format!(
                                "DNS: {RESOLV_CONF} changed; asking its name servers now"
                            ),
                        },
                    );
                }
                self.resolver = Some(r);
                self.resolver_stamp = system;
                self.resolver_retry = None;
            }
            Err(e) => {
                if self.resolver_retry.is_none() || changed {
                    self.deps.events.emit(
                        Level::Error,
                        None,
                        EventKind::Delivery {
                            text: format!(
                                "DNS resolver unavailable, deliveries wait (tried again every {} s): {e}",
                                RESOLVER_RETRY.as_secs()
                            ),
                        },
                    );
                }
                if !changed {
                    self.resolver = None;
                }
                self.resolver_retry = Some(now + RESOLVER_RETRY);
            }
        }
    }
}
