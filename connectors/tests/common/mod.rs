//! Helpers shared by the connector integration tests.

pub mod bus_suite;
