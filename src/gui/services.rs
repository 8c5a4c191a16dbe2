//! [`Services`]: the desktop app's hold on the engine. Starting and stopping run as tasks on
//! the tokio runtime and report back through a channel that the UI polls each frame, so the UI
//! thread never blocks or awaits. Stopping is [`EngineHandle::shutdown`] (graceful: listeners
//! close, sessions finish, the log is flushed); starting is [`engine::start`] again on the same
//! runtime with the same event bus, so the log panes keep their history across restarts.

use crate::engine::events::{EventBus, EventKind, Level};
use crate::engine::handle::ReloadReport;
use crate::engine::lock::LockError;
use crate::engine::{self, EngineError, EngineHandle, EngineOptions, Status};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::runtime::Handle as RtHandle;

/// [`engine::start`], waiting up to [`LOCK_WAIT`] while this process itself holds the data
/// directory's lock: the Queued Mails pane reads the spool offline for a moment while the
/// services are stopped (`control::offline` takes the lock as `postern queue` does).
async fn start_when_free(
    opts: EngineOptions,
    events: EventBus,
) -> Result<EngineHandle, EngineError> {
    let me = std::process::id().to_string();
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match engine::start(opts.clone(), events.clone()).await {
            Err(EngineError::Lock(LockError::InUse { pid, .. }))
                if pid == me && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}

/// How long a start waits for this process's own offline spool read to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the services are in their life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// `engine::start` is running.
    Starting,
    /// The engine runs (some listeners may still be down: see the status).
    Running,
    /// Graceful shutdown is under way.
    Stopping,
    /// Stopped by the user.
    Stopped,
    /// The engine could not start, or ended by itself; the text says why (shown as it is, in
    /// the status strip and the tray).
    Failed(String),
}

