//! The POP3 dialog (Ability Mail Server's POP3 page, same labels: Enable Service, Port, Max
//! Connections, Idle Time-out, Listen Only on IP, Use Explicit SSL, Use Implicit SSL, SSL
//! Port) plus when a password may be sent without TLS. A [`Form`] in a `FormDialog`.

use super::form::{Form, PORT, grid, parse_duration, parse_num};
use super::{check_row, error_for, error_label, text_row};
use crate::engine::config::{Config, FieldError, PlaintextLogin};
use eframe::egui;

/// Hover texts, after the manual's.
pub mod help {
    /// Enable Service.
    pub const ENABLE: &str = "Serve the accounts' mailboxes over POP3, so mail clients can download \
their mail.";
    /// Port.
    pub const PORT: &str = "The port POP3 clients connect to. The standard port is 110.";
    /// Max Connections.
    pub const MAX_CONNECTIONS: &str = "The most POP3 sessions at once on each port; one more is \
refused with a temporary error.";
    /// Idle Time-out.
    pub const IDLE: &str = "A session that sends nothing for this long is closed (RFC 1939 asks for at \
least 10 minutes). Write e.g. 10m, 30m.";
    /// Listen Only on IP.
    pub const LISTEN_IP: &str = "This allows you to bind the listening ports to a single IP address. If \
a host name is provided then it will be converted to an IP address which will then be used for binding. \
Leave it empty to listen on every address.";
    /// Use Explicit SSL.
    pub const EXPLICIT: &str =
        "Offer STLS on the POP3 port: the client switches to TLS before it logs in.";
    /// Use Implicit SSL.
    pub const IMPLICIT: &str = "Also listen on the SSL Port, where TLS starts at once (POP3S).";
    /// SSL Port.
    pub const SSL_PORT: &str = "The port for TLS from the first byte. The standard port is 995.";
    /// Plaintext logins.
    pub const PLAINTEXT: &str = "When a password may be sent on a connection that is not encrypted. \
\"Only from this computer\" allows it from loopback addresses (127.0.0.0/8, ::1), where it never \
crosses a network.";
}

/// The dialog's draft.
pub struct Pop3Form {
    enabled: bool,
    port: String,
    max_connections: String,
    idle_timeout: String,
    listen_ip: String,
    explicit_ssl: bool,
    implicit_ssl: bool,
    ssl_port: String,
    plaintext_login: PlaintextLogin,
}

/// Errors shown beside a field of the dialog; others are listed at the bottom.
const SHOWN: [&str; 9] = [
    "pop3.enabled",
    "pop3.port",
    "pop3.max_connections",
    "pop3.idle_timeout",
    "pop3.listen_ip",
    "pop3.explicit_ssl",
    "pop3.implicit_ssl",
    "pop3.ssl_port",
    "pop3.plaintext_login",
];

fn plaintext_name(p: PlaintextLogin) -> &'static str {
    match p {
        PlaintextLogin::Never => "Never (TLS only)",
        PlaintextLogin::Loopback => "Only from this computer",
        PlaintextLogin::Always => "Always",
    }
}

impl Form for Pop3Form {
    const TITLE: &'static str = "POP3 Settings";

    fn window(window: egui::Window<'_>) -> egui::Window<'_> {
        window.default_pos([90.0, 90.0])
    }

    fn from_config(cfg: &Config) -> Self {
        let p = &cfg.pop3;
        Pop3Form {
            enabled: p.enabled,
            port: p.port.to_string(),
            max_connections: p.max_connections.to_string(),
            idle_timeout: p.idle_timeout.to_string(),
            listen_ip: p.listen_ip.clone(),
            explicit_ssl: p.explicit_ssl,
            implicit_ssl: p.implicit_ssl,
            ssl_port: p.ssl_port.to_string(),
            plaintext_login: p.plaintext_login,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let mut e = Vec::new();
        let p = &mut cfg.pop3;
        p.enabled = self.enabled;
        if let Some(n) = parse_num(&self.port, "pop3.port", PORT, &mut e) {
            p.port = n;
        }
        if let Some(n) = parse_num(
            &self.max_connections,
            "pop3.max_connections",
            "a whole number",
            &mut e,
        ) {
            p.max_connections = n;
        }
        if let Some(d) = parse_duration(&self.idle_timeout, "pop3.idle_timeout", &mut e) {
            p.idle_timeout = d;
        }
        p.listen_ip = self.listen_ip.trim().to_string();
        p.explicit_ssl = self.explicit_ssl;
        p.implicit_ssl = self.implicit_ssl;
        if let Some(n) = parse_num(&self.ssl_port, "pop3.ssl_port", PORT, &mut e) {
            p.ssl_port = n;
        }
        p.plaintext_login = self.plaintext_login;
        e
    }

    fn shows_error(&self, path: &str) -> bool {
        SHOWN.contains(&path)
    }

    fn contents(&mut self, ui: &mut egui::Ui, errs: &[FieldError]) {
        grid("pop3").show(ui, |ui| {
            check_row(
                ui,
                "Enable Service",
                help::ENABLE,
                &mut self.enabled,
                errs,
                "pop3.enabled",
            );
            let on = self.enabled;
            text_row(
                ui,
                "Port",
                help::PORT,
                &mut self.port,
                errs,
                "pop3.port",
                on,
            );
            text_row(
                ui,
                "Max Connections",
                help::MAX_CONNECTIONS,
                &mut self.max_connections,
                errs,
                "pop3.max_connections",
                on,
            );
            text_row(
                ui,
                "Idle Time-out",
                help::IDLE,
                &mut self.idle_timeout,
                errs,
                "pop3.idle_timeout",
                on,
            );
            text_row(
                ui,
                "Listen Only on IP",
                help::LISTEN_IP,
                &mut self.listen_ip,
                errs,
                "pop3.listen_ip",
                on,
            );
            check_row(
                ui,
                "Use Explicit SSL",
                help::EXPLICIT,
                &mut self.explicit_ssl,
                errs,
                "pop3.explicit_ssl",
            );
            check_row(
                ui,
                "Use Implicit SSL",
                help::IMPLICIT,
                &mut self.implicit_ssl,
                errs,
                "pop3.implicit_ssl",
            );
            text_row(
                ui,
                "SSL Port",
                help::SSL_PORT,
                &mut self.ssl_port,
                errs,
                "pop3.ssl_port",
                on && self.implicit_ssl,
            );
            let l = ui
                .label("Logins Without TLS")
                .on_hover_text(help::PLAINTEXT);
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("pop3_plaintext")
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
                    .on_hover_text(help::PLAINTEXT);
                if let Some(e) = error_for(errs, "pop3.plaintext_login") {
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
    fn draft_round_trips_the_config() {
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
    fn unparsable_fields_are_reported_by_path() {
        let mut d = Pop3Form::from_config(&Config::default());
        d.port = "pop".into();
        d.idle_timeout = "ten minutes".into();
        let paths: Vec<_> = d
            .write_into(&mut Config::default())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["pop3.port", "pop3.idle_timeout"]);
    }
}
