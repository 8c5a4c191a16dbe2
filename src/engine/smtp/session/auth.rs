//! AUTH PLAIN and LOGIN (RFC 4954): the SASL exchange here; the credentials are checked, and
//! failed logins counted towards the lockout, by the gate.

use super::Session;
use crate::engine::access::gate::{AuthOutcome, Decision};
use crate::engine::access::relay;
use crate::engine::reply::{self, Reply};
use crate::engine::smtp::conn::MAX_AUTH_LINE;
use base64::Engine as _;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

impl Session {
    /// AUTH: sequence checks, the gate's block check, the exchange, the gate's verdict.
    pub(super) async fn auth(&mut self, mechanism: u64, initial: String) {
        if !relay::login_can_grant(self.role) {
            return self.reply(reply::AUTH_NOT_ENABLED);
        }
        if self.helo.is_none() {
            return self.reply(reply::EHLO_FIRST);
        }
        if self.auth.is_some() {
            return self.reply(reply::ALREADY_AUTHENTICATED);
        }
        if self.tx.is_some() {
            return self.reply(reply::AUTH_IN_TRANSACTION);
        }
        if !self.auth_allowed() {
            return self.reply(reply::ENCRYPTION_REQUIRED);
        }
        let (deps, cur) = (self.deps.clone(), self.cur.clone());
        if let Decision::Refuse(r) = deps.gate.auth_start(&cur, &self.client()) {
            return self.refuse(r);
        }
        let credentials = match mechanism {
            AUTH_PLAIN => self.auth_plain(initial).await,
            AUTH_LOGIN => self.auth_login(initial).await,
            _ => return self.reply(reply::UNKNOWN_MECHANISM),
        };
        let (user, pass) = match credentials {
            Ok(c) => c,
            Err(r) => return self.reply(r),
        };
        match deps
            .gate
            .authenticate(&cur, &self.client(), user, pass)
            .await
        {
            AuthOutcome::Success(login, hash) => {
                self.auth = Some((login, hash));
                self.reply(reply::AUTH_OK);
            }
            AuthOutcome::Busy => self.reply(reply::AUTH_BUSY),
            AuthOutcome::Failure(lockout) => {
                self.reply(reply::AUTH_INVALID);
                if let Some(r) = lockout {
                    self.refuse(r);
                }
            }
        }
    }

    /// Sends a `334` challenge and reads one continuation line; `*` cancels.
    async fn auth_line(&mut self, prompt: &'static str) -> Result<Vec<u8>, Reply> {
        self.conn
            .queue_fmt(format_args!("{}", reply::challenge(prompt).on_wire()));
        let timeout = self.cur.config.smtp.timeouts.command.0;
        let line = self
            .conn
            .read_line(MAX_AUTH_LINE, timeout)
            .await
            .map_err(|_| reply::AUTH_UNREADABLE)?;
        if line == b"*" {
            return Err(reply::AUTH_CANCELLED);
        }
        decode64(&line)
    }

    async fn auth_plain(&mut self, initial: String) -> Result<(String, String), Reply> {
        let raw = if initial.is_empty() {
            self.auth_line("").await?
        } else if initial == "=" {
            Vec::new()
        } else {
            decode64(initial.as_bytes())?
        };
        let mut parts = raw.split(|&b| b == 0);
        let (_authz, user, pass) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(z), Some(u), Some(p), None) => (z, u, p),
            _ => return Err(reply::AUTH_BAD_PLAIN),
        };
        utf8_pair(user, pass)
    }

    async fn auth_login(&mut self, initial: String) -> Result<(String, String), Reply> {
        let user = if initial.is_empty() {
            self.auth_line("VXNlcm5hbWU6").await?
        } else {
            decode64(initial.as_bytes())?
        };
        let pass = self.auth_line("UGFzc3dvcmQ6").await?;
        utf8_pair(&user, &pass)
    }
}

fn decode64(b: &[u8]) -> Result<Vec<u8>, Reply> {
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|_| reply::AUTH_BAD_BASE64)
}

fn utf8_pair(user: &[u8], pass: &[u8]) -> Result<(String, String), Reply> {
    match (std::str::from_utf8(user), std::str::from_utf8(pass)) {
        (Ok(u), Ok(p)) => Ok((u.to_string(), p.to_string())),
        _ => Err(reply::AUTH_NOT_UTF8),
    }
}
