//! The outbound address policy: webhooks may reach public addresses, and private ones only
//! on networks the operator allowed.
//!
//! Names are resolved by [`Guard`]'s own resolver, which checks every address and hands the
//! HTTP client only addresses it checked, so the connection goes where the check looked
//! (no second lookup for a rebinding DNS server to answer differently). A name with any
//! refused address is refused whole. IP literals never reach a resolver, so the sender
//! checks them itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The words a refusal carries, so a failed attempt can be classified as `blocked`.
pub const BLOCKED: &str = "blocked by the outbound address policy";

/// Parses one allowed network: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_network(text: &str) -> anyhow::Result<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| anyhow::anyhow!("not a CIDR such as 10.0.0.0/8 or an IP address"))?;
    Ok(IpNet::from(ip))
}

#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Guard {
        Guard {
            allow: Arc::new(allow),
        }
    }

    /// Why `ip` may not be reached, or `None` if it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        let kind = non_public_kind(ip)?;
        Some(format!(
            "{ip} is {} {kind} address, {BLOCKED}; allow its network with LOCKSTEP_ALLOW_NETWORKS",
            if kind.starts_with(['u']) { "an" } else { "a" }
        ))
    }

    /// Checks a URL's host when it is an IP literal (names are checked when resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), String> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(name)) if is_local_name(name) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => return Ok(()),
        };
        self.refusal(ip).map_or(Ok(()), Err)
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(format!("dns error: {host} has no address").into());
            }
            if let Some(refusal) = found.iter().find_map(|a| guard.refusal(a.ip())) {
                return Err(format!("{host}: {refusal}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The IPv4 address inside IPv6 forms that carry one, so they are judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, _, _] if v6 != Ipv6Addr::LOCALHOST && v6 != Ipv6Addr::UNSPECIFIED => {
            Some(tail)
        }
        // NAT64 64:ff9b::a.b.c.d and the local-use 64:ff9b:1::/48
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, _, _, _, _, _] => Some(tail),
        // 6to4 2002:AABB:CCDD::/48 carries a.b.c.d in its second and third groups
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The kind of a non-public address, or `None` for a public one.
fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "reserved",
        (198, 18..=19, _) => "reserved",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private"
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        "link-local"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) {
        // documentation and discard-only prefixes
        "reserved"
    } else {
        return None;
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(guard: &Guard, text: &str) -> bool {
        guard.refusal(text.parse().unwrap()).is_some()
    }

    #[test]
    fn non_public_addresses_and_ipv6_forms_embedding_them_are_refused() {
        let guard = Guard::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "::127.0.0.1",
        ] {
            assert!(refused(&guard, ip), "{ip} was allowed");
        }
        for ip in [
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "1.1.1.1",
        ] {
            assert!(!refused(&guard, ip), "{ip} was refused");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_range() {
        let guard = Guard::new(vec![parse_network("127.0.0.0/8").unwrap()]);
        assert!(!refused(&guard, "127.0.0.1"));
        assert!(!refused(&guard, "::ffff:127.0.0.1"));
        assert!(refused(&guard, "10.0.0.1"));
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("::1").is_ok());
    }

    #[test]
    fn odd_ipv4_spellings_in_urls_are_refused() {
        let guard = Guard::default();
        for url in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://localhost:80/",
            "http://[::ffff:7f00:1]/",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert!(guard.check_url(&url).is_err(), "{url} was allowed");
        }
        assert!(guard
            .check_url(&url::Url::parse("https://example.com/").unwrap())
            .is_ok());
    }
}
