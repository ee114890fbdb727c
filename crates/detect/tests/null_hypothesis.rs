//! The false-positive probability tattle reports is a bound under the null
//! hypothesis. These tests run many null trials — images that were not
//! marked with the key under test — and check the empirical rate against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use image::DynamicImage;
use tattle_core::plane::luma;
use tattle_core::prng::KeyedStream;
use tattle_detect::{DetectOptions, Issued, Key, Observation, Payload, Recipient};
use tattle_embed::EmbedOptions;

fn sample_images() -> Vec<DynamicImage> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    [
        "photo_kodim23.png",
        "cel_openclipart_tiger.png",
        "film3d_bbb_splash.png",
    ]
    .iter()
    .map(|n| image::open(dir.join(n)).unwrap())
    .collect()
}

/// Synthetic images of the kinds peers get wrong: flat fields, gradients,
/// line art, pure noise, and a periodic texture at the tile's own period.
fn synthetic_images() -> Vec<DynamicImage> {
    let mut rng = KeyedStream::from_seed([77; 32]);
    let noise: Vec<u8> = (0..384 * 384).map(|_| rng.below(256) as u8).collect();
    let gray = |f: &dyn Fn(u32, u32) -> u8| {
        DynamicImage::ImageLuma8(image::GrayImage::from_fn(384, 384, |x, y| image::Luma([f(x, y)])))
    };
    vec![
        gray(&|_, _| 200),
        gray(&|x, y| ((x + y) / 3) as u8),
        gray(&|x, y| {
            if (x / 3 + y / 5) % 11 == 0 || x % 97 < 2 {
                0
            } else {
                240
            }
        }),
        gray(&|x, y| noise[(y * 384 + x) as usize]),
        gray(&|x, y| {
            (128.0 + 60.0 * ((x % 128) as f32 * 0.31).sin() * ((y % 128) as f32 * 0.17).cos()) as u8
        }),
    ]
}

/// Observations of whole images and of 256x256 patches at several offsets.
fn observations(images: &[DynamicImage]) -> Vec<Observation> {
    let mut out = Vec::new();
    for img in images {
        out.push(Observation::measure(&luma(img), &Default::default()));
        for (x, y) in [(0, 0), (37, 11), (101, 64)] {
            if img.width() >= x + 256 && img.height() >= y + 256 {
                let patch = img.crop_imm(x, y, 256, 256);
                out.push(Observation::measure(&luma(&patch), &Default::default()));
            }
        }
    }
    out
}

fn random_key(rng: &mut KeyedStream) -> Key {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    Key::from_bytes(bytes)
}

#[test]
fn ten_thousand_null_trials_stay_within_the_reported_probability() {
    let mut images = sample_images();
    images.extend(synthetic_images());
    // Marked images are null trials too for every key but their own.
    let own = Key::from_bytes([1; 32]);
    let embedder = EmbedOptions::default().build(&own).unwrap();
    let marked: Vec<DynamicImage> = sample_images()
        .iter()
        .map(|img| embedder.embed(img, Payload::new(0x1234)).unwrap())
        .collect();
    images.extend(marked);
    let observations = observations(&images);
    assert!(observations.len() >= 20);

    calibrated_null_trials(&observations, 10_000, &[Recipient::Studio]);
}

