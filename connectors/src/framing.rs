//! Where complete records end in a byte stream (newline or RFC 6587 octet counting), so a
//! stream transport hands over whole records only. This only finds boundaries; it never
//! parses records.
//!
//! [`StreamFramer`] keeps what it learnt between reads: how much of an unfinished line
//! it already searched for its newline (so a record trickled in byte by byte is not
//! searched again from its start on every read), and the rest of an oversized record
//! still to discard (so the stream resumes at the next record, not in the middle of
//! the one handed over to be dead-lettered).

use vedette_core::octet_count::{octet_count, OctetCount};

/// Length of the longest prefix of `buf` made of complete records. `searched` bytes at
/// the start of `buf` are known to hold no newline.
fn complete_prefix(buf: &[u8], searched: usize) -> usize {
    let mut pos = 0;
    let mut complete = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if let Some(end) = octet_count(rest).map(OctetCount::end) {
            if end > rest.len() {
                break;
            }
            pos += end;
            complete = pos;
            continue;
        }
        let from = if pos == 0 {
            searched.min(rest.len())
        } else {
            0
        };
        match memchr::memchr(b'\n', &rest[from..]) {
            Some(i) => {
                pos += from + i + 1;
                complete = pos;
            }
            None => break,
        }
    }
    complete
}

/// What to do with the front of the buffer, as [`StreamFramer::next`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Hand over this many bytes: whole records.
    Records(usize),
    /// Hand over this many bytes: the start of a record longer than the limit, to be
    /// dead-lettered; the rest of it is discarded as it arrives.
    Oversized(usize),
    /// Drop this many bytes: the rest of a record handed over as oversized.
    Discard(usize),
    /// Nothing to do until more bytes arrive.
    Wait,
}

/// What is left to discard of an oversized record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discarding {
    /// Nothing.
    No,
    /// This many more bytes (an octet-counted frame).
    Bytes(usize),
    /// Up to and with the next newline.
    Line,
}

/// Frames one connection's byte stream into whole records, at most `max` bytes waiting
/// without a boundary.
#[derive(Debug)]
pub(crate) struct StreamFramer {
    max: usize,
    /// Bytes at the front of the buffer known to hold no newline.
    searched: usize,
    discarding: Discarding,
}

