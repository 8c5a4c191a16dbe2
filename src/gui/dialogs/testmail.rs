//! The Send Test Mail dialog: From (a configured account, or any address typed), To (a local
//! account or any address), Subject and text prefilled, an optional password for the From
//! account (used for this one send, never stored), and Send. The mail goes through the real
//! listeners as a mail client would send it ([`crate::engine::delivery::testmail`]): to a
//! local domain through the incoming SMTP (mail for a local account is taken from anyone, no
//! login needed), to another domain through the Outgoing SMTP, where Access Control decides
//! (a login as the account, or this computer's address when "Allow IPs assigned to this
//! computer" is on; nothing is loosened for the test).
//!
//! The progress is the engine's own word, step by step: connecting, the 250 reply with its
//! id, then for a local recipient "delivered" (our 250 "delivered as" means the mailbox has
//! it), for a remote one the queue entry followed by its id (`Queue::entry` for each
//! deferral's reason, the `QueueFinished` event for delivered or given up). A refusal shows
//! the server's reply and what to change. The dialog is kept while closed (a send goes on
//! being followed). The checklist's last step is ticked by the engine's counters, not here:
//! a delivered mail is counted by the engine and stays ticked after a restart.

use crate::engine::config::Config;
use crate::engine::delivery::Login;
use crate::engine::delivery::testmail::{self, Accepted, Taken, TestMail, TestMailError};
use crate::engine::events::{EventBus, EventKind};
use crate::engine::handle::ListenerStatus;
use crate::engine::queue::{Queue, RcptState, parse_id};
use crate::gui::services::Services;
use eframe::egui;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::broadcast;

/// One step of a send, as the dialog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Connecting to this listener.
    Connecting(String),
    /// The server took it: its reply.
    Accepted(String),
    /// In the outgoing queue under this id.
    Queued(String),
    /// An attempt failed for now; the mail stays in the queue.
    Deferred(String),
    /// Delivered: where.
    Delivered(String),
    /// Given up (a failure notice goes to the sender).
    GivenUp(String),
    /// Not sent: the server's reply or the connection's error, and what to change.
    Error(String),
    /// Taken, but the reply names no id to follow it by.
    Untracked,
    /// Taken and queued, but no longer followed: why.
    Unfollowed(String),
}

impl Progress {
    /// Whether the send is over with this step.
    fn is_final(&self) -> bool {
        matches!(
            self,
            Progress::Delivered(_)
                | Progress::GivenUp(_)
                | Progress::Error(_)
                | Progress::Untracked
                | Progress::Unfollowed(_)
        )
    }

    /// The line shown.
    pub fn text(&self) -> String {
        match self {
            Progress::Connecting(at) => format!("Connecting to {at}..."),
            Progress::Accepted(r) => format!("Accepted: {r}"),
            Progress::Queued(id) => {
                format!("Queued as {id}: waiting for the delivery (see Queued Mails)")
            }
            Progress::Deferred(why) => format!(
                "Deferred: {why}. The mail stays in the queue and is tried again (see Queued Mails)."
            ),
            Progress::Delivered(to) => format!("Delivered {to}"),
            Progress::GivenUp(why) => {
                format!("Given up: {why}. A failure notice goes to the sender.")
            }
            Progress::Error(e) => format!("Not sent: {e}"),
            Progress::Unfollowed(why) => format!("No longer followed: {why}"),
            Progress::Untracked => "The reply names no id to follow the mail by: see Queued \
                                    Mails and the SMTP Out log"
                .to_string(),
        }
    }
}

/// The dialog's state; kept by the app while closed.
#[derive(Default)]
pub struct TestMailDialog {
    /// Whether the window is shown.
    pub open: bool,
    /// Envelope and `From:` address.
    from: String,
    /// The recipient.
    to: String,
    /// Subject line.
    subject: String,
    /// Message text.
    text: String,
    /// The From account's password, for AUTH on this send only.
    password: String,
    /// The steps of the last send.
    steps: Vec<Progress>,
    /// The send under way.
    pending: Option<mpsc::Receiver<Progress>>,
}

