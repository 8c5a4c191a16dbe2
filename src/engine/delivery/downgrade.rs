//! 8-bit MIME to 7-bit for a next hop without 8BITMIME (RFC 6152 3, as Postfix does).
//!
//! A message with octets above 127 must not be sent to a server that does not offer 8BITMIME.
//! Its MIME parts whose body holds such octets are converted to quoted-printable (RFC 2045
//! 6.7) on the way out; everything else passes unchanged. The conversion streams: it is a
//! line-oriented state machine over the message (header section, body; `multipart/*` by the
//! boundaries of their `Content-Type`, nested ones and `message/rfc822` included), run twice
//! over the body read in chunks. The first pass ([`Scanner`]) records, per MIME entity, what is
//! to be done ([`Plan`]); the second ([`Downgrader`]) writes the converted message, because a
//! part's `Content-Transfer-Encoding` field precedes the body that decides it. Memory is bounded:
//! lines are handled in pieces of at most 8 KiB, a header field keeps at most 8 KiB of its
//! value for parsing, nesting stops at 64 levels; only the plan (one octet per entity) grows
//! with the message.
//!
//! What is done, per entity:
//! - a leaf part with 8-bit octets in its body and transfer encoding `7bit`, `8bit` or none
//!   gets `Content-Transfer-Encoding: quoted-printable` (its old field is dropped) and a
//!   quoted-printable body: `=XX` for 8-bit octets, controls and `=`, whitespace before a line
//!   end encoded, soft line breaks keep lines at 76 characters, line ends stay hard breaks. A
//!   top-level message without `MIME-Version` gets `MIME-Version: 1.0`;
//! - a `multipart/*` or `message/rfc822` entity labelled `8bit` or `binary` with a part
//!   recoded inside is relabelled `7bit` (RFC 2046 allows no other encoding there);
//! - a part that cannot be converted faithfully makes the whole message unconvertible
//!   ([`Unconvertible`], the caller fails it with 5.6.3): 8-bit octets under `binary` (the
//!   DATA transfer cannot carry its exact line ends), raw 8-bit octets under `base64`,
//!   `quoted-printable` or an unknown encoding, a `message/*` type other than `rfc822` and
//!   `global`, or a multipart without boundary or nested too deep.
//!
//! Left alone, as Postfix does: raw 8-bit octets in header fields (not RFC 2047 encoded) and
//! in the preamble and epilogue of a multipart; no MIME transfer encoding can carry them.
//! Line ends are the same as [`super::data::Encoder`]'s (CR, LF and CRLF each end a line) and
//! are written as CRLF; a boundary line longer than 8 KiB is not recognised.

use crate::engine::store::body::Body;
use std::io;

/// The longest piece of a line handled at once; a longer line comes in several pieces.
const MAX_PIECE: usize = 8 * 1024;
/// The most of a header field's value kept for parsing.
const MAX_FIELD: usize = 8 * 1024;
/// The deepest nesting of multiparts and messages followed.
const MAX_DEPTH: usize = 64;
/// Quoted-printable characters per line before the `=` of a soft line break (RFC 2045 6.7 (5)).
const QP_WIDTH: usize = 75;

/// Why a message cannot be converted to 7 bits; the text says which part and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unconvertible(pub String);

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The message could not be read from its spool segment or spill file.
    #[error("cannot read the message: {0}")]
    Read(#[from] io::Error),
    /// The message cannot be converted.
    #[error(transparent)]
    Unconvertible(#[from] Unconvertible),
}

/// What the second pass does with one MIME entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Passed unchanged.
    Keep,
    /// Body encoded in quoted-printable, transfer encoding field replaced.
    Recode,
    /// Transfer encoding field replaced by `7bit` (a composite entity).
    Relabel,
}

/// The first pass's result: one action per MIME entity, in the order their headers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Indexed by entity number.
    actions: Vec<Action>,
}

impl Plan {
    /// Whether anything is converted at all.
    pub fn changes_anything(&self) -> bool {
        self.actions.iter().any(|a| *a != Action::Keep)
    }
}

/// Reads `message` once and plans its conversion.
pub fn plan(message: &Body) -> Result<Plan, PlanError> {
    let mut scanner = Scanner::default();
    message.for_each_chunk(|c| {
        scanner.feed(c);
        Ok(())
    })?;
    Ok(scanner.finish()?)
}

