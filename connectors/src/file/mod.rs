//! File inputs: files and globs read once, or followed (tailed) as they grow.
//!
//! Followed files are read from the last acknowledged position (see [`Positions`]),
//! in chunks of whole lines; a partial last line waits for its newline. Files are known
//! by device and inode, not by path:
//! - rotation by rename is followed: a file renamed out of the patterns (still open) is
//!   read to its end, then closed, before the new file at the path is read from its
//!   start; a file renamed within them (`app.log*` matching `app.log.1`) is the same
//!   file and is read on, never again from its start;
//! - truncation or rewriting in place (copytruncate) restarts at offset 0, told by the
//!   size or by a fingerprint of the first bytes;
//! - a line longer than a chunk (4 MiB) is handed over once, to be dead-lettered by the
//!   parser's size limit, and the rest of it is skipped;
//! - a Zeek TSV log resumed after its header lines (`#separator`, `#fields`, ...) has
//!   them handed over again first, for the parser that needs them;
//! - while an input has many files open, quiet ones are closed (parked) and opened again
//!   when they change.
//!
//! Whole-file formats (EVTX, compressed files) are handed over in one chunk once the
//! file stops changing.

mod parking;
mod positions;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use vedette_core::traits::RawChunk;

pub use positions::{FileId, FilePosition, Fingerprint, Positions, FINGERPRINT_BYTES, RETAIN_MS};

use crate::chunk::{now_ms, ChunkSender};
use crate::decompress::{decompress, Compression};
use crate::error::ConnectorError;
use parking::Parked;

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
    /// While more than `keep_open` files are open, a followed file that has not grown
    /// for `park_after` is closed (parked) and opened again when its size or
    /// modification time changes, so a pattern matching many quiet files holds few file
    /// descriptors.
    pub park_after: Duration,
    /// Files kept open however quiet (see `park_after`).
    pub keep_open: usize,
}

/// A file being read, known by its identity whatever its path.
#[derive(Debug)]
struct Tracked {
    file: File,
    id: FileId,
    /// Origin of its chunks and key of their acknowledgements: the path it had when it
    /// was opened (it keeps it when renamed).
    key: String,
    /// Its path now.
    path: PathBuf,
    /// Whether the input's patterns match it now; a file they no longer match (rotated
    /// away, deleted) is read to its end, then closed.
    matched: bool,
    /// Bytes handed over so far.
    offset: u64,
    /// Its size at the last read: a whole file waits for it to settle, and a parked
    /// file is reopened when its size differs from it.
    last_len: u64,
    whole: bool,
    done: bool,
    /// When it last grew, or stopped being matched: a file no longer matched is closed
    /// once this is [`DRAIN_AFTER`] ago.
    last_growth: Instant,
    /// The fingerprint of its first bytes, as last read.
    fingerprint: Fingerprint,
    /// Skipping the rest of a line longer than a chunk (its start was handed over).
    skipping_line: bool,
    /// The file's header lines, handed over first when reading resumes past them (see
    /// [`header_lines`]).
    preamble: Option<Bytes>,
}

/// Most bytes of header lines handed over again when a file is resumed.
const MAX_PREAMBLE: usize = 64 * 1024;

/// How a Zeek TSV log begins.
const ZEEK_HEADER: &[u8] = b"#separator";

/// The header lines (`#...`) a Zeek TSV log begins with, when reading resumes after
/// them: they name its separator and fields, and the parser, which remembers them per
/// file, and format recognition need them again after a restart. (Other files' `#`
/// lines are records.) They are handed over as a chunk that ends at the resume offset,
/// so its acknowledgement moves nothing.
fn header_lines(file: &File, offset: u64, path: &Path) -> std::io::Result<Option<Bytes>> {
    let n = usize::try_from(offset).map_or(MAX_PREAMBLE, |o| o.min(MAX_PREAMBLE));
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, 0)?;
    let mut end = 0;
    while buf.get(end) == Some(&b'#') {
        match memchr::memchr(b'\n', &buf[end..]) {
            Some(i) => end += i + 1,
            None => break,
        }
    }
    if buf.get(end) == Some(&b'#') && end + 1 < buf.len() {
        tracing::warn!(
            path = %path.display(),
            "header lines longer than {MAX_PREAMBLE} bytes: only those within are handed over again"
        );
    }
    buf.truncate(end);
    Ok((end > 0).then(|| Bytes::from(buf)))
}

