//! libFuzzer entry point of the `filter` target; the body is `tessera_fuzz::filter::fuzz_filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::filter::fuzz_filter(data));
