//! `vedette-ingest`: parsers and normalizers that turn raw bytes into Arrow event
//! batches of the schema in `vedette-core`.
//!
//! Its one main trait is `vedette_core::traits::Parser`; each input format gets one
//! file here. The parsers arrive with the ingest issue.
