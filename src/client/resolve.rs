//! The address ssh would connect to for each host, many hosts at once. IP
//! literals are taken as getaddrinfo takes them (`127.1` too) and never
//! looked up. A name is looked up as glibc's getaddrinfo does with
//! nsswitch.conf's usual `hosts: files dns`: first in /etc/hosts, read as
//! glibc's `files` source reads it (`hosts`); only a name the file does not
//! answer goes to DNS, through one hickory resolver shared by the run (built
//! only when a name needs it; it reads /etc/resolv.conf), A and AAAA at once,
//! or only the family asked for. The addresses are then ordered as glibc
//! orders them (`sort`, with the facts about this machine from `local`), and
//! the first is the one knocked.
//!
//! It must not ask DNS about a name the hosts file answers, and it must not
//! wait for DNS longer than the target's `resolve_timeout`, counted from when
//! the run asks (all hosts are asked at once, so a run waits at most that long).

mod hosts;
mod local;
mod sort;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolveHosts;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RecordType;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::{Instant, timeout_at};

use crate::core::knock::Family;
pub(crate) use local::route_source;

/// Lookups allowed in flight at once; more wait their turn.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// Where glibc reads the hosts file; in a namespace entered with `ip netns
/// exec NAME`, /etc/netns/NAME/hosts is mounted over it.
const HOSTS: &str = "/etc/hosts";
/// Where glibc reads `multi`, unless `RESOLV_HOST_CONF` names another file.
const HOST_CONF: &str = "/etc/host.conf";
/// Where glibc reads the sort's tables.
const GAI_CONF: &str = "/etc/gai.conf";

/// Why a host has no address to knock; one sentence naming the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{host} has no {family} address")]
    NoAddress { host: String, family: &'static str },
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error(
        "cannot resolve {host}: DNS gave no answer within {} (resolve_timeout)",
        crate::core::units::format_duration(*within)
    )]
    Timeout { host: String, within: Duration },
    #[error("{host} is an {actual} address, but only {wanted} was asked for")]
    WrongFamily {
        host: String,
        actual: &'static str,
        wanted: &'static str,
    },
}

/// Why the shared DNS resolver could not be built; every DNS lookup of the
/// run then fails saying so.
#[derive(Debug, thiserror::Error)]
enum DnsUnavailable {
    #[error("cannot read the system's resolver configuration: {0}")]
    Config(NetError),
    #[error("cannot start the resolver: {0}")]
    Start(NetError),
}

/// The files glibc reads for every lookup, read once per run.
struct SystemFiles {
    /// /etc/hosts, with host.conf's `multi`.
    hosts: hosts::HostsFile,
    /// /etc/gai.conf's tables, or glibc's own.
    policy: sort::Policy,
}

impl SystemFiles {
    /// Files that cannot be read count as absent, as glibc counts them.
    fn read() -> SystemFiles {
        use std::os::unix::ffi::OsStringExt as _;
        let host_conf = std::env::var_os("RESOLV_HOST_CONF")
            .map_or_else(|| PathBuf::from(HOST_CONF), PathBuf::from);
        let multi = hosts::multi(
            std::fs::read(host_conf).ok().as_deref(),
            std::env::var_os("RESOLV_MULTI")
                .map(|v| v.into_vec())
                .as_deref(),
        );
        SystemFiles {
            hosts: hosts::HostsFile::new(std::fs::read(HOSTS).unwrap_or_default(), multi),
            policy: sort::Policy::from_gai_conf(&std::fs::read(GAI_CONF).unwrap_or_default()),
        }
    }
}

