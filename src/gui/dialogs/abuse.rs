//! The Abuse & Spam dialog (the security options of Ocean/Ability Mail Server's SMTP service):
//! connections per IP, failed-login lockout (anti-hammering), tarpitting after failed
//! recipients, transfer limits per IP, RBL lists with a trigger count, and the SPF and reverse
//! DNS checks. Safe IPs (Access Control) are exempt from all of it. Below the settings, the
//! blocks in force in the running server (Blocked Now), each with Unblock.

use super::form::{Form, LABEL_WIDTH, ListEdit, parse_duration, parse_num};
use super::smtp::{format_size, parse_size};
use super::{check_row, error_for, error_label, noted_row, text_row};
use crate::engine::access::abuse::{BlockInfo, time_left, wall_clock};
use crate::engine::config::{Action, Config, FieldError};
use crate::gui::services::Services;
use eframe::egui;
use std::time::Duration;

/// How often Blocked Now is read again while the dialog is open.
const REFRESH: Duration = Duration::from_secs(1);

/// The note beside a limit that 0 turns off.
const NO_LIMIT: &str = "0 = no limit";

/// Hover texts.
pub mod help {
    /// The dialog as a whole.
    pub const INTRO: &str = "Security options which reduce the chances of your SMTP being used by abusive users \
and SPAM systems: they detect common forms of abuse and block the abusive IPs found. Safe IPs are exempt.";
    /// Max connections per IP.
    pub const PER_IP: &str = "Simultaneous connections from one IP address (0 = no limit).";
    /// IPv6 prefix.
    pub const IPV6_PREFIX: &str = "IPv6 clients are counted per network of this many bits (64: a \
host's whole /64 counts as one client for every limit here).";
    /// Lockout.
    pub const LOCKOUT: &str = "Anti-hammering: an IP that fails to log in this many times within the window is \
blocked for a while.";
    /// Tarpit.
    pub const TARPIT: &str = "Tarpitting: after a number of refused recipients in one session every further reply \
is slowed down, and past a limit the IP is blocked for a while (0 = never block).";
    /// Transfer limits.
    pub const TRANSFER: &str =
        "Transfer limits per IP per hour: messages, and octets (e.g. 50M). 0 = no limit.";
    /// RBL.
    pub const RBL: &str = "Real-time Black List filter: checks that a connecting IP is not listed in DNS block \
lists. Use as many lists as you need; the action applies once the IP is listed in at least Trigger Count of \
them.";
    /// RBL zone.
    pub const ZONE: &str = "A DNS block list zone, e.g. zen.spamhaus.org.";
    /// Action.
    pub const ACTION: &str =
        "Refuse the mail, or accept it and mark it with an X-Postern-Warning header.";
    /// SPF.
    pub const SPF: &str =
        "Check the sender domain's SPF record (RFC 7208) against the connecting IP.";
    /// Reverse DNS.
    pub const RDNS: &str =
        "Check that the connecting IP has a reverse DNS name that resolves back to it.";
    /// DKIM verification.
    pub const DKIM_VERIFY: &str = "Verify the DKIM signatures of incoming mail; every incoming \
message gets an Authentication-Results header with the SPF, DKIM and DMARC results.";
    /// Blocked Now.
    pub const BLOCKED: &str = "Addresses blocked now by the failed-login lockout or by \
tarpitting, until their block ends. Blocks live in the running server's memory (a restart lifts \
them). Times are UTC, as in the log files.";
    /// The Unblock button.
    pub const UNBLOCK: &str = "Lift this block now and forget the address's failed logins and \
failed recipients, so it can log in again at once.";
    /// DMARC.
    pub const DMARC: &str = "Check incoming mail against the DMARC policy of its From: domain \
(SPF or DKIM must pass for that domain). A failing message whose domain asks for quarantine or \
rejection is refused, or accepted and marked.";
}

/// The Abuse & Spam draft.
pub struct AbuseForm {
    per_ip: String,
    ipv6_prefix: String,
    lockout: bool,
    lockout_failures: String,
    lockout_window: String,
    lockout_for: String,
    tarpit: bool,
    tarpit_after: String,
    tarpit_delay: String,
    tarpit_block_after: String,
    tarpit_for: String,
    max_messages: String,
    max_bytes: String,
    rbl: bool,
    zones: ListEdit,
    trigger: String,
    rbl_action: Action,
    spf: bool,
    spf_action: Action,
    rdns: bool,
    rdns_action: Action,
    dkim_verify: bool,
    dmarc: bool,
    dmarc_action: Action,
    /// What the last Unblock did, for the result line.
    notice: Option<String>,
}

