//! The octet count that begins an RFC 6587 syslog frame (`DIGITS SP <`), shared by the
//! stream transports, which must hand over whole frames, and the syslog parser, which
//! splits them: both must agree on where a frame ends.

/// Most digits of an octet count (RFC 6587 counts fit far fewer; 9 keeps sums in range).
pub const MAX_DIGITS: usize = 9;

/// The start of an octet-counted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OctetCount {
    /// Length of the count and its space: where the message begins.
    pub header: usize,
    /// The declared length of the message.
    pub body: usize,
}

impl OctetCount {
    /// Where the frame ends, counted from its start.
    pub fn end(self) -> usize {
        self.header + self.body
    }
}

/// The octet count `rest` begins with, if it begins with one.
pub fn octet_count(rest: &[u8]) -> Option<OctetCount> {
    // Digits past the most a count has are not read: a long digit run is no count.
    let digits = rest
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0
        || digits > MAX_DIGITS
        || rest.get(digits) != Some(&b' ')
        || rest.get(digits + 1) != Some(&b'<')
    {
        return None;
    }
    let body = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some(OctetCount {
        header: digits + 1,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_digits_a_space_and_a_priority() {
        assert_eq!(
            octet_count(b"12 <1>rest").map(OctetCount::end),
            Some(3 + 12)
        );
        assert_eq!(
            octet_count(b"123456789 <1>"),
            Some(OctetCount {
                header: 10,
                body: 123_456_789
            })
        );
        assert_eq!(octet_count(b"1234567890 <1>"), None);
        assert_eq!(octet_count(b"12 apples"), None);
        assert_eq!(octet_count(b"12"), None);
        assert_eq!(octet_count(b" 12 <1>"), None);
    }
}
