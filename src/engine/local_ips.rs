//! The IP addresses assigned to this computer (for "Block/Allow IP addresses assigned to this
//! computer"), read from the interfaces with getifaddrs(3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every address of every interface, loopback included.
pub fn local_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we only read and then free once.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out.sort();
    out.dedup();
    out
}

/// The addresses, read once per minute at most (interfaces rarely change).
pub fn cached() -> Vec<IpAddr> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static CACHE: Mutex<Option<(Instant, Vec<IpAddr>)>> = Mutex::new(None);
    let mut c = CACHE.lock().expect("local ip cache");
    match c.as_ref() {
        Some((at, ips)) if at.elapsed() < Duration::from_secs(60) => ips.clone(),
        _ => {
            let ips = local_ips();
            *c = Some((Instant::now(), ips.clone()));
            ips
        }
    }
}

/// Whether `ip` is one of this computer's addresses. The whole of 127.0.0.0/8 counts, as
/// every address in it reaches this machine.
pub fn is_local_ip(ip: IpAddr, locals: &[IpAddr]) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || locals.contains(&ip)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_ours() {
        let l = super::local_ips();
        assert!(l.contains(&"127.0.0.1".parse().unwrap()), "{l:?}");
        assert!(super::is_local_ip("127.0.0.9".parse().unwrap(), &l));
        assert!(!super::is_local_ip("192.0.2.1".parse().unwrap(), &l));
    }
}
