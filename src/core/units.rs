//! Durations and UDP payloads as users write them by hand, and the one rule
//! each format has for a bare number such as `5`:
//!
//! - the command line (`-d 200`, `--every`, `--timeout`): milliseconds, as
//!   `--help` says ([`Rule::CommandLine`], [`parse_duration`]);
//! - TOML files, the profiles file and knockd.toml alike, in every key:
//!   refused, a unit is required (`"250ms"`, `"2s"`, `"1h30m"`), because a
//!   knockd user means seconds where a client user means milliseconds
//!   ([`Rule::Toml`]);
//! - knockd.conf: whole seconds, as the C knockd reads them, and nothing
//!   else ([`Rule::KnockdConf`]).
//!
//! RouterOS's own duration syntax is the router's format, not the user's: it
//! lives in `routeros::timeout`. Pure parsing: no I/O, and no knowledge of
//! keys or files (the config names them in its messages).

use std::time::Duration;

use base64::Engine as _;

/// How one format reads a duration; see the module comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A bare number is milliseconds; anything else needs a unit.
    CommandLine,
    /// A bare number is refused; a unit is required.
    Toml,
    /// Only a whole number of seconds, without a unit.
    KnockdConf,
}

/// Why a text is not a duration under a [`Rule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// A number without a unit, where the rule wants one.
    NoUnit,
    /// Not a duration the rule reads.
    NotUnderstood,
}

/// Reads `text` (surrounding whitespace ignored) by `rule`.
pub fn parse(rule: Rule, text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match rule {
        Rule::KnockdConf if digits => text.parse().map(Duration::from_secs).ok(),
        Rule::KnockdConf => None,
        Rule::CommandLine if digits => text.parse().map(Duration::from_millis).ok(),
        Rule::Toml if is_number(text) => return Err(DurationError::NoUnit),
        Rule::CommandLine | Rule::Toml => with_unit(text),
    }
    .ok_or(DurationError::NotUnderstood)
}

/// `5`, `1.5`: what a user who forgot the unit writes.
fn is_number(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.parse::<f64>().is_ok()
}

/// `250ms`, `1.5s`, `2m`, `1h 30m`.
fn with_unit(text: &str) -> Option<Duration> {
    if let Some(secs) = text.strip_suffix('s').and_then(|n| n.parse::<f64>().ok())
        && text.contains('.')
    {
        // humantime has no fractions; "1.5s" is too natural to refuse.
        return Duration::try_from_secs_f64(secs).ok();
    }
    humantime::parse_duration(text).ok()
}

/// The command line's durations, for clap: `250ms`, `1.5s`, `2m`, `1h 30m`;
/// a bare number means milliseconds ([`Rule::CommandLine`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse(Rule::CommandLine, text).map_err(|_| {
        format!(
            "duration {text:?} is not understood: expected a number of milliseconds or a number \
             with a unit, e.g. 250ms, 2s, 1m"
        )
    })
}

/// Formats a duration the way users write it (`200ms`, `2s`, `1m 30s`): it
/// reads back the same under [`Rule::CommandLine`] and [`Rule::Toml`].
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// The default UDP knock payload: one zero byte, as the C `knock` client sends.
pub const DEFAULT_UDP_PAYLOAD: &[u8] = &[0];

