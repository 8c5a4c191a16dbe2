//! FETCH's message data (RFC 9051 §6.4.5, §7.5.2; RFC 3501's RFC822.* forms; RFC 3516's
//! BINARY): one message's bytes and flags in, imap-types' `MessageDataItem`s out, in the order
//! asked. Pure: no I/O, no session state (the session sets `\Seen` itself).
//!
//! The header block is cut and split here ([`header`]), so FLAGS, ENVELOPE, BODY[HEADER] and
//! BODY.PEEK[HEADER.FIELDS (..)] never parse MIME; BODYSTRUCTURE and numbered sections parse
//! it once per FETCH with mail-parser and slice the raw bytes at its part offsets. A section
//! that does not exist answers an empty string, as Dovecot does.

pub mod envelope;
pub mod header;

use imap_codec::imap_types::ToStatic;
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{
    IString, Literal, LiteralMode, NString, NString8, Quoted, Vec1,
};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use mail_parser::{
    Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, PartType,
};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::num::NonZeroU32;

/// One message as FETCH and SEARCH see it.
#[derive(Debug, Clone)]
pub struct MessageView<'a> {
    /// Its message sequence number in the session.
    pub seq: NonZeroU32,
    /// Its UID in the folder.
    pub uid: NonZeroU32,
    /// System flags and keywords (never `\Recent`: Postern does not keep it).
    pub flags: &'a [Flag<'static>],
    /// When it arrived (INTERNALDATE).
    pub internal_date: DateTime,
    /// Its size in octets as stored (CRLF lines): RFC822.SIZE, LARGER, SMALLER. Known without
    /// reading the file (Maildir's `S=` or the file length), so it is given even when `raw` is
    /// not.
    pub size: u32,
    /// The whole message, CRLF lines; empty when `needs_body` said it is not needed.
    pub raw: &'a [u8],
}

/// Whether `items` needs the message's bytes (false for FLAGS, UID, RFC822.SIZE and
/// INTERNALDATE only).
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

/// Whether `items` look at nothing past the header block: then `raw` may be only the start of
/// the message through the blank line that ends its header ([`header::complete_header_len`]
/// says when a prefix holds it), so a header FETCH need not read attachments.
pub fn header_only(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().all(|i| match i {
        MessageDataItemName::Flags
        | MessageDataItemName::Uid
        | MessageDataItemName::Rfc822Size
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Envelope
        | MessageDataItemName::Rfc822Header => true,
        MessageDataItemName::BodyExt { section, .. } => matches!(
            section,
            Some(Section::Header(None))
                | Some(Section::HeaderFields(None, _))
                | Some(Section::HeaderFieldsNot(None, _))
        ),
        _ => false,
    })
}

/// The items a FETCH asked for, in order. The session sets `\Seen` itself.
pub fn fetch(
    msg: &MessageView,
    items: &[MessageDataItemName<'_>],
) -> Vec<MessageDataItem<'static>> {
    let mime = Mime::new(msg.raw);
    let hl = header::header_len(msg.raw);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let data = match item {
            MessageDataItemName::Flags => {
                MessageDataItem::Flags(msg.flags.iter().cloned().map(FlagFetch::Flag).collect())
            }
            MessageDataItemName::Uid => MessageDataItem::Uid(msg.uid),
            MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(msg.size),
            MessageDataItemName::InternalDate => {
                MessageDataItem::InternalDate(msg.internal_date.clone())
            }
            MessageDataItemName::Envelope => {
                MessageDataItem::Envelope(envelope::envelope(&msg.raw[..hl]))
            }
            MessageDataItemName::Body => MessageDataItem::Body(match mime.get() {
                Some(m) => structure(m, 0, false, 0),
                None => empty_structure(&msg.raw[hl..], false),
            }),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(match mime.get() {
                    Some(m) => structure(m, 0, true, 0),
                    None => empty_structure(&msg.raw[hl..], true),
                })
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(nliteral(msg.raw)),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(nliteral(&msg.raw[..hl]))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(nliteral(&msg.raw[hl..]))
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let bytes = section_bytes(msg.raw, hl, &mime, section.as_ref());
                let bytes = match partial {
                    Some((origin, count)) => cut(&bytes, *origin, count.get()),
                    None => &bytes[..],
                };
                MessageDataItem::BodyExt {
                    section: section.as_ref().map(|s| s.to_static()),
                    origin: partial.map(|(origin, _)| origin),
                    data: nliteral(bytes),
                }
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                let (bytes, decoded) = binary(msg.raw, &mime, section);
                let bytes = match partial {
                    Some((origin, count)) => cut(&bytes, *origin, count.get()),
                    None => &bytes[..],
                };
                // literal8 for what was decoded (it may be any octets) or holds a NUL; a
                // part sent unencoded goes as it came, in a plain literal (as Dovecot does).
                let value = if decoded || memchr::memchr(0, bytes).is_some() {
                    NString8::Literal8(Literal8 {
                        data: Cow::Owned(bytes.to_vec()),
                        mode: LiteralMode::Sync,
                    })
                } else {
                    NString8::NString(nliteral(bytes))
                };
                MessageDataItem::Binary {
                    section: section.clone(),
                    value,
                }
            }
            MessageDataItemName::BinarySize { section } => MessageDataItem::BinarySize {
                section: section.clone(),
                size: binary(msg.raw, &mime, section).0.len() as u32,
            },
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        out.push(data);
    }
    out
}

