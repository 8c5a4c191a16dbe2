//! HELO and EHLO: the greeting reply and the extensions offered.

use super::Session;
use crate::engine::reply::{self, Reply};

impl Session {
    /// HELO (`esmtp` false) or EHLO: resets the transaction and names the client.
    pub(super) fn ehlo(&mut self, host: String, esmtp: bool) {
        if host.trim().is_empty() {
            return self.reply(reply::EHLO_SYNTAX);
        }
        self.tx = None;
        let cfg = &self.cur.config;
        let hello = format!("{} Hello {host} [{}]", cfg.server.hostname, self.peer.ip());
        if !esmtp {
            self.helo = Some(host);
            self.esmtp = false;
            return self.reply(Reply::new(250, hello));
        }
        let mut lines = vec![
            hello,
            "PIPELINING".to_string(),
            format!("SIZE {}", cfg.smtp.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls.is_none() && self.cur.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        self.helo = Some(host);
        self.esmtp = true;
        self.reply(Reply::lines(250, &lines));
    }

    /// Whether AUTH may be offered and used now (over TLS, or plaintext when allowed).
    pub(super) fn auth_allowed(&self) -> bool {
        self.tls.is_some() || !self.cur.config.smtp.tls.auth_requires_tls
    }
}
