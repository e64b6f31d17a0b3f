//! `vedette-detect`: detection over event batches: Sigma rules and correlations, YARA,
//! statistical baselines and alert dedup.
//!
//! Its one main trait is `vedette_core::traits::Detector`; [`sigma::SigmaDetector`]
//! implements it for a compiled Sigma rule set. What follows detection (dedup, entity
//! risk, silent sources) is stateful and lives in [`alerting`]; statistical baselines,
//! stateful too, in [`baseline`]. [`yara::YaraDetector`] is the second `Detector`: YARA
//! rules over event fields and the content decoded from them.

pub mod alerting;
pub mod baseline;
pub mod error;
mod field_values;
mod rule_files;
pub mod sigma;
pub mod yara;

pub use error::DetectError;