/// Runs at least `min_trials` null trials (each observation against fresh
/// random keys, reading `recipients`' payloads, no geometric search so the
/// bound is at its tightest), asserts there is no detection and that the
/// empirical rate at each level stays within the reported probability, and
/// prints the figures.
fn calibrated_null_trials(observations: &[Observation], min_trials: usize, recipients: &[Recipient]) {
    let mut rng = KeyedStream::from_seed([99; 32]);
    let keys_per_observation = min_trials.div_ceil(observations.len());
    let levels = [0.5f64, 0.1, 0.01, 0.001, 0.0001];
    let mut at_or_below = [0usize; 5];
    let mut trials = 0usize;
    let mut detections = 0usize;
    let mut payloads = 0usize;
    let mut highest_score = f64::NEG_INFINITY;
    let mut lowest_log10 = 0.0f64;
    for _ in 0..keys_per_observation {
        let detector = DetectOptions::default()
            .geometric_search(false)
            .build_for(&random_key(&mut rng), recipients)
            .unwrap();
        for obs in observations {
            let d = detector.test(obs);
            trials += 1;
            detections += usize::from(d.detected);
            payloads += usize::from(d.payload.is_some() || d.payload_false_positive_log10.is_some());
            highest_score = highest_score.max(d.score);
            lowest_log10 = lowest_log10.min(d.false_positive_log10);
            for (count, level) in at_or_below.iter_mut().zip(levels) {
                *count += usize::from(d.false_positive_probability <= level);
            }
        }
    }
    assert!(trials >= min_trials);
    assert_eq!(detections, 0, "false detections in {trials} null trials");
    assert_eq!(payloads, 0);
    for (count, level) in at_or_below.iter().zip(levels) {
        let rate = *count as f64 / trials as f64;
        // The bound must hold: the empirical rate may exceed the level only by
        // sampling error (4 standard deviations).
        let slack = 4.0 * (level * (1.0 - level) / trials as f64).sqrt();
        assert!(
            rate <= level + slack,
            "P(p <= {level}) = {rate} over {trials} trials"
        );
    }
    eprintln!(
        "{trials} null trials ({} observations, {} recipients): 0 detections; empirical rate at p<=0.5/0.1/0.01/0.001/0.0001: {:?}; lowest reported log10 p {lowest_log10:.2}; highest score {highest_score:.2}",
        observations.len(),
        recipients.len(),
        at_or_below.map(|c| c as f64 / trials as f64)
    );
}

/// The long calibration over the real corpus, recorded in docs/BENCHMARKS.md:
/// every corpus image, unmarked and marked under another key, through a
/// set of attacks, whole and as patches, each against random keys reading
/// 33 recipients (the studio channel and 32 vendors).
/// `cargo test --release -p tattle-detect --test null_hypothesis -- --ignored corpus --nocapture`
#[test]
#[ignore = "long: needs ../shared/corpus; 100,000+ null trials"]
fn corpus_null_trials_under_attacks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no corpus at {}", dir.display());
        return;
    };
    let mut paths: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "exr"))
        .collect();
    paths.sort();
    let other = EmbedOptions::default().build(&Key::from_bytes([3; 32])).unwrap();
    let mut images = Vec::new();
    for path in &paths {
        let img = image::open(path).unwrap();
        let marked = other.embed(&img, Payload::new(0x77)).unwrap();
        for source in [&img, &marked] {
            for attack in [
                "identity",
                "jpeg-50",
                "scale-0.5-bicubic",
                "rotate+5",
                "crop-25-top-left",
                "blur-1",
            ] {
                images.push((tattle_attacks::find(attack).unwrap().apply)(source, 1).unwrap());
            }
        }
    }
    let observations = observations(&images);
    let recipients: Vec<Recipient> = std::iter::once(Recipient::Studio)
        .chain((1..=32).map(Recipient::Vendor))
        .collect();
    let trials = std::env::var("TATTLE_NULL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    calibrated_null_trials(&observations, trials, &recipients);
}

#[test]
fn the_test_has_power_where_the_mark_is() {
    // The same machinery must say yes on marked images, or the null test above proves nothing.
    let key = Key::from_bytes([1; 32]);
    let embedder = EmbedOptions::default().build(&key).unwrap();
    let detector = DetectOptions::default().build(&key).unwrap();
    for (i, img) in sample_images().iter().enumerate() {
        let payload = Payload::new(0xdead_beef_0000_0000 | i as u64);
        let d = detector.detect(&embedder.embed(img, payload).unwrap()).unwrap();
        assert!(d.detected && d.payload == Some(payload), "{i}: {d:?}");
        assert!(d.false_positive_log10 < -30.0, "{i}: {d:?}");
        // The payload's own test passed the threshold, and the verdict is
        // at least as strong (twice the smaller of the two tests' bounds).
        let payload_log10 = d
            .payload_false_positive_log10
            .expect("a payload has its own bound");
        assert!(payload_log10 <= -9.0, "{i}: {d:?}");
        assert!(
            d.false_positive_log10 <= payload_log10 + std::f64::consts::LOG10_2 + 1e-9,
            "{i}: {d:?}"
        );
    }
}

