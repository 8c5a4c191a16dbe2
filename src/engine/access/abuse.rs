//! Engine-wide per-IP abuse state: simultaneous connections, failed-login lockout
//! (anti-hammering), tarpitting after failed RCPTs, blocks, and hourly transfer limits.
//!
//! One [`Abuse`] is shared by every session. Its tables are keyed by client IP (IPv4-mapped
//! IPv6 addresses count as their IPv4 address) and live behind one mutex; entries that have
//! expired are pruned as the tables are used. Safe IPs are not this module's business: the
//! access gate, which owns that rule, never asks about them (and counts their connections as
//! exempt). The settings are read from the [`Config`] passed to every call, so a
//! reload applies at once; turning a defence off also lifts the blocks it made.
//!
//! Every public method has a twin taking `now: Instant`, which is what the unit tests drive:
//! expiry and window rollover are tested by passing later instants, never by sleeping.

use crate::engine::config::Config;
use crate::engine::reply::{self, Reply};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a tarpit makes a client wait for one reply.
pub const MAX_TARPIT_DELAY: Duration = Duration::from_secs(30);

/// How long a refused recipient counts towards the tarpit block of its IP.
pub const RCPT_WINDOW: Duration = Duration::from_secs(3600);

/// The sliding window of the transfer limits.
const TRANSFER_WINDOW: Duration = Duration::from_secs(3600);

/// Granularity of the transfer window: traffic is counted in buckets this long.
const TRANSFER_BUCKET: Duration = Duration::from_secs(60);

/// How often the whole tables are swept for expired entries.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A refusal to give the client, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reply, e.g. `421 4.7.0 ...`.
    pub reply: Reply,
    /// Why, for the security log.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reply)
    }
}

/// A block in force, as the Abuse & Spam dialog and `postern access blocked` show it. Times
/// are wall-clock (seconds since the Unix epoch), converted from the table's monotonic
/// instants when the list is made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockInfo {
    /// The client as the tables count it: an IPv4 address, or an IPv6 network address (see
    /// [`client_key`]).
    pub ip: IpAddr,
    /// The IPv6 prefix length the client is counted by (`None` for IPv4 and for /128).
    pub prefix: Option<u8>,
    /// The defence and its cause, in words ("login lockout: 5 failed logins within 10m").
    pub reason: String,
    /// When the block began.
    pub since: u64,
    /// When it ends.
    pub until: u64,
}

impl BlockInfo {
    /// The client as shown: `192.0.2.1`, or `2001:db8:1:2::/64`.
    pub fn client(&self) -> String {
        match self.prefix {
            Some(p) => format!("{}/{p}", self.ip),
            None => self.ip.to_string(),
        }
    }
}

/// Seconds since the epoch as `2026-12-02 19:50:12` (UTC, as the log files write times).
pub fn wall_clock(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// "29m", "1h", "45s": a time left, for displays.
pub fn time_left(secs: u64) -> String {
    human(Duration::from_secs(secs))
}

/// Which defence made a block (a defence that is turned off no longer enforces its blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    /// Failed-login lockout.
    Lockout,
    /// Too many failed RCPTs (tarpit).
    Tarpit,
}

impl BlockKind {
    /// The defence, in words.
    fn words(self) -> &'static str {
        match self {
            BlockKind::Lockout => "login lockout",
            BlockKind::Tarpit => "tarpit",
        }
    }
}

/// A running block of one IP.
#[derive(Debug, Clone)]
struct Block {
    /// When it began.
    since: Instant,
    /// When it ends.
    until: Instant,
    /// What caused it.
    kind: BlockKind,
    /// The same, in words, for replies and the log.
    why: String,
}

/// One minute of traffic from one IP. The hourly window slides a bucket at a time, so traffic
/// leaves it up to a minute early.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// When the bucket started.
    start: Instant,
    /// Messages accepted in it.
    messages: u64,
    /// Octets accepted in it.
    bytes: u64,
}

/// The tables, behind the mutex.
#[derive(Debug)]
struct State {
    /// Open connections per IP (entries at zero are removed).
    connections: HashMap<IpAddr, u32>,
    /// Times of recent failed AUTH attempts per IP, oldest first.
    auth_failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// Times of recent refused recipients per IP, across sessions, oldest first.
    rcpt_failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// Running blocks.
    blocks: HashMap<IpAddr, Block>,
    /// Recent traffic per IP, oldest bucket first, covering at most the last hour.
    transfer: HashMap<IpAddr, VecDeque<Bucket>>,
    /// When the tables were last swept.
    last_prune: Option<Instant>,
}

/// Engine-wide per-IP abuse state. Cheap to share: clone it or put it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Abuse {
    /// The tables; connection guards hold a reference too.
    state: Arc<Mutex<State>>,
}

