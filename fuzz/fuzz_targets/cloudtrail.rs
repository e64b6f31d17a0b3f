#![no_main]
//! Fuzzes the `cloudtrail` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(
    vedette_ingest::Format::CloudTrail,
    data
));
