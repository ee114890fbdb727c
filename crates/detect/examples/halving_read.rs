//! An experiment, not adopted: whether a halved image reads better at its
//! known geometry through a DCT-domain enlargement (each 4x4 block's DCT
//! placed as the low quarter of the 8x8 block's, the AC terms times a
//! gain) than resized back with Catmull-Rom, as the detector's canonical
//! plane does. Halving by pixel centres maps the 8-point DCT basis of
//! frequency u ≤ 3 onto the 4-point basis of the same u, so the 4x4 DCT
//! reads the mark's band with no interpolation at all. It reads no better
//! (session 38): the mark after halving and JPEG 75 is limited by what
//! survives, not by how it is registered.
//! `cargo run --release -p tattle-detect --example halving_read -- IMAGE INDEX ATTACK_INDEX ATTACK`
//! (key, payload and attack seed are the benchmark's, as in `search_rank`).

mod bench_case;

use tattle_core::observe::Observation;
use tattle_core::plane::{luma, Plane};
use tattle_detect::DetectOptions;

fn dct_matrix(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|u| {
            let a = if u == 0 {
                (1.0 / n as f64).sqrt()
            } else {
                (2.0 / n as f64).sqrt()
            };
            (0..n)
                .map(|x| a * (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / (2 * n) as f64).cos())
                .collect()
        })
        .collect()
}

fn dct_enlarged(half: &Plane, (h, w): (usize, usize), gain: f64) -> Plane {
    let (d4, d8) = (dct_matrix(4), dct_matrix(8));
    let mut out = Plane::zeros((h, w));
    let (hh, hw) = half.dim();
    for by in 0..hh / 4 {
        for bx in 0..hw / 4 {
            let mut c4 = [[0.0f64; 4]; 4];
            for u in 0..4 {
                for v in 0..4 {
                    let mut s = 0.0;
                    for y in 0..4 {
                        for x in 0..4 {
                            s += d4[u][y] * d4[v][x] * f64::from(half[[by * 4 + y, bx * 4 + x]]);
                        }
                    }
                    c4[u][v] = s * 2.0 * if u + v > 0 { gain } else { 1.0 };
                }
            }
            for y in 0..8 {
                for x in 0..8 {
                    let mut s = 0.0;
                    for u in 0..4 {
                        for v in 0..4 {
                            s += d8[u][y] * d8[v][x] * c4[u][v];
                        }
                    }
                    if by * 8 + y < h && bx * 8 + x < w {
                        out[[by * 8 + y, bx * 8 + x]] = s as f32;
                    }
                }
            }
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (case, _) = bench_case::from_args("halving_read IMAGE INDEX ATTACK_INDEX ATTACK")?;
    let (key, payload, original, attacked) = (case.key, case.payload, case.original, case.attacked);
    let detector = DetectOptions::default().build(&key)?;
    let (w, h) = (original.width() as usize, original.height() as usize);
    let own = |name: &str, plane: &Plane| {
        let obs = Observation::measure(plane, &Default::default());
        let r = detector.test(&obs);
        println!(
            "{name}: pilot {:.2} payload {:.2} bits {} right {} own-bits {}",
            r.pilot_score,
            r.payload_score,
            r.bit_errors,
            r.payload == Some(payload),
            detector.raw_bit_errors(&obs, payload)
        );
    };
    println!("attacked {}x{}", attacked.width(), attacked.height());
    let restored = attacked.resize_exact(w as u32, h as u32, image::imageops::FilterType::CatmullRom);
    own("catmull-rom", &luma(&restored));
    let half = luma(&attacked);
    for gain in [1.0, 1.5, 2.0] {
        own(&format!("dct x{gain}"), &dct_enlarged(&half, (h, w), gain));
    }
    Ok(())
}
