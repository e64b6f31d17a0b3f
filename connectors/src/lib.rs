//! `vedette-connectors`: transports in and out of Vedette: syslog (UDP, TCP, TLS), files
//! (read once or followed), stdin, the bus (the embedded log and Kafka, in [`bus`]), and
//! signed webhooks out to responders ([`webhook`]).
//!
//! Its main traits are `vedette_core::traits::Source` (transports in) and
//! `vedette_core::traits::Bus` (the log between stages). Transports never parse: they hand over chunks of
//! whole records with their origin and position, and a parser in `vedette-ingest` turns
//! them into events.
//!
//! ```text
//!  UDP datagrams ─┐
//!  TCP / TLS ─────┼─▶ framing (whole records) ─▶ RawChunk ─▶ ChunkSender ─▶ pipeline
//!  files, stdin ──┘                                                │
//!                       positions acknowledged back (files) ◀─────┘
//! ```
//!
//! Delivery: syslog over UDP/TCP/TLS cannot be replayed by the sender, so what is lost
//! in a crash before the batch is durable is lost (at-most-once on the wire; the
//! pipeline acknowledges only durable batches). Files are at-least-once: a followed
//! file's position is saved only once its chunk is acknowledged as durable.

pub mod bus;
pub mod chunk;
pub mod decompress;
mod error;
pub mod file;
mod framing;
pub mod stdin;
pub mod syslog;
pub mod tls;
pub mod webhook;

pub use chunk::{channel, ChannelSource, ChunkSender};
pub use error::ConnectorError;
