#![no_main]
//! Fuzzes the `windows_json` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(
    vedette_ingest::Format::WindowsJson,
    data
));