fn is_whole_file(path: &Path, head: &[u8]) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".evtx")
        || name.ends_with(".gz")
        || name.ends_with(".zst")
        || head.starts_with(b"ElfFile\0")
        || Compression::sniff(head) != Compression::None
}

/// A file the patterns match, as listed.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    path: PathBuf,
    id: FileId,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// What `path` is now, if it is a file.
fn listed(path: PathBuf) -> Option<Listed> {
    let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    Some(Listed {
        id: FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        },
        len: meta.len(),
        modified: meta.modified().ok(),
        path,
    })
}

/// The files the patterns match now, in path order.
fn expand(patterns: &[String]) -> Vec<Listed> {
    let mut out = Vec::new();
    for pattern in patterns {
        match glob::glob(pattern) {
            Ok(paths) => out.extend(paths.flatten().filter_map(listed)),
            Err(e) => tracing::warn!(%pattern, error = %e, "bad file glob"),
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// The first [`FINGERPRINT_BYTES`] bytes of `file` (fewer when it is shorter).
fn head(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let n = usize::try_from(len).map_or(FINGERPRINT_BYTES, |l| l.min(FINGERPRINT_BYTES));
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Opens the file at `path` where its saved position says (see [`Positions::resume`]).
fn open(path: &Path, positions: &Positions) -> std::io::Result<Tracked> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    // The identity of what was opened, which may differ from what was listed if the
    // path changed in between.
    let id = FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let head = head(&file, meta.len())?;
    let whole = is_whole_file(path, head.get(..8).unwrap_or(&head));
    let key = path.to_string_lossy().to_string();
    let offset = positions.resume(&key, id, meta.len(), &head);
    let resumed = (|| {
        // Resumed in the middle of a line (the rest of one longer than a chunk, being
        // skipped when the process stopped): that rest is not a record either.
        let skipping = !whole && offset > 0 && !follows_newline(&file, offset)?;
        let preamble = if !whole && offset > 0 && head.starts_with(ZEEK_HEADER) {
            header_lines(&file, offset, path)?
        } else {
            None
        };
        Ok((skipping, preamble))
    })();
    let (skipping_line, preamble) = match resumed {
        Ok(r) => r,
        Err(e) => {
            positions.closed(id, false);
            return Err(e);
        }
    };
    Ok(Tracked {
        file,
        id,
        key,
        path: path.to_path_buf(),
        matched: true,
        offset,
        last_len: u64::MAX,
        whole,
        // A whole file acknowledged to its end before a restart is not read again.
        done: whole && meta.len() > 0 && offset >= meta.len(),
        last_growth: Instant::now(),
        fingerprint: Fingerprint::of(&head),
        skipping_line,
        preamble,
    })
}

/// Whether the byte of `file` before `offset` is a newline.
fn follows_newline(file: &File, offset: u64) -> std::io::Result<bool> {
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset - 1)?;
    Ok(byte[0] == b'\n')
}

/// Starts `t` over from its first byte when the file was cut (copytruncate) or
/// rewritten in place since the last read, and brings its fingerprint up to date.
fn check_rewritten(t: &mut Tracked, len: u64) -> std::io::Result<()> {
    let head = head(&t.file, len)?;
    if len < t.offset || !t.fingerprint.matches(&head) {
        t.offset = 0;
        t.skipping_line = false;
    }
    // The same first bytes, or more of them as the file grows.
    t.fingerprint = Fingerprint::of(&head);
    Ok(())
}

/// Reads from `t.offset` and returns complete lines (and, with `flush`, the last
/// unterminated line once the end of the file is reached).
fn read_lines(t: &mut Tracked, flush: bool) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let len = t.file.metadata()?.len();
    check_rewritten(t, len)?;
    t.last_len = len;
    loop {
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
        if buf.is_empty() {
            return Ok(None);
        }
        if t.skipping_line {
            // The rest of a line longer than a chunk: its start went out to be
            // dead-lettered; this part is not a record of its own.
            match memchr::memchr(b'\n', &buf) {
                Some(i) => {
                    t.offset += i as u64 + 1;
                    t.skipping_line = false;
                    continue;
                }
                None => {
                    // One chunk per call, so a huge line does not hold the worker.
                    t.offset += buf.len() as u64;
                    return Ok(None);
                }
            }
        }
        // The last, unterminated line is handed over only at the end of the file.
        let at_end = t.offset + buf.len() as u64 >= len;
        let end = if flush && at_end {
            buf.len()
        } else {
            memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1)
        };
        if end == 0 {
            // A single line longer than a chunk is handed over as it is (the parser's
            // size limit dead-letters it) and the rest of it skipped; otherwise wait
            // for its newline.
            if buf.len() < READ_CHUNK {
                return Ok(None);
            }
            let start = t.offset;
            t.offset += buf.len() as u64;
            t.skipping_line = true;
            return Ok(Some((start, buf)));
        }
        buf.truncate(end);
        let start = t.offset;
        t.offset += end as u64;
        return Ok(Some((start, buf)));
    }
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
    t.fingerprint = Fingerprint::of(raw.get(..FINGERPRINT_BYTES).unwrap_or(&raw));
    let compression = Compression::sniff(&raw);
    if compression == Compression::None {
        return Ok(Some(raw));
    }
    let bytes = decompress(&raw, compression, MAX_WHOLE_FILE)?;
    Ok(Some(bytes))
}

