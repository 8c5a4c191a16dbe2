//! The outgoing queue: mail accepted for other domains waits here, on disk, until it is
//! delivered or given up on.
//!
//! [`spool`] keeps it durable (a journal written by one thread, group commit); [`manager`] is
//! the one task that owns the queue's state, schedules attempts, applies the re-send policy and
//! sends failure notices ([`dsn`]); [`Queue`] is the handle sessions, the control socket and the
//! GUI use: they read the list a page at a time ([`page`]) and its length from a small
//! published summary ([`QueueSummary`]), never the whole queue at once. [`commands`] is what retry, delete, hold and release do, for the manager and for
//! `control::offline`, which serves `postern queue` on the spool when no server runs.

pub mod commands;
pub mod dsn;
pub mod ids;
pub mod manager;
pub mod page;
pub mod spool;
pub mod subject;
pub mod text;

pub use page::{Page, PageQuery, SortBy};
use serde::{Deserialize, Serialize};
use spool::{Content, Location, Record, Spool, SpoolError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use text::Text;
use tokio::sync::{mpsc, oneshot, watch};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcptState {
    /// Not yet delivered; will be tried again.
    Pending,
    /// Accepted by the next hop (or written to a local mailbox).
    Delivered,
    /// Given up: a 5xx, or the re-send attempts are used up.
    Failed,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rcpt {
    /// The address, as it will be sent in RCPT TO.
    pub addr: Text,
    /// Where it stands.
    pub state: RcptState,
    /// The last error for it (reply or reason), empty if none.
    pub last_error: Text,
    /// For a failed recipient: its failure notice is safely queued (or none is due, the
    /// sender being `<>`). A message leaves the queue only when every failed recipient's
    /// notice is; after a crash, replay sends the notices still owed.
    #[serde(default)]
    pub notified: bool,
}

/// The state of a queued message, as kept in the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Queue id.
    pub id: u64,
    /// When it was accepted (unix seconds).
    pub created: u64,
    /// Envelope sender; empty for the null sender (failure notices).
    pub from: Text,
    /// Recipients.
    pub rcpts: Vec<Rcpt>,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Not before this time (unix seconds).
    pub next_try: u64,
    /// On hold: not tried until released.
    pub held: bool,
    /// A delay warning was sent.
    pub warned: bool,
    /// Content size in octets.
    pub size: u64,
    /// Who handed it to us (client IP, or "local" for notices).
    pub client: Text,
    /// Its Subject, decoded, for the queue list ([`subject::subject_of`]); empty when it has
    /// none (and for messages queued before the field existed).
    #[serde(default)]
    pub subject: Text,
}

impl Meta {
    /// Whether any recipient is still to be delivered.
    pub fn has_pending(&self) -> bool {
        self.rcpts.iter().any(|r| r.state == RcptState::Pending)
    }
}

/// The queue id as shown to people: 16 hex digits.
pub fn id_text(id: u64) -> String {
    format!("{id:016X}")
}

/// Parses an id as shown by [`id_text`].
pub fn parse_id(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim(), 16).ok()
}

/// A queued message as the queue list shows it. Its strings are shared ([`text`]): a long
/// queue holds one copy of each distinct sender, recipient, error and history line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The message's state.
    pub meta: Meta,
    /// A delivery attempt is running now.
    pub in_flight: bool,
    /// What happened to it so far (this run), oldest first.
    pub history: Box<[Text]>,
}

/// What the manager publishes at each change (at most every quarter second): a few numbers,
/// whatever the queue's length. The list itself is read a page at a time ([`Queue::page`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSummary {
    /// Mails in the queue.
    pub total: usize,
    /// Delivery attempts running.
    pub in_flight: usize,
    /// Goes up at each publication: a page read before it may be out of date.
    pub version: u64,
}

/// Which messages a command is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// One message.
    Id(u64),
    /// Every message.
    All,
}

/// Commands to the queue (from the control socket, the GUI, the CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    /// Deliver now.
    Retry(Target),
    /// Remove without a failure notice.
    Delete(Target),
    /// Remove, with a failure notice to the sender for every recipient not yet delivered.
    DeleteNotify(Target),
    /// Do not try until released.
    Hold(Target),
    /// Undo hold.
    Release(Target),
}

/// Messages to the manager task.
pub(crate) enum ManagerMsg {
    /// A message was spooled.
    Arrived(Meta, Location),
    /// A command; the reply is how many messages it touched.
    Command(QueueCommand, oneshot::Sender<usize>),
    /// A page of the list, content excluded.
    Page(PageQuery, oneshot::Sender<Page>),
    /// One message with its content.
    Show(u64, oneshot::Sender<Option<(QueueEntry, Vec<u8>)>>),
}

/// A message written to the spool but not yet given to the manager: nothing delivers it until
/// [`Staged::release`], so a session whose local part fails can still take it back
/// ([`Staged::abandon`]) before a single copy has left.
#[must_use = "a staged message is delivered only once released"]
pub struct Staged {
    /// The queue it was written to.
    queue: Queue,
    /// Its state.
    meta: Meta,
    /// Where its record is.
    loc: Location,
}

