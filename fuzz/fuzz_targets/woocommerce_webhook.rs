//! Fuzz target `woocommerce_webhook`: arbitrary bytes through its parser (tillflow_e2e::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tillflow_e2e::fuzz::run("woocommerce_webhook", data));