/// One counted connection: dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnectionGuard {
    /// The tables and the IP to decrement.
    slot: Option<(Arc<Mutex<State>>, IpAddr)>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some((state, ip)) = self.slot.take() {
            let mut st = lock(&state);
            if let Some(n) = st.connections.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.connections.remove(&ip);
                }
            }
        }
    }
}

/// Locks the tables; a poisoned lock still holds consistent counters, so it is used anyway.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// "30m", "1h", for reply texts.
fn human(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if secs > 120 {
        // Rounded up to the minute; a whole number of hours reads as hours ("1h", not "60m").
        let minutes = secs.div_ceil(60);
        if minutes.is_multiple_of(60) {
            format!("{}h", minutes / 60)
        } else {
            format!("{minutes}m")
        }
    } else {
        format!("{secs}s")
    }
}

impl Default for Abuse {
    fn default() -> Self {
        Abuse::new()
    }
}

impl Abuse {
    /// Empty tables.
    pub fn new() -> Abuse {
        Abuse {
            state: Arc::new(Mutex::new(State {
                connections: HashMap::new(),
                auth_failures: HashMap::new(),
                rcpt_failures: HashMap::new(),
                blocks: HashMap::new(),
                transfer: HashMap::new(),
                last_prune: None,
            })),
        }
    }

    /// At accept: a blocked IP gets `421 4.7.0` (blocks expire, so the refusal is temporary),
    /// one over `abuse.max_connections_per_ip` gets `421 4.7.0`. An `exempt` client (a Safe
    /// IP) is always let in, and counted. The returned guard holds the connection's slot until
    /// it is dropped.
    pub fn connect(
        &self,
        ip: IpAddr,
        exempt: bool,
        cfg: &Config,
    ) -> Result<ConnectionGuard, Refusal> {
        self.connect_at(ip, exempt, cfg, Instant::now())
    }

    /// [`Abuse::connect`] at a given instant.
    pub fn connect_at(
        &self,
        ip: IpAddr,
        exempt: bool,
        cfg: &Config,
        now: Instant,
    ) -> Result<ConnectionGuard, Refusal> {
        let ip = client_key(ip, cfg);
        let mut st = self.tables(cfg, now);
        if !exempt {
            if let Some(r) = st.block_refusal(ip, cfg, now) {
                return Err(r);
            }
            let max = cfg.abuse.max_connections_per_ip;
            let open = st.connections.get(&ip).copied().unwrap_or(0);
            if max > 0 && open >= max {
                return Err(Refusal {
                    reply: reply::too_many_from(ip),
                    reason: format!(
                        "{open} connections already open from {ip} (max_connections_per_ip {max})"
                    ),
                });
            }
        }
        // Exempt clients are counted too, so the count stays right if the Safe IP list changes.
        *st.connections.entry(ip).or_insert(0) += 1;
        Ok(ConnectionGuard {
            slot: Some((self.state.clone(), ip)),
        })
    }

    /// Records a failed AUTH. Returns `Some` when the IP is blocked after this failure: this
    /// failure reached `lockout.failures` within `lockout.window` (the IP is then blocked for
    /// `lockout.block_for`), or a block was already running.
    pub fn auth_failed(&self, ip: IpAddr, cfg: &Config) -> Option<Refusal> {
        self.auth_failed_at(ip, cfg, Instant::now())
    }

    /// [`Abuse::auth_failed`] at a given instant.
    pub fn auth_failed_at(&self, ip: IpAddr, cfg: &Config, now: Instant) -> Option<Refusal> {
        let ip = client_key(ip, cfg);
        let lc = &cfg.abuse.lockout;
        if !lc.enabled || lc.failures == 0 {
            return None;
        }
        let mut st = self.tables(cfg, now);
        if let Some(r) = st.block_refusal(ip, cfg, now) {
            return Some(r);
        }
        let window = lc.window.0;
        let fails = st.auth_failures.entry(ip).or_default();
        fails.push_back(now);
        expire_times(fails, now, window);
        if fails.len() < lc.failures as usize {
            return None;
        }
        let n = fails.len();
        st.auth_failures.remove(&ip);
        let why = format!("{n} failed logins within {}", human(window));
        st.blocks.insert(
            ip,
            Block {
                since: now,
                until: now + lc.block_for.0,
                kind: BlockKind::Lockout,
                why: why.clone(),
            },
        );
        Some(Refusal {
            reply: reply::locked_out(ip, &human(lc.block_for.0)),
            reason: format!("{ip} locked out for {}: {why}", human(lc.block_for.0)),
        })
    }

    /// Whether the IP is blocked right now (a lockout or tarpit block still running, and its
    /// defence still on).
    pub fn blocked(&self, ip: IpAddr, cfg: &Config) -> Option<Refusal> {
        self.blocked_at(ip, cfg, Instant::now())
    }

