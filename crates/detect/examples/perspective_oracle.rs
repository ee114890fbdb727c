//! Tells a search miss from a channel miss under a photo of a screen: each
//! image is marked and attacked as `tattle bench` does it (its key, with
//! `BENCH_KEY=N` its `N`th key of `--keys`, and its payloads), then read
//! twice with the full search: as received, and after the attack's exact
//! perspective has been undone (bicubic). A case read only the second way
//! holds the mark, and the search did not find the map.
//!
//! `cargo run --release -p tattle-detect --example perspective_oracle -- ATTACK IMAGE…`,
//! ATTACK `keystone-N` or `oblique-N`, optionally followed by more of a
//! chain (`oblique-2+jpeg-75`); the images in the benchmark's order
//! (`../shared/corpus/*.png ../shared/corpus/*.exr`), since an image's
//! payload is that of its place in the corpus.

mod bench_case;

use image::{DynamicImage, Rgb, RgbImage};
use imageproc::geometric_transformations::{warp_into_with, Interpolation};
use tattle_attacks::ScreenPhoto;
use tattle_detect::{DetectOptions, Detection, Payload};
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [attack, images @ ..] = args.as_slice() else {
        return Err("usage: perspective_oracle ATTACK IMAGE…".into());
    };
    if ScreenPhoto::of_attack(attack, 1, 1).is_none() {
        return Err(format!("{attack} is not a photo of a screen (keystone-N or oblique-N)").into());
    }
    let key = bench_case::key();
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    let (mut found, mut held) = (0, 0);
    println!("| image | {attack}: as received | perspective undone |");
    println!("|---|---|---|");
    for (index, path) in (0u64..).zip(images) {
        let original = image::open(path)?;
        let payload = bench_case::payload(index);
        let marked = embedder.embed(&original, payload)?;
        let attacked = bench_case::attack(&marked, index, 0, attack)?;
        let photo = ScreenPhoto::of_attack(attack, original.width(), original.height())
            .ok_or("not a photo of a screen")?;
        let restored = undo(&attacked, &photo).ok_or("degenerate perspective")?;
        let (received, undone) = (detector.detect(&attacked)?, detector.detect(&restored)?);
        found += usize::from(received.payload == Some(payload));
        held += usize::from(undone.payload == Some(payload));
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        println!(
            "| {name} | {} | {} |",
            cell(&received, payload),
            cell(&undone, payload)
        );
    }
    println!(
        "\nexact payload: {found} of {} as received, {held} of {} with the perspective undone",
        images.len(),
        images.len()
    );
    Ok(())
}

/// The received image resampled back onto the marked image's pixels; what
/// the crop cut off is black.
fn undo(attacked: &DynamicImage, photo: &ScreenPhoto) -> Option<DynamicImage> {
    let place = photo.placement()?;
    let mut restored = RgbImage::new(photo.size.0, photo.size.1);
    warp_into_with(
        &attacked.to_rgb8(),
        place,
        Interpolation::Bicubic,
        Rgb([0, 0, 0]),
        &mut restored,
    );
    Some(DynamicImage::ImageRgb8(restored))
}

/// `+` for the exact payload, `-` otherwise, then the pilot's and the
/// payload's scores.
fn cell(detection: &Detection, payload: Payload) -> String {
    format!(
        "{} {:.1} / {:.1}",
        if detection.payload == Some(payload) {
            "+"
        } else {
            "-"
        },
        detection.pilot_score,
        detection.payload_score
    )
}
