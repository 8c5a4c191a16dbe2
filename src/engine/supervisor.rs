//! The supervisor task: owns the listeners and the configuration in force. It polls the
//! configuration file (and obeys [`Command::Reload`]), applies a valid change to open sessions
//! and listeners without a restart (rebinding only what changed), keeps the previous
//! configuration when a change is invalid, and runs the graceful shutdown.

use super::command::Command;
use super::config::{self, Config};
use super::current::Current;
use super::dkim::{KeyStore, Signers};
use super::events::{EventBus, EventKind, Level};
use super::handle::{ListenerStatus, ListenerTable};
use super::listener::{self, Common, ListenerSpec, Protocol, Running, Service};
use super::lock::DataDirLock;
use super::options::EngineOptions;
use super::queue::manager::ManagerTask;
use super::tls;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// How often the configuration file is checked for changes.
const POLL: Duration = Duration::from_secs(1);
/// How long shutdown waits for sessions that are still receiving or writing a message.
const DRAIN: Duration = Duration::from_secs(60);

/// Configuration plus TLS, reporting a certificate problem instead of failing; logs the
/// warnings about valid but unsafe or doubtful settings.
pub fn build_current(config: Config, data_dir: &Path, events: &EventBus) -> Current {
    let tls = match tls::acceptor(&config, data_dir) {
        Ok(a) => Some(a),
        Err(e) => {
            events.emit(
                Level::Error,
                None,
                EventKind::TlsUnavailable {
                    error: e.to_string(),
                },
            );
            None
        }
    };
    if let Some(w) = config::validate::open_relay_warning(&config) {
        events.emit(Level::Warn, None, EventKind::OpenRelay { warning: w });
    }
    let others = [
        config::validate::relay_login_warning(&config),
        config::validate::hostname_warning(&config),
    ];
    for w in others.into_iter().flatten() {
        events.emit(Level::Warn, None, EventKind::ConfigWarning { warning: w });
    }
    if let Some(w) = config::schedule::short_horizon_warning(&config.outgoing_mails) {
        events.emit(Level::Info, None, EventKind::ConfigWarning { warning: w });
    }
    let dkim = dkim_signers(&config, data_dir, events);
    Current::new(config, tls).with_dkim(dkim)
}

/// Makes the DKIM keys a local domain lacks (logging each new selector and the record to
/// publish) and loads the active ones; none when `auth.dkim.enabled` is off.
fn dkim_signers(config: &Config, data_dir: &Path, events: &EventBus) -> Signers {
    let d = &config.auth.dkim;
    let store = KeyStore::new(data_dir);
    let p = store.prepare(&config.domains, d.ed25519);
    for (domain, selector) in &p.made {
        let txt = store
            .list(domain)
            .ok()
            .and_then(|l| l.into_iter().find(|s| &s.name == selector))
            .map(|s| format!(": publish TXT {} \"{}\"", s.dns_name(domain), s.txt()))
            .unwrap_or_default();
        events.emit(
            Level::Info,
            None,
            EventKind::Delivery {
                text: format!("DKIM key {selector} made for {domain}{txt}"),
            },
        );
    }
    for problem in &p.problems {
        events.emit(
            Level::Error,
            None,
            EventKind::ConfigWarning {
                warning: format!("DKIM: {problem}; mail of that domain is sent unsigned"),
            },
        );
    }
    if d.enabled {
        p.signers
    } else {
        Signers::default()
    }
}

/// Makes INBOX and the SPECIAL-USE folders of every account where missing (a new account's
/// at once, an older account's on the first start after an upgrade), on a blocking thread;
/// a failure is logged and retried at the next login.
fn prepare_mailboxes(config: &Config, data_dir: &Path, events: &EventBus) {
    let root = data_dir.join("mailboxes");
    let accounts: Vec<String> = config.accounts.iter().map(|a| a.address.clone()).collect();
    let events = events.clone();
    tokio::task::spawn_blocking(move || {
        for address in accounts {
            let Some(account) = super::store::mailbox::Account::new(&root, &address) else {
                continue;
            };
            if let Err(e) = account.prepare() {
                events.emit(
                    Level::Error,
                    None,
                    EventKind::Note {
                        text: format!("cannot make the folders of {address}: {e}"),
                    },
                );
            }
        }
    });
}