impl TestMailDialog {
    /// Opens the window, prefilled from `cfg` (the first account to itself).
    pub fn open(&mut self, cfg: Option<&Config>) {
        self.open = true;
        let first = cfg
            .and_then(|c| c.accounts.first())
            .map(|a| a.address.clone());
        if self.from.is_empty() {
            self.from = first.clone().unwrap_or_default();
        }
        if self.to.is_empty() {
            self.to = first.unwrap_or_default();
        }
        if self.subject.is_empty() {
            let date = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc2822)
                .unwrap_or_default();
            self.subject = format!("Postern test mail, {date}");
            self.text = "This is a test mail sent from Postern's window (Send Test Mail).\n\
                         If you can read it, mail to this address arrives."
                .into();
        }
    }

    /// Takes in the send's progress; call every frame, open or not.
    pub fn poll(&mut self) {
        let Some(rx) = &self.pending else { return };
        loop {
            match rx.try_recv() {
                Ok(p) => {
                    let done = p.is_final();
                    self.steps.push(p);
                    if done {
                        self.pending = None;
                        return;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.pending = None;
                    return;
                }
            }
        }
    }

    /// Shows the window while open.
    pub fn show(&mut self, ctx: &egui::Context, services: &Services, cfg: Option<&Config>) {
        if !self.open {
            return;
        }
        let mut open = true;
        let shown = egui::Window::new("Send Test Mail")
            .open(&mut open)
            .collapsible(false)
            .default_pos([120.0, 90.0])
            .default_width(620.0)
            .show(ctx, |ui| self.contents(ui, services, cfg));
        let escape = shown.is_some_and(|s| super::form::escape_closes(ctx, s.response.layer_id));
        self.open = open && !escape;
    }

    fn contents(&mut self, ui: &mut egui::Ui, services: &Services, cfg: Option<&Config>) {
        ui.label(
            "Sends a mail through this server's own listeners, as a mail program would, and \
             follows it until it is delivered.",
        );
        let accounts: Vec<String> = cfg
            .map(|c| c.accounts.iter().map(|a| a.address.clone()).collect())
            .unwrap_or_default();
        egui::Grid::new("test_mail")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                address_row(
                    ui,
                    "From",
                    "The sender: one of your accounts, or any address",
                    &mut self.from,
                    &accounts,
                );
                let l = ui.label("Password").on_hover_text(PASSWORD_HOVER);
                ui.add(
                    egui::TextEdit::singleline(&mut self.password)
                        .password(true)
                        .desired_width(220.0)
                        .hint_text("only to send to other domains"),
                )
                .labelled_by(l.id)
                .on_hover_text(PASSWORD_HOVER);
                ui.end_row();
                address_row(
                    ui,
                    "To",
                    "A local account, or an address in another domain",
                    &mut self.to,
                    &accounts,
                );
                let l = ui.label("Subject");
                ui.add(egui::TextEdit::singleline(&mut self.subject).desired_width(420.0))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Text");
                ui.add(
                    egui::TextEdit::multiline(&mut self.text)
                        .desired_rows(3)
                        .desired_width(420.0),
                )
                .labelled_by(l.id);
                ui.end_row();
            });
        let status = services.status();
        let route = cfg.map(|c| route(c, status.as_ref().map(|s| &s.listeners[..]), &self.to));
        if let Some(Ok(r)) = &route {
            ui.weak(&r.why);
        }
        ui.horizontal(|ui| {
            let busy = self.pending.is_some();
            let why_not = if busy {
                Some("A test mail is on its way".to_string())
            } else if self.from.trim().is_empty() || self.to.trim().is_empty() {
                Some("Fill in From and To".to_string())
            } else {
                match &route {
                    None => Some("The configuration file cannot be read".into()),
                    Some(Err(e)) => Some(e.clone()),
                    Some(Ok(_)) => None,
                }
            };
            let send = ui.add_enabled(why_not.is_none(), egui::Button::new("Send"));
            let send = match &why_not {
                Some(w) => send.on_disabled_hover_text(w),
                None => send.on_hover_text("Send it now"),
            };
            if send.clicked()
                && let Some(Ok(r)) = route
            {
                self.send(ui.ctx(), services, cfg, r);
            }
            if busy {
                ui.spinner();
            }
            if let (Some(w), false) = (&why_not, busy) {
                ui.label(egui::RichText::new(w).color(ui.visuals().warn_fg_color));
            }
        });
        ui.separator();
        for p in &self.steps {
            let text = egui::RichText::new(p.text());
            let text = match p {
                Progress::Error(_) | Progress::GivenUp(_) => {
                    text.color(ui.visuals().error_fg_color)
                }
                Progress::Deferred(_) => text.color(ui.visuals().warn_fg_color),
                Progress::Delivered(_) => text.strong(),
                _ => text,
            };
            ui.add(egui::Label::new(text).wrap());
        }
    }

    fn send(&mut self, ctx: &egui::Context, services: &Services, cfg: Option<&Config>, r: Route) {
        let host = cfg.map(|c| c.server.hostname.clone()).unwrap_or_default();
        let (from, to) = (self.from.trim().to_string(), self.to.trim().to_string());
        let mail = TestMail {
            addr: r.addr,
            helo: host.clone(),
            message: testmail::message(&from, &to, &self.subject, &self.text, &host),
            login: (!self.password.is_empty()).then(|| Login {
                user: from.clone(),
                password: self.password.clone(),
            }),
            from,
            to,
        };
        // Used for this send only.
        self.password.clear();
        self.steps.clear();
        let (tx, rx) = mpsc::channel();
        self.pending = Some(rx);
        let events = services.events().clone();
        let queue = services.queue().cloned();
        let ctx = ctx.clone();
        let wake = move || ctx.request_repaint();
        services.runtime().spawn(async move {
            run(mail, r, events, queue, tx, wake).await;
        });
    }
}

