//! Helpers shared by the store integration tests.

pub mod doc_queries;
pub mod store_suite;
