//! Fuzz target `lightspeed_sales`: arbitrary bytes through its parser (tillflow_e2e::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tillflow_e2e::fuzz::run("lightspeed_sales", data));