const PASSWORD_HOVER: &str = "The From account's password, to log in (SMTP AUTH) as a mail \
    program does. Needed to send to other domains when Access Control asks for a login; used \
    for this one mail and never stored.";

/// A text field with a menu of the accounts beside it.
fn address_row(
    ui: &mut egui::Ui,
    label: &str,
    hover: &str,
    value: &mut String,
    accounts: &[String],
) {
    let l = ui.label(label).on_hover_text(hover);
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(value).desired_width(260.0))
            .labelled_by(l.id)
            .on_hover_text(hover);
        ui.add_enabled_ui(!accounts.is_empty(), |ui| {
            ui.menu_button("Accounts", |ui| {
                for a in accounts {
                    if ui.selectable_label(value == a, a).clicked() {
                        *value = a.clone();
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text(format!("Put one of your accounts in {label}"))
            .on_disabled_hover_text("No accounts yet: add one in Domains & Accounts");
        });
    });
    ui.end_row();
}

/// Where a test mail goes in.
#[derive(Debug, Clone)]
pub struct Route {
    /// The listener's address (loopback when it listens on every address).
    addr: SocketAddr,
    /// Why this listener, for the dialog.
    why: String,
}

/// The listener a mail client of this server would hand a mail for `to` to, among the running
/// engine's `listeners` (None: the services are not running): for a local domain the incoming
/// SMTP (which takes mail for local accounts from anyone, as it does from the world), or the
/// Outgoing SMTP when the incoming one is down (it delivers mail for a local account directly
/// too); for another domain the Outgoing SMTP (Access Control decides, as for any client).
pub fn route(
    cfg: &Config,
    listeners: Option<&[ListenerStatus]>,
    to: &str,
) -> Result<Route, String> {
    let domain = to.trim().rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if domain.is_empty() {
        return Err("To needs an address (user@domain)".into());
    }
    let local = cfg.domains.iter().any(|d| d.eq_ignore_ascii_case(domain));
    let Some(listeners) = listeners else {
        return Err("The services are not running (Server > Start Services)".into());
    };
    if !local && !cfg.smtp.outgoing.enabled {
        return Err(format!(
            "{domain} is not a local domain, and Outgoing SMTP is off: enable it in SMTP \
             Settings (the incoming SMTP accepts mail for local domains only)"
        ));
    }
    let named = |want: &str| {
        listeners
            .iter()
            .find(|l| l.name.split('+').any(|n| n == want))
    };
    let first = if local { "incoming" } else { "outgoing" };
    let Some(l) = named(first) else {
        return Err(format!("no {first} SMTP listener is configured"));
    };
    let fallback = local
        .then(|| named("outgoing"))
        .flatten()
        .filter(|_| cfg.smtp.outgoing.enabled)
        .and_then(|o| o.addr.map(|a| (o, a)));
    let (l, bound) = match (l.addr, fallback) {
        (Some(a), _) => (l, a),
        (None, Some(f)) => f,
        (None, None) => {
            return Err(format!(
                "the {} SMTP is not listening: {}",
                l.name,
                l.error.clone().unwrap_or_else(|| "not bound yet".into())
            ));
        }
    };
    let ip = match bound.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, bound.port());
    let incoming = l.name.split('+').any(|n| n == "incoming");
    let why = match (local, incoming) {
        (true, true) => format!(
            "{domain} is local: through the incoming SMTP at {addr}, as mail from anywhere \
             arrives (no login needed)"
        ),
        (true, false) => format!(
            "{domain} is local: through the Outgoing SMTP at {addr} (the incoming SMTP is not \
             listening); mail for a local account needs no login"
        ),
        (false, _) => format!(
            "{domain} is another domain: through the Outgoing SMTP at {addr}, as your mail \
             programs send; Access Control decides (log in with the password, or this \
             computer's address may be allowed)"
        ),
    };
    Ok(Route { addr, why })
}

