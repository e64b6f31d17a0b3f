#![no_main]
//! Fuzzes the `fortigate` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(
    vedette_ingest::Format::FortiGate,
    data
));
