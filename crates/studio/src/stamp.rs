//! Stamping a delivery: every asset gets its own payload, recorded in the
//! ledger before the marked file is published.

use std::path::{Path, PathBuf};

use tattle_core::Recipient;
use tattle_detect::{DetectOptions, Detector};
use tattle_embed::{EmbedOptions, Embedder, MIN_SIDE};

use crate::error::{Error, Result};
use crate::files;
use crate::ledger::{Issuance, IssuanceRequest, Ledger, Vendor};
use crate::workspace::Studio;

/// How to stamp.
#[derive(Clone, Debug, PartialEq)]
pub struct StampOptions {
    /// Embedding strength.
    pub strength: f32,
    /// JPEG quality of JPEG outputs.
    pub jpeg_quality: u8,
    /// Stamp even when the output is already stamped from the same source,
    /// or when the source already carries this studio's mark.
    pub force: bool,
}

impl StampOptions {
    /// The workspace's defaults, without `force`.
    pub fn from_studio(studio: &Studio) -> Self {
        Self {
            strength: studio.config().strength,
            jpeg_quality: studio.config().jpeg_quality,
            force: false,
        }
    }
}

/// What happened to one asset.
#[derive(Clone, Debug, PartialEq)]
pub enum Stamped {
    /// Marked, published and recorded.
    Issued(Issuance),
    /// The output was already stamped from this very source for this
    /// vendor and is intact: nothing was done.
    Skipped(Issuance),
}

impl Stamped {
    /// The issuance behind the output.
    pub fn issuance(&self) -> &Issuance {
        match self {
            Stamped::Issued(i) | Stamped::Skipped(i) => i,
        }
    }
}

/// Stamps assets for one vendor. Share it between threads by reference.
///
/// ```
/// use tattle_studio::{Studio, stamp::{Stamper, StampOptions, Stamped}};
/// # let dir = tempfile::tempdir().unwrap();
/// # let source = dir.path().join("frame.png");
/// # image::RgbImage::from_fn(256, 256, |x, y| image::Rgb([(x * 7 + y * 13) as u8, (x ^ y) as u8, 90]))
/// #     .save(&source).unwrap();
/// let studio = Studio::init(&dir.path().join("studio"), "Nimbus").unwrap();
/// let ledger = studio.ledger().unwrap();
/// ledger.add_vendor("Acme VFX", None).unwrap();
/// let stamper = Stamper::new(&studio, &ledger, "Acme VFX", StampOptions::from_studio(&studio)).unwrap();
///
/// let out = dir.path().join("out/frame.png");
/// let first = stamper.stamp(&source, &out).unwrap();
/// assert!(matches!(first, Stamped::Issued(_)));
/// // Running again finds the same output already stamped from the same source.
/// assert!(matches!(stamper.stamp(&source, &out).unwrap(), Stamped::Skipped(_)));
/// ```
#[derive(Debug)]
pub struct Stamper<'a> {
    ledger: &'a Ledger,
    vendor: Vendor,
    embedder: Embedder,
    guard: Detector,
    options: StampOptions,
}

impl<'a> Stamper<'a> {
    /// Prepares to stamp for the vendor called `vendor`.
    pub fn new(studio: &Studio, ledger: &'a Ledger, vendor: &str, options: StampOptions) -> Result<Self> {
        let key = studio.key()?;
        ledger.check_key(&key)?;
        let vendor = ledger
            .vendor_by_name(vendor)?
            .ok_or_else(|| Error::UnknownVendor {
                name: vendor.to_owned(),
            })?;
        let engine = |source| Error::Engine {
            path: studio.key_path(),
            cause: source,
        };
        let embedder = EmbedOptions::default()
            .strength(options.strength)
            .build_for(&key, Recipient::Vendor(vendor.id))
            .map_err(engine)?;
        // The studio's pilot and every vendor's payload, at the unchanged
        // geometry only: a cheap check that catches assets stamped before,
        // in any vendor's name, without the cost of the geometric search,
        // and that confirms each new mark reads back.
        let recipients = ledger.recipients()?;
        let guard = DetectOptions::default()
            .geometric_search(false)
            .build_for(&key, &recipients)
            .map_err(engine)?;
        Ok(Self {
            ledger,
            vendor,
            embedder,
            guard,
            options,
        })
    }

    /// The vendor being stamped for.
    pub fn vendor(&self) -> &Vendor {
        &self.vendor
    }

