//! libFuzzer entry point of the `cookie` target; the body is `tessera_fuzz::cookie::fuzz_cookie`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::cookie::fuzz_cookie(data));