/// The first pass, fed the message chunk by chunk.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The walk over the message, in scanning mode.
    walk: Walk,
}

impl Scanner {
    /// Takes the next octets of the message.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.walk.feed(chunk, &mut Vec::new());
    }

    /// Ends the message: the plan, or why it cannot be converted.
    pub fn finish(mut self) -> Result<Plan, Unconvertible> {
        self.walk.finish(&mut Vec::new());
        match self.walk.error {
            Some(why) => Err(Unconvertible(why)),
            None => Ok(Plan {
                actions: self.walk.actions,
            }),
        }
    }
}

/// The second pass: writes the converted message, fed chunk by chunk. Its output has CRLF
/// line ends and still goes through [`super::data::Encoder`].
#[derive(Debug)]
pub struct Downgrader {
    /// The walk over the message, in emitting mode.
    walk: Walk,
}

impl Downgrader {
    /// A converter following `plan`, made by a [`Scanner`] over the same message.
    pub fn new(plan: Plan) -> Downgrader {
        Downgrader {
            walk: Walk {
                emit: true,
                actions: plan.actions,
                ..Walk::default()
            },
        }
    }

    /// Appends the conversion of `chunk` (the next octets of the message) to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.walk.feed(chunk, out);
    }

    /// Appends what is left at the end of the message.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.walk.finish(out);
    }
}

/// Converts a whole message in memory (both passes): for tests and small messages.
pub fn downgrade(message: &[u8]) -> Result<Vec<u8>, Unconvertible> {
    let mut scanner = Scanner::default();
    scanner.feed(message);
    let mut d = Downgrader::new(scanner.finish()?);
    let mut out = Vec::with_capacity(message.len() + message.len() / 4);
    d.feed(message, &mut out);
    d.finish(&mut out);
    Ok(out)
}

/// Where in an entity the walk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Its header section.
    Header,
    /// The body of a leaf.
    Body,
    /// A multipart before its first delimiter.
    Preamble,
    /// A multipart between delimiters (a child entity is on top of it).
    Parts,
    /// A multipart after its close delimiter.
    Epilogue,
    /// A `message/rfc822` (its encapsulated message is on top of it).
    Message,
}

/// Which header field the current header lines belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// One that does not matter here.
    Other,
    /// `Content-Type`.
    ContentType,
    /// `Content-Transfer-Encoding`.
    Encoding,
}

/// One MIME entity being walked.
#[derive(Debug)]
struct Entity {
    /// Its number, the index of its action.
    index: usize,
    /// What the second pass does with it.
    action: Action,
    /// Where the walk is in it.
    section: Section,
    /// The field being read in its header.
    field: Field,
    /// Whether the field being read is left out of the output.
    suppress: bool,
    /// The unfolded `Content-Type` value (bounded).
    content_type: Vec<u8>,
    /// The unfolded `Content-Transfer-Encoding` value (bounded), if the field is there.
    encoding: Option<Vec<u8>>,
    /// Whether it has `MIME-Version`.
    mime_version: bool,
    /// Its default type is `message/rfc822` (a part of a `multipart/digest`).
    digest_child: bool,
    /// Type and subtype, lowercase, known at the end of its header.
    media: (String, String),
    /// The boundary, when it is a multipart.
    boundary: Option<Vec<u8>>,
    /// Whether its body (a leaf's) has octets above 127.
    eight: bool,
    /// A composite labelled `8bit` or `binary`: relabelled if something inside is recoded.
    labelled_8bit: bool,
    /// Something inside it is recoded.
    inner_recode: bool,
}

/// The state machine shared by both passes.
#[derive(Debug, Default)]
struct Walk {
    /// Second pass: writes output. First pass: records actions.
    emit: bool,
    /// One per entity: recorded by the first pass, followed by the second.
    actions: Vec<Action>,
    /// Entities started so far.
    entities: usize,
    /// The entities enclosing the current line, outermost first.
    stack: Vec<Entity>,
    /// The line being collected.
    line: Vec<u8>,
    /// The line being collected starts a line (no piece of it was handled yet).
    line_start: bool,
    /// The last octet was a CR (a following LF belongs to the same line end).
    after_cr: bool,
    /// Quoted-printable state of the part being encoded.
    qp: Qp,
    /// Why the message cannot be converted (first pass), the first reason found.
    error: Option<String>,
    /// The walk has begun (the top-level entity is on the stack).
    started: bool,
}

