//! The bytes sent after DATA: line endings normalised and dots stuffed, and [`Blocks`], the
//! one reading of a queued message into them (spool, downgrade, encoder) that the client and
//! the DKIM signer share.
//!
//! Every bare CR and every bare LF becomes CRLF, so whatever sits in the spool, the next hop sees
//! exactly the line structure we see and no `<LF>.<LF>`-style end of data can be smuggled through
//! us (RFC 5321 2.3.8, CVE-2023-51764). Lines starting with `.` get a second one (RFC 5321
//! 4.5.2), and the transfer ends with `<CRLF>.<CRLF>`.

use super::downgrade::{Downgrader, Plan};
use crate::engine::store::body::Body;
use std::io;

/// Octets read from the spool at a time.
const BLOCK: usize = 64 * 1024;

/// A message turned, a block at a time, into the octets a transaction sends: read from the
/// spool, converted to quoted-printable when the transaction downgrades it
/// ([`super::downgrade`]), then encoded. The signer and the client both read a message through
/// it, so the octets signed are the octets sent.
pub struct Blocks<'a> {
    message: &'a Body,
    /// Octets of `message` read so far.
    at: u64,
    downgrader: Option<Downgrader>,
    encoder: Encoder,
    chunk: Vec<u8>,
    converted: Vec<u8>,
}

impl<'a> Blocks<'a> {
    /// `message` as sent with `plan` (a downgrade) or unchanged, through `encoder`.
    pub fn new(message: &'a Body, plan: Option<Plan>, encoder: Encoder) -> Blocks<'a> {
        Blocks {
            message,
            at: 0,
            downgrader: plan.map(Downgrader::new),
            encoder,
            chunk: Vec::new(),
            converted: Vec::new(),
        }
    }

    /// Encodes octets that go before the message (the signature fields) into `out`.
    pub fn prepend(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.encoder.feed(bytes, out);
    }

    /// Appends the next block to `out`; `false` once the message is read whole.
    pub fn next_block(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        if self.at >= self.message.len() {
            return Ok(false);
        }
        self.message.read_at(self.at, BLOCK, &mut self.chunk)?;
        self.at += self.chunk.len() as u64;
        match self.downgrader.as_mut() {
            Some(d) => {
                self.converted.clear();
                d.feed(&self.chunk, &mut self.converted);
                self.encoder.feed(&self.converted, out);
            }
            None => self.encoder.feed(&self.chunk, out),
        }
        Ok(true)
    }

    /// Whether every octet of the message has been read (the block just read was the last).
    pub fn read_whole(&self) -> bool {
        self.at >= self.message.len()
    }

    /// Appends what the conversion still holds to `out`; returns the encoder, for the caller
    /// to end as it needs (`end` for DATA, `end_lines` for the signer).
    pub fn finish(self, out: &mut Vec<u8>) -> Encoder {
        let mut encoder = self.encoder;
        if let Some(d) = self.downgrader {
            let mut converted = self.converted;
            converted.clear();
            d.finish(&mut converted);
            encoder.feed(&converted, out);
        }
        encoder
    }
}

/// Encodes a message for the DATA phase chunk by chunk, so a big message is sent without being
/// held in memory whole. Its state is whether the next octet starts a line and whether the
/// last octet was a CR (whose LF, if it comes, belongs to the same line ending).
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    /// The next octet starts a line.
    at_line_start: bool,
    /// The last octet was a CR, already sent as CRLF.
    after_cr: bool,
    /// Lines starting with `.` get a second one (off for the copy a DKIM signature is
    /// computed over: the receiver removes the stuffing before it verifies).
    stuff_dots: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            at_line_start: true,
            after_cr: false,
            stuff_dots: true,
        }
    }
}

impl Encoder {
    /// An encoder that only normalises line ends: the message as the receiver will read it
    /// once the transfer is undone, which is what a DKIM signature covers.
    pub fn line_ends_only() -> Encoder {
        Encoder {
            stuff_dots: false,
            ..Encoder::default()
        }
    }

    /// Appends the line ending the transfer adds when the message lacks a final one.
    pub fn end_lines(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends the encoding of `chunk` (the next octets of the message) to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 2);
        for &b in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                // CRLF is one line ending; a CR alone is one too.
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    self.after_cr = b == b'\r';
                }
                _ => {
                    if self.at_line_start && self.stuff_dots && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Appends the end of the transfer: a line ending if the message lacks one, then `.`.
    pub fn end(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Encodes `message` for the DATA phase, terminating `.` line included.
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::default();
    e.feed(message, &mut out);
    e.end(&mut out);
    out
}

/// Whether the message has octets above 127 (then `BODY=8BITMIME` is declared when offered).
pub fn has_8bit(message: &[u8]) -> bool {
    message.iter().any(|&b| b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_text_is_only_terminated() {
        assert_eq!(encode(b"a\r\nb\r\n"), b"a\r\nb\r\n.\r\n");
    }

    #[test]
    fn bare_cr_and_lf_become_crlf() {
        assert_eq!(encode(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(encode(b"a\r\r\nb"), b"a\r\n\r\nb\r\n.\r\n");
        assert_eq!(encode(b"a\n\rb"), b"a\r\n\r\nb\r\n.\r\n");
    }

    #[test]
    fn smuggled_end_of_data_is_defused() {
        // `<LF>.<LF>` and `<CR>.<CR>` would end DATA at a lenient server: now they are a
        // stuffed dot line that the next hop unstuffs back into "." inside the message.
        let out = encode(b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@x>\r\n");
        assert_eq!(
            out,
            b"Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@x>\r\n.\r\n"
        );
        let out = encode(b"hi\r.\rRCPT TO:<x@y>\r\n");
        assert_eq!(out, b"hi\r\n..\r\nRCPT TO:<x@y>\r\n.\r\n");
        // Only the final line ends the transfer.
        let end = out.windows(5).position(|w| w == b"\r\n.\r\n").unwrap();
        assert_eq!(end, out.len() - 5);
    }

    #[test]
    fn leading_dots_are_stuffed() {
        assert_eq!(
            encode(b".\r\n..x\r\ny.z\r\n"),
            b"..\r\n...x\r\ny.z\r\n.\r\n"
        );
        assert_eq!(encode(b".start"), b"..start\r\n.\r\n");
    }

    #[test]
    fn chunks_encode_as_the_whole() {
        let msg: &[u8] = b"a\r\n.b\r\r\nc\n\r.d\r\n..\r\ne";
        let whole = encode(msg);
        for cut in 0..=msg.len() {
            for cut2 in cut..=msg.len() {
                let mut out = Vec::new();
                let mut e = Encoder::default();
                e.feed(&msg[..cut], &mut out);
                e.feed(&msg[cut..cut2], &mut out);
                e.feed(&msg[cut2..], &mut out);
                e.end(&mut out);
                assert_eq!(out, whole, "cut at {cut} and {cut2}");
            }
        }
    }

    #[test]
    fn empty_message() {
        assert_eq!(encode(b""), b".\r\n");
    }
}
