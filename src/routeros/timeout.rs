//! RouterOS's own duration syntax, as address-list `timeout` takes it and the
//! router prints it: `30s`, `5m`, `1h30m`, `2w3d`, `hh:mm:ss`, a bare number
//! of seconds; at most `35w3d13h13m56s`. [`format()`] (the rule generator's)
//! writes what is sent to the router, [`parse`] reads the router's notation
//! and [`parse_uptime`] its uptime.
//! Pure, no I/O.
//!
//! Not for what users write: the config and the command line read durations
//! by `core::units`' rules, so one value means the same in every key.

use std::time::Duration;

/// The longest timeout RouterOS accepts: `35w3d13h13m56s`.
pub use super::rules::MAX_TIMEOUT as MAX;
/// Formats a duration as RouterOS prints one (`1h30m`); the rule generator's.
pub use super::rules::duration as format;

/// Parses a RouterOS timeout. The error says what was wrong and what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let expected = "expected RouterOS syntax such as \"30s\", \"5m\", \"1h30m\", \"1d\", \"2w\" or \"01:30:00\"";
    let bad = || format!("timeout {text:?} is not understood: {expected}");
    if trimmed.is_empty() {
        return Err(bad());
    }
    let duration = if trimmed.contains(':') {
        clock(trimmed).ok_or_else(bad)?
    } else if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(trimmed.parse().map_err(|_| bad())?)
    } else {
        units(trimmed).ok_or_else(bad)?
    };
    if duration > MAX {
        return Err(format!(
            "timeout {text:?} is out of range: RouterOS accepts at most 35w3d13h13m56s"
        ));
    }
    Ok(duration)
}

/// Parses a router's uptime (`/system/resource`): the same syntax, where
/// the clock part may follow the units directly (`1w2d03:04:05`, as RouterOS
/// prints it), and no upper bound (a router may be up for years).
pub fn parse_uptime(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let shown: String = text.chars().take(64).collect();
    let bad = || format!("uptime {shown:?} is not understood");
    if trimmed.is_empty() {
        return Err(bad());
    }
    if !trimmed.contains(':') {
        return units(trimmed).ok_or_else(bad);
    }
    // `1w2d03:04:05`: the units end at the last `w` or `d`.
    let split = trimmed.rfind(['w', 'd', ' ']).map_or(0, |i| i + 1);
    let (days, time) = trimmed.split_at(split);
    let days = match days.trim() {
        "" => Duration::ZERO,
        days => units(days).ok_or_else(bad)?,
    };
    let time = clock(time).ok_or_else(bad)?;
    days.checked_add(time).ok_or_else(bad)
}

/// `hh:mm:ss`, optionally after a unit part (`1d 01:00:00`), as RouterOS prints.
fn clock(text: &str) -> Option<Duration> {
    let (days, time) = match text.rsplit_once(' ') {
        Some((days, time)) => (units(days.trim())?, time),
        None => (Duration::ZERO, text),
    };
    let parts: Vec<&str> = time.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let number = |p: &str| -> Option<u64> {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (h, m, s) = (number(h)?, number(m)?, number(s)?);
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(days + Duration::from_secs(h.checked_mul(3600)?.checked_add(m * 60 + s)?))
}

/// `1w2d3h4m5s` (and `ms`), units in any order, each a whole number.
fn units(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else {
            let secs = match rest.bytes().next()? {
                b'w' => 604_800,
                b'd' => 86_400,
                b'h' => 3_600,
                b'm' => 60,
                b's' => 1,
                _ => return None,
            };
            (Duration::from_secs(secs), 1)
        };
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routeros_syntax_is_read() {
        let s = Duration::from_secs;
        assert_eq!(parse("30s").unwrap(), s(30));
        assert_eq!(parse("5m").unwrap(), s(300));
        assert_eq!(parse("1h30m").unwrap(), s(5400));
        assert_eq!(parse("1d").unwrap(), s(86_400));
        assert_eq!(parse("2w").unwrap(), s(1_209_600));
        assert_eq!(parse("01:30:00").unwrap(), s(5400));
        assert_eq!(parse("1d 01:00:00").unwrap(), s(90_000));
        assert_eq!(parse("90").unwrap(), s(90), "a bare number is seconds");
        assert_eq!(parse("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("35w3d13h13m56s").unwrap(), MAX);
    }

    #[test]
    fn nonsense_and_out_of_range_are_refused_with_the_accepted_syntax() {
        for bad in ["", "1x", "h", "1h 30m", "10:70:00", "1:2", "-5s", "1.5h"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("expected RouterOS syntax"), "{bad:?}: {err}");
        }
        let err = parse("35w3d13h13m57s").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(err.contains("at most 35w3d13h13m56s"), "{err}");
        assert!(parse("99999999999999w").is_err());
    }

    #[test]
    fn an_uptime_is_read_in_both_of_routeros_spellings_and_without_bound() {
        let s = Duration::from_secs;
        assert_eq!(
            parse_uptime("1w2d03:04:05").unwrap(),
            s(9 * 86_400 + 11_045)
        );
        assert_eq!(parse_uptime("2d3h4m5s").unwrap(), s(2 * 86_400 + 11_045));
        assert_eq!(parse_uptime("00:00:07").unwrap(), s(7));
        assert_eq!(parse_uptime("1d 01:00:00").unwrap(), s(90_000));
        assert_eq!(parse_uptime("60w").unwrap(), s(60 * 604_800));
        for bad in ["", "yesterday", "1w2x03:04:05", "1d00:61:00"] {
            assert!(parse_uptime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formatting_matches_routeros_and_reads_back() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(3598)), "59m58s");
        assert_eq!(format(MAX), "35w3d13h13m56s");
        assert_eq!(format(Duration::ZERO), "0s");
        for secs in [1, 59, 61, 3600, 86_401, 1_000_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }
}
