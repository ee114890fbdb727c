//! Arbitrary soft bits → Viterbi payload decoder; arbitrary text → key parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tattle_studio::fuzzing::decode_soft_bits(data));
