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
// Every path here is reachable from user input: no index that can panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use image::DynamicImage;
use serde::Serialize;
use tattle_core::dct::BLOCK;
use tattle_core::layout::{Role, Schedule};
use tattle_core::mask::perceptual_mask_with;
use tattle_core::mask::MaskParams;
use tattle_core::observe::{block_means, BlockBands, BlockGains};
use tattle_core::pattern::tile_pattern;
use tattle_core::plane::{luma, LumaSource, Plane};
use tattle_core::stats::{log10_tail_bound, normalised_correlation};
use tattle_core::{code, Error};

pub mod heatmap;
pub mod sync;

use std::sync::Arc;

pub use heatmap::Heatmap;
pub use sync::Geometry;
pub use tattle_core::observe::Observation;
pub use tattle_core::{Key, Payload, Recipient, Result};

/// Options of a [`Detector`].
#[derive(Clone, Debug, PartialEq)]
pub struct DetectOptions {
    /// Largest false-positive probability at which a mark is reported.
    /// Default: 1e-9. Valid: (0, 0.5].
    pub threshold: f64,
    /// The perceptual model used to weigh blocks; must match the embedder's.
    /// Default: [`MaskParams::default`].
    pub mask: MaskParams,
    /// Search for crops, scaling, rotation, aspect change and mirroring
    /// (see [`sync`]). Without it only the unchanged geometry is tested, and
    /// the false-positive bounds are correspondingly tighter. Default: true.
    pub geometric_search: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            threshold: 1e-9,
            mask: MaskParams::default(),
            geometric_search: true,
        }
    }
}

impl DetectOptions {
    /// Sets the decision threshold.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Turns the geometric search on or off.
    pub fn geometric_search(mut self, on: bool) -> Self {
        self.geometric_search = on;
        self
    }

    /// Checks the options and prepares a detector for one key, reading the
    /// studio-wide channel ([`Recipient::Studio`]).
    pub fn build(&self, key: &Key) -> Result<Detector> {
        self.build_for(key, &[Recipient::Studio])
    }

    /// Checks the options and prepares a detector that reads the payload of
    /// every one of `recipients` (see [`tattle_core::recipient`]). The
    /// payload test's false-positive bound is multiplied by their number.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Key, Payload, Recipient};
    /// use tattle_embed::EmbedOptions;
    ///
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(256, 256, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let key = Key::from_bytes([7; 32]);
    /// let marked = EmbedOptions::default().build_for(&key, Recipient::Vendor(2)).unwrap()
    ///     .embed(&img, Payload::new(42)).unwrap();
    /// let vendors = [Recipient::Vendor(1), Recipient::Vendor(2), Recipient::Vendor(3)];
    /// let found = DetectOptions::default().build_for(&key, &vendors).unwrap().detect(&marked).unwrap();
    /// assert_eq!(found.recipient, Some(Recipient::Vendor(2)));
    /// assert_eq!(found.payload, Some(Payload::new(42)));
    /// ```
    pub fn build_for(&self, key: &Key, recipients: &[Recipient]) -> Result<Detector> {
        if !(self.threshold > 0.0 && self.threshold <= 0.5) {
            return Err(Error::InvalidParameter {
                name: "threshold",
                reason: format!("{} is outside (0, 0.5]", self.threshold),
            });
        }
        let mut unique = recipients.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let readers: Vec<Reader> = unique
            .into_iter()
            .map(|recipient| Reader {
                recipient,
                schedule: Schedule::new(key, recipient),
            })
            .collect();
        // Roles and pilot chips are the same for every recipient of a key.
        let Some(pilot) = readers.first().map(|r| r.schedule.clone()) else {
            return Err(Error::InvalidParameter {
                name: "recipients",
                reason: "a detector needs at least one recipient to read".into(),
            });
        };
        let pilot_values: Vec<f32> = pilot
            .roles()
            .iter()
            .zip(pilot.chips())
            .map(|(r, c)| if *r == Role::Pilot { *c } else { 0.0 })
            .collect();
        Ok(Detector {
            correlator: Arc::new(sync::PilotCorrelator::new(&tile_pattern(&pilot_values))),
            readers: Arc::new(readers),
            pilot: Arc::new(pilot),
            options: self.clone(),
        })
    }
}

/// One recipient's payload reader.
#[derive(Debug)]
struct Reader {
    recipient: Recipient,
    schedule: Schedule,
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
    /// The geometric change that was undone to find the mark, when one was found.
    pub geometry: Option<Geometry>,
    /// Whose payload chips the reported payload was read with.
    pub recipient: Option<Recipient>,
}

/// Detects one key's mark. Cheap to share between threads.
#[derive(Clone)]
pub struct Detector {
    readers: Arc<Vec<Reader>>,
    /// The slot roles and pilot chips, common to every reader.
    pilot: Arc<Schedule>,
    options: DetectOptions,
    correlator: Arc<sync::PilotCorrelator>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Payload decodings the geometric search may try; the payload test's bound
/// is multiplied by this.
pub const MAX_CANDIDATES: usize = 8;

impl Detector {
    /// Looks for the mark in an image.
    pub fn detect(&self, image: &DynamicImage) -> Result<Detection> {
        Ok(self.search(LumaSource::Image(image)).detection)
    }

