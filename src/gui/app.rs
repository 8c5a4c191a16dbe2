//! [`PosternApp`]: the main window's contents and state, independent of eframe so the tests
//! can drive it with egui_kittest. Menu bar and toolbar (dialogs, start/stop), the status strip
//! (services, each listener up/down with its address and open sessions, mail counters, queue
//! length, an open-relay warning), the "Getting Started" checklist ([`super::checklist`]), the
//! mails-per-minute chart, and the Live Logs and Queued Mails panes, plus the dialogs as
//! windows above them.
//! Each frame it takes in the engine's new events and finished starts/stops; it never blocks.

use super::checklist;
use super::dialogs::abuse::AbuseForm;
use super::dialogs::access::AccessForm;
use super::dialogs::dns::DnsDialog;
use super::dialogs::domains::DomainsForm;
use super::dialogs::form::FormDialog;
use super::dialogs::mailbox::{ImapForm, Pop3Form};
use super::dialogs::outgoing::OutgoingForm;
use super::dialogs::smtp::SmtpForm;
use super::dialogs::testmail::TestMailDialog;
use super::icon::Badge;
use super::panes::chart::MailChart;
use super::panes::logs::{Filters, LogPane};
use super::panes::queue::{QueuePane, Source};
use super::services::{ServiceState, Services};
use super::tray::{Tray, TrayAction, TrayState};
use crate::engine::config::Config;
use crate::engine::events::{Event, EventKind, Level};
use crate::engine::handle::ListenerStatus;
use eframe::egui;
use tokio::sync::broadcast;

/// A dialog the app can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    /// SMTP Settings.
    Smtp,
    /// Domains & Accounts.
    Domains,
    /// Access Control.
    Access,
    /// Outgoing Mails.
    Outgoing,
    /// Abuse & Spam.
    Abuse,
    /// DNS Records (reads only: not a settings form).
    Dns,
    /// POP3.
    Pop3,
    /// IMAP4.
    Imap,
    /// Send Test Mail (sends; not a settings form).
    TestMail,
    /// About Postern.
    About,
}

impl Dialog {
    /// Every dialog with its `POSTERN_GUI_OPEN_DIALOG` name.
    pub const NAMES: [(&'static str, Dialog); 10] = [
        ("smtp", Dialog::Smtp),
        ("access", Dialog::Access),
        ("outgoing", Dialog::Outgoing),
        ("abuse", Dialog::Abuse),
        ("domains", Dialog::Domains),
        ("dns", Dialog::Dns),
        ("pop3", Dialog::Pop3),
        ("imap", Dialog::Imap),
        ("testmail", Dialog::TestMail),
        ("about", Dialog::About),
    ];

    /// The dialog's window title.
    pub fn title(self) -> &'static str {
        match self {
            Dialog::Smtp => "SMTP Settings",
            Dialog::Domains => "Domains & Accounts",
            Dialog::Access => "Access Control",
            Dialog::Outgoing => "Outgoing Mails",
            Dialog::Abuse => "Abuse & Spam",
            Dialog::Dns => "DNS Records",
            Dialog::Pop3 => "POP3 Settings",
            Dialog::Imap => "IMAP4 Settings",
            Dialog::TestMail => "Send Test Mail",
            Dialog::About => "About Postern",
        }
    }

    /// The dialog named by `POSTERN_GUI_OPEN_DIALOG` (smtp, access, outgoing, abuse, domains,
    /// dns, pop3, imap, testmail, about).
    pub fn from_name(name: &str) -> Option<Dialog> {
        let name = name.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }
}

/// Settings of the window that persist through eframe storage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// Show the mails-per-minute chart.
    pub show_chart: bool,
    /// The close button hides the window to the tray (only when a tray host exists).
    pub close_to_tray: bool,
    /// Log pane filters.
    pub filters: Filters,
    /// Log pane follows the tail.
    pub follow: bool,
    /// The pane in the central area.
    pub pane: Pane,
    /// Show the "Getting Started" checklist (until the admin hides it; Help brings it back).
    pub getting_started: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            show_chart: true,
            close_to_tray: true,
            filters: Filters::default(),
            follow: true,
            pane: Pane::Logs,
            getting_started: true,
        }
    }
}

/// Which pane the central area shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Pane {
    /// Live Logs.
    Logs,
    /// Queued Mails.
    Queue,
}

