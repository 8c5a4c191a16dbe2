//! One delivery attempt of one message: its pending recipients read from the spool, grouped
//! by destination (local mailboxes, each domain, or the relay host), each group delivered
//! within the connection limits ([`Limits`]), one status per recipient back to the manager.

use crate::engine::config::{Config, DeliveryMode, normalize_domain};
use crate::engine::delivery::{self, DeliveryCtx, RcptStatus};
use crate::engine::queue::spool::{Location, Spool};
use crate::engine::queue::{Meta, RcptState, id_text};
use crate::engine::reply;
use crate::engine::store::body::Body;
use crate::engine::store::mailbox::quota::Quota;
use crate::engine::store::{maildir, trace};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One delivery attempt of one message: its pending recipients grouped by destination.
pub(super) struct Attempt {
    /// Configuration, resolver and event bus for the remote deliveries.
    pub(super) ctx: DeliveryCtx,
    /// The message's state when the attempt started.
    pub(super) meta: Meta,
    /// Where the message's data is in the spool.
    pub(super) loc: Location,
    /// The spool, to read the data from.
    pub(super) spool: Spool,
    /// The connection limits in force when the attempt started.
    pub(super) limits: Limits,
    /// `DATA/mailboxes`, for local recipients.
    pub(super) mailroot: PathBuf,
}

