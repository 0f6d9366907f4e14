//! Resolves many hosts at once: one shared DNS resolver (built only when a
//! name needs it; it reads /etc/resolv.conf and /etc/hosts), a bound on
//! lookups in flight, IP literals never looked up, and the address chosen the
//! way ssh's getaddrinfo would choose it (RFC 6724, the parts that matter here).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::NetError;
use tokio::sync::{OnceCell, Semaphore};

use crate::core::knock::Family;

/// Lookups allowed in flight at once; more wait their turn.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// Why a host has no address to knock; one sentence naming the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{host} has no {family} address")]
    NoAddress { host: String, family: &'static str },
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("{host} is an {actual} address, but only {wanted} was asked for")]
    WrongFamily {
        host: String,
        actual: &'static str,
        wanted: &'static str,
    },
}

/// Why the shared DNS resolver could not be built; every lookup of the run
/// then fails saying so.
#[derive(Debug, thiserror::Error)]
enum DnsUnavailable {
    #[error("cannot read the system's resolver configuration: {0}")]
    Config(NetError),
    #[error("cannot start the resolver: {0}")]
    Start(NetError),
}

/// Shared by every host of a run.
#[derive(Clone)]
pub(crate) struct Resolver {
    /// Built on first use: a run of IP literals never reads the system's DNS configuration.
    dns: Arc<OnceCell<Result<TokioResolver, DnsUnavailable>>>,
    /// Lookups allowed to start now; one permit per lookup in flight.
    in_flight: Arc<Semaphore>,
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::new()
    }
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver {
            dns: Arc::default(),
            in_flight: Arc::new(Semaphore::new(MAX_LOOKUPS_IN_FLIGHT)),
        }
    }

    /// The address to knock for `host`: the one ssh would use.
    pub(crate) async fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, ResolveError> {
        Ok(self.resolve_all(host, family).await?[0])
    }

    /// Every address of `host` in `family`, the one ssh would use first; never empty.
    pub(crate) async fn resolve_all(
        &self,
        host: &str,
        family: Family,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        if let Some(ip) = parse_literal(host) {
            return check_family(host, ip, family).map(|ip| vec![ip]);
        }
        let candidates = self.lookup(host).await?;
        let ordered = order(&candidates, family, &route_source);
        if ordered.is_empty() {
            return Err(ResolveError::NoAddress {
                host: host.to_string(),
                family: family_name(family),
            });
        }
        Ok(ordered)
    }

    async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let dns = self
            .dns
            .get_or_init(|| async {
                let mut builder = TokioResolver::builder_tokio().map_err(DnsUnavailable::Config)?;
                builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
                builder.build().map_err(DnsUnavailable::Start)
            })
            .await;
        let dns = dns.as_ref().map_err(|reason| ResolveError::Lookup {
            host: host.to_string(),
            reason: reason.to_string(),
        })?;
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // A trailing dot would be kept by hickory; names are as the user wrote them.
        match dns.lookup_ip(host).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(err) if err.is_nx_domain() || err.is_no_records_found() => {
                Err(ResolveError::Lookup {
                    host: host.to_string(),
                    reason: "no such host".to_string(),
                })
            }
            Err(err) => Err(ResolveError::Lookup {
                host: host.to_string(),
                reason: err.to_string(),
            }),
        }
    }
}