/// How long a file the patterns no longer match is read after it last grew (or stopped
/// being matched) before it is closed: time for its writer to reopen the new file.
const DRAIN_AFTER: Duration = Duration::from_secs(5);

/// Largest piece of a decompressed whole file handed over as one chunk.
const WHOLE_PIECE: usize = 64 * 1024 * 1024;

/// Splits decompressed whole-file content into chunks without copying it: EVTX stays
/// one piece, text is cut at newlines into pieces of at most [`WHOLE_PIECE`] bytes.
fn whole_pieces(bytes: Bytes) -> Vec<Bytes> {
    if bytes.starts_with(b"ElfFile\0") || bytes.len() <= WHOLE_PIECE {
        return vec![bytes];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let rest = &bytes[start..];
        let cut = if rest.len() <= WHOLE_PIECE {
            rest.len()
        } else {
            memchr::memrchr(b'\n', &rest[..WHOLE_PIECE]).map_or(WHOLE_PIECE, |i| i + 1)
        };
        out.push(bytes.slice(start..start + cut));
        start += cut;
    }
    out
}

/// Hands over what is new in one file; returns whether anything was sent, or None when
/// the pipeline is gone.
async fn pump(
    t: &mut Tracked,
    flush: bool,
    input: &FileInput,
    positions: &Positions,
    sink: &ChunkSender,
    cancel: &CancellationToken,
) -> Option<bool> {
    let mut sent = false;
    if let Some(header) = t.preamble.take() {
        // Registered as ending where reading resumes: its acknowledgement, in order with
        // the others, moves nothing.
        positions.sent(&t.key, t.id, t.fingerprint, 0, t.offset);
        let chunk = RawChunk {
            source: input.name.clone(),
            origin: t.key.clone(),
            tenant: input.tenant.clone(),
            bytes: header,
            position: 0,
            received_ms: now_ms(),
        };
        if sink.send(chunk).await.is_err() {
            return None;
        }
        sent = true;
    }
    while !cancel.is_cancelled() {
        let pieces: Vec<(u64, Bytes)> = if t.whole {
            match read_whole(t) {
                Ok(Some(bytes)) => {
                    // Pieces are numbered; only the last one moves the saved position
                    // (to the end of the file), once it is acknowledged.
                    let pieces = whole_pieces(Bytes::from(bytes));
                    let last = pieces.len().saturating_sub(1) as u64;
                    positions.sent(&t.key, t.id, t.fingerprint, last, t.offset);
                    pieces
                        .into_iter()
                        .enumerate()
                        .map(|(i, b)| (i as u64, b))
                        .collect()
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(path = %t.path.display(), error = %e, "input file cannot be read whole; skipped");
                    t.done = true;
                    break;
                }
            }
        } else {
            match read_lines(t, flush) {
                Ok(Some((start, bytes))) => {
                    positions.sent(&t.key, t.id, t.fingerprint, start, t.offset);
                    vec![(start, Bytes::from(bytes))]
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), error = %e, "reading input file failed");
                    break;
                }
            }
        };
        for (position, bytes) in pieces {
            let chunk = RawChunk {
                source: input.name.clone(),
                origin: t.key.clone(),
                tenant: input.tenant.clone(),
                bytes,
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

/// Brings the open files in line with what the patterns match now: a file found at a
/// new path (renamed by rotation within the patterns) is the same file, read on from
/// where it was; a file not open yet is opened; an open file no longer matched is
/// marked to be read to its end and closed.
fn refresh(
    files: &mut Vec<Tracked>,
    parked: &mut HashMap<FileId, Parked>,
    input: &FileInput,
    positions: &Positions,
) {
    let before: Vec<bool> = files.iter().map(|t| t.matched).collect();
    for t in files.iter_mut() {
        t.matched = false;
    }
    let mut still_parked = HashMap::new();
    for Listed {
        path,
        id,
        len,
        modified,
    } in expand(&input.patterns)
    {
        if let Some(t) = files.iter_mut().find(|t| t.id == id) {
            t.matched = true;
            t.path = path;
            continue;
        }
        if let Some(p) = parked.remove(&id) {
            if p.unchanged(len, modified) {
                still_parked.insert(id, p.seen_at(path));
                continue;
            }
            if p.finished_whole() {
                // A whole file read to its end changed, or another file took its inode:
                // opened as any file is, its saved position and first bytes telling.
                positions.closed(id, false);
            } else {
                match parking::unpark(&path, id, p, true) {
                    Ok(t) => files.push(t),
                    Err((p, e)) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot reopen input file");
                        still_parked.insert(id, p);
                    }
                }
                continue;
            }
        }
        match open(&path, positions) {
            // Replaced between listing and opening by a file already open: keep that one.
            Ok(t) if files.iter().any(|f| f.id == t.id) => positions.closed(t.id, false),
            Ok(t) => files.push(t),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open input file");
            }
        }
    }
    parking::settle_unmatched(parked, files, positions);
    *parked = still_parked;
    // A file that just stopped being matched gets the whole drain time from now on.
    for (t, was) in files.iter_mut().zip(before) {
        if was && !t.matched {
            t.last_growth = Instant::now();
        }
    }
    // Files no longer matched first: the rest of a rotated file comes before the file
    // that took its place.
    files.sort_by(|a, b| (a.matched, &a.path).cmp(&(b.matched, &b.path)));
}