/// A labelled Refuse / Accept-and-tag choice.
fn action_combo(ui: &mut egui::Ui, id: &str, label: &str, value: &mut Action, enabled: bool) {
    let name = |a: Action| match a {
        Action::Refuse => "Refuse",
        Action::Tag => "Accept and Tag",
    };
    ui.add_enabled_ui(enabled, |ui| {
        ui.horizontal(|ui| {
            let l = ui.label(label);
            egui::ComboBox::from_id_salt(id)
                .selected_text(name(*value))
                .show_ui(ui, |ui| {
                    for a in [Action::Refuse, Action::Tag] {
                        ui.selectable_value(value, a, name(a));
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text(help::ACTION);
        });
    });
}

impl Form for AbuseForm {
    const TITLE: &'static str = "Abuse & Spam";

    fn from_config(cfg: &Config) -> Self {
        let a = &cfg.abuse;
        AbuseForm {
            per_ip: a.max_connections_per_ip.to_string(),
            ipv6_prefix: a.ipv6_prefix.to_string(),
            lockout: a.lockout.enabled,
            lockout_failures: a.lockout.failures.to_string(),
            lockout_window: a.lockout.window.to_string(),
            lockout_for: a.lockout.block_for.to_string(),
            tarpit: a.tarpit.enabled,
            tarpit_after: a.tarpit.after_failures.to_string(),
            tarpit_delay: a.tarpit.delay.to_string(),
            tarpit_block_after: a.tarpit.block_after.to_string(),
            tarpit_for: a.tarpit.block_for.to_string(),
            max_messages: a.transfer.max_messages_per_hour.to_string(),
            max_bytes: format_size(a.transfer.max_bytes_per_hour),
            rbl: a.rbl.enabled,
            zones: ListEdit::new(&a.rbl.zones),
            trigger: a.rbl.trigger.to_string(),
            rbl_action: a.rbl.action,
            spf: a.spf.enabled,
            spf_action: a.spf.action,
            rdns: a.rdns.enabled,
            rdns_action: a.rdns.action,
            dkim_verify: cfg.auth.dkim.verify,
            dmarc: cfg.auth.dmarc.enabled,
            dmarc_action: cfg.auth.dmarc.action,
            notice: None,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let mut e = Vec::new();
        let a = &mut cfg.abuse;
        let count = "a whole number";
        if let Some(n) = parse_num(&self.per_ip, "abuse.max_connections_per_ip", count, &mut e) {
            a.max_connections_per_ip = n;
        }
        if let Some(n) = parse_num(&self.ipv6_prefix, "abuse.ipv6_prefix", count, &mut e) {
            a.ipv6_prefix = n;
        }
        a.lockout.enabled = self.lockout;
        if let Some(n) = parse_num(
            &self.lockout_failures,
            "abuse.lockout.failures",
            count,
            &mut e,
        ) {
            a.lockout.failures = n;
        }
        if let Some(d) = parse_duration(&self.lockout_window, "abuse.lockout.window", &mut e) {
            a.lockout.window = d;
        }
        if let Some(d) = parse_duration(&self.lockout_for, "abuse.lockout.block_for", &mut e) {
            a.lockout.block_for = d;
        }
        a.tarpit.enabled = self.tarpit;
        if let Some(n) = parse_num(
            &self.tarpit_after,
            "abuse.tarpit.after_failures",
            count,
            &mut e,
        ) {
            a.tarpit.after_failures = n;
        }
        if let Some(d) = parse_duration(&self.tarpit_delay, "abuse.tarpit.delay", &mut e) {
            a.tarpit.delay = d;
        }
        if let Some(n) = parse_num(
            &self.tarpit_block_after,
            "abuse.tarpit.block_after",
            count,
            &mut e,
        ) {
            a.tarpit.block_after = n;
        }
        if let Some(d) = parse_duration(&self.tarpit_for, "abuse.tarpit.block_for", &mut e) {
            a.tarpit.block_for = d;
        }
        if let Some(n) = parse_num(
            &self.max_messages,
            "abuse.transfer.max_messages_per_hour",
            count,
            &mut e,
        ) {
            a.transfer.max_messages_per_hour = n;
        }
        match parse_size(&self.max_bytes) {
            Ok(n) => a.transfer.max_bytes_per_hour = n,
            Err(message) => e.push(FieldError {
                path: "abuse.transfer.max_bytes_per_hour".into(),
                message,
            }),
        }
        a.rbl.enabled = self.rbl;
        a.rbl.zones = self.zones.items.clone();
        if let Some(n) = parse_num(&self.trigger, "abuse.rbl.trigger", count, &mut e) {
            a.rbl.trigger = n;
        }
        a.rbl.action = self.rbl_action;
        a.spf.enabled = self.spf;
        a.spf.action = self.spf_action;
        a.rdns.enabled = self.rdns;
        a.rdns.action = self.rdns_action;
        cfg.auth.dkim.verify = self.dkim_verify;
        cfg.auth.dmarc.enabled = self.dmarc;
        cfg.auth.dmarc.action = self.dmarc_action;
        e
    }

    fn shows_error(&self, path: &str) -> bool {
        path.starts_with("abuse.") || path == "auth.dmarc.enabled"
    }

    fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    fn live(&mut self, ui: &mut egui::Ui, services: &Services) {
        ui.add_space(6.0);
        ui.heading("Blocked Now").on_hover_text(help::BLOCKED);
        ui.ctx().request_repaint_after(REFRESH);
        let Some(blocks) = services.blocks() else {
            ui.label(
                "The mail server is not running: blocks live in its memory, so none are in force.",
            );
            return;
        };
        if blocks.is_empty() {
            ui.label(
                "No address is blocked now. An address locked out after failed logins, or \
                 blocked after too many failed recipients, appears here with Unblock.",
            );
            return;
        }
        if let Some(ip) = blocked_table(ui, &blocks) {
            self.notice = Some(match services.unblock(ip.ip) {
                Some(b) => format!("{} unblocked: it may log in again at once.", b.client()),
                None => format!("{} was no longer blocked.", ip.client()),
            });
        }
    }

    fn contents(&mut self, ui: &mut egui::Ui, errors: &[FieldError]) {
        ui.label(help::INTRO);
        ui.add_space(4.0);
        egui::Grid::new("abuse_grid")
            .num_columns(2)
            .min_col_width(LABEL_WIDTH + 40.0)
            .show(ui, |ui| {
                noted_row(
                    ui,
                    "Max Connections Per IP",
                    help::PER_IP,
                    &mut self.per_ip,
                    errors,
                    "abuse.max_connections_per_ip",
                    true,
                    Some(NO_LIMIT),
                );
                text_row(
                    ui,
                    "IPv6 Network Prefix",
                    help::IPV6_PREFIX,
                    &mut self.ipv6_prefix,
                    errors,
                    "abuse.ipv6_prefix",
                    true,
                );

                check_row(
                    ui,
                    "Enable Failed-Login Lockout",
                    help::LOCKOUT,
                    &mut self.lockout,
                    errors,
                    "abuse.lockout.enabled",
                );
                let on = self.lockout;
                text_row(
                    ui,
                    "Failed Logins Before Lockout",
                    help::LOCKOUT,
                    &mut self.lockout_failures,
                    errors,
                    "abuse.lockout.failures",
                    on,
                );
                text_row(
                    ui,
                    "Lockout Window",
                    help::LOCKOUT,
                    &mut self.lockout_window,
                    errors,
                    "abuse.lockout.window",
                    on,
                );
                text_row(
                    ui,
                    "Lockout Duration",
                    help::LOCKOUT,
                    &mut self.lockout_for,
                    errors,
                    "abuse.lockout.block_for",
                    on,
                );

                check_row(
                    ui,
                    "Enable Tarpitting",
                    help::TARPIT,
                    &mut self.tarpit,
                    errors,
                    "abuse.tarpit.enabled",
                );
                let on = self.tarpit;
                text_row(
                    ui,
                    "Failed Recipients Before Slowing",
                    help::TARPIT,
                    &mut self.tarpit_after,
                    errors,
                    "abuse.tarpit.after_failures",
                    on,
                );
                text_row(
                    ui,
                    "Delay Per Failed Recipient",
                    help::TARPIT,
                    &mut self.tarpit_delay,
                    errors,
                    "abuse.tarpit.delay",
                    on,
                );
                noted_row(
                    ui,
                    "Block After Failed Recipients",
                    help::TARPIT,
                    &mut self.tarpit_block_after,
                    errors,
                    "abuse.tarpit.block_after",
                    on,
                    Some("0 = never block"),
                );
                text_row(
                    ui,
                    "Tarpit Block Duration",
                    help::TARPIT,
                    &mut self.tarpit_for,
                    errors,
                    "abuse.tarpit.block_for",
                    on,
                );

                noted_row(
                    ui,
                    "Max Messages Per IP Per Hour",
                    help::TRANSFER,
                    &mut self.max_messages,
                    errors,
                    "abuse.transfer.max_messages_per_hour",
                    true,
                    Some(NO_LIMIT),
                );
                noted_row(
                    ui,
                    "Max Octets Per IP Per Hour",
                    help::TRANSFER,
                    &mut self.max_bytes,
                    errors,
                    "abuse.transfer.max_bytes_per_hour",
                    true,
                    Some(NO_LIMIT),
                );
            });
        ui.add_space(6.0);
        ui.heading("Spam Detection");
        ui.checkbox(&mut self.rbl, "Enable RBL Lists")
            .on_hover_text(help::RBL);
        let on = self.rbl;
        ui.indent("rbl", |ui| {
            self.zones
                .ui(ui, "RBL Zone", help::ZONE, on, errors, "abuse.rbl.zones");
            egui::Grid::new("rbl_grid")
                .num_columns(2)
                .min_col_width(LABEL_WIDTH)
                .show(ui, |ui| {
                    text_row(
                        ui,
                        "Trigger Count",
                        help::RBL,
                        &mut self.trigger,
                        errors,
                        "abuse.rbl.trigger",
                        on,
                    );
                    ui.label("");
                    action_combo(ui, "rbl_action", "RBL Action", &mut self.rbl_action, on);
                    ui.end_row();
                });
        });
        egui::Grid::new("checks_grid")
            .num_columns(2)
            .min_col_width(LABEL_WIDTH)
            .show(ui, |ui| {
                ui.checkbox(&mut self.spf, "Enable SPF Check")
                    .on_hover_text(help::SPF);
                action_combo(
                    ui,
                    "spf_action",
                    "SPF Action",
                    &mut self.spf_action,
                    self.spf,
                );
                ui.end_row();
                ui.checkbox(&mut self.rdns, "Enable Reverse DNS Check")
                    .on_hover_text(help::RDNS);
                action_combo(
                    ui,
                    "rdns_action",
                    "Reverse DNS Action",
                    &mut self.rdns_action,
                    self.rdns,
                );
                ui.end_row();
                ui.checkbox(&mut self.dkim_verify, "Verify DKIM Signatures")
                    .on_hover_text(help::DKIM_VERIFY);
                ui.label("");
                ui.end_row();
                ui.checkbox(&mut self.dmarc, "Enable DMARC Check")
                    .on_hover_text(help::DMARC);
                action_combo(
                    ui,
                    "dmarc_action",
                    "DMARC Action",
                    &mut self.dmarc_action,
                    self.dmarc,
                );
                ui.end_row();
            });
        for p in [
            "abuse.spf.enabled",
            "abuse.rdns.enabled",
            "auth.dmarc.enabled",
        ] {
            if let Some(e) = error_for(errors, p) {
                error_label(ui, e);
            }
        }
    }
}

/// The blocks as a table, an Unblock button on each row; returns the row whose Unblock was
/// pressed.
fn blocked_table<'a>(ui: &mut egui::Ui, blocks: &'a [BlockInfo]) -> Option<&'a BlockInfo> {
    let now = crate::engine::queue::now_secs();
    let mut pressed = None;
    egui::Grid::new("blocked_grid")
        .num_columns(5)
        .striped(true)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for h in ["IP", "Reason", "Since (UTC)", "Until (UTC)", ""] {
                ui.strong(h);
            }
            ui.end_row();
            for b in blocks {
                ui.label(b.client());
                ui.label(&b.reason);
                ui.label(wall_clock(b.since));
                ui.label(format!(
                    "{} ({} left)",
                    wall_clock(b.until),
                    time_left(b.until.saturating_sub(now))
                ));
                if ui.button("Unblock").on_hover_text(help::UNBLOCK).clicked() {
                    pressed = Some(b);
                }
                ui.end_row();
            }
        });
    pressed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_round_trips_the_section() {
        let mut cfg = Config::default();
        cfg.abuse.rbl.enabled = true;
        cfg.abuse.rbl.zones = vec!["bl.example.test".into()];
        cfg.abuse.rbl.trigger = 2;
        cfg.abuse.spf.enabled = true;
        cfg.abuse.spf.action = Action::Refuse;
        cfg.abuse.transfer.max_bytes_per_hour = 50 * 1024 * 1024;
        cfg.abuse.lockout.failures = 3;
        cfg.auth.dmarc.action = Action::Refuse;
        cfg.auth.dkim.verify = false;
        cfg.auth.dmarc.enabled = false;
        let f = AbuseForm::from_config(&cfg);
        let mut out = Config::default();
        assert!(f.write_into(&mut out).is_empty());
        assert_eq!(out.abuse, cfg.abuse);
        assert_eq!(out.auth, cfg.auth);
    }
}
