//! IMAP4rev2 (RFC 9051, answering IMAP4rev1 clients too) over the local Maildirs. So far the
//! two pure parts the session calls: [`message`] (FETCH's data items) and [`search`] (SEARCH
//! keys). They take one message's flags, dates and bytes and do no I/O.

pub mod message;
pub mod search;
