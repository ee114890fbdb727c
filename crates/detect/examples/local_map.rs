//! What the search's probes read under a photo of a screen, where the
//! mark is there but the search missed it (`perspective_oracle`). Each
//! image is marked and attacked as `tattle bench` does it (`BENCH_KEY=N`
//! for its `N`th key), and its refining probe, centred on the image's
//! busiest window (the focus), reads the pilot under:
//!
//! * `local`: the attack's own linear map at the focus (its Jacobian there,
//!   which shears the frame away from the centre line);
//! * `centre`: its linear map at the frame's centre; `identity`;
//! * `chosen`: the maps the search's families chose;
//! * `sheared`: the strongest of the strongest chosen map's neighbours in
//!   shear (±0.02 in both off-diagonal entries, steps of 0.005) and in
//!   aspect (±0.01, steps of 0.005): 405 maps no family holds.
//!
//! `cargo run --release -p tattle-detect --example local_map -- ATTACK IMAGE…`,
//! ATTACK a photo of a screen (`keystone-4`, `oblique-2+jpeg-75`), the
//! images in the benchmark's order (`../shared/corpus/*.png ../shared/corpus/*.exr`).

mod bench_case;

use tattle_attacks::ScreenPhoto;
use tattle_core::plane::luma;
use tattle_detect::DetectOptions;
use tattle_embed::EmbedOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [attack, images @ ..] = args.as_slice() else {
        return Err("usage: local_map ATTACK IMAGE…".into());
    };
    if ScreenPhoto::of_attack(attack, 1, 1).is_none() {
        return Err(format!("{attack} is not a photo of a screen (keystone-N or oblique-N)").into());
    }
    let key = bench_case::key();
    let embedder = EmbedOptions::default().build(&key)?;
    let detector = DetectOptions::default().build(&key)?;
    println!("| image | decoded | focus | local map: read | centre | identity | chosen | sheared: best |");
    println!("|---|---|---|---|---:|---:|---|---|");
    for (index, path) in (0u64..).zip(images) {
        let original = image::open(path)?;
        let payload = bench_case::payload(index);
        let attacked = bench_case::attack(&embedder.embed(&original, payload)?, index, 0, attack)?;
        let (w, h) = (original.width(), original.height());
        let photo = ScreenPhoto::of_attack(attack, w, h).ok_or("not a photo of a screen")?;
        let place = photo.placement().ok_or("degenerate perspective")?;
        let place = |x: f64, y: f64| {
            let (u, v) = place(x as f32, y as f32);
            (f64::from(u), f64::from(v))
        };
        let plane = luma(&attacked);
        let first = detector.probe_maps(&plane, &[]);
        let local = jacobian(&place, preimage(&place, first.focus));
        let centre = jacobian(&place, (f64::from(w) / 2.0, f64::from(h) / 2.0));
        let base = first
            .chosen
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(IDENTITY, |&(_, m)| m);
        let mut maps = vec![local, centre, IDENTITY];
        let steps = |reach: i32, step: f64| (-reach..=reach).map(move |i| f64::from(i) * step);
        for a in steps(4, 0.005) {
            for b in steps(4, 0.005) {
                for d in steps(2, 0.005) {
                    maps.push(with_error(base, [d, a, b, -d]));
                }
            }
        }
        let probed = detector.probe_maps(&plane, &maps);
        let read = |i: usize| probed.strengths.get(i).copied().unwrap_or(f32::NAN);
        let (best, best_strength) = (3..maps.len())
            .map(|i| (i, read(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f32::NAN));
        let decoded = detector.detect(&attacked)?.payload == Some(payload);
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let chosen: Vec<String> = first
            .chosen
            .iter()
            .map(|&(s, m)| format!("{} {s:.2}", matrix(m)))
            .collect();
        println!(
            "| {name} | {} | {:.0}, {:.0} | {}: {:.2} | {:.2} | {:.2} | {} | {}: {best_strength:.2} |",
            if decoded { "+" } else { "-" },
            first.focus.0,
            first.focus.1,
            matrix(local),
            read(0),
            read(1),
            read(2),
            chosen.join(", "),
            matrix(maps.get(best).copied().unwrap_or(IDENTITY)),
        );
    }
    Ok(())
}

const IDENTITY: [f64; 4] = [1.0, 0.0, 0.0, 1.0];

/// The linear map `place` makes at `(x, y)`, row-major, by central differences.
fn jacobian(place: &impl Fn(f64, f64) -> (f64, f64), (x, y): (f64, f64)) -> [f64; 4] {
    let e = 0.5;
    let (right, left) = (place(x + e, y), place(x - e, y));
    let (below, above) = (place(x, y + e), place(x, y - e));
    [
        (right.0 - left.0) / (2.0 * e),
        (below.0 - above.0) / (2.0 * e),
        (right.1 - left.1) / (2.0 * e),
        (below.1 - above.1) / (2.0 * e),
    ]
}

/// The point `place` takes to `target`, by Newton's method.
fn preimage(place: &impl Fn(f64, f64) -> (f64, f64), target: (f64, f64)) -> (f64, f64) {
    let mut point = target;
    for _ in 0..20 {
        let (u, v) = place(point.0, point.1);
        let [a, b, c, d] = jacobian(place, point);
        let det = a * d - b * c;
        let (ex, ey) = (u - target.0, v - target.1);
        point.0 -= (d * ex - b * ey) / det;
        point.1 -= (a * ey - c * ex) / det;
    }
    point
}

/// `m · (I + e)`: `m` corrected by a small linear error, both row-major.
fn with_error(m: [f64; 4], e: [f64; 4]) -> [f64; 4] {
    [
        m[0] * (1.0 + e[0]) + m[1] * e[2],
        m[0] * e[1] + m[1] * (1.0 + e[3]),
        m[2] * (1.0 + e[0]) + m[3] * e[2],
        m[2] * e[1] + m[3] * (1.0 + e[3]),
    ]
}

fn matrix(m: [f64; 4]) -> String {
    format!("[{:.4} {:.4}; {:.4} {:.4}]", m[0], m[1], m[2], m[3])
}
