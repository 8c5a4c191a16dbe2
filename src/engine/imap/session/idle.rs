//! IDLE (RFC 2177): untagged updates as other sessions and deliveries change the folder,
//! woken by the account's change notices, until `DONE`.

use super::*;

impl Session {
    /// IDLE (RFC 2177): updates as they happen until `DONE`.
    pub(super) async fn idle(&mut self, tag: &str) -> Next {
        self.line(&format!("+ {}", reply::IDLING));
        if self.selected.is_some() {
            self.sync(true).await;
        }
        let timeout = self.timeout();
        loop {
            if let Err(e) = self.wire.flush().await {
                return Next::Close(format!("write error: {e}"));
            }
            let (shutdown, closed) = (self.deps.shutdown.clone(), self.seat.closed.clone());
            let mut w = self.user.as_ref().expect("authenticated").watch.clone();
            let got = tokio::select! {
                biased;
                r = self.wire.read_line(read::MAX_LINE, timeout) => Some(r),
                _ = w.changed() => None,
                _ = shutdown.cancelled() => {
                    self.line(&format!("* BYE {}", reply::SHUTTING_DOWN));
                    return Next::Close("server shutting down".into());
                }
                _ = closed.cancelled() => {
                    self.line(&format!("* BYE {}", reply::LISTENER_CLOSED));
                    return Next::Close("listener closed".into());
                }
            };
            match got {
                None => {
                    if self.selected.is_some() {
                        self.sync(true).await;
                        if self.doomed {
                            return Next::Close("UIDVALIDITY changed".into());
                        }
                    } else if let Some(u) = self.user.as_mut() {
                        u.watch.mark_unchanged();
                    }
                }
                Some(Ok(l)) if l.eq_ignore_ascii_case(b"DONE") => {
                    self.tagged(tag, ok());
                    return Next::Continue;
                }
                Some(Ok(_)) | Some(Err(ReadError::TooLong)) => {
                    self.tagged(tag, Done::Bad(reply::EXPECTED_DONE.into()));
                    return Next::Continue;
                }
                Some(Err(ReadError::Timeout)) => {
                    self.line(&format!("* BYE {}", reply::TIMEOUT));
                    return Next::Close("idle time-out".into());
                }
                Some(Err(ReadError::Closed)) => {
                    return Next::Close("client closed the connection".into());
                }
                Some(Err(e)) => return Next::Close(format!("read error: {e}")),
            }
        }
    }
}
