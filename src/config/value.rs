//! The values both TOML files (the profiles file and knockd.toml) share, read
//! the same way wherever they appear: durations, ports, port ranges and UDP
//! payloads. Ports, ranges and payloads are checked as they are read, so toml
//! attaches the position of a bad one to its error; a duration is kept as
//! written until its key reads it, so the message can name the key.
//!
//! TOML only: knockd.conf's values are the C knockd's, read by server.rs.

use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::{Spanned, Value};

use crate::core::knock;
use crate::core::units::{self, DurationError, Rule};

/// A duration as written, read by [`DurationKey::read`].
#[derive(Debug, Clone)]
pub(crate) struct DurationValue(Value);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(DurationValue)
    }
}

/// A key of a TOML file that takes a duration, and the durations it takes.
/// A flag that sets the same thing (`-d` sets `delay`) reads its value with
/// the same key ([`DurationKey::read_flag`]), so both take the same range and
/// say so in the same words; a flag of its own (`--every`) has a key too.
pub(crate) struct DurationKey {
    /// The key as written in the file (the flag, for a flag of its own).
    pub name: &'static str,
    /// The durations the key takes.
    pub range: RangeInclusive<Duration>,
    /// Whether only whole seconds are taken.
    pub whole_seconds: bool,
    /// What the key takes, for the message about a duration it does not.
    pub expected: &'static str,
}

impl DurationKey {
    /// A key that takes any duration (the server's timeouts; the client's
    /// keys all have bounds).
    #[cfg(any(feature = "server", test))]
    pub(crate) const fn any(name: &'static str) -> DurationKey {
        DurationKey {
            name,
            range: Duration::ZERO..=Duration::MAX,
            whole_seconds: false,
            expected: "",
        }
    }

    /// The duration `value` holds by the TOML files' rule ([`Rule::Toml`]: a
    /// unit is required), if the key takes it; else one sentence naming the
    /// key, the value as written and what to write, with the value's span.
    pub(crate) fn read(
        &self,
        value: &Spanned<DurationValue>,
    ) -> Result<Duration, (Range<usize>, String)> {
        let (key, written) = (self.name, &value.get_ref().0);
        let text = match written {
            Value::String(text) => text.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Float(n) => n.to_string(),
            _ => String::new(),
        };
        let message = match units::parse(Rule::Toml, &text) {
            Ok(duration) if self.takes(duration) => return Ok(duration),
            Ok(_) => format!(
                "{key} = {written} is not usable: expected {}",
                self.expected
            ),
            Err(DurationError::NoUnit) => {
                let number = text.trim();
                let fix = match number.contains('.') {
                    true => format!("\"{number}s\""),
                    false => format!("\"{number}s\" or \"{number}ms\""),
                };
                format!("{key} = {written}: a duration needs a unit in this file: write {fix}")
            }
            Err(DurationError::NotUnderstood) => format!(
                "{key} = {written} is not a duration: expected a number with a unit, \
                 e.g. \"250ms\", \"2s\", \"1m\" or \"1h30m\""
            ),
        };
        Err((value.span(), message))
    }

    /// The duration a flag's `text` holds by the command line's rule (a bare
    /// number is milliseconds, [`units::parse_duration`]), if the key takes
    /// it; else the sentence clap shows after "invalid value 'TEXT' for
    /// '--FLAG'", in the words of the file's message.
    pub(crate) fn read_flag(&self, text: &str) -> Result<Duration, String> {
        let duration = units::parse_duration(text)?;
        if self.takes(duration) {
            Ok(duration)
        } else {
            Err(format!(
                "{} is not usable: expected {}",
                text.trim(),
                self.expected
            ))
        }
    }

    fn takes(&self, duration: Duration) -> bool {
        self.range.contains(&duration) && !(self.whole_seconds && duration.subsec_nanos() != 0)
    }
}

/// A TCP port in 1..=65535, as a number or a string.
pub(crate) struct PortValue(pub u16);

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TCP port number in 1..=65535")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortValue, E> {
                knock::parse_port(&v.to_string())
                    .map(PortValue)
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortValue, E> {
                knock::parse_port(v.trim())
                    .map(PortValue)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `"10000-60000"`: an inclusive port range, low <= high.
pub(crate) struct PortRange(pub u16, pub u16);

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || {
            de::Error::custom(format!(
                "port range {text:?} is not understood: expected LOW-HIGH, e.g. \"10000-60000\""
            ))
        };
        let (low, high) = text.split_once('-').ok_or_else(bad)?;
        let low = knock::parse_port(low.trim()).map_err(de::Error::custom)?;
        let high = knock::parse_port(high.trim()).map_err(de::Error::custom)?;
        if low > high {
            return Err(bad());
        }
        Ok(PortRange(low, high))
    }
}

