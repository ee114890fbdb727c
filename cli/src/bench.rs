//! `tattle bench`: robustness, invisibility and speed over a folder of images.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use tattle_attacks::{metrics, Chain, SUITE};
use tattle_core::code::CODED_BITS;
use tattle_core::plane::luma;
use tattle_core::prng::KeyedStream;
use tattle_core::Recipient;
use tattle_core::{Key, Payload};
use tattle_detect::{DetectOptions, Detector, Issued, Reading};
use tattle_embed::EmbedOptions;

use tattle_studio::files;

/// Arguments of `tattle bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Folder of images to mark and attack.
    #[arg(long, default_value = "samples")]
    images: PathBuf,
    /// Comma-separated attack names, each a single attack or a chain joined by `+` (`rotate+5+jpeg-75`); default: the whole suite; `list` prints them.
    #[arg(long, value_delimiter = ',')]
    attacks: Option<Vec<String>>,
    /// Print JSON Lines (one object per image, then a summary) instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the tables as Markdown to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Mark strength.
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// The embedder's SSIM floor for evening the mark out (1 turns it off;
    /// see the library's `EmbedOptions::ssim_floor`).
    #[arg(long, default_value_t = EmbedOptions::default().ssim_floor)]
    ssim_floor: f32,
    /// Mark every image with this many keys (the public benchmark key first,
    /// then keys derived from it the same way), so that each cell is a rate
    /// over keys as well as images: the geometric search's successes can
    /// depend on the key.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    keys: u32,
    /// Issued payloads in the simulated ledger each image is traced against
    /// when its payload cannot be read blind: its own, 8 neighbouring
    /// serials, and others drawn at random (see `tattle trace`). 0 turns
    /// ledger tracing off.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    ledger: u32,
}

/// How one attack went on one image.
#[derive(Clone, Debug, Serialize)]
struct Outcome {
    attack: String,
    detected: bool,
    exact: bool,
    raw_bit_errors: usize,
    score: f64,
    /// The image's own payload against the reading the verdict rests on
    /// (or another the search made): its codeword's score and the log10
    /// bound a blind verdict for it would report there. Where the payload
    /// was not read, how far it was from being read: under the threshold's
    /// log10 it failed in the decoder, above it in the channel.
    own_score: f64,
    own_blind_log10: f64,
    /// The unmarked original, attacked the same way, was reported as marked.
    false_positive_unmarked: bool,
    /// The marked image, attacked, was reported as marked under another key.
    false_positive_wrong_key: bool,
    /// The payload was read blind, or failing that the simulated ledger's
    /// best match was the image's own payload.
    traced: bool,
    /// The unmarked original, attacked, matched a payload of the ledger.
    ledger_match_unmarked: bool,
    /// The marked image, attacked, matched a payload of the ledger under another key.
    ledger_match_wrong_key: bool,
}

/// Everything measured on one image under one key.
#[derive(Clone, Debug, Serialize)]
struct ImageReport {
    image: String,
    /// Which of the benchmark's keys marked it (0: the public benchmark key).
    key: u32,
    width: u32,
    height: u32,
    luma_psnr: f64,
    rgb_psnr: f64,
    ssim: f64,
    embed_seconds: f64,
    detect_seconds: f64,
    outcomes: Vec<Outcome>,
}

/// Counts for one row of the robustness table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct Tally {
    runs: usize,
    exact: usize,
    detected: usize,
    bit_errors: usize,
    false_positives_unmarked: usize,
    false_positives_wrong_key: usize,
    traced: usize,
    ledger_matches_unmarked: usize,
    ledger_matches_wrong_key: usize,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.runs += 1;
        self.exact += usize::from(o.exact);
        self.detected += usize::from(o.detected);
        self.bit_errors += o.raw_bit_errors;
        self.false_positives_unmarked += usize::from(o.false_positive_unmarked);
        self.false_positives_wrong_key += usize::from(o.false_positive_wrong_key);
        self.traced += usize::from(o.traced);
        self.ledger_matches_unmarked += usize::from(o.ledger_match_unmarked);
        self.ledger_matches_wrong_key += usize::from(o.ledger_match_wrong_key);
    }

    fn percent(part: usize, whole: usize) -> f64 {
        if whole == 0 {
            0.0
        } else {
            100.0 * part as f64 / whole as f64
        }
    }

    fn exact_percent(&self) -> f64 {
        Self::percent(self.exact, self.runs)
    }

    fn detected_percent(&self) -> f64 {
        Self::percent(self.detected, self.runs)
    }

    fn traced_percent(&self) -> f64 {
        Self::percent(self.traced, self.runs)
    }

    fn mean_bit_errors(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.bit_errors as f64 / self.runs as f64
        }
    }
}

