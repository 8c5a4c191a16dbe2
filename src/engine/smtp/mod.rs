//! The SMTP server: listeners ([`listener`]), the byte level ([`conn`]), the session state
//! machine ([`session`], over any `AsyncRead + AsyncWrite`) and the [`intake`] that stores
//! what sessions accept. Policy is not here: sessions ask the access gate.

pub mod conn;
pub mod intake;
pub mod listener;
pub mod session;

pub use session::Deps;