/// `192.0.2.1`, `127.1`, `2001:db8::1` or `[2001:db8::1]`: an address as
/// getaddrinfo reads it ([`crate::core::host`]; the planner finds a zone's
/// interface, so targets written as addresses normally never get here).
pub(crate) fn parse_literal(host: &str) -> Option<IpAddr> {
    match crate::core::host::parse(host) {
        Ok(crate::core::host::Host::Address { ip, .. }) => Some(ip),
        _ => None,
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Any => "IP",
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

fn check_family(host: &str, ip: IpAddr, family: Family) -> Result<IpAddr, ResolveError> {
    match (family, ip) {
        (Family::Ipv4, IpAddr::V6(_)) | (Family::Ipv6, IpAddr::V4(_)) => {
            Err(ResolveError::WrongFamily {
                host: host.to_string(),
                actual: family_name(if ip.is_ipv4() {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                }),
                wanted: family_name(family),
            })
        }
        _ => Ok(ip),
    }
}

/// The source address the kernel would use to reach `dest`, if it has a route.
/// Connecting a UDP socket only consults the routing table; nothing is sent.
pub(crate) fn route_source(dest: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if dest.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect((dest, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Orders a name's addresses as getaddrinfo does (RFC 6724 rules 1, 2, 5
/// and 6): routable first, then matching scope, then matching label, then
/// higher precedence; the DNS order breaks ties. Addresses of other families
/// are left out. `source` tells the source address for a destination, `None`
/// when there is no route.
pub(crate) fn order(
    candidates: &[IpAddr],
    family: Family,
    source: &dyn Fn(IpAddr) -> Option<IpAddr>,
) -> Vec<IpAddr> {
    let rank = |dest: IpAddr| {
        let src = source(dest);
        let (precedence, label) = policy(dest);
        (
            src.is_some(),
            src.is_some_and(|s| scope(s) == scope(dest)),
            src.is_some_and(|s| policy(s).1 == label),
            precedence,
        )
    };
    let mut ranked: Vec<_> = candidates
        .iter()
        .copied()
        .filter(|ip| match family {
            Family::Any => true,
            Family::Ipv4 => ip.is_ipv4(),
            Family::Ipv6 => ip.is_ipv6(),
        })
        .map(|ip| (rank(ip), ip))
        .collect();
    // Stable: among equals, the DNS order stays.
    ranked.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
    let mut ordered: Vec<IpAddr> = Vec::with_capacity(ranked.len());
    for (_, ip) in ranked {
        if !ordered.contains(&ip) {
            ordered.push(ip);
        }
    }
    ordered
}

/// The address ssh would use: the first of [`order`].
pub(crate) fn pick(
    candidates: &[IpAddr],
    family: Family,
    source: &dyn Fn(IpAddr) -> Option<IpAddr>,
) -> Option<IpAddr> {
    order(candidates, family, source).first().copied()
}

/// RFC 6724 default policy table: (precedence, label).
fn policy(ip: IpAddr) -> (u8, u8) {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let s = v6.segments();
    if v6 == Ipv6Addr::LOCALHOST {
        (50, 0)
    } else if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        (35, 4)
    } else if s[0] == 0x2002 {
        (30, 2)
    } else if s[0] == 0x2001 && s[1] == 0 {
        (5, 5)
    } else if s[0] & 0xfe00 == 0xfc00 {
        (3, 13)
    } else if s[..6] == [0; 6] {
        (1, 3)
    } else if s[0] & 0xffc0 == 0xfec0 {
        (1, 11)
    } else if s[0] == 0x3ffe {
        (1, 12)
    } else {
        (40, 1)
    }
}

/// Address scope: 2 link-local (and loopback), 5 site-local, 14 global.
fn scope(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_link_local() => 2,
        IpAddr::V4(_) => 14,
        IpAddr::V6(v6) if v6.is_loopback() || v6.segments()[0] & 0xffc0 == 0xfe80 => 2,
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfec0 => 5,
        IpAddr::V6(_) => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn literals_are_not_looked_up_and_brackets_are_accepted() {
        assert_eq!(parse_literal("192.0.2.7"), Some(ip("192.0.2.7")));
        assert_eq!(parse_literal("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_literal("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_literal("gw.example.net"), None);
    }

    #[test]
    fn literal_of_the_wrong_family_is_refused() {
        let err = check_family("::1", ip("::1"), Family::Ipv4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "::1 is an IPv6 address, but only IPv4 was asked for"
        );
        assert_eq!(check_family("::1", ip("::1"), Family::Any), Ok(ip("::1")));
    }

    #[test]
    fn global_ipv6_is_preferred_when_the_machine_has_global_ipv6() {
        let both = [ip("192.0.2.1"), ip("2001:db8:1::1")];
        let src = |d: IpAddr| {
            Some(if d.is_ipv4() {
                ip("192.0.2.99")
            } else {
                ip("2001:db8:2::99")
            })
        };
        assert_eq!(pick(&both, Family::Any, &src), Some(ip("2001:db8:1::1")));
        assert_eq!(pick(&both, Family::Ipv4, &src), Some(ip("192.0.2.1")));
    }

    #[test]
    fn ipv4_is_preferred_when_ipv6_has_no_route() {
        let both = [ip("2001:db8:1::1"), ip("192.0.2.1")];
        let src = |d: IpAddr| d.is_ipv4().then(|| ip("192.0.2.99"));
        assert_eq!(pick(&both, Family::Any, &src), Some(ip("192.0.2.1")));
        assert_eq!(
            pick(&both, Family::Ipv6, &src),
            Some(ip("2001:db8:1::1")),
            "-6 still knocks IPv6"
        );
    }

    #[test]
    fn ipv4_is_preferred_when_the_only_ipv6_source_is_unique_local() {
        // Like getaddrinfo: a ULA source does not match a global destination's label.
        let both = [ip("2001:db8:1::1"), ip("192.0.2.1")];
        let src = |d: IpAddr| {
            Some(if d.is_ipv4() {
                ip("192.0.2.99")
            } else {
                ip("fd00::2")
            })
        };
        assert_eq!(pick(&both, Family::Any, &src), Some(ip("192.0.2.1")));
    }

    #[test]
    fn every_address_comes_in_preference_order_without_duplicates() {
        let all = [
            ip("192.0.2.1"),
            ip("2001:db8:1::1"),
            ip("192.0.2.2"),
            ip("192.0.2.1"),
        ];
        let src = |d: IpAddr| {
            Some(if d.is_ipv4() {
                ip("192.0.2.99")
            } else {
                ip("2001:db8:2::99")
            })
        };
        assert_eq!(
            order(&all, Family::Any, &src),
            [ip("2001:db8:1::1"), ip("192.0.2.1"), ip("192.0.2.2")]
        );
        assert_eq!(
            order(&all, Family::Ipv4, &src),
            [ip("192.0.2.1"), ip("192.0.2.2")]
        );
    }

    #[test]
    fn loopback_prefers_ipv6_like_ssh_localhost() {
        let both = [ip("127.0.0.1"), ip("::1")];
        let src = |d: IpAddr| Some(d);
        assert_eq!(pick(&both, Family::Any, &src), Some(ip("::1")));
    }

    #[test]
    fn dns_order_breaks_ties_and_no_candidates_is_none() {
        let two = [ip("192.0.2.2"), ip("192.0.2.1")];
        let src = |_: IpAddr| Some(ip("192.0.2.99"));
        assert_eq!(pick(&two, Family::Any, &src), Some(ip("192.0.2.2")));
        assert_eq!(pick(&[], Family::Any, &src), None);
        assert_eq!(pick(&two, Family::Ipv6, &src), None);
    }
}