/// Sends `mail` and reports each step to `tx` until it is delivered, given up, refused, or
/// the dialog no longer listens.
async fn run(
    mail: TestMail,
    r: Route,
    events: EventBus,
    queue: Option<Queue>,
    tx: mpsc::Sender<Progress>,
    wake: impl Fn(),
) {
    let say = |p: Progress| {
        let ok = tx.send(p).is_ok();
        wake();
        ok
    };
    // Subscribed before sending, so the end of a quick delivery is not missed.
    let mut finished = events.subscribe();
    say(Progress::Connecting(r.addr.to_string()));
    let accepted = match testmail::send(&mail, &events).await {
        Ok(a) => a,
        Err(e) => {
            say(Progress::Error(advice(&e, &mail)));
            return;
        }
    };
    let Accepted { reply, outcome } = accepted;
    say(Progress::Accepted(reply));
    let id = match outcome {
        Taken::Delivered(_) => {
            say(Progress::Delivered(format!(
                "to the mailbox of {} (the 250 reply means it is written there)",
                mail.to
            )));
            return;
        }
        Taken::Other => {
            say(Progress::Untracked);
            return;
        }
        Taken::Queued(id) => id,
    };
    if !say(Progress::Queued(id.clone())) {
        return;
    }
    let Some(queue) = queue else {
        say(Progress::Error("the services stopped".into()));
        return;
    };
    follow(&id, &queue, &mut finished, &say).await;
}