impl Attempt {
    /// Delivers to every pending recipient; returns (recipient index, status) pairs.
    pub(super) async fn run(self) -> Vec<(usize, RcptStatus)> {
        let pending: Vec<usize> = (0..self.meta.rcpts.len())
            .filter(|&i| self.meta.rcpts[i].state == RcptState::Pending)
            .collect();
        let spool = self.spool.clone();
        let loc = self.loc;
        // A small message is read at once; a big one on a blocking thread, in chunks later.
        let read = match self.spool.content_now(loc) {
            Some(r) => Ok(r),
            None => tokio::task::spawn_blocking(move || spool.body(loc)).await,
        };
        let data = match read {
            Ok(Ok(d)) => Arc::new(d),
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => unreachable!(),
                };
                return pending
                    .into_iter()
                    .map(|i| {
                        (
                            i,
                            RcptStatus::Temporary(format!("cannot read the spool: {why}")),
                        )
                    })
                    .collect();
            }
        };
        let cfg = self.ctx.config.clone();
        let relay = cfg.outgoing_mails.mode == DeliveryMode::Relay;
        // Group: local recipients, then one group per domain (or one for the relay host).
        let mut groups: Vec<(String, bool, Vec<usize>)> = Vec::new();
        for i in pending {
            let domain = self.meta.rcpts[i]
                .addr
                .rsplit_once('@')
                .map(|(_, d)| normalize_domain(d))
                .unwrap_or_default();
            let local = cfg.is_local_domain(&domain);
            let key = if local || !relay {
                domain
            } else {
                String::new()
            };
            match groups.iter_mut().find(|(k, l, _)| *k == key && *l == local) {
                Some(g) => g.2.push(i),
                None => groups.push((key, local, vec![i])),
            }
        }
        let this = Arc::new(self);
        // The common case, one destination, is delivered here; several go in parallel.
        if groups.len() == 1 {
            let (domain, local, idx) = groups.pop().expect("one group");
            return this.deliver_group(domain, local, idx, data).await;
        }
        let mut set = tokio::task::JoinSet::new();
        for (domain, local, idx) in groups {
            set.spawn(this.clone().deliver_group(domain, local, idx, data.clone()));
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(v) = r {
                out.extend(v);
            }
        }
        out
    }

    /// Delivers the recipients `idx` of one destination: the local mailboxes, a `domain`, or
    /// (`domain` empty) the relay host, within the connection limits.
    async fn deliver_group(
        self: Arc<Self>,
        domain: String,
        local: bool,
        idx: Vec<usize>,
        data: Arc<Body>,
    ) -> Vec<(usize, RcptStatus)> {
        let rcpts: Vec<String> = idx
            .iter()
            .map(|&i| self.meta.rcpts[i].addr.to_string())
            .collect();
        let statuses = if local {
            self.deliver_local(&rcpts, data).await
        } else {
            let dest = if domain.is_empty() { "relay" } else { &domain };
            // The destination's permit first: waiting for a busy (or dead) destination must
            // not hold a permit other destinations need.
            let _one = self.limits.domain(dest).acquire_owned().await;
            let _all = self.limits.overall.clone().acquire_owned().await;
            let d = if domain.is_empty() {
                rcpts
                    .first()
                    .and_then(|a| a.rsplit_once('@'))
                    .map_or("", |(_, d)| d)
            } else {
                &domain
            };
            delivery::deliver(
                &self.ctx,
                &id_text(self.meta.id),
                d,
                &self.meta.from,
                &rcpts,
                &data,
            )
            .await
        };
        idx.into_iter().zip(statuses).collect()
    }

    /// Writes the local recipients' copies to their mailboxes, all or nothing; a recipient
    /// whose copy would pass its Max Account Size fails permanently (5.2.2: the sender gets a
    /// failure notice, as Dovecot's default `quota_full_tempfail = no`).
    async fn deliver_local(&self, rcpts: &[String], data: Arc<Body>) -> Vec<RcptStatus> {
        let cfg = &self.ctx.config;
        let mut statuses =
            vec![RcptStatus::Permanent("5.1.1 no such local account".into()); rcpts.len()];
        // (recipient index, its copy, its quota), checked and written on the blocking pool.
        let mut candidates = Vec::new();
        for (i, a) in rcpts.iter().enumerate() {
            if let Some(acc) = cfg.account(a) {
                let (user, domain) = acc.address.rsplit_once('@').expect("validated");
                let quota = Quota::new(
                    &maildir::mailbox_dir(&self.mailroot, domain, user),
                    acc.max_size,
                );
                let mailbox = maildir::Recipient {
                    domain: domain.to_string(),
                    user: user.to_string(),
                    headers: trace::delivery_fields(&self.meta.from, &acc.address).into_bytes(),
                };
                candidates.push((i, mailbox, quota));
            }
        }
        let root = self.mailroot.clone();
        let host = cfg.server.hostname.clone();
        let res = tokio::task::spawn_blocking(move || {
            let (mut boxes, mut which, mut full) = (Vec::new(), Vec::new(), Vec::new());
            for (i, mailbox, quota) in candidates {
                let octets = mailbox.headers.len() as u64 + data.len();
                if quota.would_exceed(octets).unwrap_or(false) {
                    full.push(i);
                } else {
                    boxes.push(mailbox);
                    which.push(i);
                }
            }
            let written = maildir::deliver(&root, &host, &boxes, &data);
            (which, full, written)
        })
        .await;
        let (which, full, res) = match res {
            Ok((which, full, written)) => (which, full, Ok(written)),
            Err(e) => (
                (0..rcpts.len())
                    .filter(|&i| cfg.account(&rcpts[i]).is_some())
                    .collect(),
                Vec::new(),
                Err(e),
            ),
        };
        for i in full {
            statuses[i] = RcptStatus::Permanent(reply::MESSAGE_OVER_QUOTA.text.to_string());
        }
        for i in which {
            statuses[i] = match &res {
                Ok(Ok(_)) => RcptStatus::Delivered("written to the local mailbox".into()),
                Ok(Err(e)) => {
                    RcptStatus::Temporary(format!("4.3.0 cannot write the local mailbox: {e}"))
                }
                Err(e) => RcptStatus::Temporary(format!("4.3.0 local delivery task failed: {e}")),
            };
        }
        statuses
    }
}

/// Connection limits shared by delivery tasks; replaced when the limits change.
#[derive(Clone)]
pub(super) struct Limits {
    /// `outgoing_mails.max_connections`: connections at once, all destinations.
    overall: Arc<Semaphore>,
    /// `outgoing_mails.max_connections_per_domain`: one semaphore per destination.
    per_domain: Arc<std::sync::Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// (overall, per domain) these were made for.
    pub(super) sizes: (u32, u32),
}

impl Limits {
    pub(super) fn new(cfg: &Config) -> Limits {
        let o = &cfg.outgoing_mails;
        Limits {
            overall: Arc::new(Semaphore::new(o.max_connections as usize)),
            per_domain: Default::default(),
            sizes: (o.max_connections, o.max_connections_per_domain),
        }
    }

    /// The semaphore for destination `d` (a domain, or "relay").
    fn domain(&self, d: &str) -> Arc<Semaphore> {
        let mut all = self.per_domain.lock().expect("limits");
        if let Some(s) = all.get(d) {
            return s.clone();
        }
        all.entry(d.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.sizes.1 as usize)))
            .clone()
    }
}
