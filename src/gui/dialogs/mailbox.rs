//! The POP3 and IMAP4 dialogs: one form for both, as the configuration has one
//! [`MailServiceConfig`] shape for both. Ability Mail Server's POP3 and IMAP4 pages, same
//! labels: Enable Service, Port, Max Connections, Idle Time-out, Listen Only on IP, Use Explicit
//! SSL, Use Implicit SSL, SSL Port; plus when a password may be sent without TLS. What differs
//! by protocol (title, section, hover texts) is a [`MailService`] of the config's marker type.

use super::form::{Form, PORT, grid, parse_duration, parse_num};
use super::{check_row, error_for, error_label, noted_row, text_row};
use crate::engine::config::{
    Config, FieldError, Imap, MailServiceConfig, PlaintextLogin, Pop3, ServiceDefaults,
};
use eframe::egui;
use std::marker::PhantomData;

/// The POP3 dialog.
pub type Pop3Form = MailServiceForm<Pop3>;
/// The IMAP4 dialog.
pub type ImapForm = MailServiceForm<Imap>;

/// Hover texts of one protocol's dialog, after the manual's.
#[derive(Debug)]
pub struct Help {
    /// Enable Service.
    pub enable: &'static str,
    /// Port.
    pub port: &'static str,
    /// Max Connections.
    pub max_connections: &'static str,
    /// Idle Time-out.
    pub idle: &'static str,
    /// Use Explicit SSL.
    pub explicit: &'static str,
    /// Use Implicit SSL.
    pub implicit: &'static str,
    /// SSL Port.
    pub ssl_port: &'static str,
}

/// Listen Only on IP (the same for every service).
pub const LISTEN_IP: &str = "This allows you to bind the listening ports to a single IP address. \
If a host name is provided then it will be converted to an IP address which will then be used for \
binding. Leave it empty to listen on every address.";

/// Logins Without TLS (the same for every service).
pub const PLAINTEXT: &str = "When a password may be sent on a connection that is not encrypted. \
\"Only from This Computer\" allows it from loopback addresses (127.0.0.0/8, ::1), where it never \
crosses a network.";

/// What a mailbox-access protocol's dialog needs beyond its configuration defaults.
pub trait MailService: ServiceDefaults + Sized + 'static {
    /// Window title (and the toolbar button's text).
    const TITLE: &'static str;
    /// Hover texts.
    const HELP: Help;
    /// A note beside Max Connections, if the manual gives one.
    const MAX_CONNECTIONS_NOTE: Option<&'static str> = None;
    /// Where the dialog first opens (apart from the other service's, so both can be open
    /// with each one's buttons in sight).
    const POS: [f32; 2];
    /// The protocol's section of the configuration.
    fn section(cfg: &Config) -> &MailServiceConfig<Self>;
    /// The same, to write.
    fn section_mut(cfg: &mut Config) -> &mut MailServiceConfig<Self>;
}

impl MailService for Pop3 {
    const TITLE: &'static str = "POP3 Settings";
    const POS: [f32; 2] = [90.0, 90.0];
    const HELP: Help = Help {
        enable: "Serve the accounts' mailboxes over POP3, so mail clients can download their \
mail.",
        port: "The port POP3 clients connect to. The standard port is 110.",
        max_connections: "The most POP3 sessions at once on each port; one more is refused with \
a temporary error.",
        idle: "A session that sends nothing for this long is closed (RFC 1939 asks for at least \
10 minutes). Write e.g. 10m, 30m.",
        explicit: "Offer STLS on the POP3 port: the client switches to TLS before it logs in.",
        implicit: "Also listen on the SSL Port, where TLS starts at once (POP3S).",
        ssl_port: "The port for TLS from the first byte. The standard port is 995.",
    };

    fn section(cfg: &Config) -> &MailServiceConfig<Self> {
        &cfg.pop3
    }

    fn section_mut(cfg: &mut Config) -> &mut MailServiceConfig<Self> {
        &mut cfg.pop3
    }
}

