//! File inputs: files and globs read once, or followed (tailed) as they grow.
//!
//! Followed files are read from the last acknowledged position (see [`Positions`]),
//! in chunks of whole lines; a partial last line waits for its newline. Rotation by
//! rename is followed: the old file (still open) is read to its end before the new file
//! at the path is read from its start. Truncation in place (copytruncate) restarts at
//! offset 0. Whole-file formats (EVTX, compressed files) are handed over in one chunk
//! once the file stops changing.

mod positions;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use vedette_core::traits::RawChunk;

pub use positions::{FilePosition, Positions};

use crate::chunk::{now_ms, ChunkSender};
use crate::decompress::{decompress, Compression};
use crate::error::ConnectorError;

/// Largest chunk read from a file at once.
const READ_CHUNK: usize = 4 * 1024 * 1024;

/// Largest whole file (EVTX, compressed, and compressed files after decompression)
/// read into memory: 1 GiB, which keeps every Arrow column of one chunk's events far
/// from the 2 GiB offset limit of a batch.
const MAX_WHOLE_FILE: u64 = 1024 * 1024 * 1024;

/// One configured file input.
#[derive(Debug, Clone)]
pub struct FileInput {
    /// Source name of its chunks (e.g. `file-0`), so each input keeps its own format.
    pub name: String,
    /// Paths or glob patterns.
    pub patterns: Vec<String>,
    /// Keep following the files as they grow.
    pub follow: bool,
    /// Tenant of the chunks.
    pub tenant: String,
    /// How often to look for new data and new files.
    pub poll: Duration,
}

/// A file being read.
#[derive(Debug)]
struct Tracked {
    file: File,
    inode: u64,
    /// Bytes handed over so far.
    offset: u64,
    /// Size seen at the previous poll (whole-file mode waits for it to settle).
    last_len: u64,
    whole: bool,
    done: bool,
    /// Polls in a row that found nothing new (a rotated file is dropped after a few).
    idle_polls: u32,
}

fn is_whole_file(path: &Path, head: &[u8]) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".evtx")
        || name.ends_with(".gz")
        || name.ends_with(".zst")
        || head.starts_with(b"ElfFile\0")
        || Compression::sniff(head) != Compression::None
}

fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        match glob::glob(pattern) {
            Ok(paths) => out.extend(paths.flatten().filter(|p| p.is_file())),
            Err(e) => tracing::warn!(%pattern, error = %e, "bad file glob"),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn open(path: &Path, positions: &Positions) -> std::io::Result<Tracked> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let mut head = [0u8; 8];
    let n = file.read(&mut head)?;
    let whole = is_whole_file(path, &head[..n]);
    let key = path.to_string_lossy();
    let offset = positions.resume_offset(&key, meta.ino()).min(meta.len());
    Ok(Tracked {
        file,
        inode: meta.ino(),
        offset,
        last_len: u64::MAX,
        whole,
        // A whole file acknowledged to its end before a restart is not read again.
        done: whole && meta.len() > 0 && offset >= meta.len(),
        idle_polls: 0,
    })
}

/// Reads from `t.offset` and returns complete lines (and, with `flush`, the last
/// unterminated line once the end of the file is reached).
fn read_lines(t: &mut Tracked, flush: bool) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let len = t.file.metadata()?.len();
    if len < t.offset {
        // Truncated in place: start over.
        t.offset = 0;
    }
    if len == t.offset {
        return Ok(None);
    }
    t.file.seek(SeekFrom::Start(t.offset))?;
    let want = usize::try_from(len - t.offset)
        .unwrap_or(READ_CHUNK)
        .min(READ_CHUNK);
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        let n = t.file.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    // The last, unterminated line is handed over only at the end of the file.
    let at_end = t.offset + buf.len() as u64 >= len;
    let end = if flush && at_end {
        buf.len()
    } else {
        memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1)
    };
    if end == 0 {
        // A single line longer than a chunk is handed over as it is (the parser's size
        // limit dead-letters it); otherwise wait for its newline.
        if buf.len() < READ_CHUNK {
            return Ok(None);
        }
        let start = t.offset;
        t.offset += buf.len() as u64;
        return Ok(Some((start, buf)));
    }
    buf.truncate(end);
    let start = t.offset;
    t.offset += end as u64;
    Ok(Some((start, buf)))
}

/// Reads a whole file once it stopped changing, decompressing it if needed.
fn read_whole(t: &mut Tracked) -> std::io::Result<Option<Vec<u8>>> {
    let len = t.file.metadata()?.len();
    if t.done || len != t.last_len {
        t.last_len = len;
        return Ok(None);
    }
    if len > MAX_WHOLE_FILE {
        return Err(std::io::Error::other(format!(
            "file of {len} bytes is larger than the {MAX_WHOLE_FILE}-byte limit"
        )));
    }
    t.file.seek(SeekFrom::Start(0))?;
    let raw = vedette_core::io::read_capped(&mut t.file, MAX_WHOLE_FILE)?;
    t.done = true;
    t.offset = len;
    let bytes = decompress(&raw, Compression::sniff(&raw), MAX_WHOLE_FILE)?;
    Ok(Some(bytes))
}

