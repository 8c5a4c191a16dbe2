//! The main window's panes: the Live Logs pane, the Queued Mails pane and the mails-per-minute
//! chart.

pub mod chart;
pub mod logs;
pub mod queue;