/// How many of today's earlier log lines the Live Logs pane shows when the window opens.
const EARLIER_LINES: usize = 1000;

/// The main window.
pub struct PosternApp {
    /// The engine.
    services: Services,
    /// New engine events.
    live: broadcast::Receiver<Event>,
    /// The Live Logs pane.
    pub logs: LogPane,
    /// The Queued Mails pane.
    queue: QueuePane,
    /// The chart.
    chart: MailChart,
    /// Open SMTP Settings dialog.
    smtp: Option<FormDialog<SmtpForm>>,
    /// Open Domains & Accounts dialog.
    domains: Option<FormDialog<DomainsForm>>,
    /// Open Access Control dialog.
    access: Option<FormDialog<AccessForm>>,
    /// Open Outgoing Mails dialog.
    outgoing: Option<FormDialog<OutgoingForm>>,
    /// Open Abuse & Spam dialog.
    abuse: Option<FormDialog<AbuseForm>>,
    /// The DNS Records dialog, kept while closed: its last check ticks a checklist step.
    dns: DnsDialog,
    /// Open POP3 dialog.
    pop3: Option<FormDialog<Pop3Form>>,
    /// Open IMAP4 dialog.
    imap: Option<FormDialog<ImapForm>>,
    /// The Send Test Mail dialog, kept while closed: a send goes on being followed.
    test_mail: TestMailDialog,
    /// The configuration file as last read (None: it cannot be read).
    config: Option<Config>,
    /// The open-relay warning for the configuration file as last read.
    relay_warning: Option<String>,
    /// Whether About is open.
    about: bool,
    /// Persisted window settings.
    pub prefs: Prefs,
    /// The tray, when there is one.
    tray: Option<Tray>,
    /// Whether the window is shown (false while hidden to the tray).
    visible: bool,
    /// Quit was chosen: the next close request is let through.
    quitting: bool,
    /// The window was closed without a tray to hide in while the mail server runs: asking
    /// whether to stop it.
    confirm_quit: bool,
    /// The question has just been asked: its default button takes the keyboard focus.
    quit_focus: bool,
}

impl PosternApp {
    /// The window over `services` (which may still be stopped or starting).
    pub fn new(services: Services) -> Self {
        let live = services.events().subscribe();
        let mut logs = LogPane::new();
        let chart = MailChart::default();
        // Today's earlier lines from the log file (a previous run's too), then the events
        // this process has seen.
        let recent = services.events().recent();
        let logs_dir = services.options().data_dir.join("logs");
        let earlier = crate::engine::logfile::earlier_today(
            &logs_dir,
            std::time::SystemTime::now(),
            recent.first().map(|e| e.time),
            EARLIER_LINES,
        );
        if !earlier.is_empty() {
            logs.push_note(
                Level::Info,
                format!("(today's earlier lines, from {})", logs_dir.display()),
            );
        }
        for ev in earlier.iter().chain(&recent) {
            logs.push(ev);
        }
        let mut app = PosternApp {
            services,
            live,
            logs,
            queue: QueuePane::default(),
            chart,
            smtp: None,
            domains: None,
            access: None,
            outgoing: None,
            abuse: None,
            dns: DnsDialog::default(),
            pop3: None,
            imap: None,
            test_mail: TestMailDialog::default(),
            config: None,
            relay_warning: None,
            about: false,
            prefs: Prefs::default(),
            tray: None,
            visible: true,
            quitting: false,
            confirm_quit: false,
            quit_focus: false,
        };
        app.refresh_config();
        app
    }

    /// Re-reads the configuration file, for the open-relay warning and the checklist (at
    /// start, at each reload, and when a dialog closes: the services may be stopped).
    fn refresh_config(&mut self) {
        self.config = crate::engine::config::edit::read(&self.services.options().config_path).ok();
        self.relay_warning = self
            .config
            .as_ref()
            .and_then(crate::engine::config::validate::open_relay_warning);
    }

    /// The "Getting Started" steps as the live state has them now.
    pub fn checklist(&self) -> Vec<checklist::Step> {
        checklist::steps(
            self.config.as_ref(),
            self.services.status().as_ref(),
            self.dns.summary(),
            // The engine's counters as last seen: kept while the services are stopped.
            self.chart.last.and_then(|s| s.last_delivery),
        )
    }