impl StreamFramer {
    /// A framer that lets at most `max` bytes wait without a record boundary.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            searched: 0,
            discarding: Discarding::No,
        }
    }

    /// The next step for the buffer `buf` (the bytes received and not yet consumed).
    /// The caller consumes the bytes a step names before asking again.
    pub(crate) fn next(&mut self, buf: &[u8]) -> Step {
        match self.discarding {
            Discarding::No => {}
            Discarding::Bytes(left) => {
                let n = left.min(buf.len());
                if n == 0 {
                    return Step::Wait;
                }
                self.discarding = if n == left {
                    Discarding::No
                } else {
                    Discarding::Bytes(left - n)
                };
                return Step::Discard(n);
            }
            Discarding::Line => {
                if buf.is_empty() {
                    return Step::Wait;
                }
                return match memchr::memchr(b'\n', buf) {
                    Some(i) => {
                        self.discarding = Discarding::No;
                        Step::Discard(i + 1)
                    }
                    None => Step::Discard(buf.len()),
                };
            }
        }
        let complete = complete_prefix(buf, self.searched);
        if complete > 0 {
            self.searched = 0;
            return Step::Records(complete);
        }
        // An octet-counted record whose declared body is within the limit is waited for
        // whole: at most its count and a space more than the limit.
        let declared_within = octet_count(buf).is_some_and(|count| count.body <= self.max);
        if buf.len() <= self.max || declared_within {
            // An octet-counted start is not searched; the fact still holds for it.
            self.searched = buf.len();
            return Step::Wait;
        }
        self.searched = 0;
        self.discarding = match octet_count(buf) {
            Some(count) => Discarding::Bytes(count.end() - buf.len()),
            None => Discarding::Line,
        };
        Step::Oversized(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one read at a time; returns what was handed over, each chunk
    /// marked `R:` (records) or `O:` (oversized), and the bytes discarded.
    fn run(max: usize, pieces: &[&[u8]]) -> (Vec<String>, usize) {
        let mut framer = StreamFramer::new(max);
        let mut buf: Vec<u8> = Vec::new();
        let (mut out, mut discarded) = (Vec::new(), 0);
        for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                match framer.next(&buf) {
                    Step::Records(n) => {
                        out.push(format!("R:{}", String::from_utf8_lossy(&buf[..n])));
                        buf.drain(..n);
                    }
                    Step::Oversized(n) => {
                        out.push(format!("O:{}", String::from_utf8_lossy(&buf[..n])));
                        buf.drain(..n);
                    }
                    Step::Discard(n) => {
                        discarded += n;
                        buf.drain(..n);
                    }
                    Step::Wait => break,
                }
            }
        }
        (out, discarded)
    }

    #[test]
    fn complete_records_only() {
        assert_eq!(complete_prefix(b"a\nb\nc", 0), 4);
        assert_eq!(complete_prefix(b"5 <1>ab", 0), 7);
        assert_eq!(complete_prefix(b"5 <1>a", 0), 0);
        assert_eq!(complete_prefix(b"5 <1>ab12 <2>", 0), 7);
        assert_eq!(complete_prefix(b"no newline", 0), 0);
        assert_eq!(complete_prefix(b"", 0), 0);
        assert_eq!(complete_prefix(b"abc\nd\n", 2), 6);
    }

    #[test]
    fn records_split_across_reads_are_handed_over_whole() {
        let (out, discarded) = run(100, &[b"<1>a", b"b\n<2>c\n6 <3>", b"de", b"f", b"<4>g\n"]);
        assert_eq!(out, ["R:<1>ab\n<2>c\n", "R:6 <3>def", "R:<4>g\n"]);
        assert_eq!(discarded, 0);
    }

    #[test]
    fn a_line_over_the_limit_is_handed_over_once_and_its_rest_skipped() {
        let (out, discarded) = run(8, &[b"<1>aaaa", b"aaaaa", b"aaaa", b"aa\n<2>next\n"]);
        assert_eq!(out, ["O:<1>aaaaaaaaa", "R:<2>next\n"]);
        assert_eq!(discarded, "aaaaaa\n".len());
    }

    #[test]
    fn an_octet_frame_over_the_limit_is_skipped_to_its_declared_end() {
        // A frame of 20 body bytes, no newlines anywhere (as RFC 6587 senders send).
        let (out, discarded) = run(10, &[b"20 <1>aaaaa", b"aaaaaaaaaa", b"aa6 <2>bbb7 <3>cccc"]);
        assert_eq!(out, ["O:20 <1>aaaaa", "R:6 <2>bbb7 <3>cccc"]);
        assert_eq!(discarded, 12);
    }

    #[test]
    fn an_octet_frame_whose_body_fits_the_limit_is_waited_for_whole() {
        // A body of exactly the limit: its count and space make the frame longer than
        // the limit, and a read may end anywhere in it.
        let body = format!("<1>{}", "a".repeat(17));
        let frame = format!("{} {body}", body.len());
        let (out, discarded) = run(20, &[&frame.as_bytes()[..21], &frame.as_bytes()[21..]]);
        assert_eq!(out, [format!("R:{frame}")]);
        assert_eq!(discarded, 0);
    }

    #[test]
    fn a_trickled_line_is_not_searched_again_from_its_start() {
        let mut framer = StreamFramer::new(1 << 20);
        let mut buf = Vec::new();
        for _ in 0..1000 {
            buf.push(b'x');
            assert_eq!(framer.next(&buf), Step::Wait);
            assert_eq!(framer.searched, buf.len());
        }
        buf.push(b'\n');
        assert_eq!(framer.next(&buf), Step::Records(1001));
        assert_eq!(framer.searched, 0);
    }

    proptest::proptest! {
        /// Whatever arrives, in whatever pieces: no panic, every byte handed over or
        /// discarded once, and never more than the limit (and a count) waiting.
        #[test]
        fn any_stream_in_any_pieces_is_consumed_once(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'<'),
                    proptest::strategy::Just(b' '),
                    b'0'..=b'9',
                    proptest::num::u8::ANY,
                ],
                0..600,
            ),
            cuts in proptest::collection::vec(0usize..600, 0..12),
            max in 8usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < bytes.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                pieces.push(&bytes[from..c]);
                from = c;
            }
            let mut framer = StreamFramer::new(max);
            let mut buf: Vec<u8> = Vec::new();
            let mut consumed = 0;
            for piece in pieces {
                buf.extend_from_slice(piece);
                while let Step::Records(n) | Step::Oversized(n) | Step::Discard(n) =
                    framer.next(&buf)
                {
                    proptest::prop_assert!(n > 0 && n <= buf.len());
                    buf.drain(..n);
                    consumed += n;
                }
                // An octet-counted record within the limit waits whole, its count too.
                proptest::prop_assert!(buf.len() <= max + vedette_core::octet_count::MAX_DIGITS + 1);
            }
            proptest::prop_assert_eq!(consumed + buf.len(), bytes.len());
        }
    }
}
