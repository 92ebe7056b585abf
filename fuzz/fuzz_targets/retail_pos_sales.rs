//! Fuzz target `retail_pos_sales`: arbitrary bytes through its parser (tillflow_e2e::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tillflow_e2e::fuzz::run("retail_pos_sales", data));