    /// The engine.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The engine, mutably (start/stop).
    pub fn services_mut(&mut self) -> &mut Services {
        &mut self.services
    }

    /// Uses these persisted settings. A session filter is not taken over: its session
    /// belonged to an earlier run.
    pub fn set_prefs(&mut self, mut prefs: Prefs) {
        prefs.filters.session.clear();
        self.logs.filters = prefs.filters.clone();
        self.logs.follow = prefs.follow;
        self.prefs = prefs;
    }

    /// The settings to persist now.
    pub fn current_prefs(&self) -> Prefs {
        Prefs {
            filters: self.logs.filters.clone(),
            follow: self.logs.follow,
            ..self.prefs.clone()
        }
    }

    /// Attaches the tray.
    pub fn set_tray(&mut self, tray: Tray) {
        self.tray = Some(tray);
    }

    /// Whether a tray host shows our icon.
    pub fn has_tray(&self) -> bool {
        self.tray.as_ref().is_some_and(Tray::has_host)
    }

    /// Opens a dialog (reading the configuration file now).
    pub fn open(&mut self, d: Dialog) {
        match d {
            Dialog::Smtp => self.smtp = Some(FormDialog::open(&self.services)),
            Dialog::Domains => self.domains = Some(FormDialog::open(&self.services)),
            Dialog::Access => self.access = Some(FormDialog::open(&self.services)),
            Dialog::Outgoing => {
                let mut d = FormDialog::<OutgoingForm>::open(&self.services);
                d.form.rt = Some(self.services.runtime().clone());
                self.outgoing = Some(d);
            }
            Dialog::Abuse => self.abuse = Some(FormDialog::open(&self.services)),
            Dialog::Dns => self.dns.open(),
            Dialog::Pop3 => self.pop3 = Some(FormDialog::open(&self.services)),
            Dialog::Imap => self.imap = Some(FormDialog::open(&self.services)),
            Dialog::TestMail => self.test_mail.open(self.config.as_ref()),
            Dialog::About => self.about = true,
        }
    }

    /// Which dialogs are open (the settings dialogs, in [`Dialog::NAMES`] order).
    fn open_dialogs(&self) -> [bool; 7] {
        [
            self.smtp.is_some(),
            self.access.is_some(),
            self.outgoing.is_some(),
            self.abuse.is_some(),
            self.domains.is_some(),
            self.pop3.is_some(),
            self.imap.is_some(),
        ]
    }

    /// Whether a dialog is open.
    pub fn is_open(&self, d: Dialog) -> bool {
        match d {
            Dialog::Smtp => self.smtp.is_some(),
            Dialog::Domains => self.domains.is_some(),
            Dialog::Access => self.access.is_some(),
            Dialog::Outgoing => self.outgoing.is_some(),
            Dialog::Abuse => self.abuse.is_some(),
            Dialog::Dns => self.dns.open,
            Dialog::Pop3 => self.pop3.is_some(),
            Dialog::Imap => self.imap.is_some(),
            Dialog::TestMail => self.test_mail.open,
            Dialog::About => self.about,
        }
    }

    /// Work that must go on even while the window is hidden: new events, finished
    /// starts/stops, tray clicks, the tray's icon. Called from eframe's `logic` and from
    /// [`PosternApp::ui`].
    pub fn tick(&mut self, ctx: &egui::Context) {
        self.drain_events();
        self.services.poll();
        self.chart.observe(
            self.services.status().map(|s| s.stats),
            std::time::SystemTime::now(),
        );
        let actions = self.tray.as_ref().map(Tray::actions).unwrap_or_default();
        for a in actions {
            match a {
                TrayAction::ToggleWindow => self.set_visible(ctx, !self.visible),
                TrayAction::Start => self.services.start(),
                TrayAction::Stop => self.services.stop(),
                TrayAction::Quit => self.quit(ctx),
            }
        }
        let state = self.tray_state();
        if let Some(t) = self.tray.as_mut() {
            t.update(state);
        }
    }

