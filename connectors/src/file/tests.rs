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
    }
}

async fn next(source: &mut ChannelSource) -> RawChunk {
    match tokio::time::timeout(Duration::from_secs(5), source.next_chunk()).await {
        Ok(Ok(Some(chunk))) => chunk,
        other => panic!("no chunk: {other:?}"),
    }
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

    let positions = Arc::new(Positions::load(&positions_path).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(16);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(
        input(&logs, true),
        positions.clone(),
        tx,
        cancel.clone(),
    ));

    let first = next(&mut source).await;
    assert_eq!(
        &first.bytes[..],
        b"one\ntwo\n",
        "a partial line waits for its newline"
    );
    positions
        .ack(&first.origin, first.position)
        .unwrap_or_else(|e| panic!("{e}"));

    append(&log, "ial\nthree\n");
    let second = next(&mut source).await;
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
        seen.extend_from_slice(&next(&mut source).await.bytes);
    }
    let mut lines: Vec<&str> = std::str::from_utf8(&seen)
        .unwrap_or_default()
        .lines()
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, ["four", "late", "new-one"]);
    cancel.cancel();
    let _ = task.await;

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
    {
        let positions =
            Arc::new(Positions::load(&positions_path).unwrap_or_else(|e| panic!("{e}")));
        let (tx, mut source) = channel(4);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            input(dir.path(), true),
            positions.clone(),
            tx,
            cancel.clone(),
        ));
        let c = next(&mut source).await;
        positions
            .ack(&c.origin, c.position)
            .unwrap_or_else(|e| panic!("{e}"));
        cancel.cancel();
        let _ = task.await;
    }
    append(&log, "3\n");
    let positions = Arc::new(Positions::load(&positions_path).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(input(dir.path(), true), positions, tx, cancel.clone()));
    let c = next(&mut source).await;
    assert_eq!(&c.bytes[..], b"3\n");
    assert_eq!(c.position, 4);
    cancel.cancel();
    let _ = task.await;
}

#[tokio::test]
async fn read_once_ends_after_the_files_and_truncation_restarts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    append(&dir.path().join("x.log"), "a\nlast line without newline");
    let positions =
        Arc::new(Positions::load(&dir.path().join("p.json")).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(4);
    let done = run(
        input(dir.path(), false),
        positions,
        tx,
        CancellationToken::new(),
    )
    .await;
    assert!(done.is_ok());
    let c = next(&mut source).await;
    assert_eq!(&c.bytes[..], b"a\nlast line without newline");
}

#[tokio::test]
async fn read_once_splits_long_files_only_at_newlines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let line = "x".repeat(999) + "\n";
    let text = line.repeat(5000); // 5 MB: more than one read
    append(&dir.path().join("big.log"), &text);
    let positions =
        Arc::new(Positions::load(&dir.path().join("p.json")).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(64);
    run(
        input(dir.path(), false),
        positions,
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut total = 0;
    while let Ok(Some(c)) = source.next_chunk().await {
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
    let positions =
        Arc::new(Positions::load(&dir.path().join("p.json")).unwrap_or_else(|e| panic!("{e}")));
    let (tx, mut source) = channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(input(dir.path(), true), positions, tx, cancel.clone()));
    let c = next(&mut source).await;
    assert_eq!(&c.bytes[..], b"{\"a\":1}\n{\"a\":2}\n");
    cancel.cancel();
    let _ = task.await;
}
