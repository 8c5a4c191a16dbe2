//! The byte level of an SMTP session: a read buffer with limits and timeouts over any
//! `AsyncRead + AsyncWrite`, command lines, the DATA reader, and buffered replies.
//!
//! Replies are queued and flushed only when the client has no complete command waiting in the
//! buffer, which is what PIPELINING asks of a server. The DATA reader ends the message only on
//! `<CRLF>.<CRLF>` and refuses a bare CR or LF anywhere (SMTP smuggling, RFC 5321 2.3.8).

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
pub const MAX_TEXT_LINE: usize = 1000;
/// RFC 4954 4: an AUTH response line may be up to 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// Room read into while waiting for commands.
const COMMAND_CHUNK: usize = 1024;
/// Room read into during DATA.
const DATA_CHUNK: usize = 32 * 1024;

/// Why no line could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The line was longer than allowed; it has been consumed and dropped.
    #[error("line too long")]
    TooLong,
    /// The client closed the connection.
    #[error("client closed the connection")]
    Closed,
    /// Nothing arrived in time.
    #[error("timeout")]
    Timeout,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// How a DATA transfer ended, when it ended at `<CRLF>.<CRLF>`.
#[derive(Debug, PartialEq, Eq)]
pub enum DataEnd {
    /// The message, dot-unstuffed, every line ending in CRLF.
    Complete(Vec<u8>),
    /// It grew past the size limit (and was discarded).
    TooBig,
    /// A line was longer than 1000 octets (and the message was discarded).
    LineTooLong,
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

/// A client connection with its buffers.
pub struct Conn<S> {
    /// The stream (TCP, TLS over TCP, or an in-memory duplex in tests).
    io: S,
    /// Received bytes not yet consumed, from `start`.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte in `buf`.
    start: usize,
    /// Replies queued but not yet written.
    out: Vec<u8>,
    /// Longest wait for a write.
    write_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps a stream.
    pub fn new(io: S) -> Self {
        Conn {
            io,
            buf: Vec::with_capacity(COMMAND_CHUNK),
            start: 0,
            out: Vec::with_capacity(512),
            write_timeout: Duration::from_secs(300),
        }
    }

    /// Queues a reply (one or more complete CRLF-terminated lines).
    pub fn queue(&mut self, reply: &str) {
        self.out.extend_from_slice(reply.as_bytes());
    }

    /// How long a write may wait for the client to read (a client that never reads its
    /// replies must not hold its session forever).
    pub fn set_write_timeout(&mut self, t: Duration) {
        self.write_timeout = t;
    }

