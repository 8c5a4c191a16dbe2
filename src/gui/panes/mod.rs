//! The main window's panes: the Live Logs pane, the Queued Mails pane (its table, and the
//! selected mail's details with the delete confirmation) and the mails-per-minute chart.

pub mod chart;
pub mod logs;
pub mod queue;
pub mod queue_detail;
