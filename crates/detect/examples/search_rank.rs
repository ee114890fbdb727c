//! How the brute-force search ranks the true map of a benchmark case:
//! `cargo run --release -p tattle-detect --example search_rank -- IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER`.
//! The key, payload and attack seed are the benchmark's (`tattle bench`,
//! image `INDEX` in the corpus order, attack `ATTACK_INDEX` in its list),
//! so that a miss in the table can be looked at probe by probe. FAMILY is
//! `Scale`, `Rotation`, `AspectX` or `AspectY`; PARAMETER its true value
//! (log scale, or degrees). Prints every family's stages and the verdict.
//! `BENCH_KEY=N` takes the benchmark's `N`th key (`tattle bench --keys`).

mod bench_case;

use tattle_core::plane::luma;
use tattle_detect::DetectOptions;
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, index, attack_index, attack, family, parameter] = args.as_slice() else {
        return Err("usage: search_rank IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER".into());
    };
    let index: u64 = index.parse()?;
    let key = bench_case::key();
    let payload = bench_case::payload(index);
    let marked = EmbedOptions::default()
        .build(&key)?
        .embed(&image::open(path)?, payload)?;
    let attacked = bench_case::attack(&marked, index, attack_index.parse()?, attack)?;
    let detector = DetectOptions::default().build(&key)?;
    let plane = luma(&attacked);
    for line in detector.search_report(&plane, Some((family, parameter.parse()?))) {
        println!("{line}");
    }
    let detection = detector.detect(&attacked)?;
    println!("payload right: {}", detection.payload == Some(payload));
    println!("{detection:?}");
    Ok(())
}
