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
}
