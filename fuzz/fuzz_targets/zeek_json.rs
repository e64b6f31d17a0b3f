#![no_main]
//! Fuzzes the `zeek_json` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(
    vedette_ingest::Format::ZeekJson,
    data
));