impl ServiceState {
    /// Short text for the status strip and the tray tooltip.
    pub fn label(&self) -> String {
        match self {
            ServiceState::Starting => "starting...".into(),
            ServiceState::Running => "running".into(),
            ServiceState::Stopping => "stopping...".into(),
            ServiceState::Stopped => "stopped".into(),
            ServiceState::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// What a background start/stop task reports.
enum Done {
    Started(Result<EngineHandle, EngineError>),
    Stopped,
}

/// Called when a start or stop finishes, so the UI repaints (set by the window).
type Wake = Arc<dyn Fn() + Send + Sync>;

/// The engine as the desktop app sees it.
pub struct Services {
    /// The runtime the engine runs on (owned by whoever created it).
    rt: RtHandle,
    /// Configuration file and data directory.
    opts: EngineOptions,
    /// The event bus, shared by every engine run.
    events: EventBus,
    /// The running engine, while there is one.
    handle: Option<EngineHandle>,
    /// Where the services are.
    state: ServiceState,
    /// Results of start/stop tasks.
    done_tx: mpsc::Sender<Done>,
    /// Polled by [`Services::poll`].
    done_rx: mpsc::Receiver<Done>,
    /// Repaint request after a task finishes.
    wake: Option<Wake>,
}

impl Services {
    /// Services that are stopped; call [`Services::start`] to run the engine.
    pub fn new(rt: RtHandle, opts: EngineOptions, events: EventBus) -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        Services {
            rt,
            opts,
            events,
            handle: None,
            state: ServiceState::Stopped,
            done_tx,
            done_rx,
            wake: None,
        }
    }

    /// Installs the callback run when a start or stop finishes.
    pub fn set_wake(&mut self, wake: impl Fn() + Send + Sync + 'static) {
        self.wake = Some(Arc::new(wake));
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Configuration file and data directory.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Where the services are.
    pub fn state(&self) -> &ServiceState {
        &self.state
    }

    /// The running engine's status, if it runs.
    pub fn status(&self) -> Option<Status> {
        self.handle.as_ref().map(EngineHandle::status)
    }

    /// The outgoing queue of the running engine.
    pub fn queue(&self) -> Option<&crate::engine::queue::Queue> {
        self.handle.as_ref().map(EngineHandle::queue)
    }

    /// The blocks in force in the running engine (`None` while it is not running: blocks live
    /// in its memory only).
    pub fn blocks(&self) -> Option<Vec<crate::engine::access::abuse::BlockInfo>> {
        self.handle.as_ref().map(EngineHandle::blocks)
    }

    /// Lifts the block of `ip` in the running engine and clears its failure counts; `None`
    /// when it was not blocked or the engine is not running.
    pub fn unblock(&self, ip: std::net::IpAddr) -> Option<crate::engine::access::abuse::BlockInfo> {
        self.handle.as_ref()?.unblock(ip)
    }

    /// The runtime the engine runs on (for the UI's own short tasks).
    pub fn runtime(&self) -> &RtHandle {
        &self.rt
    }

    /// Whether start is possible now.
    pub fn can_start(&self) -> bool {
        matches!(self.state, ServiceState::Stopped | ServiceState::Failed(_))
    }

    /// Whether stop is possible now.
    pub fn can_stop(&self) -> bool {
        self.state == ServiceState::Running
    }

    /// Why Start or Stop cannot be used now (the hover text of the disabled button).
    pub fn why_not(&self) -> &'static str {
        match self.state {
            ServiceState::Starting => "The services are starting",
            ServiceState::Running => "The services are running",
            ServiceState::Stopping => "The services are stopping",
            ServiceState::Stopped | ServiceState::Failed(_) => "The services are stopped",
        }
    }

    /// Starts the engine in the background (no-op unless stopped or failed).
    pub fn start(&mut self) {
        if !self.can_start() {
            return;
        }
        self.state = ServiceState::Starting;
        let (opts, events, tx, wake) = (
            self.opts.clone(),
            self.events.clone(),
            self.done_tx.clone(),
            self.wake.clone(),
        );
        self.rt.spawn(async move {
            let result = start_when_free(opts, events).await;
            let _ = tx.send(Done::Started(result));
            if let Some(w) = wake {
                w();
            }
        });
    }

    /// Stops the engine gracefully in the background (no-op unless running).
    pub fn stop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        self.state = ServiceState::Stopping;
        let (tx, wake) = (self.done_tx.clone(), self.wake.clone());
        self.rt.spawn(async move {
            handle.shutdown().await;
            let _ = tx.send(Done::Stopped);
            if let Some(w) = wake {
                w();
            }
        });
    }

    /// Asks the running engine to re-read the configuration file now; the receiver gets what
    /// it did (poll it with `try_recv`). `None` when it does not run (the file is read at the
    /// next start anyway).
    pub fn reload(&self) -> Option<tokio::sync::oneshot::Receiver<ReloadReport>> {
        self.handle.as_ref().and_then(EngineHandle::reload)
    }

    /// Takes in finished starts and stops; notices an engine that ended by itself. Call once
    /// per frame.
    pub fn poll(&mut self) {
        while let Ok(done) = self.done_rx.try_recv() {
            match done {
                Done::Started(Ok(h)) => {
                    self.handle = Some(h);
                    self.state = ServiceState::Running;
                }
                Done::Started(Err(e)) => {
                    let e = e.to_string();
                    self.events.emit(
                        Level::Error,
                        None,
                        EventKind::Note {
                            text: format!("cannot start the mail services: {e}"),
                        },
                    );
                    self.state = ServiceState::Failed(e);
                }
                Done::Stopped => self.state = ServiceState::Stopped,
            }
        }
        if self.state == ServiceState::Running
            && self.handle.as_ref().is_some_and(|h| !h.status().running)
        {
            self.handle = None;
            self.state = ServiceState::Failed("the engine stopped unexpectedly".into());
        }
    }

    /// Stops the engine and waits for it (used when the application exits). Blocks the
    /// calling thread, which must not be a runtime thread.
    pub fn shutdown_blocking(&mut self) {
        self.poll();
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
        // A start still under way: wait for it and stop what it started.
        if self.state == ServiceState::Starting
            && let Ok(Done::Started(Ok(h))) = self.done_rx.recv()
        {
            self.rt.block_on(h.shutdown());
        }
        // A stop still under way: wait for it to finish.
        if self.state == ServiceState::Stopping {
            let _ = self.done_rx.recv();
        }
        self.state = ServiceState::Stopped;
    }
}
