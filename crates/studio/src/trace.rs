//! Tracing a leak: which vendor's copy is this?
//!
//! The detector searches the geometry once with the studio-wide pilot, then
//! reads the payload with the chips of every registered vendor (and the
//! studio-wide channel of `tattle embed`). The payload's false-positive
//! bound is multiplied by the number of channels tried. A payload is
//! attributed only when the vendor whose chips decoded it, the vendor id in
//! the payload and the ledger's record of the serial all agree; anything
//! else is reported as it is, never mapped to a vendor by guess.
//!
//! When no payload can be read blind (the image was damaged too much for
//! 64 bits to be decoded), the mark is compared with every payload the
//! ledger issued ([`Detector::match_issued`]): naming one of N known
//! payloads needs far less of the mark than decoding one of 2⁶⁴, and its
//! false-positive bound is multiplied by N instead. The vendor is named
//! when that bound passes the threshold; the issuance is the best match
//! among the vendor's, reported with the runner-up's score.
//!
//! The same comparison runs when a payload was read, to find the others
//! in a copy averaged from several vendors' (collusion): the decoder
//! reads one payload at most, the comparison names every vendor whose
//! issued payload the mark matches.
//!
//! A mark names a delivery; it does not prove that the image is that
//! delivery, since a mark can be estimated from one image and copied onto
//! another without the key (the copy attack). So an attributed or matched
//! image is also compared with the file the ledger says was delivered
//! ([`tattle_detect::compare_content`]), or with its source when the
//! delivered file is gone: a leak of the asset shows the asset.

use image::{DynamicImage, Rgb, RgbImage};
use serde::Serialize;
use tattle_core::plane::{luma, Plane};
use tattle_core::{Payload, Recipient};
use tattle_detect::{
    compare_content, ContentMatch, DetectOptions, Detection, Detector, Geometry, Heatmap, Issued, IssuedMatch,
};

use crate::error::{Error, Result};
use crate::files::{decode_image, read, sha256_hex};
use crate::ledger::{split_payload, Issuance, Ledger, Vendor};
use crate::workspace::Studio;

/// What tracing concluded about one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// No mark of this studio.
    NotFound,
    /// The studio's mark is present but no payload could be read (too
    /// damaged, or a mix of several copies).
    Unreadable,
    /// The mark carries a payload the ledger did not issue to the vendor
    /// whose chips read it.
    UnknownPayload {
        /// The payload.
        payload: Payload,
        /// Whose chips read it.
        recipient: Recipient,
    },
    /// A ledger issuance.
    Attributed {
        /// The vendor.
        vendor: Vendor,
        /// The issuance.
        issuance: Box<Issuance>,
        /// Other vendors' issuances the mark matches too, strongest first:
        /// copies of several vendors mixed together.
        also: Vec<IssuedMatch>,
    },
    /// No payload could be read blind, but the mark matches a payload the
    /// ledger issued (see the module docs).
    Matched {
        /// The vendor.
        vendor: Vendor,
        /// The best-matching of the vendor's issuances.
        issuance: Box<Issuance>,
        /// The match: its score, its false-positive bound, the runner-up.
        evidence: IssuedMatch,
        /// Other vendors' issuances that matched too, strongest first:
        /// copies of several vendors mixed together.
        also: Vec<IssuedMatch>,
    },
}

/// The result of tracing one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// The conclusion.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The detection it rests on. In a `matched` verdict its geometry and
    /// sharpening are those of the reading the match rests on: where the
    /// mark was found, which the blind detection alone does not report.
    pub detection: Detection,
    /// Whether the image shows the asset its mark names: for attributed and
    /// matched verdicts, `None` otherwise.
    pub content: Option<ContentCheck>,
    /// Where the mark was found, when asked for and detected.
    #[serde(skip)]
    pub heatmap: Option<Heatmap>,
}

