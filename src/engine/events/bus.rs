//! [`EventBus`]: where every event goes — the bounded ring, live subscribers, the log-file
//! writer, `tracing` — and the GUI's wake callback.
//!
//! The log-file writer gets only the events at or above its level ([`EventBus::set_file_level`]),
//! so protocol detail costs nothing there when the file does not keep it. `tracing` (the
//! console of `postern serve`) gets the events of mail traffic (sessions, delivery) under the
//! target [`MAIL_TARGET`] and the rest under `postern`, so the console can keep the server's
//! own story and leave each mail's lines to the log file.

use super::Channel;
use super::{Event, EventKind, Level};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::{broadcast, mpsc};

/// The `tracing` target of the events of mail traffic: SMTP, IMAP and POP3 sessions and
/// outbound delivery (security events and the server's own stay under `postern`).
pub const MAIL_TARGET: &str = "postern::mail";

/// Whether events of this view are mail traffic (the console's [`MAIL_TARGET`]).
fn is_mail(channel: Channel) -> bool {
    matches!(
        channel,
        Channel::SmtpIn | Channel::SmtpOut | Channel::Imap | Channel::Pop3
    )
}

/// How many events the in-memory ring keeps.
pub const RING_CAPACITY: usize = 10_000;

type Wake = Box<dyn Fn() + Send + Sync>;

struct Inner {
    /// The most recent events, oldest first (shared with the log-file writer's copy).
    ring: Mutex<VecDeque<Arc<Event>>>,
    /// Live subscribers (log panes).
    live: broadcast::Sender<Event>,
    /// The log-file writer, when one runs. Bounded: when the disk cannot keep up (a client
    /// flooding commands), events are counted as dropped rather than held in memory.
    file: Mutex<Option<mpsc::Sender<Arc<Event>>>>,
    /// The lowest level the log-file writer keeps (a [`Level`] as a number).
    file_level: AtomicU8,
    /// The lowest level the ring keeps (a [`Level`] as a number).
    ring_level: AtomicU8,
    /// Events the log-file writer had no room for since it last said so.
    dropped: AtomicU64,
    /// Next sequence number.
    seq: AtomicU64,
    /// Called after each event so a UI can repaint; set by the GUI.
    wake: Mutex<Option<Wake>>,
}

