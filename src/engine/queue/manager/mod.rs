//! The queue manager: the one task that owns the queue's state. It schedules delivery
//! attempts within the connection limits, applies the re-send policy (attempts, delay), marks
//! recipients delivered or failed, sends failure notices (durably, before the original may
//! go) and delay warnings, answers queue commands and pages of the list, publishes a summary
//! (the length) for the GUI, and trims the spool.
//!
//! An administrator's Retry Now does not use up an attempt: an attempt it starts ahead of
//! schedule is not counted, and the message keeps the schedule it had. A retry asked for while
//! an attempt runs is kept and honoured when that attempt ends.
//!
//! [`attempt`] is one delivery attempt of one message, run as its own task; [`dispatch`]
//! decides which due messages get one now; [`notices`] are the failure notices and delay
//! warnings the manager sends; [`resolver`] keeps the resolver current; [`trim`] deletes and
//! compacts spool segments.

mod attempt;
mod dispatch;
mod due;
mod notices;
mod resolver;
mod trim;

use super::ids::Ids;
use super::page::{self, Page, PageQuery, SortBy};
use super::spool::{Damage, Location, PendingReplay, Record, Replayed, Spool, SpoolError};
use super::text::Interner;
use super::{
    ManagerMsg, Meta, Queue, QueueCommand, QueueEntry, QueueSummary, RcptState, id_text, now_secs,
};
use crate::engine::config::Config;
use crate::engine::config::duration::HumanDuration;
use crate::engine::config::schedule;
use crate::engine::current::Current;
use crate::engine::delivery::{ConnCache, RcptStatus};
use crate::engine::dns::Resolver;
use crate::engine::events::{EventBus, EventKind, Level, Outcome};
use crate::engine::stats::{Counter, Stats};
use attempt::Limits;
use dispatch::rcpt_destination;
use resolver::FileStamp;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often due messages are looked for and the summary republished.
const TICK: Duration = Duration::from_millis(250);
/// Lines of history kept per message.
const HISTORY: usize = 50;

/// What the manager needs from the engine.
pub struct Deps {
    /// Configuration in force.
    pub current: watch::Receiver<Arc<Current>>,
    /// Where events go.
    pub events: EventBus,
    /// `DATA/mailboxes`, for local recipients (failure notices to local senders).
    pub mailroot: PathBuf,
    /// The mail counters (delivered, given up).
    pub stats: Arc<Stats>,
}

/// The running manager. The engine stops it only after the sessions have drained, so a
/// message accepted during the drain is still handed over (and logged as queued).
pub struct ManagerTask {
    /// The task.
    handle: JoinHandle<()>,
    /// Stops it.
    stop: CancellationToken,
}

impl ManagerTask {
    /// Stops the manager and waits until its last state updates are synced.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        let _ = (&mut self.handle).await;
    }
}

/// What finished in the background.
enum Done {
    /// A delivery attempt of a message: (recipient index, status) pairs.
    Attempt(u64, Vec<(usize, RcptStatus)>),
    /// A failure notice about these recipients of a message: its queue id, or why it could
    /// not be queued.
    Notice(u64, Vec<usize>, Result<u64, String>),
    /// A relocation is on disk: (message id, old location, new location) of each message
    /// moved.
    Relocated(Vec<(u64, Location, Location)>),
}

/// One queued message as the manager keeps it.
struct Entry {
    /// Its state as written to the spool, its history (at most [`HISTORY`] lines, newest
    /// last) and whether an attempt ran when it was last shown: the one copy, shared with
    /// the pages handed out and copied only when it changes while a page holds it.
    shown: Arc<QueueEntry>,
    /// Where its data is in the spool.
    loc: Location,
    /// An attempt is running for it.
    in_flight: bool,
    /// The running attempt was started ahead of schedule by an administrator's retry: it does
    /// not count as an attempt, and the message then keeps `scheduled`.
    forced: bool,
    /// When the message was due before an administrator's retry made it due at once.
    scheduled: u64,
    /// A retry was asked for while an attempt was running.
    retry_requested: bool,
    /// A failure notice for it is being queued.
    notice_in_flight: bool,
    /// A failure notice that could not be queued is not tried again before this time.
    notice_after: u64,
}

