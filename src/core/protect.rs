//! Pure: what a generated firewall ruleset shares whatever it is written for
//! (RouterOS scripts, nftables rulesets): the ports it opens to a knocker
//! (`--protect`) and the sequences a port scan completes too easily.

use super::knock::{Knock, Proto, Transport};

/// A `--protect` value that is not a port or range over TCP or UDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--protect {0:?} is not usable: expected PORT[-PORT][:tcp|udp] with ports in 1..=65535, e.g. 22, 51820:udp or 60000-60010"
)]
pub struct BadProtect(pub String);

/// Ports opened to a knocker: one port or a range, over TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protected {
    low: u16,
    high: u16,
    transport: Transport,
}

impl Protected {
    /// `low..=high` over `transport`; ports are 1..=65535 and `low <= high`.
    pub fn new(low: u16, high: u16, transport: Transport) -> Option<Protected> {
        (low >= 1 && low <= high).then_some(Protected {
            low,
            high,
            transport,
        })
    }

    /// The transport the ports are opened over.
    pub fn transport(self) -> Transport {
        self.transport
    }

    /// As RouterOS's `dst-port` and nftables's `dport` write it: `22` or `60000-60010`.
    pub fn ports(self) -> String {
        if self.low == self.high {
            self.low.to_string()
        } else {
            format!("{}-{}", self.low, self.high)
        }
    }
}

/// `22`, `51820:udp`, `60000-60010` or `60000-60010:tcp` (TCP unless told).
pub fn parse_protect(text: &str) -> Result<Protected, BadProtect> {
    let bad = || BadProtect(text.to_string());
    let (ports, transport) = match text.trim().split_once(':') {
        None => (text.trim(), Transport::Tcp),
        Some((ports, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" => (ports, Transport::Tcp),
            "udp" => (ports, Transport::Udp),
            _ => return Err(bad()),
        },
    };
    let port = |p: &str| super::knock::parse_port(p).map_err(|_| bad());
    let (low, high) = match ports.split_once('-') {
        Some((low, high)) => (port(low)?, port(high)?),
        None => (port(ports)?, port(ports)?),
    };
    Protected::new(low, high, transport).ok_or_else(bad)
}

/// Why a sequence is easy for a port scan to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Any scan that reaches the one port completes it.
    OneKnock,
    /// Knocks of one protocol on ports in one direction: a sequential scan
    /// (`nmap -r`, or its reverse) sends them in order.
    Monotone { proto: Proto, ascending: bool },
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weakness::OneKnock => {
                f.write_str("a single knock is completed by any port scan that reaches it")
            }
            Weakness::Monotone { proto, ascending } => write!(
                f,
                "knocks on {} {proto} ports, so a sequential port scan can open it; mix the order",
                if *ascending {
                    "ascending"
                } else {
                    "descending"
                }
            ),
        }
    }
}

/// The way a scan completes `sequence` easily, if there is one.
pub fn weakness(sequence: &[Knock]) -> Option<Weakness> {
    let [first, rest @ ..] = sequence else {
        return None;
    };
    if rest.is_empty() {
        return Some(Weakness::OneKnock);
    }
    if rest.iter().any(|k| k.proto != first.proto) {
        return None;
    }
    let ports: Vec<u16> = sequence.iter().map(|k| k.port).collect();
    let ascending = ports.is_sorted_by(|a, b| a < b);
    (ascending || ports.is_sorted_by(|a, b| a > b)).then_some(Weakness::Monotone {
        proto: first.proto,
        ascending,
    })
}
