//! `vedette-connectors`: transports in and out of Vedette: syslog, HTTP, files, Kafka,
//! the embedded log and webhooks.
//!
//! Its main traits are `vedette_core::traits::Source` (transports in) and
//! `vedette_core::traits::Bus` (the embedded log and Kafka). The transports arrive with
//! the ingest and bus issues.
