//! Pure: time-based knock sequences from a shared secret, as specified in
//! docs/otp-sequences.md (the test vectors there are checked below). No I/O
//! and no clock: the time step is an argument.

use std::ops::RangeInclusive;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::core::knock::{Knock, Proto};

/// What a door's rolling sequences look like; client and server must agree.
/// Made only by [`OtpSpec::new`], so every spec can give sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpSpec {
    /// Knocks per sequence: 1..=32, and no more than the usable ports.
    length: usize,
    /// The ports knocks are drawn from, inclusive; 1 <= low <= high.
    low: u16,
    high: u16,
    /// Ports never used (the protected port, other doors' ports, ...),
    /// sorted without repeats, so a draw is checked in log time.
    avoid: Vec<u16>,
    /// Protocols knocks may use, in this order; one or both.
    protos: Vec<Proto>,
    /// Length of a time step in seconds; at least 1.
    step: u64,
}

/// Why an [`OtpSpec`] cannot give sequences.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("port range {low}-{high} is empty: expected 1 <= low <= high <= 65535")]
    EmptyRange { low: u16, high: u16 },
    #[error(
        "a sequence of {length} distinct ports cannot be drawn from {usable} usable ports: \
         expected 1..=32 and no more than the range holds"
    )]
    Length { length: usize, usable: usize },
    #[error("no protocol allowed: expected tcp, udp or both")]
    NoProtocol,
    #[error("a time step of 0 seconds: expected at least 1")]
    ZeroStep,
}

/// The domain separation label: part of every HMAC input.
const LABEL: &[u8] = b"knockr-otp-v1";

impl OtpSpec {
    /// A spec of sequences of `length` distinct ports from `ports` but not in
    /// `avoid`, on `protos`, changing every `step` seconds; or why there can
    /// be no such sequence.
    pub fn new(
        length: usize,
        ports: RangeInclusive<u16>,
        mut avoid: Vec<u16>,
        protos: Vec<Proto>,
        step: u64,
    ) -> Result<OtpSpec, OtpError> {
        let (low, high) = (*ports.start(), *ports.end());
        if low == 0 || low > high {
            return Err(OtpError::EmptyRange { low, high });
        }
        avoid.sort_unstable();
        avoid.dedup();
        // Counted from the avoided ports, not by walking the range: a range
        // can hold 65535 ports.
        let avoided = avoid.iter().filter(|p| ports.contains(p)).count();
        let usable = usize::from(high - low) + 1 - avoided;
        if length == 0 || length > 32 || length > usable {
            return Err(OtpError::Length { length, usable });
        }
        if protos.is_empty() {
            return Err(OtpError::NoProtocol);
        }
        if step == 0 {
            return Err(OtpError::ZeroStep);
        }
        Ok(OtpSpec {
            length,
            low,
            high,
            avoid,
            protos,
            step,
        })
    }

    /// Knocks per sequence.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The lowest port a knock is drawn from.
    pub fn low(&self) -> u16 {
        self.low
    }

    /// The highest port a knock is drawn from.
    pub fn high(&self) -> u16 {
        self.high
    }

    /// Ports never used, sorted, each once.
    pub fn avoid(&self) -> &[u16] {
        &self.avoid
    }

    /// Protocols knocks may use, in derivation order.
    pub fn protos(&self) -> &[Proto] {
        &self.protos
    }

    /// Length of a time step in seconds.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The time step of a Unix time in seconds.
    pub fn step_of(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.step
    }

