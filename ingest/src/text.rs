//! Small text helpers shared by parsers.

/// Parses a decimal or `0x` hexadecimal integer (Windows renders ids and pids both ways).
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok().or_else(|| {
            // Integral floats such as "80.0" still name a port or an id.
            t.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
    }
}

/// A substring search built once (a `str::find` with a string pattern builds its
/// searcher on every call, which costs more than the search on a syslog line).
pub(crate) struct Needle {
    text: &'static str,
    finder: std::sync::OnceLock<memchr::memmem::Finder<'static>>,
}

impl Needle {
    /// A search for `text`, built on first use.
    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            finder: std::sync::OnceLock::new(),
        }
    }

    /// Where `text` first occurs in `haystack`.
    pub(crate) fn find(&self, haystack: &str) -> Option<usize> {
        self.finder
            .get_or_init(|| memchr::memmem::Finder::new(self.text.as_bytes()))
            .find(haystack.as_bytes())
    }

    /// Whether `text` occurs in `haystack`.
    pub(crate) fn is_in(&self, haystack: &str) -> bool {
        self.find(haystack).is_some()
    }
}

/// `raw` as text, invalid UTF-8 sequences replaced: borrowed when it is valid, which
/// the standard validator (with its ASCII fast path) tells sooner than
/// `String::from_utf8_lossy`'s chunk walk.
pub(crate) fn lossy_utf8(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_in_decimal_and_hex() {
        assert_eq!(parse_int("0x378"), Some(888));
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("80.0"), Some(80));
        assert_eq!(parse_int("0.5"), None);
        assert_eq!(parse_int("0xZZ"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn text_borrowed_when_valid_replaced_when_not() {
        assert!(matches!(
            lossy_utf8(b"h\xc3\xa9"),
            std::borrow::Cow::Borrowed("h\u{e9}")
        ));
        assert_eq!(lossy_utf8(b"a\xffb"), "a\u{fffd}b");
    }
}
