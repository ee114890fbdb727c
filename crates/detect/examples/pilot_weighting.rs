//! An experiment, not adopted: whether the payload reads better when each
//! coefficient of the band is weighed by what the pilot says of it (its
//! mean pilot correlation over its variance, maximal-ratio combining)
//! before decoding. The pilot and payload chips are independent, so the
//! weighted correlation would keep its null distribution; but after
//! halving and JPEG 75 the pilot's estimate of each coefficient is too
//! noisy (per-coefficient z of 0.5–5 from 64 slots), and the weighted reading
//! scored lower on 10 of the 12 frames the search found (session 51).
//! `cargo run --release -p tattle-detect --example pilot_weighting -- ATTACK_INDEX ATTACK IMAGE…`
//! (images in the corpus order, as `tattle bench` numbers them; key,
//! payloads and attack seeds are the benchmark's).

mod bench_case;

use tattle_core::code;
use tattle_core::layout::{Role, Schedule, BAND};
use tattle_core::stats::normalised_correlation;
use tattle_detect::{DetectOptions, Payload, Recipient};

/// Each band coefficient's weight: the mean of its pilot slots times their
/// chips, over the variance of all its slots, clamped at zero.
fn coefficient_weights(schedule: &Schedule, slots: &[f32]) -> Vec<f32> {
    let mut pilot = vec![(0.0f64, 0usize); BAND.len()];
    let mut all = vec![(0.0f64, 0usize); BAND.len()];
    for (i, ((role, chip), v)) in schedule
        .roles()
        .iter()
        .zip(schedule.chips())
        .zip(slots)
        .enumerate()
    {
        let k = i % BAND.len();
        all[k].0 += f64::from(*v) * f64::from(*v);
        all[k].1 += 1;
        if *role == Role::Pilot {
            pilot[k].0 += f64::from(chip * v);
            pilot[k].1 += 1;
        }
    }
    pilot
        .iter()
        .zip(&all)
        .map(|(&(sum, n), &(squares, m))| {
            let mean = sum / n.max(1) as f64;
            let variance = (squares / m.max(1) as f64 - mean * mean).max(f64::MIN_POSITIVE);
            (mean.max(0.0) / variance) as f32
        })
        .collect()
}

/// What decoding `slots` gives: whether the payload is right, the true
/// codeword's z, and the raw bit errors.
fn read(schedule: &Schedule, slots: &[f32], truth: Payload) -> (bool, f64, usize) {
    let mut soft = vec![0.0f32; code::CODED_BITS];
    for ((role, chip), v) in schedule.roles().iter().zip(schedule.chips()).zip(slots) {
        if let Role::Coded(bit) = role {
            soft[usize::from(*bit)] += chip * v;
        }
    }
    let mut decoded = code::decode(&soft);
    if decoded.payload.is_none() {
        decoded = code::decode_list(&soft, 32);
    }
    let roles = schedule.roles();
    let sent = code::encode(truth);
    let z = normalised_correlation(slots, &schedule.slot_signs(&sent), |i| roles[i] != Role::Pilot);
    let errors = soft
        .iter()
        .zip(&sent)
        .filter(|(s, bit)| (**s < 0.0) != **bit)
        .count();
    (decoded.payload == Some(truth), z, errors)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "pilot_weighting ATTACK_INDEX ATTACK IMAGE…";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [attack_index, attack, images @ ..] = args.as_slice() else {
        return Err(format!("usage: {usage}").into());
    };
    let attack_index: u64 = attack_index.parse()?;
    let key = bench_case::key();
    let schedule = Schedule::new(&key, Recipient::Studio);
    let detector = DetectOptions::default().build(&key)?;
    let embedder = tattle_embed::EmbedOptions::default().build(&key)?;
    println!("image | pilot | plain: right, z, bit errors | weighted: right, z, bit errors | weights");
    for (index, path) in images.iter().enumerate() {
        let index = index as u64;
        let payload = bench_case::payload(index);
        let marked = embedder.embed(&image::open(path)?, payload)?;
        let attacked = bench_case::attack(&marked, index, attack_index, attack)?;
        let (detection, reading) = detector.examine_image(&attacked)?;
        let slots = reading.observation.slots();
        let weights = coefficient_weights(&schedule, slots);
        let weighted: Vec<f32> = slots
            .iter()
            .zip(weights.iter().cycle())
            .map(|(v, w)| v * w)
            .collect();
        let (plain_right, plain_z, plain_errors) = read(&schedule, slots, payload);
        let (right, z, errors) = read(&schedule, &weighted, payload);
        let largest = weights.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
        let shown: Vec<String> = weights.iter().map(|w| format!("{:.2}", w / largest)).collect();
        println!(
            "{path} | {:.2} | {plain_right} {plain_z:.2} {plain_errors} | {right} {z:.2} {errors} | {}",
            detection.pilot_score,
            shown.join(" ")
        );
    }
    Ok(())
}