/// What comparing a traced image with the asset its mark names found (see
/// the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ContentCheck {
    /// Compared with `file`, the file as delivered or, when that is gone or
    /// changed, the source it was stamped from.
    Compared {
        /// The file compared with.
        file: String,
        /// What the comparison found.
        found: ContentMatch,
    },
    /// The image and the asset overlap in too little, under the geometry
    /// the mark gave, to compare them.
    TooLittleOverlap {
        /// The file compared with.
        file: String,
    },
    /// Neither the delivered file nor the source is where the ledger
    /// recorded it with the content it recorded: nothing to compare with.
    Unavailable,
}

impl ContentCheck {
    /// Compares `image` with `asset` (luma planes; the asset read from
    /// `file`) under the geometry its mark was read at.
    ///
    /// ```
    /// use tattle_core::plane::Plane;
    /// use tattle_detect::Geometry;
    /// use tattle_studio::trace::ContentCheck;
    ///
    /// let asset = Plane::from_shape_fn((200, 300), |(y, x)| ((x * 7 + y * 13) % 29) as f32 * 8.0);
    /// let speck = Plane::from_elem((8, 8), 128.0);
    /// let check = ContentCheck::compare("asset.png", &asset, &speck, &Geometry::unchanged());
    /// assert_eq!(check, ContentCheck::TooLittleOverlap { file: "asset.png".into() });
    /// ```
    pub fn compare(file: &str, asset: &Plane, image: &Plane, geometry: &Geometry) -> Self {
        let file = file.to_owned();
        match compare_content(asset, image, geometry) {
            Some(found) => Self::Compared { file, found },
            None => Self::TooLittleOverlap { file },
        }
    }
}

impl Trace {
    /// Whether the studio's mark was found: detected, or matched with an
    /// issued payload.
    pub fn found(&self) -> bool {
        self.detection.detected || matches!(self.verdict, Verdict::Matched { .. })
    }

    /// [`render_side_by_side`] for `image`, the image this trace was made
    /// of, and the file its content was compared with, read again (and
    /// checked against the ledger's hash again). `None` when the image
    /// was not compared with its asset, or that file has changed since.
    pub fn side_by_side(&self, image: &DynamicImage) -> Option<RgbImage> {
        let (Some(ContentCheck::Compared { file, found }), Some(geometry)) =
            (&self.content, self.detection.geometry.as_ref())
        else {
            return None;
        };
        let (Verdict::Attributed { issuance, .. } | Verdict::Matched { issuance, .. }) = &self.verdict else {
            return None;
        };
        let (path, asset) = load_asset(issuance)?;
        (path == file).then(|| render_side_by_side(image, &asset, found, geometry))
    }
}

/// Traces images against a studio's ledger.
#[derive(Debug)]
pub struct Tracer<'a> {
    ledger: &'a Ledger,
    detector: Detector,
    /// Every payload the ledger issued, with the vendor it was issued to.
    issued: Vec<Issued>,
}

impl<'a> Tracer<'a> {
    /// Prepares a tracer for every vendor registered, and every issuance
    /// recorded, now.
    pub fn new(studio: &Studio, ledger: &'a Ledger, threshold: f64) -> Result<Self> {
        let key = studio.key()?;
        ledger.check_key(&key)?;
        let recipients = ledger.recipients()?;
        let detector = DetectOptions::default()
            .threshold(threshold)
            .build_for(&key, &recipients)
            .map_err(|source| Error::Engine {
                path: studio.key_path(),
                cause: source,
            })?;
        let issued = ledger
            .issued_payloads()?
            .into_iter()
            .map(|(vendor, payload)| Issued {
                recipient: Recipient::Vendor(vendor),
                payload,
            })
            .collect();
        Ok(Self {
            ledger,
            detector,
            issued,
        })
    }

