//! What a ledger match says about one benchmark case: marks each image with
//! the benchmark's key and payload, applies `ATTACK` as the benchmark
//! applies its `ATTACK_INDEX`th attack, and compares the detector's reading
//! with a ledger of 1,000 payloads (the image's own, its 8 neighbouring
//! serials, the rest random), as `tattle bench --ledger` does. Prints
//! whether the payload was read blind, the best match, its bound, the
//! runner-up's score and the bound that the mark is another issuance.
//!
//! `cargo run --release -p tattle-detect --example ledger_match -- DIR ATTACK ATTACK_INDEX`,
//! e.g. `../shared/corpus scale-0.5-bicubic+jpeg-75 4` (the chains' ×0.5 row).
//! Reads the folder's PNGs, in the benchmark's order among them.

#[path = "bench_case/mod.rs"]
mod bench_case;

use tattle_core::plane::luma;
use tattle_core::prng::KeyedStream;
use tattle_detect::{DetectOptions, Issued, Payload, Recipient};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(attack), Some(attack_index)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: ledger_match DIR ATTACK ATTACK_INDEX".into());
    };
    let attack_index: u64 = attack_index.parse()?;
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    let key = bench_case::key();
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    // Every match, however weak, to see the scores behind a miss as well.
    let permissive = DetectOptions::default().threshold(0.5).build(&key)?;
    for (index, path) in paths.iter().enumerate() {
        let index = index as u64;
        let own = bench_case::payload(index);
        let attacked = bench_case::attack(
            &embedder.embed(&image::open(path)?, own)?,
            index,
            attack_index,
            attack,
        )?;
        let (blind, reading) = detector.examine(&luma(&attacked));
        let mut stream = KeyedStream::from_seed([9; 32]);
        let ledger: Vec<Issued> = std::iter::once(own.value())
            .chain((1..=4u64).flat_map(|k| [own.value().wrapping_add(k), own.value().wrapping_sub(k)]))
            .chain(std::iter::repeat_with(|| stream.next_u64()))
            .take(1000)
            .map(|p| Issued {
                recipient: Recipient::Studio,
                payload: Payload::new(p),
            })
            .collect();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let read = blind.payload == Some(own);
        match permissive.match_issued(&reading, &ledger)?.first() {
            Some(best) => println!(
                "{name:40} blind {read:5} best is own {:5} z {:6.2} log10 p {:7.1} runner-up z {:5.2} another log10 {:6.1}",
                best.issued.payload == own,
                best.score,
                best.false_positive_log10,
                best.runner_up.map_or(f64::NAN, |r| r.score),
                best.another_log10.unwrap_or(f64::NAN),
            ),
            None => println!("{name:40} blind {read:5} no reading to match"),
        }
    }
    Ok(())
}
