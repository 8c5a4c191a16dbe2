//! The AUTHENTICATED state's folder commands that need more than a line: LIST and LSUB
//! (with LIST-EXTENDED's options), STATUS, SELECT and EXAMINE, APPEND.

use super::*;

impl Session {
    /// LIST or LSUB; `\Subscribed` only when LIST-EXTENDED's options ask for it (RFC 5258).
    pub(super) async fn list(
        &mut self,
        reference: &str,
        pattern: &ListMailbox<'_>,
        lsub: bool,
        opts: crate::engine::imap::list::Options,
    ) -> Done {
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() && !lsub {
            self.line("* LIST (\\Noselect) \"/\" \"\"");
            return ok();
        }
        let full = format!("{reference}{pattern}");
        let a = self.account();
        let Ok(Ok((folders, subs))) = tokio::task::spawn_blocking(move || {
            Ok::<_, std::io::Error>((a.folders()?, a.subscriptions()?))
        })
        .await
        else {
            return no(reply::SERVER_BUG);
        };
        let names: &[String] = if lsub || opts.subscribed_only {
            &subs
        } else {
            &folders
        };
        for name in names {
            let matched = if name == "INBOX" {
                wildcard(full.to_ascii_uppercase().as_bytes(), b"INBOX")
            } else {
                wildcard(full.as_bytes(), name.as_bytes())
            };
            if !matched {
                continue;
            }
            let mut attrs = Vec::new();
            let children = folders.iter().any(|f| f.starts_with(&format!("{name}/")));
            attrs.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if !lsub && (opts.subscribed_only || opts.return_subscribed) && subs.contains(name) {
                attrs.push("\\Subscribed");
            }
            let special = mailbox::SPECIAL_USE.iter().find(|(n, _)| n == name);
            if let Some((_, attr)) = special {
                attrs.push(attr);
            } else if opts.special_only {
                continue;
            }
            if !folders.contains(name) {
                attrs = if lsub {
                    vec!["\\Noselect"]
                } else {
                    vec!["\\NonExistent", "\\Subscribed"]
                };
            }
            self.line(&format!(
                "* {verb} ({}) \"/\" {}",
                attrs.join(" "),
                quoted(name)
            ));
            if opts.status.any() && folders.contains(name) {
                let _ = self.status(name, &status_items(opts.status)).await;
            }
        }
        ok()
    }

    pub(super) async fn status(&mut self, name: &str, items: &[StatusDataItemName]) -> Done {
        let a = self.account();
        if !a.exists(name) && !name.eq_ignore_ascii_case("INBOX") {
            return no(reply::NO_MAILBOX);
        }
        let folder = a.folder(name);
        let Ok(Ok(scan)) = tokio::task::spawn_blocking(move || folder.scan()).await else {
            return no(reply::SERVER_BUG);
        };
        let mut out = Vec::new();
        for i in items {
            match i {
                StatusDataItemName::Messages => {
                    out.push(format!("MESSAGES {}", scan.messages.len()))
                }
                StatusDataItemName::Recent => out.push("RECENT 0".into()),
                StatusDataItemName::UidNext => out.push(format!("UIDNEXT {}", scan.uidnext)),
                StatusDataItemName::UidValidity => {
                    out.push(format!("UIDVALIDITY {}", scan.uidvalidity))
                }
                StatusDataItemName::Unseen => out.push(format!(
                    "UNSEEN {}",
                    scan.messages.iter().filter(|m| !m.has_flag('S')).count()
                )),
                StatusDataItemName::Deleted => out.push(format!(
                    "DELETED {}",
                    scan.messages.iter().filter(|m| m.has_flag('T')).count()
                )),
                StatusDataItemName::DeletedStorage => out.push(format!(
                    "DELETED-STORAGE {}",
                    scan.messages
                        .iter()
                        .filter(|m| m.has_flag('T'))
                        .map(|m| m.size)
                        .sum::<u64>()
                )),
            }
        }
        self.line(&format!("* STATUS {} ({})", quoted(name), out.join(" ")));
        ok()
    }

