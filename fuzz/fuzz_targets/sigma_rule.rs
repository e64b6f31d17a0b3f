#![no_main]
//! Fuzzes the Sigma engine with arbitrary rule text: load, compile, detect, correlate.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vedette_detect::sigma::harness::run_rule_text(&String::from_utf8_lossy(data));
});
