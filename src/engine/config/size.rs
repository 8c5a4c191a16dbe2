//! Sizes as people write them: "25M", "500K", "2G" (binary multiples) or octets; read by the
//! dialogs and `postern account quota`, written back the same way.

/// Writes a size the way [`parse_size`] reads it: 25M, 500K or octets.
pub fn format_size(n: u64) -> String {
    const K: u64 = 1024;
    if n >= K * K * K && n.is_multiple_of(K * K * K) {
        format!("{}G", n / (K * K * K))
    } else if n >= K * K && n.is_multiple_of(K * K) {
        format!("{}M", n / (K * K))
    } else if n >= K && n.is_multiple_of(K) {
        format!("{}K", n / K)
    } else {
        n.to_string()
    }
}

/// Reads "25M", "500K", "1G" (binary multiples) or a number of octets.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024),
        Some((i, 'm' | 'M')) => (&t[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&t[..i], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{t}` is not a size (write e.g. 25M, 500K or a number of octets)"))
}
