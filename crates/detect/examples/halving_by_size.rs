//! Whether a scaling attack (and what follows it) is limited by the mark's
//! band or by the area left: marks each image at its own size and enlarged
//! by `FACTOR` (Lanczos), applies `ATTACK`, and reports the full-search
//! reading and, at the exact inverse scale (no search), the pilot's
//! strength coefficient by coefficient of the band.
//!
//! `cargo run --release -p tattle-detect --example halving_by_size -- ATTACK FACTOR IMAGE…`,
//! e.g. `scale-0.5-bicubic+jpeg-75 2 ../shared/corpus/*.png`. ATTACK must
//! change the size only by scaling.

use image::imageops::FilterType;
use image::DynamicImage;
use tattle_core::layout::{slot_index, Role, Schedule, BAND, TILE, TILE_BLOCKS};
use tattle_core::mask::MaskParams;
use tattle_core::observe::Observation;
use tattle_core::plane::luma;
use tattle_core::Recipient;
use tattle_detect::{DetectOptions, Key, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(attack), Some(factor)) = (args.get(1), args.get(2)) else {
        return Err("usage: halving_by_size ATTACK FACTOR IMAGE…".into());
    };
    let chain = tattle_attacks::Chain::parse(attack).ok_or("unknown attack")?;
    let factor: f32 = factor.parse()?;
    let key = Key::from_bytes([3; 32]);
    let payload = Payload::new(77);
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    let schedule = Schedule::new(&key, Recipient::Studio);
    let mut decoded = 0;
    for path in args.iter().skip(3) {
        let mut img = image::open(path)?;
        if factor != 1.0 {
            let size = |side: u32| (side as f32 * factor).round() as u32;
            img = img.resize_exact(size(img.width()), size(img.height()), FilterType::Lanczos3);
        }
        let marked = embedder.embed(&img, payload)?;
        let attacked = chain.apply(&marked, 1)?;
        let d = detector.detect(&attacked)?;
        decoded += usize::from(d.payload == Some(payload));
        let (z, per_coefficient) = pilot_at_inverse_scale(&attacked, &img, &schedule);
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        println!(
            "{name:36} {}x{} → {}x{}: {} (pilot {:.1}); exact inverse scale: pilot {z:.1}, by coefficient {}",
            img.width(),
            img.height(),
            attacked.width(),
            attacked.height(),
            if d.payload == Some(payload) {
                "decoded"
            } else {
                "not decoded"
            },
            d.pilot_score,
            per_coefficient
                .iter()
                .map(|z| format!("{z:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("decoded {decoded} of {}", args.len().saturating_sub(3));
    Ok(())
}

/// The pilot's normalised correlation, in all and coefficient by
/// coefficient of the band, once `attacked` is resized back to the size of
/// `original` (best of the 3x3 whole-pixel offsets around the tile origin).
fn pilot_at_inverse_scale(
    attacked: &DynamicImage,
    original: &DynamicImage,
    schedule: &Schedule,
) -> (f32, Vec<f32>) {
    let back = luma(&attacked.resize_exact(original.width(), original.height(), FilterType::CatmullRom));
    let mut best = (f32::MIN, Vec::new());
    for (dx, dy) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dx, dy))) {
        let origin = ((TILE + dx - 1) % TILE, (TILE + dy - 1) % TILE);
        let observation = Observation::measure_aligned(&back, &MaskParams::default(), origin);
        let (mut sums, mut energies) = (vec![0.0f32; BAND.len()], vec![0.0f32; BAND.len()]);
        for block in 0..TILE_BLOCKS * TILE_BLOCKS {
            for k in 0..BAND.len() {
                let slot = slot_index(block % TILE_BLOCKS, block / TILE_BLOCKS, k);
                if schedule.roles().get(slot) == Some(&Role::Pilot) {
                    let value = observation.slots().get(slot).copied().unwrap_or(0.0);
                    sums[k] += value * schedule.chips().get(slot).copied().unwrap_or(0.0);
                    energies[k] += value * value;
                }
            }
        }
        let z = sums.iter().sum::<f32>() / energies.iter().sum::<f32>().sqrt().max(1e-12);
        if z > best.0 {
            let per_coefficient = sums
                .iter()
                .zip(&energies)
                .map(|(s, e)| s / e.sqrt().max(1e-12))
                .collect();
            best = (z, per_coefficient);
        }
    }
    best
}
