//! Knock specs: `7000`, `8000:udp`, `56:icmp`, `7000,8000:udp,9000` — the one
//! syntax shared by the command line, the profiles file and the knock server.
//!
//! An ICMP knock is an echo request told apart by its payload size (what
//! `ping -s 56` sends for `56:icmp`): routers can match the packet size, and
//! echo requests pass firewalls that drop everything else.
//!
//! Pure parsing only; nothing here touches the network.

use std::fmt;
use std::str::FromStr;

/// The transport a knock is sent with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// A TCP SYN (a connection attempt).
    #[default]
    Tcp,
    /// One UDP datagram.
    Udp,
    /// One ICMP (ICMPv6 for IPv6 targets) echo request; only written as
    /// `SIZE:icmp`, never a default for bare ports nor a time-based protocol.
    #[serde(skip_deserializing)]
    Icmp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocols a packet capture can match a knock by: a TCP segment or a
/// UDP datagram to a port. The knock server's packets and doors use it, so
/// an ICMP knock (which has no port) cannot reach its matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl From<Transport> for Proto {
    fn from(transport: Transport) -> Proto {
        match transport {
            Transport::Tcp => Proto::Tcp,
            Transport::Udp => Proto::Udp,
        }
    }
}

impl Knock {
    /// How a capture would see this knock; `None` for an ICMP knock.
    pub fn transport(self) -> Option<Transport> {
        match self.proto {
            Proto::Tcp => Some(Transport::Tcp),
            Proto::Udp => Some(Transport::Udp),
            Proto::Icmp => None,
        }
    }
}

/// Which address family of a host to knock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Either: the first address the machine can route to (the client), or
    /// both families (router rules).
    #[default]
    Any,
    Ipv4,
    Ipv6,
}

/// How a TCP knock is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One SYN; the socket is abandoned before the kernel would retransmit it.
    #[default]
    Syn,
    /// A full connect (the kernel may retransmit), for networks whose proxies
    /// swallow bare SYNs.
    Connect,
}

/// One knock: a packet to `port` over `proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Knock {
    /// The destination port; for [`Proto::Icmp`] the echo payload size in
    /// bytes (ICMP has no ports, and the size is what tells knocks apart).
    pub port: u16,
    pub proto: Proto,
}

/// The largest ICMP knock payload: the echo request must fit one packet
/// whose size RouterOS can match (`packet-size` is at most 65535) with the
/// IPv6 header's 48 bytes on top, so one limit holds for both families.
pub const MAX_ICMP_PAYLOAD: u16 = 65535 - 48;

impl fmt::Display for Knock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.port, self.proto)
    }
}

/// Why a knock spec was refused; the message names the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "empty knock spec: expected PORT[:tcp|udp] or SIZE:icmp, e.g. 7000, 8000:udp or 56:icmp"
    )]
    Empty,
    #[error("port {0:?} is not a number: expected PORT[:tcp|udp] with PORT in 1..=65535")]
    NotANumber(String),
    #[error("port {0} is out of range: expected 1..=65535")]
    OutOfRange(String),
    #[error("protocol {0:?} is not known: expected tcp, udp or icmp")]
    UnknownProto(String),
    #[error(
        "ICMP payload size {0:?} is not usable: expected SIZE:icmp with SIZE in 0..=65487 bytes (56 is what ping sends)"
    )]
    BadPayloadSize(String),
}

/// Parses one `PORT[:PROTO]`; `default` is used when no protocol is given.
/// The protocol is case-insensitive, as in the C knockd 0.8 (`knockd -D` shows `:UDP` as udp).
pub fn parse_knock(spec: &str, default: Proto) -> Result<Knock, SpecError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(SpecError::Empty);
    }
    let (port, proto) = match spec.split_once(':') {
        Some((port, proto)) => (port.trim(), parse_proto(proto.trim())?),
        None => (spec, default),
    };
    let port = match proto {
        Proto::Icmp => parse_payload_size(port)?,
        Proto::Tcp | Proto::Udp => parse_port(port)?,
    };
    Ok(Knock { port, proto })
}

/// An ICMP echo payload size in 0..=[`MAX_ICMP_PAYLOAD`] from text.
fn parse_payload_size(text: &str) -> Result<u16, SpecError> {
    match text.parse::<u16>() {
        Ok(size) if size <= MAX_ICMP_PAYLOAD && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(size)
        }
        _ => Err(SpecError::BadPayloadSize(text.to_string())),
    }
}

/// Parses a comma-separated list, `7000,8000:udp,9000`. Empty items are errors.
pub fn parse_list(spec: &str, default: Proto) -> Result<Vec<Knock>, SpecError> {
    spec.split(',')
        .map(|item| parse_knock(item, default))
        .collect()
}

/// A port in 1..=65535 from text.
pub fn parse_port(text: &str) -> Result<u16, SpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpecError::NotANumber(text.to_string()));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(SpecError::OutOfRange(text.to_string())),
    }
}

