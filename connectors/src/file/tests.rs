use std::io::Write;

use vedette_core::traits::Source;

use super::*;
use crate::chunk::{channel, ChannelSource};

fn input(dir: &Path, follow: bool) -> FileInput {
    FileInput {
        name: "file-0".into(),
        patterns: vec![format!("{}/*.log", dir.display())],
        follow,
        tenant: "t".into(),
        poll: Duration::from_millis(20),
        park_after: Duration::from_secs(60),
        keep_open: 64,
    }
}

async fn next(source: &mut ChannelSource) -> RawChunk {
    match tokio::time::timeout(Duration::from_secs(5), source.next_chunk()).await {
        Ok(Ok(Some(chunk))) => chunk,
        other => panic!("no chunk: {other:?}"),
    }
}

/// A file input running in the background, as `vedette run` runs one.
struct Running {
    positions: Arc<Positions>,
    source: ChannelSource,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ConnectorError>>,
}

impl Running {
    /// Starts `input` with the positions saved at `positions_path`.
    fn start(input: FileInput, positions_path: &Path) -> Self {
        let positions = Arc::new(Positions::load(positions_path).unwrap_or_else(|e| panic!("{e}")));
        let (tx, source) = channel(16);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(input, positions.clone(), tx, cancel.clone()));
        Self {
            positions,
            source,
            cancel,
            task,
        }
    }

    /// Stops it, as a shutdown does.
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Runs `input` until its first chunk, acknowledges that chunk and stops: the life of
/// the service before a restart.
async fn first_chunk_acknowledged(input: FileInput, positions_path: &Path) -> RawChunk {
    let mut running = Running::start(input, positions_path);
    let c = next(&mut running.source).await;
    running
        .positions
        .ack(&c.origin, c.position)
        .unwrap_or_else(|e| panic!("{e}"));
    running.stop().await;
    c
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{e}"));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn follows_growth_rotation_and_resumes_from_acknowledged_positions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let log = logs.join("app.log");
    let positions_path = dir.path().join("positions.json");
    append(&log, "one\ntwo\npart");

    let mut running = Running::start(input(&logs, true), &positions_path);
    let (positions, source) = (running.positions.clone(), &mut running.source);

    let first = next(source).await;
    assert_eq!(
        &first.bytes[..],
        b"one\ntwo\n",
        "a partial line waits for its newline"
    );
    positions
        .ack(&first.origin, first.position)
        .unwrap_or_else(|e| panic!("{e}"));

    append(&log, "ial\nthree\n");
    let second = next(source).await;
    assert_eq!(&second.bytes[..], b"partial\nthree\n");
    assert_eq!(second.position, 8);

    // Rotation: the rest of the old file is read, then the new one from its start; what
    // the writer still appends to the old file before reopening is read too.
    append(&log, "four\n");
    let rotated = logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap_or_else(|e| panic!("{e}"));
    append(&log, "new-one\n");
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&rotated, "late\n");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend_from_slice(&next(source).await.bytes);
    }
    let mut lines: Vec<&str> = std::str::from_utf8(&seen)
        .unwrap_or_default()
        .lines()
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, ["four", "late", "new-one"]);
    running.stop().await;

    // Only the first chunk was acknowledged: a restart resumes after it.
    let reloaded = Arc::new(Positions::load(&positions_path).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(reloaded.get(&first.origin).map(|p| p.offset), Some(8));
}

#[tokio::test]
async fn a_restart_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("a.log");
    let positions_path = dir.path().join("positions.json");
    append(&log, "1\n2\n");
    first_chunk_acknowledged(input(dir.path(), true), &positions_path).await;
    append(&log, "3\n");
    let mut running = Running::start(input(dir.path(), true), &positions_path);
    let c = next(&mut running.source).await;
    assert_eq!(&c.bytes[..], b"3\n");
    assert_eq!(c.position, 4);
    running.stop().await;
}

/// Reads the files of `dir` once with the positions at `positions_path`; returns
/// every chunk.
async fn read_once(dir: &Path, positions_path: &Path) -> Vec<RawChunk> {
    let positions = Arc::new(Positions::load(positions_path).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(64);
    run(input(dir, false), positions, tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut chunks = Vec::new();
    while let Ok(Some(c)) = source.next_chunk().await {
        chunks.push(c);
    }
    chunks
}

#[tokio::test]
async fn read_once_ends_after_the_files_and_truncation_restarts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    append(&dir.path().join("x.log"), "a\nlast line without newline");
    let chunks = read_once(dir.path(), &dir.path().join("p.json")).await;
    assert_eq!(text(&chunks), "a\nlast line without newline");
}

#[tokio::test]
async fn read_once_splits_long_files_only_at_newlines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let line = "x".repeat(999) + "\n";
    let text = line.repeat(5000); // 5 MB: more than one read
    append(&dir.path().join("big.log"), &text);
    let mut total = 0;
    for c in read_once(dir.path(), &dir.path().join("p.json")).await {
        assert!(c.bytes.ends_with(b"\n"), "a chunk ends mid-line");
        total += c.bytes.len();
    }
    assert_eq!(total, text.len());
}

