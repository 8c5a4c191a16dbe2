//! HELO and EHLO: the greeting reply and the extensions offered.

use super::Session;
use crate::engine::access::relay;
use crate::engine::reply;

impl Session {
    /// HELO (`esmtp` false) or EHLO: resets the transaction and names the client.
    pub(super) fn ehlo(&mut self, host: String, esmtp: bool) {
        if host.trim().is_empty() {
            return self.reply(reply::EHLO_SYNTAX);
        }
        self.tx = None;
        let server = self.cur.config.server.hostname.clone();
        let ip = self.peer.ip();
        if !esmtp {
            self.esmtp = false;
            let r = reply::hello(&server, &host, ip);
            self.helo = Some(host);
            return self.reply(r);
        }
        let mut extensions = vec![
            "PIPELINING".to_string(),
            format!("SIZE {}", self.cur.config.smtp.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls.is_none() && self.cur.tls.is_some() {
            extensions.push("STARTTLS".into());
        }
        if self.auth_allowed() && relay::login_can_grant(self.role) {
            extensions.push("AUTH PLAIN LOGIN".into());
        }
        extensions.push("HELP".into());
        self.esmtp = true;
        let r = reply::ehlo(&server, &host, ip, &extensions);
        self.helo = Some(host);
        self.reply(r);
    }

    /// Whether AUTH may be offered and used now (over TLS, or plaintext when allowed).
    pub(super) fn auth_allowed(&self) -> bool {
        self.tls.is_some() || !self.cur.config.smtp.tls.auth_requires_tls
    }
}