    /// [`Abuse::blocked`] at a given instant.
    pub fn blocked_at(&self, ip: IpAddr, cfg: &Config, now: Instant) -> Option<Refusal> {
        let ip = client_key(ip, cfg);
        self.tables(cfg, now).block_refusal(ip, cfg, now)
    }

    /// A failed RCPT; `n` is the number of failed RCPTs so far in this session, this one
    /// included. Returns the delay to wait before replying (zero up to `tarpit.after_failures`,
    /// then `tarpit.delay` more per failure, at most [`MAX_TARPIT_DELAY`]) and, when the IP's
    /// refused recipients within [`RCPT_WINDOW`], across all its sessions, reach
    /// `tarpit.block_after` (0 = never), a refusal: the IP is then blocked for
    /// `tarpit.block_for` and the session should be closed. A harvester that reconnects after
    /// each few guesses is counted all the same.
    pub fn rcpt_failed(&self, ip: IpAddr, n: u32, cfg: &Config) -> (Duration, Option<Refusal>) {
        self.rcpt_failed_at(ip, n, cfg, Instant::now())
    }

    /// [`Abuse::rcpt_failed`] at a given instant.
    pub fn rcpt_failed_at(
        &self,
        ip: IpAddr,
        n: u32,
        cfg: &Config,
        now: Instant,
    ) -> (Duration, Option<Refusal>) {
        let ip = client_key(ip, cfg);
        let tc = &cfg.abuse.tarpit;
        if !tc.enabled {
            return (Duration::ZERO, None);
        }
        let delay = tarpit_delay(n, tc.after_failures, tc.delay.0);
        if tc.block_after == 0 {
            return (delay, None);
        }
        let mut st = self.tables(cfg, now);
        let fails = st.rcpt_failures.entry(ip).or_default();
        fails.push_back(now);
        expire_times(fails, now, RCPT_WINDOW);
        let total = fails.len();
        if total < tc.block_after as usize {
            return (delay, None);
        }
        st.rcpt_failures.remove(&ip);
        let why = format!("{total} failed recipients within {}", human(RCPT_WINDOW));
        st.blocks.insert(
            ip,
            Block {
                since: now,
                until: now + tc.block_for.0,
                kind: BlockKind::Tarpit,
                why: why.clone(),
            },
        );
        let refusal = Refusal {
            reply: reply::tarpit_blocked(ip, &human(tc.block_for.0)),
            reason: format!("{ip} blocked for {}: {why}", human(tc.block_for.0)),
        };
        (delay, Some(refusal))
    }

    /// Before accepting a message of `size` octets from `ip`: `452 4.7.0` when it would take
    /// the IP over `transfer.max_messages_per_hour` or `transfer.max_bytes_per_hour` (0 = no
    /// limit) within the last hour. On `Ok` the message is counted.
    pub fn transfer(&self, ip: IpAddr, size: u64, cfg: &Config) -> Result<(), Refusal> {
        self.transfer_at(ip, size, cfg, Instant::now())
    }

    /// [`Abuse::transfer`] at a given instant.
    pub fn transfer_at(
        &self,
        ip: IpAddr,
        size: u64,
        cfg: &Config,
        now: Instant,
    ) -> Result<(), Refusal> {
        let ip = client_key(ip, cfg);
        let tc = &cfg.abuse.transfer;
        let mut st = self.tables(cfg, now);
        let buckets = st.transfer.entry(ip).or_default();
        expire_buckets(buckets, now);
        let (messages, bytes) = buckets.iter().fold((0u64, 0u64), |(m, b), k| {
            (m + k.messages, b.saturating_add(k.bytes))
        });
        let max_msgs = u64::from(tc.max_messages_per_hour);
        if max_msgs > 0 && messages + 1 > max_msgs {
            return Err(Refusal {
                reply: reply::hourly_messages(ip),
                reason: format!(
                    "{ip} sent {messages} messages in the last hour (max_messages_per_hour {max_msgs})"
                ),
            });
        }
        let max_bytes = tc.max_bytes_per_hour;
        if max_bytes > 0 && bytes.saturating_add(size) > max_bytes {
            return Err(Refusal {
                reply: reply::hourly_bytes(ip),
                reason: format!(
                    "{ip} sent {bytes} octets in the last hour, {size} more would pass \
                     max_bytes_per_hour {max_bytes}"
                ),
            });
        }
        match buckets.back_mut() {
            Some(b) if now.saturating_duration_since(b.start) < TRANSFER_BUCKET => {
                b.messages += 1;
                b.bytes = b.bytes.saturating_add(size);
            }
            _ => buckets.push_back(Bucket {
                start: now,
                messages: 1,
                bytes: size,
            }),
        }
        Ok(())
    }

