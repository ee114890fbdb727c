//! The heat map shows where the mark is, through the geometric search too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::{DynamicImage, GenericImage, GenericImageView};
use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Heatmap, Key, Payload};
use tattle_embed::EmbedOptions;

/// Mean finite score over the cells whose pixel centres satisfy `take`.
fn mean_where(map: &Heatmap, take: impl Fn(u32, u32) -> bool) -> f32 {
    let (mut sum, mut n) = (0.0, 0);
    for cy in 0..map.rows {
        for cx in 0..map.columns {
            let (x, y) = (cx * map.cell + map.cell / 2, cy * map.cell + map.cell / 2);
            if let Some(z) = map.score_at(x, y).filter(|_| take(x, y)) {
                sum += z;
                n += 1;
            }
        }
    }
    assert!(n > 0);
    sum / n as f32
}

#[test]
fn the_marked_half_lights_up_and_the_pasted_half_does_not() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/photo_kodim23.png");
    let original = image::open(path).unwrap();
    let key = Key::from_bytes([31; 32]);
    let marked = EmbedOptions::default()
        .build(&key)
        .unwrap()
        .embed(&original, Payload::new(9))
        .unwrap();
    // Left half marked, right half the original pasted back in.
    let (w, h) = original.dimensions();
    let mut spliced = marked.clone();
    spliced
        .copy_from(&original.view(w / 2, 0, w - w / 2, h).to_image(), w / 2, 0)
        .unwrap();
    let detector = DetectOptions::default().build(&key).unwrap();
    for (name, image) in [
        ("as is", spliced.clone()),
        (
            "scaled 0.8",
            spliced.resize(w * 4 / 5, h * 4 / 5, image::imageops::FilterType::CatmullRom),
        ),
        (
            "mirrored",
            DynamicImage::ImageRgba8(image::imageops::flip_horizontal(&spliced)),
        ),
    ] {
        let (found, map) = detector.locate(&luma(&image));
        assert!(found.detected, "{name}");
        let map = map.expect("a detected mark has a map");
        let half = image.width() / 2;
        let mirrored = name == "mirrored";
        let marked_side = mean_where(&map, |x, _| {
            (x < half - 64) != mirrored && (x > half + 64) == mirrored
        });
        let clean_side = mean_where(&map, |x, _| {
            (x > half + 64) != mirrored && (x < half - 64) == mirrored
        });
        assert!(marked_side > 3.0, "{name}: marked side {marked_side}");
        assert!(clean_side < 2.0, "{name}: clean side {clean_side}");
    }
    // A search on a window of the image still maps the whole image: the
    // alignment is anchored to the image, not to the window.
    let windowed = DetectOptions::default()
        .search_pixels((w * h / 4) as usize)
        .build(&key)
        .unwrap();
    let mirrored = DynamicImage::ImageRgba8(image::imageops::flip_horizontal(&marked));
    let (found, map) = windowed.locate(&luma(&mirrored));
    assert!(found.detected);
    let map = map.expect("a detected mark has a map");
    for (part, take) in [
        ("left", (|x: u32, _: u32| x < 256) as fn(u32, u32) -> bool),
        ("right", |x, _| x > 512),
        ("top", |_, y| y < 160),
        ("bottom", |_, y| y > 352),
    ] {
        let z = mean_where(&map, take);
        assert!(z > 3.0, "{part}: {z}");
    }
    // Nothing detected, nothing mapped.
    let (found, map) = detector.locate(&luma(&original));
    assert!(!found.detected);
    assert_eq!(map, None);
}