impl Entry {
    /// A message as it enters the manager, its strings shared through `texts`.
    fn new(texts: &mut Interner, meta: Meta, loc: Location, first: &str) -> Entry {
        let mut e = Entry {
            shown: Arc::new(QueueEntry {
                meta: texts.meta(meta),
                in_flight: false,
                history: Box::default(),
            }),
            loc,
            in_flight: false,
            forced: false,
            scheduled: 0,
            retry_requested: false,
            notice_in_flight: false,
            notice_after: 0,
        };
        e.note(texts, first);
        e
    }

    /// Its state.
    fn meta(&self) -> &Meta {
        &self.shown.meta
    }

    /// Its state, to change (copied first if a page handed out still holds it).
    fn meta_mut(&mut self) -> &mut Meta {
        &mut Arc::make_mut(&mut self.shown).meta
    }

    /// Every recipient is settled and every failure notice owed is queued: the message may
    /// leave the queue.
    fn finished(&self) -> bool {
        !self.meta().has_pending()
            && !self.notice_in_flight
            && self
                .meta()
                .rcpts
                .iter()
                .all(|r| r.state != RcptState::Failed || r.notified)
    }

    /// Adds a line to its history (shared through `texts`: the same event in the same
    /// second for many messages, as a relay host that is down gives, is one string).
    fn note(&mut self, texts: &mut Interner, text: &str) {
        let t = time::OffsetDateTime::now_utc();
        let line = format!("{:02}:{:02}:{:02} {text}", t.hour(), t.minute(), t.second());
        let history = &mut Arc::make_mut(&mut self.shown).history;
        // Exactly as long as it is, no room kept (a long queue holds one history per
        // message, and most get a line or two): a line added is a copy of the pointers.
        let keep = history.len().min(HISTORY - 1);
        let mut lines = Vec::with_capacity(keep + 1);
        lines.extend_from_slice(&history[history.len() - keep..]);
        lines.push(texts.text(&line));
        *history = lines.into_boxed_slice();
    }

    /// A copy of the entry as shown (for `postern queue show`).
    fn view(&self) -> QueueEntry {
        let mut v = (*self.shown).clone();
        v.in_flight = self.in_flight;
        v
    }

    /// The entry as a page shows it: the one copy itself (a pointer, no copy), with the
    /// attempt flag brought up to date. A page then costs a pointer per message.
    fn shared_view(&mut self) -> Arc<QueueEntry> {
        if self.shown.in_flight != self.in_flight {
            Arc::make_mut(&mut self.shown).in_flight = self.in_flight;
        }
        self.shown.clone()
    }
}

/// The manager task's state.
struct Manager {
    /// The journal every change is written to.
    spool: Spool,
    /// The queue's own handle, for queueing failure notices and delay warnings.
    queue: Queue,
    /// What the engine handed over.
    deps: Deps,
    /// Queued messages by id; ids increase, so this is arrival order too.
    entries: BTreeMap<u64, Entry>,
    /// Makes the equal strings of queued messages (senders, recipients, clients, errors,
    /// history lines) one shared copy.
    texts: Interner,
    /// Where attempts and failure notices report when they end.
    done_tx: mpsc::UnboundedSender<Done>,
    /// Failure notices being queued (awaited at stop).
    notices: tokio::task::JoinSet<()>,
    /// Messages that owe a failure notice.
    owed: BTreeSet<u64>,
    /// The configuration the cached parts below were made for.
    cfg_seen: Option<Arc<Current>>,
    /// The configuration in force.
    cfg: Arc<Config>,
    /// The resolver for `outgoing_mails.dns_hosts`; `None` while it cannot be made.
    resolver: Option<Resolver>,
    /// `/etc/resolv.conf` as it was when the resolver was made from it.
    resolver_stamp: Option<FileStamp>,
    /// When to try making the resolver again after a failure.
    resolver_retry: Option<std::time::Instant>,
    /// Connection limits for `outgoing_mails.max_connections*`.
    limits: Limits,
    /// Outbound sessions kept open between deliveries; emptied when the outgoing settings
    /// change.
    conn_cache: Arc<ConnCache>,
    /// The summary published for the GUI (the list is read a page at a time).
    summary: watch::Sender<QueueSummary>,
    /// How many summaries were published.
    version: u64,
    /// Something changed since the summary was last published.
    dirty: bool,
    /// A relocation is being written (see [`trim`]); no other starts until it is done.
    relocating: bool,
    /// The replay at start failed or was cut short: the spool holds messages the manager
    /// does not know, so it is never trimmed.
    unreplayed: bool,
    /// The messages that may get an attempt, by destination and due time.
    due: due::DueIndex,
    /// Attempts running.
    in_flight: usize,
    /// Attempts running per destination (see [`destination`]).
    busy: HashMap<String, usize>,
    /// The destination each running attempt counts against, by queue id.
    running: HashMap<u64, String>,
    /// Destinations where no host answered, until when their mail is not tried (RFC 5321
    /// 4.5.4.1), with the last error.
    dead: HashMap<String, (u64, String)>,
}

