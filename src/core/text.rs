//! Text shown to people: untrusted strings (hostnames, profile and door
//! names, packet data, router replies) made safe for a terminal or a log
//! line, and I/O errors said as one lower-case phrase.

use std::borrow::Cow;
use std::io;

/// Replaces what could drive a terminal or disguise text with visible
/// escapes (`\u{1b}`), so names from configs, DNS, packets or routers
/// cannot move the cursor, start a new log line, or reorder what is shown:
/// control characters (C0, DEL, C1: escape sequences, newlines), the line
/// and paragraph separators, zero-width characters and the byte-order mark
/// (invisible), and the bidirectional marks, embeddings, overrides and
/// isolates ("Trojan Source"). fd's `sanitize` covers the same set.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            clean.extend(c.escape_unicode());
        } else {
            clean.push(c);
        }
    }
    Cow::Owned(clean)
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Arabic letter mark; Mongolian vowel separator (zero width).
            '\u{061c}' | '\u{180e}'
            // Zero-width space, non-joiner, joiner; left-to-right and right-to-left marks.
            | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators; bidi embeddings and overrides.
            | '\u{2028}'..='\u{202e}'
            // Word joiner and the invisible operators; bidi isolates.
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
            // Zero-width no-break space (byte-order mark).
            | '\u{feff}')
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        let text = "gw1.example.net → office (ü, 東京)";
        assert!(matches!(sanitize(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn regression_bidi_marks_zero_width_characters_and_the_bom_were_shown_raw() {
        let cases = [
            ("a\u{1b}[2Jb", "a\\u{1b}[2Jb"),
            ("line\nfake line", "line\\u{a}fake line"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("x\u{202e}y", "x\\u{202e}y"),
            ("x\u{2067}y\u{2069}", "x\\u{2067}y\\u{2069}"),
            ("rlm\u{200f}", "rlm\\u{200f}"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("joiner\u{2060}", "joiner\\u{2060}"),
            ("\u{feff}bom", "\\u{feff}bom"),
            ("sep\u{2028}arated", "sep\\u{2028}arated"),
            ("alm\u{61c}", "alm\\u{61c}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(sanitize(raw), shown, "{raw:?}");
        }
    }
}
