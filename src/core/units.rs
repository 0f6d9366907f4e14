//! Small values users write by hand on the command line and in the profiles
//! file: durations (`250ms`, `2s`, a bare number of milliseconds) and UDP
//! payloads (`hex:..`, `base64:..`, or text). Pure parsing, no I/O.

use std::time::Duration;

use base64::Engine as _;

/// Parses `250ms`, `1.5s`, `2m`, `1h 30m`; a bare number means milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(duration_error(text));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| duration_error(text));
    }
    if let Some(secs) = text.strip_suffix('s').and_then(|n| n.parse::<f64>().ok())
        && text.contains('.')
    {
        // humantime has no fractions; "1.5s" is too natural to refuse.
        return Duration::try_from_secs_f64(secs).map_err(|_| duration_error(text));
    }
    humantime::parse_duration(text).map_err(|_| duration_error(text))
}

fn duration_error(text: &str) -> String {
    format!(
        "duration {text:?} is not understood: expected a number of milliseconds or a number \
         with a unit, e.g. 250ms, 2s, 1m"
    )
}

/// Formats a duration the way users write it (`200ms`, `2s`, `1m 30s`).
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
    fn bare_numbers_are_milliseconds() {
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

    #[test]
    fn durations_format_as_users_write_them() {
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
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