/// The MIME tree, parsed on first use (only the MIME headers: the others stay raw).
struct Mime<'r> {
    raw: &'r [u8],
    cell: OnceCell<Option<Message<'r>>>,
}

impl<'r> Mime<'r> {
    fn new(raw: &'r [u8]) -> Self {
        Mime {
            raw,
            cell: OnceCell::new(),
        }
    }

    fn get(&self) -> Option<&Message<'r>> {
        self.cell
            .get_or_init(|| MessageParser::new().with_mime_headers().parse(self.raw))
            .as_ref()
    }
}

/// `<origin.count>` of `bytes` (empty past the end, RFC 9051 §6.4.5).
fn cut(bytes: &[u8], origin: u32, count: u32) -> &[u8] {
    let start = (origin as usize).min(bytes.len());
    let end = start.saturating_add(count as usize).min(bytes.len());
    &bytes[start..end]
}

/// A node of the part tree: a message (its body is numbered from 1), one part, or a leaf
/// part reached again as its own part 1 (it has no parts below).
#[derive(Clone, Copy)]
enum Node<'m, 'r> {
    Msg(&'m Message<'r>),
    Part(&'m Message<'r>, usize),
    Leaf(&'m Message<'r>, usize),
}

/// The part numbered `n` (from 1) under `node` (RFC 9051 §6.4.5: a message's body that is not
/// multipart is its part 1; a message/rfc822 part's numbers go into its message).
fn step<'m, 'r>(node: Node<'m, 'r>, n: usize) -> Option<Node<'m, 'r>> {
    match node {
        Node::Msg(m) => match &m.parts.first()?.body {
            PartType::Multipart(ch) if !ch.is_empty() => {
                Some(Node::Part(m, *ch.get(n.checked_sub(1)?)? as usize))
            }
            _ if n == 1 => Some(Node::Part(m, 0)),
            _ => None,
        },
        Node::Part(m, idx) => match &m.parts.get(idx)?.body {
            PartType::Multipart(ch) => Some(Node::Part(m, *ch.get(n.checked_sub(1)?)? as usize)),
            PartType::Message(nested) => step(Node::Msg(nested), n),
            // A leaf in a multipart is its own part 1, once (Dovecot 2.3 answers BODY[1.1]
            // and BODY[1.1.MIME] of a text part so); a message's own body (part 0) is not.
            _ if n == 1 && idx != 0 => Some(Node::Leaf(m, idx)),
            _ => None,
        },
        Node::Leaf(..) => None,
    }
}

fn resolve<'m, 'r>(m: &'m Message<'r>, path: &[NonZeroU32]) -> Option<(&'m Message<'r>, usize)> {
    let mut node = Node::Msg(m);
    for n in path {
        node = step(node, n.get() as usize)?;
    }
    match node {
        Node::Part(m, idx) | Node::Leaf(m, idx) if idx < m.parts.len() => Some((m, idx)),
        _ => None,
    }
}

fn slice(raw: &[u8], from: u32, to: u32) -> &[u8] {
    let to = (to as usize).min(raw.len());
    let from = (from as usize).min(to);
    &raw[from..to]
}

/// A part's body as sent (still transfer-encoded).
fn part_body<'a>(m: &'a Message<'_>, idx: usize) -> &'a [u8] {
    let p = &m.parts[idx];
    slice(&m.raw_message, p.offset_body, p.offset_end)
}

/// The message inside a message/rfc822 part (decoded if it was sent encoded).
fn embedded<'a>(m: &'a Message<'_>, idx: usize) -> Option<&'a [u8]> {
    match &m.parts[idx].body {
        PartType::Message(nested) if m.parts[idx].encoding == Encoding::None => {
            Some(part_body(m, idx)).filter(|_| !nested.parts.is_empty())
        }
        PartType::Message(nested) => Some(&nested.raw_message),
        _ => None,
    }
}

/// The bytes of `BODY[section]`.
fn section_bytes<'r>(
    raw: &'r [u8],
    hl: usize,
    mime: &'r Mime<'r>,
    section: Option<&Section<'_>>,
) -> Cow<'r, [u8]> {
    let empty = Cow::Borrowed(&b""[..]);
    let Some(section) = section else {
        return Cow::Borrowed(raw);
    };
    // The header block and text of the message itself, or of the message in a part.
    let target = |part: &Option<imap_codec::imap_types::fetch::Part>| -> Option<&'r [u8]> {
        match part {
            None => Some(raw),
            Some(p) => {
                let (m, idx) = resolve(mime.get()?, p.0.as_ref())?;
                embedded(m, idx)
            }
        }
    };
    match section {
        Section::Header(part) => match part {
            None => Cow::Borrowed(&raw[..hl]),
            Some(_) => target(part).map_or(empty, |b| Cow::Borrowed(&b[..header::header_len(b)])),
        },
        Section::Text(part) => match part {
            None => Cow::Borrowed(&raw[hl..]),
            Some(_) => target(part).map_or(empty, |b| Cow::Borrowed(&b[header::header_len(b)..])),
        },
        Section::HeaderFields(part, names) | Section::HeaderFieldsNot(part, names) => {
            let keep = matches!(section, Section::HeaderFields(..));
            let Some(b) = target(part) else {
                return empty;
            };
            let names: Vec<Cow<[u8]>> = names.as_ref().iter().map(astring_bytes).collect();
            let mut out = Vec::new();
            for f in header::fields(&b[..header::header_len(b)]) {
                if names.iter().any(|n| f.is(n)) == keep {
                    out.extend_from_slice(f.all);
                }
            }
            // The blank line that ends the header; not after a last line with no line end
            // (a message that is all header), as Dovecot answers.
            if out.is_empty() || out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
            Cow::Owned(out)
        }
        Section::Part(p) => match mime.get().and_then(|m| resolve(m, p.0.as_ref())) {
            Some((m, idx)) => Cow::Borrowed(part_body(m, idx)),
            None => empty,
        },
        Section::Mime(p) => match mime.get().and_then(|m| resolve(m, p.0.as_ref())) {
            Some((m, idx)) => {
                let part = &m.parts[idx];
                Cow::Borrowed(slice(&m.raw_message, part.offset_header, part.offset_body))
            }
            None => empty,
        },
    }
}

