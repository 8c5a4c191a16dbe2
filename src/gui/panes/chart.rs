//! The mails-per-minute chart: counts derived from the engine's events (`Delivered` = a mail
//! accepted into local mailboxes, `MessageRejected` = a mail refused after DATA), kept per
//! minute for the last [`WINDOW`] minutes and drawn as bars with egui_plot. Outbound delivery
//! is not counted yet: the engine has no outgoing queue to report on.

use crate::engine::events::{Event, EventKind};
use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Plot};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes shown.
pub const WINDOW: i64 = 30;

/// Per-minute counters.
#[derive(Debug, Default)]
pub struct MailChart {
    /// Minute since the epoch -> (delivered, refused).
    minutes: BTreeMap<i64, (u32, u32)>,
    /// Totals since the app started.
    pub delivered: u64,
    /// Mails refused after DATA since the app started.
    pub refused: u64,
}

fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 60) as i64)
        .unwrap_or(0)
}

impl MailChart {
    /// Counts an event if it is a delivery or a refusal.
    pub fn push(&mut self, ev: &Event) {
        let m = minute_of(ev.time);
        match &ev.kind {
            EventKind::Delivered { .. } => {
                self.minutes.entry(m).or_default().0 += 1;
                self.delivered += 1;
            }
            EventKind::MessageRejected { .. } => {
                self.minutes.entry(m).or_default().1 += 1;
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

    /// (minutes ago, delivered, refused) for the last [`WINDOW`] minutes, oldest first.
    pub fn series(&self, now: SystemTime) -> Vec<(i64, u32, u32)> {
        let now_m = minute_of(now);
        (0..WINDOW)
            .rev()
            .map(|ago| {
                let (d, r) = self
                    .minutes
                    .get(&(now_m - ago))
                    .copied()
                    .unwrap_or_default();
                (ago, d, r)
            })
            .collect()
    }

    /// Draws the chart.
    pub fn ui(&self, ui: &mut egui::Ui) {
        let series = self.series(SystemTime::now());
        let delivered: Vec<Bar> = series
            .iter()
            .map(|&(ago, d, _)| Bar::new(-(ago as f64), d as f64).width(0.8))
            .collect();
        let refused: Vec<Bar> = series
            .iter()
            .map(|&(ago, _, r)| Bar::new(-(ago as f64), r as f64).width(0.8))
            .collect();
        let in_chart =
            BarChart::new("delivered", delivered).color(egui::Color32::from_rgb(53, 179, 74));
        let refused_chart = BarChart::new("refused", refused)
            .color(egui::Color32::from_rgb(224, 57, 62))
            .stack_on(&[&in_chart]);
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
                p.bar_chart(in_chart);
                p.bar_chart(refused_chart);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Channel, EventBus, Level};

    #[test]
    fn counts_deliveries_and_refusals_per_minute() {
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
            Channel::System,
            None,
            EventKind::Note { text: "x".into() },
        );
        let mut c = MailChart::default();
        let mut last = SystemTime::UNIX_EPOCH;
        for ev in bus.recent() {
            last = ev.time;
            c.push(&ev);
        }
        assert_eq!((c.delivered, c.refused), (3, 1));
        let s = c.series(last);
        assert_eq!(s.len() as i64, WINDOW);
        assert_eq!(s.last(), Some(&(0, 3, 1)));
        assert!(s[..s.len() - 1].iter().all(|&(_, d, r)| d == 0 && r == 0));
    }
}
