//! A message's header block as raw bytes: where it ends and its fields one by one, each with
//! its exact bytes (name, colon, value, folded lines and line end), so BODY[HEADER.FIELDS]
//! and ENVELOPE answer without parsing MIME. Values are decoded (RFC 2047) only on request,
//! by mail-parser, for SEARCH.

/// The length of the header block at the start of `raw`, with the blank line that ends it
/// (RFC 5322 §2.1). A message with no blank line is all header.
pub fn header_len(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &raw[from..]) {
        let at = from + i + 1;
        match &raw[at..] {
            [b'\r', b'\n', ..] => return at + 2,
            [b'\n', ..] => return at + 1,
            _ => from = at,
        }
    }
    raw.len()
}

/// The header block's length when `raw` holds all of it (its blank line), else `None`: a
/// reader that passes only a message's start checks it read far enough.
pub fn complete_header_len(raw: &[u8]) -> Option<usize> {
    let n = header_len(raw);
    (raw[..n].ends_with(b"\n\r\n") || raw[..n].ends_with(b"\n\n") || raw[..n] == *b"\r\n")
        .then_some(n)
}

/// One header field.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The field name as written (before the colon, trailing blanks trimmed).
    pub name: &'a [u8],
    /// After the colon up to and including the line end of its last folded line.
    pub value: &'a [u8],
    /// The whole field: name, colon, value, line end.
    pub all: &'a [u8],
}

impl Field<'_> {
    /// Whether the field is called `name` (ASCII case-insensitive, RFC 5322 §1.2.2).
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The fields of a header block (as [`header_len`] cuts it; the blank line ends the walk).
pub fn fields(header: &[u8]) -> Fields<'_> {
    Fields { rest: header }
}

/// Iterator over header fields; see [`fields`].
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let rest = self.rest;
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            self.rest = &[];
            return None;
        }
        // The field runs to the line end not followed by a blank (a folded continuation).
        let mut end = rest.len();
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &rest[from..]) {
            let at = from + i + 1;
            if matches!(rest.get(at), Some(b' ' | b'\t')) {
                from = at;
            } else {
                end = at;
                break;
            }
        }
        let all = &rest[..end];
        self.rest = &rest[end..];
        let (name, value) = match memchr::memchr(b':', all) {
            Some(colon) => (trim_end(&all[..colon]), &all[colon + 1..]),
            None => (&all[..0], all),
        };
        Some(Field { name, value, all })
    }
}

/// The first field called `name` in `header`.
pub fn first<'a>(header: &'a [u8], name: &[u8]) -> Option<Field<'a>> {
    fields(header).find(|f| f.is(name))
}

/// A raw value unfolded (line ends removed, RFC 5322 §2.2.3) and trimmed of blanks.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        }
    }
    let start = out
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    out.truncate(end);
    out.drain(..start);
    out
}

/// The text of a value with RFC 2047 encoded words decoded (mail-parser's unstructured
/// parser), for SEARCH.
pub fn decoded(value: &[u8]) -> String {
    match mail_parser::parsers::MessageStream::new(value).parse_unstructured() {
        mail_parser::HeaderValue::Text(t) => t.into_owned(),
        mail_parser::HeaderValue::TextList(list) => list.join(" "),
        _ => String::new(),
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ends_at_the_blank_line() {
        assert_eq!(header_len(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_len(b"\r\nbody"), 2);
        assert_eq!(header_len(b"A: b\r\n"), 6);
        assert_eq!(header_len(b"A: b\n\nbody"), 6);
    }

    #[test]
    fn fields_keep_folded_lines() {
        let h = b"Subject: one\r\n two\r\nTo : x@y\r\n\r\n";
        let f: Vec<_> = fields(h).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, b"Subject");
        assert_eq!(f[0].all, b"Subject: one\r\n two\r\n");
        assert_eq!(unfold(f[0].value), b"one two");
        assert!(f[1].is(b"to"));
        assert_eq!(decoded(b" =?utf-8?q?caf=C3=A9?=\r\n"), "caf\u{e9}");
    }
}
