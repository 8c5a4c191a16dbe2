//! The SMTP Settings dialog (Ability Mail Server's "SMTP Settings", same labels, the manual's
//! explanations as hover text) plus the limits, timeouts and TLS settings of `smtp.*`.
//! Every field is edited as text so a value that does not parse can be shown beside its field.
//! The Access Control button asks the app to open that dialog. A [`Form`] in a `FormDialog`.

use super::form::{Form, PORT, grid, parse_duration, parse_num};
use super::{check_row, text_row};
use crate::engine::config::{Config, FieldError};
use eframe::egui;

/// Hover texts: the manual's explanations, with Postern's name.
pub mod help {
    /// Incoming SMTP Port.
    pub const INCOMING_PORT: &str = "This controls the port for which incoming mail connections will be accepted. \
It is strongly recommended you do not change this value: the SMTP standard specifies that all SMTP servers \
must use port 25, and changing it may prevent you from receiving incoming mail off the Internet. If you are \
using ICS, a router or a firewall, make sure the port forwarding listens on port 25 and forwards to the port \
given here.";
    /// Listen Only on IP (both services).
    pub const LISTEN_IP: &str = "This allows you to bind the listening port to a single IP address. If a host \
name is provided then it will be converted to an IP address which will then be used for binding. Leave it \
empty to listen on every address.";
    /// Enable Outgoing SMTP.
    pub const OUTGOING_ENABLE: &str = "If you want to use Postern to handle your outgoing mail, then you must \
enable this option. You must also ensure the outgoing mail service is set up correctly and has been enabled, \
as all outgoing mails will be routed through that service for delivery across the Internet.";
    /// Outgoing SMTP Port.
    pub const OUTGOING_PORT: &str = "This controls the port for which outgoing mail connections will be \
accepted. It is possible for both Incoming and Outgoing ports to be the same or different. However, for \
security reasons we strongly recommend you select a non-standard port (e.g. 2525). When configuring your mail \
client, you must set the port value used for the outgoing SMTP to match the port value specified here. If an \
email is received on this port which is destined for an account hosted by Postern, then it will be delivered \
directly without ever passing through the outgoing mail service.";
    /// Access Control.
    pub const ACCESS_CONTROL: &str = "If you enabled the SMTP In and Outgoing SMTP, then you should set up your \
Outgoing SMTP security options. These controls allow you to restrict what computers can use your Outgoing SMTP \
and so protect yourself against unauthorized use.";
    /// Max Connections Per Port.
    pub const MAX_CONNECTIONS: &str = "This controls the maximum simultaneous connections per port. One more \
connection is answered \"421 too many connections\" and closed.";
    /// Max Recipients Per Mail.
    pub const MAX_RECIPIENTS: &str = "This is the maximum number of recipients that are allowed to be sent \
during an SMTP mail transaction. Increase this value if you need to send an email to a large number of email \
addresses. (RFC 5321 asks for at least 100.)";
    /// Max Message Size.
    pub const MAX_SIZE: &str = "The largest message accepted, advertised with the SIZE extension. Write a number \
of octets, or with a suffix: 500K, 25M, 1G.";
    /// Max Errors Per Session.
    pub const MAX_ERRORS: &str = "Failed commands after which a session is closed with 421.";
    /// Server Host Name.
    pub const HOSTNAME: &str = "The name this server uses in its greeting, in EHLO, in Received: headers and in \
its self-signed certificate.";
    /// Command Timeout.
    pub const COMMAND_TIMEOUT: &str = "How long to wait for the client's next command before closing the \
session (RFC 5321: at least 5 minutes). Write e.g. 30s, 5m, 1h.";
    /// Data Timeout.
    pub const DATA_TIMEOUT: &str = "How long to wait for the next block of message data (RFC 5321: 3 minutes). \
Write e.g. 30s, 3m.";
    /// TLS Certificate File.
    pub const TLS_CERT: &str = "PEM certificate chain for STARTTLS and the implicit-TLS port. Leave both the \
certificate and the key empty to use a self-signed certificate kept in the data directory.";
    /// TLS Private Key File.
    pub const TLS_KEY: &str =
        "PEM private key of the certificate (empty together with the certificate).";
    /// Implicit TLS Port.
    pub const IMPLICIT_PORT: &str = "A port where TLS starts at once, before any SMTP (port 465 style). Leave it \
empty to turn it off.";
    /// Max Junk Commands.
    pub const MAX_JUNK: &str = "Commands that make no progress (NOOP, RSET, VRFY, HELP, a repeated \
EHLO) a client may send between two messages before it is disconnected: no client can fill the log \
with them.";
    /// Min Free Disk Space.
    pub const MIN_FREE: &str = "Free space kept in reserve on the data directory's disk (e.g. 100M). \
Below it, or below one and a half times the Max Message Size, new mail is turned away with a \
temporary error before it is sent, never accepted and then lost.";
    /// AUTH Requires TLS.
    pub const AUTH_TLS: &str = "Refuse SMTP AUTH (and do not advertise it) on a connection that is not \
encrypted, so passwords never cross the network in clear.";
}

