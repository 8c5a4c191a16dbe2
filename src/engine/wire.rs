//! The byte level of SMTP in both directions: one buffered, line-oriented stream over any
//! `AsyncRead + AsyncWrite`, used by the server's connections (`smtp::conn`) and by the
//! outbound client (`delivery::client`), so neither imports the other.
//!
//! It owns the read buffer (lines with a length limit and a whole-line deadline; an over-long
//! line is read to its end and dropped), the write buffer (flushed within a write timeout),
//! and what STARTTLS needs on either side: dropping input received before the handshake
//! (CVE-2011-0411) and giving the stream back. What the bytes mean lives with the users: the
//! DATA reader in `smtp::conn` (built on [`Wire::fill`]), reply parsing in `delivery::reply`.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Room reserved for each read while waiting for lines.
pub const LINE_CHUNK: usize = 1024;
/// Past this much consumed data at the front of the buffer, it is moved down before a read.
const COMPACT_AT: usize = 64 * 1024;

/// Why no line could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The line was longer than allowed; it has been consumed and dropped.
    #[error("line too long")]
    TooLong,
    /// The other end closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// Nothing arrived in time.
    #[error("timeout")]
    Timeout,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A connection with its read and write buffers.
pub struct Wire<S> {
    /// The stream (TCP, TLS over TCP, or an in-memory duplex in tests).
    io: S,
    /// Received bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte in `buf`.
    start: usize,
    /// Bytes queued but not yet written (so pipelined lines go out in one write).
    out: Vec<u8>,
    /// Longest wait for a write: a peer that never reads must not hold us forever.
    write_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Wraps a stream.
    pub fn new(io: S) -> Self {
        Wire {
            io,
            buf: Vec::with_capacity(LINE_CHUNK),
            start: 0,
            out: Vec::with_capacity(512),
            write_timeout: Duration::from_secs(300),
        }
    }