#[tokio::test]
async fn compressed_files_are_handed_over_whole_and_decompressed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"a\":1}\n{\"a\":2}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("cloudtrail.log");
    std::fs::write(&path, gz.finish().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut running = Running::start(input(dir.path(), true), &dir.path().join("p.json"));
    let c = next(&mut running.source).await;
    assert_eq!(&c.bytes[..], b"{\"a\":1}\n{\"a\":2}\n");
    // Read to its end, it holds no descriptor any more.
    until_closed(&path, "a whole file read to its end").await;
    running.stop().await;
}

/// Every chunk that arrives within `wait`, joined.
async fn drain(source: &mut ChannelSource, wait: Duration) -> Vec<RawChunk> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(wait, source.next_chunk()).await {
        out.push(chunk);
    }
    out
}

fn text(chunks: &[RawChunk]) -> String {
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        .collect()
}

#[tokio::test]
async fn a_file_renamed_within_the_pattern_is_read_on_never_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let (log, rotated) = (logs.join("app.log"), logs.join("app.log.1"));
    let positions_path = dir.path().join("positions.json");
    let glob = FileInput {
        patterns: vec![format!("{}/app.log*", logs.display())],
        ..input(&logs, true)
    };
    append(&log, "one\ntwo\n");
    {
        let mut running = Running::start(glob.clone(), &positions_path);
        let (positions, source) = (running.positions.clone(), &mut running.source);
        let first = next(source).await;
        assert_eq!(&first.bytes[..], b"one\ntwo\n");
        positions
            .ack(&first.origin, first.position)
            .unwrap_or_else(|e| panic!("{e}"));
        // Rotation: app.log becomes app.log.1 (still matched), a new app.log starts.
        std::fs::rename(&log, &rotated).unwrap_or_else(|e| panic!("{e}"));
        append(&rotated, "three\n");
        append(&log, "fresh\n");
        let chunks = drain(source, Duration::from_millis(500)).await;
        let mut lines: Vec<String> = text(&chunks).lines().map(str::to_string).collect();
        lines.sort_unstable();
        assert_eq!(lines, ["fresh", "three"], "nothing read twice");
        positions
            .ack_all(chunks.iter().map(|c| (c.origin.as_str(), c.position)))
            .unwrap_or_else(|e| panic!("{e}"));
        running.stop().await;
    }
    // After a restart the rotated file is found under its new name by its identity.
    append(&rotated, "four\n");
    let mut running = Running::start(glob, &positions_path);
    let chunks = drain(&mut running.source, Duration::from_millis(500)).await;
    assert_eq!(text(&chunks), "four\n");
    running.stop().await;
}

#[tokio::test]
async fn a_file_cut_while_stopped_or_rewritten_while_read_starts_over() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("a.log");
    let positions_path = dir.path().join("positions.json");
    append(&log, "a long first line\nand a second one\n");
    first_chunk_acknowledged(input(dir.path(), true), &positions_path).await;
    // Cut and written again while stopped (copytruncate): shorter than the position.
    std::fs::write(&log, "new\n").unwrap_or_else(|e| panic!("{e}"));
    let mut running = Running::start(input(dir.path(), true), &positions_path);
    let c = next(&mut running.source).await;
    assert_eq!((&c.bytes[..], c.position), (&b"new\n"[..], 0));
    // Rewritten in place while read, and already longer than before by the next poll:
    // the first bytes differ, so it is read from its start.
    std::fs::write(&log, "rewritten with more text than before\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let c = next(&mut running.source).await;
    assert_eq!(
        (&c.bytes[..], c.position),
        (&b"rewritten with more text than before\n"[..], 0)
    );
    running.stop().await;
}

#[tokio::test]
async fn the_rest_of_a_line_longer_than_a_chunk_is_not_a_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let long = "x".repeat(READ_CHUNK + 1000);
    append(&dir.path().join("big.log"), &format!("{long}\nnext\n"));
    let chunks = read_once(dir.path(), &dir.path().join("p.json")).await;
    let sizes: Vec<usize> = chunks.iter().map(|c| c.bytes.len()).collect();
    assert_eq!(
        sizes,
        [READ_CHUNK, 5],
        "the start of the long line, then `next`"
    );
    assert_eq!(&chunks[1].bytes[..], b"next\n");
    assert_eq!(chunks[1].position, (READ_CHUNK + 1001) as u64);
}

