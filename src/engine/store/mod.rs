//! Local mail storage: message bodies in bounded memory, account passwords, Maildir delivery,
//! the mailboxes people read (folders, UIDs, flags),
//! and the trace header fields put on every stored copy.

pub mod body;
pub mod mailbox;
pub mod maildir;
pub mod password;
pub mod trace;
