//! libFuzzer entry point of the `ca_cert` target; the body is `tessera_fuzz::ca_cert::fuzz_ca_cert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::ca_cert::fuzz_ca_cert(data));
