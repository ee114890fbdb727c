//! Arbitrary bytes → image decoder (with its limits) → full detection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tattle_studio::fuzzing::decode_and_detect(data));