impl Staged {
    /// Hands the message to the manager for delivery; returns its id. If the manager has
    /// stopped (the engine is shutting down), the message stays on disk and is delivered after
    /// the next start.
    pub fn release(self) -> u64 {
        let id = self.meta.id;
        let _ = self.queue.tx.send(ManagerMsg::Arrived(self.meta, self.loc));
        id
    }

    /// Takes the message back: its record is removed from the spool and it is never
    /// delivered.
    pub async fn abandon(self) {
        let _ = self.queue.spool.append(Record::Remove(self.meta.id)).await;
    }
}

/// Handle to the queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    /// The journal.
    spool: Spool,
    /// The manager task.
    tx: mpsc::UnboundedSender<ManagerMsg>,
    /// Hands out message ids.
    ids: Arc<ids::Ids>,
    /// The summary as last published (for the GUI; refreshed on change).
    summary: watch::Receiver<QueueSummary>,
}

impl Queue {
    /// Spools a message for `rcpts`, hands it to the manager and returns its id once it is on
    /// disk.
    pub async fn enqueue(
        &self,
        from: &str,
        rcpts: &[String],
        data: Vec<u8>,
        client: &str,
    ) -> Result<u64, SpoolError> {
        let content = Content::bytes(data);
        Ok(self.stage(from, rcpts, content, client).await?.release())
    }

    /// Spools a message for `rcpts` without handing it to the manager yet (see [`Staged`]).
    pub async fn stage(
        &self,
        from: &str,
        rcpts: &[String],
        content: Content,
        client: &str,
    ) -> Result<Staged, SpoolError> {
        let now = now_secs();
        let size = match &content {
            Content::Bytes(b) => b.len() as u64,
            Content::Message { prefix, body } => prefix.len() as u64 + body.len(),
            Content::Moved(loc) => loc.len,
        };
        // The header section only, bounded (a spilled body is read from its file).
        let subject = match &content {
            Content::Bytes(b) => subject::subject_of(b),
            Content::Message { body, .. } => body
                .head(subject::HEAD)
                .map(|h| subject::subject_of(&h))
                .unwrap_or_default(),
            Content::Moved(_) => String::new(),
        };
        let meta = Meta {
            id: self.ids.next().await?,
            created: now,
            from: from.into(),
            rcpts: rcpts
                .iter()
                .map(|a| Rcpt {
                    addr: a.as_str().into(),
                    state: RcptState::Pending,
                    last_error: Text::default(),
                    notified: false,
                })
                .collect(),
            attempts: 0,
            next_try: now,
            held: false,
            warned: false,
            size,
            client: client.into(),
            subject: subject.into(),
        };
        let loc = self
            .spool
            .append(Record::Put(meta.clone(), content))
            .await?
            .expect("a Put has a location");
        Ok(Staged {
            queue: self.clone(),
            meta,
            loc,
        })
    }

    /// Runs a command; returns how many messages it touched.
    pub async fn command(&self, cmd: QueueCommand) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ManagerMsg::Command(cmd, tx)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Sends a command without waiting (for the GUI).
    pub fn command_nowait(&self, cmd: QueueCommand) {
        let (tx, _rx) = oneshot::channel();
        let _ = self.tx.send(ManagerMsg::Command(cmd, tx));
    }

    /// A page of the list (see [`page`]); an empty one when the manager has stopped.
    pub async fn page(&self, q: PageQuery) -> Page {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ManagerMsg::Page(q, tx)).is_err() {
            return Page::default();
        }
        rx.await.unwrap_or_default()
    }

    /// One queued message as the list shows it, or `None` when it is not queued.
    pub async fn entry(&self, id: u64) -> Option<Arc<QueueEntry>> {
        let q = PageQuery {
            with: Some(id),
            ..PageQuery::by_id(0)
        };
        self.page(q).await.with
    }

    /// One message and its content.
    pub async fn show(&self, id: u64) -> Option<(QueueEntry, Vec<u8>)> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(ManagerMsg::Show(id, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// The summary as last published; never blocks.
    pub fn summary(&self) -> QueueSummary {
        *self.summary.borrow()
    }

    /// Mails in the queue, as last published; never blocks.
    pub fn len(&self) -> usize {
        self.summary.borrow().total
    }

    /// Whether the queue was empty when last published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until everything written so far is synced (used before exiting).
    pub async fn flush(&self) {
        self.spool.flush().await;
    }
}

/// A message's state for tests.
#[cfg(test)]
pub(crate) fn test_meta(id: u64) -> Meta {
    Meta {
        id,
        created: 10,
        from: "a@b.test".into(),
        rcpts: vec![Rcpt {
            addr: "c@d.test".into(),
            state: RcptState::Pending,
            last_error: "451 later".into(),
            notified: false,
        }],
        attempts: 2,
        next_try: 500,
        held: false,
        warned: false,
        size: 3,
        client: "127.0.0.1".into(),
        subject: "Test".into(),
    }
}
