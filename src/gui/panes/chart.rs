//! The mails-per-minute chart: counts derived from the engine's events (`Delivered` = a mail
//! accepted into local mailboxes or the queue, `QueueFinished` = a queued mail left the queue,
//! sent when a recipient was delivered, given up when one failed, `MessageRejected` = a mail
//! refused after DATA), kept per minute for the last [`WINDOW`] minutes and drawn as stacked
//! bars with egui_plot.

use crate::engine::events::{Event, EventKind};
use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Plot};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes shown.
pub const WINDOW: i64 = 30;

/// Counts of one minute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Mails accepted (into local mailboxes or the queue).
    pub accepted: u32,
    /// Queued mails that left the queue with at least one recipient delivered.
    pub sent: u32,
    /// Queued mails that left the queue with at least one recipient given up on.
    pub failed: u32,
    /// Mails refused after DATA.
    pub refused: u32,
}

/// Per-minute counters.
#[derive(Debug, Default)]
pub struct MailChart {
    /// Minute since the epoch -> counts.
    minutes: BTreeMap<i64, Minute>,
    /// Mails accepted since the app started.
    pub accepted: u64,
    /// Queued mails sent since the app started.
    pub sent: u64,
    /// Queued mails given up on (for at least one recipient) since the app started.
    pub failed: u64,
    /// Mails refused after DATA since the app started.
    pub refused: u64,
}

fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 60) as i64)
        .unwrap_or(0)
}

impl MailChart {
    /// Counts an event if it is an acceptance, a queued mail leaving the queue or a refusal.
    pub fn push(&mut self, ev: &Event) {
        let m = minute_of(ev.time);
        match &ev.kind {
            EventKind::Delivered { .. } => {
                self.minutes.entry(m).or_default().accepted += 1;
                self.accepted += 1;
            }
            EventKind::QueueFinished {
                delivered, failed, ..
            } => {
                let minute = self.minutes.entry(m).or_default();
                if *delivered > 0 {
                    minute.sent += 1;
                    self.sent += 1;
                }
                if *failed > 0 {
                    minute.failed += 1;
                    self.failed += 1;
                }
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
        let accepted = BarChart::new("received", bars(|m| m.accepted))
            .color(egui::Color32::from_rgb(53, 179, 74));
        let sent = BarChart::new("sent", bars(|m| m.sent))
            .color(egui::Color32::from_rgb(70, 130, 220))
            .stack_on(&[&accepted]);
        let failed = BarChart::new("given up", bars(|m| m.failed))
            .color(egui::Color32::from_rgb(230, 160, 40))
            .stack_on(&[&accepted, &sent]);
        let refused = BarChart::new("refused", bars(|m| m.refused))
            .color(egui::Color32::from_rgb(224, 57, 62))
            .stack_on(&[&accepted, &sent, &failed]);
        // Headroom above the tallest stack, where the legend sits: it never hides a bar, the
        // newest minute's least of all.
        let tallest = series
            .iter()
            .map(|(_, m)| m.accepted + m.sent + m.failed + m.refused)
            .max()
            .unwrap_or(0) as f64;
        Plot::new("mails_per_minute")
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
            .include_y(tallest * 1.6)
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
                p.bar_chart(accepted);
                p.bar_chart(sent);
                p.bar_chart(failed);
                p.bar_chart(refused);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{EventBus, Level};

    #[test]
    fn counts_acceptances_queue_outcomes_and_refusals_per_minute() {
        let bus = EventBus::new();
        for _ in 0..3 {
            bus.emit(
                Level::Info,
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
            Some("s"),
            EventKind::MessageRejected {
                reason: "too big".into(),
            },
        );
        for (delivered, failed) in [(2, 0), (1, 1), (0, 1)] {
            bus.emit(
                Level::Info,
                Some("q"),
                EventKind::QueueFinished {
                    id: "q".into(),
                    delivered,
                    failed,
                },
            );
        }
        bus.emit(
            Level::Info,
            None,
            EventKind::Note {
                text: "noise".into(),
            },
        );
        let mut c = MailChart::default();
        let mut last = SystemTime::UNIX_EPOCH;
        for ev in bus.recent() {
            last = ev.time;
            c.push(&ev);
        }
        assert_eq!((c.accepted, c.sent, c.failed, c.refused), (3, 2, 2, 1));
        let s = c.series(last);
        assert_eq!(s.len() as i64, WINDOW);
        let want = Minute {
            accepted: 3,
            sent: 2,
            failed: 2,
            refused: 1,
        };
        assert_eq!(s.last(), Some(&(0, want)));
        assert!(
            s[..s.len() - 1]
                .iter()
                .all(|(_, m)| *m == Minute::default())
        );
    }
}
