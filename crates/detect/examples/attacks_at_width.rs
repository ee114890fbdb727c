//! How attacks fare on frames of another size: marks each image resized to
//! `WIDTH` pixels wide (Lanczos, proportions kept; `0` keeps its size),
//! applies each attack of `ATTACKS` (comma-separated, chains joined by `+`
//! as in `tattle bench`), and detects with the full search.
//!
//! `cargo run --release -p tattle-detect --example attacks_at_width -- ATTACKS WIDTH IMAGE…`,
//! e.g. `keystone-1,keystone-2 3840 ../shared/corpus/*.png`. Each cell is
//! `+` (exact payload) or `-`, then the pilot's and the payload's scores.

use image::imageops::FilterType;
use tattle_attacks::Chain;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(attacks), Some(width)) = (args.get(1), args.get(2)) else {
        return Err("usage: attacks_at_width ATTACKS WIDTH IMAGE…".into());
    };
    let chains = attacks
        .split(',')
        .map(|name| Chain::parse(name).ok_or_else(|| format!("unknown attack {name}")))
        .collect::<Result<Vec<_>, _>>()?;
    let width: u32 = width.parse()?;
    let key = Key::from_bytes([3; 32]);
    let payload = Payload::new(0x5151_0000_0000_0001);
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    let mut decoded = vec![0; chains.len()];
    println!("| image | size | {} |", attacks.replace(',', " | "));
    println!("|---|---|{}", "---|".repeat(chains.len()));
    for path in args.iter().skip(3) {
        let mut img = image::open(path)?;
        if width > 0 {
            let height = (u64::from(img.height()) * u64::from(width) / u64::from(img.width())) as u32;
            img = img.resize_exact(width, height, FilterType::Lanczos3);
        }
        let marked = embedder.embed(&img, payload)?;
        let mut cells = Vec::new();
        for (chain, decoded) in chains.iter().zip(&mut decoded) {
            let d = detector.detect(&chain.apply(&marked, 1)?)?;
            let exact = d.payload == Some(payload);
            *decoded += usize::from(exact);
            cells.push(format!(
                "{} {:.1} / {:.1}",
                if exact { "+" } else { "-" },
                d.pilot_score,
                d.payload_score
            ));
        }
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        println!(
            "| {name} | {}x{} | {} |",
            img.width(),
            img.height(),
            cells.join(" | ")
        );
    }
    let images = args.len().saturating_sub(3);
    let totals: Vec<String> = decoded.iter().map(|n| format!("{n}/{images}")).collect();
    println!("| decoded | | {} |", totals.join(" | "));
    Ok(())
}
