//! Prints the heat map of a marked sample (diagnostics).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let img = if path == "synthetic" {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(512, 256, |x, y| {
            let v = ((x * 7919 + y * 104729) % 251) as u8;
            image::Rgb([v, v, v])
        }))
    } else {
        image::open(&path).unwrap()
    };
    let key = Key::from_bytes([7; 32]);
    let marked = EmbedOptions::default()
        .build(&key)
        .unwrap()
        .embed(&img, Payload::new(1))
        .unwrap();
    let detector = DetectOptions::default().build(&key).unwrap();
    let (found, map) = detector.locate(&luma(&marked));
    println!("{found:?}");
    let map = map.unwrap();
    let step = if map.columns > 40 { 4 } else { 2 };
    for r in (0..map.rows).step_by(step) {
        let row: Vec<String> = (0..map.columns)
            .step_by(step)
            .map(|c| format!("{:5.1}", map.scores[(r * map.columns + c) as usize]))
            .collect();
        println!("{}", row.join(""));
    }
}