    /// Looks for the mark in a luma plane (grey levels).
    pub fn detect_luma(&self, luma: &Plane) -> Detection {
        self.examine(luma).0
    }

    /// Looks for the mark and also returns the observation the verdict rests
    /// on (for benchmarks and diagnostics).
    pub fn examine(&self, luma: &Plane) -> (Detection, Observation) {
        let found = self.search(LumaSource::Plane(luma));
        (found.detection, found.observation)
    }

    /// Looks for the mark and maps where in the image it was found: the
    /// pilot's strength tile by tile (see [`Heatmap`]). No map when no mark
    /// was detected.
    pub fn locate(&self, luma: &Plane) -> (Detection, Option<Heatmap>) {
        let found = self.search(LumaSource::Plane(luma));
        let map = found
            .alignment
            .filter(|_| found.detection.detected)
            .and_then(|a| heatmap::measure(luma, &self.options.mask, a, self.pilot_schedule()));
        (found.detection, map)
    }

    fn search(&self, source: LumaSource) -> Found {
        let mask = &self.options.mask;
        // The unchanged geometry first, straight from the source's rows (an
        // image that needs no search never has its luma plane built), each
        // band measured while it is in cache: a block's gain depends on
        // that block alone.
        let (h, w) = source.dim();
        let (weights, parts) = perceptual_mask_with(
            w,
            h,
            |first_row, out| source.rows(first_row, out),
            mask,
            |first_row, luma, weights| {
                let bands = BlockBands::of_slice(luma, w);
                let means = ndarray::ArrayView2::from_shape((weights.len() / w.max(1), w), weights)
                    .map(|rows| block_means(&rows))
                    .unwrap_or_default();
                let gains = BlockGains::from_bands(&bands, &means);
                Observation::measure_bands_robust_part(&bands, &gains, first_row / BLOCK)
            },
        );
        let straight = Observation::sum(parts);
        let mut best = self.test(&straight);
        best.geometry = Some(Geometry::unchanged());
        let mut found = Found {
            detection: best,
            observation: straight,
            alignment: Some(Alignment::UNCHANGED),
        };
        // The unchanged geometry is one of the search's hypotheses; when it
        // already yields a payload there is nothing better to find.
        if !self.options.geometric_search || found.detection.payload.is_some() {
            return found.settled();
        }
        let built;
        let luma = match source {
            LumaSource::Plane(luma) => luma,
            LumaSource::Image(image) => {
                built = luma(image);
                &built
            }
        };
        let sync::Whitened { weights, residual } = sync::Whitened::with_weights(luma, weights, mask);
        // Rank every (map, orientation, tile shift) by the pilot's
        // pixel-domain correlation, then decode the strongest few. The
        // identity and the lattice estimates try all eight orientations;
        // the brute-force families only the upright one.
        let probe = sync::Probe::new(&residual, &weights, &self.correlator);
        let mut maps: Vec<(sync::Linear, bool)> = vec![(sync::Linear::IDENTITY, true)];
        for linear in sync::lattices(&residual) {
            if !linear.is_near_identity() && probe.lattice_strength(&linear) >= sync::MIN_PROBE_STRENGTH {
                maps.push((linear, true));
            }
        }
        for (_, linear) in probe.search_families() {
            maps.push((linear, false));
        }
        drop(probe);
        // The unchanged geometry's planes move into its canonical: no copies.
        let mut unchanged = Some((weights, residual));
        let mut canonicals = Vec::new();
        let mut shifts = Vec::new();
        for (linear, all_orientations) in maps {
            let (canonical, canonical_weights, whitened) = if let Some((weights, residual)) = unchanged.take()
            {
                (sync::Canonical::identity(luma), weights, residual)
            } else {
                let Some(c) = sync::Canonical::resample(luma, linear) else {
                    continue;
                };
                let sync::Whitened { weights, residual } = sync::Whitened::of(&c.plane, mask);
                (c, weights, residual)
            };
            let folded = sync::fold(&whitened);
            let (h, w) = whitened.dim();
            let orientations: Vec<sync::Orientation> = if all_orientations {
                sync::Orientation::all().collect()
            } else {
                vec![sync::Orientation::default()]
            };
            for orientation in orientations {
                let peak = self
                    .correlator
                    .best_shift(&orientation.apply_to_fold(&folded, w, h));
                shifts.push((peak, canonicals.len(), orientation));
            }
            canonicals.push((canonical, canonical_weights));
        }
        shifts.sort_by(|a, b| b.0.strength.total_cmp(&a.0.strength));
        for (peak, index, orientation) in shifts.into_iter().take(MAX_CANDIDATES - 1) {
            let Some((canonical, canonical_weights)) = canonicals.get(index) else {
                continue;
            };
            let observation = if orientation == sync::Orientation::default() {
                Observation::measure_masked(&canonical.plane, canonical_weights, peak.origin)
            } else {
                let plane = orientation.apply(&canonical.plane);
                Observation::measure_masked(&plane, &orientation.apply(canonical_weights), peak.origin)
            };
            let mut detection = self.test(&observation);
            if better(&detection, &found.detection) {
                detection.geometry = Some(canonical.geometry(orientation, peak.origin));
                found = Found {
                    detection,
                    observation,
                    alignment: Some(Alignment {
                        linear: canonical.linear(),
                        orientation,
                        origin: peak.origin,
                    }),
                };
                if found.detection.payload.is_some() {
                    break;
                }
            }
        }
        found.settled()
    }

