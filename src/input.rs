//! Reading an input file (or stdin), decompressing gzip and zstd: whole (`vedette
//! parse`, conformance runs) or as a stream of pieces cut at line ends (`vedette
//! detect`).

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use bytes::Bytes;
use vedette_connectors::decompress::Compression;

/// Largest input read (after decompression): 16 GiB.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// An input's bytes and when it was last written (the anchor for year-less times).
#[derive(Debug)]
pub(crate) struct InputBytes {
    /// The (decompressed) content.
    pub(crate) bytes: Bytes,
    /// Modification time of the file (now, for stdin), Unix ms.
    pub(crate) modified_ms: i64,
}

/// Reads `path` (`-` for stdin) whole, decompressing gzip and zstd by magic bytes.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<InputBytes> {
    let mut stream = open_input(path)?;
    let mut bytes = Vec::new();
    while let Some(piece) = stream.next_piece(16 * 1024 * 1024)? {
        bytes.extend_from_slice(&piece.bytes);
    }
    Ok(InputBytes {
        bytes: Bytes::from(bytes),
        modified_ms: stream.modified_ms,
    })
}

/// An input opened for streaming: decompressed on the fly, read in pieces cut at
/// line ends, so a hunt over a large file holds a few pieces in memory, not the file.
pub(crate) struct InputStream {
    reader: Box<dyn std::io::Read + Send>,
    carry: Vec<u8>,
    eof: bool,
    /// Line number of the next piece's first line.
    next_line: u64,
    /// Offset (in decompressed bytes) of the next piece.
    next_offset: u64,
    /// When the file was last written, Unix ms.
    pub(crate) modified_ms: i64,
}

/// A piece of an input: whole lines, and where they start.
pub(crate) struct InputPiece {
    /// The bytes.
    pub(crate) bytes: Bytes,
    /// Line number of its first line (1-based).
    pub(crate) first_line: u64,
    /// Offset of its first byte in the (decompressed) input.
    pub(crate) offset: u64,
}

/// Longest run read without a line end before a piece is cut anyway.
const MAX_PIECE_BYTES: usize = 64 * 1024 * 1024;

/// How much more is read at a time while a line is longer than the piece.
const LONG_LINE_READ: usize = 256 * 1024;

/// Opens `path` (`-` for stdin) for streaming, decompressing gzip and zstd by magic.
pub(crate) fn open_input(path: &Path) -> anyhow::Result<InputStream> {
    use std::io::BufRead;
    let now = chrono::Utc::now().timestamp_millis();
    let (raw, modified_ms): (Box<dyn std::io::Read + Send>, i64) = if path.as_os_str() == "-" {
        (Box::new(std::io::stdin()), now)
    } else {
        let file = std::fs::File::open(path)?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now, |d| i64::try_from(d.as_millis()).unwrap_or(now));
        (Box::new(file), modified)
    };
    let mut buffered = std::io::BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf()?;
    let reader: Box<dyn std::io::Read + Send> = match Compression::sniff(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok(InputStream {
        reader,
        carry: Vec::new(),
        eof: false,
        next_line: 1,
        next_offset: 0,
        modified_ms,
    })
}

