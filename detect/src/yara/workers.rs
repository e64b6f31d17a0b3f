//! The scan threads of one [`super::YaraDetector`]: each owns a share of the rule set
//! and the scanners it built, kept from batch to batch (a yara-x scanner borrows its
//! rules, so only a thread that holds the rules for its whole life can keep one). A
//! batch's rows are cut into chunks, one job each; the threads take jobs from one
//! queue. The threads end when the detector is dropped.

use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;

use super::scan::{RuleHit, Scanners, Scanning};
use crate::error::DetectError;

/// One chunk of one batch to scan, and where to send the hits.
struct Job {
    records: RecordBatch,
    rows: Range<usize>,
    reply: Sender<Result<Vec<RuleHit>, String>>,
}

/// A pool of scan threads over one [`Scanning`].
pub(super) struct ScanWorkers {
    jobs: Mutex<Sender<Job>>,
    threads: usize,
}

impl ScanWorkers {
    /// Starts `threads` scan threads (at least one) over `scanning`.
    pub(super) fn start(scanning: Arc<Scanning>, threads: usize) -> Result<Self, DetectError> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let scanning = scanning.clone();
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("yara-scan-{i}"))
                .spawn(move || run(&scanning, &queue))
                .map_err(|e| DetectError::Yara(format!("cannot start a YARA scan thread: {e}")))?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
            threads,
        })
    }

    /// Threads of the pool.
    pub(super) fn threads(&self) -> usize {
        self.threads
    }

    /// Scans `chunks` of `records`, one job each, and returns every hit.
    pub(super) fn scan(
        &self,
        records: &RecordBatch,
        chunks: Vec<Range<usize>>,
    ) -> Result<Vec<RuleHit>, DetectError> {
        let (reply, replies) = mpsc::channel();
        let count = chunks.len();
        {
            let jobs = self
                .jobs
                .lock()
                .map_err(|_| DetectError::Yara("the YARA job queue is poisoned".into()))?;
            for rows in chunks {
                jobs.send(Job {
                    records: records.clone(),
                    rows,
                    reply: reply.clone(),
                })
                .map_err(|_| DetectError::Yara("the YARA scan threads have stopped".into()))?;
            }
        }
        drop(reply);
        let mut hits = Vec::new();
        for _ in 0..count {
            match replies.recv() {
                Ok(Ok(mut part)) => hits.append(&mut part),
                Ok(Err(why)) => return Err(DetectError::Yara(why)),
                Err(_) => {
                    return Err(DetectError::Yara(
                        "a YARA scan thread stopped before it answered".into(),
                    ))
                }
            }
        }
        Ok(hits)
    }
}

/// One scan thread: takes jobs until the pool is dropped. A scan that panics (a bug in
/// the engine) fails its batch only; the thread drops its scanners and goes on.
fn run(scanning: &Scanning, queue: &Mutex<Receiver<Job>>) {
    let mut scanners = Scanners::default();
    loop {
        let job = {
            let Ok(queue) = queue.lock() else {
                return;
            };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            scanning.scan_rows(&job.records, job.rows.clone(), &mut scanners)
        }));
        let answer = match outcome {
            Ok(hits) => Ok(hits),
            Err(_) => {
                scanners = Scanners::default();
                tracing::error!(rows = ?job.rows, "a YARA scan panicked; its batch fails");
                Err(format!(
                    "a YARA scan panicked on rows {}..{}",
                    job.rows.start, job.rows.end
                ))
            }
        };
        // The caller may have given up waiting: nothing to do then.
        let _ = job.reply.send(answer);
    }
}
