//! The byte level of an SMTP server session: the line limits of RFC 5321, the strict DATA
//! reader, and the connection type the session runs over.
//!
//! The connection is the shared [`Wire`] (read buffer with limits and timeouts, bounded
//! writes, STARTTLS input discard), named [`Conn`] here. Replies are queued and flushed only
//! when the client has no complete command waiting in the buffer, which is what PIPELINING
//! asks of a server. The DATA reader ends the message only on `<CRLF>.<CRLF>` and refuses a
//! bare CR or LF anywhere (SMTP smuggling, RFC 5321 2.3.8); a message with a NUL octet is read
//! to its end and refused.

use crate::engine::store::body::Body;
pub use crate::engine::wire::ReadError;
use crate::engine::wire::Wire;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
pub const MAX_TEXT_LINE: usize = 1000;
/// RFC 4954 4: an AUTH response line may be up to 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// Room read into during DATA.
const DATA_CHUNK: usize = 32 * 1024;

/// A client connection with its buffers: `new`, `queue`, `flush`, `set_write_timeout`,
/// `read_line`, `discard_input`, `into_inner` come from [`Wire`]; `read_data` is below.
pub type Conn<S> = Wire<S>;

/// How a DATA transfer ended, when it ended at `<CRLF>.<CRLF>`.
#[derive(Debug, PartialEq, Eq)]
pub enum DataEnd {
    /// The message is in the body, dot-unstuffed, every line ending in CRLF.
    Complete,
    /// It grew past the size limit (and was discarded).
    TooBig,
    /// A line was longer than 1000 octets (and the message was discarded).
    LineTooLong,
    /// The message held a NUL octet (and was discarded): a receiver that strips NULs would
    /// see `<CRLF>\0.<CRLF>` as the end of data, so passing it on smuggles one hop later.
    Nul,
}

