//! Measures [`compare_content`] on the corpus: each image marked with the
//! benchmark's key and payload, attacked, detected, then compared with its
//! own marked original under the recovered geometry (a leak of the asset)
//! and with every other image's (another picture under the same mark's
//! geometry, as a copied mark would give; the strongest is printed):
//! `cargo run --release -p tattle-detect --example content_check -- ATTACKS IMAGES…`
//! (ATTACKS comma-separated, as in `tattle bench`). Prints one line per
//! image and attack, then the lowest own and highest other correlation.

mod bench_case;

use tattle_core::plane::luma;
use tattle_detect::{compare_content, DetectOptions};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [attacks, paths @ ..] = args.as_slice() else {
        return Err("usage: content_check ATTACKS IMAGES…".into());
    };
    let key = bench_case::key();
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    let mut marked = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let image = image::open(path)?;
        marked.push(embedder.embed(&image, bench_case::payload(index as u64))?);
    }
    let (mut lowest_own, mut highest_other) = (f64::INFINITY, f64::NEG_INFINITY);
    for (attack_index, attack) in attacks.split(',').enumerate() {
        for (index, path) in paths.iter().enumerate() {
            let attacked = bench_case::attack(&marked[index], index as u64, attack_index as u64, attack)?;
            let received = luma(&attacked);
            let detection = detector.detect(&attacked)?;
            let name = std::path::Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?");
            let Some(geometry) = detection.geometry.filter(|_| detection.detected) else {
                println!("{attack:32} {name:40} not detected");
                continue;
            };
            let started = std::time::Instant::now();
            let own = compare_content(&luma(&marked[index]), &received, &geometry);
            let took = started.elapsed().as_secs_f64();
            // The strongest of every other image: a copied mark on any of them.
            let other = (0..marked.len())
                .filter(|&i| i != index)
                .filter_map(|i| compare_content(&luma(&marked[i]), &received, &geometry))
                .max_by(|a, b| a.correlation.total_cmp(&b.correlation));
            let show = |m: Option<tattle_detect::ContentMatch>| {
                m.map_or("none".to_owned(), |m| {
                    format!(
                        "{:6.3} at ({:7.1}, {:7.1}) overlap {:.2}",
                        m.correlation, m.offset_x, m.offset_y, m.overlap
                    )
                })
            };
            println!(
                "{attack:32} {name:40} own {} ({took:.3} s) other {} | scale {:.3} x {:.3}, turned {:.2}, mirrored {}, perspective {:.1}%",
                show(own),
                show(other),
                geometry.scale_x,
                geometry.scale_y,
                geometry.rotation_degrees,
                geometry.mirrored,
                geometry.perspective_percent
            );
            lowest_own = lowest_own.min(own.map_or(f64::NEG_INFINITY, |m| m.correlation));
            highest_other = highest_other.max(other.map_or(f64::NEG_INFINITY, |m| m.correlation));
        }
    }
    println!("lowest own {lowest_own:.3}, highest other {highest_other:.3}");
    Ok(())
}