    /// The blocks in force now (running, and their defence still on), oldest first.
    pub fn blocks(&self, cfg: &Config) -> Vec<BlockInfo> {
        self.blocks_at(cfg, Instant::now(), SystemTime::now())
    }

    /// [`Abuse::blocks`] at a given instant, `wall` being the wall-clock time of `now`.
    pub fn blocks_at(&self, cfg: &Config, now: Instant, wall: SystemTime) -> Vec<BlockInfo> {
        let st = self.tables(cfg, now);
        let mut out: Vec<(Instant, BlockInfo)> = st
            .blocks
            .iter()
            .filter(|(_, b)| now < b.until && b.in_force(cfg))
            .map(|(ip, b)| (b.since, b.info(*ip, cfg, now, wall)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.ip.cmp(&b.1.ip)));
        out.into_iter().map(|(_, i)| i).collect()
    }

    /// Lifts the block of `ip` (its network, for IPv6) and forgets its failed logins and
    /// failed recipients, so the client starts afresh at once. Returns the block that was in
    /// force, or `None` when there was none (the failures are forgotten all the same).
    pub fn unblock(&self, ip: IpAddr, cfg: &Config) -> Option<BlockInfo> {
        self.unblock_at(ip, cfg, Instant::now(), SystemTime::now())
    }

    /// [`Abuse::unblock`] at a given instant, `wall` being the wall-clock time of `now`.
    pub fn unblock_at(
        &self,
        ip: IpAddr,
        cfg: &Config,
        now: Instant,
        wall: SystemTime,
    ) -> Option<BlockInfo> {
        let key = client_key(ip, cfg);
        let mut st = self.tables(cfg, now);
        st.auth_failures.remove(&key);
        st.rcpt_failures.remove(&key);
        let block = st.blocks.remove(&key)?;
        (now < block.until && block.in_force(cfg)).then(|| block.info(key, cfg, now, wall))
    }

    /// Open connections from `ip` (its network, for IPv6) right now (for status displays
    /// and tests).
    pub fn connections(&self, ip: IpAddr, cfg: &Config) -> u32 {
        lock(&self.state)
            .connections
            .get(&client_key(ip, cfg))
            .copied()
            .unwrap_or(0)
    }

    /// Locks the tables, sweeping expired entries first when the last sweep is old enough.
    fn tables(&self, cfg: &Config, now: Instant) -> MutexGuard<'_, State> {
        let mut st = lock(&self.state);
        let due = st
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= PRUNE_EVERY);
        if due {
            st.prune(cfg, now);
            st.last_prune = Some(now);
        }
        st
    }
}

impl Block {
    /// Whether the defence that made it is still on.
    fn in_force(&self, cfg: &Config) -> bool {
        match self.kind {
            BlockKind::Lockout => cfg.abuse.lockout.enabled,
            BlockKind::Tarpit => cfg.abuse.tarpit.enabled,
        }
    }

    /// The block for display; `wall` is the wall-clock time of `now`.
    fn info(&self, key: IpAddr, cfg: &Config, now: Instant, wall: SystemTime) -> BlockInfo {
        let epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let since = wall
            .checked_sub(now.saturating_duration_since(self.since))
            .unwrap_or(UNIX_EPOCH);
        let until = wall + self.until.saturating_duration_since(now);
        let prefix = match key {
            IpAddr::V6(_) if cfg.abuse.ipv6_prefix < 128 => Some(cfg.abuse.ipv6_prefix.max(1)),
            _ => None,
        };
        BlockInfo {
            ip: key,
            prefix,
            reason: format!("{}: {}", self.kind.words(), self.why),
            since: epoch(since),
            until: epoch(until),
        }
    }
}

impl State {
    /// The refusal for a running block of `ip`, removing the block once it has expired.
    fn block_refusal(&mut self, ip: IpAddr, cfg: &Config, now: Instant) -> Option<Refusal> {
        let block = self.blocks.get(&ip)?;
        if now >= block.until {
            self.blocks.remove(&ip);
            return None;
        }
        if !block.in_force(cfg) {
            return None;
        }
        let left = block.until - now;
        Some(Refusal {
            reply: reply::blocked(ip, &human(left)),
            reason: format!("{ip} is blocked for {} more: {}", human(left), block.why),
        })
    }

    /// Drops expired blocks, failed logins older than the lockout window and traffic older
    /// than the transfer window.
    fn prune(&mut self, cfg: &Config, now: Instant) {
        let window = cfg.abuse.lockout.window.0;
        self.blocks.retain(|_, b| now < b.until);
        self.auth_failures.retain(|_, f| {
            expire_times(f, now, window);
            !f.is_empty()
        });
        self.rcpt_failures.retain(|_, f| {
            expire_times(f, now, RCPT_WINDOW);
            !f.is_empty()
        });
        self.transfer.retain(|_, b| {
            expire_buckets(b, now);
            !b.is_empty()
        });
    }
}

