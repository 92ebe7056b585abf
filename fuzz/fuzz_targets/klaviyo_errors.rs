//! Fuzz target `klaviyo_errors`: arbitrary bytes through its parser (tillflow_e2e::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tillflow_e2e::fuzz::run("klaviyo_errors", data));
