//! Fuzz target `csr`: see `carimbo_tests::fuzzing::csr`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::csr(data));