/// Follows (or reads once) the files of `input` until cancelled (or, when not
/// following, until every file was read), sending chunks to `sink`.
pub async fn run(
    input: FileInput,
    positions: Arc<Positions>,
    sink: ChunkSender,
    cancel: CancellationToken,
) -> Result<(), ConnectorError> {
    let mut files: Vec<Tracked> = Vec::new();
    let mut parked: HashMap<FileId, Parked> = HashMap::new();
    while !cancel.is_cancelled() {
        refresh(&mut files, &mut parked, &input, &positions);
        let mut sent_any = false;
        for t in &mut files {
            // A file no longer matched hands over its unterminated last line when it
            // is closed; read once, every file does at its end.
            let closing = !t.matched && t.last_growth.elapsed() >= DRAIN_AFTER;
            let flush = !input.follow || closing;
            match pump(t, flush, &input, &positions, &sink, &cancel).await {
                None => return Ok(()),
                Some(true) => {
                    t.last_growth = Instant::now();
                    sent_any = true;
                }
                Some(false) => {}
            }
        }
        files.retain(|t| {
            let keep = t.matched || t.last_growth.elapsed() < DRAIN_AFTER;
            if !keep {
                let deleted = t.file.metadata().map_or(true, |m| m.nlink() == 0);
                positions.closed(t.id, deleted);
            }
            keep
        });
        if input.follow {
            let crowded = files.len() > input.keep_open;
            parking::park_quiet(&mut files, &mut parked, crowded.then_some(input.park_after));
        }
        if !input.follow {
            let all_done = files.iter().all(|t| {
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
