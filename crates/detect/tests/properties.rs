//! Property tests: embed → detect over random sizes, keys and payloads,
//! and no panic on any size down to 1x1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use image::{DynamicImage, RgbImage};
use proptest::prelude::*;
use tattle_core::prng::KeyedStream;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::{EmbedOptions, MIN_SIDE};

/// Photo-like texture: smooth shading plus fine detail, from a seed.
fn texture(width: u32, height: u32, seed: u64) -> DynamicImage {
    let mut rng = KeyedStream::from_seed([seed as u8; 32]);
    let detail: Vec<u8> = (0..width * height).map(|_| rng.below(48) as u8).collect();
    let (fx, fy) = (0.02 + (seed % 7) as f32 * 0.01, 0.015 + (seed % 5) as f32 * 0.01);
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        let base = 110.0 + 70.0 * ((x as f32 * fx).sin() * (y as f32 * fy).cos());
        let v = (base as u8).saturating_add(detail[(y * width + x) as usize]);
        image::Rgb([v, v.saturating_sub(30), 255 - v / 2])
    }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn marks_survive_the_round_trip_at_any_supported_size(
        width in 256u32..1700,
        height in 256u32..1200,
        key in any::<[u8; 32]>(),
        payload in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let image = texture(width, height, seed);
        let key = Key::from_bytes(key);
        let marked = EmbedOptions::default().build(&key).unwrap().embed(&image, Payload::new(payload)).unwrap();
        prop_assert_eq!((marked.width(), marked.height()), (width, height));
        let found = DetectOptions::default().geometric_search(false).build(&key).unwrap().detect(&marked).unwrap();
        prop_assert_eq!(found.payload, Some(Payload::new(payload)), "{}x{}: {:?}", width, height, found);
    }

    #[test]
    fn tiny_and_narrow_images_give_errors_or_verdicts_never_panics(
        width in 1u32..300,
        height in 1u32..300,
        seed in any::<u64>(),
    ) {
        let image = texture(width, height, seed);
        let key = Key::from_bytes([seed as u8; 32]);
        let embedded = EmbedOptions::default().build(&key).unwrap().embed(&image, Payload::new(seed));
        if width < MIN_SIDE || height < MIN_SIDE {
            let message = embedded.unwrap_err().to_string();
            prop_assert!(message.contains("at least 128x128"), "{}", message);
        } else {
            prop_assert!(embedded.is_ok());
        }
        // Detection with the full search answers on anything, and an
        // unmarked image is never reported as marked.
        let found = DetectOptions::default().build(&key).unwrap().detect(&image).unwrap();
        prop_assert!(!found.detected, "{}x{}: {:?}", width, height, found);
    }
}
