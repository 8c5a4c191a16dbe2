//! [`Command`]: what a front end (or the control socket) can ask of the running engine. Its
//! own module so the control socket and the handle both sit above it.

/// What a front end can ask of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Re-read the configuration file now (it is also polled every second).
    Reload,
}
