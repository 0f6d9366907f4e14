//! Text shown to people: untrusted strings (hostnames, profile and door
//! names, packet data, router replies) made safe for a terminal or a log
//! line, and I/O errors said as one lower-case phrase.

use std::borrow::Cow;
use std::io;

/// Replaces control characters (escape sequences, newlines, bidi overrides)
/// with visible escapes so text from configs, DNS or arguments cannot drive
/// the terminal.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// An io::Error as a short lower-case phrase, without "(os error 111)".
pub fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
