//! Local mail storage: account passwords, Maildir delivery, and the trace header fields put
//! on every stored copy.

pub mod maildir;
pub mod password;
pub mod trace;