    /// Shows or hides the window (hiding only when a tray host can bring it back).
    pub fn set_visible(&mut self, ctx: &egui::Context, visible: bool) {
        if !visible && !self.has_tray() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(true));
            return;
        }
        self.visible = visible;
        ctx.send_viewport_cmd(egui::ViewportCommand::Visible(visible));
        if visible {
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
    }

    /// Closes the window and ends the app.
    pub fn quit(&mut self, ctx: &egui::Context) {
        self.quitting = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    /// Answers the window's close button: hide to the tray when a tray host exists and the
    /// preference says so; otherwise, while the mail server runs, ask before stopping it (the
    /// app ends when its window does); with the server stopped, let the app end.
    pub fn on_close_requested(&mut self, ctx: &egui::Context) {
        if self.quitting {
            return;
        }
        if self.prefs.close_to_tray && self.has_tray() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.set_visible(ctx, false);
        } else if self.services.can_stop() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if !self.confirm_quit {
                self.confirm_quit = true;
                self.quit_focus = true;
                let text = "window closed without a system tray: asking whether to stop the \
                            mail server";
                eprintln!("postern: {text}");
                self.services.events().emit(
                    Level::Info,
                    None,
                    EventKind::Note { text: text.into() },
                );
            }
        }
    }

    /// Whether the app is ending (Quit chosen, or the close confirmed).
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// The question asked when the window is closed with the mail server running and no tray.
    fn quit_confirmation(&mut self, ctx: &egui::Context) {
        if !self.confirm_quit {
            return;
        }
        let mut answer = None;
        let modal = egui::Modal::new(egui::Id::unique("quit_confirm")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading("Stop the mail server and quit?");
            ui.label(
                "Closing the window stops Postern: no mail is received or sent until it runs \
                 again. Mail already queued waits safely on disk.",
            );
            ui.separator();
            ui.horizontal(|ui| {
                let quit = ui.button("Stop and Quit");
                // The default answer: Enter (or Space) takes it, Escape cancels.
                if std::mem::take(&mut self.quit_focus) {
                    quit.request_focus();
                }
                if quit.clicked() {
                    answer = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(false);
                }
            });
        });
        if modal.should_close() && answer.is_none() {
            answer = Some(false);
        }
        match answer {
            Some(true) => {
                self.confirm_quit = false;
                self.quit(ctx);
            }
            Some(false) => self.confirm_quit = false,
            None => {}
        }
    }

    /// Takes the tray away (to shut it down at exit).
    pub fn take_tray(&mut self) -> Option<Tray> {
        self.tray.take()
    }

    fn tray_state(&self) -> TrayState {
        let status = self.services.status();
        let listener_down = status
            .as_ref()
            .is_some_and(|s| s.listeners.iter().any(|l| l.addr.is_none()));
        let badge = match self.services.state() {
            ServiceState::Running if listener_down => Badge::Error,
            ServiceState::Running => Badge::Running,
            ServiceState::Failed(_) => Badge::Error,
            _ => Badge::Stopped,
        };
        TrayState {
            badge,
            tooltip: format!("Postern: {}", self.services.state().label()),
            window_visible: self.visible,
            can_start: self.services.can_start(),
            can_stop: self.services.can_stop(),
        }
    }

    fn drain_events(&mut self) {
        use broadcast::error::TryRecvError;
        loop {
            match self.live.try_recv() {
                Ok(ev) => {
                    if matches!(
                        ev.kind,
                        EventKind::ConfigReloaded | EventKind::Started { .. }
                    ) {
                        self.refresh_config();
                    }
                    self.logs.push(&ev);
                }
                Err(TryRecvError::Lagged(n)) => self.logs.push_note(
                    Level::Warn,
                    format!("({n} log lines were skipped: the window fell behind)"),
                ),
                Err(_) => break,
            }
        }
    }

    /// Draws the whole window.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.tick(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::top("toolbar").show(ui, |ui| {
            self.toolbar(ui);
            ui.add_space(2.0);
            self.status_strip(ui);
            ui.add_space(2.0);
        });
        if self.prefs.show_chart {
            egui::Panel::bottom("chart")
                .resizable(true)
                .default_size(170.0)
                .min_size(90.0)
                .show(ui, |ui| {
                    ui.label(egui::RichText::new("Mails Per Minute").strong());
                    self.chart.ui(ui);
                });
        }
        self.dns.poll(&ctx, &self.services);
        self.test_mail.poll();
        self.quit_confirmation(&ctx);
        egui::CentralPanel::default().show(ui, |ui| {
            if self.prefs.getting_started {
                match checklist::ui(ui, &self.checklist()) {
                    Some(checklist::Clicked::Open(d)) => self.open(d),
                    Some(checklist::Clicked::Hide) => self.prefs.getting_started = false,
                    None => {}
                }
                ui.add_space(4.0);
            }
            ui.horizontal(|ui| {
                ui.selectable_value(
                    &mut self.prefs.pane,
                    Pane::Logs,
                    egui::RichText::new("Live Logs").heading(),
                )
                .on_hover_text("The engine's log, live");
                let queued = self.services.queue().map(|q| q.len());
                ui.selectable_value(
                    &mut self.prefs.pane,
                    Pane::Queue,
                    egui::RichText::new("Queued Mails").heading(),
                )
                .on_hover_text(match queued {
                    Some(n) => format!("The outgoing queue: {n} mail(s)"),
                    None => "The outgoing queue".to_string(),
                });
            });
            match self.prefs.pane {
                Pane::Logs => self.logs.ui(ui),
                Pane::Queue => {
                    let rt = self.services.runtime().clone();
                    let source = match (self.services.queue(), self.services.state()) {
                        (Some(q), _) => Source::Live(q),
                        (None, ServiceState::Stopped | ServiceState::Failed(_)) => {
                            Source::Offline(&self.services.options().data_dir)
                        }
                        (None, _) => Source::Busy,
                    };
                    self.queue.ui(ui, source, &rt);
                }
            }
        });

        let open_before = self.open_dialogs();
        if let Some(d) = self.smtp.as_mut() {
            let open = d.show(&ctx, &self.services);
            if std::mem::take(&mut d.form.wants_access_control) && self.access.is_none() {
                self.access = Some(FormDialog::open(&self.services));
            }
            if !open {
                self.smtp = None;
            }
        }
        if let Some(d) = self.access.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.access = None;
        }
        if let Some(d) = self.outgoing.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.outgoing = None;
        }
        if let Some(d) = self.abuse.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.abuse = None;
        }
        if let Some(d) = self.domains.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.domains = None;
        }
        self.dns.show(&ctx);
        if let Some(d) = self.pop3.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.pop3 = None;
        }
        if let Some(d) = self.imap.as_mut()
            && !d.show(&ctx, &self.services)
        {
            self.imap = None;
        }
        self.test_mail
            .show(&ctx, &self.services, self.config.as_ref());
        if self.about {
            self.about_window(&ctx);
        }
        if open_before != self.open_dialogs() {
            // A dialog closed (or opened): its Apply may have changed the file while no
            // server runs to report a reload.
            self.refresh_config();
        }
        // Session counts and the chart's time axis move without events.
        ctx.request_repaint_after(std::time::Duration::from_secs(1));
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("Server", |ui| {
                self.start_stop(ui);
                ui.separator();
                if ui
                    .add_enabled(self.has_tray(), egui::Button::new("Hide to Tray"))
                    .on_disabled_hover_text("No system tray is available")
                    .clicked()
                {
                    let ctx = ui.ctx().clone();
                    self.set_visible(&ctx, false);
                }
                if ui.button("Quit").clicked() {
                    let ctx = ui.ctx().clone();
                    self.quit(&ctx);
                }
            });
            ui.menu_button("Settings", |ui| {
                if ui.button("SMTP Settings...").clicked() {
                    self.open(Dialog::Smtp);
                }
                if ui.button("Domains & Accounts...").clicked() {
                    self.open(Dialog::Domains);
                }
                if ui.button("Access Control...").clicked() {
                    self.open(Dialog::Access);
                }
                if ui.button("Outgoing Mails...").clicked() {
                    self.open(Dialog::Outgoing);
                }
                if ui.button("Abuse & Spam...").clicked() {
                    self.open(Dialog::Abuse);
                }
                if ui.button("POP3 Settings...").clicked() {
                    self.open(Dialog::Pop3);
                }
                if ui.button("IMAP4 Settings...").clicked() {
                    self.open(Dialog::Imap);
                }
                ui.separator();
                if ui.button("DNS Records...").clicked() {
                    self.open(Dialog::Dns);
                }
            });
            ui.menu_button("Tools", |ui| {
                if ui.button("Send Test Mail...").clicked() {
                    self.open(Dialog::TestMail);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.prefs.show_chart, "Mails Per Minute Chart");
                ui.checkbox(&mut self.prefs.close_to_tray, "Close Button Hides to Tray")
                    .on_hover_text("Only when a system tray is available; otherwise closing quits");
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .button("Getting Started")
                    .on_hover_text("Show the checklist of the steps to a working mail server")
                    .clicked()
                {
                    self.prefs.getting_started = true;
                }
                if ui.button("About Postern").clicked() {
                    self.open(Dialog::About);
                }
            });
        });
    }

    /// Start Services and Stop Services (the Server menu's and the toolbar's); a disabled one
    /// says why on hover.
    fn start_stop(&mut self, ui: &mut egui::Ui) {
        let why = self.services.why_not();
        if ui
            .add_enabled(
                self.services.can_start(),
                egui::Button::new("Start Services"),
            )
            .on_hover_text("Start the mail services (SMTP, POP3, IMAP)")
            .on_disabled_hover_text(why)
            .clicked()
        {
            self.services.start();
        }
        if ui
            .add_enabled(self.services.can_stop(), egui::Button::new("Stop Services"))
            .on_hover_text("Stop the mail services gracefully (open sessions finish)")
            .on_disabled_hover_text(why)
            .clicked()
        {
            self.services.stop();
        }
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        // Wraps rather than cutting buttons off in a narrow window.
        ui.horizontal_wrapped(|ui| {
            self.start_stop(ui);
            ui.separator();
            if ui
                .button("SMTP Settings")
                .on_hover_text("Ports, addresses, limits, TLS")
                .clicked()
            {
                self.open(Dialog::Smtp);
            }
            if ui
                .button("Domains & Accounts")
                .on_hover_text("Local domains, accounts and passwords")
                .clicked()
            {
                self.open(Dialog::Domains);
            }
            if ui
                .button("Access Control")
                .on_hover_text("Who may relay through the Outgoing SMTP")
                .clicked()
            {
                self.open(Dialog::Access);
            }
            if ui
                .button("Outgoing Mails")
                .on_hover_text("Re-send options, delivery mode, relay host, domain mapping")
                .clicked()
            {
                self.open(Dialog::Outgoing);
            }
            if ui
                .button("Abuse & Spam")
                .on_hover_text("Limits per IP, lockout, tarpitting, RBL, SPF")
                .clicked()
            {
                self.open(Dialog::Abuse);
            }
            if ui
                .button("POP3 Settings")
                .on_hover_text("Reading mail over POP3: ports, SSL, limits")
                .clicked()
            {
                self.open(Dialog::Pop3);
            }
            if ui
                .button("IMAP4 Settings")
                .on_hover_text("Reading mail over IMAP4: ports, SSL, limits")
                .clicked()
            {
                self.open(Dialog::Imap);
            }
            if ui
                .button("DNS Records")
                .on_hover_text("The MX, SPF, DKIM and DMARC records to publish, checked live")
                .clicked()
            {
                self.open(Dialog::Dns);
            }
            if ui
                .button("Send Test Mail")
                .on_hover_text("Send a mail through this server and follow it until delivered")
                .clicked()
            {
                self.open(Dialog::TestMail);
            }
        });
        if let Some(w) = &self.relay_warning {
            ui.label(
                egui::RichText::new(format!("WARNING: {w}. Open Access Control to restrict it."))
                    .color(ui.visuals().error_fg_color)
                    .strong(),
            );
        }
    }

    fn status_strip(&mut self, ui: &mut egui::Ui) {
        let good = egui::Color32::from_rgb(53, 179, 74);
        let bad = ui.visuals().error_fg_color;
        let weak = ui.visuals().weak_text_color();
        ui.horizontal_wrapped(|ui| {
            let state = self.services.state().clone();
            let colour = match state {
                ServiceState::Running => good,
                ServiceState::Failed(_) => bad,
                _ => weak,
            };
            ui.label(
                egui::RichText::new(format!("Services: {}", state.label()))
                    .color(colour)
                    .strong(),
            );
            if let Some(s) = self.services.status() {
                for group in strip_groups(&s.listeners) {
                    ui.separator();
                    let l = group[0];
                    match (&l.addr, &l.error) {
                        (Some(_), _) => {
                            dot(ui, good);
                            // The ports only, each listener's address and sessions in the
                            // hover: the strip stays on one line at the window's default size.
                            let ports: Vec<String> = group
                                .iter()
                                .filter_map(|l| l.addr.map(|a| format!(":{}", a.port())))
                                .collect();
                            let hover: Vec<String> = group
                                .iter()
                                .filter_map(|l| {
                                    l.addr.map(|a| {
                                        format!(
                                            "{}: listening on {a} as configured ({}); {} \
                                             session(s) open now.",
                                            l.name, l.configured, l.sessions
                                        )
                                    })
                                })
                                .collect();
                            ui.label(
                                egui::RichText::new(format!(
                                    "{} {}",
                                    protocol(&l.name),
                                    ports.join(" ")
                                ))
                                .color(good),
                            )
                            .on_hover_text(hover.join("\n"));
                        }
                        (None, Some(e)) => {
                            dot(ui, bad);
                            ui.label(
                                egui::RichText::new(format!("{} {} DOWN", l.name, l.configured))
                                    .color(bad),
                            )
                            .on_hover_text(e.as_str());
                        }
                        _ => {
                            dot(ui, weak);
                            ui.label(
                                egui::RichText::new(format!("{} {}", l.name, l.configured))
                                    .color(weak),
                            );
                        }
                    }
                }
            }
            // The counters in one label, so the strip stays on one line at the default size:
            // the engine's own, today's (kept across restarts; the last seen while stopped).
            let c = self.chart.last.map(|s| s.today).unwrap_or_default();
            let mut counters = vec![
                format!("Accepted {}", c.accepted),
                format!("Sent {}", c.delivered),
                format!("Given Up {}", c.given_up),
                format!("Refused {}", c.refused),
            ];
            if let Some(q) = self.services.queue() {
                counters.push(format!("Queue {}", q.len()));
            }
            ui.separator();
            ui.label(counters.join(" · ")).on_hover_text(
                "Today (UTC), as the server counts them, the same after a restart \
                 (`postern status` shows the same):\nAccepted: mails accepted from clients, \
                 into local mailboxes or the queue.\nSent: queued mails that left the queue \
                 delivered to at least one recipient (a failure notice delivered to a local \
                 mailbox is not counted).\nGiven Up: queued mails given up on for at least \
                 one recipient (a failure notice went to the sender).\nRefused: connections \
                 refused, recipients refused at RCPT, mails refused at MAIL or after \
                 DATA.\nQueue: mails waiting in the outgoing queue.",
            );
        });
    }

    fn about_window(&mut self, ctx: &egui::Context) {
        let mut open = true;
        let shown = egui::Window::new("About Postern").open(&mut open).collapsible(false).resizable(false).show(ctx, |ui| {
            ui.heading(format!("Postern {}", env!("CARGO_PKG_VERSION")));
            ui.label("A desktop mail server: SMTP, POP3 and IMAP with local mailboxes, settings dialogs and live logs.");
            let o = self.services.options();
            ui.label(format!("Configuration file: {}", o.config_path.display()));
            ui.label(format!("Data directory: {}", o.data_dir.display()));
            ui.label(if self.has_tray() { "System tray: yes" } else { "System tray: none" });
        });
        let escape =
            shown.is_some_and(|s| super::dialogs::form::escape_closes(ctx, s.response.layer_id));
        self.about = open && !escape;
    }
}

/// The protocol a listener of the status list serves (SMTP's roles are SMTP).
fn protocol(name: &str) -> &'static str {
    if name.starts_with("POP3") {
        "POP3"
    } else if name.starts_with("IMAP") {
        "IMAP"
    } else {
        "SMTP"
    }
}

/// The status strip's entries, in the listeners' order: the listening ones together per
/// protocol ("SMTP :25 :2525 :465"), each one that is not listening on its own (with its
/// error).
fn strip_groups(listeners: &[ListenerStatus]) -> Vec<Vec<&ListenerStatus>> {
    let mut groups: Vec<Vec<&ListenerStatus>> = Vec::new();
    for l in listeners {
        let with = groups.iter_mut().find(|g| {
            l.addr.is_some() && g[0].addr.is_some() && protocol(&g[0].name) == protocol(&l.name)
        });
        match with {
            Some(g) => g.push(l),
            None => groups.push(vec![l]),
        }
    }
    groups
}

/// A small coloured status dot (drawn, so it needs no glyph in the font).
fn dot(ui: &mut egui::Ui, colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.5, colour);
}