    /// Writes queued replies now.
    pub async fn flush(&mut self) -> io::Result<()> {
        let write = async {
            if !self.out.is_empty() {
                self.io.write_all(&self.out).await?;
                self.out.clear();
            }
            self.io.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client does not read its replies",
            )),
        }
    }

    /// Whether a complete line is already waiting (the client pipelined).
    fn has_line(&self) -> bool {
        self.buf[self.start..].contains(&b'\n')
    }

    /// Drops everything received but not consumed; returns how many bytes that was.
    /// Used after STARTTLS, so plaintext pipelined behind it is never executed.
    pub fn discard_input(&mut self) -> usize {
        let n = self.buf.len() - self.start;
        self.buf.clear();
        self.start = 0;
        n
    }

    /// Gives back the stream (for the TLS handshake). Unflushed replies are lost: flush first.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Reads more bytes into the buffer (at least `chunk` octets of room), flushing queued
    /// replies first. Room is reserved, not zero-filled, so an idle session stays small.
    async fn fill(&mut self, timeout: Duration, chunk: usize) -> Result<(), ReadError> {
        if !self.has_line() {
            self.flush().await?;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(chunk);
        match tokio::time::timeout(timeout, self.io.read_buf(&mut self.buf)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Gives back the room a large message needed once the buffer is drained.
    fn shrink(&mut self) {
        if self.buf.capacity() > COMMAND_CHUNK * 8 {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(COMMAND_CHUNK);
        }
    }

    /// Reads one line of at most `max` octets (LF included) and returns it without the CRLF
    /// (or bare LF). A longer line is read to its end, dropped, and reported as `TooLong`.
    /// The whole line must arrive within `timeout`: a byte now and then does not keep a
    /// session alive.
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut too_long = false;
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line_len = i + 1;
                let mut line = pending[..i].to_vec();
                self.start += line_len;
                if too_long || line_len > max {
                    return Err(ReadError::TooLong);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if pending.len() > max {
                // Drop what we have of the over-long line and keep reading to its end.
                too_long = true;
                self.buf.clear();
                self.start = 0;
            }
            self.fill(
                deadline.saturating_duration_since(Instant::now()),
                COMMAND_CHUNK,
            )
            .await?;
        }
    }

    /// Reads message data up to `<CRLF>.<CRLF>`, dot-unstuffing it. `max_size` bounds what is
    /// kept; the transfer is always read to its end so the session stays in step.
    /// Each read may wait `timeout`; in all, the transfer may take `timeout` plus one second
    /// per `min_rate` octets received (0 = no minimum rate), which cuts off a client that
    /// trickles data to hold a connection open.
    pub async fn read_data(
        &mut self,
        max_size: usize,
        timeout: Duration,
        min_rate: u64,
    ) -> Result<DataEnd, DataError> {
        let started = Instant::now();
        let mut received: u64 = (self.buf.len() - self.start) as u64;
        let mut msg: Vec<u8> = Vec::with_capacity(8192);
        let mut too_big = false;
        let mut line_too_long = false;
        // True while inside a line whose beginning was already dropped for being too long.
        let mut in_long_line = false;
        loop {
            let pending = &self.buf[self.start..];
            let Some(i) = pending.iter().position(|&b| b == b'\n') else {
                if pending.len() > MAX_TEXT_LINE {
                    // Keep the last byte: a CR there may be completed by an LF in the next read.
                    let keep = pending.len() - 1;
                    if pending[..keep].contains(&b'\r') {
                        return Err(DataError::BareLineEnding);
                    }
                    line_too_long = true;
                    in_long_line = true;
                    self.start += keep;
                }
                let mut wait = timeout;
                if min_rate > 0 {
                    let allowed =
                        timeout + Duration::from_secs_f64(received as f64 / min_rate as f64);
                    wait = wait.min(allowed.saturating_sub(started.elapsed()));
                }
                let before = self.buf.len();
                self.fill(wait, DATA_CHUNK).await?;
                received += (self.buf.len().saturating_sub(before)) as u64;
                continue;
            };
            let line = &pending[..=i];
            self.start += i + 1;
            if line.len() < 2 || line[line.len() - 2] != b'\r' {
                return Err(DataError::BareLineEnding);
            }
            let content = &line[..line.len() - 2];
            if content.contains(&b'\r') {
                return Err(DataError::BareLineEnding);
            }
            if in_long_line {
                in_long_line = false;
                continue;
            }
            if content == b"." {
                self.shrink();
                return Ok(if too_big {
                    DataEnd::TooBig
                } else if line_too_long {
                    DataEnd::LineTooLong
                } else {
                    DataEnd::Complete(msg)
                });
            }
            if line.len() > MAX_TEXT_LINE {
                line_too_long = true;
            }
            let content = content.strip_prefix(b".").unwrap_or(content);
            if !too_big && !line_too_long {
                if msg.len() + content.len() + 2 > max_size {
                    too_big = true;
                    msg = Vec::new();
                } else {
                    msg.extend_from_slice(content);
                    msg.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    async fn data_of(input: &[u8]) -> Result<DataEnd, DataError> {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client);
        Conn::new(server)
            .read_data(1 << 20, Duration::from_secs(5), 0)
            .await
    }

    #[tokio::test]
    async fn unstuffs_and_ends_at_crlf_dot_crlf() {
        let r = data_of(b"a\r\n..b\r\n.\r\nNOOP\r\n").await.unwrap();
        assert_eq!(r, DataEnd::Complete(b"a\r\n.b\r\n".to_vec()));
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
        assert_eq!(data_of(&long).await.unwrap(), DataEnd::LineTooLong);
        let (mut client, server) = duplex(1 << 20);
        client
            .write_all(&[b"y".repeat(900), b"\r\n".to_vec()].concat().repeat(4))
            .await
            .unwrap();
        client.write_all(b".\r\n").await.unwrap();
        let r = Conn::new(server)
            .read_data(2000, Duration::from_secs(5), 0)
            .await
            .unwrap();
        assert_eq!(r, DataEnd::TooBig);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_client_is_cut_off() {
        // One byte every 4 s never trips a 5 s read timeout, but the line must be whole in 5 s.
        let (mut client, server) = duplex(1024);
        let feeder = tokio::spawn(async move {
            for b in b"NOOP\r\n" {
                tokio::time::sleep(Duration::from_secs(4)).await;
                if client.write_all(&[*b]).await.is_err() {
                    break;
                }
            }
        });
        let mut c = Conn::new(server);
        assert!(matches!(
            c.read_line(512, Duration::from_secs(5)).await,
            Err(ReadError::Timeout)
        ));
        // In DATA the same trickle is cut off by the minimum rate (here 100 octets/s).
        let (mut client, server) = duplex(1024);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(4)).await;
                if client.write_all(b"x").await.is_err() {
                    break;
                }
            }
        });
        let r = Conn::new(server)
            .read_data(1 << 20, Duration::from_secs(5), 100)
            .await;
        assert!(
            matches!(r, Err(DataError::Read(ReadError::Timeout))),
            "{r:?}"
        );
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_cut_off() {
        let (_client, server) = duplex(64);
        let mut c = Conn::new(server);
        c.set_write_timeout(Duration::from_secs(5));
        c.queue(&"250 2.0.0 OK\r\n".repeat(100));
        let e = c.flush().await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn overlong_command_is_dropped_and_next_line_read() {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(&b"z".repeat(3000)).await.unwrap();
        client.write_all(b"\r\nNOOP\r\n").await.unwrap();
        let mut c = Conn::new(server);
        let t = Duration::from_secs(5);
        assert!(matches!(c.read_line(512, t).await, Err(ReadError::TooLong)));
        assert_eq!(c.read_line(512, t).await.unwrap(), b"NOOP");
    }
}
