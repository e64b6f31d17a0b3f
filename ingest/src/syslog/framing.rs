//! Syslog framing: newline-delimited records, or octet counting (RFC 6587 section 3.4.1:
//! `LEN SP MSG`), told apart at each record.

use vedette_core::octet_count::octet_count;

/// One record of a byte stream: where it starts, its bytes, and, for an octet-counted
/// frame whose count runs past the end of the input, the length it declared.
pub(crate) struct Frame<'a> {
    /// Byte offset of the record in the input.
    pub(crate) offset: usize,
    /// The record, without its count or trailing newline.
    pub(crate) record: &'a [u8],
    /// The declared length of a frame cut short (the sender's connection ended inside
    /// it, or it was longer than the transport's limit): one whose count runs past the
    /// end of the input, which does not end at a line end.
    pub(crate) truncated: Option<usize>,
}

/// Splits a byte stream into syslog records with their byte offsets. A record that starts
/// with `DIGITS SP <` is octet-counted; any other ends at the next newline. An octet count
/// that runs past the end of the input yields the rest as one record, marked truncated.
pub(crate) fn frames(bytes: &[u8]) -> impl Iterator<Item = Frame<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let start = pos;
            if let Some(count) = octet_count(rest) {
                let (body_start, body) = (count.header, count.body);
                let declared_end = count.end();
                let end = declared_end.min(rest.len());
                pos += end;
                let record = trim_newline(&rest[body_start..end]);
                if !record.is_empty() {
                    // Cut at a line end, the cut may be a reader's (files and stdin
                    // are handed over in pieces of whole lines): only a frame cut
                    // elsewhere is known to be cut short.
                    let cut_short = declared_end > rest.len() && !rest.ends_with(b"\n");
                    return Some(Frame {
                        offset: start + body_start,
                        record,
                        truncated: cut_short.then_some(body),
                    });
                }
                continue;
            }
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            pos += (end + 1).min(rest.len());
            let record = trim_newline(&rest[..end]);
            if !record.iter().all(u8::is_ascii_whitespace) {
                return Some(Frame {
                    offset: start,
                    record,
                    truncated: None,
                });
            }
        }
        None
    })
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
        let got: Vec<(usize, &[u8])> = frames(input).map(|f| (f.offset, f.record)).collect();
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
    fn a_count_past_the_end_takes_the_rest_marked_truncated() {
        let got: Vec<(&[u8], Option<usize>)> = frames(b"7 <1>abcd99 <1>short")
            .map(|f| (f.record, f.truncated))
            .collect();
        assert_eq!(
            got,
            vec![(&b"<1>abcd"[..], None), (&b"<1>short"[..], Some(99))]
        );
        // Cut at a line end (a file read in pieces of whole lines): not known to be cut.
        let at_line_end: Vec<Option<usize>> =
            frames(b"99 <1>first line\n").map(|f| f.truncated).collect();
        assert_eq!(at_line_end, vec![None]);
    }

    #[test]
    fn digits_without_a_pri_are_a_plain_line() {
        let got: Vec<&[u8]> = frames(b"12 apples\n").map(|f| f.record).collect();
        assert_eq!(got, vec![&b"12 apples"[..]]);
    }
}
