//! The Outgoing Mails dialog (Ability Mail Server's "Outgoing Mails"): re-send options, the
//! delivery mode (Independent with DNS hosts, or Relay through another SMTP with login and TLS),
//! Domain Mapping "Via SMTP", More Detailed Logging and the outbound connection limits. The
//! tutorial's explanations are the hover texts.

use super::form::{Form, LABEL_WIDTH, ListEdit, PORT, parse_duration, parse_num};
use super::{check_row, error_for, error_label, text_row};
use crate::engine::config::schedule;
use crate::engine::config::{Config, DeliveryMode, DomainMap, FieldError, OutboundTls, RelayTls};
use crate::engine::dns::{MxAnswer, Resolver};
use eframe::egui;
use std::sync::mpsc;

/// Hover texts, from the Outgoing Mails tutorial.
pub mod help {
    /// Re-send attempts.
    pub const ATTEMPTS: &str = "When an outbound mail fails to be delivered, it is placed back into the mail \
queue where it waits before another attempt is made. This is the number of re-send attempts an outbound mail is \
given; when they are used up the mail is dropped and a failure notice goes to the sender. Default: 5. \
0: no limit by attempts (then Give Up After must be set).";
    /// Back-off.
    pub const BACKOFF: &str = "Wait twice as long after each failed attempt as after the one before (from the \
re-send delay, up to 4 hours), as Postfix does: quick retries for a short outage, few for a long one.";
    /// Give up after.
    pub const GIVE_UP: &str = "Return a mail to its sender once it has waited this long (e.g. 5d), whatever \
attempts are left. Empty: by attempts only. RFC 5321 suggests trying for 4-5 days.";
    /// Like Postfix.
    pub const POSTFIX_LIKE: &str = "Try for 5 days, waiting 5 minutes at first and twice as long after each \
attempt, up to 4 hours: what Postfix and most mail servers do.";
    /// Re-send delay.
    pub const DELAY: &str =
        "The period of time to wait between re-send attempts (e.g. 5m). Default: 5 minutes.";
    /// Delay warning.
    pub const WARNING: &str =
        "Tell the sender once a mail has waited this long (e.g. 4h). Empty: never.";
    /// Independent Mode.
    pub const INDEPENDENT: &str = "The mail server handles the delivery of all outbound mails: an MX lookup, then \
an SMTP connection straight to the destination mail server. This mode also obeys the Domain Mapping rule \
'Via SMTP'. It needs at least one DNS; with none given, the computer's own DNS settings are used.";
    /// DNS hosts.
    pub const DNS: &str = "DNS servers for MX lookups, as ip or ip:port. Leave the list empty to detect them \
from this computer's settings, which in most cases is fine.";
    /// Relay Mode.
    pub const RELAY: &str = "Send all outbound mails onto another SMTP: a company SMTP, an ISP's SMTP, or when \
there is no DNS. The Domain Mapping rule 'Via SMTP' has no effect in Relay Mode.";
    /// Relay login.
    pub const RELAY_LOGIN: &str = "User name and password for the relay host's SMTP AUTH (empty user: no login). \
The password is sent to the relay, so it is kept as typed in the configuration file.";
    /// Verify the relay's certificate.
    pub const VERIFY: &str = "Check the relay host's certificate (its name and chain) before the login and the \
mail are sent. Turn off only for a relay you trust on a network you trust.";
    /// CA file.
    pub const CA_FILE: &str = "Extra trusted certificates (a PEM file), e.g. the relay's self-signed one. Empty: \
the system's trust store only.";
    /// Domain mapping.
    pub const MAPPING: &str = "Domain Mapping 'Via SMTP': static routes. Mail for the domain goes to this host \
instead of its MX. Obeyed in Independent Mode, ignored in Relay Mode.";
    /// Detailed logging.
    pub const DETAILED: &str = "By default only basic information is logged: MX lookups, successful mail \
transactions and failures. More Detailed Logging also records every SMTP connection attempt, the SMTP commands \
sent and received, and more DNS activity.";
    /// Outbound TLS.
    pub const OUTBOUND_TLS: &str = "STARTTLS towards MX hosts: None, Opportunistic (when offered, certificates \
not verified) or Required (refuse to deliver without it).";
    /// Connections.
    pub const CONNECTIONS: &str =
        "Outbound SMTP connections at once, overall and towards one destination.";
    /// Connection cache time.
    pub const KEEP_OPEN: &str = "After a delivery the connection stays open this long for the next mail \
to the same server (0s: close at once). Saves a new connection, TLS handshake and login per mail when much \
mail goes to one place.";
    /// MX port.
    pub const MX_PORT: &str = "The port MX hosts are contacted on: 25, except in test labs.";
}