/// Null trials with the full geometric search: every trial is a fresh
/// random key against an image it did not mark (unmarked samples, patches,
/// synthetic images, and images marked under another key). The search
/// tries millions of hypotheses; the reported bound must account for them,
/// so no trial may come anywhere near the threshold.
fn full_search_null_trials(first: usize, trials: usize) {
    let mut pool: Vec<DynamicImage> = Vec::new();
    let own = Key::from_bytes([1; 32]);
    let embedder = EmbedOptions::default().build(&own).unwrap();
    for img in sample_images() {
        let marked = embedder.embed(&img, Payload::new(0x5555)).unwrap();
        for source in [&img, &marked] {
            pool.push(source.crop_imm(0, 0, 256, 256));
            pool.push(source.crop_imm(101, 37, 320, 288));
            pool.push(source.resize(380, 380, image::imageops::FilterType::Triangle));
        }
    }
    pool.extend(synthetic_images());
    let pool: Vec<_> = pool.iter().map(luma).collect();
    // A ledger of 1,000 issued payloads, the pool's own among them, each
    // trial compared with all of them as `tattle trace` does when nothing
    // can be read blind.
    let mut rng = KeyedStream::from_seed([124; 32]);
    let issued: Vec<Issued> = (0..1000u64)
        .map(|n| match n {
            0..=8 => 0x5555 + n,
            _ => rng.next_u64(),
        })
        .map(|p| Issued {
            recipient: Recipient::Studio,
            payload: Payload::new(p),
        })
        .collect();
    let mut rng = KeyedStream::from_seed([123; 32]);
    // Trial n always gets the n-th key of one stream and the same pool
    // image, so a long run split into ranges is the same run.
    let keys: Vec<Key> = (0..first + trials).map(|_| random_key(&mut rng)).collect();
    let outcomes: Vec<(bool, f64, f64, f64)> = {
        use rayon::prelude::*;
        keys.par_iter()
            .enumerate()
            .skip(first)
            .map(|(trial, key)| {
                let detector = DetectOptions::default().build(key).unwrap();
                let (d, reading) = detector.examine(&pool[trial % pool.len()]);
                let matched = detector.match_issued(&reading, &issued).unwrap();
                // The bound of the best match, reported or not.
                let all = DetectOptions::default().threshold(0.5).build(key).unwrap();
                let best_match = all
                    .match_issued(&reading, &issued)
                    .unwrap()
                    .first()
                    .map_or(0.0, |m| m.false_positive_log10);
                (
                    d.detected || d.payload.is_some() || !matched.is_empty(),
                    d.false_positive_log10,
                    d.score,
                    best_match,
                )
            })
            .collect()
    };
    // The trials that came nearest, so that a record can say what they were.
    for (trial, outcome) in (first..).zip(&outcomes) {
        if outcome.2 >= 5.0 {
            let image = &pool[trial % pool.len()];
            eprintln!(
                "trial {trial}: pool image {} ({}x{}), score {:.2}, log10 p {:.2}",
                trial % pool.len(),
                image.ncols(),
                image.nrows(),
                outcome.2,
                outcome.1
            );
        }
    }
    let detections = outcomes.iter().filter(|o| o.0).count();
    let lowest_log10 = outcomes.iter().map(|o| o.1).fold(0.0f64, f64::min);
    let highest_score = outcomes.iter().map(|o| o.2).fold(f64::NEG_INFINITY, f64::max);
    let lowest_match = outcomes.iter().map(|o| o.3).fold(0.0f64, f64::min);
    eprintln!(
        "{trials} full-search null trials (trials {first}..{}): {detections} detections or ledger matches; lowest reported log10 p {lowest_log10:.2}; highest score {highest_score:.2}; lowest log10 p of the best of 1,000 issued payloads {lowest_match:.2}",
        first + trials
    );
    assert_eq!(detections, 0);
    // The threshold is 1e-9; the null should stay far from it.
    assert!(lowest_log10 > -6.0, "{lowest_log10}");
    assert!(lowest_match > -6.0, "{lowest_match}");
}

#[test]
fn full_search_null_trials_quick() {
    full_search_null_trials(0, 36);
}

/// The long run recorded in docs/BENCHMARKS.md:
/// `TATTLE_NULL_TRIALS=10000 cargo test --release -p tattle-detect --test null_hypothesis -- --ignored --nocapture`.
/// `TATTLE_NULL_FIRST=n` starts at trial n, so a long run can be split into
/// ranges on a shared machine.
#[test]
#[ignore = "long: thousands of full geometric searches"]
fn full_search_null_trials_long() {
    let variable = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    full_search_null_trials(
        variable("TATTLE_NULL_FIRST", 0),
        variable("TATTLE_NULL_TRIALS", 10_000),
    );
}