fn astring_bytes<'a>(a: &'a imap_codec::imap_types::core::AString<'_>) -> Cow<'a, [u8]> {
    use imap_codec::imap_types::core::AString;
    match a {
        AString::Atom(atom) => Cow::Borrowed(atom.inner().as_bytes()),
        AString::String(s) => Cow::Owned(s.clone().into_inner().into_owned()),
    }
}

/// `BINARY[section]`: the part's content with its transfer encoding undone (RFC 3516). An
/// empty section is the whole message; a multipart or missing part is empty. The flag says
/// whether a transfer encoding was undone.
fn binary<'r>(raw: &'r [u8], mime: &'r Mime<'r>, section: &[NonZeroU32]) -> (Cow<'r, [u8]>, bool) {
    if section.is_empty() {
        return (Cow::Borrowed(raw), false);
    }
    let Some((m, idx)) = mime.get().and_then(|m| resolve(m, section)) else {
        return (Cow::Borrowed(b""), false);
    };
    let part = &m.parts[idx];
    let body = part_body(m, idx);
    match (&part.body, part.encoding) {
        (PartType::Multipart(_), _) => (Cow::Borrowed(b""), false),
        (_, Encoding::Base64) => (
            Cow::Owned(mail_parser::decoders::base64::base64_decode(body).unwrap_or_default()),
            true,
        ),
        (_, Encoding::QuotedPrintable) => (
            Cow::Owned(
                mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                    .unwrap_or_default(),
            ),
            true,
        ),
        (_, Encoding::None) => (Cow::Borrowed(body), false),
    }
}

/// Lines in `b`: its line ends, as Dovecot counts them (a part's last line has none: that
/// CRLF belongs to the boundary).
fn lines(b: &[u8]) -> u32 {
    memchr::memchr_iter(b'\n', b).count() as u32
}

/// A string for the wire: quoted when it can be, a literal otherwise.
pub(crate) fn istring(bytes: Vec<u8>) -> IString<'static> {
    // TEXT-CHARs are ASCII, so a valid quoted string is valid UTF-8.
    if bytes.len() < 1024 && Quoted::validate(&bytes).is_ok() {
        match String::from_utf8(bytes) {
            Ok(s) => IString::Quoted(Quoted::unvalidated(s)),
            Err(e) => IString::Literal(literal(Cow::Owned(e.into_bytes()))),
        }
    } else {
        IString::Literal(literal(Cow::Owned(bytes)))
    }
}

pub(crate) fn nstring(s: &str) -> NString<'static> {
    nstring_bytes(s.as_bytes().to_vec())
}

pub(crate) fn nstring_bytes(bytes: Vec<u8>) -> NString<'static> {
    NString(Some(istring(bytes)))
}

/// A literal; a NUL (never valid in one, RFC 9051 §4.3) becomes 0x80, as Dovecot does.
fn literal(bytes: Cow<'_, [u8]>) -> Literal<'static> {
    let mut bytes = bytes.into_owned();
    if memchr::memchr(0, &bytes).is_some() {
        for b in bytes.iter_mut().filter(|b| **b == 0) {
            *b = 0x80;
        }
    }
    Literal::unvalidated(bytes)
}

fn nliteral(bytes: &[u8]) -> NString<'static> {
    NString(Some(IString::Literal(literal(Cow::Borrowed(bytes)))))
}

/// A MIME header's raw value (unfolded), as BODYSTRUCTURE sends Content-ID and friends.
fn raw_value(m: &Message<'_>, part: &MessagePart<'_>, name: HeaderName<'_>) -> Option<Vec<u8>> {
    let h = part.headers.iter().find(|h| h.name == name)?;
    Some(header::unfold(slice(
        &m.raw_message,
        h.offset_start,
        h.offset_end,
    )))
}

