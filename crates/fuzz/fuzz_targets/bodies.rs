//! libFuzzer entry point of the `bodies` target; the body is `tessera_fuzz::bodies::fuzz_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::bodies::fuzz_bodies(data));
