//! libFuzzer entry point of the `policy` target; the body is `tessera_fuzz::policy::fuzz_policy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::policy::fuzz_policy(data));
