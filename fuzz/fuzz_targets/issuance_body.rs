//! Fuzz target `issuance_body`: see `carimbo_tests::fuzzing::issuance_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::issuance_body(data));
