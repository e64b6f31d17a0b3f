#![no_main]
//! Fuzzes the `zeek_tsv` parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vedette_fuzz::run(vedette_ingest::Format::ZeekTsv, data));
