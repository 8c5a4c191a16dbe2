//! Local mail storage: message bodies in bounded memory, account passwords, Maildir delivery,
//! and the trace header fields put on every stored copy.

pub mod body;
pub mod maildir;
pub mod password;
pub mod trace;
