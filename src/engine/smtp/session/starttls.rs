//! STARTTLS (RFC 3207) and the TLS handshake, which the implicit-TLS port runs first thing.

use super::{Next, Session};
use crate::engine::events::{EventKind, Level};
use crate::engine::reply;
use crate::engine::smtp::conn::Conn;
use crate::engine::tls::{self, Detached, HandshakeError};

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
        let (tls, version) = tls::handshake(&acceptor, plain).await?;
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
}
