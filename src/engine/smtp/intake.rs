//! The one intake: where a session gets the body it reads DATA into ([`Intake::body`]: small
//! messages in memory, big ones spilled to disk as they arrive) and hands the whole message
//! once the gate has let it through. [`Intake::accept`] either makes the message safe on disk
//! everywhere it goes (queue for other domains, Maildirs for local accounts, all or nothing)
//! or refuses it with a reply; the session answers `250` only on `Ok`. The body is copied into
//! the spool and the Maildirs in chunks, never loaded whole. [`StoreIntake`] is the engine's;
//! tests give the session their own.

use crate::engine::access::recipient::{LocalRcpt, Recipient};
use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::queue::spool::Content;
use crate::engine::queue::{self, Queue};
use crate::engine::reply::{self, Reply};
use crate::engine::stats::{Counter, Stats};
use crate::engine::store::body::{Body, Spill};
use crate::engine::store::mailbox::quota::Quota;
use crate::engine::store::{maildir, trace};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// A mail transaction as the session hands it over.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The session's id (for the log).
    pub session: String,
    /// The message id (`SESSION.N`), in `Received:` and the log.
    pub id: String,
    /// Envelope sender; empty for the null sender `<>`.
    pub from: String,
    /// Accepted recipients, without duplicates.
    pub rcpts: Vec<Recipient>,
    /// What the `Received:` field says of the session.
    pub received: trace::Received,
    /// Warnings the gate tagged the message with (`X-Postern-Warning:`).
    pub tags: Vec<String>,
    /// The `Authentication-Results:` field of inbound mail (empty otherwise), written right
    /// after `Received:`.
    pub results: String,
    /// Header fields added to a submitted message that lacked them (`Date:`,
    /// `Message-ID:`, see [`trace::submission_fields`]), written after the trace fields.
    pub added: String,
}

/// Where the message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Queued (and written to any local mailboxes): the queue id.
    Queued(String),
    /// Written to local mailboxes only: the message id.
    Delivered(String),
}

impl Accepted {
    /// The `250` that says so.
    pub fn reply(&self) -> Reply {
        match self {
            Accepted::Queued(id) => reply::queued_as(id),
            Accepted::Delivered(id) => reply::delivered_as(id),
        }
    }
}

/// A future an intake returns.
pub type IntakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, Reply>> + Send + 'a>>;

/// Takes whole messages from sessions.
pub trait Intake: Send + Sync {
    /// Whether the storage has `octets` free (checked at MAIL, before a message is sent).
    fn has_room(&self, octets: u64) -> bool;

    /// Whether local recipient `rcpt` has no room: at or over its Max Account Size, or, when
    /// `octets` is not 0 (the size declared at MAIL), past it with that much more. Never for
    /// an unlimited account, nor when the usage cannot be read (the intake then delivers and
    /// the next scan counts it).
    fn mailbox_full(&self, rcpt: &LocalRcpt, octets: u64) -> bool {
        let _ = (rcpt, octets);
        false
    }

    /// An empty body for the next message's DATA.
    fn body(&self) -> Body;

    /// Makes `message` (dot-unstuffed, CRLF lines, without trace fields, finished) safe on
    /// disk for every recipient of `env`, or refuses it, leaving nothing behind.
    fn accept(&self, env: Envelope, message: Body) -> IntakeFuture<'_>;
}

/// The engine's intake: the queue and the local Maildirs.
pub struct StoreIntake {
    /// The outgoing queue.
    pub queue: Queue,
    /// `DATA/mailboxes`.
    pub mailroot: PathBuf,
    /// Where big bodies go while they are received (`DATA/spool/incoming`).
    pub spill: Spill,
    /// Counters for the status display.
    pub stats: Arc<Stats>,
    /// Where accepted and refused messages are logged.
    pub events: EventBus,
}

impl Intake for StoreIntake {
    fn has_room(&self, octets: u64) -> bool {
        free_space(&self.mailroot).is_none_or(|free| free >= octets)
    }

    fn mailbox_full(&self, rcpt: &LocalRcpt, octets: u64) -> bool {
        let q = self.quota(rcpt);
        let full = if octets == 0 {
            q.is_full()
        } else {
            q.would_exceed(octets)
        };
        full.unwrap_or(false)
    }

    fn body(&self) -> Body {
        self.spill.body()
    }

    fn accept(&self, env: Envelope, message: Body) -> IntakeFuture<'_> {
        Box::pin(self.store(env, message))
    }
}

impl StoreIntake {
    /// The Max Account Size accounting of a local recipient.
    fn quota(&self, rcpt: &LocalRcpt) -> Quota {
        Quota::new(
            &maildir::mailbox_dir(&self.mailroot, &rcpt.domain, &rcpt.user),
            rcpt.max_size,
        )
    }

    /// For each of `rcpts` (with the size of its copy), whether the copy would take its
    /// account past its Max Account Size; on the blocking pool (a few `stat`s each, or a
    /// scan when a usage file is stale). An unreadable usage counts as room.
    async fn over_quota(&self, rcpts: &[(&LocalRcpt, u64)]) -> Vec<bool> {
        let checks: Vec<(Quota, u64)> = rcpts
            .iter()
            .map(|(r, octets)| (self.quota(r), *octets))
            .collect();
        if checks.iter().all(|(q, _)| q.limit() == 0) {
            return vec![false; checks.len()];
        }
        let n = checks.len();
        tokio::task::spawn_blocking(move || {
            checks
                .iter()
                .map(|(q, octets)| q.would_exceed(*octets).unwrap_or(false))
                .collect()
        })
        .await
        .unwrap_or_else(|_| vec![false; n])
    }