#[tokio::test]
async fn resumed_in_the_middle_of_a_line_its_rest_is_not_a_record() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("a.log");
    let positions_path = dir.path().join("p.json");
    let content = b"the start of a long line, cut\nnext\n";
    std::fs::write(&log, content).unwrap_or_else(|e| panic!("{e}"));
    let meta = std::fs::metadata(&log).unwrap_or_else(|e| panic!("{e}"));
    let id = FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let key = log.to_string_lossy().to_string();
    {
        // Saved in the middle of the first line, as when a line longer than a chunk
        // was being skipped.
        let positions = Positions::load(&positions_path).unwrap_or_else(|e| panic!("{e}"));
        positions.sent(&key, id, Fingerprint::of(content), 0, 10);
        positions.ack(&key, 0).unwrap_or_else(|e| panic!("{e}"));
    }
    let chunks = read_once(dir.path(), &positions_path).await;
    let got: Vec<(&[u8], u64)> = chunks.iter().map(|c| (&c.bytes[..], c.position)).collect();
    assert_eq!(got, [(&b"next\n"[..], 30)]);
}

#[tokio::test]
async fn a_resumed_file_hands_its_header_lines_over_again_first() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("conn.log");
    let positions_path = dir.path().join("p.json");
    let header = "#separator \\x09\n#fields\tts\tuid\n";
    append(&log, &format!("{header}1\ta\n"));
    first_chunk_acknowledged(input(dir.path(), true), &positions_path).await;
    append(&log, "2\tb\n");
    let mut running = Running::start(input(dir.path(), true), &positions_path);
    let first = next(&mut running.source).await;
    assert_eq!((&first.bytes[..], first.position), (header.as_bytes(), 0));
    let second = next(&mut running.source).await;
    assert_eq!(&second.bytes[..], b"2\tb\n");
    // Acknowledging the header lines moves nothing back.
    let positions = running.positions.clone();
    positions
        .ack_all([
            (first.origin.as_str(), 0),
            (second.origin.as_str(), second.position),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    let end = (header.len() + 8) as u64;
    assert_eq!(positions.get(&first.origin).map(|p| p.offset), Some(end));
    running.stop().await;
}

/// Whether this process holds `path` open.
fn holds_open(path: &Path) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        })
        .unwrap_or(false)
}

/// Waits until this process no longer holds `path` open; `what` names the file in
/// the failure.
async fn until_closed(path: &Path, what: &str) {
    let path = path.canonicalize().unwrap_or_else(|e| panic!("{e}"));
    let closed = async {
        while holds_open(&path) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .unwrap_or_else(|_| panic!("{what} stays open"));
}

/// An input following `pattern` that parks every file quiet for 100 ms.
fn parking(logs: &Path, pattern: String) -> FileInput {
    FileInput {
        patterns: vec![pattern],
        park_after: Duration::from_millis(100),
        keep_open: 0,
        ..input(logs, true)
    }
}

#[tokio::test]
async fn a_quiet_file_is_closed_and_read_on_when_it_grows_or_moves() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let log = logs.join("app.log");
    let quick = parking(&logs, format!("{}/app.log*", logs.display()));
    append(&log, "one\n");
    let mut running = Running::start(quick, &dir.path().join("p.json"));
    let source = &mut running.source;
    assert_eq!(&next(source).await.bytes[..], b"one\n");
    until_closed(&log, "a quiet file").await;
    append(&log, "two\n");
    let c = next(source).await;
    assert_eq!((&c.bytes[..], c.position), (&b"two\n"[..], 4));
    // Parked again, then renamed within the pattern and grown: still the same file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = log.with_file_name("app.log.1");
    std::fs::rename(&log, &rotated).unwrap_or_else(|e| panic!("{e}"));
    append(&rotated, "three\n");
    let c = next(source).await;
    assert_eq!((&c.bytes[..], c.position), (&b"three\n"[..], 8));
    running.stop().await;
}

#[tokio::test]
async fn a_parked_file_renamed_away_is_still_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let log = logs.join("app.log");
    let quick = parking(&logs, log.to_string_lossy().to_string());
    append(&log, "one\n");
    let mut running = Running::start(quick, &dir.path().join("p.json"));
    let source = &mut running.source;
    assert_eq!(&next(source).await.bytes[..], b"one\n");
    until_closed(&log, "a quiet file").await;
    // Rotated out of the pattern while parked; its writer appends once more, with no
    // newline at the end, before it reopens the new file.
    let rotated = logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap_or_else(|e| panic!("{e}"));
    append(&rotated, "late\nlast");
    append(&log, "new\n");
    // The unterminated last line comes when the rotated file is closed, about 5 s
    // after it last grew.
    let mut got = String::new();
    while !got.contains("last") || !got.contains("new") {
        match tokio::time::timeout(Duration::from_secs(15), source.next_chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c.bytes)),
            other => panic!("no chunk: {other:?}; so far {got:?}"),
        }
    }
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["last", "late", "new"]);
    running.stop().await;
}
