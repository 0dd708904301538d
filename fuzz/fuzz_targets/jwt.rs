//! Fuzz target `jwt`: see `carimbo_tests::fuzzing::jwt`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::jwt(data));
