//! The studio subcommands: init, vendor, stamp, trace, ledger.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;
use tattle_studio::audit::{self, Export, FileCheck};
use tattle_studio::stamp::{plan, StampOptions, Stamped, Stamper};
use tattle_studio::trace::{render_heatmap, Trace, Tracer, Verdict};
use tattle_studio::warm::WarmWorkers;
use tattle_studio::{files, Studio};

use crate::report;

/// Where the studio workspace is: `--studio`, else `TATTLE_STUDIO`, else
/// the nearest folder at or above the current one holding `tattle.toml`.
#[derive(Args, Debug, Clone)]
pub struct StudioArg {
    /// The studio workspace folder [default: found from the current folder upwards].
    #[arg(long, env = "TATTLE_STUDIO", global = true, value_name = "DIR")]
    pub studio: Option<PathBuf>,
}

impl StudioArg {
    fn open(&self) -> Result<Studio> {
        let studio = match &self.studio {
            Some(dir) => Studio::open(dir)?,
            None => Studio::discover(&std::env::current_dir().context("cannot read the current folder")?)?,
        };
        crate::warn_if_exposed(&studio.key_path());
        Ok(studio)
    }
}

pub fn init(dir: &Path, name: Option<String>) -> Result<ExitCode> {
    let name = match name {
        Some(n) => n,
        None => std::path::absolute(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "studio".to_owned()),
    };
    let studio = Studio::init(dir, &name)?;
    let key = studio.key()?;
    eprintln!(
        "created studio {:?} in {}\n  key    {} (fingerprint {}; secret: back it up, never share it)\n  ledger {}",
        studio.config().studio,
        studio.root().display(),
        studio.key_path().display(),
        key.fingerprint(),
        studio.root().join(&studio.config().ledger).display(),
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum VendorCommand {
    /// Register a vendor; it gets the next free vendor id.
    Add {
        /// The vendor's name (unique, case-insensitive).
        name: String,
        /// Contact details to keep with it.
        #[arg(long)]
        contact: Option<String>,
    },
    /// List the registered vendors.
    List {
        /// JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn vendor(studio: &StudioArg, command: VendorCommand) -> Result<ExitCode> {
    let ledger = studio.open()?.ledger()?;
    match command {
        VendorCommand::Add { name, contact } => {
            let v = ledger.add_vendor(&name, contact.as_deref())?;
            eprintln!("added vendor {:?} (id {})", v.name, v.id);
        }
        VendorCommand::List { json } => {
            let vendors = ledger.vendors()?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&vendors)?)?;
            } else {
                writeln!(out, "{:>5}  {:<30}  {:<20}  contact", "id", "name", "added")?;
                for v in vendors {
                    writeln!(
                        out,
                        "{:>5}  {:<30}  {:<20}  {}",
                        v.id,
                        v.name,
                        v.created,
                        v.contact.unwrap_or_default()
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct StampArgs {
    /// The vendor receiving the delivery.
    #[arg(long)]
    vendor: String,
    /// Files and folders (recursively) to stamp.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where the stamped delivery goes; relative paths inside input folders are kept.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Files stamped at once [default: all cores].
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Stamp again outputs already stamped from the same source, and sources
    /// that already carry this studio's mark.
    #[arg(long)]
    force: bool,
    /// Mark strength [default: the studio's].
    #[arg(long)]
    strength: Option<f32>,
    /// JPEG quality of JPEG outputs [default: the studio's].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
    /// One JSON object per file on standard output.
    #[arg(long)]
    json: bool,
}

/// One line of `tattle stamp --json`.
#[derive(Serialize)]
struct StampRecord<'a> {
    source: String,
    output: String,
    status: &'a str,
    serial: Option<u64>,
    payload: Option<String>,
    error: Option<String>,
}

pub fn stamp(studio: &StudioArg, args: StampArgs) -> Result<ExitCode> {
    let studio = studio.open()?;
    let ledger = studio.ledger()?;
    let mut options = StampOptions::from_studio(&studio);
    options.force = args.force;
    options.strength = args.strength.unwrap_or(options.strength);
    options.jpeg_quality = args.quality.unwrap_or(options.jpeg_quality);
    let stamper = Stamper::new(&studio, &ledger, &args.vendor, options)?;
    let jobs = plan(&args.inputs, &args.out)?;
    if jobs.is_empty() {
        bail!("no images to stamp in {}", describe_inputs(&args.inputs));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let bar = report::progress_bar(jobs.len(), "files", args.json);
    let (issued, skipped) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failures: Vec<String> = pool.install(|| {
        jobs.par_iter()
            .filter_map(|(source, output)| {
                let result = stamper.stamp(source, output);
                let (status, issuance, error) = match &result {
                    Ok(Stamped::Issued(i)) => {
                        issued.fetch_add(1, Ordering::Relaxed);
                        ("issued", Some(i), None)
                    }
                    Ok(Stamped::Skipped(i)) => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        ("skipped", Some(i), None)
                    }
                    Err(e) => ("failed", None, Some(e.to_string())),
                };
                if args.json {
                    let record = StampRecord {
                        source: source.display().to_string(),
                        output: output.display().to_string(),
                        status,
                        serial: issuance.map(|i| i.serial),
                        payload: issuance.map(|i| i.payload.to_string()),
                        error: error.clone(),
                    };
                    if let Ok(line) = serde_json::to_string(&record) {
                        bar.suspend(|| println!("{line}"));
                    }
                }
                bar.inc(1);
                error
            })
            .collect()
    });
    bar.finish_and_clear();
    let vendor = stamper.vendor();
    eprintln!(
        "{}: {} stamped, {} already stamped and skipped, {} failed (vendor {:?}, id {})",
        args.out.display(),
        issued.into_inner(),
        skipped.into_inner(),
        failures.len(),
        vendor.name,
        vendor.id
    );
    for failure in &failures {
        eprintln!("tattle: failed: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn describe_inputs(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Images to trace.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// One JSON object per image per line.
    #[arg(long)]
    json: bool,
    /// Write a picture of where the mark was found (PNG). With several
    /// inputs, `NAME.png` becomes `NAME-<input name>.png`.
    #[arg(long, value_name = "OUT.png")]
    heatmap: Option<PathBuf>,
    /// Write a picture for showing a person that the image shows the asset
    /// its mark names (PNG): the image, the asset as the image shows it
    /// (the recovered geometry undone), and the two in alternating squares.
    /// With several inputs, `NAME.png` becomes `NAME-<input name>.png`.
    #[arg(long, value_name = "OUT.png")]
    side_by_side: Option<PathBuf>,
    /// Largest false-positive probability at which a mark is reported.
    #[arg(long, default_value_t = 1e-9)]
    threshold: f64,
}

/// One line of `tattle trace --json`: the verdict, and what ties it to the
/// file examined, the key and the tool, as evidence.
#[derive(Serialize)]
struct TraceRecord<'a> {
    path: String,
    /// SHA-256 of the file's bytes as examined.
    sha256: String,
    #[serde(flatten)]
    trace: &'a Trace,
    heatmap: Option<String>,
    /// With `--side-by-side`, the picture written.
    side_by_side: Option<String>,
    /// When it was examined (UTC, RFC 3339).
    examined: String,
    /// The fingerprint of the studio key it was examined with.
    key_fingerprint: &'a str,
    tattle_version: &'static str,
}

pub fn trace(studio: &StudioArg, args: TraceArgs) -> Result<ExitCode> {
    let studio = studio.open()?;
    let ledger = studio.ledger()?;
    let tracer = Tracer::new(&studio, &ledger, args.threshold)?;
    let key_fingerprint = studio.key()?.fingerprint();
    let (mut all_found, mut failed) = (true, false);
    for input in &args.inputs {
        let examined = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let result = WarmWorkers::during(|| files::load_image_hashed(input))
            .map_err(anyhow::Error::from)
            .and_then(|(sha256, image)| {
                let trace = tracer.trace(&image, args.heatmap.is_some())?;
                let several = args.inputs.len() > 1;
                let heatmap = crate::write_picture(args.heatmap.as_deref(), input, several, || {
                    trace.heatmap.as_ref().map(|map| render_heatmap(&image, map))
                })?;
                let side_by_side =
                    crate::write_picture(args.side_by_side.as_deref(), input, several, || {
                        trace.side_by_side(&image)
                    })?;
                Ok((trace, heatmap, side_by_side, sha256))
            });
        let (trace, heatmap, side_by_side, sha256) = match result {
            Ok(t) => t,
            Err(err) => {
                eprintln!("tattle: error: {err:#}");
                failed = true;
                continue;
            }
        };
        all_found &= trace.found();
        if args.heatmap.is_some() && heatmap.is_none() {
            // The map shows the pilot tile by tile where the mark was
            // detected; a match with the ledger rests on the payload.
            eprintln!(
                "tattle: no heat map for {}: the mark was not detected blind",
                input.display()
            );
        }
        if args.side_by_side.is_some() && side_by_side.is_none() {
            eprintln!(
                "tattle: no side-by-side picture for {}: it was not compared with the asset its mark names",
                input.display()
            );
        }
        let line = if args.json {
            serde_json::to_string(&TraceRecord {
                path: input.display().to_string(),
                sha256,
                trace: &trace,
                heatmap: heatmap.as_ref().map(|p| p.display().to_string()),
                side_by_side: side_by_side.as_ref().map(|p| p.display().to_string()),
                examined,
                key_fingerprint: &key_fingerprint,
                tattle_version: env!("CARGO_PKG_VERSION"),
            })?
        } else {
            describe_trace(&input.display().to_string(), &trace)
        };
        if !crate::print_line(&line) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Ok(crate::examination_status(failed, all_found))
}

fn describe_trace(path: &str, trace: &Trace) -> String {
    let d = &trace.detection;
    let odds = report::describe_odds(d);
    let recovery = report::describe_recovery(d);
    match &trace.verdict {
        Verdict::NotFound => format!("{path}: no mark of this studio found ({odds})"),
        Verdict::Unreadable => format!(
            "{path}: this studio's mark is present but its payload is unreadable ({odds}){recovery}"
        ),
        Verdict::UnknownPayload { payload, recipient } => format!(
            "{path}: this studio's mark with payload {payload} (read as {recipient}), which the ledger did not issue ({odds}){recovery}"
        ),
        Verdict::Attributed { vendor, issuance, also } => format!(
            "{path}: leaked from vendor {:?} (id {}): {} ({odds}){}{recovery}{}",
            vendor.name,
            vendor.id,
            describe_issuance(issuance),
            describe_also(also),
            report::describe_content(trace.content.as_ref()),
        ),
        Verdict::Matched {
            vendor,
            issuance,
            evidence,
            also,
        } => {
            let contest = report::describe_contest(evidence, "the vendor's issuances");
            let also = describe_also(also);
            format!(
                "{path}: leaked from vendor {:?} (id {}): the payload was unreadable blind, but the mark matches \
                 the best of the {} payloads the ledger issued (score {:.2}, false-positive probability {}): {}{contest}{also}{recovery}{}",
                vendor.name,
                vendor.id,
                evidence.compared,
                evidence.score,
                report::format_probability(evidence.false_positive_log10),
                describe_issuance(issuance),
                report::describe_content(trace.content.as_ref()),
            )
        }
    }
}

/// Other vendors' issuances a mark also matches: copies mixed together.
fn describe_also(also: &[tattle_detect::IssuedMatch]) -> String {
    also.iter()
        .map(|m| {
            format!(
                "; also matches {} payload {} (score {:.2}, false-positive probability {}): copies mixed together",
                m.issued.recipient,
                m.issued.payload,
                m.score,
                report::format_probability(m.false_positive_log10)
            )
        })
        .collect()
}

fn describe_issuance(issuance: &tattle_studio::ledger::Issuance) -> String {
    format!(
        "asset {} delivered {} as {}, issuance {} payload {}",
        issuance.source_path,
        issuance.issued.as_deref().unwrap_or(&issuance.created),
        issuance.output_path,
        issuance.serial,
        issuance.payload,
    )
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Write the whole ledger for an audit (to standard output).
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// Check that every stamped file still exists with its recorded hash.
    Verify {
        /// One JSON object per issuance.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// Issuances as CSV, one row each.
    Csv,
    /// Vendors and issuances as one JSON document.
    Json,
}

pub fn ledger(studio: &StudioArg, command: LedgerCommand) -> Result<ExitCode> {
    let ledger = studio.open()?.ledger()?;
    let mut out = std::io::stdout().lock();
    match command {
        LedgerCommand::Export {
            format: ExportFormat::Csv,
        } => {
            audit::write_csv(&ledger.issuances()?, &mut out)?;
        }
        LedgerCommand::Export {
            format: ExportFormat::Json,
        } => {
            writeln!(out, "{}", serde_json::to_string_pretty(&Export::of(&ledger)?)?)?;
        }
        LedgerCommand::Verify { json } => {
            let checks = audit::verify(&ledger)?;
            let mut problems = 0;
            for (issuance, check) in &checks {
                if json {
                    #[derive(Serialize)]
                    struct Line<'a> {
                        serial: u64,
                        output_path: &'a str,
                        check: &'a FileCheck,
                    }
                    let line = Line {
                        serial: issuance.serial,
                        output_path: &issuance.output_path,
                        check,
                    };
                    writeln!(out, "{}", serde_json::to_string(&line)?)?;
                }
                let what = match check {
                    FileCheck::Intact => continue,
                    FileCheck::Missing => "missing".to_owned(),
                    FileCheck::Modified { sha256 } => format!("modified (sha256 now {sha256})"),
                    FileCheck::Pending => {
                        "pending: the stamp was interrupted; re-run it to finish".to_owned()
                    }
                };
                problems += 1;
                if !json {
                    writeln!(
                        out,
                        "issuance {} {}: {what}",
                        issuance.serial, issuance.output_path
                    )?;
                }
            }
            eprintln!(
                "{} issuances checked, {} intact, {problems} with problems",
                checks.len(),
                checks.len() - problems
            );
            if problems > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