/// The Outgoing Mails draft.
pub struct OutgoingForm {
    attempts: String,
    delay: String,
    backoff: bool,
    give_up: String,
    warning: String,
    mode: DeliveryMode,
    dns_hosts: ListEdit,
    outbound_tls: OutboundTls,
    mx_port: String,
    relay_host: String,
    relay_port: String,
    relay_user: String,
    relay_password: String,
    relay_tls: RelayTls,
    relay_verify: bool,
    relay_ca_file: String,
    maps: Vec<DomainMap>,
    selected_map: Option<usize>,
    map_domain: String,
    map_host: String,
    map_port: String,
    detailed: bool,
    max_connections: String,
    max_per_domain: String,
    keep_open: String,
    /// Runs "Test DNS" lookups (set by the app; without it the button is off).
    pub rt: Option<tokio::runtime::Handle>,
    /// The domain "Test DNS" asks about.
    test_domain: String,
    /// The last "Test DNS" result, or "asking..." while one runs.
    test_result: Option<String>,
    /// Lookup results arrive here.
    test_rx: Option<mpsc::Receiver<String>>,
}

impl OutgoingForm {
    /// What the re-send settings as typed mean in time, with a warning when mail would be
    /// returned within hours, and the one-click Postfix-like schedule.
    fn schedule_line(&mut self, ui: &mut egui::Ui) {
        let mut draft = Config::default();
        let typed = self.write_into(&mut draft).is_empty();
        let o = &draft.outgoing_mails;
        ui.horizontal_wrapped(|ui| {
            if !typed {
                ui.weak("(the re-send settings as typed are not valid yet)");
            } else if let Some(w) = schedule::short_horizon_warning(o) {
                let warn = ui.visuals().warn_fg_color;
                ui.colored_label(warn, schedule::describe(o))
                    .on_hover_text(&w);
                ui.colored_label(warn, "- too soon if a receiving server is down for hours")
                    .on_hover_text(w);
            } else {
                ui.label(schedule::describe(o));
            }
            if ui
                .button("Like Postfix (5 days)")
                .on_hover_text(help::POSTFIX_LIKE)
                .clicked()
            {
                let mut o = draft.outgoing_mails.clone();
                schedule::postfix_like(&mut o);
                self.attempts = o.resend_attempts.to_string();
                self.delay = o.resend_delay.to_string();
                self.backoff = o.backoff;
                self.give_up = o.give_up_after.map(|d| d.to_string()).unwrap_or_default();
            }
        });
    }
}

