//! The reverse-DNS / HELO check: the client IP must have a PTR name that resolves back to the
//! same IP (forward-confirmed reverse DNS), and a HELO given as an address literal must be the
//! client's own address. What to do on failure (refuse or tag) is the caller's decision.

use crate::engine::dns::Resolver;
use std::net::IpAddr;

/// PTR names tried at most (RFC 7208 5.5 uses the same bound for its `ptr` mechanism).
const MAX_PTR_NAMES: usize = 10;

/// `Ok` when `ip` has a PTR name whose A/AAAA records include `ip` and `helo`, if it is an
/// address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), is `ip`; otherwise a short
/// explanation for the log and the warning header. A DNS failure is a failure here too (the
/// explanation says so), since the check cannot pass without an answer.
pub async fn rdns_check(resolver: &Resolver, ip: IpAddr, helo: &str) -> Result<(), String> {
    let ip = ip.to_canonical();
    if let Some(literal) = address_literal(helo) {
        match literal {
            Some(claimed) if claimed.to_canonical() == ip => {}
            Some(claimed) => {
                return Err(format!(
                    "HELO {helo} claims {claimed}, but the client is {ip}"
                ));
            }
            None => return Err(format!("HELO {helo} is not a valid address literal")),
        }
    }
    let names = match resolver.ptr(ip).await {
        Ok(names) => names,
        Err(e) => return Err(format!("no reverse DNS for {ip}: {e}")),
    };
    if names.is_empty() {
        return Err(format!("{ip} has no PTR record (HELO {helo})"));
    }
    let mut failures = Vec::new();
    for name in names.iter().take(MAX_PTR_NAMES) {
        // A PTR "name" that is an address text proves nothing (the resolver would echo it).
        if name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            failures.push(format!("{name} is an address, not a host name"));
            continue;
        }
        match resolver.ip_addrs(name).await {
            Ok(addrs) if addrs.iter().any(|a| a.to_canonical() == ip) => return Ok(()),
            Ok(_) => failures.push(format!("{name} does not resolve to {ip}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "reverse DNS of {ip} is not forward-confirmed: {} (HELO {helo})",
        failures.join("; ")
    ))
}

/// `None` when `helo` is not an address literal; `Some(None)` when it looks like one but does
/// not parse; `Some(Some(ip))` otherwise.
fn address_literal(helo: &str) -> Option<Option<IpAddr>> {
    let inner = helo.trim().strip_prefix('[')?.strip_suffix(']')?;
    let text = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => &inner[5..],
        _ => inner,
    };
    Some(text.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literals() {
        assert_eq!(address_literal("mail.example.com"), None);
        assert_eq!(
            address_literal("[192.0.2.1]"),
            Some(Some("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            address_literal("[IPv6:2001:db8::1]"),
            Some(Some("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            address_literal("[ipv6:::1]"),
            Some(Some("::1".parse().unwrap()))
        );
        assert_eq!(address_literal("[nonsense]"), Some(None));
    }
}
