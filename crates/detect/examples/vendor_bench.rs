//! Vendor-keyed marks over a folder of images: does each vendor's copy
//! trace to that vendor only, after attacks, and is a two-vendor
//! collusion average ever pinned on an innocent vendor? The collusion
//! cells also say which vendors a ledger match names (see
//! `Detector::match_issued`): each of the 32 vendors was issued serials
//! 1–32, the colluders' copies carry serial 7.
//!
//! `cargo run --release -p tattle-detect --example vendor_bench -- ../shared/corpus`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rayon::prelude::*;
use tattle_core::plane::luma;
use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
use tattle_embed::EmbedOptions;

const VENDORS: u16 = 32;
const ATTACKS: [&str; 5] = [
    "identity",
    "jpeg-50",
    "crop-50-centre",
    "scale-0.75-bicubic",
    "rotate+2",
];

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "samples".into());
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "png" || e == "jpg" || e == "exr")
        })
        .collect();
    paths.sort();
    let key = Key::from_bytes(*b"vendor bench key, not a secret!!");
    let everyone: Vec<Recipient> = std::iter::once(Recipient::Studio)
        .chain((1..=VENDORS).map(Recipient::Vendor))
        .collect();
    let detector = DetectOptions::default().build_for(&key, &everyone).unwrap();
    let ledger: Vec<Issued> = (1..=VENDORS)
        .flat_map(|v| {
            (1..=32).map(move |serial| Issued {
                recipient: Recipient::Vendor(v),
                payload: Payload::new(u64::from(v) << 48 | serial),
            })
        })
        .collect();
    let rows: Vec<String> = paths
        .par_iter()
        .map(|path| {
            let img = image::open(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let copy = |v: u16| {
                EmbedOptions::default()
                    .build_for(&key, Recipient::Vendor(v))
                    .unwrap()
                    .embed(&img, Payload::new(u64::from(v) << 48 | 7))
                    .unwrap()
            };
            let (a, b) = (copy(3), copy(11));
            let mut cells = Vec::new();
            for attack in ATTACKS {
                let attacked = (tattle_attacks::find(attack).unwrap().apply)(&a, 1).unwrap();
                let d = detector.detect(&attacked).unwrap();
                cells.push(match d.recipient {
                    Some(Recipient::Vendor(3)) if d.payload == Some(Payload::new(3 << 48 | 7)) => {
                        "right".to_owned()
                    }
                    None => "none".to_owned(),
                    Some(other) => format!("WRONG:{other}"),
                });
            }
            let colluded = tattle_attacks::collusion_average(&[a.clone(), b.clone()]).unwrap();
            for attack in ["identity", "jpeg-75"] {
                let attacked = (tattle_attacks::find(attack).unwrap().apply)(&colluded, 1).unwrap();
                let (d, reading) = detector.examine(&luma(&attacked));
                let read = match d.recipient {
                    Some(Recipient::Vendor(v @ (3 | 11))) => format!("colluder {v}"),
                    None if d.detected => "mark, no payload".to_owned(),
                    None => "none".to_owned(),
                    Some(other) => format!("INNOCENT:{other}"),
                };
                let matched: Vec<String> = detector
                    .match_issued(&reading, &ledger)
                    .unwrap()
                    .iter()
                    .map(|m| match m.issued.recipient {
                        Recipient::Vendor(v @ (3 | 11)) => match m.issued.payload.value() & 0xffff {
                            7 => v.to_string(),
                            serial => format!("{v} (serial {serial})"),
                        },
                        other => format!("INNOCENT:{other}"),
                    })
                    .collect();
                let matched = if matched.is_empty() {
                    "none".to_owned()
                } else {
                    matched.join(" and ")
                };
                cells.push(format!("{read}; ledger: {matched}"));
            }
            format!("| {name} | {} |", cells.join(" | "))
        })
        .collect();
    println!(
        "| image | {} | collusion | collusion + jpeg-75 |",
        ATTACKS.join(" | ")
    );
    println!("|---|{}---|---|", "---|".repeat(ATTACKS.len()));
    for r in rows {
        println!("{r}");
    }
}
