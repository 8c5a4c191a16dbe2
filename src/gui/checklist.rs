//! The "Getting Started" checklist a new data directory opens with: the steps that make a
//! working mail server, each with a button to the dialog that does it, ticked from the live
//! state (the configuration file as last read, the listeners' status, the DNS Records
//! dialog's last check in this window, and the engine's counters for the test mail: the last
//! day a mail was delivered, kept in `DATA/stats.json`, as `postern status` shows it), never
//! from flags the window keeps. The host name rule is the engine's ([`validate::hostname_warning`]), the open-relay
//! rule too ([`validate::open_relay_warning`]); a listener's bind error is shown as the engine
//! words it (with the setcap hint for a privileged port).

use super::app::Dialog;
use super::dialogs::dns::Summary;
use crate::engine::config::validate;
use crate::engine::config::{Config, DeliveryMode};
use crate::engine::handle::Status;
use crate::engine::stats::DayName;
use eframe::egui;

/// One step of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it is, as its tick's label ("Local Domain").
    pub title: &'static str,
    /// Done, as the live state says.
    pub done: bool,
    /// Where it stands, or what to do.
    pub detail: String,
    /// The button's text.
    pub action: &'static str,
    /// The dialog the button opens.
    pub dialog: Dialog,
}

/// The steps for the configuration `cfg` (None: the file cannot be read), the engine's
/// `status` (None: the services are not running) and the last DNS Records check (None: none
/// finished since the window opened) and the last day the engine delivered a mail, into a
/// mailbox or out of the queue (None: none in the days its counters keep).
pub fn steps(
    cfg: Option<&Config>,
    status: Option<&Status>,
    dns: Option<Summary>,
    last_delivery: Option<DayName>,
) -> Vec<Step> {
    let Some(cfg) = cfg else {
        return vec![Step {
            title: "Configuration File",
            done: false,
            detail: "cannot be read: see the System log".into(),
            action: "Open SMTP Settings...",
            dialog: Dialog::Smtp,
        }];
    };
    let host = match validate::hostname_warning(cfg) {
        None => (
            true,
            format!(
                "{} (sent in HELO and in Received lines)",
                cfg.server.hostname
            ),
        ),
        Some(w) => (false, w),
    };
    let domains = if cfg.domains.is_empty() {
        (
            false,
            "none yet: mail is accepted for local domains only".to_string(),
        )
    } else {
        (
            true,
            format!(
                "{}: {}",
                plural(cfg.domains.len(), "domain"),
                cfg.domains.join(", ")
            ),
        )
    };
    let accounts = match cfg.accounts.first() {
        None => (
            false,
            "none yet: a local domain needs an account to receive mail".to_string(),
        ),
        Some(a) => (
            true,
            format!(
                "{}, the first {}",
                plural(cfg.accounts.len(), "account"),
                a.address
            ),
        ),
    };
    let incoming = status.and_then(|s| {
        s.listeners
            .iter()
            .find(|l| l.name.split('+').any(|n| n == "incoming"))
    });
    let port = match incoming {
        None => (
            false,
            format!(
                "port {}: the services are not running (Server > Start Services)",
                cfg.smtp.incoming.port
            ),
        ),
        Some(l) => match (&l.addr, &l.error) {
            (Some(a), _) => (true, format!("listening on {a}")),
            (None, Some(e)) => (false, e.clone()),
            (None, None) => (false, format!("{}: not bound yet", l.configured)),
        },
    };
    let outgoing = match (cfg.smtp.outgoing.enabled, validate::open_relay_warning(cfg)) {
        (false, _) => (
            false,
            "off: your mail programs need it to send mail to other domains".to_string(),
        ),
        (true, Some(w)) => (false, w),
        (true, None) => (
            true,
            format!(
                "port {}, restricted by Access Control",
                cfg.smtp.outgoing.port
            ),
        ),
    };
    let r = &cfg.outgoing_mails.relay;
    let mode = match cfg.outgoing_mails.mode {
        DeliveryMode::Independent => (
            true,
            "Independent: delivered straight to each domain's mail server (MX lookup); \
             choose Relay if your ISP blocks port 25"
                .to_string(),
        ),
        DeliveryMode::Relay if r.host.is_empty() => {
            (false, "Relay, but no relay host is set".to_string())
        }
        DeliveryMode::Relay => (true, format!("Relay through {}:{}", r.host, r.port)),
    };
    // Ticked only when the last check found every record right: one that could not be
    // checked is not known to be right.
    let records = match dns {
        None => (
            false,
            "not checked yet: the MX, SPF, DKIM and DMARC records your domains need".to_string(),
        ),
        Some(s) if s.problems > 0 => (
            false,
            format!(
                "{} missing or wrong at the last check",
                plural(s.problems, "record")
            ),
        ),
        Some(s) if s.unchecked > 0 => (
            false,
            format!(
                "{} could not be checked: DNS did not answer",
                plural(s.unchecked, "record")
            ),
        ),
        Some(s) => (
            true,
            format!("all {} records right at the last check", s.rows),
        ),
    };
    let step = |title, (done, detail): (bool, String), action, dialog| Step {
        title,
        done,
        detail,
        action,
        dialog,
    };
    vec![
        step("Server Host Name", host, "Set Host Name...", Dialog::Smtp),
        step("Local Domain", domains, "Add a Domain...", Dialog::Domains),
        step("Account", accounts, "Add an Account...", Dialog::Domains),
        step("Incoming Port", port, "Set the Port...", Dialog::Smtp),
        step(
            "Outgoing SMTP and Access Control",
            outgoing,
            if cfg.smtp.outgoing.enabled {
                "Restrict Relaying..."
            } else {
                "Enable Outgoing SMTP..."
            },
            if cfg.smtp.outgoing.enabled {
                Dialog::Access
            } else {
                Dialog::Smtp
            },
        ),
        step(
            "Delivery Mode",
            mode,
            "Choose the Mode...",
            Dialog::Outgoing,
        ),
        step("DNS Records", records, "Check DNS Records...", Dialog::Dns),
        step(
            "Test Mail",
            match last_delivery {
                Some(day) => (
                    true,
                    format!("the server last delivered a mail on {day} (UTC)"),
                ),
                None => (
                    false,
                    "send one through your listeners and see it delivered".to_string(),
                ),
            },
            "Send Test Mail...",
            Dialog::TestMail,
        ),
    ]
}

