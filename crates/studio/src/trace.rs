//! Tracing a leak: which vendor's copy is this?
//!
//! The detector searches the geometry once with the studio-wide pilot, then
//! reads the payload with the chips of every registered vendor (and the
//! studio-wide channel of `tattle embed`). The payload's false-positive
//! bound is multiplied by the number of channels tried. A payload is
//! attributed only when the vendor whose chips decoded it, the vendor id in
//! the payload and the ledger's record of the serial all agree; anything
//! else is reported as it is, never mapped to a vendor by guess.

use image::{DynamicImage, Rgb, RgbImage};
use serde::Serialize;
use tattle_core::plane::luma;
use tattle_core::{Payload, Recipient};
use tattle_detect::{DetectOptions, Detection, Detector, Heatmap};

use crate::error::{Error, Result};
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
    },
}

/// The result of tracing one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// The conclusion.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The detection it rests on.
    pub detection: Detection,
    /// Where the mark was found, when asked for and detected.
    #[serde(skip)]
    pub heatmap: Option<Heatmap>,
}

/// Traces images against a studio's ledger.
#[derive(Debug)]
pub struct Tracer<'a> {
    ledger: &'a Ledger,
    detector: Detector,
}

impl<'a> Tracer<'a> {
    /// Prepares a tracer for every vendor registered now.
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
        Ok(Self { ledger, detector })
    }

    /// Traces one image; with `heatmap`, also maps where the mark is.
    pub fn trace(&self, image: &DynamicImage, heatmap: bool) -> Result<Trace> {
        let plane = luma(image);
        let (detection, map) = if heatmap {
            self.detector.locate(&plane)
        } else {
            (self.detector.detect_luma(&plane), None)
        };
        let verdict = match (detection.detected, detection.payload, detection.recipient) {
            (false, _, _) => Verdict::NotFound,
            (true, Some(payload), Some(recipient)) => self.attribute(payload, recipient)?,
            (true, _, _) => Verdict::Unreadable,
        };
        Ok(Trace {
            verdict,
            detection,
            heatmap: map,
        })
    }

    fn attribute(&self, payload: Payload, recipient: Recipient) -> Result<Verdict> {
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
        Ok(Verdict::Attributed {
            vendor,
            issuance: Box::new(issuance),
        })
    }
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