fn raw_nstring(m: &Message<'_>, part: &MessagePart<'_>, name: HeaderName<'_>) -> NString<'static> {
    raw_value(m, part, name).map_or(NString(None), nstring_bytes)
}

/// A header's parameters. mail-parser joins RFC 2231 continuations and decodes charsets; a
/// value that is not ASCII goes back out in RFC 2231 form (`name*` = `utf-8''%E2%82%AC`), as
/// Dovecot sends it, so clients get ASCII as they expect and decode it themselves.
fn params(
    attrs: Option<&Vec<mail_parser::Attribute<'_>>>,
) -> Vec<(IString<'static>, IString<'static>)> {
    attrs
        .map(|list| {
            list.iter()
                .map(|a| {
                    if a.value.is_ascii() {
                        (
                            istring(a.name.as_bytes().to_vec()),
                            istring(a.value.as_bytes().to_vec()),
                        )
                    } else {
                        let mut v = b"utf-8''".to_vec();
                        for &b in a.value.as_bytes() {
                            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                                v.push(b);
                            } else {
                                v.extend_from_slice(format!("%{b:02X}").as_bytes());
                            }
                        }
                        (istring(format!("{}*", a.name).into_bytes()), istring(v))
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Content-Disposition, Content-Language and Content-Location: the tail both extension data
/// share.
fn disposition(m: &Message<'_>, part: &MessagePart<'_>) -> Disposition<'static> {
    let disposition = part.headers.iter().find_map(|h| match (&h.name, &h.value) {
        (HeaderName::ContentDisposition, HeaderValue::ContentType(ct)) => Some((
            istring(ct.c_type.as_bytes().to_vec()),
            params(ct.attributes.as_ref()),
        )),
        _ => None,
    });
    let language = raw_value(m, part, HeaderName::ContentLanguage)
        .map(|v| {
            v.split(|&b| b == b',')
                .map(header::unfold)
                .filter(|l| !l.is_empty())
                .map(istring)
                .collect()
        })
        .unwrap_or_default();
    Disposition {
        disposition,
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: raw_nstring(m, part, HeaderName::ContentLocation),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// Deeper than this a part is shown as opaque (a hostile message could nest thousands).
const MAX_DEPTH: usize = 64;

/// BODYSTRUCTURE (`ext`) or BODY of part `idx` of `m` (RFC 9051 §7.5.2).
fn structure(m: &Message<'_>, idx: usize, ext: bool, depth: usize) -> BodyStructure<'static> {
    let part = &m.parts[idx];
    let ct = part.headers.iter().find_map(|h| match (&h.name, &h.value) {
        (HeaderName::ContentType, HeaderValue::ContentType(ct)) => Some(ct),
        _ => None,
    });
    // The type and subtype as the message wrote them (mail-parser lower-cases the subtype).
    let written = raw_value(m, part, HeaderName::ContentType).and_then(|v| {
        let v = String::from_utf8(v).ok()?;
        let essence = v.split(';').next()?.trim();
        let (t, s) = essence.split_once('/')?;
        Some((t.trim().to_owned(), s.trim().to_owned()))
    });
    if let PartType::Multipart(children) = &part.body
        && depth < MAX_DEPTH
    {
        let bodies: Vec<_> = children
            .iter()
            .filter(|&&c| (c as usize) < m.parts.len() && c as usize != idx)
            .map(|&c| structure(m, c as usize, ext, depth + 1))
            .collect();
        if let Ok(bodies) = Vec1::try_from(bodies) {
            let subtype = written
                .as_ref()
                .map(|(_, s)| s.as_str())
                .or(ct.and_then(|c| c.c_subtype.as_deref()))
                .unwrap_or("mixed");
            return BodyStructure::Multi {
                bodies,
                subtype: istring(subtype.as_bytes().to_vec()),
                extension_data: ext.then(|| MultiPartExtensionData {
                    parameter_list: params(ct.and_then(|c| c.attributes.as_ref())),
                    tail: Some(disposition(m, part)),
                }),
            };
        }
    }
    let (ty, sub) = match (ct, &written) {
        (Some(c), Some((t, s))) if c.c_type.eq_ignore_ascii_case(t) => (t.as_str(), s.as_str()),
        (Some(c), _) => (
            c.c_type.as_ref(),
            c.c_subtype
                .as_deref()
                .unwrap_or(if c.c_type.eq_ignore_ascii_case("text") {
                    "plain"
                } else {
                    ""
                }),
        ),
        (None, _) => ("text", "plain"),
    };
    let (ty, sub) = if ty.eq_ignore_ascii_case("multipart") {
        ("text", "plain")
    } else {
        (ty, sub)
    };
    let parameter_list = match ct {
        Some(c) if c.attributes.is_some() && !c.c_type.eq_ignore_ascii_case("multipart") => {
            params(c.attributes.as_ref())
        }
        // A text part without parameters is us-ascii (RFC 2045 §5.2); Dovecot says so.
        _ if ty.eq_ignore_ascii_case("text") => {
            vec![(istring(b"charset".to_vec()), istring(b"us-ascii".to_vec()))]
        }
        _ => Vec::new(),
    };
    let body = part_body(m, idx);
    let basic = BasicFields {
        parameter_list,
        id: raw_nstring(m, part, HeaderName::ContentId),
        description: raw_nstring(m, part, HeaderName::ContentDescription),
        content_transfer_encoding: istring(
            raw_value(m, part, HeaderName::ContentTransferEncoding)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| b"7bit".to_vec()),
        ),
        size: body.len() as u32,
    };
    let specific = match &part.body {
        PartType::Message(nested)
            if ty.eq_ignore_ascii_case("message")
                && !nested.parts.is_empty()
                && depth < MAX_DEPTH =>
        {
            let inner = embedded(m, idx).unwrap_or(&[]);
            SpecificFields::Message {
                envelope: Box::new(envelope::envelope(&inner[..header::header_len(inner)])),
                body_structure: Box::new(structure(nested, 0, ext, depth + 1)),
                number_of_lines: lines(body),
            }
        }
        _ if ty.eq_ignore_ascii_case("text") => SpecificFields::Text {
            subtype: istring(sub.as_bytes().to_vec()),
            number_of_lines: lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: istring(ty.as_bytes().to_vec()),
            subtype: istring(sub.as_bytes().to_vec()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: ext.then(|| SinglePartExtensionData {
            md5: raw_nstring(m, part, HeaderName::ContentMd5),
            tail: Some(disposition(m, part)),
        }),
    }
}

/// The structure of a message mail-parser gave up on (no header at all): one text/plain part
/// of `body`.
fn empty_structure(body: &[u8], ext: bool) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istring(b"charset".to_vec()), istring(b"us-ascii".to_vec()))],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istring(b"7bit".to_vec()),
                size: body.len() as u32,
            },
            specific: SpecificFields::Text {
                subtype: istring(b"plain".to_vec()),
                number_of_lines: lines(body),
            },
        },
        extension_data: ext.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(Disposition {
                disposition: None,
                tail: Some(Language {
                    language: Vec::new(),
                    tail: Some(Location {
                        location: NString(None),
                        extensions: Vec::new(),
                    }),
                }),
            }),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use imap_codec::ResponseCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::response::{Data, Response};

    /// RFC 9051 §7.5.2's example message (its header; a short body).
    pub const PLAIN: &[u8] = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n\
Second line.\r\n";

    pub fn date() -> DateTime {
        let d = chrono::DateTime::parse_from_rfc3339("1996-07-17T02:44:25-07:00").unwrap();
        DateTime::try_from(d).unwrap()
    }

    pub fn view<'a>(raw: &'a [u8], flags: &'a [Flag<'static>]) -> MessageView<'a> {
        MessageView {
            seq: NonZeroU32::new(12).unwrap(),
            uid: NonZeroU32::new(300).unwrap(),
            flags,
            internal_date: date(),
            size: raw.len() as u32,
            raw,
        }
    }

    /// The item names of `FETCH 1 <items>` as imap-codec parses them.
    fn names_of(items: &str) -> Vec<MessageDataItemName<'static>> {
        let cmd = format!("a FETCH 1 {items}\r\n");
        let (_, parsed) = imap_codec::CommandCodec::default()
            .decode(cmd.as_bytes())
            .unwrap();
        let imap_codec::imap_types::command::CommandBody::Fetch {
            macro_or_item_names,
            ..
        } = parsed.body
        else {
            panic!("not a FETCH")
        };
        match macro_or_item_names {
            imap_codec::imap_types::fetch::MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().iter().map(|n| n.to_static()).collect()
            }
            imap_codec::imap_types::fetch::MacroOrMessageDataItemNames::MessageDataItemNames(n) => {
                n.iter().map(|n| n.to_static()).collect()
            }
        }
    }

    /// The untagged FETCH response as it goes on the wire.
    fn wire(msg: &MessageView, items: &str) -> String {
        let items = fetch(msg, &names_of(items));
        let resp = Response::Data(Data::Fetch {
            seq: msg.seq,
            items: Vec1::try_from(items).unwrap(),
        });
        String::from_utf8_lossy(&ResponseCodec::default().encode(&resp).dump()).into_owned()
    }

    /// multipart/alternative: quoted-printable text and HTML.
    pub const ALTERNATIVE: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.net>\r\n\