/// Polls without new data after which a rotated-away file is closed.
const DRAIN_POLLS: u32 = 20;

/// Largest piece of a decompressed whole file handed over as one chunk.
const WHOLE_PIECE: usize = 64 * 1024 * 1024;

/// Splits decompressed whole-file content into chunks: EVTX stays one piece, text is
/// cut at newlines into pieces of at most [`WHOLE_PIECE`] bytes.
fn whole_pieces(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    if bytes.starts_with(b"ElfFile\0") || bytes.len() <= WHOLE_PIECE {
        return vec![bytes];
    }
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let cut = if rest.len() <= WHOLE_PIECE {
            rest.len()
        } else {
            memchr::memrchr(b'\n', &rest[..WHOLE_PIECE]).map_or(WHOLE_PIECE, |i| i + 1)
        };
        out.push(rest[..cut].to_vec());
        rest = &rest[cut..];
    }
    out
}

/// Hands over what is new in one file; returns whether anything was sent, or None when
/// the pipeline is gone.
async fn pump(
    t: &mut Tracked,
    key: &str,
    flush: bool,
    input: &FileInput,
    positions: &Positions,
    sink: &ChunkSender,
    cancel: &CancellationToken,
) -> Option<bool> {
    let mut sent = false;
    while !cancel.is_cancelled() {
        let pieces: Vec<(u64, Vec<u8>)> = if t.whole {
            match read_whole(t) {
                Ok(Some(bytes)) => {
                    // Pieces are numbered; only the last one moves the saved position
                    // (to the end of the file), once it is acknowledged.
                    let pieces = whole_pieces(bytes);
                    let last = pieces.len().saturating_sub(1) as u64;
                    positions.sent(key, t.inode, last, t.offset);
                    pieces
                        .into_iter()
                        .enumerate()
                        .map(|(i, b)| (i as u64, b))
                        .collect()
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(path = %key, error = %e, "input file cannot be read whole; skipped");
                    t.done = true;
                    break;
                }
            }
        } else {
            match read_lines(t, flush) {
                Ok(Some((start, bytes))) => {
                    positions.sent(key, t.inode, start, t.offset);
                    vec![(start, bytes)]
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(path = %key, error = %e, "reading input file failed");
                    break;
                }
            }
        };
        for (position, bytes) in pieces {
            let chunk = RawChunk {
                source: input.name.clone(),
                origin: key.to_string(),
                tenant: input.tenant.clone(),
                bytes: Bytes::from(bytes),
                position,
                received_ms: now_ms(),
            };
            if sink.send(chunk).await.is_err() {
                return None;
            }
            sent = true;
        }
        if t.whole {
            break;
        }
    }
    Some(sent)
}

/// Follows (or reads once) the files of `input` until cancelled (or, when not
/// following, until every file was read), sending chunks to `sink`.
pub async fn run(
    input: FileInput,
    positions: Arc<Positions>,
    sink: ChunkSender,
    cancel: CancellationToken,
) -> Result<(), ConnectorError> {
    let mut tracked: HashMap<PathBuf, Tracked> = HashMap::new();
    // Files rotated away from their path, still read until they stop growing.
    let mut draining: Vec<(String, Tracked)> = Vec::new();
    while !cancel.is_cancelled() {
        let mut sent_any = false;
        for (key, t) in &mut draining {
            match pump(t, key, false, &input, &positions, &sink, &cancel).await {
                None => return Ok(()),
                Some(true) => t.idle_polls = 0,
                Some(false) => t.idle_polls += 1,
            }
        }
        // A drained file's unterminated last line is handed over when it is closed.
        for (key, t) in &mut draining {
            if t.idle_polls >= DRAIN_POLLS
                && pump(t, key, true, &input, &positions, &sink, &cancel)
                    .await
                    .is_none()
            {
                return Ok(());
            }
        }
        draining.retain(|(_, t)| t.idle_polls < DRAIN_POLLS);
        for path in expand(&input.patterns) {
            let key = path.to_string_lossy().to_string();
            let current_inode = std::fs::metadata(&path).map(|m| m.ino()).ok();
            if let Some(t) = tracked.get(&path) {
                if current_inode.is_some_and(|i| i != t.inode) {
                    // Rotation: keep reading the old file; open the new one from its start.
                    if let Some(old) = tracked.remove(&path) {
                        draining.push((key.clone(), old));
                    }
                }
            }
            if !tracked.contains_key(&path) {
                match open(&path, &positions) {
                    Ok(t) => {
                        tracked.insert(path.clone(), t);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot open input file");
                        continue;
                    }
                }
            }
            let Some(t) = tracked.get_mut(&path) else {
                continue;
            };
            match pump(t, &key, !input.follow, &input, &positions, &sink, &cancel).await {
                None => return Ok(()),
                Some(sent) => sent_any |= sent,
            }
        }
        if !input.follow {
            let all_done = tracked.values().all(|t| {
                if t.whole {
                    t.done
                } else {
                    t.file
                        .metadata()
                        .map(|m| m.len() <= t.offset)
                        .unwrap_or(true)
                }
            });
            if all_done && !sent_any {
                return Ok(());
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(if sent_any { Duration::ZERO } else { input.poll }) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