/// Identity of the file on disk, to notice edits and atomic replacements.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The protocols the listeners serve, and what every listener shares.
pub struct Services {
    /// Engine-wide: the configuration in force, the gate, events, shutdown.
    pub common: Common,
    /// SMTP sessions.
    pub smtp: Arc<dyn Service>,
    /// POP3 sessions.
    pub pop3: Arc<dyn Service>,
}

impl Services {
    fn of(&self, p: Protocol) -> Arc<dyn Service> {
        match p {
            Protocol::Smtp => self.smtp.clone(),
            Protocol::Pop3 => self.pop3.clone(),
            // `wanted` asks for no IMAP listener until the IMAP service is wired in here.
            Protocol::Imap => unreachable!("no IMAP service yet"),
        }
    }
}

/// Every listener `cfg` asks for, of every protocol.
fn wanted(cfg: &Config) -> Vec<ListenerSpec> {
    let mut out = super::smtp::listener::wanted(cfg);
    out.extend(super::pop3::wanted(cfg));
    out
}

pub struct Supervisor {
    /// Paths.
    opts: EngineOptions,
    /// What listeners and sessions share.
    shared: Services,
    /// Publishes a new configuration to sessions.
    current: watch::Sender<Arc<Current>>,
    /// Every session and refusal task, for the graceful shutdown.
    tracker: TaskTracker,
    /// Open listeners.
    running: Vec<Running>,
    /// Listeners that failed to bind, with why.
    failed: Vec<(ListenerSpec, String)>,
    /// The status table handles read.
    table: ListenerTable,
    /// Last seen identity of the configuration file.
    stamp: Stamp,
    /// Held until the supervisor ends.
    _lock: DataDirLock,
    /// The log writer, awaited at the end so the last lines reach the file.
    log_writer: JoinHandle<()>,
    /// The queue manager, stopped after the sessions have drained.
    queue_task: ManagerTask,
}

impl Supervisor {
    #[expect(clippy::too_many_arguments, reason = "called once, by engine::start")]
    pub fn new(
        opts: EngineOptions,
        shared: Services,
        current: watch::Sender<Arc<Current>>,
        tracker: TaskTracker,
        table: ListenerTable,
        lock: DataDirLock,
        log_writer: JoinHandle<()>,
        queue_task: ManagerTask,
    ) -> Self {
        let stamp = stamp(&opts.config_path);
        Supervisor {
            opts,
            shared,
            current,
            tracker,
            running: Vec::new(),
            failed: Vec::new(),
            table,
            stamp,
            _lock: lock,
            log_writer,
            queue_task,
        }
    }

