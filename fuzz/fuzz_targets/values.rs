//! The small value parsers users write by hand: durations, UDP payloads,
//! OTP secrets, TCP flag rules and host words. The first byte picks the
//! parser; the rest is the text. What parses must keep the promises its
//! callers rely on.

#![no_main]

use knockr::core::host;
use knockr::core::matcher::FlagRule;
use knockr::core::otp::parse_secret;
use knockr::core::units::{Rule, format_duration, parse, parse_duration, parse_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match pick % 5 {
        0 => {
            if let Ok(duration) = parse_duration(text) {
                // What knockr prints (logs, --check) reads back as the same
                // time, on the command line and in a TOML file.
                let printed = format_duration(duration);
                assert_eq!(
                    parse_duration(&printed),
                    Ok(duration),
                    "{text:?} -> {printed:?}"
                );
                assert_eq!(
                    parse(Rule::Toml, &printed),
                    Ok(duration),
                    "{text:?} -> {printed:?}"
                );
            }
        }
        1 => {
            if let Ok(payload) = parse_payload(text) {
                assert!(payload.len() <= 65507, "{text:?}");
                let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(parse_payload(&format!("hex:{hex}")), Ok(payload));
            }
        }
        2 => {
            if let Ok(secret) = parse_secret(text) {
                assert!(secret.len() >= 16, "{text:?}");
            }
        }
        3 => {
            if let Ok(rule) = FlagRule::parse(text) {
                assert_eq!(rule.set & rule.unset, 0, "{text:?}");
                assert!(rule.matches(rule.set), "{text:?}");
            }
        }
        _ => {
            if let Ok(read) = host::parse(text) {
                // The host as the resolver and sockets see it reads back the same.
                assert_eq!(host::parse(&read.to_string()), Ok(read.clone()), "{text:?}");
            }
        }
    }
});
