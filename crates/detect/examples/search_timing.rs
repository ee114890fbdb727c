//! Times detection with the full geometric search on an image:
//! `cargo run --release -p tattle-detect --example search_timing -- IMAGE [WIDTH HEIGHT]`.

use std::time::Instant;

use image::imageops::FilterType;
use tattle_detect::{DetectOptions, Key};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: search_timing IMAGE [WIDTH HEIGHT]")?;
    let mut img = image::open(path)?;
    if let (Some(w), Some(h)) = (args.get(2), args.get(3)) {
        img = img.resize_exact(w.parse()?, h.parse()?, FilterType::CatmullRom);
    }
    let detector = DetectOptions::default().build(&Key::from_bytes([3; 32]))?;
    let luma = tattle_core::plane::luma(&img);
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let d = detector.detect_luma(&luma);
        times.push(t.elapsed().as_secs_f64());
        assert!(!d.detected);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}x{}: median {:.3} s (min {:.3})",
        img.width(),
        img.height(),
        times[2],
        times[0]
    );
    Ok(())
}
