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

/// Largest whole file (EVTX, compressed) read into memory.
const MAX_WHOLE_FILE: u64 = 4 * 1024 * 1024 * 1024;

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
        done: false,
    })
}

/// Reads from `t.offset` and returns complete lines (or, at `flush`, everything).
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
    let end = if flush {
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

/// Follows (or reads once) the files of `input` until cancelled (or, when not
/// following, until every file was read), sending chunks to `sink`.
pub async fn run(
    input: FileInput,
    positions: Arc<Positions>,
    sink: ChunkSender,
    cancel: CancellationToken,
) -> Result<(), ConnectorError> {
    let mut tracked: HashMap<PathBuf, Tracked> = HashMap::new();
    loop {
        let mut sent_any = false;
        for path in expand(&input.patterns) {
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
            let key = path.to_string_lossy().to_string();
            // Rotation: the path now names another file. Finish the old one first.
            let current_inode = std::fs::metadata(&path).map(|m| m.ino()).ok();
            let rotated = tracked
                .get(&path)
                .is_some_and(|t| current_inode.is_some_and(|i| i != t.inode));
            let Some(t) = tracked.get_mut(&path) else {
                continue;
            };
            loop {
                let piece = if t.whole {
                    read_whole(t).map(|o| o.map(|b| (0, b)))
                } else {
                    read_lines(t, rotated || !input.follow)
                };
                let (start, bytes) = match piece {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(path = %key, error = %e, "reading input file failed");
                        break;
                    }
                };
                positions.sent(&key, t.inode, start, t.offset);
                let chunk = RawChunk {
                    source: input.name.clone(),
                    origin: key.clone(),
                    tenant: input.tenant.clone(),
                    bytes: Bytes::from(bytes),
                    position: start,
                    received_ms: now_ms(),
                };
                sent_any = true;
                if sink.send(chunk).await.is_err() {
                    return Ok(());
                }
                if t.whole {
                    break;
                }
            }
            if rotated {
                tracked.remove(&path);
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
}

#[cfg(test)]
mod tests;
