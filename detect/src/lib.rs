//! `vedette-detect`: detection over event batches: Sigma rules and correlations, YARA,
//! statistical baselines and alert dedup.
//!
//! Its one main trait is `vedette_core::traits::Detector`; [`sigma::SigmaDetector`]
//! implements it for a compiled Sigma rule set.

pub mod error;
pub mod sigma;

pub use error::DetectError;
