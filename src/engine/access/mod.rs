//! Access policy: the [`gate`] every SMTP decision goes through, and what it is built from —
//! who may relay ([`relay`]), where a recipient goes ([`recipient`]), per-IP abuse state
//! ([`abuse`]), the DNS checks ([`dnsbl`], [`spf`], [`rdns`]), and the message authentication
//! at the end of DATA ([`mailauth`]: DKIM, DMARC, `Authentication-Results:`). Nothing here reads or
//! writes a socket; the session asks and acts on the answer.

pub mod abuse;
pub mod dnsbl;
pub mod gate;
pub mod mailauth;
pub mod rdns;
pub mod recipient;
pub mod relay;
pub mod spf;

pub use gate::{Client, Decision, Gate, MailboxLogin, Refusal};
