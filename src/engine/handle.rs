//! [`EngineHandle`]: how a front end (the desktop app, `postern serve`, tests) drives a running
//! engine: commands in, status and events out. Nothing here blocks.

use super::access::Gate;
use super::access::abuse::BlockInfo;
use super::current::Current;
use super::events::EventBus;
use super::options::EngineOptions;
use super::stats::{Stats, StatsSnapshot};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use super::command::{Command, ListenerChange, ReloadOutcome, ReloadReport};
pub use super::listener::ListenerStatus;
use super::listener::ListenerTable;

/// A picture of the engine now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Every listener the configuration asks for.
    pub listeners: Vec<ListenerStatus>,
    /// Today's mail counters (kept across restarts).
    pub stats: StatsSnapshot,
    /// Whether the engine is still running.
    pub running: bool,
}

/// The blocks in force: the gate's abuse tables under the configuration in force.
pub(crate) struct Blocks {
    /// The policy gate.
    pub(crate) gate: Gate,
    /// The configuration in force.
    pub(crate) current: watch::Receiver<Arc<Current>>,
}

/// Controls one running engine.
pub struct EngineHandle {
    /// Where the engine reports.
    events: EventBus,
    /// Commands to the supervisor.
    commands: mpsc::UnboundedSender<Command>,
    /// Cancelling it stops the engine gracefully.
    shutdown: CancellationToken,
    /// Listener states kept by the supervisor.
    listeners: ListenerTable,
    /// Counters.
    stats: Arc<Stats>,
    /// The outgoing queue.
    queue: crate::engine::queue::Queue,
    /// The blocks in force (boxed: the handle travels in the GUI's start results).
    blocks: Box<Blocks>,
    /// Where it keeps things.
    options: EngineOptions,
    /// The supervisor; it ends once shutdown is complete.
    done: Option<JoinHandle<()>>,
}

impl EngineHandle {
    #[expect(clippy::too_many_arguments, reason = "called once, by engine::start")]
    pub(crate) fn new(
        events: EventBus,
        commands: mpsc::UnboundedSender<Command>,
        shutdown: CancellationToken,
        listeners: ListenerTable,
        stats: Arc<Stats>,
        queue: crate::engine::queue::Queue,
        blocks: Blocks,
        options: EngineOptions,
        done: JoinHandle<()>,
    ) -> Self {
        EngineHandle {
            events,
            commands,
            shutdown,
            listeners,
            stats,
            queue,
            blocks: Box::new(blocks),
            options,
            done: Some(done),
        }
    }

    /// The outgoing queue: `len()`/`summary()` and `page()` for display, `command_nowait` for
    /// Retry/Delete/Hold.
    pub fn queue(&self) -> &crate::engine::queue::Queue {
        &self.queue
    }

    /// The blocks in force now (failed-login lockouts, tarpit blocks), oldest first.
    pub fn blocks(&self) -> Vec<BlockInfo> {
        let cur = self.blocks.current.borrow().clone();
        self.blocks.gate.blocks(&cur)
    }

    /// Lifts the block of `ip` (its IPv6 network) and clears its failure counts; the lift is
    /// logged on the Security channel as done from the window. `None` when it was not blocked.
    pub fn unblock(&self, ip: IpAddr) -> Option<BlockInfo> {
        let cur = self.blocks.current.borrow().clone();
        self.blocks.gate.unblock(&cur, ip, "the window")
    }

    /// The event bus (recent events, live subscription).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Configuration file and data directory.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Asks the engine to re-read the configuration file now; the receiver gets what the
    /// running server did (poll it with `try_recv`, or await it). `None` when the engine has
    /// stopped.
    pub fn reload(&self) -> Option<tokio::sync::oneshot::Receiver<ReloadReport>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Command::Reload(Some(tx))).then_some(rx)
    }

    /// Sends a command; false when the engine has stopped.
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// The engine now.
    pub fn status(&self) -> Status {
        let listeners = super::listener::rows(&self.listeners);
        Status {
            listeners,
            stats: self.stats.snapshot(),
            running: self.done.as_ref().is_some_and(|d| !d.is_finished()),
        }
    }

    /// The bound address of the first listener that is up with this name.
    pub fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.status()
            .listeners
            .into_iter()
            .find(|l| l.name == name)
            .and_then(|l| l.addr)
    }

    /// Asks the engine to stop (does not wait).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Stops the engine and waits until listeners are closed, sessions have finished (idle
    /// ones are answered 421) and the log is written.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }

    /// Waits until the engine has stopped (after [`EngineHandle::stop`]).
    /// Cancel-safe: it can be used in `select!` and called again.
    pub async fn wait(&mut self) {
        if let Some(done) = self.done.as_mut() {
            let _ = done.await;
            self.done = None;
        }
    }
}
