//! The SELECTED state's message commands: FETCH, STORE, SEARCH, EXPUNGE (and UID
//! EXPUNGE, CLOSE's silent one), COPY and MOVE with COPYUID.

use super::*;

impl Session {
    /// The indexes (0-based) a sequence set or UID set names, in folder order. Each
    /// message is tested against the set's ranges, so `1:4294967295` costs no more than `*`.
    pub(super) fn targets(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let sel = self.selected.as_ref().expect("selected");
        let max_uid = sel.entries.last().map_or(0, |e| e.message.uid);
        let max_seq = sel.entries.len() as u32;
        (0..sel.entries.len())
            .filter(|&i| {
                if uid {
                    search::in_set(set, sel.entries[i].message.uid, max_uid)
                } else {
                    search::in_set(set, i as u32 + 1, max_seq)
                }
            })
            .collect()
    }

    /// Whether a sequence set names only sequence numbers beyond the folder somewhere (a
    /// `BAD`, RFC 9051 §6.4.4 and §9 `seq-number`).
    pub(super) fn out_of_range(&self, set: &SequenceSet) -> bool {
        use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
        let n = self.selected.as_ref().map_or(0, |s| s.entries.len()) as u32;
        // `*` is the last message, or nothing in an empty folder (`1:*` then names nothing).
        let over = |s: &SeqOrUid| matches!(s, SeqOrUid::Value(v) if v.get() > n);
        set.0.as_ref().iter().any(|s| match s {
            Sequence::Single(a) => over(a),
            // A range reaching past the end (a client's stale count) is served in part.
            Sequence::Range(a, b) => over(a) && over(b),
        })
    }

