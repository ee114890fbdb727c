//! Measures the smallest square region of a marked image (at its original
//! scale) from which the payload still decodes:
//! `cargo run --release -p tattle-detect --example smallest_region -- IMAGE...`.
//! For each side length, five crops at offsets not aligned to the 8-pixel
//! grid are tried; the table gives how many decoded exactly and, after the
//! slash, how many were traced: matched (`Detector::match_issued`) with
//! their payload among 1,000 issued ones, as `tattle trace` does with its
//! ledger when the payload cannot be decoded.

use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
use tattle_embed::EmbedOptions;

const SIDES: [u32; 5] = [128, 192, 256, 320, 384];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = Key::from_bytes([11; 32]);
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    println!("| image | {} |", SIDES.map(|s| format!("{s}x{s}")).join(" | "));
    println!("|---|{}", "---:|".repeat(SIDES.len()));
    for path in std::env::args().skip(1) {
        let img = image::open(&path)?;
        let payload = Payload::new(0x5151_0000_0000_0001);
        let marked = embedder.embed(&img, payload)?;
        // The payload and 999 others (distinct odd multiples of a constant).
        let issued: Vec<Issued> = std::iter::once(payload)
            .chain((1..1000u64).map(|n| Payload::new((2 * n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .map(|payload| Issued {
                recipient: Recipient::Studio,
                payload,
            })
            .collect();
        let mut cells = Vec::new();
        for side in SIDES {
            if img.width() < side + 40 || img.height() < side + 40 {
                cells.push("–".to_owned());
                continue;
            }
            let (mut ok, mut traced) = (0, 0);
            for i in 0..5u32 {
                let x = 13 + i * (img.width() - side - 20) / 5;
                let y = 29 + i * (img.height() - side - 40) / 5;
                let crop = marked.crop_imm(x, y, side, side);
                let (detection, reading) = detector.examine(&luma(&crop));
                let matched = detector.match_issued(&reading, &issued)?;
                ok += u32::from(detection.payload == Some(payload));
                traced += u32::from(matched.first().map(|m| m.issued.payload) == Some(payload));
            }
            cells.push(format!("{ok}/{traced}"));
        }
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(path);
        println!("| {name} | {} |", cells.join(" | "));
    }
    Ok(())
}