/// Drops the times older than `window`.
fn expire_times(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

/// Drops the buckets that ended more than an hour ago.
fn expire_buckets(buckets: &mut VecDeque<Bucket>, now: Instant) {
    while buckets
        .front()
        .is_some_and(|b| now.saturating_duration_since(b.start) >= TRANSFER_WINDOW)
    {
        buckets.pop_front();
    }
}

/// The address the tables count a client under: IPv4 (and IPv4-mapped IPv6) as itself, IPv6
/// by its network of `abuse.ipv6_prefix` bits.
pub fn client_key(ip: IpAddr, cfg: &Config) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u32::from(cfg.abuse.ipv6_prefix.clamp(1, 128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

/// Zero up to `after` failures, then `step` more per failure, capped at [`MAX_TARPIT_DELAY`].
fn tarpit_delay(n: u32, after: u32, step: Duration) -> Duration {
    let over = n.saturating_sub(after);
    step.saturating_mul(over).min(MAX_TARPIT_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::HumanDuration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn time_left_rounds_up_to_minutes_and_reads_whole_hours_as_hours() {
        assert_eq!(time_left(3600), "1h");
        assert_eq!(time_left(3599), "1h", "a block just begun is 1h, not 60m");
        assert_eq!(time_left(3540), "59m");
        assert_eq!(time_left(3541), "1h");
        assert_eq!(time_left(1799), "30m");
        assert_eq!(time_left(7199), "2h");
        assert_eq!(time_left(90), "90s");
        assert_eq!(time_left(0), "1s");
    }

    /// Lockout 3 failures in 10 min -> 30 min; tarpit after 2, +1 s, block at 5 for 15 min;
    /// 3 messages and 1000 octets per hour; 2 connections per IP; one Safe IP.
    fn cfg() -> Config {
        let mut c = Config::default();
        c.access.safe_ips = vec!["192.0.2.100".into(), "2001:db8::100".into()];
        c.access.allow_own_ips = false;
        c.abuse.max_connections_per_ip = 2;
        c.abuse.lockout.enabled = true;
        c.abuse.lockout.failures = 3;
        c.abuse.lockout.window = HumanDuration::from_secs(600);
        c.abuse.lockout.block_for = HumanDuration::from_secs(1800);
        c.abuse.tarpit.enabled = true;
        c.abuse.tarpit.after_failures = 2;
        c.abuse.tarpit.delay = HumanDuration::from_secs(1);
        c.abuse.tarpit.block_after = 5;
        c.abuse.tarpit.block_for = HumanDuration::from_secs(900);
        c.abuse.transfer.max_messages_per_hour = 3;
        c.abuse.transfer.max_bytes_per_hour = 1000;
        c
    }

    #[test]
    fn lockout_after_n_failures_within_window() {
        let (a, c, t0, bad) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        assert_eq!(a.auth_failed_at(bad, &c, t0), None);
        assert_eq!(a.auth_failed_at(bad, &c, t0 + secs(60)), None);
        assert!(a.blocked_at(bad, &c, t0 + secs(60)).is_none());
        let r = a
            .auth_failed_at(bad, &c, t0 + secs(120))
            .expect("third failure locks out");
        assert_eq!(r.reply.code, 421);
        assert!(r.reply.text.starts_with("4.7.0 "), "{r:?}");
        assert!(r.reason.contains("3 failed logins"), "{r:?}");
        let b = a.blocked_at(bad, &c, t0 + secs(121)).expect("blocked");
        assert_eq!(b.reply.code, 421);
        assert!(a.connect_at(bad, false, &c, t0 + secs(122)).is_err());
        // Another IP is not affected.
        assert!(a.blocked_at(ip("192.0.2.2"), &c, t0 + secs(121)).is_none());
        // A failure while blocked reports the block.
        assert!(a.auth_failed_at(bad, &c, t0 + secs(200)).is_some());
    }

    #[test]
    fn no_lockout_when_failures_are_spread_beyond_the_window() {
        let (a, c, t0, bad) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        for i in 0..10 {
            // One failure every 301 s: never three within 600 s.
            assert_eq!(
                a.auth_failed_at(bad, &c, t0 + secs(301 * i)),
                None,
                "failure {i}"
            );
        }
        assert!(a.blocked_at(bad, &c, t0 + secs(3010)).is_none());
    }

    #[test]
    fn block_expires() {
        let (a, c, t0, bad) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        for _ in 0..3 {
            a.auth_failed_at(bad, &c, t0);
        }
        assert!(a.blocked_at(bad, &c, t0 + secs(1799)).is_some());
        assert!(a.blocked_at(bad, &c, t0 + secs(1800)).is_none());
        assert!(a.connect_at(bad, false, &c, t0 + secs(1800)).is_ok());
        // The failures that caused the block are forgotten: a fresh count starts.
        assert_eq!(a.auth_failed_at(bad, &c, t0 + secs(1801)), None);
    }

    #[test]
    fn lockout_off_records_nothing_and_lifts_its_blocks() {
        let (a, mut c, t0, bad) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        for _ in 0..3 {
            a.auth_failed_at(bad, &c, t0);
        }
        assert!(a.blocked_at(bad, &c, t0).is_some());
        c.abuse.lockout.enabled = false;
        assert!(a.blocked_at(bad, &c, t0).is_none());
        for _ in 0..10 {
            assert_eq!(a.auth_failed_at(ip("192.0.2.3"), &c, t0), None);
        }
    }

    #[test]
    fn connection_limit_is_released_when_the_guard_drops() {
        let (a, c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        let g1 = a.connect_at(x, false, &c, t0).unwrap();
        let g2 = a.connect_at(x, false, &c, t0).unwrap();
        assert_eq!(a.connections(x, &c), 2);
        let r = a
            .connect_at(x, false, &c, t0)
            .expect_err("third connection refused");
        assert_eq!(r.reply.code, 421);
        assert!(r.reply.text.starts_with("4.7.0 "), "{r:?}");
        // Other IPs have their own count; IPv4-mapped IPv6 is the same client.
        let other = a.connect_at(ip("192.0.2.2"), false, &c, t0).unwrap();
        assert!(a.connect_at(ip("::ffff:192.0.2.1"), false, &c, t0).is_err());
        drop(g1);
        assert_eq!(a.connections(x, &c), 1);
        let g3 = a.connect_at(x, false, &c, t0).unwrap();
        drop((g2, g3, other));
        assert_eq!(a.connections(x, &c), 0);
        assert!(lock(&a.state).connections.is_empty());
    }

    #[test]
    fn zero_means_no_connection_limit() {
        let (a, mut c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        c.abuse.max_connections_per_ip = 0;
        let guards: Vec<_> = (0..50)
            .map(|_| a.connect_at(x, false, &c, t0).unwrap())
            .collect();
        assert_eq!(a.connections(x, &c), 50);
        drop(guards);
        assert_eq!(a.connections(x, &c), 0);
    }

    #[test]
    fn tarpit_delays_grow_and_are_capped() {
        let (a, mut c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        c.abuse.tarpit.block_after = 0;
        let delays: Vec<Duration> = (1..=6).map(|n| a.rcpt_failed_at(x, n, &c, t0).0).collect();
        assert_eq!(delays, [0, 0, 1, 2, 3, 4].map(secs));
        assert_eq!(a.rcpt_failed_at(x, 1000, &c, t0), (MAX_TARPIT_DELAY, None));
        assert!(
            a.blocked_at(x, &c, t0).is_none(),
            "block_after 0 never blocks"
        );
        c.abuse.tarpit.enabled = false;
        assert_eq!(a.rcpt_failed_at(x, 10, &c, t0), (Duration::ZERO, None));
    }

    #[test]
    fn a_harvester_that_reconnects_is_counted_across_sessions() {
        // The defaults: block after 20 refused recipients, sessions closed after 10 errors.
        let (a, t0, x) = (Abuse::new(), Instant::now(), ip("192.0.2.1"));
        let c = Config::default();
        for session in 0..2 {
            for n in 1..=10 {
                let (_, block) = a.rcpt_failed_at(x, n, &c, t0 + secs(session * 60));
                assert_eq!(
                    block.is_some(),
                    session == 1 && n == 10,
                    "session {session}, {n}"
                );
            }
        }
        assert!(a.blocked_at(x, &c, t0 + secs(61)).is_some());
        // Failures older than the window no longer count.
        let y = ip("192.0.2.2");
        for n in 1..=19 {
            assert!(a.rcpt_failed_at(y, n, &c, t0).1.is_none());
        }
        assert!(a.rcpt_failed_at(y, 1, &c, t0 + RCPT_WINDOW).1.is_none());
    }

    #[test]
    fn ipv6_clients_count_by_their_network() {
        let (a, mut c, t0) = (Abuse::new(), cfg(), Instant::now());
        let g1 = a.connect_at(ip("2001:db8:1:2::1"), false, &c, t0).unwrap();
        let g2 = a
            .connect_at(ip("2001:db8:1:2:ffff::9"), false, &c, t0)
            .unwrap();
        assert!(
            a.connect_at(ip("2001:db8:1:2::77"), false, &c, t0).is_err(),
            "a third address of the same /64 is over the per-IP limit of 2"
        );
        assert!(a.connect_at(ip("2001:db8:1:3::1"), false, &c, t0).is_ok());
        assert_eq!(a.connections(ip("2001:db8:1:2::abcd"), &c), 2);
        c.abuse.ipv6_prefix = 128;
        assert_eq!(a.connections(ip("2001:db8:1:2::abcd"), &c), 0);
        drop((g1, g2));
        assert_eq!(
            client_key(ip("::ffff:192.0.2.1"), &c),
            ip("192.0.2.1"),
            "IPv4-mapped addresses count as IPv4"
        );
    }

    #[test]
    fn tarpit_block_after_blocks_then_expires() {
        let (a, c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        for n in 1..5 {
            assert_eq!(a.rcpt_failed_at(x, n, &c, t0).1, None, "failure {n}");
        }
        let (delay, r) = a.rcpt_failed_at(x, 5, &c, t0);
        assert_eq!(delay, secs(3));
        let r = r.expect("fifth failure blocks");
        assert_eq!(r.reply.code, 421);
        assert!(r.reason.contains("5 failed recipients"), "{r:?}");
        assert!(a.blocked_at(x, &c, t0 + secs(899)).is_some());
        assert!(a.connect_at(x, false, &c, t0 + secs(899)).is_err());
        assert!(a.blocked_at(x, &c, t0 + secs(900)).is_none());
    }

    #[test]
    fn transfer_message_limit_counts_and_rolls_over() {
        let (a, mut c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        c.abuse.transfer.max_bytes_per_hour = 0;
        assert!(a.transfer_at(x, 10, &c, t0).is_ok());
        assert!(a.transfer_at(x, 10, &c, t0 + secs(600)).is_ok());
        assert!(a.transfer_at(x, 10, &c, t0 + secs(1200)).is_ok());
        let r = a
            .transfer_at(x, 10, &c, t0 + secs(1300))
            .expect_err("fourth message in the hour");
        assert_eq!(r.reply.code, 452);
        assert!(r.reply.text.starts_with("4.7.0 "), "{r:?}");
        // A refused message is not counted; another IP has its own budget.
        assert!(
            a.transfer_at(ip("192.0.2.2"), 10, &c, t0 + secs(1300))
                .is_ok()
        );
        // An hour after the first message, one slot is free again, and only one.
        assert!(a.transfer_at(x, 10, &c, t0 + secs(3600)).is_ok());
        assert!(a.transfer_at(x, 10, &c, t0 + secs(3601)).is_err());
        // Two hours later everything has rolled out.
        for i in 0..3 {
            assert!(a.transfer_at(x, 10, &c, t0 + secs(3600 * 3 + i)).is_ok());
        }
    }

    #[test]
    fn transfer_byte_limit_counts_and_rolls_over() {
        let (a, mut c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        c.abuse.transfer.max_messages_per_hour = 0;
        assert!(a.transfer_at(x, 600, &c, t0).is_ok());
        let r = a
            .transfer_at(x, 401, &c, t0 + secs(10))
            .expect_err("1001 octets");
        assert_eq!(r.reply.code, 452);
        assert!(r.reason.contains("max_bytes_per_hour 1000"), "{r:?}");
        assert!(a.transfer_at(x, 400, &c, t0 + secs(10)).is_ok());
        assert!(a.transfer_at(x, 1, &c, t0 + secs(20)).is_err());
        assert!(a.transfer_at(x, 1000, &c, t0 + secs(3600)).is_ok());
        // A single message over the whole budget never fits.
        assert!(a.transfer_at(ip("192.0.2.2"), 1001, &c, t0).is_err());
    }

    #[test]
    fn expired_entries_are_pruned() {
        let (a, c, t0) = (Abuse::new(), cfg(), Instant::now());
        for i in 0..20u8 {
            let x = IpAddr::from([198, 51, 100, i]);
            a.auth_failed_at(x, &c, t0);
            a.transfer_at(x, 1, &c, t0).unwrap();
            for n in 1..=5 {
                a.rcpt_failed_at(x, n, &c, t0);
            }
            a.rcpt_failed_at(IpAddr::from([203, 0, 113, i]), 1, &c, t0);
        }
        {
            let st = lock(&a.state);
            assert_eq!(
                (st.blocks.len(), st.auth_failures.len(), st.transfer.len()),
                (20, 20, 20)
            );
        }
        // Any call a day later sweeps the tables.
        assert!(
            a.blocked_at(ip("192.0.2.1"), &c, t0 + secs(86_400))
                .is_none()
        );
        let st = lock(&a.state);
        assert_eq!(
            (st.blocks.len(), st.auth_failures.len(), st.transfer.len()),
            (0, 0, 0)
        );
        assert!(st.rcpt_failures.is_empty());
    }

    /// A wall clock for `t0`: 2026-12-02 19:00:00 UTC.
    fn wall0() -> SystemTime {
        UNIX_EPOCH + secs(1_796_238_000)
    }

    #[test]
    fn blocks_are_listed_with_reason_and_wall_clock_times() {
        let (a, c, t0) = (Abuse::new(), cfg(), Instant::now());
        assert!(a.blocks_at(&c, t0, wall0()).is_empty());
        let (x, y) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for i in 0..3 {
            a.auth_failed_at(x, &c, t0 + secs(10 * i));
        }
        for n in 1..=5 {
            a.rcpt_failed_at(y, n, &c, t0 + secs(100));
        }
        // Listed 5 minutes after the first failure: times are converted to the wall clock.
        let now = t0 + secs(300);
        let wall = wall0() + secs(300);
        let list = a.blocks_at(&c, now, wall);
        let base = 1_796_238_000;
        assert_eq!(
            list,
            vec![
                BlockInfo {
                    ip: x,
                    prefix: None,
                    reason: "login lockout: 3 failed logins within 10m".into(),
                    since: base + 20,
                    until: base + 20 + 1800,
                },
                BlockInfo {
                    ip: y,
                    prefix: None,
                    reason: "tarpit: 5 failed recipients within 1h".into(),
                    since: base + 100,
                    until: base + 100 + 900,
                },
            ]
        );
        assert_eq!(wall_clock(base + 20), "2026-12-02 19:00:20");
        // An expired block is not listed; one whose defence is off is not in force.
        let later = a.blocks_at(&c, t0 + secs(1001), wall0() + secs(1001));
        assert_eq!(later.len(), 1, "{later:?}");
        let mut off = c.clone();
        off.abuse.lockout.enabled = false;
        assert!(a.blocks_at(&off, t0 + secs(1001), wall0()).is_empty());
    }

    #[test]
    fn ipv6_blocks_are_listed_by_network() {
        let (a, c, t0) = (Abuse::new(), cfg(), Instant::now());
        for _ in 0..3 {
            a.auth_failed_at(ip("2001:db8:1:2::1"), &c, t0);
        }
        let list = a.blocks_at(&c, t0, wall0());
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].client(), "2001:db8:1:2::/64");
        // Any address of the network lifts it.
        assert!(
            a.unblock_at(ip("2001:db8:1:2::99"), &c, t0, wall0())
                .is_some()
        );
        assert!(a.blocked_at(ip("2001:db8:1:2::1"), &c, t0).is_none());
    }

    #[test]
    fn unblock_lifts_the_block_and_forgets_the_failures() {
        let (a, c, t0, x) = (Abuse::new(), cfg(), Instant::now(), ip("192.0.2.1"));
        assert_eq!(a.unblock_at(x, &c, t0, wall0()), None, "nothing to lift");
        for _ in 0..3 {
            a.auth_failed_at(x, &c, t0);
        }
        assert!(a.connect_at(x, false, &c, t0 + secs(1)).is_err());
        let lifted = a
            .unblock_at(ip("::ffff:192.0.2.1"), &c, t0 + secs(2), wall0())
            .expect("a block was in force");
        assert!(lifted.reason.contains("3 failed logins"), "{lifted:?}");
        assert!(a.blocked_at(x, &c, t0 + secs(2)).is_none());
        assert!(a.connect_at(x, false, &c, t0 + secs(2)).is_ok());
        assert!(a.blocks_at(&c, t0 + secs(2), wall0()).is_empty());
        assert_eq!(a.unblock_at(x, &c, t0 + secs(2), wall0()), None);
        // Failures before the unblock are forgotten: two more do not lock out again, a third does.
        for _ in 0..2 {
            a.auth_failed_at(x, &c, t0 + secs(3));
        }
        a.unblock_at(x, &c, t0 + secs(4), wall0());
        assert_eq!(a.auth_failed_at(x, &c, t0 + secs(5)), None);
        assert_eq!(a.auth_failed_at(x, &c, t0 + secs(5)), None);
        assert!(a.auth_failed_at(x, &c, t0 + secs(5)).is_some());
        // Refused recipients are forgotten too.
        let y = ip("192.0.2.2");
        for n in 1..=4 {
            a.rcpt_failed_at(y, n, &c, t0);
        }
        a.unblock_at(y, &c, t0, wall0());
        assert!(
            a.rcpt_failed_at(y, 5, &c, t0).1.is_none(),
            "the count started again"
        );
    }

    #[test]
    fn reply_durations_read_well() {
        assert_eq!(human(secs(1800)), "30m");
        assert_eq!(human(secs(3600)), "1h");
        assert_eq!(human(secs(45)), "45s");
        assert_eq!(human(secs(1799)), "30m");
        assert_eq!(human(Duration::ZERO), "1s");
    }
}