impl Walk {
    /// Splits `chunk` into lines, as `data::Encoder` does, and walks them.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.line_start = true;
            self.push_entity(false);
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            if std::mem::take(&mut self.after_cr) && rest[0] == b'\n' {
                rest = &rest[1..];
                continue;
            }
            match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(p) => {
                    self.take(&rest[..p], out);
                    self.line_end(out);
                    self.after_cr = rest[p] == b'\r';
                    rest = &rest[p + 1..];
                }
                None => {
                    self.take(rest, out);
                    rest = &[];
                }
            }
        }
    }

    /// Adds octets to the line, handing over a piece whenever it is full.
    fn take(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            let n = (MAX_PIECE - self.line.len()).min(bytes.len());
            self.line.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.line.len() == MAX_PIECE {
                let piece = std::mem::take(&mut self.line);
                self.piece(&piece, self.line_start, false, out);
                self.line = piece;
                self.line.clear();
                self.line_start = false;
            }
        }
    }

    /// The line ends: hands over its last piece.
    fn line_end(&mut self, out: &mut Vec<u8>) {
        let piece = std::mem::take(&mut self.line);
        self.piece(&piece, self.line_start, true, out);
        self.line = piece;
        self.line.clear();
        self.line_start = true;
    }

    /// The end of the message: a last line without line end counts as ended (the encoder
    /// adds one too), then every open entity is closed.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            return;
        }
        if !self.line.is_empty() || !self.line_start {
            self.line_end(out);
        }
        while !self.stack.is_empty() {
            self.close_entity(out);
        }
    }

    /// Starts an entity (its header section comes next).
    fn push_entity(&mut self, digest_child: bool) {
        let index = self.entities;
        self.entities += 1;
        let action = if self.emit {
            self.actions.get(index).copied().unwrap_or(Action::Keep)
        } else {
            self.actions.push(Action::Keep);
            Action::Keep
        };
        self.stack.push(Entity {
            index,
            action,
            section: Section::Header,
            field: Field::Other,
            suppress: false,
            content_type: Vec::new(),
            encoding: None,
            mime_version: false,
            digest_child,
            media: (String::new(), String::new()),
            boundary: None,
            eight: false,
            labelled_8bit: false,
            inner_recode: false,
        });
    }

    /// One piece of a line: `starts` if it is the line's beginning, `ends` if the line ends
    /// after it.
    fn piece(&mut self, text: &[u8], starts: bool, ends: bool, out: &mut Vec<u8>) {
        if starts
            && ends
            && let Some((at, close)) = self.boundary(text)
        {
            self.delimiter(at, close, text, out);
            return;
        }
        let emit = self.emit;
        let Some(e) = self.stack.last_mut() else {
            return;
        };
        match e.section {
            Section::Header => {
                if starts && ends && text.is_empty() {
                    self.end_header(out);
                    return;
                }
                let mut value = text;
                if starts && !matches!(text.first(), Some(b' ' | b'\t')) {
                    let colon = text.iter().position(|&b| b == b':');
                    let name = colon.map_or(&[][..], |c| text[..c].trim_ascii());
                    e.field = if name.eq_ignore_ascii_case(b"content-type") {
                        Field::ContentType
                    } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                        e.encoding = Some(Vec::new());
                        Field::Encoding
                    } else {
                        if name.eq_ignore_ascii_case(b"mime-version") {
                            e.mime_version = true;
                        }
                        Field::Other
                    };
                    if e.field == Field::ContentType {
                        // A repeated field: the last one counts.
                        e.content_type.clear();
                    }
                    e.suppress = e.field == Field::Encoding && e.action != Action::Keep;
                    value = colon.map_or(&[][..], |c| &text[c + 1..]);
                }
                let kept = match e.field {
                    Field::ContentType => Some(&mut e.content_type),
                    Field::Encoding => e.encoding.as_mut(),
                    Field::Other => None,
                };
                if let Some(kept) = kept {
                    let room = MAX_FIELD.saturating_sub(kept.len()).min(value.len());
                    kept.extend_from_slice(&value[..room]);
                }
                if emit && !e.suppress {
                    out.extend_from_slice(text);
                    if ends {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            Section::Body => {
                e.eight = e.eight || text.iter().any(|&b| b >= 0x80);
                if !emit {
                    return;
                }
                if e.action == Action::Recode {
                    self.qp.text(text, out);
                    if ends {
                        self.qp.hard_break(out);
                    }
                } else {
                    out.extend_from_slice(text);
                    if ends {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            Section::Preamble | Section::Parts | Section::Epilogue | Section::Message => {
                if emit {
                    out.extend_from_slice(text);
                    if ends {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
    }

    /// Whether `line` is a delimiter of an enclosing multipart: its position on the stack
    /// (innermost first), and whether it is the close delimiter.
    fn boundary(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        self.stack.iter().enumerate().rev().find_map(|(at, e)| {
            if !matches!(e.section, Section::Preamble | Section::Parts) {
                return None;
            }
            let after = rest.strip_prefix(e.boundary.as_deref()?)?;
            let (close, pad) = match after.strip_prefix(b"--") {
                Some(pad) => (true, pad),
                None => (false, after),
            };
            pad.iter()
                .all(|&b| b == b' ' || b == b'\t')
                .then_some((at, close))
        })
    }

    /// A delimiter line of the multipart at `at` on the stack: the entities inside it end,
    /// and a new part starts unless it is the close delimiter.
    fn delimiter(&mut self, at: usize, close: bool, line: &[u8], out: &mut Vec<u8>) {
        while self.stack.len() > at + 1 {
            self.close_entity(out);
        }
        if self.emit {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        let parent = &mut self.stack[at];
        if close {
            parent.section = Section::Epilogue;
        } else {
            parent.section = Section::Parts;
            let digest = parent.media.1 == "digest";
            self.push_entity(digest);
        }
    }

    /// The empty line ending the current entity's header: its type decides how its body is
    /// walked.
    fn end_header(&mut self, out: &mut Vec<u8>) {
        let depth = self.stack.len();
        let Some(e) = self.stack.last_mut() else {
            return;
        };
        let (media, boundary) = parse_content_type(&e.content_type, e.digest_child);
        e.media = media;
        let composite = if depth > MAX_DEPTH {
            false
        } else if e.media.0 == "multipart" {
            e.boundary = boundary;
            e.boundary.is_some()
        } else {
            e.media.0 == "message" && e.media.1 == "rfc822"
        };
        let label = encoding_name(e.encoding.as_deref());
        e.labelled_8bit = composite && (label == "8bit" || label == "binary");
        e.section = match (composite, e.media.0 == "multipart") {
            (false, _) => Section::Body,
            (true, true) => Section::Preamble,
            (true, false) => Section::Message,
        };
        if self.emit {
            let top = depth == 1;
            new_fields(e, top, out);
            out.extend_from_slice(b"\r\n");
        }
        self.qp = Qp::default();
        if e.section == Section::Message {
            self.push_entity(false);
        }
    }

    /// Ends the innermost entity: the first pass decides a leaf's action.
    fn close_entity(&mut self, out: &mut Vec<u8>) {
        let top = self.stack.len() == 1;
        let Some(e) = self.stack.pop() else {
            return;
        };
        if self.emit {
            if e.section == Section::Header {
                // The message ended inside this header: its new fields still go out.
                new_fields(&e, top, out);
            }
            return;
        }
        if e.labelled_8bit && e.inner_recode {
            self.actions[e.index] = Action::Relabel;
        }
        if e.inner_recode
            && let Some(parent) = self.stack.last_mut()
        {
            parent.inner_recode = true;
        }
        if e.section != Section::Body || !e.eight {
            return;
        }
        let (kind, sub) = (&e.media.0, &e.media.1);
        let label = encoding_name(e.encoding.as_deref());
        let why = if kind == "multipart" || (kind == "message" && sub != "global") {
            Some(format!("a {kind}/{sub} part has 8-bit octets"))
        } else if label == "binary" {
            Some("a part in binary transfer encoding has 8-bit octets".to_string())
        } else if label.is_empty() || label == "7bit" || label == "8bit" {
            None
        } else {
            Some(format!(
                "a part in {label} transfer encoding has raw 8-bit octets"
            ))
        };
        match why {
            None => {
                self.actions[e.index] = Action::Recode;
                if let Some(parent) = self.stack.last_mut() {
                    parent.inner_recode = true;
                }
            }
            Some(why) => {
                self.error.get_or_insert(why);
            }
        }
    }
}

/// Writes the replacement fields of an entity whose action changes its header.
fn new_fields(e: &Entity, top: bool, out: &mut Vec<u8>) {
    match e.action {
        Action::Keep => {}
        Action::Recode => {
            if top && !e.mime_version {
                out.extend_from_slice(b"MIME-Version: 1.0\r\n");
            }
            out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
        }
        Action::Relabel => out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n"),
    }
}

/// The transfer encoding's name, lowercase, without comments; empty when the field is absent.
fn encoding_name(value: Option<&[u8]>) -> String {
    let value = value.unwrap_or_default();
    let end = value.iter().position(|&b| b == b'(').unwrap_or(value.len());
    String::from_utf8_lossy(value[..end].trim_ascii()).to_ascii_lowercase()
}

/// Type and subtype (lowercase; the default when missing or malformed, RFC 2045 5.2) and the
/// `boundary` parameter of a `Content-Type` value.
fn parse_content_type(value: &[u8], digest_child: bool) -> ((String, String), Option<Vec<u8>>) {
    let default = if digest_child {
        ("message", "rfc822")
    } else {
        ("text", "plain")
    };
    let mut params = split_params(value).into_iter();
    let media = params
        .next()
        .and_then(|m| {
            let m = String::from_utf8_lossy(m.trim_ascii()).to_ascii_lowercase();
            let (t, s) = m.split_once('/')?;
            let (t, s) = (t.trim(), s.trim());
            (!t.is_empty() && !s.is_empty()).then(|| (t.to_string(), s.to_string()))
        })
        .unwrap_or((default.0.to_string(), default.1.to_string()));
    let boundary = params.find_map(|p| {
        let eq = p.iter().position(|&b| b == b'=')?;
        if !p[..eq].trim_ascii().eq_ignore_ascii_case(b"boundary") {
            return None;
        }
        let v = p[eq + 1..].trim_ascii();
        let v = match v.strip_prefix(b"\"") {
            Some(q) => {
                let mut b = Vec::new();
                let mut it = q.iter();
                while let Some(&c) = it.next() {
                    match c {
                        b'"' => break,
                        b'\\' => b.extend(it.next()),
                        _ => b.push(c),
                    }
                }
                b
            }
            None => v.to_vec(),
        };
        (!v.is_empty() && v.len() <= 200).then_some(v)
    });
    (media, boundary)
}

/// Splits a header value at the `;` outside quoted strings.
fn split_params(value: &[u8]) -> Vec<&[u8]> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b';' && !quoted {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Quoted-printable encoder of one body, line piece by line piece (RFC 2045 6.7).
#[derive(Debug, Default)]
struct Qp {
    /// Characters on the current output line.
    col: usize,
    /// A space or tab not written yet: literal if more text follows, encoded at a line end.
    held: Option<u8>,
}

impl Qp {
    /// Writes one encoded character (1 or 3 octets), after a soft line break if it would not fit.
    fn put(&mut self, token: &[u8], out: &mut Vec<u8>) {
        if self.col + token.len() > QP_WIDTH {
            out.extend_from_slice(b"=\r\n");
            self.col = 0;
        }
        out.extend_from_slice(token);
        self.col += token.len();
    }

    /// Encodes line content.
    fn text(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            if let Some(w) = self.held.take() {
                self.put(&[w], out);
            }
            match b {
                b' ' | b'\t' => self.held = Some(b),
                33..=60 | 62..=126 => self.put(&[b], out),
                _ => self.put(&hex(b), out),
            }
        }
    }

    /// A line end of the original: a hard line break.
    fn hard_break(&mut self, out: &mut Vec<u8>) {
        if let Some(w) = self.held.take() {
            self.put(&hex(w), out);
        }
        out.extend_from_slice(b"\r\n");
        self.col = 0;
    }
}

/// `=XX`, uppercase hex (RFC 2045 6.7 (1)).
fn hex(b: u8) -> [u8; 3] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'=',
        DIGITS[usize::from(b >> 4)],
        DIGITS[usize::from(b & 15)],
    ]
}

#[cfg(test)]
mod tests;
