//! The checks behind Postern's fuzz targets, shared with `tests/fuzz_replay.rs`.
//!
//! Each `check_*` function takes the raw bytes libFuzzer generates, feeds them to the same
//! entry points the server uses, and panics (so libFuzzer records a crash) when an invariant
//! does not hold. The fuzz targets in `fuzz_targets/` are one line each; the replay test in
//! `tests/` includes this file with `#[path]` and runs every file of `fuzz/corpus/<target>/`
//! through the same function, so the committed corpus stays green under a plain `cargo test`.
//!
//! Only `postern`, `smtp_proto` and `tokio` are used here: the main package has all three, so
//! the replay test needs no fuzzing dependency.

use postern::engine::access::relay::forward_path;
use postern::engine::config::file::{parse, to_text};
use postern::engine::config::keys;
use postern::engine::config::{Config, normalize_domain};
use postern::engine::smtp::conn::{
    Conn, DataEnd, DataError, MAX_COMMAND_LINE, MAX_TEXT_LINE, ReadError,
};
use postern::engine::store::body::Body;
use smtp_proto::Request;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A check: panics when an invariant does not hold for this input.
pub type Check = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/` and its binary.
pub const TARGETS: &[(&str, Check)] = &[
    ("smtp_command", check_smtp_command),
    ("data_reader", check_data_reader),
    ("address", check_address),
    ("config_file", check_config_file),
    ("config_keys", check_config_keys),
];

/// Generous: nothing in these checks waits on a clock, the writer always finishes.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `f` on a current-thread runtime kept per thread (building one per input is slow).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// Splits off a leading control byte: how many octets the in-memory pipe holds at once
/// (1 to 64, or 64 KiB), so reads end at every possible place in the stream.
fn pipe_size(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) if b >= 0xc0 => (64 * 1024, rest),
        Some((&b, rest)) => (1 + (b as usize % 64), rest),
        None => (64 * 1024, data),
    }
}

/// Writes `input` into one end of a `tokio::io::duplex` of `cap` octets (then closes it) while
/// `read` runs over a `Conn` on the other end.
fn over_duplex<T>(
    cap: usize,
    input: &[u8],
    read: impl AsyncFnOnce(&mut Conn<tokio::io::DuplexStream>) -> T,
) -> T {
    block_on(async {
        let (mut client, server) = tokio::io::duplex(cap);
        let writer = async move {
            // The reader may stop early (an error ends DATA); then the write fails: fine.
            let _ = client.write_all(input).await;
            drop(client);
        };
        let reader = async move {
            let mut conn = Conn::new(server);
            read(&mut conn).await
            // `conn` is dropped here, so a writer blocked on a full pipe is released.
        };
        let (_, out) = tokio::join!(writer, reader);
        out
    })
}

// ---------------------------------------------------------------------------------------------
// (a) Command lines: Conn::read_line as the session calls it, then smtp-proto's parser.

/// What `Conn::read_line(MAX_COMMAND_LINE, ..)` must return for each line of `input`, in order,
/// ending with `Closed` (a last line without LF is never returned).
fn expected_lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..i];
        if i + 1 > MAX_COMMAND_LINE {
            out.push(Err("TooLong"));
        } else {
            out.push(Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec()));
        }
        rest = &rest[i + 1..];
    }
    out.push(Err("Closed"));
    out
}

/// Reads every command line out of the stream and parses each as the session does
/// (`Request::parse` on the line plus CRLF); MAIL and RCPT paths go through [`check_path`].
pub fn check_smtp_command(data: &[u8]) {
    let (cap, input) = pipe_size(data);
    let want = expected_lines(input);
    let got = over_duplex(cap, input, async |conn| {
        let mut got = Vec::new();
        loop {
            match conn.read_line(MAX_COMMAND_LINE, TIMEOUT).await {
                Ok(line) => got.push(Ok(line)),
                Err(ReadError::TooLong) => got.push(Err("TooLong")),
                Err(ReadError::Closed) => {
                    got.push(Err("Closed"));
                    return got;
                }
                Err(e) => panic!("read_line failed: {e}"),
            }
        }
    });
    assert_eq!(got, want, "read_line split the stream wrongly");
    for line in got.into_iter().flatten() {
        assert!(!line.contains(&b'\n'), "a line with LF inside: {line:?}");
        assert!(
            line.len() < MAX_COMMAND_LINE,
            "a line over the limit was returned"
        );
        parse_command(line);
    }
}

/// The session's own parser (`postern::engine::smtp::session::parse_command`): whatever MAIL
/// or RCPT path it accepts must be a mailbox whose forward path parses back to itself.
fn parse_command(line: Vec<u8>) {
    match postern::engine::smtp::session::parse_command(&line) {
        Ok(Request::Mail { from }) => {
            // The sender comes back in forward-path form: unquote it by parsing it again.
            let line = format!("MAIL FROM:<{}>\r\n", from.address);
            let plain = match Request::parse(&mut line.as_bytes().iter()) {
                Ok(Request::Mail { from }) => from.address.into_owned(),
                other => panic!(
                    "the sender {:?} does not parse back: {other:?}",
                    from.address
                ),
            };
            if check_path(&plain, false) {
                check_reverse_path(&from.address, &plain);
            }
        }
        Ok(Request::Rcpt { to }) => {
            check_path(&to.address, false);
        }
        Ok(_) => {}
        Err(reply) => assert!(
            (500..600).contains(&reply.code),
            "a refusal that is not 5xx: {reply}"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Open findings: invariants Postern does not meet yet (see docs/fuzzing.md). Each is checked,
// and fails, like any other; a long campaign can set POSTERN_FUZZ_SKIP_KNOWN=1 to step over
// them and look for something new. The replay test never skips.

/// An invariant that is known not to hold yet.
fn known(id: &str, what: std::fmt::Arguments) {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*SKIP.get_or_init(|| std::env::var_os("POSTERN_FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
    {
        panic!("open finding {id}: {what}");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Addresses: what smtp-proto hands the session, and the forward path Postern writes.

/// Why `local@domain` is not an RFC 5321 Mailbox (RFC 6531 allows UTF-8 in both parts), if
/// it is not. The local part may be anything a quoted string can carry; the domain must be
/// dot-separated labels of letters, digits and hyphens (or UTF-8), or an address literal.
fn mailbox_syntax_error(local: &str, domain: &str) -> Option<String> {
    let text_ok = |c: char| (' '..='~').contains(&c) || (!c.is_ascii() && c != '\u{fffd}');
    if let Some(c) = local.chars().find(|&c| !text_ok(c)) {
        return Some(format!("local part holds {c:?}"));
    }
    if local.is_empty() {
        return Some("empty local part".into());
    }
    if let Some(lit) = domain.strip_prefix('[') {
        let Some(inner) = lit.strip_suffix(']') else {
            return Some("address literal without `]`".into());
        };
        if inner.is_empty()
            || inner
                .chars()
                .any(|c| !('!'..='~').contains(&c) || "[]\\".contains(c))
        {
            return Some(format!("bad address literal [{inner}]"));
        }
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c != '\u{fffd}')
            })
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.len() > 255 || !domain.split('.').all(label_ok) {
        return Some(format!("domain {domain:?} is not a domain name"));
    }
    None
}

/// Checks an address as parsed from `MAIL FROM:<..>` or `RCPT TO:<..>` (`bare_cr`: the
/// command line had a CR before its end).
///
/// The session relays to `forward_path(user@normalize_domain(domain))`; the delivery client
/// writes it as `RCPT TO:<..>`. That path must parse back, with the same parser, to the same
/// address: otherwise the next hop receives a different address, or extra ESMTP parameters.
/// Returns whether the address is a mailbox (not the null path, not an open finding).
pub fn check_path(address: &str, bare_cr: bool) -> bool {
    // The null path `<>` (and `<postmaster>`, which smtp-proto reports as empty).
    if address.is_empty() {
        return false;
    }
    let (user, domain) = address
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("smtp-proto gave an address without @: {address:?}"));
    if let Some(why) = mailbox_syntax_error(user, domain) {
        if bare_cr {
            known(
                "F1",
                format_args!(
                    "a command line with a bare CR gives the session the address {address:?} ({why})"
                ),
            );
        } else {
            known(
                "F2",
                format_args!(
                    "the session is given the address {address:?}, which is not a mailbox: {why}"
                ),
            );
        }
        return false;
    }
    let normal = format!("{user}@{}", normalize_domain(domain));
    let path = forward_path(&normal);
    check_forward_path_shape(&normal, &path);
    let line = format!("RCPT TO:<{path}>\r\n");
    match Request::parse(&mut line.as_bytes().iter()) {
        Ok(Request::Rcpt { to }) => assert_eq!(
            to.address, normal,
            "forward path {path:?} of {normal:?} parses back to another address"
        ),
        other => panic!("forward path {path:?} of {normal:?} does not parse back: {other:?}"),
    }
    true
}

/// The delivery client writes the sender as `MAIL FROM:<{from}>`, `from` being the forward
/// path the session keeps; that must parse back to the same (unquoted) sender.
fn check_reverse_path(from: &str, plain: &str) {
    assert_eq!(
        from,
        forward_path(plain),
        "the sender is not kept in forward-path form"
    );
    let line = format!("MAIL FROM:<{from}>\r\n");
    let back = match Request::parse(&mut line.as_bytes().iter()) {
        Ok(Request::Mail { from }) => Ok(from.address.into_owned()),
        other => Err(other),
    };
    if back.as_deref() != Ok(plain) {
        known(
            "F3",
            format_args!(
                "the sender {plain:?} is relayed as {:?}, which parses as {back:?}",
                line.trim_end()
            ),
        );
    }
}

/// The shape `forward_path` promises for any `addr`: without `@` it is unchanged; otherwise the
/// domain is kept and the local part is either the same dot-atom or a quoted string that
/// unquotes to the same local part.
fn check_forward_path_shape(addr: &str, path: &str) {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        assert_eq!(path, addr);
        return;
    };
    let Some(quoted) = path.strip_suffix(&format!("@{domain}")) else {
        panic!("forward_path({addr:?}) = {path:?} does not keep the domain");
    };
    if quoted == local {
        return;
    }
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_else(|| {
            panic!("forward_path({addr:?}) = {path:?}: local part neither kept nor quoted")
        });
    let mut unquoted = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => unquoted.push(
                chars
                    .next()
                    .unwrap_or_else(|| panic!("{path:?}: dangling backslash")),
            ),
            '"' => panic!("{path:?}: unescaped quote inside the quoted local part"),
            c => unquoted.push(c),
        }
    }
    assert_eq!(
        unquoted, local,
        "forward_path({addr:?}) = {path:?} unquotes to another local part"
    );
}

/// Fuzzes the path parser and `forward_path`: the input is put between the brackets of
/// `MAIL FROM:<..>` and `RCPT TO:<..>`, and `forward_path` also gets it directly.
pub fn check_address(data: &[u8]) {
    if data.contains(&b'\n') {
        // One command line: a LF would end it; `smtp_command` covers multi-line streams.
        return;
    }
    for verb in [
        &b"MAIL FROM:<"[..],
        b"RCPT TO:<",
        b"MAIL FROM: <",
        b"RCPT TO:",
    ] {
        let mut line = verb.to_vec();
        line.extend_from_slice(data);
        if verb.ends_with(b"<") && !data.contains(&b'>') {
            line.push(b'>');
        }
        parse_command(line);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        check_forward_path_shape(s, &forward_path(s));
    }
}

// ---------------------------------------------------------------------------------------------
// (b) DATA: Conn::read_data, dot-unstuffing, bare CR/LF refusal, size and line limits.

/// What `read_data` must do with `input`, computed the simple way (the whole input at once).
#[derive(Debug, PartialEq)]
enum DataWant {
    /// Ended at `<CRLF>.<CRLF>` after `consumed` octets, with this message if complete.
    End(DataEnd, Vec<u8>, usize),
    /// A bare CR or LF before the end.
    Bare,
    /// The stream ended first. `bare_possible`: the unfinished last line holds a CR that is not
    /// its last octet, which `read_data` may already refuse once that line passes 1000 octets.
    Closed { bare_possible: bool },
}

fn expected_data(input: &[u8], max_size: usize) -> DataWant {
    let mut msg = Vec::new();
    let (mut too_big, mut line_too_long) = (false, false);
    let mut pos = 0;
    while let Some(i) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..pos + i + 1];
        pos += i + 1;
        let Some(content) = line.strip_suffix(b"\r\n") else {
            return DataWant::Bare;
        };
        if content.contains(&b'\r') {
            return DataWant::Bare;
        }
        if line.len() > MAX_TEXT_LINE {
            line_too_long = true;
            continue;
        }
        if content == b"." {
            let end = if too_big {
                DataEnd::TooBig
            } else if line_too_long {
                DataEnd::LineTooLong
            } else {
                return DataWant::End(DataEnd::Complete, msg, pos);
            };
            return DataWant::End(end, Vec::new(), pos);
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if !too_big && !line_too_long {
            if msg.len() + content.len() + 2 > max_size {
                too_big = true;
                msg.clear();
            } else {
                msg.extend_from_slice(content);
                msg.extend_from_slice(b"\r\n");
            }
        }
    }
    let tail = &input[pos..];
    let bare_possible = tail.len() > MAX_TEXT_LINE && tail[..tail.len() - 1].contains(&b'\r');
    DataWant::Closed { bare_possible }
}

/// The control bytes: pipe size (see [`pipe_size`]), then two octets of `max_size` (so small
/// limits, where `TooBig` happens, are reachable), then the message data.
pub fn check_data_reader(data: &[u8]) {
    let (cap, rest) = pipe_size(data);
    let (max_size, input) = match rest {
        [a, b, input @ ..] => (u16::from_le_bytes([*a, *b]) as usize, input),
        _ => (1 << 20, rest),
    };
    let want = expected_data(input, max_size);
    let (got, next) = over_duplex(cap, input, async |conn| {
        let mut body = Body::from_bytes(Vec::new());
        let got = conn
            .read_data(&mut body, max_size, TIMEOUT, 0)
            .await
            .map(|end| (end, body.to_vec().expect("in memory")));
        // After the end, the session reads the next command: the reader must stop exactly
        // after `.<CRLF>`, with the rest left for it.
        let next = match got {
            Ok(_) => Some(conn.read_line(MAX_COMMAND_LINE, TIMEOUT).await),
            Err(_) => None,
        };
        (got, next)
    });
    match (&want, got) {
        (DataWant::End(end, want_msg, consumed), Ok((got, msg))) => {
            assert_eq!(&got, end, "read_data ended with another result");
            let used = &input[..*consumed];
            assert!(
                used == b".\r\n" || used.ends_with(b"\r\n.\r\n"),
                "ended at something other than <CRLF>.<CRLF>"
            );
            if got == DataEnd::Complete {
                assert_eq!(
                    &msg, want_msg,
                    "the message differs from the simple reading"
                );
                assert!(msg.len() <= max_size, "message over max_size");
                assert!(
                    msg.is_empty() || msg.ends_with(b"\r\n"),
                    "message not ending in CRLF"
                );
                for (i, &b) in msg.iter().enumerate() {
                    match b {
                        b'\r' => assert_eq!(msg.get(i + 1), Some(&b'\n'), "bare CR in message"),
                        b'\n' => assert!(i > 0 && msg[i - 1] == b'\r', "bare LF in message"),
                        _ => {}
                    }
                }
            }
            let rest = &input[*consumed..];
            let next_want = expected_lines(rest)
                .into_iter()
                .next()
                .expect("at least Closed");
            let next_got = match next.expect("read after Ok") {
                Ok(l) => Ok(l),
                Err(ReadError::TooLong) => Err("TooLong"),
                Err(ReadError::Closed) => Err("Closed"),
                Err(e) => panic!("read_line after DATA failed: {e}"),
            };
            assert_eq!(
                next_got, next_want,
                "the next command after DATA is not what followed `.`"
            );
        }
        (DataWant::Bare, Err(DataError::BareLineEnding)) => {}
        (DataWant::Closed { .. }, Err(DataError::Read(ReadError::Closed))) => {}
        (
            DataWant::Closed {
                bare_possible: true,
            },
            Err(DataError::BareLineEnding),
        ) => {}
        (want, got) => panic!("read_data: wanted {want:?}, got {got:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// (d) The configuration: the file loader and `postern config set`.

/// `parse(text, "f.ron")` never panics; what it accepts is saved and loaded back unchanged.
pub fn check_config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = parse(text, Path::new("f.ron")) {
        round_trip(&cfg);
    }
}

/// The input is `key=value` lines, applied at once with `keys::set` to a configuration with a
/// domain and an account. Never panics; what it accepts saves, loads and reads back unchanged.
pub fn check_config_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let assignments: Vec<(String, String)> =
        text.lines().filter_map(keys::split_assignment).collect();
    let base = base_config();
    if let Ok(cfg) = keys::set(&base, &assignments) {
        round_trip(&cfg);
        for (key, _) in &assignments {
            let _ = keys::get(&cfg, key);
        }
    }
}

/// A valid configuration with a domain and an account, written the way a user would.
fn base_config() -> Config {
    let text = r#"(
        server: (hostname: "mx.example.test"),
        domains: ["example.test"],
        accounts: [(address: "alice@example.test", password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")],
    )"#;
    parse(text, Path::new("base.ron")).expect("the base configuration is valid")
}

/// Saving and loading gives back the same settings, and so does setting every key of
/// `postern config show` to the value it shows.
fn round_trip(cfg: &Config) {
    let text = to_text(cfg);
    match parse(&text, Path::new("saved.ron")) {
        Ok(back) => assert_eq!(
            &back, cfg,
            "saved and loaded configuration differs:\n{text}"
        ),
        Err(e) => panic!("a configuration that loaded does not load once saved: {e}\n{text}"),
    }
    for (key, value) in keys::leaves(cfg) {
        match keys::set(cfg, &[(key.clone(), value.clone())]) {
            Ok(back) => assert_eq!(
                &back, cfg,
                "`config set {key}={value}` changed the configuration"
            ),
            Err(e) => panic!("`config set {key}={value}` (its shown value) is refused: {e}"),
        }
    }
}
