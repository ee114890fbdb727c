//! Every format and sample layout tattle writes: marked, encoded, decoded,
//! and read back, with pixel type and alpha kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::{ColorType, DynamicImage};
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;
use tattle_studio::files;

fn source() -> DynamicImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/photo_kodim23.png");
    let mut rgba = image::open(path).unwrap().to_rgba16();
    // A varied alpha channel, so that keeping it is a real check.
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        p[3] = (((x * 131 + y * 71) % 65536) as u16) | 0x4000;
    }
    DynamicImage::ImageRgba16(rgba)
}

fn layouts(src: &DynamicImage) -> Vec<(&'static str, DynamicImage)> {
    vec![
        ("gray8", DynamicImage::ImageLuma8(src.to_luma8())),
        ("gray-alpha8", DynamicImage::ImageLumaA8(src.to_luma_alpha8())),
        ("rgb8", DynamicImage::ImageRgb8(src.to_rgb8())),
        ("rgba8", DynamicImage::ImageRgba8(src.to_rgba8())),
        ("gray16", DynamicImage::ImageLuma16(src.to_luma16())),
        ("gray-alpha16", DynamicImage::ImageLumaA16(src.to_luma_alpha16())),
        ("rgb16", DynamicImage::ImageRgb16(src.to_rgb16())),
        ("rgba16", src.clone()),
        ("rgba32f", DynamicImage::ImageRgba32F(src.to_rgba32f())),
    ]
}

/// The alpha samples of an image as 16-bit values (none without alpha).
fn alpha(image: &DynamicImage) -> Vec<u16> {
    if !image.color().has_alpha() {
        return Vec::new();
    }
    image.to_rgba16().pixels().map(|p| p[3]).collect()
}

#[test]
fn every_format_and_layout_round_trips_with_its_mark_type_and_alpha() {
    let key = Key::from_bytes([31; 32]);
    let embedder = EmbedOptions::default().build(&key).unwrap();
    let detector = DetectOptions::default().build(&key).unwrap();
    let src = source();
    // Which layouts each format stores losslessly, as they are.
    let cases: &[(&str, &[&str])] = &[
        (
            "png",
            &[
                "gray8",
                "gray-alpha8",
                "rgb8",
                "rgba8",
                "gray16",
                "gray-alpha16",
                "rgb16",
                "rgba16",
            ],
        ),
        ("tif", &["gray8", "rgb8", "rgba8", "gray16", "rgb16", "rgba16"]),
        ("webp", &["rgb8", "rgba8"]),
        ("exr", &["rgba32f"]),
        ("jpg", &["gray8", "rgb8"]),
    ];
    let mut checked = 0;
    for &(extension, names) in cases {
        for (name, image) in layouts(&src).into_iter().filter(|(n, _)| names.contains(n)) {
            let label = format!("{name} as .{extension}");
            let payload = Payload::new(0x0f0f_0000_0000_0000 | u64::from(image.color().bytes_per_pixel()));
            let marked = embedder.embed(&image, payload).unwrap();
            assert_eq!(
                marked.color(),
                image.color(),
                "{label}: embed changed the pixel type"
            );
            let path = Path::new("out").with_extension(extension);
            let bytes = files::encode(&marked, &path, 95).unwrap();
            let back = files::decode_image(&path, &bytes).unwrap();
            if extension != "jpg" {
                assert_eq!(
                    back.color(),
                    image.color(),
                    "{label}: decoded as another pixel type"
                );
                assert!(alpha(&back) == alpha(&image), "{label}: alpha changed");
            }
            let d = detector.detect(&back).unwrap();
            assert_eq!(d.payload, Some(payload), "{label}: {d:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 19, "every listed layout was checked");
}

#[test]
fn grey_with_alpha_goes_to_tiff_as_rgba_with_every_sample_kept() {
    let key = Key::from_bytes([33; 32]);
    let embedder = EmbedOptions::default().build(&key).unwrap();
    let detector = DetectOptions::default().build(&key).unwrap();
    let src = source();
    for (name, image, widened) in [
        (
            "gray-alpha8",
            DynamicImage::ImageLumaA8(src.to_luma_alpha8()),
            ColorType::Rgba8,
        ),
        (
            "gray-alpha16",
            DynamicImage::ImageLumaA16(src.to_luma_alpha16()),
            ColorType::Rgba16,
        ),
    ] {
        let payload = Payload::new(0x7171_0000_0000_0000 | u64::from(image.color().bytes_per_pixel()));
        let marked = embedder.embed(&image, payload).unwrap();
        let path = Path::new("out.tif");
        let back = files::decode_image(path, &files::encode(&marked, path, 95).unwrap()).unwrap();
        assert_eq!(back.color(), widened, "{name}");
        let (sent, got) = (marked.to_rgba16(), back.to_rgba16());
        for (s, g) in sent.pixels().zip(got.pixels()) {
            assert_eq!(s, g, "{name}: a sample changed");
            assert!(g[0] == g[1] && g[1] == g[2], "{name}: not grey");
        }
        let d = detector.detect(&back).unwrap();
        assert_eq!(d.payload, Some(payload), "{name}: {d:?}");
    }
}

#[test]
fn a_16_bit_mark_survives_reduction_to_8_bits_and_jpeg_75() {
    let key = Key::from_bytes([32; 32]);
    let payload = Payload::new(0x1616_0000_0000_0016);
    let marked = EmbedOptions::default()
        .build(&key)
        .unwrap()
        .embed(&source(), payload)
        .unwrap();
    assert_eq!(marked.color(), ColorType::Rgba16);
    let eight = DynamicImage::ImageRgb8(marked.to_rgb8());
    let path = Path::new("leak.jpg");
    let jpeg = files::decode_image(path, &files::encode(&eight, path, 75).unwrap()).unwrap();
    let d = DetectOptions::default()
        .build(&key)
        .unwrap()
        .detect(&jpeg)
        .unwrap();
    assert_eq!(d.payload, Some(payload), "{d:?}");
}
