//! Shared helpers for Postern's integration tests.
//!
//! Everything here is real: the `postern` binary is spawned as a child
//! process, it listens on real loopback TCP ports, and its config, data dir
//! and Maildirs are real files in a per-test temporary directory.
#![allow(dead_code)]

pub mod spool;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

pub const HOSTNAME: &str = "mail.test";
pub const DOMAIN: &str = "example.test";
pub const ALICE: &str = "alice@example.test";
pub const PASSWORD: &str = "secret";

/// How long any single read on a test socket may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for a server to come up, or for a hot reload to apply.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_postern")
}

/// Path of a helper script in tests/peers/.
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("peers")
        .join(name)
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Two distinct free ports, neither of them in `taken` (a port just freed can be handed out
/// twice), for a mailbox service's plain and TLS listeners.
pub fn two_free_ports(taken: &[u16]) -> (u16, u16) {
    let (mut a, mut b) = (0, 0);
    while a == 0 || taken.contains(&a) {
        a = free_port();
    }
    while b == 0 || b == a || taken.contains(&b) {
        b = free_port();
    }
    (a, b)
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
#[track_caller]
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------

/// Result of one `postern` invocation.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Panic (showing all output) unless the command succeeded.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "command failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panic (showing all output) unless the command failed.
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            !self.status.success(),
            "command unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Run a command to completion with an optional stdin, killing it after
/// `timeout` so that a hung child can never hang the test suite.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        let input = input.to_owned();
        thread::spawn(move || {
            let _ = si.write_all(input.as_bytes());
        });
    }
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    Out {
        status,
        stdout,
        stderr,
    }
}

/// `postern --config CONFIG --data-dir DATA ARGS...`
pub fn postern(config: &Path, data: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(config).arg("--data-dir").arg(data);
    cmd.args(args);
    run_with_timeout(cmd, stdin, Duration::from_secs(60))
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

/// The settings a test server is started with; rendered as a whole RON file.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    pub incoming_port: u16,
    pub outgoing_enabled: bool,
    pub outgoing_port: u16,
    pub max_connections_per_port: u64,
    pub max_recipients_per_mail: u64,
    pub max_message_size: u64,
    pub max_errors_per_session: u64,
    pub command_timeout: String,
    pub data_timeout: String,
    pub implicit_port: Option<u16>,
    pub auth_requires_tls: bool,
    pub domains: Vec<String>,
    /// `(address, argon2 hash)` pairs written verbatim into `accounts`.
    pub accounts: Vec<(String, String)>,
    /// More top-level RON fields, written verbatim (e.g. `abuse: (lockout: (enabled: false)),`).
    pub extra_ron: String,
    /// The fields of the `pop3` section (off unless a test turns it on: the default ports
    /// 110 and 995 are the machine's).
    pub pop3_ron: String,
    /// The fields of the `imap` section (off unless a test turns it on, as POP3).
    pub imap_ron: String,
}

impl Default for Config {
    fn default() -> Self {
        let incoming_port = free_port();
        let mut outgoing_port = free_port();
        while outgoing_port == incoming_port {
            outgoing_port = free_port();
        }
        Config {
            hostname: HOSTNAME.into(),
            incoming_port,
            outgoing_enabled: false,
            outgoing_port,
            max_connections_per_port: 100,
            max_recipients_per_mail: 100,
            max_message_size: 26_214_400,
            max_errors_per_session: 10,
            command_timeout: "5m".into(),
            data_timeout: "3m".into(),
            implicit_port: None,
            auth_requires_tls: true,
            domains: vec![DOMAIN.into()],
            accounts: Vec::new(),
            extra_ron: String::new(),
            pop3_ron: "enabled: false".into(),
            imap_ron: "enabled: false".into(),
        }
    }
}

impl Config {
    /// Outgoing SMTP on the incoming port (one incoming+outgoing listener): where a login can
    /// grant something, so where AUTH is offered.
    pub fn with_submission(&mut self) {
        self.outgoing_enabled = true;
        self.outgoing_port = self.incoming_port;
    }

