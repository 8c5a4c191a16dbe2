//! RCPT TO: the protocol checks (sequence, parameters, the recipient limit), then the gate's
//! verdict on where the recipient goes, with tarpitting after refusals; a local account with
//! no room (its Max Account Size reached, or the size declared at MAIL would pass it) gets
//! `552 5.2.2` here, before any data is sent.

use super::Session;
use crate::engine::access::recipient::Recipient;
use crate::engine::events::{EventKind, Level};
use crate::engine::reply;
use smtp_proto::RcptTo;

impl Session {
    /// RCPT TO: adds the recipient to the transaction (once) when the gate accepts it.
    pub(super) fn rcpt(&mut self, to: RcptTo<String>) {
        let Some(tx) = self.tx.as_ref() else {
            return self.reply(reply::MAIL_FIRST);
        };
        if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
            return self.reply(reply::RCPT_PARAMETER);
        }
        if tx.rcpts.len() >= self.cur.config.smtp.max_recipients_per_mail as usize {
            return self.reply(reply::TOO_MANY_RECIPIENTS);
        }
        let declared = tx.size;
        let verdict = self.deps.gate.rcpt(&self.cur, &self.client(), &to.address);
        if let Ok(Recipient::Local(l)) = &verdict
            && self.deps.intake.mailbox_full(l, declared)
        {
            // Not the client's fault: no tarpit, no block.
            self.log(
                Level::Info,
                EventKind::RecipientRejected {
                    rcpt: l.address.clone(),
                    reason: "mailbox full (Max Account Size)".into(),
                },
            );
            return self.reply(reply::MAILBOX_FULL);
        }
        match verdict {
            Ok(rcpt) => {
                let tx = self.tx.as_mut().expect("checked above");
                if !tx.rcpts.iter().any(|r| same(r, &rcpt)) {
                    tx.rcpts.push(rcpt);
                }
                self.reply(reply::RECIPIENT_OK);
            }
            Err(refusal) => {
                self.count_refused();
                self.reply(refusal);
                self.rcpt_failures += 1;
                let (delay, block) =
                    self.deps
                        .gate
                        .rcpt_failed(&self.cur, &self.client(), self.rcpt_failures);
                self.delay = delay;
                if let Some(r) = block {
                    self.refuse(r);
                }
            }
        }
    }
}

/// Whether two recipients are the same mailbox (a duplicate RCPT is accepted once).
fn same(a: &Recipient, b: &Recipient) -> bool {
    match (a, b) {
        (Recipient::Local(x), Recipient::Local(y)) => x.address == y.address,
        (Recipient::Remote(x), Recipient::Remote(y)) => x == y,
        _ => false,
    }
}
