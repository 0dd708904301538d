//! Fuzz target `ocsp_request`: see `carimbo_tests::fuzzing::ocsp_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::ocsp_request(data));
