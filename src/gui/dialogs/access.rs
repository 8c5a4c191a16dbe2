//! The Access Control dialog (Ability Mail Server's "Outgoing SMTP Access Control", same
//! labels, the manual's explanations as hover text): who may relay through the outgoing SMTP.
//! A loud warning is shown whenever the draft makes an open relay. The "Allow Only The
//! Following" password is hashed (argon2) when applied; left empty, the stored one is kept.

use super::form::{Form, LABEL_WIDTH, ListEdit};
use super::{check_row, error_for, error_label};
use crate::engine::config::validate::open_relay_warning;
use crate::engine::config::{Config, FieldError};
use crate::engine::store::password;
use eframe::egui;

/// Hover texts: the manual's explanations, with Postern's name.
pub mod help {
    /// Enable SMTP Authentication.
    pub const SMTP_AUTH: &str = "This will ensure only connections which give the correct user name and password \
are allowed to send outgoing emails. If your SMTP In and Outgoing SMTP use the same port, then this information \
will be used to decide which connections are entitled to outgoing privileges.";
    /// Allow Any Accounts Login Details.
    pub const ANY_ACCOUNT: &str = "This allows the login details of any of the accounts hosted by Postern as the \
user name and password. Any of your users can use your Outgoing SMTP safely without leaving it open to \
unauthorized use.";
    /// Allow Only the Following.
    pub const ONLY: &str = "This will allow you to set and allow only a single user name and password for the \
Outgoing SMTP.";
    /// Enable IP Range Control.
    pub const IP_RANGE: &str = "This allows you to restrict connections to the outgoing SMTP to a selection of \
IPs. If your SMTP In and Outgoing SMTP use the same port, then this information will be used to decide which \
connections are entitled to outgoing privileges. If they use different ports, then connections to the Outgoing \
SMTP which do not fit into this range will instantly be disconnected.";
    /// An IP range.
    pub const RANGE: &str = "A single address (192.168.1.7), a CIDR block (192.168.1.0/24, fd00::/8) or a \
range (192.168.1.10-192.168.1.20).";
    /// Block IP Addresses Assigned to This Computer.
    pub const BLOCK_OWN: &str = "If enabled, any IP address assigned to the computer that is running the mail \
server will be blocked and disallowed access to the outgoing SMTP. This can be used for extra protection against \
IP spoofing (where a remote computer can fake its originating IP).";
    /// Safe IPs.
    pub const SAFE_IPS: &str = "This option allows you to always allow certain IPs access to the Outgoing SMTP. \
This is useful if you want to enable SMTP Authentication but also want to allow some computers access without \
these security requirements, e.g. PHP mailing scripts. Safe IPs ALWAYS overrule any restrictions, therefore be \
careful which IPs are placed in this list.";
    /// Allow IP Addresses Assigned to This Computer.
    pub const ALLOW_OWN: &str = "If enabled, any IP addresses assigned to the computer that is running the mail \
server will be classed as a safe IP and will always be allowed access to the Outgoing SMTP. Like other Safe IPs, \
this setting overrules any restrictions.";
    /// Sender Must Match Login.
    pub const SENDER_MATCH: &str =
        "A client that logged in may only use its own address as the sender (MAIL FROM).";
}

/// The Access Control draft.
pub struct AccessForm {
    /// The configuration it was made from (for the open-relay warning's other inputs).
    base: Config,
    smtp_auth: bool,
    allow_any_account: bool,
    only_user: String,
    /// A new password for "Allow Only the Following"; empty keeps the stored hash.
    only_password: String,
    /// Whether a password is stored already.
    has_password: bool,
    ip_range: bool,
    ranges: ListEdit,
    block_own_ips: bool,
    safe_ips: ListEdit,
    allow_own_ips: bool,
    sender_must_match_login: bool,
}

impl Form for AccessForm {
    const TITLE: &'static str = "Access Control";

