//! Float (linear, scene-referred) images: marked in the perceptual encoding
//! of `tattle_core::plane::encode_linear`, written back linear, and traced
//! on the float image itself, through the OpenEXR codec, and on 8-bit
//! exports made by a standard view transform or a simple tone map.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::{DynamicImage, ImageFormat, Rgb, Rgb32FImage};
use tattle_core::plane::{decode_to_linear, display_rgb8, encode_linear};
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

/// The 3D sample frame as a linear HDR plate: sRGB decoded to linear and
/// exposed up by 2.5, so the sky and highlights go well past 1.0.
fn hdr_plate() -> DynamicImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/film3d_bbb_splash.png");
    let srgb = image::open(path).unwrap().to_rgb8();
    DynamicImage::ImageRgb32F(Rgb32FImage::from_fn(srgb.width(), srgb.height(), |x, y| {
        Rgb(srgb
            .get_pixel(x, y)
            .0
            .map(|v| 2.5 * decode_to_linear(f32::from(v) / 255.0)))
    }))
}

fn reinhard_srgb8(image: &DynamicImage) -> DynamicImage {
    let linear = image.to_rgb32f();
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(
        linear.width(),
        linear.height(),
        |x, y| {
            Rgb(linear
                .get_pixel(x, y)
                .0
                .map(|v| (255.0 * encode_linear(v / (1.0 + v))).round() as u8))
        },
    ))
}

#[test]
fn a_marked_hdr_plate_is_traced_on_itself_through_exr_and_on_8_bit_exports() {
    let key = Key::from_bytes([21; 32]);
    let payload = Payload::new(0x0e72_0000_0000_0001);
    let plate = hdr_plate();
    let brightest = plate
        .to_rgb32f()
        .pixels()
        .flat_map(|p| p.0)
        .fold(0.0f32, f32::max);
    assert!(brightest > 2.0, "the test plate should be HDR: {brightest}");
    let marked = EmbedOptions::default()
        .build(&key)
        .unwrap()
        .embed(&plate, payload)
        .unwrap();
    assert!(
        matches!(marked, DynamicImage::ImageRgb32F(_)),
        "float in, float out"
    );
    let detector = DetectOptions::default().build(&key).unwrap();

    let mut exr = Vec::new();
    marked
        .write_to(&mut std::io::Cursor::new(&mut exr), ImageFormat::OpenExr)
        .unwrap();
    let from_exr = image::load_from_memory_with_format(&exr, ImageFormat::OpenExr).unwrap();
    let view = DynamicImage::ImageRgb8(display_rgb8(&marked));
    let view_jpeg = (tattle_attacks::find("jpeg-75").unwrap().apply)(&view, 1).unwrap();
    let tone_mapped_jpeg =
        (tattle_attacks::find("jpeg-75").unwrap().apply)(&reinhard_srgb8(&marked), 1).unwrap();
    for (name, image) in [
        ("float", &marked),
        ("through OpenEXR", &from_exr),
        ("sRGB view, JPEG 75", &view_jpeg),
        ("Reinhard tone map, JPEG 75", &tone_mapped_jpeg),
    ] {
        let d = detector.detect(image).unwrap();
        assert_eq!(d.payload, Some(payload), "{name}: {d:?}");
    }
    // Another key reads nothing from the same exports.
    let other = DetectOptions::default()
        .build(&Key::from_bytes([22; 32]))
        .unwrap();
    assert!(!other.detect(&view_jpeg).unwrap().detected);
}