    pub(super) async fn select(&mut self, name: String, read_only: bool) -> Done {
        self.selected = None;
        let a = self.account();
        if !name.eq_ignore_ascii_case("INBOX") && (!mailbox::valid_name(&name) || !a.exists(&name))
        {
            return no(reply::NO_MAILBOX);
        }
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            name
        };
        let folder = a.folder(&name);
        let f = folder.clone();
        // What was in new/ has now been seen by a reader: moved to cur/.
        let opened = tokio::task::spawn_blocking(move || {
            let mut scan = f.scan()?;
            if !read_only {
                let mut moved = false;
                for m in scan.messages.iter_mut().filter(|m| m.in_new) {
                    f.to_cur(m)?;
                    moved = true;
                }
                if moved {
                    f.sync()?;
                }
            }
            Ok::<_, std::io::Error>(scan)
        })
        .await;
        let Ok(Ok(scan)) = opened else {
            return no(reply::SERVER_BUG);
        };
        if let Some(u) = self.user.as_mut() {
            u.watch.mark_unchanged();
        }
        let sel = Selected::new(name.clone(), folder, read_only, scan);
        let kw: Vec<String> = sel.keywords.clone();
        let flags = format!(
            "\\Answered \\Flagged \\Deleted \\Seen \\Draft{}",
            kw.iter().map(|k| format!(" {k}")).collect::<String>()
        );
        self.line(&format!("* {} EXISTS", sel.exists()));
        if !self.rev2 {
            // IMAP4rev1 requires it; Postern keeps no \Recent (RFC 9051 dropped it).
            self.line("* 0 RECENT");
        }
        self.line(&format!("* FLAGS ({flags})"));
        self.line(&format!(
            "* OK [PERMANENTFLAGS ({flags} \\*)] {}",
            reply::PERMANENT_FLAGS
        ));
        self.line(&format!(
            "* OK [UIDVALIDITY {}] {}",
            sel.uidvalidity,
            reply::UIDS_VALID
        ));
        self.line(&format!(
            "* OK [UIDNEXT {}] {}",
            sel.uidnext,
            reply::UIDNEXT
        ));
        if let Some(i) = sel
            .entries
            .iter()
            .position(|e| !e.flags.contains(&Flag::Seen))
        {
            self.line(&format!("* OK [UNSEEN {}] {}", i + 1, reply::FIRST_UNSEEN));
        }
        if self.rev2 {
            self.line(&format!("* LIST () \"/\" {}", quoted(&name)));
        }
        self.selected = Some(sel);
        Done::Ok(if read_only {
            reply::EXAMINED.into()
        } else {
            reply::SELECTED.into()
        })
    }

    pub(super) async fn append(
        &mut self,
        target: String,
        flags: &[Flag<'_>],
        date: Option<SystemTime>,
        data: Vec<u8>,
    ) -> Done {
        let a = self.account();
        if !target.eq_ignore_ascii_case("INBOX")
            && (!mailbox::valid_name(&target) || !a.exists(&target))
        {
            return no(reply::TRY_CREATE);
        }
        let to: Folder = a.folder(&target);
        let host = self.cur.config.server.hostname.clone();
        let quota = self.quota();
        let size = data.len() as u64;
        match tokio::task::spawn_blocking(move || quota.would_exceed(size).map(|o| (o, quota)))
            .await
        {
            Ok(Ok((true, _))) => {
                self.log(
                    Level::Info,
                    format!("APPEND to {target} refused: over quota"),
                );
                no(reply::OVER_QUOTA)
            }
            Ok(Ok((false, quota))) => {
                self.append_within(target, to, host, flags, date, data, quota)
                    .await
            }
            _ => no(reply::SERVER_BUG),
        }
    }

    /// APPEND once the quota has room: written, recorded in the account's accounting.
    #[allow(clippy::too_many_arguments)]
    async fn append_within(
        &mut self,
        target: String,
        to: Folder,
        host: String,
        flags: &[Flag<'_>],
        date: Option<SystemTime>,
        data: Vec<u8>,
        quota: crate::engine::store::mailbox::quota::Quota,
    ) -> Done {
        let (letters, words) = info_of(flags);
        let done = tokio::task::spawn_blocking(move || {
            let kw = keywords::letters(to.dir(), &words)?;
            let base = to.append(&host, &data, &format!("{letters}{kw}"), date)?;
            quota.record_add(data.len() as u64)?;
            let scan = to.scan()?;
            let uid = scan
                .messages
                .iter()
                .find(|m| m.base == base)
                .map_or(0, |m| m.uid);
            Ok::<_, std::io::Error>((scan.uidvalidity, uid))
        })
        .await;
        match done {
            Ok(Ok((v, uid))) => {
                self.log(Level::Info, format!("APPEND to {target}: UID {uid}"));
                if self.selected.is_some() {
                    self.sync(true).await;
                }
                Done::Ok(format!("[APPENDUID {v} {uid}] {}", reply::DONE))
            }
            _ => no(reply::SERVER_BUG),
        }
    }
}

/// The STATUS items of a `LIST ... RETURN (STATUS (...))`, as STATUS takes them.
fn status_items(s: crate::engine::imap::list::StatusItems) -> Vec<StatusDataItemName> {
    [
        (s.messages, StatusDataItemName::Messages),
        (s.uidnext, StatusDataItemName::UidNext),
        (s.uidvalidity, StatusDataItemName::UidValidity),
        (s.unseen, StatusDataItemName::Unseen),
        (s.deleted, StatusDataItemName::Deleted),
        (s.recent, StatusDataItemName::Recent),
    ]
    .into_iter()
    .filter_map(|(on, item)| on.then_some(item))
    .collect()
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but `/`.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != b'/')
            .any(|i| wildcard(rest, &name[i..])),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, nrest)| n == c && wildcard(rest, nrest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(wildcard(b"*", b"Archive/2024"));
        assert!(wildcard(b"%", b"Archive"));
        assert!(!wildcard(b"%", b"Archive/2024"));
        assert!(wildcard(b"Archive/%", b"Archive/2024"));
        assert!(!wildcard(b"Sent", b"Sent2"));
    }
}
