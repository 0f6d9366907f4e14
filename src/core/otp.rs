//! Pure: time-based knock sequences from a shared secret, as specified in
//! docs/otp-sequences.md (the test vectors there are checked below). No I/O
//! and no clock: the time step is an argument.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::core::knock::{Knock, Proto};

/// What a door's rolling sequences look like; client and server must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpSpec {
    /// Knocks per sequence.
    pub length: usize,
    /// The ports knocks are drawn from, inclusive.
    pub low: u16,
    pub high: u16,
    /// Ports never used (the protected port, other doors' ports, ...).
    pub avoid: Vec<u16>,
    /// Protocols knocks may use, in this order; one or both.
    pub protos: Vec<Proto>,
    /// Length of a time step in seconds (default 30, as RFC 6238).
    pub step: u64,
}

/// The domain separation label: part of every HMAC input.
const LABEL: &[u8] = b"knockr-otp-v1";

impl OtpSpec {
    /// Why this spec cannot give sequences, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.low == 0 || self.low > self.high {
            return Err(format!(
                "port range {}-{} is empty: expected 1 <= low <= high <= 65535",
                self.low, self.high
            ));
        }
        // Counted from the avoided ports, not by walking the range: the server
        // checks on every derivation, and a range can hold 65535 ports.
        let mut avoided: Vec<u16> = self
            .avoid
            .iter()
            .copied()
            .filter(|p| (self.low..=self.high).contains(p))
            .collect();
        avoided.sort_unstable();
        avoided.dedup();
        let usable = usize::from(self.high - self.low) + 1 - avoided.len();
        if self.length == 0 || self.length > 32 || self.length > usable {
            return Err(format!(
                "a sequence of {} distinct ports cannot be drawn from {usable} usable ports: expected 1..=32 and no more than the range holds",
                self.length
            ));
        }
        if self.protos.is_empty() {
            return Err("no protocol allowed: expected tcp, udp or both".into());
        }
        if self.step == 0 {
            return Err("a time step of 0 seconds: expected at least 1".into());
        }
        Ok(())
    }

    /// The time step of a Unix time in seconds.
    pub fn step_of(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.step
    }

    /// The sequence of `door` for time step `step`. Panics if `check` fails.
    pub fn sequence(&self, secret: &[u8], door: &str, step: u64) -> Vec<Knock> {
        self.check().expect("a checked OtpSpec");
        let size = u64::from(self.high - self.low) + 1;
        let choices = size * self.protos.len() as u64;
        // Values at or above `limit` are skipped, so every choice is equally likely.
        let limit = (1u64 << 32) / choices * choices;
        // Sorted once, searched per draw: a long list is looked up in log time.
        let mut avoid = self.avoid.clone();
        avoid.sort_unstable();
        let mut knocks: Vec<Knock> = Vec::with_capacity(self.length);
        let mut block = 0u32;
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
                if avoid.binary_search(&port).is_ok() || knocks.iter().any(|k| k.port == port) {
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

/// A fresh random 160-bit secret (the RFC 4226 recommendation), in base32 and hex.
pub fn new_secret() -> Result<(String, String), String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|err| format!("the system's random source failed: {err}"))?;
    Ok((
        data_encoding::BASE32_NOPAD.encode(&bytes),
        format!("hex:{}", data_encoding::HEXLOWER.encode(&bytes)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OtpSpec {
        OtpSpec {
            length: 4,
            low: 10000,
            high: 60000,
            avoid: vec![22],
            protos: vec![Proto::Tcp, Proto::Udp],
            step: 30,
        }
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
            let spec = OtpSpec {
                length: length.parse().unwrap(),
                low: low.parse().unwrap(),
                high: high.parse().unwrap(),
                avoid: vec![],
                protos: protos
                    .split(',')
                    .map(|p| match p {
                        "tcp" => Proto::Tcp,
                        "udp" => Proto::Udp,
                        other => panic!("protocol {other:?} in the vectors"),
                    })
                    .collect(),
                step: 30,
            };
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
        let spec = OtpSpec {
            length: 8,
            low: 20,
            high: 30,
            avoid: vec![22, 25],
            protos: vec![Proto::Udp],
            step: 30,
        };
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
    /// port but one avoided (a 382 KB profiles file), `check` and `sequence`
    /// compared each port against the whole list, 12 s under the fuzzer.
    /// Duplicates and ports outside the range must not count as usable ones.
    #[test]
    fn regression_a_long_avoid_list_took_quadratic_time() {
        // Only the multiples of 1024 are usable: 63 of them.
        let usable = |p: &u16| p.is_multiple_of(1024);
        let mut spec = OtpSpec {
            length: 4,
            low: 1,
            high: 65535,
            avoid: (1..=65535).filter(|p| !usable(p)).collect(),
            protos: vec![Proto::Udp],
            step: 30,
        };
        spec.avoid.extend([7, 7, 7]);
        assert_eq!(spec.check(), Ok(()));
        let knocks = spec.sequence(b"0123456789abcdef", "door", 1);
        assert_eq!(knocks.len(), 4);
        for (i, knock) in knocks.iter().enumerate() {
            assert!(usable(&knock.port), "{knock}");
            assert!(knocks[..i].iter().all(|k| k.port != knock.port));
        }
        spec.length = 33;
        assert!(spec.check().unwrap_err().contains("from 63 usable ports"));
        spec.low = 60000;
        spec.length = 6;
        assert!(spec.check().unwrap_err().contains("from 5 usable ports"));
    }

    #[test]
    fn impossible_specs_are_refused() {
        let mut s = spec();
        s.low = 100;
        s.high = 102;
        assert!(
            s.check()
                .unwrap_err()
                .contains("cannot be drawn from 3 usable ports")
        );
        s = spec();
        (s.low, s.high, s.avoid) = (100, 104, vec![101, 101, 99, 104, 200]);
        assert!(
            s.check()
                .unwrap_err()
                .contains("cannot be drawn from 3 usable ports"),
            "avoided ports count once, and only inside the range"
        );
        s.avoid.pop();
        s.avoid.push(102);
        assert!(s.check().unwrap_err().contains("from 2 usable ports"));
        s.length = 2;
        assert!(s.check().is_ok());
        s = spec();
        s.protos.clear();
        assert!(s.check().is_err());
        s = spec();
        s.step = 0;
        assert!(s.check().is_err());
    }

    #[test]
    fn secrets_read_as_base32_or_hex_and_short_ones_are_refused() {
        let (b32, hex) = new_secret().unwrap();
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
        assert_ne!(new_secret().unwrap(), new_secret().unwrap());
    }
}
