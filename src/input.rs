//! Reading an input file (or stdin), decompressing gzip and zstd: whole (`vedette
//! parse`, conformance runs) or as a stream of pieces cut at line ends (`vedette
//! detect`).

use std::io::Read;
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
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            while !self.eof && buf.len() < size {
                let n = self.reader.read(&mut chunk).context("reading input")?;
                if n == 0 {
                    self.eof = true;
                } else {
                    buf.extend_from_slice(&chunk[..n]);
                }
                if self.next_offset + buf.len() as u64 > MAX_INPUT_BYTES {
                    anyhow::bail!("input is larger than {MAX_INPUT_BYTES} bytes");
                }
            }
            if self.eof || buf.len() >= MAX_PIECE_BYTES {
                break;
            }
            match memchr::memrchr(b'\n', &buf) {
                Some(end) => {
                    self.carry = buf.split_off(end + 1);
                    break;
                }
                // One line longer than the piece: read on to its end.
                None => {
                    let n = self.reader.read(&mut chunk).context("reading input")?;
                    if n == 0 {
                        self.eof = true;
                    } else {
                        buf.extend_from_slice(&chunk[..n]);
                    }
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
