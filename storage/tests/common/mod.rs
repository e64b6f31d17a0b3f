//! Helpers shared by the store integration tests.

pub mod store_suite;