/// The dialog's draft: the settings as text, as the user edits them.
pub struct SmtpForm {
    incoming_port: String,
    incoming_ip: String,
    outgoing_enabled: bool,
    outgoing_port: String,
    outgoing_ip: String,
    max_connections: String,
    max_recipients: String,
    max_size: String,
    max_errors: String,
    max_junk: String,
    min_free: String,
    hostname: String,
    command_timeout: String,
    data_timeout: String,
    tls_cert: String,
    tls_key: String,
    implicit_port: String,
    auth_requires_tls: bool,
    /// The Access Control button was pressed (the app opens that dialog).
    pub wants_access_control: bool,
}

pub use crate::engine::config::size::{format_size, parse_size};

/// Errors shown beside a field of the dialog; others are listed at the bottom.
const SHOWN: [&str; 18] = [
    "smtp.incoming.port",
    "smtp.incoming.listen_ip",
    "smtp.outgoing.enabled",
    "smtp.outgoing.port",
    "smtp.outgoing.listen_ip",
    "smtp.max_connections_per_port",
    "smtp.max_recipients_per_mail",
    "smtp.max_message_size",
    "smtp.max_errors_per_session",
    "smtp.max_junk_commands",
    "smtp.min_free_space",
    "smtp.timeouts.command",
    "smtp.timeouts.data",
    "server.hostname",
    "smtp.tls.certificate",
    "smtp.tls.key",
    "smtp.tls.implicit_port",
    "smtp.tls.auth_requires_tls",
];

impl Form for SmtpForm {
    const TITLE: &'static str = "SMTP Settings";

