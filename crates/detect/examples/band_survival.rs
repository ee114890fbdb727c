//! How much of the mark each DCT coefficient of the band still carries
//! after an attack:
//! `cargo run --release -p tattle-detect --example band_survival -- IMAGE INDEX ATTACK_INDEX ATTACK`.
//! Key, payload and attack seed are the benchmark's, as in `search_rank`.
//! Prints the detector's verdict, then, per coefficient, the pilot's and
//! the payload's normalised correlation (against the true codeword) in the
//! observation the detector registered, and in one registered by resizing
//! the attacked image back to the marked size (Catmull-Rom): the exact
//! inverse for attacks that only rescale, which tells a search miss from a
//! mark too faint to read.

mod bench_case;

use tattle_core::layout::{Role, Schedule, BAND};
use tattle_core::observe::Observation;
use tattle_core::plane::luma;
use tattle_core::{code, Recipient};
use tattle_detect::DetectOptions;

/// Per coefficient of the band: the pilot's and the payload's normalised
/// correlation with `signs`.
fn by_coefficient(schedule: &Schedule, signs: &[f32], observation: &Observation) -> Vec<(f64, f64)> {
    // (pilot: Σ y·s, Σ y²), (payload: Σ y·s, Σ y²)
    let mut sums = vec![[0.0f64; 4]; BAND.len()];
    for (slot, ((role, sign), y)) in schedule
        .roles()
        .iter()
        .zip(signs)
        .zip(observation.slots())
        .enumerate()
    {
        let (y, s) = (f64::from(*y), f64::from(*sign));
        let first = if *role == Role::Pilot { 0 } else { 2 };
        if let Some(sum) = sums.get_mut(slot % BAND.len()) {
            sum[first] += y * s;
            sum[first + 1] += y * y;
        }
    }
    let z = |dot: f64, norm: f64| if norm > 0.0 { dot / norm.sqrt() } else { 0.0 };
    sums.iter().map(|s| (z(s[0], s[1]), z(s[2], s[3]))).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (case, _) = bench_case::from_args("band_survival IMAGE INDEX ATTACK_INDEX ATTACK")?;
    let (key, payload, original, attacked) = (case.key, case.payload, case.original, case.attacked);
    let detector = DetectOptions::default().build(&key)?;
    let (detection, found) = detector.examine(&luma(&attacked));
    println!("{detection:?}");
    let restored = attacked.resize_exact(
        original.width(),
        original.height(),
        image::imageops::FilterType::CatmullRom,
    );
    let inverse = Observation::measure(&luma(&restored), &Default::default());
    let reading = detector.test(&inverse);
    println!(
        "exact inverse: pilot {:.2}, payload {:.2}, raw bit errors {}, payload right: {}",
        reading.pilot_score,
        reading.payload_score,
        reading.bit_errors,
        reading.payload == Some(payload)
    );
    let schedule = Schedule::new(&key, Recipient::Studio);
    let signs = schedule.slot_signs(&code::encode(payload));
    println!("coefficient | found: pilot payload | exact inverse: pilot payload");
    for (k, (found, inverse)) in by_coefficient(&schedule, &signs, &found.observation)
        .into_iter()
        .zip(by_coefficient(&schedule, &signs, &inverse))
        .enumerate()
    {
        let (u, v, _) = BAND[k];
        println!(
            "({u},{v})       | {:6.2} {:6.2}        | {:6.2} {:6.2}",
            found.0, found.1, inverse.0, inverse.1
        );
    }
    Ok(())
}