impl MailService for Imap {
    const TITLE: &'static str = "IMAP4 Settings";
    const POS: [f32; 2] = [150.0, 130.0];
    const HELP: Help = Help {
        enable: "Serve the accounts' mailboxes over IMAP4, so mail clients and phones can read, \
file, flag and delete the mail kept on this server.",
        port: "The port IMAP4 clients connect to. The standard port is 143.",
        max_connections: "The most IMAP4 sessions at once on each port; one more is refused. A \
mail client often keeps several sessions open (one per watched folder), so allow a few per \
person; a value higher than 200 is not advised.",
        idle: "A session that sends nothing for this long is closed, one waiting in IDLE too \
(RFC 9051 asks for at least 30 minutes). Write e.g. 30m, 1h.",
        explicit: "Offer STARTTLS on the IMAP4 port: the client switches to TLS before it logs \
in.",
        implicit: "Also listen on the SSL Port, where TLS starts at once (IMAPS).",
        ssl_port: "The port for TLS from the first byte. The standard port is 993.",
    };
    const MAX_CONNECTIONS_NOTE: Option<&'static str> = Some("no higher than 200 advised");

    fn section(cfg: &Config) -> &MailServiceConfig<Self> {
        &cfg.imap
    }

    fn section_mut(cfg: &mut Config) -> &mut MailServiceConfig<Self> {
        &mut cfg.imap
    }
}

/// The dialog's draft of one protocol's section.
pub struct MailServiceForm<K> {
    enabled: bool,
    port: String,
    max_connections: String,
    idle_timeout: String,
    listen_ip: String,
    explicit_ssl: bool,
    implicit_ssl: bool,
    ssl_port: String,
    plaintext_login: PlaintextLogin,
    kind: PhantomData<K>,
}

/// The section's fields, each shown with its error under it (others are listed at the
/// bottom).
const FIELDS: [&str; 9] = [
    "enabled",
    "port",
    "max_connections",
    "idle_timeout",
    "listen_ip",
    "explicit_ssl",
    "implicit_ssl",
    "ssl_port",
    "plaintext_login",
];

fn plaintext_name(p: PlaintextLogin) -> &'static str {
    match p {
        PlaintextLogin::Never => "Never (TLS Only)",
        PlaintextLogin::Loopback => "Only from This Computer",
        PlaintextLogin::Always => "Always",
    }
}

/// `field`'s path in `K`'s section: `imap.port`.
fn path<K: ServiceDefaults>(field: &str) -> String {
    format!("{}.{field}", K::NAME)
}

impl<K: MailService> Form for MailServiceForm<K> {
    const TITLE: &'static str = K::TITLE;

