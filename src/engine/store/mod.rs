//! Local mail storage: account passwords and Maildir delivery.

pub mod maildir;
pub mod password;