/// A UDP payload: `"hex:.."`, `"base64:.."` or text.
pub(crate) struct PayloadValue(pub Vec<u8>);

impl<'de> Deserialize<'de> for PayloadValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        units::parse_payload(&text)
            .map(PayloadValue)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(key: &DurationKey, toml_value: &str) -> Result<Duration, String> {
        #[derive(Deserialize)]
        struct File {
            value: Spanned<DurationValue>,
        }
        let file: File = toml::from_str(&format!("value = {toml_value}")).unwrap();
        key.read(&file.value).map_err(|(span, message)| {
            assert_eq!(span, 8..8 + toml_value.len(), "the span is the value's");
            message
        })
    }

    #[test]
    fn a_bare_number_is_refused_with_the_key_the_value_and_the_fix() {
        let key = DurationKey::any("seq_timeout");
        let hint = "a duration needs a unit in this file: write";
        assert_eq!(
            read(&key, "5"),
            Err(format!("seq_timeout = 5: {hint} \"5s\" or \"5ms\""))
        );
        assert_eq!(
            read(&key, "\" 5\""),
            Err(format!("seq_timeout = \" 5\": {hint} \"5s\" or \"5ms\""))
        );
        assert_eq!(
            read(&key, "1.5"),
            Err(format!("seq_timeout = 1.5: {hint} \"1.5s\""))
        );
        assert_eq!(read(&key, "\"5s\""), Ok(Duration::from_secs(5)));
        assert_eq!(read(&key, "\"1.5s\""), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn what_is_no_duration_at_all_says_what_is_one() {
        let key = DurationKey::any("delay");
        let expected = "is not a duration: expected a number with a unit, e.g. \"250ms\", \
                        \"2s\", \"1m\" or \"1h30m\"";
        for value in ["\"soon\"", "true", "-5", "\"01:30:00\"", "[1]"] {
            assert_eq!(
                read(&key, value),
                Err(format!("delay = {value} {expected}")),
                "{value}"
            );
        }
    }

    #[test]
    fn a_key_refuses_durations_outside_its_range() {
        let key = DurationKey {
            name: "otp_step",
            range: Duration::from_secs(1)..=Duration::MAX,
            whole_seconds: true,
            expected: "whole seconds",
        };
        let refused =
            |value: &str| format!("otp_step = {value} is not usable: expected whole seconds");
        assert_eq!(read(&key, "\"1500ms\""), Err(refused("\"1500ms\"")));
        assert_eq!(read(&key, "\"0s\""), Err(refused("\"0s\"")));
        assert_eq!(read(&key, "\"2m\""), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn a_flag_reads_its_key_by_the_command_lines_rule_and_the_keys_range() {
        let key = DurationKey {
            name: "delay",
            range: Duration::ZERO..=Duration::from_secs(60),
            whole_seconds: false,
            expected: "a duration from 0s to 1m",
        };
        assert_eq!(
            key.read_flag("200"),
            Ok(Duration::from_millis(200)),
            "bare: ms"
        );
        assert_eq!(key.read_flag("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(
            key.read_flag("200h"),
            Err("200h is not usable: expected a duration from 0s to 1m".to_string())
        );
        assert!(
            key.read_flag("soon")
                .unwrap_err()
                .starts_with("duration \"soon\" is not understood")
        );
    }

    /// A loader of one TOML file with one duration key set to a value, and
    /// the duration it loaded the key as.
    #[cfg(feature = "server")]
    type Load = Box<dyn Fn(&str) -> Result<Duration, String>>;

    /// Every duration key of both TOML files. Each file ends with the key,
    /// so the value is on the last line, after `KEY = `.
    #[cfg(feature = "server")]
    fn every_duration_key(secret: &std::path::Path) -> Vec<(&'static str, &'static str, Load)> {
        use crate::config::profiles::Profiles;
        use crate::config::server;
        use std::path::Path;
        let profile = |key: &'static str,
                       get: fn(&crate::config::profiles::Overrides) -> Option<Duration>|
         -> Load {
            Box::new(move |value| {
                let text = format!("[profiles.p]\nhost = \"h\"\nsequence = [1]\n{key} = {value}\n");
                let file = Profiles::parse(Path::new("profiles.toml"), &text)
                    .map_err(|e| e.to_string())?;
                Ok(get(&file.members(&["p".into()]).unwrap()[0].settings).unwrap())
            })
        };
        let door = |table: String, get: fn(&server::DoorConfig) -> Option<Duration>| -> Load {
            Box::new(move |value| {
                let text = format!("[[door]]\nname = \"d\"\n{table}{value}\n");
                let config =
                    server::parse(Path::new("knockd.toml"), &text).map_err(|e| e.to_string())?;
                Ok(get(&config.doors[0]).unwrap())
            })
        };
        let routeros = "sequence = [1]\n[door.routeros]\nurl = \"https://192.0.2.1\"\nuser = \"k\"\n\
                        password_env = \"P\"\nlist = \"l\"\n";
        let secret = secret.display();
        vec![
            ("profiles.toml", "delay", profile("delay", |s| s.delay)),
            (
                "profiles.toml",
                "timeout",
                profile("timeout", |s| s.timeout),
            ),
            (
                "profiles.toml",
                "check_timeout",
                profile("check_timeout", |s| s.check_timeout),
            ),
            (
                "profiles.toml",
                "otp_step",
                Box::new(|value| {
                    let text = format!(
                        "[profiles.p]\nhost = \"h\"\nsecret_env = \"S\"\notp_step = {value}\n"
                    );
                    let file = Profiles::parse(Path::new("profiles.toml"), &text)
                        .map_err(|e| e.to_string())?;
                    match &file.members(&["p".into()]).unwrap()[0].sequence {
                        crate::config::profiles::Sequence::Otp(otp) => {
                            Ok(Duration::from_secs(otp.spec.step()))
                        }
                        other => panic!("{other:?}"),
                    }
                }),
            ),
            (
                "knockd.toml",
                "seq_timeout",
                door("sequence = [1]\nseq_timeout = ".into(), |d| {
                    Some(d.door.seq_timeout)
                }),
            ),
            (
                "knockd.toml",
                "cmd_timeout",
                door("sequence = [1]\ncmd_timeout = ".into(), |d| d.cmd_timeout),
            ),
            (
                "knockd.toml",
                "otp_step",
                door(format!("secret_file = \"{secret}\"\notp_step = "), |d| {
                    d.otp.as_ref().map(|o| Duration::from_secs(o.spec.step()))
                }),
            ),
            (
                "knockd.toml",
                "timeout",
                door(format!("{routeros}timeout = "), |d| {
                    d.routeros.as_ref().map(|r| r.timeout)
                }),
            ),
            (
                "knockd.toml",
                "retry",
                door(format!("{routeros}retry = "), |d| {
                    d.routeros.as_ref().map(|r| r.retry)
                }),
            ),
        ]
    }

    /// Reproduced in one `[[door]]` of a knockd.toml: `seq_timeout = 5` was
    /// refused, `otp_step = 30000` read as 30 s (a bare number was
    /// milliseconds there, as in the profiles file), `otp_step = 30` said
    /// "30ms is not a whole number of seconds", and `[door.routeros]` had a
    /// rule of its own for `retry` and RouterOS syntax for `timeout`.
    #[cfg(feature = "server")]
    #[test]
    fn regression_a_bare_number_meant_different_things_in_different_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (file, key, load) in every_duration_key(&secret) {
            assert_eq!(load("\"5s\""), Ok(Duration::from_secs(5)), "{file}: {key}");
            for (value, fix) in [
                ("5", "\"5s\" or \"5ms\""),
                ("30000", "\"30000s\" or \"30000ms\""),
            ] {
                let err = load(value).expect_err(key);
                let (place, message) = err.split_once(": ").unwrap();
                assert_eq!(
                    message,
                    format!("{key} = {value}: a duration needs a unit in this file: write {fix}"),
                    "{file}: {key}"
                );
                let col = key.len() + 4;
                assert!(
                    place.starts_with(file) && place.ends_with(&format!(":{col}")),
                    "{err}"
                );
            }
        }
    }
}