    /// Traces one image; with `heatmap`, also maps where the mark is.
    pub fn trace(&self, image: &DynamicImage, heatmap: bool) -> Result<Trace> {
        let engine = |source| Error::Engine {
            path: self.ledger.path().to_owned(),
            cause: source,
        };
        let (mut detection, reading, map) = if heatmap {
            self.detector.examine_and_locate(&luma(image))
        } else {
            let (detection, reading) = self.detector.examine_image(image).map_err(engine)?;
            (detection, reading, None)
        };
        let matches = self
            .detector
            .match_issued(&reading, &self.issued)
            .map_err(engine)?;
        let verdict = match (detection.detected, detection.payload, detection.recipient) {
            (true, Some(payload), Some(recipient)) => self.attribute(payload, recipient, matches)?,
            (detected, _, _) => {
                let unread = if detected {
                    Verdict::Unreadable
                } else {
                    Verdict::NotFound
                };
                match self.matched(matches)? {
                    Some(matched) => {
                        if let Verdict::Matched { evidence, .. } = &matched {
                            detection.locate_by(evidence);
                        }
                        matched
                    }
                    None => unread,
                }
            }
        };
        let content = match &verdict {
            Verdict::Attributed { issuance, .. } | Verdict::Matched { issuance, .. } => detection
                .geometry
                .as_ref()
                .map(|geometry| check_content(image, issuance, geometry)),
            _ => None,
        };
        Ok(Trace {
            verdict,
            detection,
            content,
            heatmap: map,
        })
    }

    /// The verdict on a mark whose payload could not be read blind, from
    /// the issued payloads it matches ([`Detector::match_issued`], best
    /// first), when there are any.
    fn matched(&self, matches: Vec<IssuedMatch>) -> Result<Option<Verdict>> {
        let mut matches = matches.into_iter();
        let Some(evidence) = matches.next() else {
            return Ok(None);
        };
        let Recipient::Vendor(id) = evidence.issued.recipient else {
            return Ok(None);
        };
        let (Some(issuance), Some(vendor)) = (
            self.ledger.lookup(evidence.issued.payload)?,
            self.ledger.vendor(id)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Verdict::Matched {
            vendor,
            issuance: Box::new(issuance),
            evidence,
            also: matches.collect(),
        }))
    }

    fn attribute(
        &self,
        payload: Payload,
        recipient: Recipient,
        matches: Vec<IssuedMatch>,
    ) -> Result<Verdict> {
        let unknown = Verdict::UnknownPayload { payload, recipient };
        let Recipient::Vendor(reader) = recipient else {
            return Ok(unknown);
        };
        if split_payload(payload).0 != reader {
            return Ok(unknown);
        }
        let (Some(issuance), Some(vendor)) = (self.ledger.lookup(payload)?, self.ledger.vendor(reader)?)
        else {
            return Ok(unknown);
        };
        let also = matches
            .into_iter()
            .filter(|m| m.issued.recipient != recipient)
            .collect();
        Ok(Verdict::Attributed {
            vendor,
            issuance: Box::new(issuance),
            also,
        })
    }
}

/// Compares `image` with the asset `issuance` records, under the geometry
/// its mark was read at: with the delivered file if it is still as
/// delivered, else with the source if that is still as stamped.
fn check_content(image: &DynamicImage, issuance: &Issuance, geometry: &Geometry) -> ContentCheck {
    let Some((path, asset)) = load_asset(issuance) else {
        return ContentCheck::Unavailable;
    };
    // The decoded asset is freed before the comparison's own planes are
    // made: on a large delivery it is the biggest thing held.
    let plane = luma(&asset);
    drop(asset);
    ContentCheck::compare(path, &plane, &luma(image), geometry)
}

/// The asset `issuance` records, decoded, with the file it was read from:
/// the delivered file if it still holds what was delivered, else the
/// source if that still holds what was stamped.
fn load_asset(issuance: &Issuance) -> Option<(&String, DynamicImage)> {
    let candidates = [
        (&issuance.output_path, issuance.output_sha256.as_deref()),
        (&issuance.source_path, Some(issuance.source_sha256.as_str())),
    ];
    // A file that cannot be read, or no longer holds what the ledger
    // recorded, is passed over: comparing with other content would be
    // evidence of nothing. The hash is checked before decoding: a changed
    // file is not decoded.
    candidates.into_iter().find_map(|(path, recorded)| {
        let path_ref = std::path::Path::new(path);
        let bytes = read(path_ref).ok()?;
        (Some(sha256_hex(&bytes).as_str()) == recorded).then_some(())?;
        decode_image(path_ref, &bytes).ok().map(|asset| (path, asset))
    })
}

