//! How often a seeded attack (a window screenshot at a random offset, a
//! random crop) still lets the payload through, placement by placement:
//! `cargo run --release -p tattle-detect --example seed_sweep -- ATTACK SEEDS IMAGE...`
//! marks each image (key `[3; 32]`, or `[B; 32]` with `SWEEP_KEY_BYTE=B`;
//! payload 77), applies ATTACK (a chain
//! such as `window-screenshot+jpeg-75`) with SEEDS different seeds, and
//! prints one line per image, `+` for each exact read and `.` for each
//! miss, then the total. Misses are described on standard error.

mod common;

use tattle_detect::{DetectOptions, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [attack, seeds, images @ ..] = args.as_slice() else {
        return Err("usage: seed_sweep ATTACK SEEDS IMAGE...".into());
    };
    let seeds: u64 = seeds.parse()?;
    let chain = tattle_attacks::Chain::parse(attack).ok_or("unknown attack")?;
    // The benchmark's single key can hide a key-dependent miss: sweep keys too.
    let key = common::sweep_key()?;
    let payload = Payload::new(77);
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    let (mut read, mut total) = (0, 0);
    for path in images {
        let marked = embedder.embed(&image::open(path)?, payload)?;
        let mut line = String::new();
        for seed in 0..seeds {
            let found = detector.detect(&chain.apply(&marked, seed * 7919 + 13)?)?;
            let exact = found.payload == Some(payload);
            total += 1;
            if exact {
                read += 1;
                line.push('+');
            } else {
                line.push('.');
                eprintln!(
                    "{path}, seed {seed}: pilot {:.2}, {} raw bit errors, geometry {:?}",
                    found.pilot_score, found.bit_errors, found.geometry
                );
            }
        }
        println!("{path:48} {line}");
    }
    println!("read {read}/{total}");
    Ok(())
}