Subject: Lunch\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <alt@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 at noon?\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Caf\xc3\xa9 at <b>noon</b>?</p>\r\n\
--b1--\r\n";

    /// multipart/mixed: text and a PDF attachment with every MIME field.
    pub const MIXED: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: bob@example.net\r\n\
Subject: The report\r\n\
Date: Tue, 1 Dec 2026 11:00:00 +0000\r\n\
Content-Type: multipart/mixed; boundary=XyZ\r\n\
\r\n\
--XyZ\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
\r\n\
--XyZ\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-ID: <pdf1@example.org>\r\n\
Content-Description: The report\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-Language: en, de\r\n\
Content-Location: http://example.org/r.pdf\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--XyZ--\r\n";

    /// A forward: text and a message/rfc822 part.
    pub const FORWARD: &[u8] = b"From: Carol <carol@example.com>\r\n\
To: Alice <alice@example.org>\r\n\
Subject: Fwd: Lunch\r\n\
Date: Wed, 2 Dec 2026 09:00:00 -0500\r\n\
Content-Type: multipart/mixed; boundary=\"fw\"\r\n\
\r\n\
--fw\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Forwarding this.\r\n\
--fw\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Dave <dave@example.net>\r\n\
Subject: Inner\r\n\
Message-ID: <inner@example.net>\r\n\
\r\n\
Inner body.\r\n\
--fw--\r\n";

    /// A forward of a multipart/alternative message, beside text and an image with RFC 2231
    /// parameters (a charset-encoded name, a continued filename).
    pub const NESTED: &[u8] = b"From: a@b.example\r\n\
Subject: nested\r\n\
Content-Type: multipart/mixed; boundary=\"out\"\r\n\
\r\n\
preamble\r\n\
--out\r\n\
Content-Type: text/plain\r\n\
\r\n\
Top text.\r\n\
\r\n\
--out\r\n\
Content-Type: message/rfc822\r\n\
Content-Description: forwarded\r\n\
Content-Disposition: inline\r\n\
\r\n\
From: Eve <eve@example.com>\r\n\
To: Frank <frank@example.com>\r\n\
Subject: =?utf-8?B?SW5uZXIgw6k=?=\r\n\
Date: Mon, 30 Nov 2026 12:00:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"in\"\r\n\
\r\n\
--in\r\n\
Content-Type: text/plain; charset=\"iso-8859-1\"\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Hello there\r\n\
second\r\n\
--in\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>Hi</b>\r\n\
--in--\r\n\
\r\n\
--out\r\n\
Content-Type: image/png; name*=utf-8''%E2%82%AC.png\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename*0=\"long\"; filename*1=\"name.png\"\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--out--\r\n\
epilogue\r\n\
";

    /// RFC 2047 words in Subject and names, and groups.
    pub const ENCODED: &[u8] = b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.org>\r\n\
