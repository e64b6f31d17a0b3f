#![no_main]
//! Fuzzes the `json` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(vedette_ingest::Format::Json, data));
