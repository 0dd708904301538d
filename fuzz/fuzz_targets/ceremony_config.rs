//! Fuzz target `ceremony_config`: see `carimbo_tests::fuzzing::ceremony_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::ceremony_config(data));
