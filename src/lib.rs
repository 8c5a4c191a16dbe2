//! Postern: a desktop mail server. [`engine`] is the mail server itself (no GUI); [`cli`] holds
//! the command line's shared pieces; `gui` (feature `gui`) is the desktop app.

pub mod cli;
pub mod engine;
#[cfg(feature = "gui")]
pub mod gui;