    fn window(window: egui::Window<'_>) -> egui::Window<'_> {
        window.default_pos([60.0, 60.0])
    }

    fn from_config(cfg: &Config) -> Self {
        let s = &cfg.smtp;
        SmtpForm {
            incoming_port: s.incoming.port.to_string(),
            incoming_ip: s.incoming.listen_ip.clone(),
            outgoing_enabled: s.outgoing.enabled,
            outgoing_port: s.outgoing.port.to_string(),
            outgoing_ip: s.outgoing.listen_ip.clone(),
            max_connections: s.max_connections_per_port.to_string(),
            max_recipients: s.max_recipients_per_mail.to_string(),
            max_size: format_size(s.max_message_size),
            max_errors: s.max_errors_per_session.to_string(),
            max_junk: s.max_junk_commands.to_string(),
            min_free: format_size(s.min_free_space),
            hostname: cfg.server.hostname.clone(),
            command_timeout: s.timeouts.command.to_string(),
            data_timeout: s.timeouts.data.to_string(),
            tls_cert: s.tls.certificate.clone(),
            tls_key: s.tls.key.clone(),
            implicit_port: s
                .tls
                .implicit_port
                .map(|p| p.to_string())
                .unwrap_or_default(),
            auth_requires_tls: s.tls.auth_requires_tls,
            wants_access_control: false,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let mut e = Vec::new();
        let s = &mut cfg.smtp;
        if let Some(p) = parse_num(&self.incoming_port, "smtp.incoming.port", PORT, &mut e) {
            s.incoming.port = p;
        }
        s.incoming.listen_ip = self.incoming_ip.trim().to_string();
        s.outgoing.enabled = self.outgoing_enabled;
        if let Some(p) = parse_num(&self.outgoing_port, "smtp.outgoing.port", PORT, &mut e) {
            s.outgoing.port = p;
        }
        s.outgoing.listen_ip = self.outgoing_ip.trim().to_string();
        let count = "a whole number";
        if let Some(n) = parse_num(
            &self.max_connections,
            "smtp.max_connections_per_port",
            count,
            &mut e,
        ) {
            s.max_connections_per_port = n;
        }
        if let Some(n) = parse_num(
            &self.max_recipients,
            "smtp.max_recipients_per_mail",
            count,
            &mut e,
        ) {
            s.max_recipients_per_mail = n;
        }
        match parse_size(&self.max_size) {
            Ok(n) => s.max_message_size = n,
            Err(message) => e.push(FieldError {
                path: "smtp.max_message_size".into(),
                message,
            }),
        }
        if let Some(n) = parse_num(
            &self.max_errors,
            "smtp.max_errors_per_session",
            count,
            &mut e,
        ) {
            s.max_errors_per_session = n;
        }
        if let Some(n) = parse_num(&self.max_junk, "smtp.max_junk_commands", count, &mut e) {
            s.max_junk_commands = n;
        }
        match parse_size(&self.min_free) {
            Ok(n) => s.min_free_space = n,
            Err(message) => e.push(FieldError {
                path: "smtp.min_free_space".into(),
                message,
            }),
        }
        if let Some(d) = parse_duration(&self.command_timeout, "smtp.timeouts.command", &mut e) {
            s.timeouts.command = d;
        }
        if let Some(d) = parse_duration(&self.data_timeout, "smtp.timeouts.data", &mut e) {
            s.timeouts.data = d;
        }
        s.tls.certificate = self.tls_cert.trim().to_string();
        s.tls.key = self.tls_key.trim().to_string();
        s.tls.implicit_port = if self.implicit_port.trim().is_empty() {
            None
        } else {
            parse_num(
                &self.implicit_port,
                "smtp.tls.implicit_port",
                "a port number (or empty for off)",
                &mut e,
            )
        };
        s.tls.auth_requires_tls = self.auth_requires_tls;
        cfg.server.hostname = self.hostname.trim().to_string();
        e
    }

    fn shows_error(&self, path: &str) -> bool {
        SHOWN.contains(&path)
    }

    fn contents(&mut self, ui: &mut egui::Ui, errs: &[FieldError]) {
        ui.heading("Server");
        grid("smtp_server").show(ui, |ui| {
            text_row(
                ui,
                "Server Host Name",
                help::HOSTNAME,
                &mut self.hostname,
                errs,
                "server.hostname",
                true,
            );
        });
        ui.add_space(6.0);
        ui.heading("Incoming SMTP");
        grid("smtp_in").show(ui, |ui| {
            text_row(
                ui,
                "Incoming SMTP Port",
                help::INCOMING_PORT,
                &mut self.incoming_port,
                errs,
                "smtp.incoming.port",
                true,
            );
            text_row(
                ui,
                "Incoming SMTP Listen Only on IP",
                help::LISTEN_IP,
                &mut self.incoming_ip,
                errs,
                "smtp.incoming.listen_ip",
                true,
            );
        });
        ui.add_space(6.0);
        ui.heading("Outgoing SMTP");
        grid("smtp_out").show(ui, |ui| {
            check_row(
                ui,
                "Enable Outgoing SMTP",
                help::OUTGOING_ENABLE,
                &mut self.outgoing_enabled,
                errs,
                "smtp.outgoing.enabled",
            );
            let on = self.outgoing_enabled;
            text_row(
                ui,
                "Outgoing SMTP Port",
                help::OUTGOING_PORT,
                &mut self.outgoing_port,
                errs,
                "smtp.outgoing.port",
                on,
            );
            text_row(
                ui,
                "Outgoing SMTP Listen Only on IP",
                help::LISTEN_IP,
                &mut self.outgoing_ip,
                errs,
                "smtp.outgoing.listen_ip",
                on,
            );
            ui.label("");
            if ui
                .button("Access Control...")
                .on_hover_text(help::ACCESS_CONTROL)
                .clicked()
            {
                self.wants_access_control = true;
            }
            ui.end_row();
        });
        ui.add_space(6.0);
        ui.heading("Limits");
        grid("smtp_limits").show(ui, |ui| {
            text_row(
                ui,
                "Max Connections Per Port",
                help::MAX_CONNECTIONS,
                &mut self.max_connections,
                errs,
                "smtp.max_connections_per_port",
                true,
            );
            text_row(
                ui,
                "Max Recipients Per Mail",
                help::MAX_RECIPIENTS,
                &mut self.max_recipients,
                errs,
                "smtp.max_recipients_per_mail",
                true,
            );
            text_row(
                ui,
                "Max Message Size",
                help::MAX_SIZE,
                &mut self.max_size,
                errs,
                "smtp.max_message_size",
                true,
            );
            text_row(
                ui,
                "Max Errors Per Session",
                help::MAX_ERRORS,
                &mut self.max_errors,
                errs,
                "smtp.max_errors_per_session",
                true,
            );
            text_row(
                ui,
                "Max Junk Commands",
                help::MAX_JUNK,
                &mut self.max_junk,
                errs,
                "smtp.max_junk_commands",
                true,
            );
            text_row(
                ui,
                "Min Free Disk Space",
                help::MIN_FREE,
                &mut self.min_free,
                errs,
                "smtp.min_free_space",
                true,
            );
            text_row(
                ui,
                "Command Timeout",
                help::COMMAND_TIMEOUT,
                &mut self.command_timeout,
                errs,
                "smtp.timeouts.command",
                true,
            );
            text_row(
                ui,
                "Data Timeout",
                help::DATA_TIMEOUT,
                &mut self.data_timeout,
                errs,
                "smtp.timeouts.data",
                true,
            );
        });
        ui.add_space(6.0);
        ui.heading("TLS");
        grid("smtp_tls").show(ui, |ui| {
            text_row(
                ui,
                "TLS Certificate File",
                help::TLS_CERT,
                &mut self.tls_cert,
                errs,
                "smtp.tls.certificate",
                true,
            );
            text_row(
                ui,
                "TLS Private Key File",
                help::TLS_KEY,
                &mut self.tls_key,
                errs,
                "smtp.tls.key",
                true,
            );
            text_row(
                ui,
                "Implicit TLS Port",
                help::IMPLICIT_PORT,
                &mut self.implicit_port,
                errs,
                "smtp.tls.implicit_port",
                true,
            );
            check_row(
                ui,
                "AUTH Requires TLS",
                help::AUTH_TLS,
                &mut self.auth_requires_tls,
                errs,
                "smtp.tls.auth_requires_tls",
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        for n in [25 * 1024 * 1024, 1024, 1000, 3 * 1024 * 1024 * 1024, 1536] {
            assert_eq!(parse_size(&format_size(n)).unwrap(), n);
        }
        assert_eq!(format_size(25 * 1024 * 1024), "25M");
        assert_eq!(parse_size(" 500k ").unwrap(), 500 * 1024);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn draft_round_trips_the_config() {
        let mut cfg = Config::default();
        cfg.smtp.tls.implicit_port = Some(4650);
        cfg.smtp.outgoing.enabled = true;
        let d = SmtpForm::from_config(&cfg);
        let mut out = Config::default();
        assert!(d.write_into(&mut out).is_empty());
        assert_eq!(out, cfg);
    }

    #[test]
    fn unparsable_fields_are_reported_by_path() {
        let mut d = SmtpForm::from_config(&Config::default());
        d.incoming_port = "twenty-five".into();
        d.command_timeout = "5 minutes".into();
        d.implicit_port = "99999".into();
        let paths: Vec<_> = d
            .write_into(&mut Config::default())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "smtp.incoming.port",
                "smtp.timeouts.command",
                "smtp.tls.implicit_port"
            ]
        );
    }
}