/// Mean and minimum of a list of values.
fn mean_min(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    (mean, min)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The fixed key the benchmark marks with, and the one it checks false
/// positives with: derived from public strings, so runs are reproducible.
fn bench_key(name: &str) -> Key {
    Key::from_bytes(blake3::derive_key(
        "tattle bench public test key",
        name.as_bytes(),
    ))
}

/// The `index`th key the benchmark marks with: the public benchmark key
/// first, so that a one-key run is the benchmark as it always was.
fn marking_key(index: u32) -> Key {
    match index {
        0 => bench_key("mark"),
        n => bench_key(&format!("mark {n}")),
    }
}

fn payload_for(index: usize) -> Payload {
    Payload::new(0x7a77_1e00_0000_0000 ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Serials on either side of an image's own in its simulated ledger:
/// consecutive deliveries, the payloads closest to it (their codewords
/// differ in about half their bits since payloads are mixed before coding).
const LEDGER_NEIGHBOURS: u64 = 4;

/// The simulated ledger of `size` payloads that image `index` is traced
/// against: its own payload, its neighbouring serials, and the rest drawn
/// from a fixed stream, all on the studio channel the benchmark marks.
fn ledger_for(index: usize, size: u32) -> Vec<Issued> {
    if size == 0 {
        return Vec::new();
    }
    let own = payload_for(index).value();
    let neighbours = (1..=LEDGER_NEIGHBOURS).flat_map(|k| [own.wrapping_add(k), own.wrapping_sub(k)]);
    let mut stream = KeyedStream::from_seed(blake3::derive_key("tattle bench ledger", &index.to_le_bytes()));
    let others = std::iter::repeat_with(move || stream.next_u64());
    std::iter::once(own)
        .chain(neighbours)
        .chain(others)
        .take(size as usize)
        .map(|p| Issued {
            recipient: Recipient::Studio,
            payload: Payload::new(p),
        })
        .collect()
}

fn image_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "png" | "jpg" | "jpeg" | "tif" | "tiff" | "webp" | "exr"
                    )
                })
                .unwrap_or(false)
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{}: no images (png, jpg, tif, webp, exr) found", dir.display());
    }
    Ok(paths)
}

fn select_attacks(names: &Option<Vec<String>>) -> Result<Vec<Chain>> {
    match names {
        None => Ok(SUITE.iter().map(Chain::from).collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                Chain::parse(n.trim()).with_context(|| {
                    let known: Vec<_> = SUITE.iter().map(|a| a.name).collect();
                    format!(
                        "unknown attack {n:?}; known attacks (chain them with +): {}",
                        known.join(", ")
                    )
                })
            })
            .collect(),
    }
}

struct Rig {
    key: u32,
    ledger: u32,
    embed: tattle_embed::Embedder,
    detect: Detector,
    wrong_key: Detector,
}

