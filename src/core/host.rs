//! Host words as people write them — `gw.example.net`, `192.0.2.1`,
//! `2001:db8::1`, `[2001:db8::1]`, `fe80::1%eth0`, `127.1` — read the way
//! getaddrinfo (and so ssh and ping) reads them, so knockr knocks the address
//! ssh would connect to. The near misses people type for another tool
//! (`gw:22`, `root@gw`, `[2001:db8::1]:22`, a port where the host goes) are
//! told apart, so the message can say what to write instead.
//!
//! Pure parsing: nothing is looked up, and a zone stays the text written
//! (the client finds its interface).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host word, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A name, to be looked up.
    Name(String),
    /// An address, never looked up.
    Address {
        /// The address itself (`127.1` is 127.0.0.1 here).
        ip: IpAddr,
        /// The scope of an IPv6 address as written after `%`: an interface
        /// name (`eth0` in `fe80::1%eth0`) or number.
        zone: Option<String>,
    },
}

/// Why a word is not a host. The display is the middle of a sentence
/// ("`gw:22` is a host and a port"); each caller names the word before it and
/// says what to write after it, in its own terms (a flag, a file's key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// `gw:22`, `[2001:db8::1]:22`: ssh's or a URL's spelling.
    #[error("is a host and a port")]
    WithPort {
        /// The host part, without brackets.
        host: String,
        /// The digits after the colon.
        port: String,
    },
    /// `root@gw`: ssh's spelling of a login.
    #[error("names a user")]
    WithUser {
        /// What came before the last `@`.
        user: String,
        /// What came after it.
        host: String,
    },
    /// `8000`: a port where a host was expected. getaddrinfo would read it
    /// as the address 0.0.31.64, which nobody means.
    #[error("is a bare number, not a host")]
    BareNumber,
    /// `256.1.1.1`, `1.2.3.4.5`: digits and dots that make no address.
    #[error("is not an IPv4 address: expected four numbers 0-255, e.g. 192.0.2.1")]
    BadIpv4,
    /// `192.0.2.1%eth0`, `fe80::1%`: a zone only an IPv6 address takes, and it is not empty.
    #[error("has a zone that is not usable: only an IPv6 address takes one, e.g. fe80::1%eth0")]
    BadZone,
    /// Anything else: spaces, slashes, stray colons, empty labels.
    #[error("is not a host name")]
    NotAHost,
}

/// Reads `text` (surrounding whitespace ignored) as getaddrinfo would: an
/// IPv6 address (in brackets or not, with a `%zone` or not), an IPv4 address
/// in any form inet_aton takes (`192.0.2.1`, `127.1`, `10.1.2`, `0x7f.1`,
/// and, as there, `010` is octal), else a name.
pub fn parse(text: &str) -> Result<Host, HostError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(HostError::NotAHost);
    }
    if let Some((user, host)) = text.rsplit_once('@') {
        return Err(HostError::WithUser {
            user: user.to_string(),
            host: host.to_string(),
        });
    }
    if let Some(inner) = text.strip_prefix('[') {
        let (inner, after) = inner.split_once(']').ok_or(HostError::NotAHost)?;
        let address = literal(inner)?.ok_or(HostError::NotAHost)?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok(address),
            Some(port) if is_digits(port) => Err(HostError::WithPort {
                host: inner.to_string(),
                port: port.to_string(),
            }),
            _ => Err(HostError::NotAHost),
        };
    }
    if let Some(address) = literal(text)? {
        return Ok(address);
    }
    if let Some((host, port)) = text.split_once(':') {
        // One colon and a number after it: an address or a name, and a port.
        return match (parse(host), is_digits(port)) {
            (Ok(_), true) => Err(HostError::WithPort {
                host: host.to_string(),
                port: port.to_string(),
            }),
            _ => Err(HostError::NotAHost),
        };
    }
    if is_digits(text) {
        return Err(HostError::BareNumber);
    }
    if text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(HostError::BadIpv4);
    }
    if is_name(text) {
        Ok(Host::Name(text.to_string()))
    } else {
        Err(HostError::NotAHost)
    }
}

/// `text` as an address, if it is written as one: IPv6 with an optional
/// zone, or an IPv4 form of inet_aton (a bare decimal number is left to the
/// caller). `Ok(None)`: not an address, maybe a name.
fn literal(text: &str) -> Result<Option<Host>, HostError> {
    if let Some((address, zone)) = text.split_once('%') {
        return match address.parse::<Ipv6Addr>() {
            Ok(ip)
                if !zone.is_empty()
                    && zone.chars().all(|c| !c.is_whitespace() && !c.is_control()) =>
            {
                Ok(Some(Host::Address {
                    ip: IpAddr::V6(ip),
                    zone: Some(zone.to_string()),
                }))
            }
            Ok(_) => Err(HostError::BadZone),
            Err(_) if inet_aton(address).is_some() => Err(HostError::BadZone),
            Err(_) => Err(HostError::NotAHost),
        };
    }
    if let Ok(ip) = text.parse::<Ipv6Addr>() {
        return Ok(Some(Host::Address {
            ip: IpAddr::V6(ip),
            zone: None,
        }));
    }
    // A single decimal number is a typo for a port far more often than an
    // address (the caller says so); a single hex part (`0x7f000001`) is not.
    Ok(inet_aton(text)
        .filter(|_| text.contains('.') || !is_digits(text))
        .map(|ip| Host::Address {
            ip: IpAddr::V4(ip),
            zone: None,
        }))
}

