//! Which addresses outbound webhooks may reach. Unless `webhooks.allow_private_urls` is set,
//! only public addresses: never loopback, private, link-local (the cloud metadata service at
//! 169.254.169.254), shared, reserved or multicast ones. Checked when an endpoint is written
//! (literal addresses) and again on every delivery, on the addresses the connection actually
//! uses, by [`PublicOnlyResolver`]: a host name that resolves to such an address, at any time
//! (DNS rebinding), is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // shared address space (carrier-grade NAT), 100.64.0.0/10
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 0 && c == 0)
        // benchmarking, 198.18.0.0/15
        || (a == 198 && (18..20).contains(&b))
        // reserved, 240.0.0.0/4
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // unique local, fc00::/7
        || (first & 0xfe00) == 0xfc00
        // link-local, fe80::/10
        || (first & 0xffc0) == 0xfe80
        // documentation, 2001:db8::/32
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms reach IPv4 addresses unchecked
        || ip.to_ipv4().is_some()
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// Whether a URL host names a non-public place by itself: a literal non-public address or
/// `localhost`. Host names are checked when they are resolved.
pub fn is_private_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
    }
}

/// The error of a host name that resolves only to addresses outbound webhooks may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to non-public addresses, which webhooks.allow_private_urls forbids")]
pub struct NonPublicAddress {
    pub host: String,
}

/// A DNS resolver that drops every non-public address of a name, and fails when none is left.
/// The HTTP client connects only to what it returns, so the check holds for the address
/// actually connected to, whatever the name resolves to next time.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| is_public(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(NonPublicAddress { host }.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether an HTTP client error (or one of its causes) is [`NonPublicAddress`].
pub fn refused_address<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a NonPublicAddress> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<NonPublicAddress>() {
            return Some(refused);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!public(private), "{private} is not public");
        }
        for public_address in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(public(public_address), "{public_address} is public");
        }
    }

    #[tokio::test]
    async fn names_of_loopback_addresses_resolve_to_nothing() {
        let name: Name = "localhost".parse().unwrap();
        let error = match PublicOnlyResolver.resolve(name).await {
            Ok(addresses) => panic!("resolved to {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert!(refused_address(error.as_ref()).is_some(), "{error}");
    }
}
