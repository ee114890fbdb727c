//! A prototype, not adopted: a second copy of the mark embedded at half
//! resolution (the mark of the 2x2-averaged luma, enlarged bilinearly),
//! sharing the PSNR budget with the mark as it is, so that an image halved
//! and re-encoded keeps a copy at the frequencies JPEG spares:
//! `cargo run --release -p tattle-detect --example two_scale -- IMAGE INDEX SHARE ATTACKS [MARKED.png]`.
//! SHARE is the half-resolution copy's share of the mark's energy (0 is
//! the present mark); ATTACKS a comma-separated list. Key, payload and
//! attack seeds are the benchmark's. For each attack it prints the
//! detector's verdict (which reads either copy alone), then what each copy,
//! and both combined (each weighted by its own pilot's z), read at the
//! known geometry: attacks named `scale…` are resized back to the marked
//! size, any other is read as received (right for those that keep the
//! marked image's origin: identity, JPEG, top-left crops).

mod bench_case;

use tattle_core::layout::{Role, Schedule};
use tattle_core::observe::Observation;
use tattle_core::plane::{add_luma_delta, luma, Plane};
use tattle_core::{code, Recipient};
use tattle_detect::{DetectOptions, Payload};
use tattle_embed::EmbedOptions;

/// The plane averaged over 2x2 pixels.
fn halved(p: &Plane) -> Plane {
    let (h, w) = p.dim();
    Plane::from_shape_fn((h / 2, w / 2), |(y, x)| {
        0.25 * (p[[2 * y, 2 * x]] + p[[2 * y + 1, 2 * x]] + p[[2 * y, 2 * x + 1]] + p[[2 * y + 1, 2 * x + 1]])
    })
}

/// `p` enlarged twice (bilinear, pixel centres aligned) to `h` x `w`.
fn doubled(p: &Plane, h: usize, w: usize) -> Plane {
    let (ph, pw) = p.dim();
    let source = |i: usize, n: usize| ((i as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, n.saturating_sub(1) as f32);
    Plane::from_shape_fn((h, w), |(y, x)| {
        let (fy, fx) = (source(y, ph), source(x, pw));
        let (y0, x0) = (fy as usize, fx as usize);
        let (y1, x1) = ((y0 + 1).min(ph - 1), (x0 + 1).min(pw - 1));
        let (ty, tx) = (fy - y0 as f32, fx - x0 as f32);
        let row = |y: usize| (1.0 - tx) * p[[y, x0]] + tx * p[[y, x1]];
        (1.0 - ty) * row(y0) + ty * row(y1)
    })
}

/// The pilot's z, the payload's z against the decoded codeword, the
/// payload if its CRC holds, and the raw bit errors, of slot values `y`.
fn read(schedule: &Schedule, y: &[f32]) -> (f32, f32, Option<Payload>, usize) {
    let mut soft = vec![0.0f32; code::CODED_BITS];
    let (mut pilot, mut pilot_norm, mut payload_norm) = (0.0f32, 0.0f32, 0.0f32);
    for ((role, chip), v) in schedule.roles().iter().zip(schedule.chips()).zip(y) {
        match role {
            Role::Pilot => {
                pilot += chip * v;
                pilot_norm += v * v;
            }
            Role::Coded(bit) => {
                if let Some(s) = soft.get_mut(usize::from(*bit)) {
                    *s += chip * v;
                }
                payload_norm += v * v;
            }
        }
    }
    let decoded = code::decode(&soft);
    let signs = schedule.slot_signs(&decoded.codeword);
    let payload: f32 = schedule
        .roles()
        .iter()
        .zip(&signs)
        .zip(y)
        .filter(|((role, _), _)| **role != Role::Pilot)
        .map(|((_, s), v)| s * v)
        .sum();
    (
        pilot / pilot_norm.sqrt().max(f32::MIN_POSITIVE),
        payload / payload_norm.sqrt().max(f32::MIN_POSITIVE),
        decoded.payload,
        decoded.channel_errors,
    )
}

/// An observation's slots scaled to unit norm.
fn unit(observation: &Observation) -> Vec<f32> {
    let norm = observation.slots().iter().map(|v| v * v).sum::<f32>().sqrt();
    observation
        .slots()
        .iter()
        .map(|v| v / norm.max(f32::MIN_POSITIVE))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(index), Some(share), Some(attacks)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        return Err("usage: two_scale IMAGE INDEX SHARE ATTACKS [MARKED.png]".into());
    };
    let index: u64 = index.parse()?;
    let share: f32 = share.parse()?;
    let key = bench_case::key();
    let payload = bench_case::payload(index);
    let original = image::open(path)?;
    let embedder = EmbedOptions::default().build(&key)?;
    let host = luma(&original);
    let (h, w) = host.dim();
    let full = embedder.luma_delta(&host, payload)?;
    let half = doubled(&embedder.luma_delta(&halved(&host), payload)?, h, w);
    let energy = |p: &Plane| p.iter().map(|v| v * v).sum::<f32>();
    let half_gain = (share * energy(&full) / energy(&half).max(f32::MIN_POSITIVE)).sqrt();
    let delta = &full * (1.0 - share).sqrt() + &half * half_gain;
    let mut marked = original.clone();
    add_luma_delta(&mut marked, &delta)?;
    println!(
        "share {share}: luma PSNR {:.2} dB",
        tattle_attacks::metrics::luma_psnr(&original, &marked)
    );
    if let Some(out) = args.get(5) {
        marked.to_rgb8().save(out)?;
    }
    let detector = DetectOptions::default().build(&key)?;
    let schedule = Schedule::new(&key, Recipient::Studio);
    for (attack_index, attack) in attacks.split(',').enumerate() {
        let attacked = bench_case::attack(&marked, index, attack_index as u64, attack)?;
        let verdict = detector.detect(&attacked)?;
        println!(
            "{attack}: detector {} (score {:.2}, scale {:?})",
            if verdict.payload == Some(payload) {
                "right"
            } else {
                "missed"
            },
            verdict.score,
            verdict.geometry.map(|g| g.scale_x)
        );
        let restored = if attack.starts_with("scale") {
            luma(&attacked.resize_exact(w as u32, h as u32, image::imageops::FilterType::CatmullRom))
        } else {
            luma(&attacked)
        };
        let as_marked = unit(&Observation::measure(&restored, &Default::default()));
        let as_half = unit(&Observation::measure(&halved(&restored), &Default::default()));
        // Each copy weighted by its pilot's z: the pilot's chips are
        // independent of the payload's, so the payload test stays fair.
        let weight = |y: &[f32]| read(&schedule, y).0.max(0.0);
        let (a, b) = (weight(&as_marked), weight(&as_half));
        let combined: Vec<f32> = as_marked
            .iter()
            .zip(&as_half)
            .map(|(x, y)| a * x + b * y)
            .collect();
        for (name, y) in [("full", &as_marked), ("half", &as_half), ("combined", &combined)] {
            let (pilot, payload_z, decoded, errors) = read(&schedule, y);
            println!(
                "    {name:8} pilot {pilot:6.2}  payload {payload_z:6.2}  raw bit errors {errors:3}  payload right: {}",
                decoded == Some(payload)
            );
        }
    }
    Ok(())
}
