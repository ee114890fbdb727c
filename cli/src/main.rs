//! `tattle`: invisible, keyed, forensic watermarks for production art.

mod bench;
mod report;
mod studio;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tattle_core::plane::luma;
use tattle_core::{Key, Payload, Recipient};
use tattle_detect::{DetectOptions, Detection, Issued, IssuedMatch};
use tattle_embed::EmbedOptions;
use tattle_studio::files;
use tattle_studio::trace::{render_side_by_side, ContentCheck};
use tattle_studio::warm::WarmWorkers;

// Marking allocates a few image-sized planes per frame; mimalloc keeps and
// reuses them where the system allocator returns them to the OS and pays
// for faulting them in again (measured: 2x on 1080p frames).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Invisible, keyed, forensic watermarks for production art.
#[derive(Parser, Debug)]
#[command(name = "tattle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    studio: studio::StudioArg,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new random secret key (from the OS random generator) to a file with mode 0600.
    Keygen {
        /// Where to write the key. An existing file is never overwritten.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Mark an image with a 64-bit payload.
    Embed {
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The payload: exactly 16 hexadecimal digits.
        #[arg(long)]
        payload: String,
        /// The image to mark.
        input: PathBuf,
        /// Where to write the marked image; its extension picks the format (png, jpg, tif, webp, exr).
        #[arg(short, long)]
        output: PathBuf,
        /// Mark strength: higher is more robust and more visible.
        #[arg(long, default_value_t = 1.0)]
        strength: f32,
        /// JPEG quality when the output is a JPEG (1-100).
        #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: u8,
        /// Allow the output to replace the input file.
        #[arg(long)]
        force: bool,
    },
    /// Look for a mark in images.
    Detect {
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Images to examine.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// One JSON object per image per line instead of text.
        #[arg(long)]
        json: bool,
        /// Largest false-positive probability at which a mark is reported.
        #[arg(long, default_value_t = 1e-9)]
        threshold: f64,
        /// A text file of the payloads marked with `tattle embed` under this
        /// key, one per line (16 hexadecimal digits; blank lines and `#`
        /// comments ignored). When a payload cannot be read blind, the mark
        /// is compared with them, which needs far less of it; the
        /// false-positive bound is multiplied by their number. (`tattle
        /// trace` does this with the ledger for `tattle stamp`'s vendors.)
        #[arg(long, value_name = "FILE")]
        payloads: Option<PathBuf>,
        /// The picture that was marked (or its source). Every input whose
        /// mark is found is also compared with it, to check that the input
        /// shows that picture: a mark can be copied onto another picture
        /// without the key. (`tattle trace` compares with the delivered
        /// file by itself.)
        #[arg(long, value_name = "FILE")]
        original: Option<PathBuf>,
        /// With `--original`: write a picture for showing a person that the
        /// image shows the original (PNG): the image, the original as the
        /// image shows it (the recovered geometry undone), and the two in
        /// alternating squares. With several inputs, `NAME.png` becomes
        /// `NAME-<input name>.png`.
        #[arg(long, value_name = "OUT.png", requires = "original")]
        side_by_side: Option<PathBuf>,
    },
    /// Create a studio workspace: tattle.toml, a new secret key and an empty ledger.
    Init {
        /// The workspace folder (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The studio's name [default: the folder's name].
        #[arg(long)]
        name: Option<String>,
    },
    /// Manage the vendors that receive deliveries.
    Vendor {
        #[command(subcommand)]
        command: studio::VendorCommand,
    },
    /// Stamp a delivery for a vendor: every image gets its own payload, recorded in the ledger.
    Stamp(studio::StampArgs),
    /// Find out which vendor and asset a leaked image came from.
    ///
    /// The payload is read blind; when it cannot be, the mark is compared with
    /// every payload the ledger issued (verdict "matched"), which needs far
    /// less of the mark. Every vendor whose issued payload the mark matches is
    /// named: copies of several vendors averaged together name them all.
    Trace(studio::TraceArgs),
    /// Export or verify the issuance ledger.
    Ledger {
        #[command(subcommand)]
        command: studio::LedgerCommand,
    },
    /// Measure robustness, invisibility and speed over a folder of images.
    Bench(bench::BenchArgs),
    /// Show where two images differ: writes the luma difference, amplified, around mid grey.
    Diff {
        /// The original image.
        original: PathBuf,
        /// The marked image.
        marked: PathBuf,
        /// Where to write the picture of the difference (PNG).
        #[arg(short, long)]
        output: PathBuf,
        /// Amplification of the difference.
        #[arg(long, default_value_t = 20.0)]
        gain: f32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tattle: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keygen { output } => keygen(&output),
        Command::Embed {
            key,
            payload,
            input,
            output,
            strength,
            quality,
            force,
        } => embed(&key, &payload, &input, &output, strength, quality, force),
        Command::Detect {
            key,
            inputs,
            json,
            threshold,
            payloads,
            original,
            side_by_side,
        } => detect(
            &key,
            &inputs,
            DetectArgs {
                json,
                threshold,
                payloads: payloads.as_deref(),
                original: original.as_deref(),
                side_by_side: side_by_side.as_deref(),
            },
        ),
        Command::Init { dir, name } => studio::init(&dir, name),
        Command::Vendor { command } => studio::vendor(&cli.studio, command),
        Command::Stamp(args) => studio::stamp(&cli.studio, args),
        Command::Trace(args) => studio::trace(&cli.studio, args),
        Command::Ledger { command } => studio::ledger(&cli.studio, command),
        Command::Bench(args) => bench::run(&args),
        Command::Diff {
            original,
            marked,
            output,
            gain,
        } => diff(&original, &marked, &output, gain),
    }
}

