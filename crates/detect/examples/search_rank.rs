//! How the brute-force search ranks the true map of a benchmark case:
//! `cargo run --release -p tattle-detect --example search_rank -- IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER`.
//! The key, payload and attack seed are the benchmark's (`tattle bench`,
//! image `INDEX` in the corpus order, attack `ATTACK_INDEX` in its list),
//! so that a miss in the table can be looked at probe by probe. FAMILY is
//! `Scale`, `Rotation`, `AspectX` or `AspectY`; PARAMETER its true value
//! (log scale, or degrees). Prints every family's stages and the verdict.
//! `BENCH_KEY=N` takes the benchmark's `N`th key (`tattle bench --keys`).

use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, index, attack_index, attack, family, parameter] = args.as_slice() else {
        return Err("usage: search_rank IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER".into());
    };
    let index: u64 = index.parse()?;
    let name = match std::env::var("BENCH_KEY") {
        Ok(n) if n != "0" => format!("mark {n}"),
        _ => String::from("mark"),
    };
    let key = Key::from_bytes(blake3::derive_key(
        "tattle bench public test key",
        name.as_bytes(),
    ));
    let payload = Payload::new(0x7a77_1e00_0000_0000 ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let marked = EmbedOptions::default()
        .build(&key)?
        .embed(&image::open(path)?, payload)?;
    let chain = tattle_attacks::Chain::parse(attack).ok_or("unknown attack")?;
    let attacked = chain.apply(&marked, index * 1000 + attack_index.parse::<u64>()?)?;
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
