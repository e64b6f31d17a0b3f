//! `vedette-ingest`: parsers and normalizers that turn raw bytes into Arrow event
//! batches of the schema in `vedette-core`.
//!
//! Its one main trait is `vedette_core::traits::Parser`: every format here implements
//! it. A record that cannot be parsed, or breaks a [`Limits`] bound, becomes a dead
//! letter with its reason; the rest of the input goes on.
//!
//! ```text
//!  bytes ─▶ framing (lines, octet counts, EVTX chunks)
//!        ─▶ format (recognized per record or named) ─▶ fields + common columns
//!        ─▶ EventBatchBuilder (Arrow)            └──▶ dead letters (reason, raw)
//! ```
//!
//! | format | dataset(s) |
//! |---|---|
//! | [`Format::Json`] | Windows shippers, `aws.cloudtrail`, `okta.system`, `gcp.audit`, `azure.activity`, `kubernetes.audit`, `suricata.eve`, `zeek.*`, `crowdstrike.fdr`, `aws.vpcflow`, `json` |
//! | [`Format::Evtx`] | `windows.*` |
//! | [`Format::Syslog`] and the line formats | `syslog`, `cef`, `leef`, `paloalto`, `fortigate`, `kv` |
//! | [`Format::Auditd`] | `auditd` |
//! | [`Format::ZeekTsv`] | `zeek.*` |

mod auditd;
mod cef;
mod flatten;
mod format;
pub mod json;
mod kv;
mod leef;
mod limits;
mod paloalto;
mod record;
pub mod syslog;
mod text;
mod timestamp;
mod windows;
mod zeek_tsv;

pub use auditd::AuditdParser;
pub use format::{detect_format, parser_for, Format, FORMATS};
pub use limits::Limits;
pub use windows::evtx_file::EvtxFileParser;
pub use zeek_tsv::ZeekTsvParser;
