//! Where complete records end in a byte stream (newline or RFC 6587 octet counting), so a
//! stream transport hands over whole records only. This only finds boundaries; it never
//! parses records.

/// Length of the longest prefix of `buf` made of complete records.
pub(crate) fn complete_prefix(buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut complete = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let counted = digits > 0
            && digits <= 9
            && rest.get(digits) == Some(&b' ')
            && rest.get(digits + 1) == Some(&b'<');
        if counted {
            let len: usize = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let end = digits + 1 + len;
            if end > rest.len() {
                break;
            }
            pos += end;
            complete = pos;
        } else {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    pos += i + 1;
                    complete = pos;
                }
                None => break,
            }
        }
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_records_only() {
        assert_eq!(complete_prefix(b"a\nb\nc"), 4);
        assert_eq!(complete_prefix(b"5 <1>ab"), 7);
        assert_eq!(complete_prefix(b"5 <1>a"), 0);
        assert_eq!(complete_prefix(b"5 <1>ab12 <2>"), 7);
        assert_eq!(complete_prefix(b"no newline"), 0);
        assert_eq!(complete_prefix(b""), 0);
    }
}
