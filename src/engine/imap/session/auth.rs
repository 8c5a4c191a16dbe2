//! Logging in: LOGIN and AUTHENTICATE PLAIN (SASL-IR or a continuation), checked by the
//! gate (the lockout shared with SMTP AUTH and POP3).

use super::*;

impl Session {
    /// Reads AUTHENTICATE's response line: `Ok(data)`, `Err(None)` when cancelled,
    /// `Err(Some(reason))` when the session must end.
    pub(super) async fn sasl_continue(&mut self) -> Result<Vec<u8>, Option<String>> {
        self.wire.queue("+ \r\n");
        if let Err(e) = self.wire.flush().await {
            return Err(Some(format!("write error: {e}")));
        }
        match self.wire.read_line(read::MAX_LINE, self.timeout()).await {
            Ok(l) if l == b"*" => Err(None),
            Ok(l) => base64::engine::general_purpose::STANDARD
                .decode(&l)
                .map_err(|_| None),
            Err(e) => Err(Some(format!("during AUTHENTICATE: {e}"))),
        }
    }

    /// The gate checks the password (lockout shared with SMTP AUTH and POP3). `Err` with
    /// the `NO` text when the client is now blocked (the session then ends).
    pub(super) async fn login(&mut self, user: String, pass: String) -> Result<Done, String> {
        let (deps, cur) = (self.deps.clone(), self.cur.clone());
        let (address, hash) = match deps
            .gate
            .mailbox_login(&cur, &self.id, self.peer, user, pass)
            .await
        {
            MailboxLogin::Success { address, hash } => (address, hash),
            MailboxLogin::Failure(None) => return Ok(no(reply::AUTH_FAILED)),
            MailboxLogin::Failure(Some(r)) | MailboxLogin::Blocked(r) => {
                return Err(r.plain_text());
            }
            MailboxLogin::Busy => return Ok(no(reply::AUTH_BUSY)),
        };
        let Some(account) = Account::new(&deps.mailroot, &address) else {
            return Ok(no(reply::SERVER_BUG));
        };
        let a = account.clone();
        if let Ok(Err(e)) | Err(e) = tokio::task::spawn_blocking(move || a.prepare())
            .await
            .map_err(std::io::Error::other)
        {
            self.log(
                Level::Error,
                format!("{address}: cannot open the mailbox: {e}"),
            );
            return Ok(no(reply::SERVER_BUG));
        }
        self.log(Level::Info, format!("logged in as {address}"));
        self.user = Some(User {
            watch: watch::subscribe(account.dir()),
            address,
            hash,
            account,
        });
        let caps = self.capabilities();
        Ok(Done::Ok(format!(
            "[CAPABILITY {caps}] {}",
            reply::LOGGED_IN
        )))
    }
}

/// `authzid NUL authcid NUL password` (RFC 4616); the login is the authcid.
pub(super) fn decode_plain(raw: &[u8]) -> Option<(String, String)> {
    let mut parts = raw.split(|&b| b == 0);
    let (_authz, user, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() {
        return None;
    }
    Some((
        String::from_utf8(user.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}