    /// Stamps `source` into `output` (format from its extension), creating
    /// the output's folder. The issuance is recorded as pending before the
    /// file is published and as issued after. An image whose mark does not
    /// read back (too flat or too small to carry one; see
    /// `Detector::confirm_mark`) is an error: nothing is written and the
    /// pending issuance is withdrawn.
    pub fn stamp(&self, source: &Path, output: &Path) -> Result<Stamped> {
        let source = source.canonicalize().map_err(Error::io(source))?;
        let output = resolve_output(output)?;
        if files::same_file(&source, &output) {
            return Err(Error::OutputIsSource { path: output });
        }
        files::format_for(&output)?;
        let bytes = files::read(&source)?;
        let source_sha256 = files::sha256_hex(&bytes);
        if !self.options.force {
            if let Some(done) = self.ledger.find_issued(self.vendor.id, &source_sha256, &output)? {
                let intact =
                    std::fs::read(&output).is_ok_and(|b| Some(files::sha256_hex(&b)) == done.output_sha256);
                if intact {
                    return Ok(Stamped::Skipped(done));
                }
            }
        }
        let (mut image, icc) = files::decode_image_with_profile(&source, &bytes)?;
        // The encoded source is not needed again: one copy fewer at the memory peak.
        drop(bytes);
        let (width, height) = (image.width(), image.height());
        if width < MIN_SIDE || height < MIN_SIDE {
            return Err(Error::Engine {
                path: source,
                cause: tattle_core::Error::ImageTooSmall {
                    width,
                    height,
                    min_side: MIN_SIDE,
                },
            });
        }
        if !self.options.force {
            // Read from the image's rows: no luma plane at the memory peak.
            let found = self.guard.detect(&image).map_err(|e| Error::Engine {
                path: source.clone(),
                cause: e,
            })?;
            if found.detected {
                return Err(Error::AlreadyMarked {
                    path: source,
                    probability: found.false_positive_probability,
                });
            }
        }
        let issuance = self.ledger.begin_issuance(&IssuanceRequest {
            vendor_id: self.vendor.id,
            source_path: &source,
            source_sha256: &source_sha256,
            output_path: &output,
            width,
            height,
            strength: self.options.strength,
        })?;
        self.embedder
            .embed_in_place(&mut image, issuance.payload)
            .map_err(|e| Error::Engine {
                path: source.clone(),
                cause: e,
            })?;
        // A mark that does not read back is never shipped as if it were
        // one: the file is not written, and the issuance, never published,
        // is withdrawn (unless a file already stands at the output, which an
        // interrupted run may have published under it).
        let recipient = Recipient::Vendor(self.vendor.id);
        if let Err(cause) = self.guard.confirm_mark(&image, recipient, issuance.payload) {
            if !output.exists() {
                self.ledger.abandon_issuance(issuance.serial)?;
            }
            return Err(Error::Engine { path: source, cause });
        }
        let output_sha256 =
            files::save_image_atomic_hashed(&image, &output, self.options.jpeg_quality, icc.as_deref())?;
        let issued = self.ledger.complete_issuance(issuance.serial, &output_sha256)?;
        Ok(Stamped::Issued(issued))
    }
}

/// The output's absolute path with `..` and links resolved (as the ledger
/// records it), creating its folder.
fn resolve_output(output: &Path) -> Result<PathBuf> {
    let not_a_file = || {
        Error::io(output)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    };
    let name = output.file_name().ok_or_else(not_a_file)?;
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
    Ok(parent.canonicalize().map_err(Error::io(parent))?.join(name))
}

/// Every (source, output) pair of a delivery: files are stamped to
/// `out_dir/<file name>`, folders recursively to `out_dir/<path inside the
/// folder>`. Only files with an image extension are taken from folders;
/// files named explicitly are always taken (and fail later if they are not
/// images). Two sources that would land on one output are an error.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # std::fs::create_dir_all(dir.path().join("shots/010")).unwrap();
/// # for f in ["shots/010/a.png", "shots/notes.txt", "b.jpg"] { std::fs::write(dir.path().join(f), b"").unwrap(); }
/// use tattle_studio::stamp::plan;
/// let out = dir.path().join("out");
/// let jobs = plan(&[dir.path().join("shots"), dir.path().join("b.jpg")], &out).unwrap();
/// let outputs: Vec<_> = jobs.iter().map(|(_, o)| o.strip_prefix(&out).unwrap().to_owned()).collect();
/// assert_eq!(outputs, [std::path::Path::new("010/a.png"), std::path::Path::new("b.jpg")]);
/// ```
pub fn plan(inputs: &[PathBuf], out_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut jobs = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(Error::io(input))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.map_err(|e| {
                    let path = e.path().unwrap_or(input).to_owned();
                    Error::io(path)(e.into())
                })?;
                if entry.file_type().is_file() && files::is_image_path(entry.path()) {
                    let relative = entry.path().strip_prefix(input).unwrap_or(entry.path());
                    found.push((entry.path().to_owned(), out_dir.join(relative)));
                }
            }
            jobs.extend(found);
        } else {
            let name = input.file_name().ok_or_else(|| {
                Error::io(input)(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a file name",
                ))
            })?;
            jobs.push((input.clone(), out_dir.join(name)));
        }
    }
    let mut outputs: Vec<&PathBuf> = jobs.iter().map(|(_, o)| o).collect();
    outputs.sort();
    if let Some(duplicate) = outputs.windows(2).find_map(|w| match w {
        [a, b] if a == b => Some(*a),
        _ => None,
    }) {
        return Err(Error::Format {
            path: duplicate.clone(),
            reason: "two inputs would be stamped to this same output; stamp them separately".into(),
        });
    }
    Ok(jobs)
}