fn keygen(output: &Path) -> Result<ExitCode> {
    let key = Key::generate()?;
    key.write_new(output)?;
    eprintln!(
        "wrote new key {} (fingerprint {})",
        output.display(),
        key.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}

fn load_key(path: &Path) -> Result<Key> {
    let key = Key::from_file(path).with_context(|| format!("key file {}", path.display()))?;
    // Only a real key is worth protecting; a malformed one gets its error alone.
    warn_if_exposed(path);
    Ok(key)
}

/// Warns, on standard error, about a key file others can read.
pub(crate) fn warn_if_exposed(path: &Path) {
    if let Some(warning) = Key::exposure_warning(path) {
        eprintln!("tattle: warning: {warning}");
    }
}

fn embed(
    key_path: &Path,
    payload: &str,
    input: &Path,
    output: &Path,
    strength: f32,
    quality: u8,
    force: bool,
) -> Result<ExitCode> {
    let payload: Payload = payload.parse().context("--payload")?;
    let key = load_key(key_path)?;
    let embedder = EmbedOptions::default().strength(strength).build(&key)?;
    let checker = DetectOptions::default().geometric_search(false).build(&key)?;
    if !force && files::same_file(input, output) {
        bail!(
            "{} is the input file; refusing to overwrite it (pass --force to replace it)",
            output.display()
        );
    }
    let (mut image, icc) =
        WarmWorkers::during(|| files::decode_image_with_profile(input, &files::read(input)?))?;
    // Marked where it lies: a frame is never held twice.
    embedder
        .embed_in_place(&mut image, payload)
        .with_context(|| format!("cannot mark {}", input.display()))?;
    // A mark that does not read back is refused, not written as if marked.
    checker
        .confirm_mark(&image, Recipient::Studio, payload)
        .with_context(|| format!("cannot mark {} (nothing written)", input.display()))?;
    // The colour profile travels with the pixels it describes.
    files::save_image_atomic_with_profile(&image, output, quality, icc.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// One line of `tattle detect --json`.
#[derive(Serialize)]
struct DetectRecord<'a> {
    path: &'a str,
    /// SHA-256 of the file's bytes as examined.
    sha256: &'a str,
    #[serde(flatten)]
    detection: &'a Detection,
    /// The listed payload the mark matches, when none was read blind.
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a IssuedMatch>,
    /// With `--original`, whether the image shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a ContentCheck>,
    /// With `--side-by-side`, the picture written.
    #[serde(skip_serializing_if = "Option::is_none")]
    side_by_side: Option<String>,
}

/// Reads `--payloads`: one payload per line, blank lines and `#` comments
/// ignored. A line that is not a payload is an error naming the file and
/// the line.
fn read_payloads(path: &Path) -> Result<Vec<Issued>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read payload list {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| (n, line.split('#').next().unwrap_or_default().trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            let payload: Payload = line
                .parse()
                .with_context(|| format!("{} line {}", path.display(), n + 1))?;
            Ok(Issued {
                recipient: Recipient::Studio,
                payload,
            })
        })
        .collect()
}

/// `tattle detect`'s options beyond its key and inputs.
struct DetectArgs<'a> {
    json: bool,
    threshold: f64,
    payloads: Option<&'a Path>,
    original: Option<&'a Path>,
    side_by_side: Option<&'a Path>,
}

