//! The mail server, with no user interface: configuration, SMTP listeners and sessions, local
//! mailboxes, events and logs. The desktop app and `postern serve` both drive it through
//! [`EngineHandle`]; nothing in here knows what a window is.

pub mod access;
pub mod command;
pub mod config;
pub mod control;
pub mod current;
pub mod delivery;
pub mod dkim;
pub mod dns;
pub mod events;
pub mod handle;
pub mod imap;
pub mod listener;
pub mod local_ips;
pub mod lock;
pub mod logfile;
pub mod options;
pub mod perms;
pub mod pop3;
pub mod queue;
pub mod records;
pub mod reply;
pub mod role;
pub mod smtp;
pub mod stats;
pub mod store;
pub mod tls;
pub mod wire;

mod supervisor;

pub use handle::{EngineHandle, ListenerStatus, Status};
pub use options::EngineOptions;

use config::ConfigError;
use events::{EventBus, EventKind, Level};
use lock::{DataDirLock, LockError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another process owns the data directory.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The configuration file is broken (it is left untouched).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The spool could not be opened or replayed.
    #[error("spool {path}: {message}")]
    Spool {
        /// The spool directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts the engine on the current tokio runtime: takes the data directory, loads (or
/// creates) the configuration, opens the log file and the listeners. Listeners that cannot
/// bind are reported in events and status; the others run.
pub async fn start(opts: EngineOptions, events: EventBus) -> Result<EngineHandle, EngineError> {
    // A file grown past RLIMIT_FSIZE must be a write error (answered 4xx), not a killed server.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    perms::private_umask();
    let lock = DataDirLock::acquire(&opts.data_dir)?;
    let cfg = config::load_or_create(&opts.config_path)?;
    let io = |path: PathBuf| move |source| EngineError::Io { path, source };
    let mailroot = opts.data_dir.join("mailboxes");
    std::fs::create_dir_all(&mailroot).map_err(io(mailroot.clone()))?;
    let logs = opts.data_dir.join("logs");
    let (log_policy_tx, log_policy) = watch::channel(cfg.logs.clone());
    let log_writer = logfile::start(&events, &logs, log_policy).map_err(io(logs.clone()))?;

    events.emit(
        Level::Info,
        None,
        EventKind::Started {
            config: opts.config_path.display().to_string(),
            data_dir: opts.data_dir.display().to_string(),
        },
    );
    let current = supervisor::build_current(cfg, &opts.data_dir, &events);
    let (current_tx, current_rx) = watch::channel(Arc::new(current));
    // The log writer follows the `logs` section of every configuration applied.
    let mut applied = current_rx.clone();
    tokio::spawn(async move {
        while applied.changed().await.is_ok() {
            let logs = applied.borrow_and_update().config.logs.clone();
            log_policy_tx.send_replace(logs);
        }
    });
    let shutdown = CancellationToken::new();
    let (stats, stats_error) = stats::Stats::load(&opts.data_dir);
    if let Some(e) = stats_error {
        events.emit(
            Level::Warn,
            None,
            EventKind::Note {
                text: format!("mail counters: {e}"),
            },
        );
    }
    let stats = Arc::new(stats);
    let spool_dir = opts.data_dir.join("spool");
    let (queue, queue_task) = queue::manager::start(
        &spool_dir,
        queue::manager::Deps {
            current: current_rx.clone(),
            events: events.clone(),
            mailroot: mailroot.clone(),
            stats: stats.clone(),
        },
    )
    .map_err(|e| EngineError::Spool {
        path: spool_dir.clone(),
        message: e.to_string(),
    })?;
    let gate = access::Gate::new(events.clone()).counting(stats.clone());
    let pop3 = Arc::new(pop3::Deps {
        current: current_rx.clone(),
        gate: gate.clone(),
        events: events.clone(),
        shutdown: shutdown.clone(),
        mailroot: mailroot.clone(),
        busy: Default::default(),
    });
    let imap = Arc::new(imap::Deps {
        current: current_rx.clone(),
        gate: gate.clone(),
        events: events.clone(),
        shutdown: shutdown.clone(),
        mailroot: mailroot.clone(),
    });
    let common = listener::Common {
        current: current_rx.clone(),
        gate: gate.clone(),
        events: events.clone(),
        shutdown: shutdown.clone(),
    };
    let smtp = Arc::new(smtp::Deps {
        current: current_rx.clone(),
        gate: gate.clone(),
        intake: Arc::new(smtp::intake::StoreIntake {
            queue: queue.clone(),
            mailroot,
            spill: store::body::Spill::new(&spool_dir.join("incoming")),
            stats: stats.clone(),
            events: events.clone(),
        }),
        events: events.clone(),
        shutdown: shutdown.clone(),
    });
    // The counters reach the file a moment after they change (and at stop, by the
    // supervisor).
    let saving = stats.clone();
    let stop_saving = shutdown.clone();
    let save_events = events.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_saving.cancelled() => break,
                _ = tokio::time::sleep(stats::SAVE_DELAY) => {}
            }
            if saving.take_dirty() {
                let s = saving.clone();
                let saved = tokio::task::spawn_blocking(move || s.save()).await;
                if let Ok(Err(e)) = saved {
                    save_events.emit(
                        Level::Error,
                        None,
                        EventKind::Note {
                            text: format!("cannot save the mail counters: {e}"),
                        },
                    );
                }
            }
        }
    });
    let listeners = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    control::serve(
        &opts.data_dir,
        control::Served {
            queue: queue.clone(),
            commands: cmd_tx.clone(),
            gate: gate.clone(),
            current: current_rx.clone(),
            listeners: listeners.clone(),
            stats: stats.clone(),
        },
        shutdown.clone(),
    )
    .map_err(io(control::socket_path(&opts.data_dir)))?;
    let mut sup = supervisor::Supervisor::new(
        opts.clone(),
        supervisor::Services {
            common,
            smtp: Arc::new(smtp::listener::Smtp(smtp)),
            pop3: Arc::new(pop3::Pop3(pop3)),
            imap: Arc::new(imap::Imap(imap)),
            stats: stats.clone(),
        },
        current_tx,
        TaskTracker::new(),
        listeners.clone(),
        lock,
        log_writer,
        queue_task,
    );
    sup.reconcile().await;
    let done = tokio::spawn(sup.run(cmd_rx));
    Ok(EngineHandle::new(
        events,
        cmd_tx,
        shutdown,
        listeners,
        stats,
        queue,
        handle::Blocks {
            gate,
            current: current_rx,
        },
        opts,
        done,
    ))
}