    /// The sequence of `door` for time step `step`.
    pub fn sequence(&self, secret: &[u8], door: &str, step: u64) -> Vec<Knock> {
        let size = u64::from(self.high - self.low) + 1;
        let choices = size * self.protos.len() as u64;
        // Values at or above `limit` are skipped, so every choice is equally likely.
        let limit = (1u64 << 32) / choices * choices;
        let mut knocks: Vec<Knock> = Vec::with_capacity(self.length);
        let mut block = 0u32;
        // Ends: `new` made sure the range holds `length` ports not avoided.
        while knocks.len() < self.length {
            let digest = block_digest(secret, door, step, block);
            for chunk in digest.chunks_exact(4) {
                let value = u64::from(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
                if value >= limit {
                    continue;
                }
                let choice = value % choices;
                let port = self.low + (choice / self.protos.len() as u64) as u16;
                let proto = self.protos[(choice % self.protos.len() as u64) as usize];
                if self.avoid.binary_search(&port).is_ok() || knocks.iter().any(|k| k.port == port)
                {
                    continue;
                }
                knocks.push(Knock { port, proto });
                if knocks.len() == self.length {
                    break;
                }
            }
            block += 1;
        }
        knocks
    }
}

/// HMAC-SHA256(secret, "knockr-otp-v1" 0x00 door 0x00 step(u64 BE) block(u32 BE)).
fn block_digest(secret: &[u8], door: &str, step: u64, block: u32) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(LABEL);
    mac.update(&[0]);
    mac.update(door.as_bytes());
    mac.update(&[0]);
    mac.update(&step.to_be_bytes());
    mac.update(&block.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// A secret as written in a file or variable: base32 (RFC 4648, padding and
/// case optional, as authenticator apps show them) or `hex:...`.
pub fn parse_secret(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let bytes = if let Some(hex) = text.strip_prefix("hex:") {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| "the secret is not valid hex after hex:".to_string())?
    } else {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let cleaned = cleaned.trim_end_matches('=');
        data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| {
                "the secret is neither base32 nor hex:...: expected what `knockr secret new` prints"
                    .to_string()
            })?
    };
    if bytes.len() < 16 {
        return Err(format!(
            "the secret is {} bytes: expected at least 16 (128 bits)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A secret's two spellings, base32 (what authenticator-style tools take)
/// and `hex:`; both read back with [`parse_secret`] to the same bytes.
pub fn spell_secret(bytes: &[u8]) -> (String, String) {
    (
        data_encoding::BASE32_NOPAD.encode(bytes),
        format!("hex:{}", data_encoding::HEXLOWER.encode(bytes)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OtpSpec {
        OtpSpec::new(4, 10000..=60000, vec![22], vec![Proto::Tcp, Proto::Udp], 30).unwrap()
    }

    /// The vectors table of docs/otp-sequences.md: secret (ASCII), door, Unix time, spec, sequence.
    #[test]
    fn the_documented_test_vectors_hold() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/otp-sequences.md"
        ))
        .unwrap();
        let rows: Vec<Vec<String>> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| secret | door | time"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().trim_matches('`').to_string())
                    .collect()
            })
            .collect();
        assert!(rows.len() >= 5, "the document lists the vectors");
        for row in rows {
            let [secret, door, time, length, range, protos, expected] = &row[..] else {
                panic!("row {row:?}")
            };
            let (low, high) = range.split_once('-').unwrap();
            let protos = protos
                .split(',')
                .map(|p| match p {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    other => panic!("protocol {other:?} in the vectors"),
                })
                .collect();
            let ports = low.parse().unwrap()..=high.parse().unwrap();
            let spec = OtpSpec::new(length.parse().unwrap(), ports, vec![], protos, 30).unwrap();
            let step = spec.step_of(time.parse().unwrap());
            let got: Vec<String> = spec
                .sequence(secret.as_bytes(), door, step)
                .iter()
                .map(|k| k.to_string())
                .collect();
            assert_eq!(got.join(","), *expected, "vector {row:?}");
        }
    }

    #[test]
    fn sequences_are_distinct_in_range_and_avoid_ports() {
        let spec = OtpSpec::new(8, 20..=30, vec![25, 22], vec![Proto::Udp], 30).unwrap();
        for step in 0..200 {
            let seq = spec.sequence(b"0123456789abcdef", "d", step);
            assert_eq!(seq.len(), 8);
            let mut ports: Vec<u16> = seq.iter().map(|k| k.port).collect();
            assert!(
                ports
                    .iter()
                    .all(|p| (20..=30).contains(p) && *p != 22 && *p != 25)
            );
            assert!(seq.iter().all(|k| k.proto == Proto::Udp));
            ports.sort();
            ports.dedup();
            assert_eq!(ports.len(), 8, "distinct");
        }
    }

    #[test]
    fn doors_steps_and_secrets_all_change_the_sequence() {
        let s = spec();
        let base = s.sequence(b"0123456789abcdef", "ssh", 1000);
        assert_ne!(base, s.sequence(b"0123456789abcdef", "web", 1000));
        assert_ne!(base, s.sequence(b"0123456789abcdef", "ssh", 1001));
        assert_ne!(base, s.sequence(b"0123456789abcdeF", "ssh", 1000));
        assert_eq!(base, s.sequence(b"0123456789abcdef", "ssh", 1000));
        assert_eq!(s.step_of(30_029), 1000);
        assert_eq!(s.step_of(30_030), 1001);
    }

    /// Found by reading the code while fuzzing the profiles file: with every
    /// port but one avoided (a 382 KB profiles file), checking the spec and
    /// deriving compared each port against the whole list, 12 s under the
    /// fuzzer. Duplicates and ports outside the range must not count as
    /// usable ones.
    #[test]
    fn regression_a_long_avoid_list_took_quadratic_time() {
        // Only the multiples of 1024 are usable: 63 of them.
        let usable = |p: &u16| p.is_multiple_of(1024);
        let mut avoid: Vec<u16> = (1..=65535).filter(|p| !usable(p)).collect();
        avoid.extend([7, 7, 7]);
        let spec = |length, ports| OtpSpec::new(length, ports, avoid.clone(), vec![Proto::Udp], 30);
        let knocks = spec(4, 1..=65535)
            .unwrap()
            .sequence(b"0123456789abcdef", "door", 1);
        assert_eq!(knocks.len(), 4);
        for (i, knock) in knocks.iter().enumerate() {
            assert!(usable(&knock.port), "{knock}");
            assert!(knocks[..i].iter().all(|k| k.port != knock.port));
        }
        let too_long = OtpError::Length {
            length: 33,
            usable: 63,
        };
        assert_eq!(spec(33, 1..=65535), Err(too_long));
        let too_few = OtpError::Length {
            length: 6,
            usable: 5,
        };
        assert_eq!(spec(6, 60000..=65535), Err(too_few));
    }

    #[test]
    fn impossible_specs_are_refused() {
        let both = || vec![Proto::Tcp, Proto::Udp];
        let usable = |length, ports, avoid| match OtpSpec::new(length, ports, avoid, both(), 30) {
            Err(OtpError::Length { usable, .. }) => Some(usable),
            Err(other) => panic!("{other}"),
            Ok(_) => None,
        };
        assert_eq!(usable(4, 100..=102, vec![22]), Some(3));
        assert_eq!(
            usable(4, 100..=104, vec![101, 101, 99, 104, 200]),
            Some(3),
            "avoided ports count once, and only inside the range"
        );
        assert_eq!(usable(4, 100..=104, vec![101, 99, 104, 102]), Some(2));
        assert_eq!(usable(2, 100..=104, vec![101, 99, 104, 102]), None);
        assert_eq!(usable(0, 100..=104, vec![]), Some(5));
        let error = |ports, protos, step| OtpSpec::new(1, ports, vec![], protos, step).unwrap_err();
        assert_eq!(error(1..=1, vec![], 30), OtpError::NoProtocol);
        assert_eq!(error(1..=1, both(), 0), OtpError::ZeroStep);
        assert_eq!(
            error(0..=10, both(), 30),
            OtpError::EmptyRange { low: 0, high: 10 }
        );
        assert_eq!(
            error(RangeInclusive::new(9, 8), both(), 30).to_string(),
            "port range 9-8 is empty: expected 1 <= low <= high <= 65535"
        );
    }

    #[test]
    fn the_avoided_ports_read_back_sorted_and_once() {
        let spec = OtpSpec::new(2, 1..=10, vec![9, 3, 9, 70], vec![Proto::Tcp], 1).unwrap();
        assert_eq!(spec.avoid(), [3, 9, 70]);
        assert_eq!(
            (spec.low(), spec.high(), spec.length(), spec.step()),
            (1, 10, 2, 1)
        );
    }

    #[test]
    fn secrets_read_as_base32_or_hex_and_short_ones_are_refused() {
        let (b32, hex) = spell_secret(b"12345678901234567890");
        assert_eq!(parse_secret(&b32).unwrap(), parse_secret(&hex).unwrap());
        assert_eq!(parse_secret(&b32.to_lowercase()).unwrap().len(), 20);
        assert_eq!(
            parse_secret("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert!(
            parse_secret("hex:00ff")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(parse_secret("not base32!").is_err());
    }
}
