//! The QUOTA extension (RFC 9208) over Max Account Size: one quota root per account, named
//! `""`, holding every folder, with one resource, STORAGE (in units of 1,024 octets). An
//! account without a Max Account Size has no quota root. The limit is the administrator's
//! (`postern account quota`, the Domains & Accounts dialog): SETQUOTA is refused.

use super::*;

/// The name of the account's one quota root.
const ROOT: &str = "";

impl Session {
    /// GETQUOTAROOT: the mailbox's roots (`""`, or none when unlimited) and each root's QUOTA.
    pub(super) async fn get_quota_root(&mut self, name: String) -> Done {
        let a = self.account();
        if !name.eq_ignore_ascii_case("INBOX") && (!mailbox::valid_name(&name) || !a.exists(&name))
        {
            return no(reply::NO_MAILBOX);
        }
        let quota = self.quota();
        if quota.limit() == 0 {
            self.line(&format!("* QUOTAROOT {}", quoted(&name)));
            return ok();
        }
        let Some(line) = self.quota_line(quota).await else {
            return no(reply::SERVER_BUG);
        };
        self.line(&format!("* QUOTAROOT {} {}", quoted(&name), quoted(ROOT)));
        self.line(&line);
        ok()
    }

    /// GETQUOTA: the account's root, or `NO` for any other name (or when unlimited).
    pub(super) async fn get_quota(&mut self, root: &str) -> Done {
        let quota = self.quota();
        if root != ROOT || quota.limit() == 0 {
            return no(reply::NO_QUOTA_ROOT);
        }
        match self.quota_line(quota).await {
            Some(line) => {
                self.line(&line);
                ok()
            }
            None => no(reply::SERVER_BUG),
        }
    }

    /// `* QUOTA "" (STORAGE <used> <limit>)`, in KiB (used rounded up, the limit down, so a
    /// client never reads room that is not there); `None` when the usage cannot be read.
    async fn quota_line(&mut self, quota: Quota) -> Option<String> {
        let limit = quota.limit();
        let usage = tokio::task::spawn_blocking(move || quota.usage())
            .await
            .ok()?
            .ok()?;
        Some(format!(
            "* QUOTA {} (STORAGE {} {})",
            quoted(ROOT),
            usage.octets.div_ceil(1024),
            limit / 1024
        ))
    }
}