    pub(super) async fn fetch(
        &mut self,
        set: &SequenceSet,
        mut items: Vec<MessageDataItemName<'_>>,
        uid: bool,
    ) -> Done {
        if !uid && self.out_of_range(set) {
            return Done::Bad(reply::BAD_SEQUENCE.into());
        }
        if uid && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let sets_seen = items.iter().any(|i| {
            matches!(
                i,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Binary { peek: false, .. }
            )
        });
        let needs_body = message::needs_body(&items);
        let header_only = message::header_only(&items);
        let needs_date = items.contains(&MessageDataItemName::InternalDate);
        let targets = self.targets(set, uid);
        let mut gone = false;
        let mut seen_changed = Vec::new();
        for i in targets {
            let sel = self.selected.as_mut().expect("selected");
            let folder = sel.folder.clone();
            let entry = &mut sel.entries[i];
            if entry.gone {
                gone = true;
                continue;
            }
            // Plain file I/O on this task, as POP3's RETR (see ARCHITECTURE.md).
            let raw = if needs_body {
                match read_message(&folder, &mut entry.message, header_only) {
                    Ok(v) => v,
                    Err(_) => {
                        gone = true;
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let date = if needs_date {
                folder
                    .mtime(&mut entry.message)
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            } else {
                SystemTime::UNIX_EPOCH
            };
            if sets_seen && !sel.read_only && !entry.flags.contains(&Flag::Seen) {
                entry.flags.push(Flag::Seen);
                seen_changed.push(i);
            }
            let (Some(seq), Some(uidn)) = (
                NonZeroU32::new(i as u32 + 1),
                NonZeroU32::new(entry.message.uid),
            ) else {
                continue;
            };
            let mut out = message::fetch(
                &MessageView {
                    seq,
                    uid: uidn,
                    flags: &entry.flags,
                    internal_date: internal_date(date),
                    size: entry.message.size.min(u32::MAX as u64) as u32,
                    raw: &raw,
                },
                &items,
            );
            if sets_seen
                && seen_changed.last() == Some(&i)
                && !items.contains(&MessageDataItemName::Flags)
            {
                out.push(MessageDataItem::Flags(
                    entry.flags.iter().cloned().map(FlagFetch::Flag).collect(),
                ));
            }
            if out.is_empty() {
                continue;
            }
            self.data(Data::Fetch {
                seq,
                items: Vec1::unvalidated(out),
            });
            // Sent as it is made: a FETCH of a whole folder never piles up in memory.
            if self.unflushed >= FLUSH_AT {
                self.unflushed = 0;
                if let Err(e) = self.wire.flush().await {
                    self.log(Level::Info, format!("write error: {e}"));
                    break;
                }
            }
        }
        if !seen_changed.is_empty() {
            self.write_flags(&seen_changed).await;
        }
        expunged_meanwhile(gone, uid)
    }

    /// Writes the flags of these entries to their file names.
    pub(super) async fn write_flags(&mut self, idx: &[usize]) {
        let sel = self.selected.as_ref().expect("selected");
        let folder = sel.folder.clone();
        let jobs: Vec<(usize, mailbox::Message, String, Vec<String>)> = idx
            .iter()
            .map(|&i| {
                let e = &sel.entries[i];
                let (letters, words) = info_of(&e.flags);
                (i, e.message.clone(), letters, words)
            })
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (i, mut m, letters, words) in jobs {
                let kw = keywords::letters(folder.dir(), &words).unwrap_or_default();
                if folder
                    .set_flags(&mut m, &format!("{letters}{kw}"))
                    .unwrap_or(false)
                {
                    out.push((i, m));
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        let sel = self.selected.as_mut().expect("selected");
        for (i, m) in done {
            if let Some(e) = sel.entries.get_mut(i) {
                e.message = m;
            }
        }
        sel.keywords = keywords::read(sel.folder.dir()).unwrap_or_default();
        self.poke();
    }

    pub(super) async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
    ) -> Done {
        if self.selected.as_ref().is_some_and(|s| s.read_only) {
            return no(reply::READ_ONLY);
        }
        if !uid && self.out_of_range(set) {
            return Done::Bad(reply::BAD_SEQUENCE.into());
        }
        let targets = self.targets(set, uid);
        let sel = self.selected.as_mut().expect("selected");
        let mut changed = Vec::new();
        for &i in &targets {
            let e = &mut sel.entries[i];
            if e.gone {
                continue;
            }
            let mut new: Vec<Flag<'static>> = match kind {
                StoreType::Replace => Vec::new(),
                _ => e.flags.clone(),
            };
            for f in flags {
                let f = f.clone().into_static();
                match kind {
                    StoreType::Remove => new.retain(|x| *x != f),
                    _ => {
                        if !new.contains(&f) {
                            new.push(f)
                        }
                    }
                }
            }
            if new != e.flags {
                e.flags = new;
                changed.push(i);
            }
        }
        if !changed.is_empty() {
            self.write_flags(&changed).await;
        }
        if response == StoreResponse::Answer {
            for i in targets {
                self.flags_response(i as u32 + 1, uid);
            }
        }
        ok()
    }

    pub(super) async fn search(
        &mut self,
        tag: &str,
        criteria: Vec1<SearchKey<'_>>,
        uid: bool,
    ) -> Done {
        let key = SearchKey::And(criteria);
        let needs_body = search::needs_body(&key);
        let header_only = search::header_only(&key);
        let sel = self.selected.as_mut().expect("selected");
        let bounds = Bounds {
            max_seq: sel.entries.len() as u32,
            max_uid: sel.entries.last().map_or(0, |e| e.message.uid),
        };
        let folder = sel.folder.clone();
        let mut hits = Vec::new();
        for (i, e) in sel.entries.iter_mut().enumerate() {
            if e.gone {
                continue;
            }
            let raw = if needs_body {
                read_message(&folder, &mut e.message, header_only).unwrap_or_default()
            } else {
                Vec::new()
            };
            let date = folder
                .mtime(&mut e.message)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let (Some(seq), Some(u)) = (
                NonZeroU32::new(i as u32 + 1),
                NonZeroU32::new(e.message.uid),
            ) else {
                continue;
            };
            let view = MessageView {
                seq,
                uid: u,
                flags: &e.flags,
                internal_date: internal_date(date),
                size: e.message.size.min(u32::MAX as u64) as u32,
                raw: &raw,
            };
            if search::matches(&key, &view, &bounds) {
                hits.push(if uid { u.get() } else { seq.get() });
            }
        }
        if self.rev2 {
            let all = if hits.is_empty() {
                String::new()
            } else {
                format!(" ALL {}", set_of(&hits))
            };
            let u = if uid { " UID" } else { "" };
            self.line(&format!("* ESEARCH (TAG {}){u}{all}", quoted(tag)));
        } else {
            let list: String = hits.iter().map(|n| format!(" {n}")).collect();
            self.line(&format!("* SEARCH{list}"));
        }
        ok()
    }

    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those also in `uids`); `tell` sends the
    /// untagged EXPUNGEs (CLOSE removes silently).
    pub(super) async fn expunge(&mut self, uids: Option<SequenceSet>, tell: bool) -> Done {
        let sel = self.selected.as_ref().expect("selected");
        if sel.read_only {
            return no(reply::READ_ONLY);
        }
        let in_set: Vec<usize> = match &uids {
            Some(s) => self.targets(s, true),
            None => (0..sel.entries.len()).collect(),
        };
        let doomed: Vec<usize> = in_set
            .into_iter()
            .filter(|&i| sel.entries[i].flags.contains(&Flag::Deleted))
            .collect();
        if doomed.is_empty() {
            return ok();
        }
        let folder = sel.folder.clone();
        let msgs: Vec<mailbox::Message> = doomed
            .iter()
            .map(|&i| sel.entries[i].message.clone())
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            for mut m in msgs {
                folder.delete(&mut m)?;
            }
            folder.sync()
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            return no(reply::SERVER_BUG);
        }
        let sel = self.selected.as_mut().expect("selected");
        for &i in doomed.iter().rev() {
            sel.entries.remove(i);
        }
        if tell {
            for &i in doomed.iter().rev() {
                self.line(&format!("* {} EXPUNGE", i + 1));
            }
        }
        self.poke();
        ok()
    }

    pub(super) async fn copy(
        &mut self,
        set: &SequenceSet,
        target: String,
        uid: bool,
        mv: bool,
    ) -> Done {
        if mv && self.selected.as_ref().is_some_and(|s| s.read_only) {
            return no(reply::READ_ONLY);
        }
        if !uid && self.out_of_range(set) {
            return Done::Bad(reply::BAD_SEQUENCE.into());
        }
        let a = self.account();
        if !target.eq_ignore_ascii_case("INBOX")
            && (!mailbox::valid_name(&target) || !a.exists(&target))
        {
            return no(reply::TRY_CREATE);
        }
        let to = a.folder(&target);
        let targets = self.targets(set, uid);
        let sel = self.selected.as_ref().expect("selected");
        let from = sel.folder.clone();
        let host = self.cur.config.server.hostname.clone();
        let jobs: Vec<(usize, mailbox::Message, Vec<Flag<'static>>)> = targets
            .iter()
            .filter(|&&i| !sel.entries[i].gone)
            .map(|&i| {
                (
                    i,
                    sel.entries[i].message.clone(),
                    sel.entries[i].flags.clone(),
                )
            })
            .collect();
        // A COPY adds to the account's usage (a MOVE does not): refused whole past the Max
        // Account Size, as APPEND is (RFC 9208).
        // An account already over (its limit lowered) may still MOVE, to Trash say.
        let adds: u64 = jobs.iter().map(|j| j.1.size).sum();
        let quota = self.quota();
        let full = if mv {
            Ok(Ok(false))
        } else {
            tokio::task::spawn_blocking(move || quota.would_exceed(adds)).await
        };
        match full {
            Ok(Ok(false)) => {}
            Ok(Ok(true)) => {
                self.log(Level::Info, format!("COPY to {target} refused: over quota"));
                return no(reply::OVER_QUOTA);
            }
            _ => return no(reply::SERVER_BUG),
        }
        let done = tokio::task::spawn_blocking(move || {
            let mut placed = Vec::new();
            for (i, mut m, flags) in jobs {
                let (letters, words) = info_of(&flags);
                let kw = keywords::letters(to.dir(), &words)?;
                if let Some(base) =
                    from.transfer(&mut m, &to, &host, &format!("{letters}{kw}"), !mv)?
                {
                    placed.push((i, m.uid, base));
                }
            }
            to.sync()?;
            if mv {
                from.sync()?;
            }
            let scan = to.scan()?;
            let uid_of: std::collections::HashMap<&str, u32> = scan
                .messages
                .iter()
                .map(|m| (m.base.as_str(), m.uid))
                .collect();
            let out: Vec<(usize, u32, u32)> = placed
                .iter()
                .filter_map(|(i, src, base)| uid_of.get(base.as_str()).map(|d| (*i, *src, *d)))
                .collect();
            Ok::<_, std::io::Error>((scan.uidvalidity, out))
        })
        .await;
        let Ok(Ok((validity, placed))) = done else {
            return no(reply::SERVER_BUG);
        };
        self.poke();
        // A copy into the selected folder itself: the client hears of it now.
        if !mv
            && self
                .selected
                .as_ref()
                .is_some_and(|s| s.folder.dir() == a.folder(&target).dir())
        {
            self.sync(true).await;
        }
        if placed.is_empty() {
            return expunged_meanwhile(!targets.is_empty(), uid);
        }
        let code = format!(
            "[COPYUID {validity} {} {}]",
            placed
                .iter()
                .map(|p| p.1.to_string())
                .collect::<Vec<_>>()
                .join(","),
            placed
                .iter()
                .map(|p| p.2.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        if !mv {
            return Done::Ok(format!("{code} {}", reply::DONE));
        }
        self.line(&format!("* OK {code} {}", reply::MOVED));
        let mut idx: Vec<usize> = placed.iter().map(|p| p.0).collect();
        idx.sort_unstable();
        let sel = self.selected.as_mut().expect("selected");
        for &i in idx.iter().rev() {
            sel.entries.remove(i);
        }
        for &i in idx.iter().rev() {
            self.line(&format!("* {} EXPUNGE", i + 1));
        }
        ok()
    }
}

/// The end of a FETCH or COPY some of whose messages another session expunged meanwhile: by
/// sequence number, `NO [EXPUNGEISSUED]` (RFC 2180 4.1.2: the client asked for a message it
/// cannot have); by UID, `OK [EXPUNGEISSUED]` (RFC 9051: a UID that no longer exists is
/// ignored without an error, so a syncing client does not fail).
fn expunged_meanwhile(gone: bool, uid: bool) -> Done {
    match (gone, uid) {
        (false, _) => ok(),
        (true, false) => no(reply::EXPUNGED),
        (true, true) => Done::Ok(reply::EXPUNGED.into()),
    }
}

/// The internal date of a message file: whole seconds, UTC (a time IMAP cannot express,
/// before year 0 or after 9999, becomes the epoch).
fn internal_date(t: SystemTime) -> DateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let utc = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let fixed = utc.fixed_offset();
    DateTime::try_from(fixed).unwrap_or_else(|_| {
        DateTime::unvalidated(chrono::DateTime::<chrono::Utc>::default().fixed_offset())
    })
}

/// A message's bytes: all of them, or (`header_only`) the start through the blank line that
/// ends its header block, read 16 KiB at a time, so a header FETCH or SEARCH does not read
/// attachments.
fn read_message(
    folder: &Folder,
    m: &mut mailbox::Message,
    header_only: bool,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    if header_only && let Some(h) = mailbox::headers::get(folder.dir(), &m.base, m.size) {
        return Ok(h.to_vec());
    }
    let mut f = folder.open(m)?;
    if !header_only {
        let mut v = Vec::with_capacity(m.size as usize);
        f.read_to_end(&mut v)?;
        return Ok(v);
    }
    // Read straight into the result, 16 KiB at a time (no zeroed bounce buffer), until the
    // header ends; most messages' headers end within the first read. Kept for next time.
    const STEP: u64 = 16 * 1024;
    let mut v = Vec::with_capacity(m.size.min(STEP) as usize);
    loop {
        if (&mut f).take(STEP).read_to_end(&mut v)? == 0 {
            break;
        }
        if let Some(len) = message::header::complete_header_len(&v) {
            v.truncate(len);
            break;
        }
    }
    mailbox::headers::put(folder.dir(), &m.base, m.size, &v);
    Ok(v)
}
