//! Prints what the geometric search sees for one image and attack:
//! `cargo run --release -p tattle-detect --example sync_debug -- IMAGE ATTACK [SEARCH_PIXELS]`,
//! where ATTACK may be a chain (`scale-0.5-bicubic+jpeg-75`). The key is
//! `[3; 32]`, or `[B; 32]` with `SWEEP_KEY_BYTE=B` (as in `seed_sweep`).

mod common;

use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (path, attack) = match (args.get(1), args.get(2)) {
        (Some(p), Some(a)) => (p, a),
        _ => return Err("usage: sync_debug IMAGE ATTACK".into()),
    };
    let key = common::sweep_key()?;
    let img = image::open(path)?;
    let marked = EmbedOptions::default()
        .build(&key)?
        .embed(&img, Payload::new(77))?;
    let chain = tattle_attacks::Chain::parse(attack).ok_or("unknown attack")?;
    let attacked = chain.apply(&marked, 1)?;
    let plane = luma(&attacked);
    for line in tattle_detect::sync::debug_report(&plane, &Default::default()) {
        println!("{line}");
    }
    let mut options = DetectOptions::default();
    if let Some(pixels) = args.get(3) {
        options = options.search_pixels(pixels.parse()?);
    }
    let d = options.build(&key)?.detect(&attacked)?;
    println!("{d:?}");
    Ok(())
}
