//! The supervisor task: owns the listeners and the configuration in force. It polls the
//! configuration file (and obeys [`Command::Reload`]), applies a valid change to open sessions
//! and listeners without a restart (rebinding only what changed), keeps the previous
//! configuration when a change is invalid, and runs the graceful shutdown.

use super::command::{Command, ListenerChange, ReloadOutcome, ReloadReport};
use super::config::{self, Config};
use super::current::Current;
use super::dkim::{KeyStore, Signers};
use super::events::{EventBus, EventKind, Level};
use super::listener::{
    self, Common, ListenerSpec, ListenerStatus, ListenerTable, Protocol, Running, Service,
};
use super::lock::DataDirLock;
use super::options::EngineOptions;
use super::queue::manager::ManagerTask;
use super::stats::Stats;
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

/// The settings that differ between two configurations, as dotted keys (the values are
/// never named: a password hash or the relay password would show); past [`MAX_KEYS`], the
/// sections instead.
pub fn changed_settings(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (config::keys::leaves(old), config::keys::leaves(new));
    let mut keys: Vec<String> = b
        .iter()
        .filter(|kv| !a.contains(kv))
        .map(|(k, _)| k.clone())
        .chain(
            a.iter()
                .filter(|(k, _)| !b.iter().any(|(x, _)| x == k))
                .map(|(k, _)| k.clone()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    if keys.len() <= MAX_KEYS {
        return keys;
    }
    let mut sections: Vec<String> = keys
        .iter()
        .map(|k| {
            let head = k.split('.').next().unwrap_or(k);
            head.split('[').next().unwrap_or(head).to_string()
        })
        .collect();
    sections.dedup();
    sections
}

/// How many changed keys a report names one by one.
const MAX_KEYS: usize = 6;

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
    /// IMAP sessions.
    pub imap: Arc<dyn Service>,
    /// The mail counters, saved at stop.
    pub stats: Arc<Stats>,
}

impl Services {
    fn of(&self, p: Protocol) -> Arc<dyn Service> {
        match p {
            Protocol::Smtp => self.smtp.clone(),
            Protocol::Pop3 => self.pop3.clone(),
            Protocol::Imap => self.imap.clone(),
        }
    }
}

/// Every listener `cfg` asks for, of every protocol.
fn wanted(cfg: &Config) -> Vec<ListenerSpec> {
    let mut out = super::smtp::listener::wanted(cfg);
    out.extend(super::pop3::wanted(cfg));
    out.extend(super::imap::wanted(cfg));
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
    /// What the last reload did (the answer to a forced reload of the same file).
    last_report: Option<ReloadReport>,
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
            last_report: None,
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
                    Some(Command::Reload(reply)) => {
                        let report = self.check_file(true).await;
                        if let (Some(reply), Some(report)) = (reply, report) {
                            let _ = reply.send(report);
                        }
                    }
                    None => {}
                },
                _ = tick.tick() => {
                    self.check_file(false).await;
                }
            }
        }
        self.stop().await;
    }

    /// Reloads the configuration when the file changed (or when `force`d) and says what the
    /// running server did. A forced reload of the file the poll has just applied answers with
    /// that reload's report (the window's Apply and `postern config set` race the poll).
    async fn check_file(&mut self, force: bool) -> Option<ReloadReport> {
        let now = stamp(&self.opts.config_path);
        if !force && now == self.stamp {
            return None;
        }
        let seen = now == self.stamp;
        self.stamp = now;
        let report = match config::load(&self.opts.config_path) {
            Ok(cfg) => {
                if cfg == self.current.borrow().config {
                    if force {
                        // Asked for (`postern dkim rotate` does): the keys may have changed.
                        let tls = self.current.borrow().tls.clone();
                        let dkim = dkim_signers(&cfg, &self.opts.data_dir, self.events());
                        let current = Current::new(cfg, tls).with_dkim(dkim);
                        self.current.send_replace(Arc::new(current));
                    }
                    match &self.last_report {
                        Some(r) if seen => return Some(r.clone()),
                        _ => ReloadReport {
                            outcome: ReloadOutcome::Unchanged,
                            changed: Vec::new(),
                            // Saved again: a listener that could not be opened is tried
                            // again (the port may be free now).
                            listeners: if self.failed.is_empty() {
                                Vec::new()
                            } else {
                                self.reconcile().await
                            },
                        },
                    }
                } else {
                    if cfg.accounts != self.current.borrow().config.accounts {
                        prepare_mailboxes(&cfg, &self.opts.data_dir, self.events());
                    }
                    let changed = changed_settings(&self.current.borrow().config, &cfg);
                    super::logfile::follow_level(self.events(), &cfg.logs);
                    let current = build_current(cfg, &self.opts.data_dir, self.events());
                    self.current.send_replace(Arc::new(current));
                    self.events()
                        .emit(Level::Info, None, EventKind::ConfigReloaded);
                    let listeners = self.reconcile().await;
                    let report = ReloadReport {
                        outcome: ReloadOutcome::Applied,
                        changed,
                        listeners,
                    };
                    let mut text = format!("changed: {}", report.changed.join(", "));
                    for l in &report.listeners {
                        text.push_str(&format!("; {l}"));
                    }
                    self.events()
                        .emit(Level::Info, None, EventKind::Note { text });
                    report
                }
            }
            Err(e) => {
                let error = e.to_string();
                self.events().emit(
                    Level::Error,
                    None,
                    EventKind::ConfigRejected {
                        error: error.clone(),
                    },
                );
                ReloadReport {
                    outcome: ReloadOutcome::Rejected(error),
                    changed: Vec::new(),
                    listeners: Vec::new(),
                }
            }
        };
        self.last_report = Some(report.clone());
        Some(report)
    }

    /// Opens one listener.
    async fn open(&self, w: &ListenerSpec) -> Result<Running, String> {
        match listener::bind(w).await {
            Ok(l) => Running::start(
                w.clone(),
                l,
                self.shared.common.clone(),
                self.shared.of(w.protocol),
                self.tracker.clone(),
            )
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Closes one listener and logs it.
    async fn close(&self, r: Running) {
        let (name, addr) = (r.spec.title(), r.addr);
        r.close().await;
        self.events()
            .emit(Level::Info, None, EventKind::ListenerDown { name, addr });
    }

    /// Makes the open listeners match the configuration: changes roles in place, binds what
    /// is new (and retries what failed before), and only then closes what is no longer
    /// wanted, so a listener whose new port or address cannot be bound keeps listening where
    /// it was. Returns what changed.
    pub async fn reconcile(&mut self) -> Vec<ListenerChange> {
        let wanted = wanted(&self.current.borrow().config);
        let same_socket = |a: &ListenerSpec, b: &ListenerSpec| {
            a.protocol == b.protocol
                && a.listen_ip == b.listen_ip
                && a.port == b.port
                && a.implicit_tls == b.implicit_tls
        };
        // The same listener in another place: same protocol, role and TLS.
        let same_kind =
            |a: &ListenerSpec, b: &ListenerSpec| a.name() == b.name() && a.protocol == b.protocol;
        let mut keep = Vec::new();
        let mut old = Vec::new();
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
                None => old.push(r),
            }
        }
        self.running = keep;
        self.failed.clear();
        let mut opened = Vec::new();
        let mut failed = Vec::new();
        for w in wanted {
            if self.running.iter().any(|r| same_socket(&w, &r.spec)) {
                continue;
            }
            match self.open(&w).await {
                Ok(r) => opened.push(r),
                Err(e) => failed.push((w, e)),
            }
        }
        let mut changes = Vec::new();
        // A new address on the port the old listener holds (Listen Only on IP changed) cannot
        // be bound beside it: close the old one and try again; if that fails too, reopen the
        // old one where it was.
        let mut still_failed = Vec::new();
        for (w, e) in failed {
            let Some(i) = old
                .iter()
                .position(|o| same_kind(&o.spec, &w) && o.spec.port == w.port)
            else {
                still_failed.push((w, e));
                continue;
            };
            let o = old.remove(i);
            let (spec, from) = (o.spec.clone(), o.addr);
            self.close(o).await;
            match self.open(&w).await {
                Ok(r) => {
                    changes.push(ListenerChange::Moved {
                        name: r.spec.title(),
                        from: from.to_string(),
                        to: r.addr.to_string(),
                    });
                    self.up(&r);
                    self.running.push(r);
                }
                Err(e) => {
                    let kept = match self.open(&spec).await {
                        Ok(r) => {
                            let addr = r.addr;
                            self.up(&r);
                            self.running.push(r);
                            Some(addr.to_string())
                        }
                        Err(_) => None,
                    };
                    self.fail(&w, &e);
                    changes.push(ListenerChange::Failed {
                        name: w.title(),
                        addr: w.describe(),
                        error: e.clone(),
                        kept,
                    });
                    self.failed.push((w, e));
                }
            }
        }
        for r in opened {
            self.up(&r);
            match old.iter().position(|o| same_kind(&o.spec, &r.spec)) {
                Some(i) => {
                    let o = old.remove(i);
                    changes.push(ListenerChange::Moved {
                        name: r.spec.title(),
                        from: o.addr.to_string(),
                        to: r.addr.to_string(),
                    });
                    self.close(o).await;
                }
                None => changes.push(ListenerChange::Started {
                    name: r.spec.title(),
                    addr: r.addr.to_string(),
                }),
            }
            self.running.push(r);
        }
        for (w, e) in still_failed {
            self.fail(&w, &e);
            // The listener it was to replace keeps listening where it was.
            let kept = match old.iter().position(|o| same_kind(&o.spec, &w)) {
                Some(i) => {
                    let mut o = old.remove(i);
                    if w.role != o.spec.role {
                        o.role.send_replace(w.role);
                        o.spec.role = w.role;
                    }
                    let addr = o.addr.to_string();
                    self.running.push(o);
                    Some(addr)
                }
                None => None,
            };
            changes.push(ListenerChange::Failed {
                name: w.title(),
                addr: w.describe(),
                error: e.clone(),
                kept,
            });
            self.failed.push((w, e));
        }
        for o in old {
            changes.push(ListenerChange::Stopped {
                name: o.spec.title(),
                addr: o.addr.to_string(),
            });
            self.close(o).await;
        }
        self.publish();
        changes
    }

    /// Logs a listener that is up.
    fn up(&self, r: &Running) {
        self.events().emit(
            Level::Info,
            None,
            EventKind::ListenerUp {
                name: r.spec.title(),
                addr: r.addr,
            },
        );
    }

    /// Logs a listener that could not be opened.
    fn fail(&self, w: &ListenerSpec, error: &str) {
        self.events().emit(
            Level::Error,
            None,
            EventKind::ListenerFailed {
                name: w.title(),
                addr: w.describe(),
                error: error.to_string(),
            },
        );
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
        let stats = self.shared.stats.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || stats.save()).await {
            self.events().emit(
                Level::Error,
                None,
                EventKind::Note {
                    text: format!("cannot save the mail counters: {e}"),
                },
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_changed_keys_never_their_values() {
        let old = Config::default();
        let mut new = old.clone();
        new.smtp.incoming.port = 2526;
        new.outgoing_mails.relay.password = "secret".into();
        assert_eq!(
            changed_settings(&old, &new),
            ["outgoing_mails.relay.password", "smtp.incoming.port"]
        );
        assert!(changed_settings(&old, &old).is_empty());
        // Many changes: the sections.
        new.domains = vec!["example.test".into()];
        new.smtp.outgoing.port = 2600;
        new.smtp.max_errors_per_session = 3;
        new.smtp.max_recipients_per_mail = 5;
        new.smtp.max_connections_per_port = 7;
        let changed = changed_settings(&old, &new);
        assert_eq!(changed, ["domains", "outgoing_mails", "smtp"]);
        assert!(!changed.concat().contains("secret"));
    }
}
