//! The mails-per-minute chart: the engine's own counters ([`crate::engine::stats`]:
//! accepted, sent, given up, refused), sampled each frame; what they grew by is put on the
//! minute it was seen in, for the last [`WINDOW`] minutes, drawn as stacked bars with
//! egui_plot. The chart and the status strip so count the same things the same way as the
//! engine and `postern status`.

use crate::engine::stats::{Counts, StatsSnapshot};
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
    /// Connections, recipients and mails refused.
    pub refused: u32,
}

/// Per-minute counters.
#[derive(Debug, Default)]
pub struct MailChart {
    /// Minute since the epoch -> counts.
    minutes: BTreeMap<i64, Minute>,
    /// The engine's counters as last seen (kept while the services are stopped, for the
    /// status strip).
    pub last: Option<StatsSnapshot>,
}

fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 60) as i64)
        .unwrap_or(0)
}

/// How much `now` grew past `before` (a counter below its old value started again: all new).
fn grown(now: u64, before: u64) -> u32 {
    (if now >= before { now - before } else { now }) as u32
}

impl MailChart {
    /// Takes in the engine's counters seen at `t`: what grew since the last sample goes on
    /// `t`'s minute. The first sample is only the baseline (what was counted before the
    /// window opened is in the totals, not on the chart). `None` (services stopped) keeps
    /// the last sample.
    pub fn observe(&mut self, s: Option<StatsSnapshot>, t: SystemTime) {
        let Some(s) = s else {
            return;
        };
        let before = match self.last {
            // A new day starts the engine's counters again from zero.
            Some(l) if l.day == s.day => l.today,
            Some(_) => Counts::default(),
            None => s.today,
        };
        self.last = Some(s);
        let c = s.today;
        let add = Minute {
            accepted: grown(c.accepted, before.accepted),
            sent: grown(c.delivered, before.delivered),
            failed: grown(c.given_up, before.given_up),
            refused: grown(c.refused, before.refused),
        };
        if add == Minute::default() {
            return;
        }
        let m = minute_of(t);
        let minute = self.minutes.entry(m).or_default();
        minute.accepted += add.accepted;
        minute.sent += add.sent;
        minute.failed += add.failed;
        minute.refused += add.refused;
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
        let accepted = BarChart::new("Accepted", bars(|m| m.accepted))
            .color(egui::Color32::from_rgb(53, 179, 74));
        let sent = BarChart::new("Sent", bars(|m| m.sent))
            .color(egui::Color32::from_rgb(70, 130, 220))
            .stack_on(&[&accepted]);
        let failed = BarChart::new("Given Up", bars(|m| m.failed))
            .color(egui::Color32::from_rgb(230, 160, 40))
            .stack_on(&[&accepted, &sent]);
        let refused = BarChart::new("Refused", bars(|m| m.refused))
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
    use crate::engine::stats::{Counter, Stats};

    #[test]
    fn the_chart_puts_what_the_engine_counted_on_the_minute_it_was_seen() {
        let stats = Stats::default();
        stats.count(Counter::Accepted);
        let mut c = MailChart::default();
        let t = SystemTime::now();
        // The first sample is the baseline.
        c.observe(Some(stats.snapshot()), t);
        assert!(c.series(t).iter().all(|(_, m)| *m == Minute::default()));
        for w in [
            Counter::Accepted,
            Counter::Accepted,
            Counter::Delivered,
            Counter::GivenUp,
            Counter::Refused,
        ] {
            stats.count(w);
        }
        c.observe(Some(stats.snapshot()), t);
        // Stopped services: nothing changes, the last counts stay for the strip.
        c.observe(None, t);
        let s = c.series(t);
        assert_eq!(s.len() as i64, WINDOW);
        let want = Minute {
            accepted: 2,
            sent: 1,
            failed: 1,
            refused: 1,
        };
        assert_eq!(s.last(), Some(&(0, want)));
        assert_eq!(c.last.unwrap().today.accepted, 3);
    }
}