/// Why DATA could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A CR not followed by LF, or an LF not preceded by CR: the session must be closed.
    #[error("bare CR or LF in message data")]
    BareLineEnding,
    /// Reading failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Reads message data up to `<CRLF>.<CRLF>` into `body`, dot-unstuffing it. `max_size`
    /// bounds what is kept (past it, or on any other refusal, the body is discarded); the
    /// transfer is always read to its end so the session stays in step. The body is not
    /// finished: the caller calls [`Body::finish`] to learn whether it reached the disk.
    /// Each read may wait `timeout`; in all, the transfer may take `timeout` plus one second
    /// per `min_rate` octets received (0 = no minimum rate), which cuts off a client that
    /// trickles data to hold a connection open.
    pub async fn read_data(
        &mut self,
        body: &mut Body,
        max_size: usize,
        timeout: Duration,
        min_rate: u64,
    ) -> Result<DataEnd, DataError> {
        let started = Instant::now();
        let mut received = self.pending().len() as u64;
        let mut too_big = false;
        let mut line_too_long = false;
        let mut nul = false;
        // Whether the body was let go of after a refusal.
        let mut dropped = false;
        // True while inside a line whose beginning was already dropped for being too long.
        let mut in_long_line = false;
        loop {
            let pending = self.pending();
            let Some(i) = pending.iter().position(|&b| b == b'\n') else {
                if pending.len() > MAX_TEXT_LINE {
                    // Keep the last byte: a CR there may be completed by an LF in the next read.
                    let keep = pending.len() - 1;
                    if pending[..keep].contains(&b'\r') {
                        return Err(DataError::BareLineEnding);
                    }
                    line_too_long = true;
                    in_long_line = true;
                    self.consume(keep);
                }
                let mut wait = timeout;
                if min_rate > 0 {
                    let allowed =
                        timeout + Duration::from_secs_f64(received as f64 / min_rate as f64);
                    wait = wait.min(allowed.saturating_sub(started.elapsed()));
                }
                received += self.fill(wait, DATA_CHUNK).await? as u64;
                continue;
            };
            let line = &pending[..=i];
            if line.len() < 2 || line[line.len() - 2] != b'\r' {
                return Err(DataError::BareLineEnding);
            }
            let content = &line[..line.len() - 2];
            if content.contains(&b'\r') {
                return Err(DataError::BareLineEnding);
            }
            if in_long_line {
                in_long_line = false;
                self.consume(i + 1);
                continue;
            }
            if content == b"." {
                self.consume(i + 1);
                self.shrink();
                return Ok(if nul {
                    DataEnd::Nul
                } else if too_big {
                    DataEnd::TooBig
                } else if line_too_long {
                    DataEnd::LineTooLong
                } else {
                    DataEnd::Complete
                });
            }
            if line.len() > MAX_TEXT_LINE {
                line_too_long = true;
            }
            if content.contains(&0) {
                nul = true;
            }
            let content = content.strip_prefix(b".").unwrap_or(content);
            if !too_big && !line_too_long && !nul {
                if body.len() as usize + content.len() + 2 > max_size {
                    too_big = true;
                    body.discard();
                } else {
                    body.push(&line[line.len() - 2 - content.len()..]);
                }
            } else if !dropped {
                body.discard();
                dropped = true;
            }
            self.consume(i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, duplex};

    /// A body that stays in memory.
    fn body() -> Body {
        Body::from_bytes(Vec::new())
    }

    async fn data_of(input: &[u8]) -> Result<(DataEnd, Vec<u8>), DataError> {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut b = body();
        let end = Conn::new(server)
            .read_data(&mut b, 1 << 20, Duration::from_secs(5), 0)
            .await?;
        Ok((end, b.to_vec().unwrap()))
    }

    #[tokio::test]
    async fn unstuffs_and_ends_at_crlf_dot_crlf() {
        let r = data_of(b"a\r\n..b\r\n.\r\nNOOP\r\n").await.unwrap();
        assert_eq!(r, (DataEnd::Complete, b"a\r\n.b\r\n".to_vec()));
    }

    #[tokio::test]
    async fn every_bare_line_ending_is_refused() {
        for input in [
            &b"a\n.\n"[..],
            b"a\r.\rQUIT\r\n",
            b"a\r\n.\n",
            b"a\n.\r\n",
            b"a\r.\r\n",
            b"a\rb\r\n.\r\n",
            b"a\nb\r\n.\r\n",
        ] {
            let r = data_of(input).await;
            assert!(
                matches!(r, Err(DataError::BareLineEnding)),
                "{input:?}: {r:?}"
            );
        }
    }

    #[tokio::test]
    async fn long_lines_and_big_messages_are_read_to_the_end() {
        let mut long = vec![b'x'; 5000];
        long.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(data_of(&long).await.unwrap().0, DataEnd::LineTooLong);
        let (mut client, server) = duplex(1 << 20);
        client
            .write_all(&[b"y".repeat(900), b"\r\n".to_vec()].concat().repeat(4))
            .await
            .unwrap();
        client.write_all(b".\r\n").await.unwrap();
        let mut b = body();
        let r = Conn::new(server)
            .read_data(&mut b, 2000, Duration::from_secs(5), 0)
            .await
            .unwrap();
        assert_eq!(r, DataEnd::TooBig);
        assert!(b.to_vec().unwrap().is_empty(), "what was kept is let go");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_client_is_cut_off() {
        // One byte every 4 s never trips a 5 s read timeout, but the minimum rate (here 100
        // octets/s) does. (Command lines have a whole-line deadline instead: see `wire`.)
        let (mut client, server) = duplex(1024);
        let feeder = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(4)).await;
                if client.write_all(b"x").await.is_err() {
                    break;
                }
            }
        });
        let r = Conn::new(server)
            .read_data(&mut body(), 1 << 20, Duration::from_secs(5), 100)
            .await;
        assert!(
            matches!(r, Err(DataError::Read(ReadError::Timeout))),
            "{r:?}"
        );
        feeder.abort();
    }

    #[tokio::test]
    async fn the_next_command_is_read_after_data() {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(b"a\r\n.\r\nQUIT\r\n").await.unwrap();
        let mut c = Conn::new(server);
        let t = Duration::from_secs(5);
        let mut b = body();
        let r = c.read_data(&mut b, 1 << 20, t, 0).await.unwrap();
        assert_eq!(r, DataEnd::Complete);
        assert_eq!(b.to_vec().unwrap(), b"a\r\n");
        assert_eq!(c.read_line(MAX_COMMAND_LINE, t).await.unwrap(), b"QUIT");
    }
}