fn bench_image(
    rig: &Rig,
    path: &Path,
    index: usize,
    attacks: &[Chain],
    bar: &ProgressBar,
) -> Result<ImageReport> {
    let original = files::load_image(path)?;
    let payload = payload_for(index);
    let ledger = ledger_for(index, rig.ledger);
    // Whether an examined image matches any payload of the ledger.
    let matches = |detector: &Detector, reading: &Reading| -> Result<Option<Payload>> {
        Ok(detector
            .match_issued(reading, &ledger)?
            .first()
            .map(|m| m.issued.payload))
    };
    let started = Instant::now();
    let marked = rig.embed.embed(&original, payload)?;
    let embed_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let _ = rig.detect.detect(&marked)?;
    let detect_seconds = started.elapsed().as_secs_f64();
    // Attacks run in parallel too, so one large image does not leave a core idle.
    let outcomes = attacks
        .par_iter()
        .enumerate()
        .map(|(a, attack)| {
            let seed = (index * 1000 + a) as u64;
            let attacked = attack
                .apply(&marked, seed)
                .with_context(|| format!("{}: {}", path.display(), attack.name()))?;
            let attacked_luma = luma(&attacked);
            let (found, reading) = rig.detect.examine(&attacked_luma);
            let unmarked = attack.apply(&original, seed)?;
            let (unmarked_found, unmarked_reading) = rig.detect.examine(&luma(&unmarked));
            let (wrong_key_found, wrong_key_reading) = rig.wrong_key.examine(&attacked_luma);
            let exact = found.payload == Some(payload);
            let own = rig.detect.payload_evidence(
                &reading,
                Issued {
                    recipient: Recipient::Studio,
                    payload,
                },
            )?;
            let outcome = Outcome {
                attack: attack.name().to_owned(),
                detected: found.detected,
                exact,
                raw_bit_errors: rig.detect.raw_bit_errors(&reading.observation, payload),
                score: found.score,
                own_score: own.score,
                own_blind_log10: own.blind_false_positive_log10,
                false_positive_unmarked: unmarked_found.detected,
                false_positive_wrong_key: wrong_key_found.detected,
                traced: exact || matches(&rig.detect, &reading)? == Some(payload),
                ledger_match_unmarked: matches(&rig.detect, &unmarked_reading)?.is_some(),
                ledger_match_wrong_key: matches(&rig.wrong_key, &wrong_key_reading)?.is_some(),
            };
            bar.inc(1);
            Ok(outcome)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageReport {
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        key: rig.key,
        width: original.width(),
        height: original.height(),
        luma_psnr: metrics::luma_psnr(&original, &marked),
        rgb_psnr: metrics::rgb_psnr(&original, &marked),
        ssim: metrics::luma_ssim(&original, &marked),
        embed_seconds,
        detect_seconds,
        outcomes,
    })
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    if args.attacks.as_deref().map(|a| a == ["list"]).unwrap_or(false) {
        for a in SUITE {
            println!("{:<24} {:?}", a.name, a.family);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let attacks = select_attacks(&args.attacks)?;
    let paths = image_paths(&args.images)?;
    let wrong_key = DetectOptions::default().build(&bench_key("another studio"))?;
    let bar = crate::report::progress_bar(
        paths.len() * attacks.len() * args.keys as usize,
        "attacked images",
        args.json,
    );
    let started = Instant::now();
    let mut reports: Vec<Result<ImageReport>> = Vec::new();
    for key in 0..args.keys {
        let rig = Rig {
            key,
            ledger: args.ledger,
            embed: EmbedOptions::default()
                .strength(args.strength)
                .ssim_floor(args.ssim_floor)
                .build(&marking_key(key))?,
            detect: DetectOptions::default().build(&marking_key(key))?,
            wrong_key: wrong_key.clone(),
        };
        reports.par_extend(
            paths
                .par_iter()
                .enumerate()
                .map(|(i, p)| bench_image(&rig, p, i, &attacks, &bar)),
        );
    }
    bar.finish_and_clear();
    let mut ok = Vec::new();
    let mut failures = 0;
    for r in reports {
        match r {
            Ok(r) => ok.push(r),
            Err(e) => {
                eprintln!("tattle: error: {e:#}");
                failures += 1;
            }
        }
    }
    let summary = Summary::new(&ok, &attacks, args.keys, started.elapsed().as_secs_f64());
    if args.json {
        for r in &ok {
            println!("{}", serde_json::to_string(r)?);
        }
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.markdown(&ok, args));
    }
    if let Some(out) = &args.out {
        std::fs::write(out, summary.markdown(&ok, args))
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(if failures > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Serialize)]
struct Summary {
    /// Distinct images marked and attacked (each under every key).
    images: usize,
    keys: u32,
    rows: Vec<(String, Tally)>,
    luma_psnr_mean_min: (f64, f64),
    rgb_psnr_mean_min: (f64, f64),
    ssim_mean_min: (f64, f64),
    embed_megapixels_per_second_median: f64,
    detect_megapixels_per_second_median: f64,
    wall_seconds: f64,
}

impl Summary {
    fn new(reports: &[ImageReport], attacks: &[Chain], keys: u32, wall_seconds: f64) -> Self {
        let rows = attacks
            .iter()
            .map(|a| {
                let mut t = Tally::default();
                for o in reports
                    .iter()
                    .flat_map(|r| r.outcomes.iter())
                    .filter(|o| o.attack == a.name())
                {
                    t.add(o);
                }
                (a.name().to_owned(), t)
            })
            .collect();
        let field = |f: fn(&ImageReport) -> f64| reports.iter().map(f).collect::<Vec<_>>();
        let mp = |r: &ImageReport| f64::from(r.width) * f64::from(r.height) / 1e6;
        Self {
            images: reports
                .iter()
                .map(|r| &r.image)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            keys,
            rows,
            luma_psnr_mean_min: mean_min(&field(|r| r.luma_psnr)),
            rgb_psnr_mean_min: mean_min(&field(|r| r.rgb_psnr)),
            ssim_mean_min: mean_min(&field(|r| r.ssim)),
            embed_megapixels_per_second_median: median(
                reports.iter().map(|r| mp(r) / r.embed_seconds).collect(),
            ),
            detect_megapixels_per_second_median: median(
                reports.iter().map(|r| mp(r) / r.detect_seconds).collect(),
            ),
            wall_seconds,
        }
    }

    fn markdown(&self, reports: &[ImageReport], args: &BenchArgs) -> String {
        let mut s = String::new();
        let keys = match self.keys {
            1 => String::new(),
            n => format!(", each marked with {n} keys"),
        };
        s += &format!(
            "## Robustness ({} images from `{}`{keys}, strength {})\n\n",
            self.images,
            args.images.display(),
            args.strength
        );
        let ledger = args.ledger > 0;
        s += &format!("| attack | exact payload % | detected % | mean raw bit errors (of {CODED_BITS}) | false positives: unmarked | false positives: wrong key |");
        s += if ledger {
            " traced with the ledger % | ledger matches: unmarked | ledger matches: wrong key |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        } else {
            "\n|---|---:|---:|---:|---:|---:|\n"
        };
        for (name, t) in &self.rows {
            s += &format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {}/{} | {}/{} |",
                t.exact_percent(),
                t.detected_percent(),
                t.mean_bit_errors(),
                t.false_positives_unmarked,
                t.runs,
                t.false_positives_wrong_key,
                t.runs
            );
            if ledger {
                s += &format!(
                    " {:.1} | {}/{} | {}/{} |",
                    t.traced_percent(),
                    t.ledger_matches_unmarked,
                    t.runs,
                    t.ledger_matches_wrong_key,
                    t.runs
                );
            }
            s += "\n";
        }
        if ledger {
            s += &format!(
                "\nTraced with the ledger: the payload read blind, or else the best match among {} issued payloads \
                 (the image's own, {} neighbouring serials, the rest random) was its own.\n",
                args.ledger,
                2 * LEDGER_NEIGHBOURS
            );
        }
        s += "\n## Invisibility\n\n| metric | mean | min |\n|---|---:|---:|\n";
        for (name, (mean, min)) in [
            ("luma PSNR (dB)", self.luma_psnr_mean_min),
            ("RGB PSNR (dB)", self.rgb_psnr_mean_min),
            ("SSIM (luma)", self.ssim_mean_min),
        ] {
            s += &format!("| {name} | {mean:.4} | {min:.4} |\n");
        }
        s += "\n| image | size | luma PSNR | RGB PSNR | SSIM | exact after all attacks |\n|---|---|---:|---:|---:|---:|\n";
        for r in reports {
            let exact = r.outcomes.iter().filter(|o| o.exact).count();
            let key = match self.keys {
                1 => String::new(),
                _ => format!(" (key {})", r.key),
            };
            s += &format!(
                "| {}{key} | {}x{} | {:.2} | {:.2} | {:.4} | {}/{} |\n",
                r.image,
                r.width,
                r.height,
                r.luma_psnr,
                r.rgb_psnr,
                r.ssim,
                exact,
                r.outcomes.len()
            );
        }
        s += &format!(
            "\n## Speed\n\n| | median MP/s |\n|---|---:|\n| embed (decoded image in memory) | {:.1} |\n| detect (no attack) | {:.1} |\n\nWall time: {:.1} s.\n",
            self.embed_megapixels_per_second_median, self.detect_megapixels_per_second_median, self.wall_seconds
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(exact: bool, detected: bool, errors: usize, fp: bool) -> Outcome {
        Outcome {
            attack: "x".to_owned(),
            detected,
            exact,
            raw_bit_errors: errors,
            score: 0.0,
            own_score: 0.0,
            own_blind_log10: 0.0,
            false_positive_unmarked: fp,
            false_positive_wrong_key: false,
            traced: exact || detected,
            ledger_match_unmarked: false,
            ledger_match_wrong_key: fp,
        }
    }

    #[test]
    fn tally_arithmetic() {
        let mut t = Tally::default();
        t.add(&outcome(true, true, 4, false));
        t.add(&outcome(false, true, 10, true));
        t.add(&outcome(false, false, 100, false));
        t.add(&outcome(true, true, 6, false));
        assert_eq!(t.exact_percent(), 50.0);
        assert_eq!(t.detected_percent(), 75.0);
        assert_eq!(t.mean_bit_errors(), 30.0);
        assert_eq!(t.false_positives_unmarked, 1);
        assert_eq!(t.traced_percent(), 75.0);
        assert_eq!(t.ledger_matches_wrong_key, 1);
        assert_eq!(Tally::default().exact_percent(), 0.0);
    }

    #[test]
    fn the_simulated_ledger_holds_the_own_payload_and_its_neighbours() {
        let ledger = ledger_for(3, 100);
        assert_eq!(ledger.len(), 100);
        assert_eq!(ledger[0].payload, payload_for(3));
        let own = payload_for(3).value();
        assert!(ledger
            .iter()
            .any(|i| i.payload.value() == own + LEDGER_NEIGHBOURS));
        assert_eq!(ledger, ledger_for(3, 100), "deterministic");
        assert_ne!(ledger[20], ledger_for(4, 100)[20]);
        assert!(ledger_for(3, 0).is_empty());
        assert_eq!(ledger_for(3, 2).len(), 2);
    }

    #[test]
    fn mean_min_and_median() {
        assert_eq!(mean_min(&[3.0, 1.0, 2.0]), (2.0, 1.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