/// glibc's `inet_aton` without trailing text (what getaddrinfo uses): one to
/// four parts, each decimal, octal (a leading 0) or hex (0x); the last part
/// fills the bytes the others left.
pub fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = text.split('.').map(number).collect::<Option<_>>()?;
    let (last, init) = parts.split_last()?;
    if init.len() > 3 || init.iter().any(|&part| part > 255) {
        return None;
    }
    let room = 32 - 8 * init.len() as u32;
    if *last >> room != 0 {
        return None;
    }
    let high = init
        .iter()
        .enumerate()
        .fold(0u64, |value, (i, &part)| value | part << (24 - 8 * i));
    Some(Ipv4Addr::from((high | last) as u32))
}

/// One part of an inet_aton address; `None` if empty, malformed or past 32 bits.
fn number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|&n| n <= u64::from(u32::MAX))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Letters (any script: the resolver takes internationalized names), digits,
/// `-` and `_`, in dot-separated labels that do not start with `-`; one
/// trailing dot (a rooted name) is fine.
fn is_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

impl fmt::Display for Host {
    /// The address or name as the resolver and the sockets see it (`127.1`
    /// shows as 127.0.0.1); reports keep the word as written instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Address { ip, zone: None } => write!(f, "{ip}"),
            Host::Address {
                ip,
                zone: Some(zone),
            } => write!(f, "{ip}%{zone}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> String {
        match parse(text) {
            Ok(host @ Host::Address { .. }) => host.to_string(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn ipv4_is_read_in_every_form_getaddrinfo_takes() {
        assert_eq!(address("192.0.2.1"), "192.0.2.1");
        assert_eq!(address("127.1"), "127.0.0.1");
        assert_eq!(address("10.1.2"), "10.1.0.2");
        assert_eq!(address("0x7f.1"), "127.0.0.1");
        assert_eq!(address("10.65535"), "10.0.255.255");
        // As in glibc: a leading zero is octal, so ssh connects to 8.0.0.1.
        assert_eq!(address("010.0.0.1"), "8.0.0.1");
        assert_eq!(address(" 192.0.2.1 "), "192.0.2.1");
        for bad in [
            "256.1.1.1",
            "1.2.3.4.5",
            "1.2.3.",
            "10.16777216",
            "09.1.1.1",
            "1..2",
        ] {
            assert_eq!(parse(bad), Err(HostError::BadIpv4), "{bad}");
        }
    }

    #[test]
    fn ipv6_is_read_with_or_without_brackets_and_with_a_zone() {
        assert_eq!(address("2001:db8::1"), "2001:db8::1");
        assert_eq!(address("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(address("::1"), "::1");
        assert_eq!(address("[192.0.2.1]"), "192.0.2.1");
        assert_eq!(
            parse("fe80::1%eth0"),
            Ok(Host::Address {
                ip: "fe80::1".parse().unwrap(),
                zone: Some("eth0".into())
            })
        );
        assert_eq!(address("[fe80::1%2]"), "fe80::1%2");
        for bad in ["fe80::1%", "192.0.2.1%eth0", "127.1%lo", "fe80::1%a b"] {
            assert_eq!(parse(bad), Err(HostError::BadZone), "{bad}");
        }
    }

    #[test]
    fn names_are_names_and_near_misses_say_what_they_are() {
        for name in [
            "gw.example.net",
            "gw",
            "gw.example.net.",
            "1e100.net",
            "under_score",
            "bücher.de",
        ] {
            assert_eq!(parse(name), Ok(Host::Name(name.into())), "{name}");
        }
        let with_port = |host: &str, port: &str| HostError::WithPort {
            host: host.into(),
            port: port.into(),
        };
        assert_eq!(parse("gw:22"), Err(with_port("gw", "22")));
        assert_eq!(parse("192.0.2.1:22"), Err(with_port("192.0.2.1", "22")));
        assert_eq!(
            parse("[2001:db8::1]:22"),
            Err(with_port("2001:db8::1", "22"))
        );
        assert_eq!(
            parse("root@gw"),
            Err(HostError::WithUser {
                user: "root".into(),
                host: "gw".into()
            })
        );
        assert_eq!(parse("8000"), Err(HostError::BareNumber));
        for bad in [
            "", " ", "a b", "gw:ssh", "a:b:c", "ssh://gw", "-", ".", "a..b", "[::1", "[gw]",
            "[::1]x",
        ] {
            assert_eq!(parse(bad), Err(HostError::NotAHost), "{bad:?}");
        }
    }

    #[test]
    fn inet_aton_agrees_with_std_on_dotted_quads() {
        for text in ["0.0.0.0", "255.255.255.255", "192.0.2.77", "10.0.0.1"] {
            assert_eq!(inet_aton(text), text.parse().ok(), "{text}");
        }
        assert_eq!(inet_aton("2130706433"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(inet_aton("4294967296"), None);
        assert_eq!(inet_aton("0x"), None);
    }
}
