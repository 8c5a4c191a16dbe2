//! [`Role`]: what a listener's sessions may do. Below both the listeners that assign it and
//! the access policy that reads it.

/// What a listener's sessions may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Incoming SMTP: mail for local accounts only, never relayed.
    Incoming,
    /// Outgoing SMTP: where clients submit mail (local recipients delivered directly).
    Outgoing,
    /// One port serving both; who may relay is decided per session.
    Both,
}

impl Role {
    /// The name used in logs and status.
    pub fn name(self) -> &'static str {
        match self {
            Role::Incoming => "incoming",
            Role::Outgoing => "outgoing",
            Role::Both => "incoming+outgoing",
        }
    }
}