To: undisclosed-recipients:;\r\n\
Cc: Team: ann@example.org, \"Smith, Bob\" <bob@example.org>;, eve@example.org (Eve E)\r\n\
Subject: =?utf-8?q?Caf=C3=A9?= =?utf-8?b?w6k=?=\r\n\
Date: Thu, 3 Dec 2026 08:00:00 +0000\r\n\
\r\n\
Body.\r\n";

    /// No Date:, no From:, no MIME header.
    pub const BARE: &[u8] = b"Subject: \r\n\r\nJust text\r\n";

    fn expect(raw: &[u8], items: &str, want: &str) {
        let flags = [Flag::Seen, Flag::Keyword("$Forwarded".try_into().unwrap())];
        let got = wire(&view(raw, &flags), items);
        assert_eq!(got, format!("* 12 FETCH ({want})\r\n"), "FETCH {items}");
    }

    #[test]
    fn nested_multipart_in_a_forward_with_rfc_2231_parameters() {
        // As Dovecot 2.3 answers, but for the case of the type names (imap-codec writes
        // TEXT and MESSAGE RFC822 in capitals; clients compare without case).
        expect(
            NESTED,
            "BODYSTRUCTURE",
            "BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1 NIL NIL NIL NIL)\
(\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7bit\" 369 (\"Mon, 30 Nov 2026 12:00:00 +0100\" \
\"=?utf-8?B?SW5uZXIgw6k=?=\" ((\"Eve\" NIL \"eve\" \"example.com\")) ((\"Eve\" NIL \"eve\" \"example.com\")) \
((\"Eve\" NIL \"eve\" \"example.com\")) ((\"Frank\" NIL \"frank\" \"example.com\")) NIL NIL NIL NIL) \
((\"TEXT\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"8bit\" 19 1 NIL NIL NIL NIL)\
(\"TEXT\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL NIL NIL NIL) \"alternative\" \
(\"boundary\" \"in\") NIL NIL NIL) 18 NIL (\"inline\" NIL) NIL NIL)\
(\"image\" \"png\" (\"name*\" \"utf-8''%E2%82%AC.png\") NIL NIL \"base64\" 12 NIL \
(\"attachment\" (\"filename\" \"longname.png\")) NIL NIL) \"mixed\" (\"boundary\" \"out\") NIL NIL NIL)",
        );
        expect(
            NESTED,
            "(BODY.PEEK[2.1] BODY.PEEK[2.2] BODY.PEEK[2.1.1] BINARY.PEEK[3] BODY.PEEK[2.HEADER.FIELDS (Subject)])",
            "BODY[2.1] {19}\r\nHello there\r\nsecond BODY[2.2] {9}\r\n<b>Hi</b> \
BODY[2.1.1] {19}\r\nHello there\r\nsecond BINARY[3] ~{8}\r\n\u{fffd}PNG\r\n\u{1a}\n \
BODY[2.HEADER.FIELDS (Subject)] {37}\r\nSubject: =?utf-8?B?SW5uZXIgw6k=?=\r\n\r\n",
        );
    }

    #[test]
    fn hostile_messages_do_not_panic() {
        // Deep nesting of both kinds, junk, and truncations of every sample at every length.
        let mut deep = Vec::new();
        for i in 0..2000 {
            deep.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        deep.extend_from_slice(b"\r\nleaf\r\n");
        let mut fwd = Vec::new();
        for _ in 0..2000 {
            fwd.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        fwd.extend_from_slice(b"Subject: leaf\r\n\r\nleaf\r\n");
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let items = "(ENVELOPE BODYSTRUCTURE BODY[1.1.1.1] BODY[1.MIME] BODY[1.HEADER] \
BODY[1.TEXT] BINARY[1.1] BINARY.SIZE[1] BODY[HEADER.FIELDS (From)] RFC822.TEXT)";
        let flags = [];
        for raw in [&deep[..], &fwd[..], &junk[..]] {
            wire(&view(raw, &flags), items);
        }
        for sample in [PLAIN, ALTERNATIVE, MIXED, FORWARD, NESTED, ENCODED, BARE] {
            for end in 0..sample.len() {
                wire(&view(&sample[..end], &flags), items);
            }
        }
    }

    #[test]
    fn plain_message_as_in_rfc_9051() {
        // RFC 9051 §7.5.2's example response, but for our shorter body; the address list
        // has no blank between addresses, as the grammar (and Dovecot) has it.
        expect(
            PLAIN,
            "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY UID)",
            "FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 411 \
ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((NIL NIL \"imap\" \"cac.washington.edu\")) \
((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
NIL NIL \"<B27397-0100000@cac.washington.edu>\") \
BODY (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 69 2) UID 300",
        );
        expect(
            PLAIN,
            "BODYSTRUCTURE",
            "BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 69 2 NIL NIL NIL NIL)",
        );
    }

    #[test]
    fn alternative_parts_and_their_sizes() {
        // The part sizes stop before the CRLF that belongs to the boundary (RFC 2046 §5.1.1).
        expect(
            ALTERNATIVE,
            "BODYSTRUCTURE",
            "BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 18 0 NIL NIL NIL NIL)\
(\"TEXT\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 28 0 NIL NIL NIL NIL) \
\"alternative\" (\"boundary\" \"b1\") NIL NIL NIL)",
        );
        expect(
            ALTERNATIVE,
            "BODY",
            "BODY ((\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 18 0)\
(\"TEXT\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 28 0) \"alternative\")",
        );
        // BINARY undoes the transfer encoding; BODY does not.
        expect(
            ALTERNATIVE,
            "(BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])",
            "BINARY[1] ~{14}\r\nCaf\u{e9} at noon? BINARY.SIZE[1] 14 BODY[1] {18}\r\nCaf=C3=A9 at noon?",
        );
    }

    #[test]
    fn attachment_with_every_mime_field() {
        expect(
            MIXED,
            "BODYSTRUCTURE",
            "BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 15 1 NIL NIL NIL NIL)\
(\"application\" \"pdf\" (\"name\" \"r.pdf\") \"<pdf1@example.org>\" \"The report\" \"base64\" 12 \
\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"r.pdf\")) (\"en\" \"de\") \
\"http://example.org/r.pdf\") \"mixed\" (\"boundary\" \"XyZ\") NIL NIL NIL)",
        );
        expect(
            MIXED,
            "(BINARY[2] BINARY.SIZE[2] BODY[2] BODY[1])",
            "BINARY[2] ~{9}\r\n%PDF-1.4\n BINARY.SIZE[2] 9 BODY[2] {12}\r\nJVBERi0xLjQK \
BODY[1] {15}\r\nSee attached.\r\n",
        );
    }

    #[test]
    fn forwarded_message_and_its_sections() {
        expect(
            FORWARD,
            "BODYSTRUCTURE",
            "BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 16 0 NIL NIL NIL NIL)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 93 \
(NIL \"Inner\" ((\"Dave\" NIL \"dave\" \"example.net\")) ((\"Dave\" NIL \"dave\" \"example.net\")) \
((\"Dave\" NIL \"dave\" \"example.net\")) NIL NIL NIL NIL \"<inner@example.net>\") \
(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) \
\"mixed\" (\"boundary\" \"fw\") NIL NIL NIL)",
        );
        expect(
            FORWARD,
            "(BODY.PEEK[1] BODY[2] BODY[2.HEADER] BODY[2.TEXT] BODY[2.1] BODY[2.MIME] BODY[1.MIME])",
            "BODY[1] {16}\r\nForwarding this. \
BODY[2] {93}\r\nFrom: Dave <dave@example.net>\r\nSubject: Inner\r\nMessage-ID: <inner@example.net>\r\n\r\nInner body. \
BODY[2.HEADER] {82}\r\nFrom: Dave <dave@example.net>\r\nSubject: Inner\r\nMessage-ID: <inner@example.net>\r\n\r\n \
BODY[2.TEXT] {11}\r\nInner body. BODY[2.1] {11}\r\nInner body. \
BODY[2.MIME] {32}\r\nContent-Type: message/rfc822\r\n\r\n \
BODY[1.MIME] {46}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
        );
        // Parts that do not exist are empty strings; a leaf in a multipart is its own part 1
        // (once), as Dovecot 2.3 answers.
        expect(
            FORWARD,
            "(BODY[3] BODY[2.2] BODY[1.1] BODY[1.1.1] BODY[1.1.MIME] BODY[2.1.1] BODY[1.HEADER])",
            "BODY[3] {0}\r\n BODY[2.2] {0}\r\n BODY[1.1] {16}\r\nForwarding this. BODY[1.1.1] {0}\r\n \
BODY[1.1.MIME] {46}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n BODY[2.1.1] {0}\r\n \
BODY[1.HEADER] {0}\r\n",
        );
    }

    #[test]
    fn header_fields_and_partial_fetches() {
        // Case-insensitive names, the message's order, the blank line at the end.
        expect(
            FORWARD,
            "(BODY.PEEK[HEADER.FIELDS (subject FROM)] BODY.PEEK[HEADER.FIELDS.NOT (Content-Type Date From To)] \
BODY[2.HEADER.FIELDS (SUBJECT)])",
            "BODY[HEADER.FIELDS (subject FROM)] {56}\r\nFrom: Carol <carol@example.com>\r\nSubject: Fwd: Lunch\r\n\r\n \
BODY[HEADER.FIELDS.NOT (Content-Type Date From To)] {23}\r\nSubject: Fwd: Lunch\r\n\r\n \
BODY[2.HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: Inner\r\n\r\n",
        );
        // <origin.count> comes back as <origin>; past the end it is empty.
        expect(
            FORWARD,
            "(BODY[]<0.10> BODY[TEXT]<5.3> BODY.PEEK[TEXT]<5000.3>)",
            "BODY[]<0> {10}\r\nFrom: Caro BODY[TEXT]<5> {3}\r\n\nCo BODY[TEXT]<5000> {0}\r\n",
        );
        // A folded field keeps its continuation lines.
        let folded = b"Subject: one\r\n two\r\nX-A: 1\r\n\r\nb\r\n";
        expect(
            folded,
            "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
            "BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: one\r\n two\r\n\r\n",
        );
    }

    #[test]
    fn rfc822_forms() {
        expect(
            BARE,
            "(RFC822 RFC822.HEADER RFC822.TEXT BODY[HEADER] BODY[HEADER.FIELDS (FROM)] BODY[1])",
            "RFC822 {24}\r\nSubject: \r\n\r\nJust text\r\n RFC822.HEADER {13}\r\nSubject: \r\n\r\n \
RFC822.TEXT {11}\r\nJust text\r\n BODY[HEADER] {13}\r\nSubject: \r\n\r\n \
BODY[HEADER.FIELDS (FROM)] {2}\r\n\r\n BODY[1] {11}\r\nJust text\r\n",
        );
    }

    #[test]
    fn encoded_words_stay_encoded_and_groups() {
        expect(
            ENCODED,
            "ENVELOPE",
            "ENVELOPE (\"Thu, 3 Dec 2026 08:00:00 +0000\" \"=?utf-8?q?Caf=C3=A9?= =?utf-8?b?w6k=?=\" \
((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.org\")) \
((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.org\")) \
((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.org\")) \
((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
((NIL NIL \"Team\" NIL)(NIL NIL \"ann\" \"example.org\")(\"Smith, Bob\" NIL \"bob\" \"example.org\")\
(NIL NIL NIL NIL)(\"Eve E\" NIL \"eve\" \"example.org\")) NIL NIL NIL)",
        );
    }

    #[test]
    fn message_without_date_or_from() {
        // Absent fields are NIL; a present but empty Subject is "".
        expect(
            BARE,
            "(ENVELOPE BODYSTRUCTURE)",
            "ENVELOPE (NIL \"\" NIL NIL NIL NIL NIL NIL NIL NIL) \
BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1 NIL NIL NIL NIL)",
        );
        // Not even a header: all body.
        expect(
            b"no header at all",
            "(ENVELOPE BODY[HEADER] BODY[TEXT] BODY[1] BODY BODY[HEADER.FIELDS.NOT (From)] \
BODY[HEADER.FIELDS (From)])",
            "ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODY[HEADER] {16}\r\nno header at all BODY[TEXT] {0}\r\n \
BODY[1] {0}\r\n BODY (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \
BODY[HEADER.FIELDS.NOT (From)] {16}\r\nno header at all BODY[HEADER.FIELDS (From)] {2}\r\n\r\n",
        );
    }

    #[test]
    fn route_addresses_quoted_names_and_bare_local_parts() {
        let raw =
            b"From: \"Doe, J. \\\"Jr\\\"\" <@relay.example:jd@example.org>\r\nTo: root\r\n\r\n";
        expect(
            raw,
            "ENVELOPE",
            "ENVELOPE (NIL NIL ((\"Doe, J. \\\"Jr\\\"\" \"@relay.example\" \"jd\" \"example.org\")) \
((\"Doe, J. \\\"Jr\\\"\" \"@relay.example\" \"jd\" \"example.org\")) \
((\"Doe, J. \\\"Jr\\\"\" \"@relay.example\" \"jd\" \"example.org\")) \
((NIL NIL \"root\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)",
        );
        // Only a comment after the address names it.
        let from = "((NIL NIL \"c\" \"example.org\")(\"Dee\" NIL \"d\" \"example.org\"))";
        expect(
            b"From: (comment only) c@example.org, d@example.org (Dee)\r\n\r\n",
            "ENVELOPE",
            &format!("ENVELOPE (NIL NIL {from} {from} {from} NIL NIL NIL NIL NIL)"),
        );
    }

    #[test]
    fn a_nul_never_reaches_a_literal() {
        let raw = b"Subject: x\r\n\r\na\0b\r\n";
        let flags = [];
        let items = fetch(
            &view(raw, &flags),
            &[MessageDataItemName::BodyExt {
                section: Some(Section::Text(None)),
                partial: None,
                peek: false,
            }],
        );
        let resp = Response::Data(Data::Fetch {
            seq: NonZeroU32::MIN,
            items: Vec1::try_from(items).unwrap(),
        });
        let out = ResponseCodec::default().encode(&resp).dump();
        assert_eq!(out, b"* 1 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n)\r\n");
    }

    #[test]
    fn a_header_fetch_answers_from_the_header_alone() {
        let names = "(UID RFC822.SIZE FLAGS ENVELOPE RFC822.HEADER \
BODY.PEEK[HEADER.FIELDS (From Subject)] BODY.PEEK[HEADER.FIELDS.NOT (To)] BODY.PEEK[HEADER])";
        assert!(header_only(&names_of(names)));
        for other in [
            "BODY.PEEK[TEXT]",
            "BODYSTRUCTURE",
            "BODY[1.HEADER]",
            "RFC822",
            "BODY[]",
        ] {
            assert!(!header_only(&names_of(other)), "{other}");
        }
        let hl = header::complete_header_len(FORWARD).unwrap();
        assert_eq!(header::complete_header_len(&FORWARD[..hl - 1]), None);
        let flags = [Flag::Seen];
        let mut short = view(&FORWARD[..hl], &flags);
        short.size = FORWARD.len() as u32;
        assert_eq!(wire(&short, names), wire(&view(FORWARD, &flags), names));
    }

    #[test]
    fn only_metadata_needs_no_body() {
        use MessageDataItemName as N;
        assert!(!needs_body(&[
            N::Flags,
            N::Uid,
            N::Rfc822Size,
            N::InternalDate
        ]));
        assert!(needs_body(&[N::Flags, N::Envelope]));
        assert!(needs_body(&[N::BodyExt {
            section: None,
            partial: None,
            peek: true
        }]));
        // Without the bytes, the metadata still answers.
        let flags = [Flag::Deleted];
        let mut m = view(b"", &flags);
        m.size = 4286;
        assert_eq!(
            wire(&m, "(FLAGS RFC822.SIZE UID)"),
            "* 12 FETCH (FLAGS (\\Deleted) RFC822.SIZE 4286 UID 300)\r\n"
        );
    }
}
