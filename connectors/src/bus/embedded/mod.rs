//! The embedded durable log: Vedette's bus on one machine.
//!
//! # Layout
//!
//! ```text
//!  <root>/topics/<topic>/<partition>/<base offset, 20 digits>.log   segments
//!  <root>/groups/<group>.json, <group>.journal                        commits
//! ```
//!
//! Topics and partitions are Kafka's: a record has an offset, consecutive within its
//! partition from 0; a segment file holds records from its base offset on; the last
//! segment of a partition takes appends and is sealed (fsynced) once it passes
//! `segment_bytes`.
//!
//! # Record format (little-endian)
//!
//! ```text
//!  u32 body length │ u32 CRC32C of the body │ body:
//!    u8 version (1-3) │ u64 offset │ i64 append time ms │ u16 schema version │
//!    i64 ingest time ms │ u16 len + tenant │ u16 len + source │ u16 len + dataset │
//!    payload: one Arrow IPC stream (schema + one record batch), stored as the
//!    version says (`payload`, chosen by `bus.embedded.compression`): 2, one LZ4
//!    block, its length prepended (u32; the default); 3, one zstd frame; 1, as given
//!    (also older records whose Arrow buffers are LZ4-framed)
//! ```
//!
//! # Invariants
//!
//! - An append is acknowledged only once durable under the policy: fsync before the
//!   return ([`SyncPolicy::EveryAppend`]), or after the next periodic fsync
//!   ([`SyncPolicy::Interval`]; the append's future waits for it).
//! - A record is served to consumers once written whole (under its partition's lock,
//!   so every offset below the partition's next is complete), before its fsync, as
//!   Kafka serves records before they reach the disk: a consumer's latency does not
//!   wait on the disk, only the producer's acknowledgement does. A process crash loses
//!   nothing written. An OS crash or power cut may take back records no sender was
//!   told were stored; a consumer may have processed them (its outputs stay; the
//!   senders send them again: at-least-once). A partition serves at most 2^20 records
//!   past its last fsync, and a log opened without the mark its clean close leaves
//!   starts every partition's next records 2^20 offsets past its end (a fence), so no
//!   record ever takes the offset of one that was served (stores remember what they
//!   stored by offset). The last segment of each partition is synced at open before
//!   any of it counts as durable; a partition whose fsync failed takes no more appends
//!   until the log is opened again. Group commits past a partition's end (a damaged
//!   tail cut at open) are brought back to it before anything is appended.
//! - Recovery at open walks the last segment of each partition record by record,
//!   checking length, CRC and offset; at the first torn or damaged record the file is
//!   cut there (counted in `recovered_truncated_bytes`). Sealed segments are walked by
//!   their framing only; a record damaged in them is detected by its CRC when read,
//!   skipped and counted (`damaged_records`), never served.
//! - A group's commit is durable when `commit` returns (an entry appended to the
//!   group's journal and synced; the journal is folded into a snapshot replaced
//!   atomically every 1024 commits, see `commit_journal`). A group resumes at its
//!   commit, or at the oldest record held if it never committed.
//! - Retention deletes whole sealed segments, oldest first: those past `max_age_ms` or
//!   beyond `max_bytes` once every group that reads the topic committed past them,
//!   and those past `hard_max_age_ms` regardless (records a group missed are counted in
//!   `retention_unread_records`). The active segment is never deleted.
//! - Batches just appended are also kept in memory as the producer built them, within
//!   `recent_bytes`; a consumer reading a served record still held there takes the
//!   batch without reading or decoding it. A miss reads the segment: the cache changes
//!   cost, never what is served or when.
//! - Group membership lives in this process: members of a group on a topic share its
//!   partitions (partition p to the member at index p mod members); a join or leave
//!   rebalances, a revoked partition's commits are refused afterwards.
//!
//! # Limits
//!
//! A record body is at most 512 MiB (bigger batches are split by rows before
//! appending); names of topics and groups are 1 to 200 of `[A-Za-z0-9._-]`; one process
//! opens a log folder at a time (the data folder's lock guarantees it).

mod bus;
mod commit_journal;
mod groups;
mod log;
mod partition;
mod payload;
mod recent;
mod record;
mod segment;

pub use bus::{EmbeddedBus, EmbeddedConsumer};

/// Maps an I/O error to a [`vedette_core::CoreError`] saying what was being done.
fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> vedette_core::CoreError {
    let context = context.into();
    move |e| vedette_core::CoreError::io(context, e)
}
pub use log::{
    AppendPart, EmbeddedLog, LogCounters, LogOptions, StoredRecord, SyncPolicy, STALLED_AFTER,
};
pub use partition::Retention;
pub use payload::{compress_kept, PayloadCodec};
