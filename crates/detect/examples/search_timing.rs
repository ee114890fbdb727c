//! Times detection with the full geometric search on an image:
//! `cargo run --release -p tattle-detect --example search_timing -- IMAGE [WIDTH HEIGHT [RUNS [ATTACK]]]`
//! (RUNS: 5 by default; the median and the fastest are printed). Without
//! ATTACK the image is read unmarked (every candidate read, and nothing
//! found); with it (a chain as in `tattle bench`, e.g. `rotate+5`) the
//! image is marked with the key `[3; 32]` and attacked first, and the mark
//! must be found (a mark read early takes less time than an unmarked
//! frame's whole search: docs/BENCHMARKS.md, session 53). Under
//! `valgrind --tool=callgrind`, the difference
//! between RUNS 2 and 1 is the instruction count of one detection, which
//! does not depend on how busy the machine is.

use std::time::Instant;

use image::imageops::FilterType;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: search_timing IMAGE [WIDTH HEIGHT [RUNS [ATTACK]]]")?;
    let mut img = image::open(path)?;
    if let (Some(w), Some(h)) = (args.get(2), args.get(3)) {
        img = img.resize_exact(w.parse()?, h.parse()?, FilterType::CatmullRom);
    }
    let key = Key::from_bytes([3; 32]);
    let attack = args.get(5);
    if let Some(attack) = attack {
        let chain = tattle_attacks::Chain::parse(attack).ok_or("unknown attack")?;
        let marked = EmbedOptions::default()
            .build(&key)?
            .embed(&img, Payload::new(77))?;
        img = chain.apply(&marked, 1)?;
    }
    let detector = DetectOptions::default().build(&key)?;
    let luma = tattle_core::plane::luma(&img);
    let runs: usize = args.get(4).map(|r| r.parse()).transpose()?.unwrap_or(5).max(1);
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let d = detector.detect_luma(&luma);
        times.push(t.elapsed().as_secs_f64());
        if d.detected != attack.is_some() {
            return Err(format!("detected: {}, expected {}", d.detected, attack.is_some()).into());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}x{}: median {:.3} s (min {:.3})",
        img.width(),
        img.height(),
        times[times.len() / 2],
        times[0]
    );
    Ok(())
}