/// Opens the spool in `dir` and starts the manager. The manager takes in the replayed
/// messages before anything else; the replay runs on a thread of its own when the spool has
/// an id reservation (see [`super::ids`]), so a server with a long queue listens at once and
/// new mail is spooled meanwhile. A spool without one (made before reservations) is replayed
/// here first, to learn the highest id.
pub fn start(dir: &Path, deps: Deps) -> Result<(Queue, ManagerTask), SpoolError> {
    let (spool, replay, ids) = match Ids::read(dir) {
        Some(reserved) => {
            let (spool, pending) = Spool::open_in_background(dir)?;
            (spool, Replay::Pending(pending), Ids::start(dir, reserved)?)
        }
        None => {
            let (spool, replayed) = Spool::open(dir)?;
            let last = replayed
                .messages
                .iter()
                .map(|(m, _)| m.id)
                .max()
                .unwrap_or(0);
            (spool, Replay::Done(replayed), Ids::start(dir, last)?)
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (summary_tx, summary_rx) = watch::channel(QueueSummary::default());
    let queue = Queue {
        spool: spool.clone(),
        tx,
        ids: Arc::new(ids),
        summary: summary_rx,
    };
    let cfg = Arc::new(deps.current.borrow().config.clone());
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let m = Manager {
        spool,
        queue: queue.clone(),
        limits: Limits::new(&cfg),
        conn_cache: ConnCache::new(),
        cfg,
        cfg_seen: None,
        resolver: None,
        resolver_stamp: None,
        resolver_retry: None,
        deps,
        entries: BTreeMap::new(),
        texts: Interner::default(),
        done_tx,
        notices: tokio::task::JoinSet::new(),
        owed: BTreeSet::new(),
        summary: summary_tx,
        version: 0,
        dirty: true,
        relocating: false,
        unreplayed: false,
        due: due::DueIndex::default(),
        in_flight: 0,
        busy: HashMap::new(),
        running: HashMap::new(),
        dead: HashMap::new(),
    };
    let stop = CancellationToken::new();
    let handle = tokio::spawn(m.run(replay, rx, done_rx, stop.clone()));
    Ok((queue, ManagerTask { handle, stop }))
}

/// The spool's replay, as the manager gets it.
enum Replay {
    /// Still running on its thread.
    Pending(PendingReplay),
    /// Done before the manager started.
    Done(Replayed),
}

impl Manager {
    /// Takes in the messages the replay found, before any other work: damage is reported,
    /// each message gets its entry, and those that owe a failure notice or were finished
    /// between two records are settled. A replay that failed leaves the spool untouched: no
    /// segment is ever trimmed while messages in it may be unknown.
    async fn take_in(&mut self, replay: Replay) {
        let replayed = match replay {
            Replay::Done(r) => Ok(r),
            Replay::Pending(rx) => rx.await.unwrap_or(Err(SpoolError::Stopped)),
        };
        let replayed = match replayed {
            Ok(r) => r,
            Err(e) => {
                self.unreplayed = true;
                self.deps.events.emit(
                    Level::Error,
                    None,
                    EventKind::Delivery {
                        text: format!(
                            "spool: the queue from before the restart could not be read ({e}); \
                             its segments are kept untouched until the next start"
                        ),
                    },
                );
                return;
            }
        };
        for d in &replayed.damaged {
            self.report_damage(d);
        }
        if let Some(highest) = replayed.messages.iter().map(|(m, _)| m.id).max() {
            self.queue.ids.raise(highest);
        }
        if !replayed.messages.is_empty() {
            self.deps.events.emit(
                Level::Info,
                None,
                EventKind::Delivery {
                    text: format!(
                        "queue: {} message(s) waiting from before the restart",
                        replayed.messages.len()
                    ),
                },
            );
        }
        let ids: Vec<u64> = replayed.messages.iter().map(|(m, _)| m.id).collect();
        let texts = &mut self.texts;
        let recovered: BTreeMap<u64, Entry> = (replayed.messages.into_iter())
            .map(|(meta, loc)| {
                let first = "recovered from the spool at start";
                (meta.id, Entry::new(texts, meta, loc, first))
            })
            .collect();
        // Built at once, the map's nodes are full; inserted one by one in order, they would
        // be about half full (some 40 octets more per queued message).
        if self.entries.is_empty() {
            self.entries = recovered;
        } else {
            self.entries.extend(recovered);
        }
        for id in ids {
            // A crash may have come between a give-up and its notice, or after the notice and
            // before the original's removal.
            self.settle(id, false);
        }
        self.dirty = true;
    }

    /// Logs a stretch of the spool the replay skipped.
    fn report_damage(&self, d: &Damage) {
        let kept = d
            .saved
            .as_ref()
            .map_or("they could not be saved".to_string(), |p| {
                format!("kept in {}", p.display())
            });
        let what = if d.tail {
            "at the end of the segment (a write torn by a crash: that mail was never acknowledged)"
        } else {
            "between valid records (damage on disk: the records after it were kept)"
        };
        let level = if d.tail { Level::Warn } else { Level::Error };
        self.deps.events.emit(
            level,
            None,
            EventKind::Delivery {
                text: format!(
                    "spool: skipped {} damaged octets at offset {} of segment {} {what}; {kept}",
                    d.len, d.offset, d.seg
                ),
            },
        );
    }
}

impl Manager {
    async fn run(
        mut self,
        replay: Replay,
        mut rx: mpsc::UnboundedReceiver<ManagerMsg>,
        mut done: mpsc::UnboundedReceiver<Done>,
        shutdown: CancellationToken,
    ) {
        // New mail spooled meanwhile waits in `rx`; a stop during the replay skips it.
        tokio::select! {
            _ = shutdown.cancelled() => self.unreplayed = true,
            _ = self.take_in(replay) => {}
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(m) => { self.handle(m).await; self.dispatch(); }
                    None => break,
                },
                Some(d) = done.recv() => {
                    match d {
                        Done::Attempt(id, res) => self.finish(id, res),
                        Done::Notice(id, owed, res) => self.notice_done(id, owed, res),
                        Done::Relocated(moved) => self.relocated(moved),
                    }
                    self.dispatch();
                }
                _ = tick.tick() => {
                    ticks += 1;
                    self.refresh_config();
                    #[cfg(debug_assertions)]
                    self.check_due_index();
                    if ticks.is_multiple_of(4) {
                        self.refresh_resolver();
                    }
                    self.warn_delayed();
                    for id in self.owed.iter().copied().collect::<Vec<_>>() {
                        self.settle(id, false);
                    }
                    self.dispatch();
                    if ticks.is_multiple_of(20) {
                        self.trim();
                    }
                    if self.dirty {
                        self.publish();
                    }
                }
            }
        }
        // Messages handed over just before the stop (by sessions that finished during the
        // drain) are taken in, so they are logged and their state is known.
        while let Ok(m) = rx.try_recv() {
            self.handle(m).await;
        }
        // Notices being queued finish (each is one spool write); their outcome is found
        // again from the spool at the next start if it was not recorded.
        while self.notices.join_next().await.is_some() {}
        while let Ok(d) = done.try_recv() {
            if let Done::Notice(id, owed, res) = d {
                self.notice_done(id, owed, res);
            }
        }
        self.spool.flush().await;
        self.conn_cache.close_all();
    }

    /// Publishes the summary: a few numbers, whatever the queue's length.
    fn publish(&mut self) {
        self.version += 1;
        self.summary.send_replace(QueueSummary {
            total: self.entries.len(),
            in_flight: self.in_flight,
            version: self.version,
        });
        self.dirty = false;
    }

    /// The page `q` asks for: in id order a walk of the map from the window's start (the
    /// map is in id order), in any other a selection over the entries ([`page::select`]).
    /// Either way the page shares each entry's one copy.
    fn page(&mut self, q: &PageQuery) -> Page {
        use std::ops::Bound::{Excluded, Unbounded};
        let ids: Vec<u64> = if q.sort == SortBy::Id {
            let (lo, hi) = match (q.after, q.descending) {
                (None, _) => (Unbounded, Unbounded),
                (Some(a), false) => (Excluded(a), Unbounded),
                (Some(a), true) => (Unbounded, Excluded(a)),
            };
            let range = self.entries.range((lo, hi)).map(|(id, _)| *id);
            let skip = if q.after.is_some() { 0 } else { q.offset };
            if q.descending {
                range.rev().skip(skip).take(q.max_len()).collect()
            } else {
                range.skip(skip).take(q.max_len()).collect()
            }
        } else {
            page::select(self.entries.values(), Entry::meta, q)
                .into_iter()
                .map(|e| e.meta().id)
                .collect()
        };
        let total = self.entries.len();
        let mut shown = |id: u64| self.entries.get_mut(&id).map(Entry::shared_view);
        Page {
            total,
            offset: q.offset,
            entries: ids.into_iter().filter_map(&mut shown).collect(),
            with: q.with.and_then(shown),
        }
    }

    fn log(&self, level: Level, id: u64, text: String) {
        self.deps
            .events
            .emit(level, Some(&id_text(id)), EventKind::Delivery { text });
    }

    fn refresh_config(&mut self) {
        let cur = self.deps.current.borrow().clone();
        if self.cfg_seen.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cur)) {
            return;
        }
        let new = Arc::new(cur.config.clone());
        let o = &new.outgoing_mails;
        if o.dns_hosts != self.cfg.outgoing_mails.dns_hosts {
            self.resolver = None;
        }
        if self.limits.sizes != (o.max_connections, o.max_connections_per_domain) {
            self.limits = Limits::new(&new);
        }
        if *o != self.cfg.outgoing_mails || new.server.hostname != self.cfg.server.hostname {
            self.conn_cache.close_all();
        }
        self.cfg = new;
        self.cfg_seen = Some(cur);
        // Destinations depend on the mode, the local domains and the domain maps.
        self.reindex_all();
        self.refresh_resolver();
    }

    async fn handle(&mut self, msg: ManagerMsg) {
        match msg {
            ManagerMsg::Arrived(meta, loc) => {
                let rcpts: Vec<String> =
                    meta.rcpts.iter().map(|r| format!("<{}>", r.addr)).collect();
                self.log(
                    Level::Info,
                    meta.id,
                    format!(
                        "queued from <{}> to {} ({} octets)",
                        meta.from,
                        rcpts.join(", "),
                        meta.size
                    ),
                );
                let e = Entry::new(&mut self.texts, meta, loc, "queued");
                let id = e.meta().id;
                self.entries.insert(id, e);
                self.reindex(id);
                self.dirty = true;
            }
            ManagerMsg::Command(cmd, done) => {
                let n = self.command(cmd);
                self.dirty = true;
                let _ = done.send(n);
            }
            ManagerMsg::Page(q, done) => {
                let _ = done.send(self.page(&q));
            }
            ManagerMsg::Show(id, done) => {
                let found = self.entries.get(&id).map(|e| (e.view(), e.loc));
                let spool = self.spool.clone();
                tokio::spawn(async move {
                    let out = match found {
                        Some((view, loc)) => {
                            let data = tokio::task::spawn_blocking(move || spool.read(loc)).await;
                            Some((view, data.ok().and_then(Result::ok).unwrap_or_default()))
                        }
                        None => None,
                    };
                    let _ = done.send(out);
                });
            }
        }
    }

    fn command(&mut self, cmd: QueueCommand) -> usize {
        let ids = cmd.target().select(self.entries.keys().copied());
        let now = now_secs();
        let what = cmd.done_text();
        for &id in &ids {
            let e = self.entries.get_mut(&id).expect("selected");
            if let QueueCommand::Retry(_) | QueueCommand::Release(_) = cmd {
                // The administrator wants a real try, even where no host answered lately.
                for r in &e.meta().rcpts {
                    if let Some(dest) = rcpt_destination(&self.cfg, &r.addr) {
                        self.dead.remove(&dest);
                    }
                }
            }
            if let QueueCommand::Retry(_) = cmd {
                if e.in_flight {
                    // Honoured when the running attempt ends.
                    e.retry_requested = true;
                } else if e.meta().next_try > now && !e.meta().held {
                    // Ahead of schedule: this attempt does not count.
                    e.forced = true;
                    e.scheduled = e.meta().next_try;
                }
            }
            let record = cmd.apply(e.meta_mut(), now);
            let in_flight = e.in_flight;
            if matches!(record, Record::Remove(_)) {
                self.entries.remove(&id);
            } else {
                e.note(&mut self.texts, what);
            }
            self.spool.append_nowait(record);
            self.reindex(id);
            self.log(Level::Info, id, what.into());
            if let QueueCommand::DeleteNotify(_) = cmd
                && !in_flight
            {
                // The notice now owed is queued; the message leaves once it is synced (a
                // running attempt settles the message itself when it ends).
                self.settle(id, false);
            }
        }
        ids.len()
    }

    /// Applies the results of an attempt.
    fn finish(&mut self, id: u64, results: Vec<(usize, RcptStatus)>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(dest) = self.running.remove(&id) {
            if let Some(n) = self.busy.get_mut(&dest) {
                *n -= 1;
                if *n == 0 {
                    self.busy.remove(&dest);
                }
            }
            self.remember(dest, &results);
        }
        self.dirty = true;
        let cfg = self.cfg.clone();
        let now = now_secs();
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        e.in_flight = false;
        // An attempt an administrator's retry started ahead of schedule is not counted.
        let counted = !std::mem::take(&mut e.forced);
        if counted {
            e.meta_mut().attempts += 1;
        }
        let attempt = e.meta().attempts.max(1);
        let mut notes = Vec::new();
        for (i, st) in results {
            let r = &mut e.meta_mut().rcpts[i];
            match st {
                RcptStatus::Delivered(reply) => {
                    r.state = RcptState::Delivered;
                    r.last_error = self.texts.text("");
                    // The delivery module already logged this; it goes to the history only.
                    notes.push((
                        Level::Debug,
                        outcome(&r.addr, attempt, Outcome::Delivered, reply),
                    ));
                }
                RcptStatus::Permanent(err) => {
                    r.state = RcptState::Failed;
                    notes.push((
                        Level::Warn,
                        outcome(&r.addr, attempt, Outcome::Failed, err.clone()),
                    ));
                    r.last_error = self.texts.text(&err);
                }
                RcptStatus::Temporary(err) => {
                    notes.push((
                        Level::Warn,
                        outcome(&r.addr, attempt, Outcome::Deferred, err.clone()),
                    ));
                    // A recipient given up during the attempt (Delete with notice) keeps
                    // the reason it was given up for.
                    if r.state == RcptState::Pending {
                        r.last_error = self.texts.text(&err);
                    }
                }
            }
        }
        let o = &cfg.outgoing_mails;
        let max = match o.resend_attempts {
            0 => String::new(),
            n => format!(" of {n}"),
        };
        let age = Duration::from_secs(now.saturating_sub(e.meta().created));
        if e.meta().has_pending() {
            if counted && schedule::gives_up(o, attempt, age) {
                for r in e
                    .meta_mut()
                    .rcpts
                    .iter_mut()
                    .filter(|r| r.state == RcptState::Pending)
                {
                    r.state = RcptState::Failed;
                    let after = if o.resend_attempts > 0 && attempt >= o.resend_attempts {
                        format!("{attempt} attempts")
                    } else {
                        let waited = schedule::in_words(age);
                        format!("{attempt} attempts, having waited {waited}")
                    };
                    let text = format!("gave up after {after}; last error: {}", r.last_error);
                    r.last_error = self.texts.text(&text);
                    notes.push((
                        Level::Warn,
                        outcome(&r.addr, attempt, Outcome::GivenUp, String::new()),
                    ));
                }
            } else {
                let text = if counted {
                    let next = schedule::wait_after(o, attempt);
                    e.meta_mut().next_try = now + next.as_secs();
                    format!(
                        "next attempt ({}{max}) in {}",
                        attempt + 1,
                        HumanDuration(next)
                    )
                } else {
                    e.meta_mut().next_try = e.scheduled;
                    format!(
                        "the retry asked for did not count as an attempt; attempt {}{max} \
                         stays as scheduled",
                        e.meta().attempts + 1
                    )
                };
                notes.push((Level::Info, EventKind::Delivery { text }));
            }
        }
        let mut retry_dests = Vec::new();
        if std::mem::take(&mut e.retry_requested) && e.meta().has_pending() {
            // A real try, even where no host answered just now.
            retry_dests = (e.meta().rcpts.iter())
                .filter_map(|r| rcpt_destination(&cfg, &r.addr))
                .collect();
            if e.meta().next_try > now {
                e.forced = true;
                e.scheduled = e.meta().next_try;
            }
            e.meta_mut().next_try = now;
            let text = "a retry was asked for during the attempt: trying again now".into();
            notes.push((Level::Info, EventKind::Delivery { text }));
        }
        for (_, n) in &notes {
            e.note(&mut self.texts, &n.to_string());
        }
        for (level, n) in notes {
            if level > Level::Debug {
                self.deps.events.emit(level, Some(&id_text(id)), n);
            }
        }
        for dest in retry_dests {
            self.dead.remove(&dest);
        }
        self.settle(id, true);
    }

    /// After a change to message `id`: queues the failure notice it owes (after every pass,
    /// not only when the whole message is done), then removes the message if it is finished,
    /// or else records its state when `changed`.
    fn settle(&mut self, id: u64, changed: bool) {
        let changed = self.send_owed_notice(id) || changed;
        self.reindex(id);
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        self.dirty = true;
        if !e.finished() || e.in_flight {
            if changed {
                self.spool.append_nowait(Record::Update(e.meta().clone()));
            }
            return;
        }
        let meta = e.meta().clone();
        self.entries.remove(&id);
        self.due.set(id, None);
        self.owed.remove(&id);
        self.spool.append_nowait(Record::Remove(id));
        let failed = meta
            .rcpts
            .iter()
            .filter(|r| r.state == RcptState::Failed)
            .count();
        let level = if failed == 0 {
            Level::Info
        } else {
            Level::Warn
        };
        // "Sent" is mail that left: a failure notice delivered only into local mailboxes
        // is not.
        let cur = self.deps.current.borrow().clone();
        let cfg = &cur.config;
        let delivered_out = meta.rcpts.iter().any(|r| {
            r.state != RcptState::Failed
                && !(meta.from.is_empty()
                    && r.addr
                        .rsplit_once('@')
                        .is_some_and(|(_, d)| cfg.is_local_domain(d)))
        });
        if delivered_out {
            self.deps.stats.count(Counter::Delivered);
        }
        if failed > 0 {
            self.deps.stats.count(Counter::GivenUp);
        }
        self.deps.events.emit(
            level,
            Some(&id_text(id)),
            EventKind::QueueFinished {
                id: id_text(id),
                delivered: meta.rcpts.len() - failed,
                failed,
            },
        );
    }
}

