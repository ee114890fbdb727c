//! Finds and reads tattle's keyed watermark, blind (no original needed),
//! and says how likely the verdict is to be wrong.
//!
//! ```
//! use image::{DynamicImage, RgbImage};
//! use tattle_detect::{DetectOptions, Key, Payload};
//! use tattle_embed::EmbedOptions;
//!
//! let img = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 384, |x, y| {
//!     let v = ((x * 7919 + y * 104729) % 251) as u8;
//!     image::Rgb([v, v / 2, 255 - v])
//! }));
//! let key = Key::from_bytes([7; 32]);
//! let marked = EmbedOptions::default().build(&key).unwrap().embed(&img, Payload::new(0xc0ffee)).unwrap();
//!
//! let detector = DetectOptions::default().build(&key).unwrap();
//! let found = detector.detect(&marked).unwrap();
//! assert!(found.detected);
//! assert_eq!(found.payload, Some(Payload::new(0xc0ffee)));
//! assert!(found.false_positive_probability < 1e-9);
//!
//! // The unmarked image, or another key: nothing, and no payload.
//! assert!(!detector.detect(&img).unwrap().detected);
//! let other = DetectOptions::default().build(&Key::from_bytes([8; 32])).unwrap();
//! assert_eq!(other.detect(&marked).unwrap().payload, None);
//! ```
//!
//! # The statistical test
//!
//! The detector measures, for every slot of the tile (see
//! [`tattle_core::layout`]), a weighted sum `y` of the DCT coefficients that
//! carry it over all copies of the tile in the image. Two tests follow:
//!
//! * **Pilot**: the normalised correlation `z_pilot` of `y` with the keyed
//!   pilot chips.
//! * **Payload**: the coded bits are decoded (soft Viterbi), the CRC
//!   checked, and the re-encoded codeword's normalised correlation
//!   `z_payload` with `y` measured. Because the decoder picked the best of
//!   2⁶⁴ possible payloads, its bound is multiplied by 2⁶⁴.
//!
//! Under the null hypothesis (not marked with this key) both correlations
//! obey Hoeffding's bound `P(z ≥ t) ≤ exp(−t²/2)`, over the choice of key,
//! for any image ([`tattle_core::stats`]). The reported false-positive
//! probability is `2 · min(p_pilot, 2⁶⁴ · p_payload)`, a rigorous upper
//! bound (union bound over the two tests). A mark is reported when it is
//! below [`DetectOptions::threshold`]; a payload only when, in addition,
//! its CRC is correct and the payload test alone passes the threshold.
#![deny(missing_docs)]

use image::DynamicImage;
use serde::Serialize;
use tattle_core::layout::{Role, Schedule};
use tattle_core::mask::MaskParams;
use tattle_core::plane::{luma, Plane};
use tattle_core::stats::{log10_tail_bound, normalised_correlation};
use tattle_core::{code, Error};

pub use tattle_core::observe::Observation;
pub use tattle_core::{Key, Payload, Result};

/// Options of a [`Detector`].
#[derive(Clone, Debug, PartialEq)]
pub struct DetectOptions {
    /// Largest false-positive probability at which a mark is reported.
    /// Default: 1e-9. Valid: (0, 0.5].
    pub threshold: f64,
    /// The perceptual model used to weigh blocks; must match the embedder's.
    /// Default: [`MaskParams::default`].
    pub mask: MaskParams,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            threshold: 1e-9,
            mask: MaskParams::default(),
        }
    }
}

impl DetectOptions {
    /// Sets the decision threshold.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Checks the options and prepares a detector for one key.
    pub fn build(&self, key: &Key) -> Result<Detector> {
        if !(self.threshold > 0.0 && self.threshold <= 0.5) {
            return Err(Error::InvalidParameter {
                name: "threshold",
                reason: format!("{} is outside (0, 0.5]", self.threshold),
            });
        }
        Ok(Detector {
            schedule: Schedule::new(key),
            options: self.clone(),
        })
    }
}

