//! ENVELOPE (RFC 9051 §7.5.2) from a raw header block. Strings go out as the message sent
//! them: RFC 2047 encoded words stay encoded (the client decodes), folded lines are unfolded.
//! mail-parser decodes the words it meets in addresses, so address lists are tokenised here
//! (RFC 5322 §3.4: phrases, quoted strings, comments, angle addresses, groups), the way
//! Dovecot's `message-address.c` keeps them raw.

use super::header;
use super::{nstring, nstring_bytes};
use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

/// What Dovecot puts where an address has no domain or no local part: RFC 9051's NIL host
/// means "group syntax", so an empty one must not be NIL.
const MISSING_DOMAIN: &str = "MISSING_DOMAIN";
const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

/// The envelope of the message whose header block is `header`.
pub fn envelope(header: &[u8]) -> Envelope<'static> {
    let text = |name: &[u8]| match header::first(header, name) {
        Some(f) => nstring_bytes(header::unfold(f.value)),
        None => NString(None),
    };
    let addresses = |name: &[u8]| match header::first(header, name) {
        Some(f) => address_list(&header::unfold(f.value)),
        None => Vec::new(),
    };
    let from = addresses(b"From");
    let mut sender = addresses(b"Sender");
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addresses(b"Reply-To");
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: text(b"Date"),
        subject: text(b"Subject"),
        from,
        sender,
        reply_to,
        to: addresses(b"To"),
        cc: addresses(b"Cc"),
        bcc: addresses(b"Bcc"),
        in_reply_to: text(b"In-Reply-To"),
        message_id: text(b"Message-ID"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An atom (dots and encoded words included), as written.
    Atom(Vec<u8>),
    /// A quoted string's content, unescaped.
    Quoted(Vec<u8>),
    /// A comment's content.
    Comment(Vec<u8>),
    /// One of `<>@,;:`.
    Special(u8),
}

fn tokenize(v: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    s.push(v[i]);
                    i += 1;
                }
                i += 1;
                out.push(Token::Quoted(s));
            }
            b'(' => {
                let mut depth = 0usize;
                let mut s = Vec::new();
                while i < v.len() {
                    match v[i] {
                        b'\\' if i + 1 < v.len() => {
                            i += 1;
                            s.push(v[i]);
                        }
                        b'(' => {
                            if depth > 0 {
                                s.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            s.push(b')');
                        }
                        b => s.push(b),
                    }
                    i += 1;
                }
                out.push(Token::Comment(s));
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                out.push(Token::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len()
                    && !matches!(
                        v[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'"'
                            | b'('
                            | b')'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                    )
                {
                    i += 1;
                }
                if i == start {
                    // A stray `)`.
                    i += 1;
                    continue;
                }
                out.push(Token::Atom(v[start..i].to_vec()));
            }
        }
    }
    out
}

/// One address: the phrase (display name), the route, local part and domain.
fn address(name: Option<Vec<u8>>, adl: Option<Vec<u8>>, spec: &[Token]) -> Address<'static> {
    // The spec's words, joined without blanks: `local@domain`.
    let mut local = Vec::new();
    let mut domain: Option<Vec<u8>> = None;
    for t in spec {
        if *t == Token::Special(b'@') && domain.is_none() {
            domain = Some(Vec::new());
            continue;
        }
        let target = match domain.as_mut() {
            Some(d) => d,
            None => &mut local,
        };
        match t {
            Token::Atom(a) | Token::Quoted(a) => target.extend_from_slice(a),
            Token::Special(c) => target.push(*c),
            Token::Comment(_) => {}
        }
    }
    let mailbox = if local.is_empty() {
        nstring(MISSING_MAILBOX)
    } else {
        nstring_bytes(local)
    };
    let host = match domain {
        Some(d) if !d.is_empty() => nstring_bytes(d),
        _ => nstring(MISSING_DOMAIN),
    };
    Address {
        name: name.map_or(NString(None), nstring_bytes),
        adl: adl.map_or(NString(None), nstring_bytes),
        mailbox,
        host,
    }
}

fn phrase(words: &[Token]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for t in words {
        if let Token::Atom(w) | Token::Quoted(w) = t {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(w);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A mailbox without angle brackets: its comment, if any, is the name (as Dovecot does).
fn bare(tokens: &[Token]) -> Option<Address<'static>> {
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Atom(_) | Token::Quoted(_)))
    {
        return None;
    }
    // Only a comment after the address names it (`eve@example.org (Eve E)`), as Dovecot reads it.
    let name = tokens
        .iter()
        .rev()
        .take_while(|t| matches!(t, Token::Comment(_)))
        .filter_map(|t| match t {
            Token::Comment(c) if !c.is_empty() => Some(c.clone()),
            _ => None,
        })
        .last();
    Some(address(name, None, tokens))
}

/// A mailbox: `phrase <route:local@domain>` or a bare `local@domain`.
fn mailbox(tokens: &[Token]) -> Option<Address<'static>> {
    let Some(open) = tokens.iter().position(|t| *t == Token::Special(b'<')) else {
        return bare(tokens);
    };
    let close = tokens[open..]
        .iter()
        .position(|t| *t == Token::Special(b'>'))
        .map_or(tokens.len(), |i| open + i);
    let mut inner = &tokens[open + 1..close];
    let mut adl = None;
    if let Some(colon) = inner.iter().position(|t| *t == Token::Special(b':')) {
        let mut route = Vec::new();
        for t in &inner[..colon] {
            match t {
                Token::Atom(a) => route.extend_from_slice(a),
                Token::Special(c) => route.push(*c),
                _ => {}
            }
        }
        adl = Some(route);
        inner = &inner[colon + 1..];
    }
    if inner.is_empty() {
        return None;
    }
    Some(address(phrase(&tokens[..open]), adl, inner))
}

/// An address list with groups (RFC 9051: a group is `(NIL NIL "name" NIL)`, its members,
/// then `(NIL NIL NIL NIL)`).
pub fn address_list(value: &[u8]) -> Vec<Address<'static>> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_group = false;
    let mut in_angle = false;
    let mut i = 0;
    while i <= tokens.len() {
        let t = tokens.get(i);
        match t {
            Some(Token::Special(b'<')) => in_angle = true,
            Some(Token::Special(b'>')) => in_angle = false,
            Some(Token::Special(b':')) if !in_angle && !in_group => {
                let name = phrase(&tokens[start..i]).unwrap_or_default();
                out.push(Address {
                    name: NString(None),
                    adl: NString(None),
                    mailbox: nstring_bytes(name),
                    host: NString(None),
                });
                in_group = true;
                start = i + 1;
            }
            Some(Token::Special(b',')) | None if !in_angle || t.is_none() => {
                out.extend(mailbox(&tokens[start..i]));
                start = i + 1;
                if t.is_none() && in_group {
                    out.push(group_end());
                }
            }
            Some(Token::Special(b';')) if !in_angle && in_group => {
                out.extend(mailbox(&tokens[start..i]));
                out.push(group_end());
                in_group = false;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn group_end() -> Address<'static> {
    Address {
        name: NString(None),
        adl: NString(None),
        mailbox: NString(None),
        host: NString(None),
    }
}