impl InputStream {
    /// The next piece of about `size` bytes ending at a line end (or the input's end);
    /// `None` at the end.
    pub(crate) fn next_piece(&mut self, size: usize) -> anyhow::Result<Option<InputPiece>> {
        let mut buf = std::mem::take(&mut self.carry);
        // Where the search for the last line end starts: what was searched in vain
        // before a long line's next read is not searched again.
        let mut searched = 0;
        loop {
            if !self.eof && buf.len() < size {
                // Straight into the piece's buffer, sized once: no copy through a
                // smaller buffer, no doubling on the way.
                let missing = size - buf.len();
                buf.reserve_exact(missing);
                self.read_up_to(&mut buf, missing)?;
            }
            if self.eof || buf.len() >= MAX_PIECE_BYTES {
                break;
            }
            match memchr::memrchr(b'\n', &buf[searched..]) {
                Some(end) => {
                    self.carry = buf.split_off(searched + end + 1);
                    break;
                }
                // One line longer than the piece: read on to its end.
                None => {
                    searched = buf.len();
                    self.read_up_to(&mut buf, LONG_LINE_READ)?;
                }
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let piece = InputPiece {
            first_line: self.next_line,
            offset: self.next_offset,
            bytes: Bytes::from(buf),
        };
        self.next_line += memchr::memchr_iter(b'\n', &piece.bytes).count() as u64;
        self.next_offset += piece.bytes.len() as u64;
        Ok(Some(piece))
    }

    /// Appends up to `limit` more bytes of the input to `buf`; fewer means its end.
    fn read_up_to(&mut self, buf: &mut Vec<u8>, limit: usize) -> anyhow::Result<()> {
        let read = vedette_core::io::append_up_to(&mut self.reader, buf, limit)
            .context("reading input")?;
        if read < limit {
            self.eof = true;
        }
        if self.next_offset + buf.len() as u64 > MAX_INPUT_BYTES {
            anyhow::bail!("input is larger than {MAX_INPUT_BYTES} bytes");
        }
        Ok(())
    }

    /// Everything left, with the piece already read in front: for formats whose
    /// records span the whole file (EVTX, Zeek TSV, auditd, XML).
    pub(crate) fn rest(&mut self, first: InputPiece) -> anyhow::Result<InputPiece> {
        let mut all = Vec::from(first.bytes);
        while let Some(p) = self.next_piece(16 * 1024 * 1024)? {
            all.extend_from_slice(&p.bytes);
        }
        Ok(InputPiece {
            bytes: Bytes::from(all),
            first_line: first.first_line,
            offset: first.offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces of `text` read `size` bytes at a time.
    fn pieces(text: &[u8], size: usize) -> Vec<InputPiece> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("input.log");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let mut stream = open_input(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        while let Some(p) = stream.next_piece(size).unwrap_or_else(|e| panic!("{e}")) {
            out.push(p);
        }
        out
    }

    #[test]
    fn pieces_end_at_line_ends_and_know_their_lines_and_offsets() {
        let long = "x".repeat(3 * LONG_LINE_READ + 17);
        let text = format!("a\nbb\n\nccc\n{long}\nd\ne");
        for size in [1, 2, 3, 7, 64, 1 << 20] {
            let got = pieces(text.as_bytes(), size);
            let joined: Vec<u8> = got.iter().flat_map(|p| p.bytes.to_vec()).collect();
            assert_eq!(joined, text.as_bytes(), "size {size}");
            let (mut line, mut offset) = (1, 0);
            for (i, p) in got.iter().enumerate() {
                assert_eq!((p.first_line, p.offset), (line, offset), "size {size}");
                if i + 1 < got.len() {
                    assert!(
                        p.bytes.ends_with(b"\n"),
                        "size {size}: piece {i} cut a line"
                    );
                }
                line += memchr::memchr_iter(b'\n', &p.bytes).count() as u64;
                offset += p.bytes.len() as u64;
            }
        }
        assert!(pieces(b"", 8).is_empty());
    }

    /// A reader that hands out a few bytes per call, as pipes and decoders may.
    struct Trickle<'a> {
        text: &'a [u8],
        calls: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            let n = (self.calls % 7 + 1).min(out.len()).min(self.text.len());
            out[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_fill_whole_pieces() {
        let text: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {i} {}\n", "y".repeat(i % 50)).into_bytes())
            .collect();
        let mut stream = InputStream {
            reader: Box::new(Trickle {
                text: Box::leak(text.clone().into_boxed_slice()),
                calls: 0,
            }),
            carry: Vec::new(),
            eof: false,
            next_line: 1,
            next_offset: 0,
            modified_ms: 0,
        };
        let mut joined = Vec::new();
        let mut count = 0;
        while let Some(p) = stream.next_piece(4096).unwrap_or_else(|e| panic!("{e}")) {
            assert!(p.bytes.ends_with(b"\n"));
            assert!(
                p.bytes.len() <= 4096,
                "a piece past its size: {}",
                p.bytes.len()
            );
            joined.extend_from_slice(&p.bytes);
            count += 1;
        }
        assert_eq!(joined, text);
        assert!(count > text.len() / 4096, "{count} pieces");
    }
}
