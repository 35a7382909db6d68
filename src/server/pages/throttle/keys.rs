//! What failures are counted by: user names trimmed and case-folded, addresses by the
//! block one subscriber usually holds.

use std::net::IpAddr;

/// Names compare trimmed and case-folded, and only their first 256 characters count.
pub(super) fn user_key(username: &str) -> String {
    username
        .trim()
        .chars()
        .take(256)
        .collect::<String>()
        .to_lowercase()
}

/// IPv4 addresses whole (also when mapped into IPv6), IPv6 by their /64.
pub(super) fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}
