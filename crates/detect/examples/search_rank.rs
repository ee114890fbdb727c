//! How the brute-force search ranks the true map of a benchmark case:
//! `cargo run --release -p tattle-detect --example search_rank -- IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER`.
//! The key, payload and attack seed are the benchmark's (`tattle bench`,
//! image `INDEX` in the corpus order, attack `ATTACK_INDEX` in its list),
//! so that a miss in the table can be looked at probe by probe. FAMILY is
//! `Scale`, `Rotation`, `AspectX`, `AspectY` or `TurnedScale` (the scale
//! search at a lattice's rotation); PARAMETER its true value (log scale, or
//! degrees). Prints every family's stages and the verdict.
//! `BENCH_KEY=N` takes the benchmark's `N`th key (`tattle bench --keys`).

mod bench_case;

use tattle_core::plane::luma;
use tattle_detect::DetectOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "search_rank IMAGE INDEX ATTACK_INDEX ATTACK FAMILY PARAMETER";
    let (
        bench_case::Case {
            key,
            payload,
            attacked,
            ..
        },
        rest,
    ) = bench_case::from_args(usage)?;
    let [family, parameter] = rest.as_slice() else {
        return Err(format!("usage: {usage}").into());
    };
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