/// Shared by every host of a run; a new run makes a new one, so it sees
/// the files and interfaces as they are then.
#[derive(Clone)]
pub(crate) struct Resolver {
    /// Built on first use: a run of IP literals and hosts-file names never
    /// reads the system's DNS configuration.
    dns: Arc<OnceCell<Result<TokioResolver, DnsUnavailable>>>,
    /// The hosts file and the sort's tables, read on the first name.
    files: Arc<OnceLock<SystemFiles>>,
    /// The interface addresses, read on the first name with several addresses.
    interfaces: Arc<OnceLock<local::Interfaces>>,
    /// DNS lookups allowed to start now; one permit per lookup in flight.
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
            files: Arc::default(),
            interfaces: Arc::default(),
            in_flight: Arc::new(Semaphore::new(MAX_LOOKUPS_IN_FLIGHT)),
        }
    }

    /// The address to knock for `host`: the one ssh would use. DNS may take
    /// up to `within`.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        family: Family,
        within: Duration,
    ) -> Result<IpAddr, ResolveError> {
        Ok(self.resolve_all(host, family, within).await?[0])
    }

    /// Every address of `host` in `family`, in getaddrinfo's order, the one
    /// ssh would use first; never empty. DNS may take up to `within`.
    pub(crate) async fn resolve_all(
        &self,
        host: &str,
        family: Family,
        within: Duration,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let deadline = Instant::now() + within;
        if let Some(ip) = parse_literal(host) {
            return literal(host, ip, family).map(|ip| vec![ip]);
        }
        let files = self.files.get_or_init(SystemFiles::read);
        let mut found = files.hosts.lookup(host, family);
        if found.is_empty() {
            found = self.ask_dns(host, family, deadline, within).await?;
        }
        if found.len() > 1 {
            // glibc sorts only a list of two or more, asking the kernel then.
            let interfaces = self.interfaces.get_or_init(local::Interfaces::read);
            found = sort::order(&found, &files.policy, &|dest| interfaces.source(dest));
        }
        if found.is_empty() {
            return Err(ResolveError::NoAddress {
                host: host.to_string(),
                family: family_name(family),
            });
        }
        Ok(found)
    }

    /// The A and AAAA records of `host` (or the one `family` asks for), A
    /// first as glibc's DNS source lists them, by `deadline`. A family that
    /// has not answered by then is left out if the other one did.
    async fn ask_dns(
        &self,
        host: &str,
        family: Family,
        deadline: Instant,
        within: Duration,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let failed = |reason: String| ResolveError::Lookup {
            host: host.to_string(),
            reason,
        };
        let timed_out = || ResolveError::Timeout {
            host: host.to_string(),
            within,
        };
        let dns = self
            .dns
            .get_or_init(|| async {
                let mut builder = TokioResolver::builder_tokio().map_err(DnsUnavailable::Config)?;
                // The hosts file is read here, as glibc reads it; hickory's
                // reading would answer A from the file and AAAA from DNS.
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder.build().map_err(DnsUnavailable::Start)
            })
            .await;
        let dns = dns.as_ref().map_err(|reason| failed(reason.to_string()))?;
        let _permit = timeout_at(deadline, self.in_flight.acquire())
            .await
            .map_err(|_| timed_out())?
            .expect("the semaphore is never closed");
        let ask = |kind: RecordType| async move {
            // A trailing dot would be kept by hickory; names are as the user wrote them.
            match timeout_at(deadline, dns.lookup(host, kind)).await {
                Err(_) => Answer::Late,
                Ok(Ok(found)) => Answer::Addresses(
                    found
                        .answers()
                        .iter()
                        .filter_map(|r| r.data.ip_addr())
                        .collect(),
                ),
                Ok(Err(err)) if err.is_nx_domain() => Answer::NoSuchName,
                Ok(Err(err)) if err.is_no_records_found() => Answer::Addresses(Vec::new()),
                Ok(Err(err)) => Answer::Failed(err.to_string()),
            }
        };
        let answers = match family {
            Family::Ipv4 => vec![ask(RecordType::A).await],
            Family::Ipv6 => vec![ask(RecordType::AAAA).await],
            Family::Any => {
                let (a, aaaa) = tokio::join!(ask(RecordType::A), ask(RecordType::AAAA));
                vec![a, aaaa]
            }
        };
        let mut found = Vec::new();
        for answer in &answers {
            if let Answer::Addresses(addresses) = answer {
                found.extend(addresses);
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        if answers.iter().any(|a| matches!(a, Answer::Late)) {
            return Err(timed_out());
        }
        if let Some(Answer::Failed(reason)) =
            answers.iter().find(|a| matches!(a, Answer::Failed(_)))
        {
            return Err(failed(reason.clone()));
        }
        if answers.iter().all(|a| matches!(a, Answer::NoSuchName)) {
            return Err(failed("no such host".to_string()));
        }
        Ok(found)
    }
}

/// What DNS said about one family of a name.
enum Answer {
    /// Its addresses; none when the name exists without any of that family.
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: there is no such name.
    NoSuchName,
    /// Any other failure, said by hickory.
    Failed(String),
    /// No answer by the deadline.
    Late,
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

/// A literal in `family`, as getaddrinfo takes it: an IPv4-mapped IPv6
/// literal is its IPv4 address under `-4`; any other of the other family is refused.
fn literal(host: &str, ip: IpAddr, family: Family) -> Result<IpAddr, ResolveError> {
    match (family, ip) {
        (Family::Ipv4, IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            Ok(IpAddr::V4(v6.to_ipv4_mapped().expect("just checked")))
        }
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
    fn ipv4_literals_take_every_form_getaddrinfo_takes() {
        // Each case as Python's socket.getaddrinfo(text, None, AF_INET, 0, 0,
        // AI_NUMERICHOST) answers it on glibc 2.36.
        for (text, address) in [
            ("127.1", "127.0.0.1"),
            ("10.1.2", "10.1.0.2"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.0.0.01", "127.0.0.1"),
            ("1.65536", "1.1.0.0"),
        ] {
            assert_eq!(parse_literal(text), Some(ip(address)), "{text}");
        }
        // getaddrinfo reads a bare decimal number as an address too, but the
        // planner refuses one as a host (a port written where the host
        // goes), so it never becomes one here.
        for number in ["3232235777", "017700000001", "0"] {
            assert_eq!(parse_literal(number), None, "{number}");
        }
        for name in [
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.16777216",
            "08",
            "1.",
            ".1",
            "1..2",
            "4294967296",
            "0x",
            "0x.1",
            "00x1",
            "0xg",
            "10.1.2.3x",
            "gw1",
            "1e5",
        ] {
            assert_eq!(parse_literal(name), None, "{name}");
        }
    }

    #[test]
    fn literal_of_the_wrong_family_is_refused() {
        let err = literal("::1", ip("::1"), Family::Ipv4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "::1 is an IPv6 address, but only IPv4 was asked for"
        );
        assert_eq!(literal("::1", ip("::1"), Family::Any), Ok(ip("::1")));
        assert_eq!(
            literal("::ffff:10.0.0.1", ip("::ffff:10.0.0.1"), Family::Ipv4),
            Ok(ip("10.0.0.1")),
            "as getaddrinfo maps it back"
        );
    }

    #[test]
    fn a_late_dns_names_the_key_that_bounds_it() {
        let err = ResolveError::Timeout {
            host: "gw1".into(),
            within: Duration::from_millis(1500),
        };
        assert_eq!(
            err.to_string(),
            "cannot resolve gw1: DNS gave no answer within 1s 500ms (resolve_timeout)"
        );
    }
}
