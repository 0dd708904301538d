//! Fuzz target `envelope`: see `carimbo_tests::fuzzing::envelope`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| carimbo_tests::fuzzing::envelope(data));