    /// Queues text (one or more complete CRLF-terminated lines).
    pub fn queue(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Queues formatted text (one or more complete CRLF-terminated lines), formatted straight
    /// into the write buffer.
    pub fn queue_fmt(&mut self, text: std::fmt::Arguments<'_>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = self.out.write_fmt(text);
    }

    /// Queues raw bytes (message data).
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// How long a write may wait for the other end to read.
    pub fn set_write_timeout(&mut self, t: Duration) {
        self.write_timeout = t;
    }

    /// Writes what is queued now. A write that does not finish within the write timeout
    /// fails with `ErrorKind::TimedOut`.
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
                "the peer does not read what we send",
            )),
        }
    }

    /// Drops everything received but not consumed; returns how many bytes that was.
    /// Used at STARTTLS, so plaintext sent before the handshake is never taken as protected.
    pub fn discard_input(&mut self) -> usize {
        let n = self.buf.len() - self.start;
        self.buf.clear();
        self.start = 0;
        n
    }

    /// Gives back the stream (for the TLS handshake). Unflushed output is lost: flush first.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Received bytes not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks the first `n` pending bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.buf.len() - self.start);
        self.start += n;
    }

    /// Whether a complete line is already waiting (the peer pipelined).
    fn has_line(&self) -> bool {
        self.pending().contains(&b'\n')
    }

    /// Reads more bytes (with at least `chunk` octets of room) within `timeout` and returns how
    /// many arrived. Queued output is flushed first unless a complete line is already waiting:
    /// a server answers pipelined commands in one write (RFC 2920), and nobody waits for a
    /// reply it has not sent. Room is reserved, not zero-filled, so an idle connection stays
    /// small.
    pub async fn fill(&mut self, timeout: Duration, chunk: usize) -> Result<usize, ReadError> {
        if !self.has_line() {
            self.flush().await?;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > COMPACT_AT {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(chunk);
        match tokio::time::timeout(timeout, self.io.read_buf(&mut self.buf)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(n)) => Ok(n),
        }
    }

    /// Gives back the room a large transfer needed (call once it is consumed).
    pub fn shrink(&mut self) {
        if self.buf.capacity() > LINE_CHUNK * 8 {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(LINE_CHUNK);
        }
    }

    /// Reads one line of at most `max` octets (LF included) and returns it without the CRLF
    /// (or bare LF). A longer line is read to its end, dropped, and reported as `TooLong`,
    /// so the next call starts on the next line. The whole line must arrive within `timeout`:
    /// a byte now and then does not keep a connection alive.
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        let mut line = Vec::new();
        self.read_line_into(max, timeout, &mut line).await?;
        Ok(line)
    }

    /// [`Wire::read_line`], appending the line (without its CRLF or LF) to `out` instead of
    /// making a new one; on an error `out` is as it was.
    pub async fn read_line_into(
        &mut self,
        max: usize,
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let deadline = Instant::now() + timeout;
        let mut too_long = false;
        loop {
            let pending = self.pending();
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line_len = i + 1;
                if too_long || line_len > max {
                    self.consume(line_len);
                    return Err(ReadError::TooLong);
                }
                let text = &pending[..i];
                out.extend_from_slice(text.strip_suffix(b"\r").unwrap_or(text));
                self.consume(line_len);
                return Ok(());
            }
            if pending.len() > max {
                // Drop what we have of the over-long line and keep reading to its end.
                too_long = true;
                self.buf.clear();
                self.start = 0;
            }
            self.fill(
                deadline.saturating_duration_since(Instant::now()),
                LINE_CHUNK,
            )
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    const T: Duration = Duration::from_secs(5);

    /// A wire whose peer has sent `input` and closed its end.
    async fn wire_after(input: &[u8]) -> Wire<tokio::io::DuplexStream> {
        let (mut peer, ours) = duplex(1 << 20);
        peer.write_all(input).await.unwrap();
        drop(peer);
        Wire::new(ours)
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_line_misses_its_deadline() {
        // One byte every 4 s never trips a 5 s read timeout, but the line must be whole in 5 s.
        let (mut peer, ours) = duplex(1024);
        let feeder = tokio::spawn(async move {
            for b in b"NOOP\r\n" {
                tokio::time::sleep(Duration::from_secs(4)).await;
                if peer.write_all(&[*b]).await.is_err() {
                    break;
                }
            }
        });
        let mut w = Wire::new(ours);
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::Timeout)));
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_is_cut_off() {
        let (_peer, ours) = duplex(64);
        let mut w = Wire::new(ours);
        w.set_write_timeout(Duration::from_secs(5));
        w.queue(&"250 2.0.0 OK\r\n".repeat(100));
        let e = w.flush().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn an_overlong_line_is_dropped_and_the_next_one_read() {
        let mut w = wire_after(&[&b"z".repeat(3000)[..], b"\r\nNOOP\r\n"].concat()).await;
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::TooLong)));
        assert_eq!(w.read_line(512, T).await.unwrap(), b"NOOP");
    }

    #[tokio::test]
    async fn the_limit_counts_the_line_ending() {
        // As a client reads replies: at most 512 octets with CRLF, a bare LF accepted.
        let exact = [&b"2".repeat(510)[..], b"\r\n"].concat();
        let over = [&b"5".repeat(511)[..], b"\r\n"].concat();
        let mut w = wire_after(&[&exact[..], &over, b"250 ok\n"].concat()).await;
        assert_eq!(w.read_line(512, T).await.unwrap(), exact[..510]);
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::TooLong)));
        assert_eq!(w.read_line(512, T).await.unwrap(), b"250 ok");
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::Closed)));
    }

    #[tokio::test]
    async fn an_unfinished_line_at_the_end_is_closed_not_a_line() {
        let mut w = wire_after(b"250-first\r\n250 sec").await;
        assert_eq!(w.read_line(512, T).await.unwrap(), b"250-first");
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::Closed)));
        // An over-long line cut off by the close is not reported as a line either.
        let mut w = wire_after(&b"x".repeat(2000)).await;
        assert!(matches!(w.read_line(512, T).await, Err(ReadError::Closed)));
    }

    #[tokio::test]
    async fn lines_split_across_reads_are_joined() {
        let (mut peer, ours) = duplex(1024);
        let mut w = Wire::new(ours);
        let feeder = tokio::spawn(async move {
            for part in [&b"220 mail"[..], b".test ready\r", b"\n250 ok\r\n"] {
                peer.write_all(part).await.unwrap();
                tokio::task::yield_now().await;
            }
            peer
        });
        assert_eq!(w.read_line(512, T).await.unwrap(), b"220 mail.test ready");
        assert_eq!(w.read_line(512, T).await.unwrap(), b"250 ok");
        drop(feeder.await.unwrap());
    }

    #[tokio::test]
    async fn discarded_input_is_never_read() {
        let (mut peer, ours) = duplex(1024);
        peer.write_all(b"220 go ahead\r\n250 forged\r\n")
            .await
            .unwrap();
        let mut w = Wire::new(ours);
        assert_eq!(w.read_line(512, T).await.unwrap(), b"220 go ahead");
        assert_eq!(w.discard_input(), 12);
        assert_eq!(w.discard_input(), 0);
        peer.write_all(b"250 real\r\n").await.unwrap();
        assert_eq!(w.read_line(512, T).await.unwrap(), b"250 real");
    }

    #[tokio::test]
    async fn queued_output_goes_out_before_a_read_waits() {
        let (peer, ours) = duplex(1024);
        let mut w = Wire::new(ours);
        w.queue("EHLO a.test\r\n");
        w.queue_bytes(b"NOOP\r\n");
        let (r, mut pw) = tokio::io::split(peer);
        let echo = tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(r);
            let mut got = Vec::new();
            for _ in 0..2 {
                let mut l = String::new();
                tokio::io::AsyncBufReadExt::read_line(&mut r, &mut l)
                    .await
                    .unwrap();
                got.push(l);
            }
            pw.write_all(b"250 ok\r\n").await.unwrap();
            got
        });
        // No explicit flush: waiting for the reply sends the commands.
        assert_eq!(w.read_line(512, T).await.unwrap(), b"250 ok");
        assert_eq!(echo.await.unwrap(), ["EHLO a.test\r\n", "NOOP\r\n"]);
    }

    #[tokio::test]
    async fn room_for_a_big_transfer_is_given_back() {
        let big = [&b"y".repeat(100_000)[..], b"\r\n"].concat();
        let mut w = wire_after(&big).await;
        while !w.pending().ends_with(b"\r\n") {
            w.fill(T, 32 * 1024).await.unwrap();
        }
        assert!(w.buf.capacity() >= 100_000);
        let n = w.pending().len();
        w.consume(n);
        w.shrink();
        assert!(w.buf.capacity() <= 8 * LINE_CHUNK, "{}", w.buf.capacity());
        assert!(w.pending().is_empty());
    }
}
