//! Resolves many hosts at once: one shared DNS resolver (built only when a
//! name needs it; it reads /etc/resolv.conf and /etc/hosts), a bound on
//! lookups in flight, IP literals never looked up, and the addresses ordered
//! as glibc's getaddrinfo orders them (`sort`, with the facts about this
//! machine from `local`), so the first is the one ssh would use.

mod local;
mod sort;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::NetError;
use tokio::sync::{OnceCell, Semaphore};

use crate::core::knock::Family;
pub use local::route_source;

/// Lookups allowed in flight at once; more wait their turn.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// Where glibc reads the sort's tables.
const GAI_CONF: &str = "/etc/gai.conf";

/// Why a host has no address to knock; one sentence naming the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
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
pub struct Resolver {
    /// Built on first use: a run of IP literals never reads the system's DNS configuration.
    dns: Arc<OnceCell<Result<TokioResolver, DnsUnavailable>>>,
    /// /etc/gai.conf's tables, or glibc's own, read on the first name.
    policy: Arc<OnceLock<sort::Policy>>,
    /// The interface addresses, read on the first name with several addresses.
    interfaces: Arc<OnceLock<local::Interfaces>>,
    /// Lookups allowed to start now; one permit per lookup in flight.
    in_flight: Arc<Semaphore>,
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::new()
    }
}

impl Resolver {
    pub fn new() -> Resolver {
        Resolver {
            dns: Arc::default(),
            policy: Arc::default(),
            interfaces: Arc::default(),
            in_flight: Arc::new(Semaphore::new(MAX_LOOKUPS_IN_FLIGHT)),
        }
    }

    /// The address to knock for `host`: the one ssh would use.
    pub async fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, ResolveError> {
        Ok(self.resolve_all(host, family).await?[0])
    }

    /// Every address of `host` in `family`, in getaddrinfo's order, the one
    /// ssh would use first; never empty.
    pub async fn resolve_all(
        &self,
        host: &str,
        family: Family,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        if let Some(ip) = parse_literal(host) {
            return check_family(host, ip, family).map(|ip| vec![ip]);
        }
        let mut found: Vec<IpAddr> = self
            .lookup(host)
            .await?
            .into_iter()
            .filter(|ip| match family {
                Family::Any => true,
                Family::Ipv4 => ip.is_ipv4(),
                Family::Ipv6 => ip.is_ipv6(),
            })
            .collect();
        if found.len() > 1 {
            // glibc sorts only a list of two or more, asking the kernel then.
            let policy = self.policy.get_or_init(|| {
                // A gai.conf that cannot be read counts as absent, as glibc counts it.
                sort::Policy::from_gai_conf(&std::fs::read(GAI_CONF).unwrap_or_default())
            });
            let interfaces = self.interfaces.get_or_init(local::Interfaces::read);
            found = sort::order(&found, policy, &|dest| interfaces.source(dest));
        }
        if found.is_empty() {
            return Err(ResolveError::NoAddress {
                host: host.to_string(),
                family: family_name(family),
            });
        }
        Ok(found)
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

/// `192.0.2.1`, `2001:db8::1` or `[2001:db8::1]`.
pub fn parse_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
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
}
