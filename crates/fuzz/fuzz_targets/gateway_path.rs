//! libFuzzer entry point of the `gateway_path` target; the body is `tessera_fuzz::gateway_path::fuzz_gateway_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::gateway_path::fuzz_gateway_path(data));