    pub fn to_ron(&self) -> String {
        let implicit = match self.implicit_port {
            Some(p) => format!("Some({p})"),
            None => "None".into(),
        };
        let domains = self
            .domains
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let accounts = self
            .accounts
            .iter()
            .map(|(a, h)| format!("\n        (address: {a:?}, password: {h:?}),"))
            .collect::<String>();
        format!(
            r#"(
    server: (hostname: "{hostname}"),
    smtp: (
        incoming: (port: {ip}, listen_ip: "127.0.0.1"),
        outgoing: (enabled: {oe}, port: {op}, listen_ip: "127.0.0.1"),
        max_connections_per_port: {mc},
        max_recipients_per_mail: {mr},
        max_message_size: {ms},
        max_errors_per_session: {me},
        timeouts: (command: "{tc}", data: "{td}"),
        tls: (certificate: "", key: "", implicit_port: {implicit}, auth_requires_tls: {art}),
    ),
    {extra}
    pop3: ({pop3}),
    imap: ({imap}),
    domains: [{domains}],
    accounts: [{accounts}
    ],
)
"#,
            hostname = self.hostname,
            ip = self.incoming_port,
            oe = self.outgoing_enabled,
            op = self.outgoing_port,
            mc = self.max_connections_per_port,
            mr = self.max_recipients_per_mail,
            ms = self.max_message_size,
            me = self.max_errors_per_session,
            tc = self.command_timeout,
            td = self.data_timeout,
            art = self.auth_requires_tls,
            extra = self.extra_ron,
            pop3 = self.pop3_ron,
            imap = self.imap_ron,
        )
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// A temp dir holding `postern.ron`, a data dir, and (once started) a running
/// `postern serve` child whose stderr goes to `serve.stderr`. Killed on Drop.
pub struct Server {
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    pub cfg: Config,
    child: Option<Child>,
}

impl Server {
    /// Write the config and create alice's account, without starting.
    pub fn prepare(cfg: Config) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("postern-test-")
            .tempdir()
            .expect("tempdir");
        let config_path = dir.path().join("postern.ron");
        let data_dir = dir.path().join("data");
        let stderr_path = dir.path().join("serve.stderr");
        fs::write(&config_path, cfg.to_ron()).expect("write config");
        let s = Server {
            dir,
            config_path,
            data_dir,
            stderr_path,
            cfg,
            child: None,
        };
        if s.cfg.domains.iter().any(|d| d == DOMAIN) {
            s.cli_stdin(
                &["account", "add", ALICE, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            )
            .assert_ok();
        }
        s
    }

    /// Prepare and start with the default test config.
    pub fn start_default() -> Server {
        Self::start(Config::default())
    }

    /// Prepare and start with a config tweaked by `f`.
    pub fn start_with(f: impl FnOnce(&mut Config)) -> Server {
        let mut cfg = Config::default();
        f(&mut cfg);
        Self::start(cfg)
    }

    pub fn start(cfg: Config) -> Server {
        let mut s = Self::prepare(cfg);
        s.spawn();
        s.wait_ready(s.cfg.incoming_port);
        s
    }

    /// Spawn `postern serve` (stderr captured to a file).
    pub fn spawn(&mut self) {
        self.spawn_with_file_limit(None);
    }