    fn window(window: egui::Window<'_>) -> egui::Window<'_> {
        window.default_pos(K::POS)
    }

    fn from_config(cfg: &Config) -> Self {
        let s = K::section(cfg);
        MailServiceForm {
            enabled: s.enabled,
            port: s.port.to_string(),
            max_connections: s.max_connections.to_string(),
            idle_timeout: s.idle_timeout.to_string(),
            listen_ip: s.listen_ip.clone(),
            explicit_ssl: s.explicit_ssl,
            implicit_ssl: s.implicit_ssl,
            ssl_port: s.ssl_port.to_string(),
            plaintext_login: s.plaintext_login,
            kind: PhantomData,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let mut e = Vec::new();
        let s = K::section_mut(cfg);
        s.enabled = self.enabled;
        if let Some(n) = parse_num(&self.port, &path::<K>("port"), PORT, &mut e) {
            s.port = n;
        }
        if let Some(n) = parse_num(
            &self.max_connections,
            &path::<K>("max_connections"),
            "a whole number",
            &mut e,
        ) {
            s.max_connections = n;
        }
        if let Some(d) = parse_duration(&self.idle_timeout, &path::<K>("idle_timeout"), &mut e) {
            s.idle_timeout = d;
        }
        s.listen_ip = self.listen_ip.trim().to_string();
        s.explicit_ssl = self.explicit_ssl;
        s.implicit_ssl = self.implicit_ssl;
        if let Some(n) = parse_num(&self.ssl_port, &path::<K>("ssl_port"), PORT, &mut e) {
            s.ssl_port = n;
        }
        s.plaintext_login = self.plaintext_login;
        e
    }

    fn shows_error(&self, p: &str) -> bool {
        p.strip_prefix(K::NAME)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|field| FIELDS.contains(&field))
    }

    fn contents(&mut self, ui: &mut egui::Ui, errs: &[FieldError]) {
        let help = &K::HELP;
        // Ids salted with the section: both dialogs may be open at once.
        grid(K::NAME).show(ui, |ui| {
            check_row(
                ui,
                "Enable Service",
                help.enable,
                &mut self.enabled,
                errs,
                &path::<K>("enabled"),
            );
            let on = self.enabled;
            text_row(
                ui,
                "Port",
                help.port,
                &mut self.port,
                errs,
                &path::<K>("port"),
                on,
            );
            noted_row(
                ui,
                "Max Connections",
                help.max_connections,
                &mut self.max_connections,
                errs,
                &path::<K>("max_connections"),
                on,
                K::MAX_CONNECTIONS_NOTE,
            );
            text_row(
                ui,
                "Idle Time-out",
                help.idle,
                &mut self.idle_timeout,
                errs,
                &path::<K>("idle_timeout"),
                on,
            );
            text_row(
                ui,
                "Listen Only on IP",
                LISTEN_IP,
                &mut self.listen_ip,
                errs,
                &path::<K>("listen_ip"),
                on,
            );
            check_row(
                ui,
                "Use Explicit SSL",
                help.explicit,
                &mut self.explicit_ssl,
                errs,
                &path::<K>("explicit_ssl"),
            );
            check_row(
                ui,
                "Use Implicit SSL",
                help.implicit,
                &mut self.implicit_ssl,
                errs,
                &path::<K>("implicit_ssl"),
            );
            text_row(
                ui,
                "SSL Port",
                help.ssl_port,
                &mut self.ssl_port,
                errs,
                &path::<K>("ssl_port"),
                on && self.implicit_ssl,
            );
            let l = ui.label("Logins Without TLS").on_hover_text(PLAINTEXT);
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt((K::NAME, "plaintext"))
                    .selected_text(plaintext_name(self.plaintext_login))
                    .show_ui(ui, |ui| {
                        for p in [
                            PlaintextLogin::Never,
                            PlaintextLogin::Loopback,
                            PlaintextLogin::Always,
                        ] {
                            ui.selectable_value(&mut self.plaintext_login, p, plaintext_name(p));
                        }
                    })
                    .response
                    .labelled_by(l.id)
                    .on_hover_text(PLAINTEXT);
                if let Some(e) = error_for(errs, &path::<K>("plaintext_login")) {
                    error_label(ui, e);
                }
            });
            ui.end_row();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop3_draft_round_trips_the_config() {
        let mut cfg = Config::default();
        cfg.pop3.port = 1110;
        cfg.pop3.implicit_ssl = false;
        cfg.pop3.plaintext_login = PlaintextLogin::Never;
        let d = Pop3Form::from_config(&cfg);
        let mut out = Config::default();
        assert!(d.write_into(&mut out).is_empty());
        assert_eq!(out, cfg);
    }

    #[test]
    fn imap_draft_writes_only_the_imap_section() {
        let mut cfg = Config::default();
        cfg.imap.port = 1143;
        cfg.imap.ssl_port = 1993;
        cfg.imap.listen_ip = "127.0.0.1".into();
        cfg.imap.plaintext_login = PlaintextLogin::Always;
        let d = ImapForm::from_config(&cfg);
        assert_eq!(d.port, "1143");
        assert_eq!(d.idle_timeout, "30m");
        let mut out = Config::default();
        assert!(d.write_into(&mut out).is_empty());
        assert_eq!(out, cfg);
        assert_eq!(out.pop3, Config::default().pop3, "POP3 left alone");
    }

    #[test]
    fn unparsable_fields_are_reported_by_their_sections_path() {
        let mut d = Pop3Form::from_config(&Config::default());
        d.port = "pop".into();
        d.idle_timeout = "ten minutes".into();
        let paths: Vec<_> = d
            .write_into(&mut Config::default())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["pop3.port", "pop3.idle_timeout"]);

        let mut d = ImapForm::from_config(&Config::default());
        d.max_connections = "many".into();
        d.ssl_port = "70000".into();
        let paths: Vec<_> = d
            .write_into(&mut Config::default())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["imap.max_connections", "imap.ssl_port"]);
    }

    #[test]
    fn each_dialog_shows_its_own_sections_errors() {
        let pop3 = Pop3Form::from_config(&Config::default());
        let imap = ImapForm::from_config(&Config::default());
        assert!(pop3.shows_error("pop3.port") && !pop3.shows_error("imap.port"));
        assert!(imap.shows_error("imap.plaintext_login") && !imap.shows_error("pop3.port"));
        assert!(!imap.shows_error("imap.nonsense") && !imap.shows_error("imapx.port"));
    }
}
