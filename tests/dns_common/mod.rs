//! Real peers for the delivery tests: a DNS server (dnsmasq, Debian package `dnsmasq-base`),
//! SMTP sinks (Postfix's `smtp-sink`, package `postfix`) and a scripted SMTP server in Python
//! (`tests/peers/mx_peer.py`: chosen replies, STARTTLS speaking TLS 1.0 only), each started on
//! free loopback ports in a per-test temporary directory and killed when dropped.
#![allow(dead_code)]

pub mod proxy;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a helper may take to come up before the test gives up (not a timing assertion).
const STARTUP: Duration = Duration::from_secs(20);

fn find_binary(names: &[&str], package: &str) -> PathBuf {
    for n in names {
        for dir in [
            "/usr/sbin",
            "/usr/local/sbin",
            "/usr/bin",
            "/usr/local/bin",
            "/sbin",
        ] {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found: install the Debian package {package}",
        names[0]
    );
}

/// A port free for both UDP and TCP on `ip` a moment ago.
pub fn free_port_on(ip: Ipv4Addr) -> u16 {
    loop {
        let udp = UdpSocket::bind((ip, 0)).expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// A dnsmasq answering only from the given configuration lines.
pub struct DnsServer {
    /// The dnsmasq process.
    child: Child,
    /// `IP:port`, as `outgoing_mails.dns_hosts` takes it.
    pub addr: String,
    /// Its configuration file and log.
    dir: TempDir,
}

impl DnsServer {
    /// Starts dnsmasq with `zone` (dnsmasq configuration lines) and waits until it listens.
    pub fn start(zone: &str) -> DnsServer {
        Self::start_at(Ipv4Addr::LOCALHOST, None, zone)
    }

    /// [`DnsServer::start`] on `ip`, on `port` (e.g. 53, for a resolv.conf; needs root) or a
    /// free one.
    pub fn start_at(ip: Ipv4Addr, port: Option<u16>, zone: &str) -> DnsServer {
        let bin = find_binary(&["dnsmasq"], "dnsmasq-base");
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("postern-dns-")
                .tempdir()
                .unwrap();
            let conf = dir.path().join("zone.conf");
            fs::write(&conf, zone).unwrap();
            let port = port.unwrap_or_else(|| free_port_on(ip));
            let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
            let mut child = Command::new(&bin)
                .arg("--keep-in-foreground")
                .arg(format!("--port={port}"))
                .arg(format!("--listen-address={ip}"))
                .arg("--bind-interfaces")
                .arg("--no-resolv")
                .arg("--no-hosts")
                .arg("--no-poll")
                .arg("--pid-file")
                .arg("--user=root")
                .arg(format!("--conf-file={}", conf.display()))
                .arg("--log-queries")
                .arg(format!(
                    "--log-facility={}",
                    dir.path().join("log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + STARTUP;
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    last = format!(
                        "dnsmasq exited with {st}: {}",
                        fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
                    );
                    break;
                }
                // dnsmasq opens its TCP socket together with the UDP one.
                if TcpStream::connect((ip, port)).is_ok() {
                    return DnsServer {
                        child,
                        addr: format!("{ip}:{port}"),
                        dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = "dnsmasq did not start listening".into();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("cannot start a DNS server: {last}");
    }

    /// The queries dnsmasq logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Postfix's smtp-sink on one address, writing each mail it accepts to a file.
pub struct Sink {
    /// The smtp-sink process.
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its dump directory.
    dir: TempDir,
}

impl Sink {
    /// Starts `smtp-sink [extra] -d DIR/%M. IP:PORT 100` and waits for its greeting.
    /// `port` 0 picks a free one.
    pub fn start(ip: Ipv4Addr, port: u16, extra: &[&str]) -> Sink {
        let bin = find_binary(&["smtp-sink"], "postfix");
        let mut last = String::new();
        for _ in 0..5 {
            let p = if port == 0 { free_port_on(ip) } else { port };
            let dir = tempfile::Builder::new()
                .prefix("postern-sink-")
                .tempdir()
                .unwrap();
            let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
            let mut cmd = Command::new(&bin);
            // smtp-sink insists on dropping privileges when started as root.
            if unsafe { libc::geteuid() } == 0 {
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .args(extra)
                .arg("-d")
                .arg(format!("{}/mail/%M.", dir.path().display()))
                .arg(format!("{ip}:{p}"))
                .arg("100")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let addr = SocketAddr::from((ip, p));
            let deadline = Instant::now() + STARTUP;
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    last = format!(
                        "smtp-sink exited with {st}: {}",
                        fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
                    );
                    break;
                }
                if let Ok(s) = TcpStream::connect(addr) {
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut greeting = String::new();
                    let _ = BufReader::new(&s).read_line(&mut greeting);
                    if greeting.starts_with("220") {
                        return Sink { child, addr, dir };
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = "smtp-sink did not greet".into();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            if port != 0 {
                break;
            }
        }
        panic!("cannot start smtp-sink: {last}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The mails it wrote, oldest first: its own `X-*:` and `Received:` lines, then the
    /// message, lines ending in LF (smtp-sink writes them so).
    pub fn mails(&self) -> Vec<String> {
        let dir = self.dir.path().join("mail");
        let mut files: Vec<_> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        };
        files.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/peers/mx_peer.py` on one address: answers chosen commands as told, can offer a
/// STARTTLS whose handshake speaks TLS 1.0 only, and writes each mail it accepts to a file.
pub struct MxPeer {
    /// The Python process.
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log, mails and certificate.
    dir: TempDir,
}

impl MxPeer {
    /// Starts the peer on `ip:port` (0: a free port) with `rules` (`PREFIX=REPLY`, see the
    /// script) and, if `legacy_tls`, a STARTTLS limited to TLS 1.0 with a fresh self-signed
    /// certificate. Waits until it listens.
    pub fn start(ip: Ipv4Addr, port: u16, rules: &[&str], legacy_tls: bool) -> MxPeer {
        MxPeer::start_with(ip, port, rules, legacy_tls, &[])
    }

    /// As [`MxPeer::start`], with more options for the script (e.g. `--no-8bitmime`).
    pub fn start_with(
        ip: Ipv4Addr,
        port: u16,
        rules: &[&str],
        legacy_tls: bool,
        options: &[&str],
    ) -> MxPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/mx_peer.py");
        let mut last = String::new();
        for _ in 0..5 {
            let p = if port == 0 { free_port_on(ip) } else { port };
            let dir = tempfile::Builder::new()
                .prefix("postern-mxpeer-")
                .tempdir()
                .unwrap();
            let mut cmd = Command::new("python3");
            cmd.arg(&script)
                .arg(ip.to_string())
                .arg(p.to_string())
                .arg(dir.path());
            if legacy_tls {
                let (cert, key) = write_certificate(dir.path());
                cmd.arg("--legacy-tls").arg(cert).arg(key);
            }
            for r in rules {
                cmd.arg("--reply").arg(r);
            }
            cmd.args(options);
            let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.trim() == "LISTENING" {
                return MxPeer {
                    child,
                    addr: SocketAddr::from((ip, p)),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
            if port != 0 {
                break;
            }
        }
        panic!("cannot start mx_peer.py: {last}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What it logged: `CONNECT`, each command line, `TLS v`, `TLS-FAILED why`.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The mails it accepted, in order: `X-Peer-TLS:`, `X-Mail-From:`, `X-Rcpt-To:` lines,
    /// an empty line, the message.
    pub fn mails(&self) -> Vec<String> {
        (1..)
            .map(|n| self.dir.path().join(format!("mail-{n}.eml")))
            .map_while(|p| fs::read_to_string(p).ok())
            .collect()
    }
}

impl Drop for MxPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate and its key, as PEM files in `dir`.
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["legacy.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}