fn parse_proto(text: &str) -> Result<Proto, SpecError> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "icmp" => Ok(Proto::Icmp),
        _ => Err(SpecError::UnknownProto(text.to_string())),
    }
}

/// In config files: `"8000:udp"`, `"7000"` or a bare number (tcp). A visitor
/// rather than a buffered value, so toml points an error at the entry itself.
impl<'de> serde::Deserialize<'de> for Knock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Knock;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a knock such as \"7000\" or \"8000:udp\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Knock, E> {
                parse_knock(v, Proto::Tcp).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Knock, E> {
                self.visit_str(&v.to_string())
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl FromStr for Knock {
    type Err = SpecError;

    /// Parses with tcp as the default protocol, as knockd does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_knock(s, Proto::Tcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(port: u16, proto: Proto) -> Knock {
        Knock { port, proto }
    }

    #[test]
    fn port_alone_takes_the_default_protocol() {
        assert_eq!(parse_knock("7000", Proto::Tcp), Ok(k(7000, Proto::Tcp)));
        assert_eq!(parse_knock("7000", Proto::Udp), Ok(k(7000, Proto::Udp)));
    }

    #[test]
    fn protocol_is_case_insensitive_unlike_c_knockd() {
        assert_eq!(parse_knock("8000:UDP", Proto::Tcp), Ok(k(8000, Proto::Udp)));
        assert_eq!(
            parse_knock(" 8000 : Tcp ", Proto::Udp),
            Ok(k(8000, Proto::Tcp))
        );
    }

    #[test]
    fn lists_keep_order_and_mix_protocols() {
        assert_eq!(
            parse_list("7000,8000:udp,9000", Proto::Tcp),
            Ok(vec![
                k(7000, Proto::Tcp),
                k(8000, Proto::Udp),
                k(9000, Proto::Tcp)
            ])
        );
    }

    #[test]
    fn bounds_are_1_to_65535() {
        assert_eq!(parse_knock("1", Proto::Tcp), Ok(k(1, Proto::Tcp)));
        assert_eq!(parse_knock("65535", Proto::Tcp), Ok(k(65535, Proto::Tcp)));
        assert_eq!(
            parse_knock("0", Proto::Tcp),
            Err(SpecError::OutOfRange("0".into()))
        );
        assert_eq!(
            parse_knock("65536", Proto::Tcp),
            Err(SpecError::OutOfRange("65536".into()))
        );
        assert_eq!(
            parse_knock("99999999999999999999", Proto::Tcp),
            Err(SpecError::OutOfRange("99999999999999999999".into()))
        );
    }

    #[test]
    fn malformed_specs_say_what_is_accepted() {
        assert_eq!(parse_knock("", Proto::Tcp), Err(SpecError::Empty));
        assert_eq!(parse_list("7000,,9000", Proto::Tcp), Err(SpecError::Empty));
        assert_eq!(
            parse_knock("-1", Proto::Tcp),
            Err(SpecError::NotANumber("-1".into()))
        );
        assert_eq!(
            parse_knock("+80", Proto::Tcp),
            Err(SpecError::NotANumber("+80".into()))
        );
        assert_eq!(
            parse_knock("ssh", Proto::Tcp),
            Err(SpecError::NotANumber("ssh".into()))
        );
        assert_eq!(
            parse_knock("80:sctp", Proto::Tcp),
            Err(SpecError::UnknownProto("sctp".into()))
        );
        assert_eq!(
            parse_knock("80:udp", Proto::Tcp).map(|k| k.to_string()),
            Ok("80:udp".to_string())
        );
        assert_eq!(
            SpecError::UnknownProto("sctp".into()).to_string(),
            "protocol \"sctp\" is not known: expected tcp, udp or icmp"
        );
    }

    #[test]
    fn icmp_knocks_are_echo_payload_sizes_from_0_to_65487() {
        assert_eq!(parse_knock("56:icmp", Proto::Tcp), Ok(k(56, Proto::Icmp)));
        assert_eq!(parse_knock("0:ICMP", Proto::Udp), Ok(k(0, Proto::Icmp)));
        assert_eq!(
            parse_knock("65487:icmp", Proto::Tcp),
            Ok(k(MAX_ICMP_PAYLOAD, Proto::Icmp))
        );
        assert_eq!(
            parse_list("7000,56:icmp,9000:udp", Proto::Tcp).map(|l| l
                .iter()
                .map(Knock::to_string)
                .collect::<Vec<_>>()
                .join(",")),
            Ok("7000:tcp,56:icmp,9000:udp".to_string())
        );
        for bad in ["65488", "-1", "", "ping", "+5"] {
            assert_eq!(
                parse_knock(&format!("{bad}:icmp"), Proto::Tcp),
                Err(SpecError::BadPayloadSize(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            SpecError::BadPayloadSize("70000".into()).to_string(),
            "ICMP payload size \"70000\" is not usable: expected SIZE:icmp with SIZE in 0..=65487 bytes (56 is what ping sends)"
        );
    }
}