    fn events(&self) -> &EventBus {
        &self.shared.common.events
    }

    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        prepare_mailboxes(
            &self.current.borrow().config,
            &self.opts.data_dir,
            self.events(),
        );
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.shared.common.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Reload) => self.check_file(true).await,
                    None => {}
                },
                _ = tick.tick() => self.check_file(false).await,
            }
        }
        self.stop().await;
    }

    /// Reloads the configuration when the file changed (or when `force`d).
    async fn check_file(&mut self, force: bool) {
        let now = stamp(&self.opts.config_path);
        if !force && now == self.stamp {
            return;
        }
        self.stamp = now;
        match config::load(&self.opts.config_path) {
            Ok(cfg) => {
                if cfg == self.current.borrow().config {
                    if force {
                        // Asked for (`postern dkim rotate` does): the keys may have changed.
                        let tls = self.current.borrow().tls.clone();
                        let dkim = dkim_signers(&cfg, &self.opts.data_dir, self.events());
                        let current = Current::new(cfg, tls).with_dkim(dkim);
                        self.current.send_replace(Arc::new(current));
                    }
                    return;
                }
                if cfg.accounts != self.current.borrow().config.accounts {
                    prepare_mailboxes(&cfg, &self.opts.data_dir, self.events());
                }
                let current = build_current(cfg, &self.opts.data_dir, self.events());
                self.current.send_replace(Arc::new(current));
                self.events()
                    .emit(Level::Info, None, EventKind::ConfigReloaded);
                self.reconcile().await;
            }
            Err(e) => self.events().emit(
                Level::Error,
                None,
                EventKind::ConfigRejected {
                    error: e.to_string(),
                },
            ),
        }
    }

    /// Makes the open listeners match the configuration: closes what is no longer wanted,
    /// changes roles in place, binds what is new (and retries what failed before).
    pub async fn reconcile(&mut self) {
        let wanted = wanted(&self.current.borrow().config);
        let same_socket = |a: &ListenerSpec, b: &ListenerSpec| {
            a.protocol == b.protocol
                && a.listen_ip == b.listen_ip
                && a.port == b.port
                && a.implicit_tls == b.implicit_tls
        };
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.running) {
            match wanted.iter().find(|w| same_socket(w, &r.spec)) {
                Some(w) => {
                    let mut r = r;
                    if w.role != r.spec.role {
                        r.role.send_replace(w.role);
                        r.spec.role = w.role;
                    }
                    keep.push(r);
                }
                None => {
                    let (name, addr) = (r.spec.title(), r.addr);
                    r.close().await;
                    self.events()
                        .emit(Level::Info, None, EventKind::ListenerDown { name, addr });
                }
            }
        }
        self.running = keep;
        self.failed.clear();
        for w in wanted {
            if self.running.iter().any(|r| same_socket(&w, &r.spec)) {
                continue;
            }
            let bound = match listener::bind(&w).await {
                Ok(l) => Running::start(
                    w.clone(),
                    l,
                    self.shared.common.clone(),
                    self.shared.of(w.protocol),
                    self.tracker.clone(),
                )
                .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match bound {
                Ok(r) => {
                    self.events().emit(
                        Level::Info,
                        None,
                        EventKind::ListenerUp {
                            name: r.spec.title(),
                            addr: r.addr,
                        },
                    );
                    self.running.push(r);
                }
                Err(error) => {
                    self.events().emit(
                        Level::Error,
                        None,
                        EventKind::ListenerFailed {
                            name: w.title(),
                            addr: w.describe(),
                            error: error.clone(),
                        },
                    );
                    self.failed.push((w, error));
                }
            }
        }
        self.publish();
    }

    /// Writes the listener table that handles read.
    fn publish(&self) {
        let mut rows: Vec<_> = self
            .running
            .iter()
            .map(|r| {
                (
                    ListenerStatus {
                        name: r.spec.name(),
                        configured: r.spec.describe(),
                        addr: Some(r.addr),
                        error: None,
                        sessions: 0,
                    },
                    Some(r.active.clone()),
                )
            })
            .collect();
        rows.extend(self.failed.iter().map(|(spec, e)| {
            (
                ListenerStatus {
                    name: spec.name(),
                    configured: spec.describe(),
                    addr: None,
                    error: Some(e.clone()),
                    sessions: 0,
                },
                None,
            )
        }));
        *self.table.lock().expect("listener table") = rows;
    }

    /// Graceful shutdown: stop accepting, let sessions finish (idle ones get 421), flush logs.
    async fn stop(mut self) {
        self.events().emit(Level::Info, None, EventKind::Stopping);
        for r in std::mem::take(&mut self.running) {
            let (name, addr) = (r.spec.title(), r.addr);
            r.close().await;
            self.events()
                .emit(Level::Info, None, EventKind::ListenerDown { name, addr });
        }
        self.failed.clear();
        self.publish();
        self.tracker.close();
        if tokio::time::timeout(DRAIN, self.tracker.wait())
            .await
            .is_err()
        {
            self.events().emit(
                Level::Warn,
                None,
                EventKind::Note {
                    text: format!(
                        "{} sessions still open after {}s; stopping anyway",
                        self.tracker.len(),
                        DRAIN.as_secs()
                    ),
                },
            );
        }
        // Only now: a message accepted during the drain is still handed to the manager.
        self.queue_task.stop().await;
        self.events().emit(
            Level::Info,
            None,
            EventKind::Note {
                text: "stopped".into(),
            },
        );
        self.shared.common.events.detach_file_writer();
        let _ = (&mut self.log_writer).await;
    }
}
