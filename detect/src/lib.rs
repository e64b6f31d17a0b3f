//! `vedette-detect`: detection over event batches: Sigma rules and correlations, YARA,
//! statistical baselines and alert dedup.
//!
//! Its one main trait is `vedette_core::traits::Detector`. The detectors arrive with the
//! Sigma and detection issues.