/// Longest side, in pixels, of each of [`render_side_by_side`]'s panels.
pub const PANEL_SIDE: u32 = 2048;
/// Side, in pixels of a panel, of the squares the third panel alternates.
const SQUARE: u32 = 64;
/// White pixels between two panels.
const GAP: u32 = 8;

/// A picture that shows a person what a content comparison measured:
/// `image`, then `asset` as the image shows it
/// ([`ContentMatch::original_as_received`], under the `geometry` the
/// comparison `found` was made under), then the two in alternating
/// squares, where a leak of the asset continues across every square's
/// edge. Each panel is the image's size, shrunk to at most
/// [`PANEL_SIDE`] pixels a side.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// use tattle_core::plane::luma;
/// use tattle_detect::{compare_content, Geometry};
/// use tattle_studio::trace::render_side_by_side;
///
/// let asset = DynamicImage::ImageRgb8(RgbImage::from_fn(400, 300, |x, y| {
///     let h = (x / 9).wrapping_mul(0x9e37_79b9) ^ (y / 7).wrapping_mul(0x85eb_ca6b);
///     image::Rgb([(h.wrapping_mul(0xc2b2_ae35) >> 24) as u8; 3])
/// }));
/// let leak = asset.crop_imm(100, 50, 200, 200);
/// let geometry = Geometry::unchanged();
/// let found = compare_content(&luma(&asset), &luma(&leak), &geometry).unwrap();
/// let picture = render_side_by_side(&leak, &asset, &found, &geometry);
/// assert_eq!(picture.dimensions(), (3 * 200 + 2 * 8, 200));
/// ```
pub fn render_side_by_side(
    image: &DynamicImage,
    asset: &DynamicImage,
    found: &ContentMatch,
    geometry: &Geometry,
) -> RgbImage {
    let (width, height) = (image.width().max(1), image.height().max(1));
    let received = image.to_rgb8();
    let shown = found.original_as_received(&asset.to_rgb8(), geometry, width, height);
    let zoom = (f64::from(PANEL_SIDE) / f64::from(width.max(height))).min(1.0);
    let (pw, ph) = (
        ((f64::from(width) * zoom).round() as u32).max(1),
        ((f64::from(height) * zoom).round() as u32).max(1),
    );
    let panel = |picture: RgbImage| {
        if (pw, ph) == picture.dimensions() {
            picture
        } else {
            image::imageops::resize(&picture, pw, ph, image::imageops::FilterType::Triangle)
        }
    };
    let (received, shown) = (panel(received), panel(shown));
    let mut out = RgbImage::from_pixel(3 * pw + 2 * GAP, ph, Rgb([255; 3]));
    for (x, y, pixel) in received.enumerate_pixels() {
        let other = *shown.get_pixel(x, y);
        out.put_pixel(x, y, *pixel);
        out.put_pixel(pw + GAP + x, y, other);
        let mixed = if (x / SQUARE + y / SQUARE) % 2 == 0 {
            *pixel
        } else {
            other
        };
        out.put_pixel(2 * (pw + GAP) + x, y, mixed);
    }
    out
}

/// The heat map drawn over a dimmed grey copy of the image: cells where
/// the mark was found glow from red (weak) to yellow (strong); cells with
/// no evidence show only the dimmed image.
pub fn render_heatmap(image: &DynamicImage, map: &Heatmap) -> RgbImage {
    let grey = image.to_luma8();
    RgbImage::from_fn(grey.width(), grey.height(), |x, y| {
        let base = f32::from(grey.get_pixel(x, y)[0]) * 0.5;
        // z-scores: ~N(0, 1) without a mark; 2 and above is evidence.
        let heat = map
            .score_at(x, y)
            .map_or(0.0, |z| ((z - 1.5) / 10.0).clamp(0.0, 1.0));
        let glow = |target: f32, amount: f32| (base * (1.0 - amount) + target * amount).round() as u8;
        if heat <= 0.0 {
            Rgb([base as u8; 3])
        } else {
            let alpha = 0.2 + 0.4 * heat;
            Rgb([glow(255.0, alpha), glow(255.0 * heat, alpha), glow(0.0, alpha)])
        }
    })
}