    /// Runs the statistical tests on an observation.
    pub fn test(&self, observation: &Observation) -> Detection {
        let y = observation.slots();
        let pilot = self.pilot_schedule();
        let roles = pilot.roles();
        let pilot_score = normalised_correlation(y, pilot.chips(), |i| roles.get(i) == Some(&Role::Pilot));

        let (pilot_hypotheses, payload_candidates) = if self.options.geometric_search {
            (sync::HYPOTHESES, MAX_CANDIDATES as f64)
        } else {
            (1.0, 1.0)
        };
        // Every recipient is one more chance for a decoder to find a
        // payload by accident: 2^64 payloads × candidates × recipients.
        let payload_trials_log10 = 64.0 * std::f64::consts::LOG10_2
            + payload_candidates.log10()
            + (self.readers.len() as f64).log10();
        let mut read: Option<(Recipient, Payload, f64, f64, usize)> = None;
        let mut channel_errors = code::CODED_BITS;
        let mut best_payload_score = f64::NEG_INFINITY;
        for reader in self.readers.iter() {
            let decoded = code::decode(&soft_bits(&reader.schedule, observation));
            let signs = reader.schedule.slot_signs(&decoded.codeword);
            let score = normalised_correlation(y, &signs, |i| roles.get(i) != Some(&Role::Pilot));
            if score > best_payload_score {
                best_payload_score = score;
                channel_errors = decoded.channel_errors;
            }
            let Some(payload) = decoded.payload else { continue };
            let log10_payload = (log10_tail_bound(score) + payload_trials_log10).min(0.0);
            if read.as_ref().is_none_or(|r| log10_payload < r.3) {
                read = Some((
                    reader.recipient,
                    payload,
                    score,
                    log10_payload,
                    decoded.channel_errors,
                ));
            }
        }
        let log10_pilot = (log10_tail_bound(pilot_score) + pilot_hypotheses.log10()).min(0.0);
        let log10_payload = read.as_ref().map_or(0.0, |r| r.3);
        let (payload_score, bit_errors) = match &read {
            Some(r) => (r.2, r.4),
            None => (best_payload_score, channel_errors),
        };
        let log10_p = (std::f64::consts::LOG10_2 + log10_pilot.min(log10_payload)).min(0.0);
        let log10_threshold = self.options.threshold.log10();
        let detected = log10_p <= log10_threshold;
        let payload_ok = detected && log10_payload <= log10_threshold;
        let read = read.filter(|_| payload_ok);
        Detection {
            detected,
            payload: read.as_ref().map(|r| r.1),
            false_positive_probability: 10f64.powf(log10_p),
            false_positive_log10: log10_p,
            score: if log10_pilot <= log10_payload {
                pilot_score
            } else {
                payload_score
            },
            pilot_score,
            payload_score,
            bit_errors,
            blocks: observation.blocks(),
            geometry: None,
            recipient: read.as_ref().map(|r| r.0),
        }
    }