/// The verdict on one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// A mark of this key is present (false-positive probability below the threshold).
    pub detected: bool,
    /// The payload, when it decodes with a correct CRC and passes its own test.
    pub payload: Option<Payload>,
    /// Upper bound on the probability that an image not marked with this key
    /// scores at least this high. May underflow to 0; see `false_positive_log10`.
    pub false_positive_probability: f64,
    /// Base-10 logarithm of `false_positive_probability`, exact where it underflows.
    pub false_positive_log10: f64,
    /// The decisive test's normalised correlation (a z-score; larger is stronger).
    pub score: f64,
    /// Normalised correlation with the pilot.
    pub pilot_score: f64,
    /// Normalised correlation with the decoded codeword.
    pub payload_score: f64,
    /// Coded bits whose hard decision disagrees with the decoded codeword
    /// (out of [`code::CODED_BITS`]): how damaged the mark is before error correction.
    pub bit_errors: usize,
    /// Blocks that contributed to the measurement.
    pub blocks: usize,
}

/// Detects one key's mark. Cheap to share between threads.
#[derive(Clone, Debug)]
pub struct Detector {
    schedule: Schedule,
    options: DetectOptions,
}

impl Detector {
    /// Looks for the mark in an image.
    pub fn detect(&self, image: &DynamicImage) -> Result<Detection> {
        Ok(self.detect_luma(&luma(image)))
    }

    /// Looks for the mark in a luma plane (grey levels).
    pub fn detect_luma(&self, luma: &Plane) -> Detection {
        self.test(&Observation::measure(luma, &self.options.mask))
    }

    /// Runs the statistical tests on an observation.
    pub fn test(&self, observation: &Observation) -> Detection {
        let y = observation.slots();
        let roles = self.schedule.roles();
        let chips = self.schedule.chips();
        let pilot_score = normalised_correlation(y, chips, |i| roles[i] == Role::Pilot);

        let decoded = code::decode(&self.soft_bits(observation));
        let signs = self.schedule.slot_signs(&decoded.codeword);
        let payload_score = normalised_correlation(y, &signs, |i| roles[i] != Role::Pilot);

        let log10_pilot = log10_tail_bound(pilot_score);
        let log10_payload = if decoded.payload.is_some() {
            (log10_tail_bound(payload_score) + 64.0 * std::f64::consts::LOG10_2).min(0.0)
        } else {
            0.0
        };
        let log10_p = (std::f64::consts::LOG10_2 + log10_pilot.min(log10_payload)).min(0.0);
        let log10_threshold = self.options.threshold.log10();
        let detected = log10_p <= log10_threshold;
        let payload_ok = detected && decoded.payload.is_some() && log10_payload <= log10_threshold;
        Detection {
            detected,
            payload: decoded.payload.filter(|_| payload_ok),
            false_positive_probability: 10f64.powf(log10_p),
            false_positive_log10: log10_p,
            score: if log10_pilot <= log10_payload {
                pilot_score
            } else {
                payload_score
            },
            pilot_score,
            payload_score,
            bit_errors: decoded.channel_errors,
            blocks: observation.blocks(),
        }
    }
}

impl Detector {
    /// The soft value of every coded bit (positive votes for 0), before
    /// error correction: what the channel delivered.
    pub fn soft_bits(&self, observation: &Observation) -> Vec<f32> {
        let mut soft = vec![0.0f32; code::CODED_BITS];
        for ((role, chip), v) in self
            .schedule
            .roles()
            .iter()
            .zip(self.schedule.chips())
            .zip(observation.slots())
        {
            if let Role::Coded(bit) = role {
                if let Some(s) = soft.get_mut(usize::from(*bit)) {
                    *s += chip * v;
                }
            }
        }
        soft
    }

    /// Coded bits whose hard decision disagrees with `payload`'s codeword:
    /// the raw bit errors before error correction, for benchmarks.
    pub fn raw_bit_errors(&self, observation: &Observation, payload: Payload) -> usize {
        code::encode(payload)
            .iter()
            .zip(self.soft_bits(observation))
            .filter(|(&bit, soft)| (*soft < 0.0) != bit)
            .count()
    }
}

/// The README's code, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
