//! DATA: reads the message strictly (only `<CRLF>.<CRLF>` ends it; a bare CR or LF closes the
//! session) into a body from the intake (in memory while small, on disk past that), asks the
//! gate at the end of data, and hands the body to the intake. `250` only when the intake says
//! the message is safe on disk; `452` when the body could not be written.

use super::{Next, Session};
use crate::engine::access::gate::{Decision, HEAD_SCANNED, Message};
use crate::engine::access::recipient::Recipient;
use crate::engine::events::{EventKind, Level};
use crate::engine::reply;
use crate::engine::smtp::conn::{DataEnd, DataError, ReadError};
use crate::engine::smtp::intake::Envelope;
use crate::engine::store::trace;

impl Session {
    /// DATA: the message up to its end, then the gate and the intake.
    pub(super) async fn data(&mut self) -> Next {
        match &self.tx {
            None => {
                self.reply(reply::MAIL_FIRST);
                return Next::Continue;
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.reply(reply::RCPT_FIRST);
                return Next::Continue;
            }
            Some(_) => {}
        }
        let cur = self.cur.clone();
        let limits = &cur.config.smtp;
        if !self.conn.pending().is_empty() {
            let d = self.deps.gate.pipelined_past_data(&cur, &self.client());
            if let Decision::Refuse(r) = d {
                self.tx = None;
                self.count_refused();
                self.refuse(r);
                return Next::Continue;
            }
        }
        self.reply(reply::START_DATA);
        let mut body = self.deps.intake.body();
        let end = self
            .conn
            .read_data(
                &mut body,
                limits.max_message_size as usize,
                limits.timeouts.data.0,
                limits.min_data_rate,
            )
            .await;
        let tx = self.tx.take().expect("checked above");
        let rejected = |s: &Self, level, reason: &str| {
            s.count_refused();
            s.log(
                level,
                EventKind::MessageRejected {
                    reason: reason.into(),
                },
            )
        };
        match end {
            Err(DataError::BareLineEnding) => {
                rejected(
                    self,
                    Level::Warn,
                    "bare CR or LF in message data (possible SMTP smuggling)",
                );
                self.reply(reply::BARE_LINE_ENDING);
                return Next::Close("bare CR or LF in DATA".into());
            }
            Err(DataError::Read(ReadError::Timeout)) => {
                self.reply(reply::DATA_TIMEOUT);
                return Next::Close("timeout in DATA".into());
            }
            Err(DataError::Read(e)) => return Next::Close(format!("during DATA: {e}")),
            Ok(DataEnd::TooBig) => {
                rejected(self, Level::Info, "too big");
                self.reply(reply::too_big(limits.max_message_size));
                return Next::Continue;
            }
            Ok(DataEnd::Nul) => {
                rejected(self, Level::Warn, "a NUL octet in message data");
                self.reply(reply::NUL_IN_DATA);
                return Next::Continue;
            }
            Ok(DataEnd::LineTooLong) => {
                rejected(self, Level::Info, "a line over 1000 octets");
                self.reply(reply::TEXT_LINE_TOO_LONG);
                return Next::Continue;
            }
            Ok(DataEnd::Complete) => {}
        }
        let head = body.finish().and_then(|()| body.head(HEAD_SCANNED));
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                let why = format!("cannot write the message to disk: {e}");
                rejected(self, Level::Error, &why);
                self.reply(reply::STORAGE);
                return Next::Continue;
            }
        };
        let id = format!("{}.{}", self.id, self.messages + 1);
        let relayed = tx.rcpts.iter().any(|r| matches!(r, Recipient::Remote(_)));
        let mut checks = std::mem::take(&mut self.checks);
        let content = self
            .deps
            .gate
            .content(
                &cur,
                &self.client(),
                &Message {
                    id: &id,
                    from: &tx.from,
                    relayed,
                    head: &head,
                    body: &body,
                },
                &mut checks,
            )
            .await;
        self.checks = checks;
        let mut tags = self.tags.clone();
        tags.extend(tx.tags);
        match content.decision {
            Decision::Refuse(r) => {
                self.count_refused();
                self.refuse(r);
                return Next::Continue;
            }
            Decision::Tag(t) => tags.extend(t),
            Decision::Pass => {}
        }
        // A logged-in client submits (RFC 6409 8), and so does one relaying through us or
        // let relay by its IP range: the Date and Message-ID it left out are added, as an MSA
        // does.
        let added = if content.submitted {
            trace::submission_fields(&head, &cur.config.server.hostname)
        } else {
            String::new()
        };
        // The added fields count towards the size limit like the rest of the message.
        let warnings = trace::warning_fields(&tags).len() as u64;
        let extra = warnings + added.len() as u64 + content.results.len() as u64;
        if body.len() + extra > limits.max_message_size {
            rejected(self, Level::Info, "too big with its warning header fields");
            self.reply(reply::too_big(limits.max_message_size));
            return Next::Continue;
        }
        let decision = self
            .deps
            .gate
            .end_of_data(&cur, &self.client(), &head, body.len());
        drop(head);
        if let Decision::Refuse(r) = decision {
            self.count_refused();
            self.refuse(r);
            return Next::Continue;
        }
        // Forged Authentication-Results fields are cut: the message is copied without them
        // (rare, and in chunks, like every copy of a body).
        if !content.forged.is_empty() {
            let fresh = self.deps.intake.body();
            body = match body.copy_without(&content.forged, fresh) {
                Ok(b) => b,
                Err(e) => {
                    let why = format!("cannot write the message to disk: {e}");
                    rejected(self, Level::Error, &why);
                    self.reply(reply::STORAGE);
                    return Next::Continue;
                }
            };
        }
        self.messages += 1;
        let env = Envelope {
            session: self.id.clone(),
            id: id.clone(),
            from: tx.from,
            rcpts: tx.rcpts,
            received: trace::Received {
                host: cur.config.server.hostname.clone(),
                helo: self.helo.clone().unwrap_or_default(),
                ip: self.peer.ip(),
                esmtp: self.esmtp,
                tls: self.tls.is_some(),
                auth: self.auth.is_some(),
                id,
            },
            tags,
            results: content.results,
            added,
        };
        let intake = self.deps.intake.clone();
        match intake.accept(env, body).await {
            Ok(accepted) => {
                // Progress: the junk command allowance starts again.
                self.junk = 0;
                self.reply(accepted.reply());
            }
            Err(r) => self.reply(r),
        }
        Next::Continue
    }
}