/// Where events go. Cheap to clone.
#[derive(Clone)]
pub struct EventBus(Arc<Inner>);

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        EventBus(Arc::new(Inner {
            ring: Mutex::new(VecDeque::with_capacity(1024)),
            live: broadcast::channel(4096).0,
            file: Mutex::new(None),
            file_level: AtomicU8::new(Level::Debug as u8),
            ring_level: AtomicU8::new(Level::Debug as u8),
            dropped: AtomicU64::new(0),
            seq: AtomicU64::new(1),
            wake: Mutex::new(None),
        }))
    }

    /// Whether an event of `level` in view `channel` would go anywhere: the log file or the
    /// ring keep its level, a log pane listens, or the console shows it. Callers ask before
    /// making a costly event (protocol detail); [`EventBus::emit`] drops one nobody wants.
    pub fn wants(&self, level: Level, channel: Channel) -> bool {
        let n = level as u8;
        if n >= self.0.file_level.load(Ordering::Relaxed)
            || n >= self.0.ring_level.load(Ordering::Relaxed)
            || self.0.live.receiver_count() > 0
        {
            return true;
        }
        use tracing::Level as T;
        match (is_mail(channel), level) {
            (false, Level::Debug) => tracing::enabled!(target: "postern", T::DEBUG),
            (false, Level::Info) => tracing::enabled!(target: "postern", T::INFO),
            (false, Level::Warn) => tracing::enabled!(target: "postern", T::WARN),
            (false, Level::Error) => tracing::enabled!(target: "postern", T::ERROR),
            (true, Level::Debug) => tracing::enabled!(target: MAIL_TARGET, T::DEBUG),
            (true, Level::Info) => tracing::enabled!(target: MAIL_TARGET, T::INFO),
            (true, Level::Warn) => tracing::enabled!(target: MAIL_TARGET, T::WARN),
            (true, Level::Error) => tracing::enabled!(target: MAIL_TARGET, T::ERROR),
        }
    }

    /// Reports an event; its log view comes from its kind ([`EventKind::channel`]).
    pub fn emit(&self, level: Level, session: Option<&str>, kind: EventKind) {
        let channel = kind.channel();
        if !self.wants(level, channel) {
            return;
        }
        let ev = Arc::new(Event {
            seq: self.0.seq.fetch_add(1, Ordering::Relaxed),
            time: SystemTime::now(),
            level,
            channel,
            session: session.map(str::to_string),
            kind,
        });
        match (level, is_mail(channel)) {
            (Level::Debug, false) => tracing::debug!(target: "postern", "{ev}"),
            (Level::Info, false) => tracing::info!(target: "postern", "{ev}"),
            (Level::Warn, false) => tracing::warn!(target: "postern", "{ev}"),
            (Level::Error, false) => tracing::error!(target: "postern", "{ev}"),
            (Level::Debug, true) => tracing::debug!(target: MAIL_TARGET, "{ev}"),
            (Level::Info, true) => tracing::info!(target: MAIL_TARGET, "{ev}"),
            (Level::Warn, true) => tracing::warn!(target: MAIL_TARGET, "{ev}"),
            (Level::Error, true) => tracing::error!(target: MAIL_TARGET, "{ev}"),
        }
        // The file and the ring share the one event; a live subscriber (a log pane) gets its
        // own copy.
        if level as u8 >= self.0.file_level.load(Ordering::Relaxed)
            && let Some(tx) = self.0.file.lock().expect("file lock").as_ref()
            && tx.try_send(Arc::clone(&ev)).is_err()
        {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if level as u8 >= self.0.ring_level.load(Ordering::Relaxed) {
            let mut ring = self.0.ring.lock().expect("ring lock");
            if ring.len() == RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(Arc::clone(&ev));
        }
        if self.0.live.receiver_count() > 0 {
            let _ = self.0.live.send(Event::clone(&ev));
        }
        if let Some(wake) = self.0.wake.lock().expect("wake lock").as_ref() {
            wake();
        }
    }

    /// Shorthand for an event of a session.
    pub fn session(&self, level: Level, id: &str, kind: EventKind) {
        self.emit(level, Some(id), kind);
    }

    /// The events still in the ring, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.0
            .ring
            .lock()
            .expect("ring lock")
            .iter()
            .map(|e| Event::clone(e))
            .collect()
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.live.subscribe()
    }

    /// How many events the log file missed since the last call (and resets the count).
    pub fn take_dropped(&self) -> u64 {
        self.0.dropped.swap(0, Ordering::Relaxed)
    }

    /// Sends every following event to `tx` as well (the log-file writer).
    pub fn attach_file_writer(&self, tx: mpsc::Sender<Arc<Event>>) {
        *self.0.file.lock().expect("file lock") = Some(tx);
    }

    /// The lowest level the log-file writer keeps: events below it are not sent to it.
    pub fn set_file_level(&self, level: Level) {
        self.0.file_level.store(level as u8, Ordering::Relaxed);
    }

    /// The lowest level the ring ([`EventBus::recent`]) keeps; everything by default. A
    /// headless server, whose ring nobody reads at Debug, keeps Info and up.
    pub fn set_ring_level(&self, level: Level) {
        self.0.ring_level.store(level as u8, Ordering::Relaxed);
    }

    /// Stops feeding the log-file writer (it then drains and ends).
    pub fn detach_file_writer(&self) {
        self.0.file.lock().expect("file lock").take();
    }

    /// Installs the callback run after each event (a UI's repaint request).
    pub fn set_wake(&self, wake: impl Fn() + Send + Sync + 'static) {
        *self.0.wake.lock().expect("wake lock") = Some(Box::new(wake));
    }
}