/// Asks the DNS hosts (or the system's) for the MX of `domain`, as delivery would.
async fn test_dns(dns_hosts: Vec<String>, domain: String) -> String {
    let resolver = match Resolver::new(&dns_hosts) {
        Ok(r) => r,
        Err(e) => return format!("cannot use these DNS hosts: {e}"),
    };
    match resolver.mx(&domain).await {
        Ok(MxAnswer::Hosts(hosts)) => format!(
            "{domain}: MX {}",
            hosts
                .iter()
                .map(|(p, h)| format!("{p} {h}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ok(MxAnswer::Implicit) => format!("{domain}: no MX records; mail goes to its own address"),
        Ok(MxAnswer::NullMx) => format!("{domain}: null MX, it accepts no mail"),
        Ok(MxAnswer::NoSuchDomain) => format!("{domain}: no such domain"),
        Err(e) => format!("{domain}: {e}"),
    }
}

impl Form for OutgoingForm {
    const TITLE: &'static str = "Outgoing Mails";

    fn from_config(cfg: &Config) -> Self {
        let o = &cfg.outgoing_mails;
        OutgoingForm {
            attempts: o.resend_attempts.to_string(),
            delay: o.resend_delay.to_string(),
            backoff: o.backoff,
            give_up: o.give_up_after.map(|d| d.to_string()).unwrap_or_default(),
            warning: o.delay_warning.map(|d| d.to_string()).unwrap_or_default(),
            mode: o.mode,
            dns_hosts: ListEdit::new(&o.dns_hosts),
            outbound_tls: o.outbound_tls,
            mx_port: o.mx_port.to_string(),
            relay_host: o.relay.host.clone(),
            relay_port: o.relay.port.to_string(),
            relay_user: o.relay.username.clone(),
            relay_password: o.relay.password.clone(),
            relay_tls: o.relay.tls,
            relay_verify: o.relay.verify_certificate,
            relay_ca_file: o.relay.ca_file.clone(),
            maps: o.domain_maps.clone(),
            selected_map: None,
            map_domain: String::new(),
            map_host: String::new(),
            map_port: "25".into(),
            detailed: o.detailed_logging,
            max_connections: o.max_connections.to_string(),
            max_per_domain: o.max_connections_per_domain.to_string(),
            keep_open: o.connection_cache_time.to_string(),
            rt: None,
            test_domain: String::new(),
            test_result: None,
            test_rx: None,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        let mut e = Vec::new();
        let o = &mut cfg.outgoing_mails;
        let count = "a whole number";
        if let Some(n) = parse_num(
            &self.attempts,
            "outgoing_mails.resend_attempts",
            count,
            &mut e,
        ) {
            o.resend_attempts = n;
        }
        if let Some(d) = parse_duration(&self.delay, "outgoing_mails.resend_delay", &mut e) {
            o.resend_delay = d;
        }
        o.backoff = self.backoff;
        o.give_up_after = if self.give_up.trim().is_empty() {
            None
        } else {
            parse_duration(&self.give_up, "outgoing_mails.give_up_after", &mut e)
                .or(o.give_up_after)
        };
        o.delay_warning = if self.warning.trim().is_empty() {
            None
        } else {
            parse_duration(&self.warning, "outgoing_mails.delay_warning", &mut e)
                .or(o.delay_warning)
        };
        o.mode = self.mode;
        o.dns_hosts = self.dns_hosts.items.clone();
        o.outbound_tls = self.outbound_tls;
        if let Some(p) = parse_num(&self.mx_port, "outgoing_mails.mx_port", PORT, &mut e) {
            o.mx_port = p;
        }
        o.relay.host = self.relay_host.trim().to_string();
        if let Some(p) = parse_num(&self.relay_port, "outgoing_mails.relay.port", PORT, &mut e) {
            o.relay.port = p;
        }
        o.relay.username = self.relay_user.trim().to_string();
        o.relay.password = self.relay_password.clone();
        o.relay.tls = self.relay_tls;
        o.relay.verify_certificate = self.relay_verify;
        o.relay.ca_file = self.relay_ca_file.trim().to_string();
        o.domain_maps = self.maps.clone();
        o.detailed_logging = self.detailed;
        if let Some(n) = parse_num(
            &self.max_connections,
            "outgoing_mails.max_connections",
            count,
            &mut e,
        ) {
            o.max_connections = n;
        }
        if let Some(n) = parse_num(
            &self.max_per_domain,
            "outgoing_mails.max_connections_per_domain",
            count,
            &mut e,
        ) {
            o.max_connections_per_domain = n;
        }
        if let Some(d) = parse_duration(
            &self.keep_open,
            "outgoing_mails.connection_cache_time",
            &mut e,
        ) {
            o.connection_cache_time = d;
        }
        e
    }

    fn shows_error(&self, path: &str) -> bool {
        path.starts_with("outgoing_mails.")
    }

    fn reload(&mut self, cfg: &Config) {
        let fresh = Self::from_config(cfg);
        *self = OutgoingForm {
            rt: self.rt.take(),
            test_domain: std::mem::take(&mut self.test_domain),
            test_result: self.test_result.take(),
            test_rx: self.test_rx.take(),
            ..fresh
        };
    }

    fn contents(&mut self, ui: &mut egui::Ui, errors: &[FieldError]) {
        ui.heading("Re-send Options");
        egui::Grid::new("resend")
            .num_columns(2)
            .min_col_width(LABEL_WIDTH)
            .show(ui, |ui| {
                text_row(
                    ui,
                    "Re-send Attempts",
                    help::ATTEMPTS,
                    &mut self.attempts,
                    errors,
                    "outgoing_mails.resend_attempts",
                    true,
                );
                text_row(
                    ui,
                    "Re-send Delay",
                    help::DELAY,
                    &mut self.delay,
                    errors,
                    "outgoing_mails.resend_delay",
                    true,
                );
                check_row(
                    ui,
                    "Wait Longer After Each Attempt (Back-off)",
                    help::BACKOFF,
                    &mut self.backoff,
                    errors,
                    "outgoing_mails.backoff",
                );
                text_row(
                    ui,
                    "Give Up After",
                    help::GIVE_UP,
                    &mut self.give_up,
                    errors,
                    "outgoing_mails.give_up_after",
                    true,
                );
                text_row(
                    ui,
                    "Delay Warning After",
                    help::WARNING,
                    &mut self.warning,
                    errors,
                    "outgoing_mails.delay_warning",
                    true,
                );
            });
        self.schedule_line(ui);
        ui.add_space(6.0);
        ui.heading("Delivery Mode");
        ui.radio_value(
            &mut self.mode,
            DeliveryMode::Independent,
            "Independent Mode",
        )
        .on_hover_text(help::INDEPENDENT);
        let independent = self.mode == DeliveryMode::Independent;
        ui.indent("independent", |ui| {
            ui.add_enabled(
                independent,
                egui::Label::new("DNS Hosts (empty: auto-detect)"),
            )
            .on_hover_text(help::DNS);
            self.dns_hosts.ui(
                ui,
                "DNS Host",
                help::DNS,
                independent,
                errors,
                "outgoing_mails.dns_hosts",
            );
            self.test_dns_ui(ui, independent);
            egui::Grid::new("independent_grid")
                .num_columns(2)
                .min_col_width(LABEL_WIDTH - 20.0)
                .show(ui, |ui| {
                    let l = ui
                        .add_enabled(independent, egui::Label::new("Outbound TLS"))
                        .on_hover_text(help::OUTBOUND_TLS);
                    ui.add_enabled_ui(independent, |ui| {
                        egui::ComboBox::from_id_salt("outbound_tls")
                            .selected_text(format!("{:?}", self.outbound_tls))
                            .show_ui(ui, |ui| {
                                for t in [
                                    OutboundTls::None,
                                    OutboundTls::Opportunistic,
                                    OutboundTls::Required,
                                ] {
                                    ui.selectable_value(
                                        &mut self.outbound_tls,
                                        t,
                                        format!("{t:?}"),
                                    );
                                }
                            })
                            .response
                            .labelled_by(l.id)
                            .on_hover_text(help::OUTBOUND_TLS);
                    });
                    ui.end_row();
                    text_row(
                        ui,
                        "MX Port",
                        help::MX_PORT,
                        &mut self.mx_port,
                        errors,
                        "outgoing_mails.mx_port",
                        independent,
                    );
                });
        });
        ui.radio_value(&mut self.mode, DeliveryMode::Relay, "Relay Mode")
            .on_hover_text(help::RELAY);
        let relay = self.mode == DeliveryMode::Relay;
        ui.indent("relay", |ui| {
            egui::Grid::new("relay_grid")
                .num_columns(2)
                .min_col_width(LABEL_WIDTH - 20.0)
                .show(ui, |ui| {
                    text_row(
                        ui,
                        "Relay Host",
                        help::RELAY,
                        &mut self.relay_host,
                        errors,
                        "outgoing_mails.relay.host",
                        relay,
                    );
                    text_row(
                        ui,
                        "Relay Port",
                        help::RELAY,
                        &mut self.relay_port,
                        errors,
                        "outgoing_mails.relay.port",
                        relay,
                    );
                    text_row(
                        ui,
                        "Relay User Name",
                        help::RELAY_LOGIN,
                        &mut self.relay_user,
                        errors,
                        "outgoing_mails.relay.username",
                        relay,
                    );
                    let l = ui
                        .add_enabled(relay, egui::Label::new("Relay Password"))
                        .on_hover_text(help::RELAY_LOGIN);
                    ui.add_enabled(
                        relay,
                        egui::TextEdit::singleline(&mut self.relay_password)
                            .password(true)
                            .desired_width(180.0),
                    )
                    .labelled_by(l.id)
                    .on_hover_text(help::RELAY_LOGIN);
                    ui.end_row();
                    let l = ui.add_enabled(relay, egui::Label::new("Relay TLS"));
                    ui.add_enabled_ui(relay, |ui| {
                        egui::ComboBox::from_id_salt("relay_tls")
                            .selected_text(relay_tls_name(self.relay_tls))
                            .show_ui(ui, |ui| {
                                for t in [RelayTls::None, RelayTls::StartTls, RelayTls::Implicit] {
                                    ui.selectable_value(&mut self.relay_tls, t, relay_tls_name(t));
                                }
                            })
                            .response
                            .labelled_by(l.id)
                            .on_hover_text("TLS towards the relay host");
                    });
                    ui.end_row();
                    ui.label("");
                    ui.add_enabled(
                        relay,
                        egui::Checkbox::new(&mut self.relay_verify, "Verify Relay Certificate"),
                    )
                    .on_hover_text(help::VERIFY);
                    ui.end_row();
                    text_row(
                        ui,
                        "Relay CA File",
                        help::CA_FILE,
                        &mut self.relay_ca_file,
                        errors,
                        "outgoing_mails.relay.ca_file",
                        relay,
                    );
                });
        });
        ui.add_space(6.0);
        ui.heading("Domain Mapping (Via SMTP)")
            .on_hover_text(help::MAPPING);
        self.mapping_ui(ui, errors, independent);
        ui.add_space(6.0);
        ui.heading("Logging and Limits");
        egui::Grid::new("limits")
            .num_columns(2)
            .min_col_width(LABEL_WIDTH)
            .show(ui, |ui| {
                check_row(
                    ui,
                    "More Detailed Logging",
                    help::DETAILED,
                    &mut self.detailed,
                    errors,
                    "outgoing_mails.detailed_logging",
                );
                text_row(
                    ui,
                    "Max Outbound Connections",
                    help::CONNECTIONS,
                    &mut self.max_connections,
                    errors,
                    "outgoing_mails.max_connections",
                    true,
                );
                text_row(
                    ui,
                    "Max Connections Per Domain",
                    help::CONNECTIONS,
                    &mut self.max_per_domain,
                    errors,
                    "outgoing_mails.max_connections_per_domain",
                    true,
                );
                text_row(
                    ui,
                    "Keep Connections Open",
                    help::KEEP_OPEN,
                    &mut self.keep_open,
                    errors,
                    "outgoing_mails.connection_cache_time",
                    true,
                );
            });
    }
}

fn relay_tls_name(t: RelayTls) -> &'static str {
    match t {
        RelayTls::None => "None",
        RelayTls::StartTls => "STARTTLS",
        RelayTls::Implicit => "Implicit TLS",
    }
}

impl OutgoingForm {
    /// "Test DNS": an MX lookup through the DNS hosts as listed now, run as a task.
    fn test_dns_ui(&mut self, ui: &mut egui::Ui, enabled: bool) {
        if let Some(rx) = &self.test_rx
            && let Ok(r) = rx.try_recv()
        {
            self.test_result = Some(r);
            self.test_rx = None;
        }
        ui.add_enabled_ui(enabled, |ui| {
            ui.horizontal(|ui| {
                let l = ui.label("Test Domain");
                ui.add(
                    egui::TextEdit::singleline(&mut self.test_domain)
                        .hint_text("example.com")
                        .desired_width(150.0),
                )
                .labelled_by(l.id)
                .on_hover_text("A domain to look up the MX of");
                let can = self.rt.is_some() && self.test_rx.is_none() && !self.test_domain.trim().is_empty();
                if ui
                    .add_enabled(can, egui::Button::new("Test DNS"))
                    .on_hover_text("Look up the domain's MX through the DNS hosts listed above (or the system's)")
                    .on_disabled_hover_text(if self.test_rx.is_some() {
                        "A lookup is under way"
                    } else {
                        "Type a domain to look up first"
                    })
                    .clicked()
                    && let Some(rt) = &self.rt
                {
                    let (tx, rx) = mpsc::channel();
                    let (hosts, domain, ctx) = (self.dns_hosts.items.clone(), self.test_domain.trim().to_string(), ui.ctx().clone());
                    rt.spawn(async move {
                        let _ = tx.send(test_dns(hosts, domain).await);
                        ctx.request_repaint();
                    });
                    self.test_rx = Some(rx);
                    self.test_result = Some("asking...".into());
                }
            });
            if let Some(r) = &self.test_result {
                ui.label(r);
            }
        });
    }

    fn mapping_ui(&mut self, ui: &mut egui::Ui, errors: &[FieldError], independent: bool) {
        if !independent {
            ui.weak("Ignored in Relay Mode.");
        }
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_min_width(300.0);
            if self.maps.is_empty() {
                ui.weak("(no mappings)");
            }
            for (i, m) in self.maps.iter().enumerate() {
                ui.horizontal(|ui| {
                    let text = format!("{} via {}:{}", m.domain, m.host, m.port);
                    if ui
                        .selectable_label(self.selected_map == Some(i), text)
                        .on_hover_text(help::MAPPING)
                        .clicked()
                    {
                        self.selected_map = Some(i);
                    }
                    for field in ["domain", "host", "port"] {
                        if let Some(e) =
                            error_for(errors, &format!("outgoing_mails.domain_maps[{i}].{field}"))
                        {
                            error_label(ui, e);
                        }
                    }
                });
            }
        });
        ui.horizontal(|ui| {
            for (label, value, width) in [
                ("Mapped Domain", &mut self.map_domain, 110.0),
                ("Via Host", &mut self.map_host, 110.0),
                ("Via Port", &mut self.map_port, 40.0),
            ] {
                let l = ui.label(label);
                ui.add(egui::TextEdit::singleline(value).desired_width(width))
                    .labelled_by(l.id)
                    .on_hover_text(help::MAPPING);
            }
        });
        ui.horizontal(|ui| {
            if ui
                .button("Add Mapping")
                .on_hover_text(help::MAPPING)
                .clicked()
            {
                match self.map_port.trim().parse::<u16>() {
                    Ok(port)
                        if !self.map_domain.trim().is_empty()
                            && !self.map_host.trim().is_empty() =>
                    {
                        self.maps.push(DomainMap {
                            domain: self.map_domain.trim().to_ascii_lowercase(),
                            host: self.map_host.trim().to_string(),
                            port,
                        });
                        self.map_domain.clear();
                        self.map_host.clear();
                    }
                    _ => {}
                }
            }
            let can_remove = self.selected_map.is_some_and(|i| i < self.maps.len());
            if ui
                .add_enabled(can_remove, egui::Button::new("Remove Mapping"))
                .on_disabled_hover_text("Select a mapping first")
                .clicked()
                && let Some(i) = self.selected_map.take()
            {
                self.maps.remove(i);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_round_trips_the_section() {
        let mut cfg = Config::default();
        let o = &mut cfg.outgoing_mails;
        o.mode = DeliveryMode::Relay;
        o.relay.host = "smtp.isp.test".into();
        o.relay.username = "me".into();
        o.relay.password = "pw".into();
        o.relay.tls = RelayTls::StartTls;
        o.relay.verify_certificate = false;
        o.relay.ca_file = "/etc/relay-ca.pem".into();
        o.dns_hosts = vec!["192.0.2.53".into()];
        o.domain_maps = vec![DomainMap {
            domain: "partner.test".into(),
            host: "10.1.1.1".into(),
            port: 2525,
        }];
        o.delay_warning = Some(crate::engine::config::HumanDuration::from_secs(4 * 3600));
        o.detailed_logging = true;
        let f = OutgoingForm::from_config(&cfg);
        let mut out = Config::default();
        assert!(f.write_into(&mut out).is_empty());
        assert_eq!(out.outgoing_mails, cfg.outgoing_mails);
    }
}
