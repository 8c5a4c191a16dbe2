//! A TCP relay that counts connections: it stands between Postern and an SMTP peer so a test
//! can see how many connections Postern opened and when the peer closed one. It forwards
//! bytes unchanged in both directions.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The relay; it stops listening when dropped (connections already open run to their end).
pub struct CountingProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    opened: Arc<AtomicUsize>,
    /// Connections over (either side closed).
    closed: Arc<AtomicUsize>,
    /// Tells the accept loop to stop.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl CountingProxy {
    /// A relay on `ip` (a free port) to `upstream`.
    pub fn start(ip: Ipv4Addr, upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind((ip, 0)).expect("proxy bind");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let opened = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (o, c, s) = (opened.clone(), closed.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((down, _)) => {
                        o.fetch_add(1, Ordering::SeqCst);
                        let c = c.clone();
                        thread::spawn(move || relay(down, upstream, c));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        CountingProxy {
            addr,
            opened,
            closed,
            stop,
        }
    }

    /// Connections accepted so far.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// Connections that have ended.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits (up to a minute, not a timing assertion) until `n` connections have ended.
    pub fn wait_closed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.closed() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} connections ended",
                self.closed()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways until either side closes, then closes both and counts the end.
fn relay(down: TcpStream, upstream: SocketAddr, closed: Arc<AtomicUsize>) {
    let Ok(up) = TcpStream::connect(upstream) else {
        closed.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
    let a = thread::spawn(move || copy(down, up));
    let b = thread::spawn(move || copy(u2, d2));
    let _ = a.join();
    let _ = b.join();
    closed.fetch_add(1, Ordering::SeqCst);
}

/// One direction; when it ends, both sockets are shut so the other direction ends too.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
