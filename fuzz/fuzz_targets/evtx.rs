#![no_main]
//! Fuzzes the `evtx` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(vedette_ingest::Format::Evtx, data));
