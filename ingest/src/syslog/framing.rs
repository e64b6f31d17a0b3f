//! Syslog framing: newline-delimited records, or octet counting (RFC 6587 section 3.4.1:
//! `LEN SP MSG`), told apart at each record.

/// Splits a byte stream into syslog records with their byte offsets. A record that starts
/// with `DIGITS SP <` is octet-counted; any other ends at the next newline. An octet count
/// that runs past the end of the input yields the rest as one record (a truncated frame).
pub(crate) fn frames(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let start = pos;
            if let Some(len) = octet_count(rest) {
                let (digits, body) = len;
                let body_start = digits + 1;
                let end = body_start.saturating_add(body).min(rest.len());
                pos += end;
                let record = trim_newline(&rest[body_start..end]);
                if !record.is_empty() {
                    return Some((start + body_start, record));
                }
                continue;
            }
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            pos += (end + 1).min(rest.len());
            let record = trim_newline(&rest[..end]);
            if !record.iter().all(u8::is_ascii_whitespace) {
                return Some((start, record));
            }
        }
        None
    })
}

/// `(number of digits, declared length)` when `rest` starts with an octet count.
fn octet_count(rest: &[u8]) -> Option<(usize, usize)> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0
        || digits > 9
        || rest.get(digits) != Some(&b' ')
        || rest.get(digits + 1) != Some(&b'<')
    {
        return None;
    }
    let len: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some((digits, len))
}

fn trim_newline(mut record: &[u8]) -> &[u8] {
    while let Some(r) = record
        .strip_suffix(b"\n")
        .or_else(|| record.strip_suffix(b"\r"))
    {
        record = r;
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_and_octet_counted_frames_mix() {
        let input = b"<1>a b\r\n10 <2>c d\ne f<3>g\n";
        let got: Vec<(usize, &[u8])> = frames(input).collect();
        assert_eq!(
            got,
            vec![
                (0, &b"<1>a b"[..]),
                (11, &b"<2>c d\ne f"[..]),
                (21, &b"<3>g"[..])
            ]
        );
    }

    #[test]
    fn a_count_past_the_end_takes_the_rest() {
        let got: Vec<&[u8]> = frames(b"99 <1>short").map(|(_, r)| r).collect();
        assert_eq!(got, vec![&b"<1>short"[..]]);
    }

    #[test]
    fn digits_without_a_pri_are_a_plain_line() {
        let got: Vec<&[u8]> = frames(b"12 apples\n").map(|(_, r)| r).collect();
        assert_eq!(got, vec![&b"12 apples"[..]]);
    }
}
