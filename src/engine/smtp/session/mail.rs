//! MAIL FROM: the protocol checks (sequence, parameters, SIZE), then the gate.

use super::{Session, Transaction};
use crate::engine::events::{EventKind, Level};
use crate::engine::reply;
use smtp_proto::{MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MailFrom};

impl Session {
    /// MAIL FROM: opens a transaction when the sequence, the parameters and the gate allow.
    pub(super) async fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            return self.reply(reply::HELO_FIRST);
        }
        if self.tx.is_some() {
            return self.reply(reply::NESTED_MAIL);
        }
        let unsupported = from.flags & !(MAIL_BODY_7BIT | MAIL_BODY_8BITMIME) != 0
            || from.env_id.is_some()
            || from.trans_id.is_some()
            || from.by != 0
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mtrk.is_some()
            || from.solicit.is_some()
            || from.mt_priority != 0;
        if unsupported {
            return self.reply(reply::MAIL_PARAMETER);
        }
        if !self.esmtp && from.flags != 0 {
            return self.reply(reply::MAIL_PARAMETER_NEEDS_EHLO);
        }
        let smtp = &self.cur.config.smtp;
        let max = smtp.max_message_size;
        if from.size as u64 > max {
            self.count_refused();
            return self.reply(reply::too_big(max));
        }
        // Keep a reserve: room for the biggest message and a half, or the floor, whichever is
        // more, beyond what this one says it needs.
        let reserve = (max + max / 2).max(smtp.min_free_space);
        if !self
            .deps
            .intake
            .has_room(reserve.saturating_add(from.size as u64))
        {
            self.count_refused();
            self.log(
                Level::Warn,
                EventKind::MessageRejected {
                    reason: format!("less than {reserve} octets free in the data directory"),
                },
            );
            return self.reply(reply::STORAGE);
        }
        let (deps, cur) = (self.deps.clone(), self.cur.clone());
        let mut checks = std::mem::take(&mut self.checks);
        let decision = deps
            .gate
            .mail(&cur, &self.client(), &from.address, &mut checks)
            .await;
        self.checks = checks;
        let Some(tags) = self.admit(decision) else {
            self.count_refused();
            return;
        };
        self.tx = Some(Transaction {
            from: from.address,
            rcpts: Vec::new(),
            size: from.size as u64,
            tags,
        });
        self.reply(reply::SENDER_OK);
    }
}