/// Parses a UDP payload: `hex:00ff`, `base64:AP8=`, or any other text sent as
/// its UTF-8 bytes (`text:` forces text, for text that starts with `hex:`).
pub fn parse_payload(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("hex:") {
        decode_hex(hex).ok_or_else(|| {
            format!("udp_payload {text:?} is not valid hex: expected an even number of 0-9a-f digits after hex:")
        })
    } else if let Some(b64) = text.strip_prefix("base64:") {
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| {
            format!("udp_payload {text:?} is not valid base64: expected standard padded base64 after base64:")
        })
    } else if let Some(plain) = text.strip_prefix("text:") {
        Ok(plain.as_bytes().to_vec())
    } else {
        Ok(text.as_bytes().to_vec())
    }
    .and_then(|bytes| {
        // 65507 is the largest IPv4 UDP payload; more cannot be sent as one datagram.
        if bytes.len() > 65507 {
            Err(format!("udp_payload is {} bytes: expected at most 65507", bytes.len()))
        } else {
            Ok(bytes)
        }
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_command_line_bare_numbers_are_milliseconds() {
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn units_are_understood() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
    }

    #[test]
    fn nonsense_durations_name_the_value_and_the_accepted_forms() {
        let err = parse_duration("fast").unwrap_err();
        assert_eq!(
            err,
            "duration \"fast\" is not understood: expected a number of milliseconds or a number \
             with a unit, e.g. 250ms, 2s, 1m"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5ms").is_err());
        assert!(parse_duration("1.5x").is_err());
    }

    /// The same text under each format's rule: only the bare number differs.
    #[test]
    fn each_format_has_one_rule_for_a_bare_number() {
        use DurationError::{NoUnit, NotUnderstood};
        let ms = Duration::from_millis;
        let cases = [
            // text, command line, TOML, knockd.conf
            ("5", Ok(ms(5)), Err(NoUnit), Ok(ms(5000))),
            (" 30 ", Ok(ms(30)), Err(NoUnit), Ok(ms(30_000))),
            ("1.5", Err(NotUnderstood), Err(NoUnit), Err(NotUnderstood)),
            ("5s", Ok(ms(5000)), Ok(ms(5000)), Err(NotUnderstood)),
            ("250ms", Ok(ms(250)), Ok(ms(250)), Err(NotUnderstood)),
            (
                "1h30m",
                Ok(ms(5_400_000)),
                Ok(ms(5_400_000)),
                Err(NotUnderstood),
            ),
            ("1.5s", Ok(ms(1500)), Ok(ms(1500)), Err(NotUnderstood)),
            (
                "soon",
                Err(NotUnderstood),
                Err(NotUnderstood),
                Err(NotUnderstood),
            ),
            (
                "-5",
                Err(NotUnderstood),
                Err(NotUnderstood),
                Err(NotUnderstood),
            ),
            (
                "",
                Err(NotUnderstood),
                Err(NotUnderstood),
                Err(NotUnderstood),
            ),
        ];
        for (text, cli, toml, conf) in cases {
            assert_eq!(parse(Rule::CommandLine, text), cli, "command line {text:?}");
            assert_eq!(parse(Rule::Toml, text), toml, "TOML {text:?}");
            assert_eq!(parse(Rule::KnockdConf, text), conf, "knockd.conf {text:?}");
        }
    }

    #[test]
    fn durations_format_as_users_write_them_in_every_format_with_units() {
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
        for d in [0, 1, 200, 1500, 90_000, 5_400_000].map(Duration::from_millis) {
            let printed = format_duration(d);
            assert_eq!(parse(Rule::CommandLine, &printed), Ok(d), "{printed}");
            assert_eq!(parse(Rule::Toml, &printed), Ok(d), "{printed}");
        }
    }

    #[test]
    fn payload_forms() {
        assert_eq!(parse_payload("hex:00ff10"), Ok(vec![0, 0xff, 0x10]));
        assert_eq!(parse_payload("hex:00 FF"), Ok(vec![0, 0xff]));
        assert_eq!(parse_payload("base64:AP8Q"), Ok(vec![0, 0xff, 0x10]));
        assert_eq!(parse_payload("knock"), Ok(b"knock".to_vec()));
        assert_eq!(parse_payload("text:hex:ab"), Ok(b"hex:ab".to_vec()));
        assert_eq!(parse_payload(""), Ok(vec![]));
    }

    #[test]
    fn bad_payloads_are_refused() {
        assert!(
            parse_payload("hex:abc")
                .unwrap_err()
                .contains("not valid hex")
        );
        assert!(parse_payload("hex:zz").is_err());
        assert!(
            parse_payload("base64:***")
                .unwrap_err()
                .contains("not valid base64")
        );
        assert!(
            parse_payload(&"x".repeat(65508))
                .unwrap_err()
                .contains("at most 65507")
        );
    }
}