/// "1 domain", "3 domains".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// What the admin did in the list this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicked {
    /// Open this dialog.
    Open(Dialog),
    /// Hide the list.
    Hide,
}

/// Shows the list; returns what was clicked.
pub fn ui(ui: &mut egui::Ui, steps: &[Step]) -> Option<Clicked> {
    let mut clicked = None;
    let left = steps.iter().filter(|s| !s.done).count();
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.strong("Getting Started");
            ui.weak(match left {
                0 => "Every step is done: this server can send and receive mail.".to_string(),
                1 => "1 step left".to_string(),
                n => format!("{n} steps left"),
            });
            if ui
                .button("Hide Checklist")
                .on_hover_text("Help > Getting Started shows it again")
                .clicked()
            {
                clicked = Some(Clicked::Hide);
            }
        });
        egui::Grid::new("getting_started")
            .num_columns(3)
            .spacing([12.0, 2.0])
            .show(ui, |ui| {
                for s in steps {
                    let mut done = s.done;
                    ui.add_enabled(false, egui::Checkbox::new(&mut done, s.title))
                        .on_disabled_hover_text(if s.done { "Done" } else { "Not done yet" });
                    if ui
                        .button(s.action)
                        .on_hover_text(format!("Opens {}", s.dialog.title()))
                        .clicked()
                    {
                        clicked = Some(Clicked::Open(s.dialog));
                    }
                    let text = egui::RichText::new(&s.detail);
                    let text = if s.done {
                        text.weak()
                    } else {
                        text.color(ui.visuals().warn_fg_color)
                    };
                    // One line each; the whole text (a bind error with its hint) on hover.
                    ui.add(egui::Label::new(text).truncate())
                        .on_hover_text(&s.detail);
                    ui.end_row();
                }
            });
    });
    clicked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(cfg: &Config) -> Vec<(&'static str, bool)> {
        steps(Some(cfg), None, None, None)
            .into_iter()
            .map(|s| (s.title, s.done))
            .collect()
    }

    #[test]
    fn ticks_follow_the_configuration() {
        let mut c = Config::default();
        c.server.hostname = "myhost".into();
        c.domains.clear();
        c.accounts.clear();
        c.smtp.outgoing.enabled = false;
        let d = done(&c);
        assert!(
            d.iter().all(|(t, ok)| !ok || *t == "Delivery Mode"),
            "{d:?}"
        );
        c.server.hostname = "mail.example.com".into();
        c.domains.push("example.com".into());
        let d = done(&c);
        assert!(d[0].1 && d[1].1 && !d[2].1 && !d[3].1, "{d:?}");
        c.outgoing_mails.mode = DeliveryMode::Relay;
        c.outgoing_mails.relay.host.clear();
        assert!(!done(&c)[5].1);
        assert!(!steps(None, None, None, None)[0].done);
    }

    #[test]
    fn dns_records_are_ticked_when_the_last_check_found_all_right() {
        let c = Config::default();
        let dns = |problems, unchecked| {
            let s = steps(
                Some(&c),
                None,
                Some(Summary {
                    rows: 6,
                    problems,
                    unchecked,
                }),
                None,
            );
            let step = s.into_iter().find(|s| s.title == "DNS Records").unwrap();
            (step.done, step.detail)
        };
        assert!(dns(0, 0).0);
        let (done, detail) = dns(2, 1);
        assert!(!done);
        assert!(detail.starts_with("2 records missing or wrong"), "{detail}");
        assert!(!dns(0, 1).0);
        let none = steps(Some(&c), None, None, None);
        let dns = none.iter().find(|s| s.title == "DNS Records").unwrap();
        assert!(!dns.done);
        assert_eq!(dns.dialog, Dialog::Dns);
        let day = DayName(*b"2026-12-03");
        let last = steps(Some(&c), None, None, Some(day)).pop().unwrap();
        assert_eq!((last.title, last.done), ("Test Mail", true));
        assert!(last.detail.contains("2026-12-03"), "{}", last.detail);
        assert_eq!(last.dialog, Dialog::TestMail);
    }
}