    /// The recipients whose payloads this detector reads.
    pub fn recipients(&self) -> impl Iterator<Item = Recipient> + '_ {
        self.readers.iter().map(|r| r.recipient)
    }

    fn pilot_schedule(&self) -> &Schedule {
        &self.pilot
    }
}

/// Whether `a` is a stronger finding than `b`: a readable payload first,
/// then the smaller false-positive bound.
fn better(a: &Detection, b: &Detection) -> bool {
    match (a.payload.is_some(), b.payload.is_some()) {
        (true, false) => true,
        (false, true) => false,
        _ => a.false_positive_log10 < b.false_positive_log10,
    }
}

/// The outcome of a search: the verdict, the measurement behind it and the
/// alignment that produced that measurement.
struct Found {
    detection: Detection,
    observation: Observation,
    alignment: Option<Alignment>,
}

impl Found {
    /// Drops the geometry of a verdict that found nothing.
    fn settled(mut self) -> Self {
        if !self.detection.detected {
            self.detection.geometry = None;
        }
        self
    }
}

/// How the received image was lined up with the tile grid: resampled
/// through `linear`, turned by `orientation`, with a tile at `origin`.
#[derive(Clone, Copy, Debug)]
struct Alignment {
    linear: sync::Linear,
    orientation: sync::Orientation,
    origin: (usize, usize),
}

impl Alignment {
    const UNCHANGED: Self = Self {
        linear: sync::Linear::IDENTITY,
        orientation: sync::Orientation {
            mirror: false,
            quarter_turns: 0,
        },
        origin: (0, 0),
    };
}

impl Detector {
    /// The soft value of every coded bit (positive votes for 0) of the
    /// first recipient's payload, before error correction: what the channel
    /// delivered.
    pub fn soft_bits(&self, observation: &Observation) -> Vec<f32> {
        soft_bits(self.pilot_schedule(), observation)
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

fn soft_bits(schedule: &Schedule, observation: &Observation) -> Vec<f32> {
    let mut soft = vec![0.0f32; code::CODED_BITS];
    for ((role, chip), v) in schedule
        .roles()
        .iter()
        .zip(schedule.chips())
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

/// The README's code, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
