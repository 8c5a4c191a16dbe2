//! [`EventBus`]: where every event goes — the bounded ring, live subscribers, the log-file
//! writer, `tracing` — and the GUI's wake callback.

use super::{Event, EventKind, Level};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::{broadcast, mpsc};

/// How many events the in-memory ring keeps.
pub const RING_CAPACITY: usize = 10_000;

type Wake = Box<dyn Fn() + Send + Sync>;

struct Inner {
    /// The most recent events, oldest first.
    ring: Mutex<VecDeque<Event>>,
    /// Live subscribers (log panes).
    live: broadcast::Sender<Event>,
    /// The log-file writer, when one runs. Bounded: when the disk cannot keep up (a client
    /// flooding commands), events are counted as dropped rather than held in memory.
    file: Mutex<Option<mpsc::Sender<Event>>>,
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
            dropped: AtomicU64::new(0),
            seq: AtomicU64::new(1),
            wake: Mutex::new(None),
        }))
    }

    /// Reports an event; its log view comes from its kind ([`EventKind::channel`]).
    pub fn emit(&self, level: Level, session: Option<&str>, kind: EventKind) {
        let ev = Event {
            seq: self.0.seq.fetch_add(1, Ordering::Relaxed),
            time: SystemTime::now(),
            level,
            channel: kind.channel(),
            session: session.map(str::to_string),
            kind,
        };
        match level {
            Level::Debug => tracing::debug!(target: "postern", "{ev}"),
            Level::Info => tracing::info!(target: "postern", "{ev}"),
            Level::Warn => tracing::warn!(target: "postern", "{ev}"),
            Level::Error => tracing::error!(target: "postern", "{ev}"),
        }
        if let Some(tx) = self.0.file.lock().expect("file lock").as_ref()
            && tx.try_send(ev.clone()).is_err()
        {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut ring = self.0.ring.lock().expect("ring lock");
            if ring.len() == RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(ev.clone());
        }
        let _ = self.0.live.send(ev);
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
            .cloned()
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
    pub fn attach_file_writer(&self, tx: mpsc::Sender<Event>) {
        *self.0.file.lock().expect("file lock") = Some(tx);
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
