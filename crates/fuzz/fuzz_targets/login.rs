//! libFuzzer entry point of the `login` target; the body is `tessera_fuzz::login::fuzz_login`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::login::fuzz_login(data));