    /// Remote recipients go into the queue first (synced to disk, but not yet handed over for
    /// delivery), then local recipients into their Maildirs; only when both are safe is the
    /// queued copy released and `Ok` returned. If the local part fails, the queued copy is
    /// taken back before anything was sent, so a retry by the client cannot duplicate it.
    ///
    /// A local recipient whose copy would pass its Max Account Size gets no copy here: when
    /// every recipient is such, the message is refused with `552 5.2.2`; otherwise (the end
    /// of DATA has one reply for all) the others get theirs and this one's copy goes into the
    /// queue, whose local delivery finds the mailbox full and sends the sender a failure
    /// notice (5.2.2), or delivers it if room was made meanwhile.
    async fn store(&self, env: Envelope, message: Body) -> Result<Accepted, Reply> {
        let warnings = trace::warning_fields(&env.tags);
        let size = env.results.len() + warnings.len() + env.added.len() + message.len() as usize;
        let body = Arc::new(message);
        let (mut locals, mut remotes) = (Vec::new(), Vec::new());
        let mut full = Vec::new();
        let mut sized = Vec::new();
        for r in &env.rcpts {
            match r {
                Recipient::Local(l) => {
                    // Its copy: the body, what the intake adds, and its own trace fields.
                    let octets = size as u64
                        + trace::delivery_fields(&env.from, &l.address).len() as u64
                        + env.received.field(Some(&l.address)).len() as u64;
                    sized.push((l, octets));
                }
                Recipient::Remote(a) => remotes.push(a.clone()),
            }
        }
        let over = self.over_quota(&sized).await;
        for ((l, _), over) in sized.into_iter().zip(over) {
            if over {
                full.push(l);
            } else {
                locals.push(l);
            }
        }
        if !full.is_empty() {
            if locals.is_empty() && remotes.is_empty() {
                self.events.session(
                    Level::Info,
                    &env.session,
                    EventKind::MessageRejected {
                        reason: "every recipient's mailbox is full (Max Account Size)".into(),
                    },
                );
                return Err(reply::MESSAGE_OVER_QUOTA);
            }
            for l in full {
                self.events.session(
                    Level::Info,
                    &env.session,
                    EventKind::RecipientRejected {
                        rcpt: l.address.clone(),
                        reason: "mailbox full (Max Account Size): queued for a failure notice"
                            .into(),
                    },
                );
                remotes.push(l.address.clone());
            }
        }
        let refuse = |reason: String| {
            self.stats.count(Counter::Refused);
            self.events.session(
                Level::Error,
                &env.session,
                EventKind::MessageRejected { reason },
            );
            Err(reply::STORAGE)
        };
        let mut queued = None;
        if !remotes.is_empty() {
            let one = (remotes.len() == 1).then(|| remotes[0].as_str());
            let mut prefix = env.received.field(one).into_bytes();
            prefix.extend_from_slice(env.results.as_bytes());
            prefix.extend_from_slice(warnings.as_bytes());
            prefix.extend_from_slice(env.added.as_bytes());
            let content = Content::Message {
                prefix,
                body: body.clone(),
            };
            match self
                .queue
                .stage(&env.from, &remotes, content, &env.received.ip.to_string())
                .await
            {
                Ok(staged) => queued = Some(staged),
                Err(e) => return refuse(format!("cannot write to the queue: {e}")),
            }
        }
        if !locals.is_empty() {
            let boxes: Vec<maildir::Recipient> = locals
                .iter()
                .map(|r| {
                    let mut headers = trace::delivery_fields(&env.from, &r.address);
                    headers.push_str(&env.received.field(Some(&r.address)));
                    headers.push_str(&env.results);
                    headers.push_str(&warnings);
                    headers.push_str(&env.added);
                    maildir::Recipient {
                        domain: r.domain.clone(),
                        user: r.user.clone(),
                        headers: headers.into_bytes(),
                    }
                })
                .collect();
            let root = self.mailroot.clone();
            let host = env.received.host.clone();
            let body = body.clone();
            let result =
                tokio::task::spawn_blocking(move || maildir::deliver(&root, &host, &boxes, &body))
                    .await;
            let failure = match result {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("cannot write to the mailbox: {e}")),
                Err(e) => Some(format!("delivery task failed: {e}")),
            };
            if let Some(reason) = failure {
                if let Some(staged) = queued {
                    staged.abandon().await;
                }
                return refuse(reason);
            }
        }
        let queued = queued.map(|staged| staged.release());
        self.stats.count_all(if locals.is_empty() {
            &[Counter::Accepted]
        } else {
            &[Counter::Accepted, Counter::Mailbox]
        });
        let mut to: Vec<String> = locals.iter().map(|r| r.address.clone()).collect();
        to.extend(remotes);
        self.events.session(
            Level::Info,
            &env.session,
            EventKind::Delivered {
                id: env.id.clone(),
                from: env.from.clone(),
                to,
                size,
            },
        );
        Ok(match queued {
            Some(qid) => Accepted::Queued(queue::id_text(qid)),
            None => Accepted::Delivered(env.id),
        })
    }
}

/// Free octets for an unprivileged user on the file system holding `path` (`None` when
/// `statvfs` fails: the check is then skipped rather than refusing all mail).
fn free_space(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeros is a valid value for it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_is_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let free = super::free_space(dir.path()).expect("statvfs works here");
        assert!(free > 0);
        assert!(super::free_space(&dir.path().join("missing")).is_none());
    }
}
