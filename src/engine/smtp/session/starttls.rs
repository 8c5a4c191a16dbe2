//! STARTTLS (RFC 3207) and the TLS handshake, which the implicit-TLS port runs first thing.

use super::{Next, Session};
use crate::engine::events::{EventKind, Level};
use crate::engine::reply;
use crate::engine::smtp::conn::Conn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a TLS handshake did not complete (the session then ends, for this reason).
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    /// No certificate could be loaded.
    #[error("TLS is not available")]
    Unavailable,
    /// The handshake failed.
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    /// The client took too long.
    #[error("TLS handshake timed out")]
    TimedOut,
}

impl Session {
    /// STARTTLS: `220`, then the command loop hands the stream to [`Session::handshake`].
    pub(super) fn starttls(&mut self) -> Next {
        if self.tls.is_some() {
            self.reply(reply::TLS_ACTIVE);
            return Next::Continue;
        }
        if self.cur.tls.is_none() {
            self.reply(reply::TLS_UNAVAILABLE);
            return Next::Continue;
        }
        self.reply(reply::TLS_READY);
        // RFC 3207 4.2: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.auth = None;
        Next::StartTls
    }

    /// Runs the server side of the TLS handshake on the session's stream; `Err` is why the
    /// session ends.
    pub(super) async fn handshake(&mut self) -> Result<(), HandshakeError> {
        let Some(acceptor) = self.cur.tls.clone() else {
            return Err(HandshakeError::Unavailable);
        };
        let plain = std::mem::replace(&mut self.conn, Conn::new(Box::new(Detached))).into_inner();
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(plain)).await {
            Ok(Ok(tls)) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                self.log(
                    Level::Info,
                    EventKind::TlsEstablished {
                        version: version.clone(),
                    },
                );
                self.tls = Some(version);
                self.conn = Conn::new(Box::new(tls));
                self.conn
                    .set_write_timeout(self.cur.config.smtp.timeouts.command.0);
                Ok(())
            }
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Err(_) => Err(HandshakeError::TimedOut),
        }
    }
}

/// Stands in for the stream while the TLS handshake has it: reads see end of file, writes
/// fail.
struct Detached;

impl AsyncRead for Detached {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Detached {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
