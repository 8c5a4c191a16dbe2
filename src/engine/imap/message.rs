//! FETCH for one message: the data items a FETCH asked for, from the message's flags, UID,
//! internal date and bytes. (A minimal stand-in: FLAGS, UID, RFC822.SIZE, INTERNALDATE,
//! BODY[] / BODY.PEEK[] with a partial range, RFC822; the full version, with ENVELOPE,
//! BODYSTRUCTURE and sections, replaces this file.)

use imap_codec::imap_types::core::{Literal, NString};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use std::num::NonZeroU32;

/// One message as FETCH and SEARCH see it.
pub struct MessageView<'a> {
    /// Its sequence number in the session.
    pub seq: NonZeroU32,
    /// Its UID.
    pub uid: NonZeroU32,
    /// System flags and keywords (no \Recent).
    pub flags: &'a [Flag<'static>],
    /// The file's mtime or delivery time.
    pub internal_date: DateTime,
    /// The whole message, CRLF lines (empty when the items do not need it).
    pub raw: &'a [u8],
}

/// A string of the message's bytes.
fn nstring(bytes: &[u8]) -> NString<'static> {
    let lit =
        Literal::try_from(bytes.to_vec()).unwrap_or_else(|_| Literal::unvalidated(bytes.to_vec()));
    NString::from(lit)
}

/// The items a FETCH asked for, in order. The session sets \Seen itself.
pub fn fetch(
    msg: &MessageView,
    items: &[MessageDataItemName<'_>],
) -> Vec<MessageDataItem<'static>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            MessageDataItemName::Flags => out.push(MessageDataItem::Flags(
                msg.flags.iter().cloned().map(FlagFetch::Flag).collect(),
            )),
            MessageDataItemName::Uid => out.push(MessageDataItem::Uid(msg.uid)),
            MessageDataItemName::Rfc822Size => {
                out.push(MessageDataItem::Rfc822Size(msg.raw.len() as u32))
            }
            MessageDataItemName::InternalDate => {
                out.push(MessageDataItem::InternalDate(msg.internal_date.clone()))
            }
            MessageDataItemName::Rfc822 => out.push(MessageDataItem::Rfc822(nstring(msg.raw))),
            MessageDataItemName::BodyExt {
                section: None,
                partial,
                ..
            } => {
                let (origin, data) = match partial {
                    Some((start, len)) => {
                        let s = (*start as usize).min(msg.raw.len());
                        let e = s.saturating_add(len.get() as usize).min(msg.raw.len());
                        (Some(*start), &msg.raw[s..e])
                    }
                    None => (None, msg.raw),
                };
                out.push(MessageDataItem::BodyExt {
                    section: None,
                    origin,
                    data: nstring(data),
                });
            }
            _ => {}
        }
    }
    out
}

/// Whether `items` needs the message's bytes.
pub fn needs_body(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::Rfc822Size
                | MessageDataItemName::InternalDate
        )
    })
}