    /// Spawn `postern serve` with `ulimit -f KIB` (files it writes may not grow past that):
    /// a write past the limit fails with EFBIG, as a full disk fails with ENOSPC.
    /// Spawn `postern serve` in a mount namespace of its own, with `resolv_conf` bind-mounted
    /// over `/etc/resolv.conf` (needs root): a test changes the system DNS configuration the
    /// server sees without touching the machine's.
    pub fn spawn_with_resolv_conf(&mut self, resolv_conf: &Path) {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /etc/resolv.conf && exec \"$0\" \"$@\"",
                resolv_conf.display()
            ))
            .arg(bin());
        self.spawn_cmd(c);
    }

    /// Spawn `postern serve` in a network namespace of its own (needs root) whose loopback
    /// interface also has `extra_addr` (e.g. `192.0.2.55/32`): a client there can connect
    /// from an address that is not a loopback address. Reach it with [`Server::in_netns`].
    pub fn spawn_in_netns(&mut self, extra_addr: &str) {
        let mut c = Command::new("unshare");
        c.args(["--net", "sh", "-c"])
            .arg(format!(
                "ip link set lo up && ip addr add {extra_addr} dev lo && exec \"$0\" \"$@\""
            ))
            .arg(bin());
        self.spawn_cmd(c);
    }

    /// A command run inside the server's network namespace (see [`Server::spawn_in_netns`]).
    pub fn in_netns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .arg(program);
        c
    }

    /// Spawn `postern serve` with the console (stderr) as a user gets it: no `RUST_LOG`.
    pub fn spawn_with_default_console(&mut self) {
        let mut c = Command::new(bin());
        c.env_remove("RUST_LOG");
        self.spawn_cmd(c);
    }

    pub fn spawn_with_file_limit(&mut self, kib: Option<u64>) {
        let cmd = match kib {
            None => Command::new(bin()),
            Some(k) => {
                let mut c = Command::new("sh");
                // ulimit -f counts 512-octet blocks in dash.
                c.arg("-c")
                    .arg(format!("ulimit -f {}; exec \"$0\" \"$@\"", k * 2))
                    .arg(bin());
                c
            }
        };
        self.spawn_cmd(cmd);
    }

    /// Spawn `cmd` (the binary, or a wrapper that execs it) with the server's arguments.
    fn spawn_cmd(&mut self, mut cmd: Command) {
        assert!(self.child.is_none(), "server already spawned");
        // Every line on stderr (the console's default leaves each mail's lines to the log
        // file): the tests read the server's story there. Unless the caller chose.
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        }
        let err = fs::File::create(&self.stderr_path).expect("create stderr file");
        let child = cmd
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn postern serve");
        self.child = Some(child);
    }

    /// Wait until `port` accepts a connection and sends a 220 greeting.
    pub fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(st) = child.try_wait().unwrap()
            {
                panic!(
                    "postern serve exited early with {st:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            if let Ok(mut c) = Client::try_connect(port)
                && let Ok(r) = c.try_read_reply()
                && r.code == 220
            {
                let _ = c.send(b"QUIT\r\n");
                let _ = c.try_read_reply();
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server never became ready on port {port}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.cfg.incoming_port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not running").id()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Run a CLI command against this server's config and data dir.
    pub fn cli(&self, args: &[&str]) -> Out {
        postern(&self.config_path, &self.data_dir, args, None)
    }

    /// Today's counters as `postern status` prints them: `accepted N, sent N, given up N,
    /// refused N`.
    pub fn counters(&self) -> String {
        let out = self.cli(&["status"]);
        out.assert_ok();
        out.stdout
            .lines()
            .find(|l| l.starts_with("today ("))
            .unwrap_or_else(|| panic!("no counters in:\n{}", out.stdout))
            .split_once(": ")
            .unwrap()
            .1
            .to_string()
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Out {
        postern(&self.config_path, &self.data_dir, args, Some(stdin))
    }

    /// The argon2 hash stored for `address` in the config file.
    pub fn password_hash(&self, address: &str) -> String {
        let text = String::from_utf8(self.config_bytes()).unwrap();
        let at = text
            .find(&format!("{address:?}"))
            .unwrap_or_else(|| panic!("{address} not in config:\n{text}"));
        let start = at + text[at..].find("\"$argon2").expect("argon2 hash") + 1;
        let end = start + text[start..].find('"').unwrap();
        text[start..end].to_string()
    }

    /// Rewrite the whole config file from `self.cfg`.
    pub fn rewrite_config(&self) {
        fs::write(&self.config_path, self.cfg.to_ron()).expect("write config");
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        fs::read(&self.config_path).expect("read config")
    }

    /// Send a signal (e.g. "TERM", "INT") to the server process.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{sig} {}", self.pid()))
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// `kill -9`, then the server started again on the same files, ready on its incoming port.
    pub fn kill_and_restart(&mut self) {
        self.signal("KILL");
        self.wait_exit(Duration::from_secs(30));
        self.spawn();
        self.wait_ready(self.port());
    }

    /// Wait for the server to exit (panics after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Connect to the incoming port and read the 220 greeting.
    pub fn connect(&self) -> Client {
        Client::connect_greeted(self.port())
    }

    pub fn maildir(&self, domain: &str, user: &str) -> PathBuf {
        self.data_dir.join("mailboxes").join(domain).join(user)
    }

    /// Files in `DATA/mailboxes/<domain>/<user>/new`, sorted by name.
    pub fn maildir_files(&self, domain: &str, user: &str) -> Vec<PathBuf> {
        list_files(&self.maildir(domain, user).join("new"))
    }

    /// Contents of the mails in alice's `new/`.
    pub fn alice_mails(&self) -> Vec<String> {
        self.maildir_files(DOMAIN, "alice")
            .iter()
            .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!(
                "---- postern serve stderr ({}) ----\n{}\n---- end ----",
                self.stderr_path.display(),
                self.stderr()
            );
        }
    }
}

pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// A tiny blocking SMTP client
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    /// Raw lines without the trailing CRLF, e.g. `250-PIPELINING`.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The text after `NNN-` / `NNN ` of each line.
    pub fn texts(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| if l.len() > 4 { &l[4..] } else { "" })
            .collect()
    }

    /// The enhanced status code (first word of the first line's text).
    pub fn enhanced(&self) -> &str {
        self.texts()
            .first()
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or("")
    }

    /// Does any line's text equal `s` (case-insensitive)?
    pub fn has_line(&self, s: &str) -> bool {
        self.texts()
            .iter()
            .any(|t| t.trim().eq_ignore_ascii_case(s))
    }

    /// Does any line's text start with `s` (case-insensitive)?
    pub fn has_line_starting(&self, s: &str) -> bool {
        let s = s.to_ascii_lowercase();
        self.texts()
            .iter()
            .any(|t| t.to_ascii_lowercase().starts_with(&s))
    }

    /// Assert the reply code and (if non-empty) the enhanced status code.
    #[track_caller]
    pub fn assert(&self, code: u16, enhanced: &str) -> &Self {
        assert_eq!(self.code, code, "unexpected reply:\n{}", self.text());
        if !enhanced.is_empty() {
            assert_eq!(
                self.enhanced(),
                enhanced,
                "unexpected enhanced code in reply:\n{}",
                self.text()
            );
        }
        self
    }
}

pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn try_connect(port: u16) -> io::Result<Client> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    #[track_caller]
    pub fn connect(port: u16) -> Client {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
    }

    /// Connect and assert the `220 <hostname> ESMTP Postern` greeting.
    #[track_caller]
    pub fn connect_greeted(port: u16) -> Client {
        let mut c = Self::connect(port);
        let r = c.read_reply();
        assert_eq!(r.code, 220, "greeting: {}", r.text());
        c
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Read one (possibly multi-line) reply.
    pub fn try_read_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = self.reader.read_until(b'\n', &mut buf)?;
            if n == 0 || !buf.ends_with(b"\n") {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed while reading a reply (got {:?} so far, partial line {:?})",
                        lines,
                        String::from_utf8_lossy(&buf)
                    ),
                ));
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let bytes = line.as_bytes();
            if bytes.len() < 3 || !bytes[..3].iter().all(|b| b.is_ascii_digit()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed reply line {line:?}"),
                ));
            }
            let code: u16 = line[..3].parse().unwrap();
            let more = bytes.len() > 3 && bytes[3] == b'-';
            lines.push(line);
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    #[track_caller]
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(r) => r,
            Err(e) => panic!("reading reply: {e}"),
        }
    }

    /// Send `line` + CRLF and read the reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("sending {line:?}: {e}"));
        self.read_reply()
    }

    /// `cmd` plus an assertion on code and enhanced code.
    #[track_caller]
    pub fn expect(&mut self, line: &str, code: u16, enhanced: &str) -> Reply {
        let r = self.cmd(line);
        assert_eq!(
            r.code,
            code,
            "command {line:?} got unexpected reply:\n{}",
            r.text()
        );
        if !enhanced.is_empty() {
            assert_eq!(
                r.enhanced(),
                enhanced,
                "command {line:?} got unexpected enhanced code:\n{}",
                r.text()
            );
        }
        r
    }

    #[track_caller]
    pub fn ehlo(&mut self) -> Reply {
        let r = self.cmd("EHLO client.test");
        assert_eq!(r.code, 250, "EHLO: {}", r.text());
        r
    }

    /// EHLO, MAIL FROM, RCPT TO alice, DATA -> 354.
    #[track_caller]
    pub fn begin_mail_to_alice(&mut self) {
        self.ehlo();
        self.expect("MAIL FROM:<bob@remote.test>", 250, "");
        self.expect(&format!("RCPT TO:<{ALICE}>"), 250, "2.1.5");
        self.expect("DATA", 354, "");
    }

    /// Assert that the server has closed the connection (EOF or reset),
    /// without sending anything more.
    #[track_caller]
    pub fn assert_closed(&mut self) {
        let mut buf = [0u8; 4096];
        match self.reader.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected the connection to be closed, but got more data: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) => {}
            Err(e) => panic!("expected the connection to be closed, got error: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------

pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The SASL PLAIN initial response for `user`/`pass`.
pub fn sasl_plain(user: &str, pass: &str) -> String {
    base64(format!("\0{user}\0{pass}").as_bytes())
}

/// Today's UTC date as `YYYY-MM-DD`, offset by `delta_days`.
pub fn utc_date(delta_days: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = secs.div_euclid(86_400) + delta_days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Normalise line endings to `\n` for content comparisons.
pub fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

// ---------------------------------------------------------------------------
// A client from a chosen source address
// ---------------------------------------------------------------------------

/// A minimal SMTP client whose source address can be chosen (127.0.0.x), for access-control
/// and abuse tests that need clients from several addresses.
pub struct SourceClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl SourceClient {
    /// Connects from `src` (an IPv4 loopback address) to 127.0.0.1:`port`.
    pub fn from(src: &str, port: u16) -> SourceClient {
        Self::between(src, "127.0.0.1", port)
    }

    /// Connects from `src` to `dst`:`port` (IPv4 loopback addresses).
    pub fn between(src: &str, dst: &str, port: u16) -> SourceClient {
        use socket2::{Domain, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let src: SocketAddr = format!("{src}:0").parse().unwrap();
        s.bind(&SockAddr::from(src)).unwrap();
        let dst: SocketAddr = format!("{dst}:{port}").parse().unwrap();
        s.connect_timeout(&SockAddr::from(dst), IO_TIMEOUT).unwrap();
        let w: TcpStream = s.into();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        SourceClient { w, r }
    }

    /// Reads a reply: (code, its last line); code 0 when the server closed the connection.
    pub fn reply(&mut self) -> (u16, String) {
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                return (0, String::new());
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return (line[..3].parse().unwrap_or(0), line.trim_end().to_string());
            }
        }
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        let _ = self.w.write_all(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// A further reply if the server sends one within half a second (a block notice), else
    /// (0, "").
    pub fn reply_if_more(&mut self) -> (u16, String) {
        self.w
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let r = self.reply();
        self.w
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        r
    }

    /// Whether the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        self.reply().0 == 0
    }
}

/// Delivers a message to alice over SMTP; `body` lines are dot-stuffed here.
pub fn deliver_to_alice(s: &Server, subject: &str, body: &[&str]) {
    let mut c = s.connect();
    c.begin_mail_to_alice();
    let mut data = format!("From: bob@remote.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n");
    for l in body {
        if l.starts_with('.') {
            data.push('.');
        }
        data.push_str(l);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    c.send(data.as_bytes()).unwrap();
    assert_eq!(c.read_reply().code, 250);
    c.cmd("QUIT");
}