/// Follows queue entry `id` until it leaves the queue, reporting each new deferral.
async fn follow(
    id: &str,
    queue: &Queue,
    finished: &mut broadcast::Receiver<crate::engine::events::Event>,
    say: &impl Fn(Progress) -> bool,
) {
    let num = parse_id(id);
    let mut last_error = String::new();
    // The delivery's own log line ("delivered to <rcpt> via host[ip]: 250 ...").
    let mut how = String::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = finished.recv() => match ev {
                Ok(ev) => {
                    let ours = ev.session.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(id));
                    if let (true, EventKind::Delivery { text }) = (ours, &ev.kind)
                        && text.starts_with("delivered to ")
                    {
                        how = text.clone();
                    }
                    if matches!(ev.kind, EventKind::Stopping) {
                        say(Progress::Unfollowed(format!(
                            "the services are stopping: {id} stays in the queue and is \
                             delivered after the next start"
                        )));
                        return;
                    }
                    if let EventKind::QueueFinished { id: done, delivered, failed } = &ev.kind
                        && done.eq_ignore_ascii_case(id)
                    {
                        if *delivered > 0 && *failed == 0 {
                            say(Progress::Delivered(if how.is_empty() {
                                format!("by the queue: the next server took it ({id})")
                            } else {
                                format!("by the queue: {how}")
                            }));
                        } else {
                            let why = if last_error.is_empty() {
                                "the next server refused it".to_string()
                            } else {
                                last_error.clone()
                            };
                            say(Progress::GivenUp(why));
                        }
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    say(Progress::Unfollowed("the services stopped".into()));
                    return;
                }
            },
            _ = tick.tick() => {
                let Some(id) = num else { continue };
                let Some(e) = queue.entry(id).await else {
                    continue;
                };
                let err = e
                    .meta
                    .rcpts
                    .iter()
                    .find(|r| r.state != RcptState::Delivered && !r.last_error.is_empty())
                    .map(|r| r.last_error.to_string())
                    .unwrap_or_default();
                if !err.is_empty() && err != last_error {
                    last_error = err.clone();
                    let failed = e.meta.rcpts.iter().any(|r| r.state == RcptState::Failed);
                    if !failed && !say(Progress::Deferred(format!(
                        "attempt {}: {err}",
                        e.meta.attempts
                    ))) {
                        return;
                    }
                }
            }
        }
    }
}

/// The error as the dialog says it: the server's words, and what to change.
fn advice(e: &TestMailError, mail: &TestMail) -> String {
    let text = e.to_string();
    let hint = match e {
        TestMailError::Connection(_) => {
            "Is the listener running? See Server > Start Services and the System log."
        }
        TestMailError::Session(t) if t.contains("offers no AUTH") => {
            "This listener offers no login here: leave Password empty."
        }
        TestMailError::Session(t) if t.contains("AUTH") => {
            "Check the From account's password (or choose an account and enter its password)."
        }
        TestMailError::Session(_) => "See the SMTP In log for this session.",
        TestMailError::Refused(t) if t.contains(" 530") || t.contains("authentication") => {
            "Choose an account as From and enter its password."
        }
        TestMailError::Refused(t) if t.contains(" 550") && mail.login.is_none() => {
            "Relaying needs a login: choose an account as From and enter its password \
             (Access Control decides who may send to other domains)."
        }
        TestMailError::Refused(_) => "See the SMTP In log for this session.",
    };
    format!("{text}. {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, addr: Option<&str>) -> ListenerStatus {
        ListenerStatus {
            name: name.into(),
            configured: String::new(),
            addr: addr.map(|a| a.parse().unwrap()),
            error: addr.is_none().then(|| "port 25: permission denied".into()),
            sessions: 0,
        }
    }

    #[test]
    fn the_listener_is_the_one_a_mail_client_would_use() {
        let mut c = Config {
            domains: vec!["example.test".into()],
            ..Config::default()
        };
        c.smtp.outgoing.enabled = true;
        let up = [
            listener("incoming", Some("0.0.0.0:2526")),
            listener("outgoing", Some("127.0.0.1:2525")),
        ];
        let at =
            |l: &[ListenerStatus], to: &str| route(&c, Some(l), to).map(|r| r.addr.to_string());
        assert_eq!(at(&up, "a@Example.TEST").unwrap(), "127.0.0.1:2526");
        assert_eq!(at(&up, "b@remote.test").unwrap(), "127.0.0.1:2525");
        // Port 25 could not be bound: a local account is reached through the Outgoing SMTP.
        let down = [listener("incoming", None), up[1].clone()];
        assert_eq!(at(&down, "a@example.test").unwrap(), "127.0.0.1:2525");
        let e = at(&down[..1], "a@example.test").unwrap_err();
        assert!(e.contains("permission denied"), "{e}");
        assert!(
            route(&c, None, "a@example.test")
                .unwrap_err()
                .contains("not running")
        );
        c.smtp.outgoing.enabled = false;
        let e = route(&c, Some(&up), "b@remote.test").unwrap_err();
        assert!(e.contains("Outgoing SMTP is off"), "{e}");
        assert!(route(&c, Some(&up), "nobody").is_err());
    }
}