/// The event for how an attempt ended for one recipient.
fn outcome(rcpt: &str, attempt: u32, outcome: Outcome, detail: String) -> EventKind {
    EventKind::RecipientOutcome {
        rcpt: rcpt.to_string(),
        attempt,
        outcome,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let meta = Meta {
            id: 7,
            created: 1,
            from: "a@b.test".into(),
            rcpts: vec![super::super::Rcpt {
                addr: "c@d.test".into(),
                state: RcptState::Pending,
                last_error: "".into(),
                notified: false,
            }],
            attempts: 0,
            next_try: 0,
            held: false,
            warned: false,
            size: 10,
            client: "127.0.0.1".into(),
            subject: "".into(),
        };
        let loc = Location {
            seg: 1,
            offset: 0,
            len: 10,
        };
        Entry::new(&mut Interner::default(), meta, loc, "queued")
    }

    #[test]
    fn an_entry_is_one_copy_shared_with_the_pages_until_it_changes() {
        let mut e = entry();
        let first = e.shared_view();
        // Shown again unchanged: the same copy, nothing made.
        assert!(Arc::ptr_eq(&first, &e.shared_view()));
        // A change while a page holds it: the entry gets its own copy, the page keeps what
        // it showed.
        e.meta_mut().attempts = 1;
        e.note(&mut Interner::default(), "deferred");
        let second = e.shared_view();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(first.meta.attempts, 0);
        assert_eq!(first.history.len(), 1);
        assert_eq!(second.meta.attempts, 1);
        assert_eq!(second.history.len(), 2);
        // Once the old page is gone, a change is made in place: still one copy.
        drop(first);
        drop(second);
        let before = Arc::as_ptr(&e.shown);
        e.meta_mut().attempts = 2;
        assert_eq!(Arc::as_ptr(&e.shown), before);
        // The attempt flag is brought up to date when shown.
        e.in_flight = true;
        assert!(e.shared_view().in_flight);
    }

    /// Mail number `i` of a long test queue: senders, subjects, sizes and attempts repeat,
    /// some on hold; none due for a month.
    fn varied(i: u64, now: u64) -> Meta {
        Meta {
            id: 1000 + i,
            created: now,
            from: format!("s{:02}@b.test", i % 37).into(),
            rcpts: vec![super::super::Rcpt {
                addr: format!("r{:03}@d.test", (i * 7919) % 1009).into(),
                state: RcptState::Pending,
                last_error: "".into(),
                notified: false,
            }],
            attempts: (i % 5) as u32,
            next_try: now + 30 * 86_400 + (i * 31) % 1000,
            held: i.is_multiple_of(10),
            warned: false,
            size: 100 + i % 13,
            client: "127.0.0.1".into(),
            subject: format!("subject {:04}", (i * 13) % 4001).into(),
        }
    }

    #[tokio::test]
    async fn a_page_of_a_long_queue_is_its_window_in_every_order() {
        use super::super::spool::Content;
        const N: u64 = 5000;
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let now = now_secs();
        let metas: Vec<Meta> = (0..N).map(|i| varied(i, now)).collect();
        {
            let (spool, _) = Spool::open(&spool_dir).unwrap();
            let written: Vec<_> = (metas.iter())
                .map(|m| spool.send(Record::Put(m.clone(), Content::bytes(&b"x"[..]))))
                .collect();
            for w in written {
                w.await.unwrap();
            }
            spool.flush().await;
        }
        let (_cur_tx, current) = watch::channel(Arc::new(Current::new(Config::default(), None)));
        let deps = Deps {
            current,
            events: EventBus::new(),
            mailroot: dir.path().join("mailboxes"),
            stats: Arc::new(Stats::load(dir.path()).0),
        };
        let (queue, mut task) = start(&spool_dir, deps).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while queue.len() != N as usize {
            assert!(std::time::Instant::now() < deadline, "the replay published");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Each column's key, written out here rather than taken from the query's own order.
        type Key = Box<dyn Fn(&Meta) -> (String, u64)>;
        let keys: Vec<(SortBy, Key)> = vec![
            (SortBy::Id, Box::new(|m| (String::new(), m.id))),
            (SortBy::From, Box::new(|m| (m.from.to_string(), m.id))),
            (
                SortBy::To,
                Box::new(|m| (m.rcpts[0].addr.to_string(), m.id)),
            ),
            (SortBy::Subject, Box::new(|m| (m.subject.to_string(), m.id))),
            (
                SortBy::Size,
                Box::new(|m| (format!("{:020}", m.size), m.id)),
            ),
            (
                SortBy::Attempts,
                Box::new(|m| (format!("{:010}", m.attempts), m.id)),
            ),
            (
                SortBy::NextTry,
                Box::new(|m| (format!("{}{:020}", m.held as u8, m.next_try), m.id)),
            ),
        ];
        let held = metas[7].id;
        for (sort, key) in &keys {
            let mut want: Vec<&Meta> = metas.iter().collect();
            want.sort_by_key(|m| key(m));
            for descending in [false, true] {
                if descending {
                    want.reverse();
                }
                for (offset, limit) in [(0, 1000), (1000, 1000), (4990, 1000), (6000, 10)] {
                    let q = PageQuery {
                        sort: *sort,
                        descending,
                        offset,
                        limit,
                        after: None,
                        with: Some(held),
                    };
                    let page = queue.page(q.clone()).await;
                    assert_eq!(page.total, N as usize, "{q:?}");
                    assert_eq!(page.offset, offset);
                    let got: Vec<u64> = page.entries.iter().map(|e| e.meta.id).collect();
                    let expected: Vec<u64> =
                        want.iter().skip(offset).take(limit).map(|m| m.id).collect();
                    assert_eq!(got, expected, "{q:?}");
                    assert_eq!(page.with.as_ref().map(|e| e.meta.id), Some(held));
                    assert_eq!(
                        page.entries.first().map(|e| &e.meta),
                        expected.first().map(|_| want[offset])
                    );
                }
            }
        }
        // A page is the entries themselves (a pointer each), the count is published apart.
        let q = PageQuery::by_id(3);
        let a = queue.page(q.clone()).await;
        let b = queue.page(q).await;
        assert!(Arc::ptr_eq(&a.entries[0], &b.entries[0]));
        assert_eq!(queue.summary().total, N as usize);
        // A mail no longer queued comes back as none.
        assert!(queue.entry(1).await.is_none());
        assert_eq!(queue.entry(held).await.unwrap().meta, metas[7]);
        task.stop().await;
    }

    #[test]
    fn a_queued_messages_fixed_part_stays_small() {
        // What every queued mail costs beside its strings (shared) and its recipients and
        // history lines (docs/figures.md, "Memory per queued mail"): an entry in the map and
        // the shared state (with the `Arc`'s two counts, a 160-octet block).
        use std::mem::size_of;
        assert!(size_of::<Entry>() <= 56, "{}", size_of::<Entry>());
        assert!(
            size_of::<QueueEntry>() <= 136,
            "{}",
            size_of::<QueueEntry>()
        );
        assert!(size_of::<super::super::Rcpt>() <= 40);
    }
}