fn detect(key_path: &Path, inputs: &[PathBuf], args: DetectArgs) -> Result<ExitCode> {
    let DetectArgs {
        json,
        threshold,
        payloads,
        original,
        side_by_side,
    } = args;
    let key = load_key(key_path)?;
    let issued = payloads.map(read_payloads).transpose()?.unwrap_or_default();
    // The decoded original is kept only to draw the side-by-side picture:
    // the comparison itself needs its luma alone.
    let original = original
        .map(|path| {
            let decoded = files::load_image(path)?;
            let plane = luma(&decoded);
            let kept = side_by_side.is_some().then_some(decoded);
            anyhow::Ok((path.display().to_string(), plane, kept))
        })
        .transpose()?;
    let detector = DetectOptions::default().threshold(threshold).build(&key)?;
    let mut all_found = true;
    let mut failed = false;
    for input in inputs {
        let result = WarmWorkers::during(|| files::load_image_hashed(input))
            .map_err(anyhow::Error::from)
            .and_then(|(sha256, img)| {
                let (mut detection, reading) = detector.examine_image(&img)?;
                let matched = if detection.payload.is_none() {
                    detector.match_issued(&reading, &issued)?.into_iter().next()
                } else {
                    None
                };
                if let Some(matched) = &matched {
                    detection.locate_by(matched);
                }
                let found = detection.detected || matched.is_some();
                let content = original.as_ref().filter(|_| found).and_then(|(file, asset, _)| {
                    let geometry = detection.geometry.as_ref()?;
                    Some(ContentCheck::compare(file, asset, &luma(&img), geometry))
                });
                let picture = write_picture(side_by_side, input, inputs.len() > 1, || {
                    let (_, _, Some(decoded)) = original.as_ref()? else {
                        return None;
                    };
                    let (Some(ContentCheck::Compared { found, .. }), Some(geometry)) =
                        (&content, detection.geometry.as_ref())
                    else {
                        return None;
                    };
                    Some(render_side_by_side(&img, decoded, found, geometry))
                })?;
                Ok((detection, matched, sha256, content, picture))
            });
        let (detection, matched, sha256, content, picture) = match result {
            Ok(found) => found,
            Err(err) => {
                eprintln!("tattle: error: {err:#}");
                failed = true;
                continue;
            }
        };
        all_found &= detection.detected || matched.is_some();
        if side_by_side.is_some() && picture.is_none() {
            eprintln!(
                "tattle: no side-by-side picture for {}: it was not compared with the original",
                input.display()
            );
        }
        let path = input.display().to_string();
        let line = if json {
            serde_json::to_string(&DetectRecord {
                path: &path,
                sha256: &sha256,
                detection: &detection,
                matched: matched.as_ref(),
                content: content.as_ref(),
                side_by_side: picture.as_ref().map(|p| p.display().to_string()),
            })?
        } else {
            describe(&path, &detection, matched.as_ref()) + &report::describe_content(content.as_ref())
        };
        if !print_line(&line) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Ok(examination_status(failed, all_found))
}

/// Writes the picture `render` draws, when there is one, to `out` (PNG);
/// with `several` inputs, to `out`'s name with `-<input name>` added, so
/// that each input gets its own. The path written, if any.
pub(crate) fn write_picture(
    out: Option<&Path>,
    input: &Path,
    several: bool,
    render: impl FnOnce() -> Option<image::RgbImage>,
) -> Result<Option<PathBuf>> {
    let Some(out) = out else {
        return Ok(None);
    };
    let Some(picture) = render() else {
        return Ok(None);
    };
    let path = if several {
        let stem = out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.with_file_name(format!("{stem}-{name}.png"))
    } else {
        out.to_owned()
    };
    files::save_image_atomic(&image::DynamicImage::ImageRgb8(picture), &path, 95)?;
    Ok(Some(path))
}

/// Writes one line of a verdict to standard output; false when the reader
/// has gone (a closed pipe, as with `| head`), which is not an error worth
/// reporting: the caller stops quietly.
pub(crate) fn print_line(line: &str) -> bool {
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}

/// The exit status of commands that examine images (`detect`, `trace`):
/// 2 when a file could not be examined, else 1 when a mark was not found
/// in every file, else 0.
pub(crate) fn examination_status(failed: bool, all_found: bool) -> ExitCode {
    if failed {
        ExitCode::from(2)
    } else if all_found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn describe(path: &str, d: &Detection, matched: Option<&IssuedMatch>) -> String {
    let odds = format!("{}, score {:.1}", report::describe_odds(d), d.score);
    let recovery = report::describe_recovery(d);
    match (d.detected, d.payload, matched) {
        (true, Some(p), _) => format!("{path}: marked, payload {p} ({odds}){recovery}"),
        (_, None, Some(m)) => format!(
            "{path}: marked; no payload read blind, but the mark matches payload {}, the best of the {} listed \
             (score {:.2}, false-positive probability {}){}{recovery}",
            m.issued.payload,
            m.compared,
            m.score,
            report::format_probability(m.false_positive_log10),
            report::describe_contest(m, "the listed payloads"),
        ),
        // `detect` reads the studio-wide channel of `embed`; a delivery of
        // `stamp` shows its pilot here but carries its vendor's payload, so
        // the commonest cause of this line on an intact file is the wrong
        // command.
        (true, None, None) => format!(
            "{path}: marked, payload unreadable ({odds}){recovery}; a delivery of `tattle stamp` carries its \
             vendor's payload, which `tattle trace` reads in the studio"
        ),
        (false, _, _) => format!("{path}: no mark found ({odds})"),
    }
}

fn diff(original: &Path, marked: &Path, output: &Path, gain: f32) -> Result<ExitCode> {
    let a = tattle_core::plane::luma(&files::load_image(original)?);
    let b = tattle_core::plane::luma(&files::load_image(marked)?);
    if a.dim() != b.dim() {
        bail!(
            "{} is {}x{} but {} is {}x{}",
            original.display(),
            a.ncols(),
            a.nrows(),
            marked.display(),
            b.ncols(),
            b.nrows()
        );
    }
    let picture = image::GrayImage::from_fn(a.ncols() as u32, a.nrows() as u32, |x, y| {
        let d = b[[y as usize, x as usize]] - a[[y as usize, x as usize]];
        image::Luma([(128.0 + gain * d).round().clamp(0.0, 255.0) as u8])
    });
    files::save_image_atomic(&image::DynamicImage::ImageLuma8(picture), output, 95)?;
    Ok(ExitCode::SUCCESS)
}