    fn from_config(cfg: &Config) -> Self {
        let a = &cfg.access;
        AccessForm {
            base: cfg.clone(),
            smtp_auth: a.smtp_auth.enabled,
            allow_any_account: a.smtp_auth.allow_any_account,
            only_user: a.smtp_auth.only_user.clone(),
            only_password: String::new(),
            has_password: a.smtp_auth.only_password.starts_with("$argon2"),
            ip_range: a.ip_range.enabled,
            ranges: ListEdit::new(&a.ip_range.ranges),
            block_own_ips: a.block_own_ips,
            safe_ips: ListEdit::new(&a.safe_ips),
            allow_own_ips: a.allow_own_ips,
            sender_must_match_login: a.sender_must_match_login,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let a = &mut cfg.access;
        a.smtp_auth.enabled = self.smtp_auth;
        a.smtp_auth.allow_any_account = self.allow_any_account;
        a.smtp_auth.only_user = self.only_user.trim().to_string();
        if !self.only_password.is_empty() {
            a.smtp_auth.only_password = password::hash(&self.only_password);
        }
        a.ip_range.enabled = self.ip_range;
        a.ip_range.ranges = self.ranges.items.clone();
        a.block_own_ips = self.block_own_ips;
        a.safe_ips = self.safe_ips.items.clone();
        a.allow_own_ips = self.allow_own_ips;
        a.sender_must_match_login = self.sender_must_match_login;
        Vec::new()
    }

    fn shows_error(&self, path: &str) -> bool {
        path.starts_with("access.smtp_auth.")
            || ListEdit::owns(path, "access.ip_range.ranges")
            || ListEdit::owns(path, "access.safe_ips")
    }

    fn contents(&mut self, ui: &mut egui::Ui, errors: &[FieldError]) {
        let mut draft = self.base.clone();
        self.write_into_preview(&mut draft);
        if let Some(w) = open_relay_warning(&draft) {
            ui.label(
                egui::RichText::new(format!("WARNING: {w}."))
                    .color(ui.visuals().error_fg_color)
                    .strong(),
            );
            ui.add_space(4.0);
        } else if !draft.smtp.outgoing.enabled {
            ui.weak("The Outgoing SMTP is not enabled (SMTP Settings); these settings apply to relaying on the incoming port.");
            ui.add_space(4.0);
        }
        ui.checkbox(&mut self.smtp_auth, "Enable SMTP Authentication")
            .on_hover_text(help::SMTP_AUTH);
        ui.add_enabled_ui(self.smtp_auth, |ui| {
            ui.indent("auth", |ui| {
                ui.radio_value(&mut self.allow_any_account, true, "Allow Any Accounts Login Details")
                    .on_hover_text(help::ANY_ACCOUNT);
                ui.radio_value(&mut self.allow_any_account, false, "Allow Only the Following")
                    .on_hover_text(help::ONLY);
                let only = !self.allow_any_account;
                egui::Grid::new("only_user").num_columns(2).min_col_width(LABEL_WIDTH - 40.0).show(ui, |ui| {
                    let l = ui.add_enabled(only, egui::Label::new("Allowed User Name"));
                    ui.horizontal(|ui| {
                        ui.add_enabled(only, egui::TextEdit::singleline(&mut self.only_user).desired_width(160.0))
                            .labelled_by(l.id)
                            .on_hover_text(help::ONLY);
                        if let Some(e) = error_for(errors, "access.smtp_auth.only_user") {
                            error_label(ui, e);
                        }
                    });
                    ui.end_row();
                    let l = ui.add_enabled(only, egui::Label::new("Allowed Password"));
                    ui.horizontal(|ui| {
                        let hint = if self.has_password { "(unchanged)" } else { "" };
                        ui.add_enabled(
                            only,
                            egui::TextEdit::singleline(&mut self.only_password)
                                .password(true)
                                .hint_text(hint)
                                .desired_width(160.0),
                        )
                        .labelled_by(l.id)
                        .on_hover_text("Stored only as an argon2 hash; leave empty to keep the current password");
                        if let Some(e) = error_for(errors, "access.smtp_auth.only_password") {
                            error_label(ui, if self.has_password { e } else { "type a password" });
                        }
                    });
                    ui.end_row();
                });
            });
        });
        ui.add_space(6.0);
        ui.checkbox(&mut self.ip_range, "Enable IP Range Control")
            .on_hover_text(help::IP_RANGE);
        ui.indent("ranges", |ui| {
            self.ranges.ui(
                ui,
                "Range",
                help::RANGE,
                self.ip_range,
                errors,
                "access.ip_range.ranges",
            );
        });
        ui.add_space(6.0);
        egui::Grid::new("own_ips").num_columns(2).show(ui, |ui| {
            check_row(
                ui,
                "Block IP Addresses Assigned to This Computer",
                help::BLOCK_OWN,
                &mut self.block_own_ips,
                errors,
                "access.block_own_ips",
            );
        });
        ui.add_space(6.0);
        ui.label("Safe IPs").on_hover_text(help::SAFE_IPS);
        self.safe_ips.ui(
            ui,
            "Safe IP",
            help::SAFE_IPS,
            true,
            errors,
            "access.safe_ips",
        );
        egui::Grid::new("own_ips2").num_columns(2).show(ui, |ui| {
            check_row(
                ui,
                "Allow IP Addresses Assigned to This Computer",
                help::ALLOW_OWN,
                &mut self.allow_own_ips,
                errors,
                "access.allow_own_ips",
            );
            check_row(
                ui,
                "Sender Must Match Login",
                help::SENDER_MATCH,
                &mut self.sender_must_match_login,
                errors,
                "access.sender_must_match_login",
            );
        });
    }
}

impl AccessForm {
    /// The draft written into `cfg` without hashing the password (for the warning).
    fn write_into_preview(&self, cfg: &mut Config) {
        let a = &mut cfg.access;
        a.smtp_auth.enabled = self.smtp_auth;
        a.ip_range.enabled = self.ip_range;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_round_trips_and_keeps_the_password_hash() {
        let mut cfg = Config::default();
        cfg.access.smtp_auth.allow_any_account = false;
        cfg.access.smtp_auth.only_user = "relay".into();
        cfg.access.smtp_auth.only_password = password::hash("pw");
        cfg.access.ip_range.enabled = true;
        cfg.access.ip_range.ranges = vec!["10.0.0.0/8".into()];
        cfg.access.safe_ips = vec!["192.0.2.7".into()];
        let f = AccessForm::from_config(&cfg);
        let mut out = Config::default();
        assert!(f.write_into(&mut out).is_empty());
        // An empty password field keeps the stored hash: only the access section changes.
        out.access.smtp_auth.only_password = String::new();
        let mut want = cfg.access.clone();
        want.smtp_auth.only_password = String::new();
        assert_eq!(out.access, want);
    }

    #[test]
    fn a_typed_password_is_hashed() {
        let mut f = AccessForm::from_config(&Config::default());
        f.only_password = "secret".into();
        let mut out = Config::default();
        f.write_into(&mut out);
        assert!(password::verify(
            &out.access.smtp_auth.only_password,
            "secret"
        ));
    }
}
