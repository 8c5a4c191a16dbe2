//! The `DKIM-Signature:` fields of a message as one session will send it.
//!
//! The signature covers the octets the next hop receives, so it is computed per transaction,
//! after the choice of 8BITMIME or downgrade: over the message read from the spool in
//! 64 KiB blocks, converted to quoted-printable when the transaction downgrades it
//! ([`super::downgrade`]), with line ends normalised as [`super::data::Encoder`] sends them
//! (not dot-stuffed: the receiver removes that before it verifies), a final line end
//! included. The client then sends the fields first and the message in a second pass that
//! makes the same octets. Memory is bounded: mail-auth's streaming signer keeps the header
//! section (at most [`MAX_HEADER`]; past that the message is sent unsigned) and hashes the
//! body as it comes.

use super::data::{Blocks, Encoder};
use super::downgrade::Plan;
use crate::engine::dkim::DomainKey;
use crate::engine::store::body::Body;
use mail_auth::common::headers::HeaderWriter;

/// The largest header section signed.
pub const MAX_HEADER: usize = 1024 * 1024;

/// Why a message is sent unsigned.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The message could not be read from the spool.
    #[error("cannot read the message: {0}")]
    Read(#[from] std::io::Error),
    /// No blank line within [`MAX_HEADER`] octets.
    #[error("its header section is longer than {MAX_HEADER} octets")]
    HeaderTooLong,
    /// mail-auth refused (no header to sign, a key problem).
    #[error("{0}")]
    Sign(String),
}

/// The `DKIM-Signature:` fields (one per key, each ending in CRLF) for `message` as sent with
/// `plan` (a downgrade) or unchanged.
pub fn signature_fields(
    message: &Body,
    plan: Option<&Plan>,
    keys: &[DomainKey],
) -> Result<Vec<u8>, SignError> {
    let mut streams: Vec<_> = keys.iter().map(|k| k.signer.sign_streaming()).collect();
    let mut blocks = Blocks::new(message, plan.cloned(), Encoder::line_ends_only());
    let mut out = Vec::new();
    // Header section: octets seen before the blank line, and the last three octets.
    let mut head = HeadEnd::default();
    let mut feed = |bytes: &[u8], head: &mut HeadEnd| -> Result<(), SignError> {
        head.scan(bytes)?;
        for s in streams.iter_mut() {
            s.write(bytes);
        }
        Ok(())
    };
    while blocks.next_block(&mut out)? {
        feed(&out, &mut head)?;
        out.clear();
    }
    let encoder = blocks.finish(&mut out);
    encoder.end_lines(&mut out);
    feed(&out, &mut head)?;
    let mut fields = Vec::new();
    for s in streams {
        let sig = s.finish().map_err(|e| SignError::Sign(e.to_string()))?;
        fields.extend_from_slice(sig.to_header().as_bytes());
    }
    Ok(fields)
}

/// Finds the end of the header section in a stream of CRLF-normalised octets.
#[derive(Default)]
struct HeadEnd {
    /// Octets of the header section seen so far.
    seen: usize,
    /// The blank line was found.
    done: bool,
    /// The last three octets.
    tail: [u8; 3],
}

impl HeadEnd {
    fn scan(&mut self, bytes: &[u8]) -> Result<(), SignError> {
        for &b in bytes {
            if self.done {
                return Ok(());
            }
            self.seen += 1;
            if self.tail == *b"\r\n\r" && b == b'\n'
                || self.seen == 2 && self.tail[2] == b'\r' && b == b'\n'
            {
                self.done = true;
            }
            self.tail = [self.tail[1], self.tail[2], b];
            if self.seen > MAX_HEADER {
                return Err(SignError::HeaderTooLong);
            }
        }
        Ok(())
    }
}
