//! What the fuzz targets in `fuzz/` run, shared with the regression tests
//! that replay the inputs the fuzzers found (`fuzz/regressions/`), so the
//! normal test suite checks them without the fuzzer. Not a stable API.

use std::path::Path;

use tattle_core::code;
use tattle_detect::{DetectOptions, Key};

/// Decodes limits small enough that a fuzzer's inputs stay fast; the
/// production limit is exercised by its own tests.
const FUZZ_MAX_PIXELS: u64 = 1 << 20;

/// Decodes arbitrary bytes as an image and, if they are one, runs the full
/// detection (geometric search included) on it. Must never panic.
pub fn decode_and_detect(bytes: &[u8]) {
    let Ok((image, _)) = crate::files::decode_image_within(Path::new("fuzz-input"), bytes, FUZZ_MAX_PIXELS)
    else {
        return;
    };
    if let Ok(detector) = DetectOptions::default().build(&Key::from_bytes([7; 32])) {
        if let Ok(detection) = detector.detect(&image) {
            // An arbitrary image is unmarked: a detection would be a false accusation.
            assert!(
                !detection.detected,
                "fuzz input detected as marked: {detection:?}"
            );
        }
    }
}

/// Feeds arbitrary bytes, read as little-endian `f32` soft bits (NaN and
/// infinities included), to the Viterbi decoder, and as text to the key
/// file parser. Must never panic.
pub fn decode_soft_bits(bytes: &[u8]) {
    let soft: Vec<f32> = bytes
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(f32::from_le_bytes)
        .chain(std::iter::repeat(0.0))
        .take(code::CODED_BITS)
        .collect();
    let decoded = code::decode(&soft);
    if let Some(payload) = decoded.payload {
        // Whatever decodes must re-encode to the codeword it was read as.
        assert_eq!(code::encode(payload), decoded.codeword);
    }
    let _ = Key::from_file_text(&String::from_utf8_lossy(bytes));
}
