//! The mails-per-minute chart: counts derived from the engine's events (`Delivered` = a mail
//! accepted into local mailboxes, the queue's "delivered to every recipient" line on the SMTP
//! Out channel = a queued mail sent, `MessageRejected` = a mail refused after DATA), kept per
//! minute for the last [`WINDOW`] minutes and drawn as stacked bars with egui_plot.

use crate::engine::events::{Channel, Event, EventKind};
use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Plot};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes shown.
pub const WINDOW: i64 = 30;

/// How the queue manager's line for a mail sent to every recipient starts (there is no typed
/// event for it yet).
pub const SENT_PREFIX: &str = "delivered to every recipient";

/// Counts of one minute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Mails written to local mailboxes.
    pub delivered: u32,
    /// Queued mails sent to every recipient.
    pub sent: u32,
    /// Mails refused after DATA.
    pub refused: u32,
}

/// Per-minute counters.
#[derive(Debug, Default)]
pub struct MailChart {
    /// Minute since the epoch -> counts.
    minutes: BTreeMap<i64, Minute>,
    /// Mails delivered to local mailboxes since the app started.
    pub delivered: u64,
    /// Queued mails sent to every recipient since the app started.
    pub sent: u64,
    /// Mails refused after DATA since the app started.
    pub refused: u64,
}

fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 60) as i64)
        .unwrap_or(0)
}

impl MailChart {
    /// Counts an event if it is a delivery, a sent mail or a refusal.
    pub fn push(&mut self, ev: &Event) {
        let m = minute_of(ev.time);
        match &ev.kind {
            EventKind::Delivered { .. } => {
                self.minutes.entry(m).or_default().delivered += 1;
                self.delivered += 1;
            }
            EventKind::Note { text }
                if ev.channel == Channel::SmtpOut && text.starts_with(SENT_PREFIX) =>
            {
                self.minutes.entry(m).or_default().sent += 1;
                self.sent += 1;
            }
            EventKind::MessageRejected { .. } => {
                self.minutes.entry(m).or_default().refused += 1;
                self.refused += 1;
            }
            _ => return,
        }
        let oldest = m - WINDOW * 2;
        while self
            .minutes
            .first_key_value()
            .is_some_and(|(&k, _)| k < oldest)
        {
            self.minutes.pop_first();
        }
    }

    /// (minutes ago, counts) for the last [`WINDOW`] minutes, oldest first.
    pub fn series(&self, now: SystemTime) -> Vec<(i64, Minute)> {
        let now_m = minute_of(now);
        (0..WINDOW)
            .rev()
            .map(|ago| {
                (
                    ago,
                    self.minutes
                        .get(&(now_m - ago))
                        .copied()
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Draws the chart.
    pub fn ui(&self, ui: &mut egui::Ui) {
        let series = self.series(SystemTime::now());
        let bars = |f: fn(&Minute) -> u32| -> Vec<Bar> {
            series
                .iter()
                .map(|(ago, m)| Bar::new(-(*ago as f64), f(m) as f64).width(0.8))
                .collect()
        };
        let delivered = BarChart::new("received", bars(|m| m.delivered))
            .color(egui::Color32::from_rgb(53, 179, 74));
        let sent = BarChart::new("sent", bars(|m| m.sent))
            .color(egui::Color32::from_rgb(70, 130, 220))
            .stack_on(&[&delivered]);
        let refused = BarChart::new("refused", bars(|m| m.refused))
            .color(egui::Color32::from_rgb(224, 57, 62))
            .stack_on(&[&delivered, &sent]);
        Plot::new("mails_per_minute")
            .legend(Legend::default())
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .include_y(0.0)
            .include_y(4.0)
            .include_x(-(WINDOW as f64))
            .include_x(0.5)
            .x_axis_label("minutes ago")
            .y_axis_label("mails / min")
            .show(ui, |p| {
                p.bar_chart(delivered);
                p.bar_chart(sent);
                p.bar_chart(refused);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{EventBus, Level};

    #[test]
    fn counts_deliveries_sent_mails_and_refusals_per_minute() {
        let bus = EventBus::new();
        for _ in 0..3 {
            bus.emit(
                Level::Info,
                Channel::SmtpIn,
                Some("s"),
                EventKind::Delivered {
                    id: "m".into(),
                    from: "a@b.test".into(),
                    to: vec!["c@d.test".into()],
                    size: 10,
                },
            );
        }
        bus.emit(
            Level::Warn,
            Channel::SmtpIn,
            Some("s"),
            EventKind::MessageRejected {
                reason: "too big".into(),
            },
        );
        bus.emit(
            Level::Info,
            Channel::SmtpOut,
            Some("q"),
            EventKind::Note {
                text: format!("{SENT_PREFIX}; removed from the queue"),
            },
        );
        bus.emit(
            Level::Info,
            Channel::System,
            None,
            EventKind::Note {
                text: SENT_PREFIX.into(),
            },
        );
        let mut c = MailChart::default();
        let mut last = SystemTime::UNIX_EPOCH;
        for ev in bus.recent() {
            last = ev.time;
            c.push(&ev);
        }
        assert_eq!((c.delivered, c.sent, c.refused), (3, 1, 1));
        let s = c.series(last);
        assert_eq!(s.len() as i64, WINDOW);
        assert_eq!(
            s.last(),
            Some(&(
                0,
                Minute {
                    delivered: 3,
                    sent: 1,
                    refused: 1
                }
            ))
        );
        assert!(
            s[..s.len() - 1]
                .iter()
                .all(|(_, m)| *m == Minute::default())
        );
    }
}
