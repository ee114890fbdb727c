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
//!   2⁶⁴ possible payloads, its bound is multiplied by 2⁶⁴. When the most
//!   likely path fails its CRC but already scores past the threshold, the
//!   next most likely paths are tried ([`tattle_core::code::decode_list`]);
//!   the 2⁶⁴ covers whichever payload is read, so nothing more is owed.
//!
//! Under the null hypothesis (not marked with this key) both correlations
//! are Rademacher sums over the choice of key, for any image, and obey
//! Hoeffding's bound `P(z ≥ t) ≤ exp(−t²/2)` and the tighter
//! `P(z ≥ t) ≤ 3.1787 · P(η ≥ t)` for a standard normal `η` (Bentkus and
//! Dzindzalieta, 2015); [`tattle_core::stats::log10_tail_bound`] is the
//! smaller of the two. The reported false-positive probability is
//! `2 · min(p_pilot, 2⁶⁴ · p_payload)`, a rigorous upper bound (union bound
//! over the two tests). A mark is reported when it is
//! below [`DetectOptions::threshold`]; a payload only when, in addition,
//! its CRC is correct and the payload test alone passes the threshold.
//!
//! Each geometry may be read twice, as received and sharpened (a blurred
//! image, see [`restore`]), and the geometric search tries many
//! geometries ([`sync::HYPOTHESES`], [`MAX_CANDIDATES`]). The pilot's bound
//! is multiplied by the number of geometries and readings it chose from.
//! The payload is decoded at up to 16 readings, and the threshold is shared
//! between them (a weighted union bound, [`Detector::payload_share`]): a
//! quarter each for the two that give nearly every payload (the image as
//! received, and the search's first alignment), less for the others. The
//! first alignment is the strongest of all when the search is done, or,
//! read before the brute-force families are searched, the strongest of
//! the identity's and the tile lattice's maps when its pilot already
//! stands far out of noise; later ones take the next shares whatever their
//! order, so no two readings ever claim the same share.
//!
//! A caller that knows which payloads were issued (a studio's ledger) can
//! ask the narrower question [`Detector::match_issued`] answers: does the
//! mark match one of these N payloads? Its bound carries the factor N
//! instead of 2⁶⁴, so it names a recipient from a mark too damaged to be
//! decoded blind (z ≈ 7.4 against 1,000 payloads, where decoding needs
//! 11.34).
#![deny(missing_docs)]
// Every path here is reachable from user input: no index that can panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use image::DynamicImage;
use serde::Serialize;
use tattle_core::dct::BLOCK;
use tattle_core::layout::{Role, Schedule};
use tattle_core::mask::{perceptual_mask, perceptual_mask_bands, perceptual_mask_with, MaskParams};
use tattle_core::observe::{block_means, BlockBands, BlockGains};
use tattle_core::pattern::tile_pattern;
use tattle_core::plane::{luma, LumaSource, Plane, BAND_ROWS};
use tattle_core::stats::{log10_tail_bound, normalised_correlation};
use tattle_core::{code, Error};

pub mod content;
pub mod heatmap;
mod issued;
pub mod restore;
pub mod sync;

use std::borrow::Cow;
use std::sync::Arc;

pub use content::{compare_content, ContentMatch};
pub use heatmap::Heatmap;
pub use issued::{Issued, IssuedMatch, PayloadEvidence, RunnerUp};
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
    /// (see [`sync`]). Without it only the unchanged geometry is tested (as
    /// received and sharpened), and the false-positive bounds are
    /// correspondingly tighter. Default: true.
    pub geometric_search: bool,
    /// Largest area, in pixels, the geometric search works on. A larger
    /// image that needs the search is searched on its most textured window
    /// of this area (the unchanged geometry is always read on the whole
    /// image). The search's memory is about 20 bytes per pixel of it.
    /// Default: 2²³ (8.4 MP, a 3840x2160 frame fits). At least 65,536.
    pub search_pixels: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            threshold: 1e-9,
            mask: MaskParams::default(),
            geometric_search: true,
            search_pixels: 1 << 23,
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

    /// Sets the largest area the geometric search works on (see
    /// [`DetectOptions::search_pixels`]).
    pub fn search_pixels(mut self, pixels: usize) -> Self {
        self.search_pixels = pixels;
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
        if self.search_pixels < MIN_SEARCH_PIXELS {
            return Err(Error::InvalidParameter {
                name: "search_pixels",
                reason: format!("{} is below {MIN_SEARCH_PIXELS}", self.search_pixels),
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
    /// Base-10 logarithm of the payload test's own bound, when a payload is
    /// reported: the probability that an image not marked with this key
    /// reads a payload, any payload of any recipient, this strongly. It is
    /// the figure behind naming the recipient; `false_positive_log10` is the
    /// one behind "marked", and may be smaller (the pilot's test).
    pub payload_false_positive_log10: Option<f64>,
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
    /// The mark was read from the sharpened image: it had been blurred or
    /// resampled softly (see [`restore`]).
    pub sharpened: bool,
    /// Which reading of the search the verdict rests on ([`Reading::rank`]):
    /// 0 the image in its unchanged geometry, `k` the `k`th alignment the
    /// search read (in order of the pilot's strength, the first possibly
    /// read early: see the crate's docs). With `sharpened` it sets the reading's share of
    /// the payload test's threshold ([`Detector::payload_share`]).
    pub rank: usize,
    /// Whose payload chips the reported payload was read with.
    pub recipient: Option<Recipient>,
}

impl Detection {
    /// Records where the mark was found when it was established by a match
    /// with an issued payload rather than read blind: the geometry and
    /// sharpening of the reading that matched.
    ///
    /// The blind verdict reports a geometry only when it detected the mark,
    /// so without this a matched mark would say nothing of where it was.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Issued, Key, Payload, Recipient};
    /// use tattle_embed::EmbedOptions;
    ///
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 384, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let key = Key::from_bytes([7; 32]);
    /// let marked = EmbedOptions::default().build(&key).unwrap().embed(&img, Payload::new(41)).unwrap();
    /// let detector = DetectOptions::default().build(&key).unwrap();
    /// let (mut detection, reading) = detector.examine_image(&marked).unwrap();
    /// let issued = [Issued { recipient: Recipient::Studio, payload: Payload::new(41) }];
    /// let matched = &detector.match_issued(&reading, &issued).unwrap()[0];
    /// detection.locate_by(matched);
    /// assert_eq!(detection.geometry.as_ref(), Some(&matched.geometry));
    /// ```
    pub fn locate_by(&mut self, matched: &IssuedMatch) {
        self.geometry = Some(matched.geometry.clone());
        self.sharpened = matched.sharpened;
    }
}

/// What the search read from an image: the measurement at the alignment
/// it judged best, the geometric change that alignment undid, and (kept
/// inside) every other alignment the search measured.
///
/// It is what [`Detector::match_issued`] compares with issued payloads,
/// reading by reading. A match says which reading it rests on
/// ([`IssuedMatch::geometry`]): where the mark was found, even though the
/// blind verdict, which reports a geometry only when it detected the mark,
/// has none.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The measurement.
    pub observation: Observation,
    /// The geometric change undone before measuring.
    pub geometry: Geometry,
    /// The image was sharpened before measuring (see [`restore`]).
    pub sharpened: bool,
    /// Where the reading's geometry stands in the search's order: 0 for the
    /// unchanged geometry, `k` for the `k`th alignment the geometric search
    /// read (ranked by the pilot alone; the first possibly read early, see
    /// the crate's docs).
    pub rank: usize,
    /// The search's other readings (alignments it measured and judged
    /// weaker), which [`Detector::match_issued`] compares too.
    others: Vec<Reading>,
}

impl Reading {
    /// Every reading the search made of the image, this one first, then
    /// the others in the order they were measured: each with its geometry,
    /// its `rank` and whether it was `sharpened`, which together say what
    /// share of the payload test's threshold it was given
    /// ([`Detector::payload_share`]; no two readings of one search share
    /// a rank and a sharpening).
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Key};
    ///
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(256, 256, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let detector = DetectOptions::default().build(&Key::from_bytes([7; 32])).unwrap();
    /// let (found, reading) = detector.examine_image(&img).unwrap();
    /// // Unmarked: the whole search ran, and every reading it made is there.
    /// assert!(!found.detected && reading.all().count() > 1);
    /// assert_eq!(reading.all().next().map(|r| r.rank), Some(reading.rank));
    /// ```
    pub fn all(&self) -> impl Iterator<Item = &Reading> {
        std::iter::once(self).chain(&self.others)
    }
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

/// Smallest [`DetectOptions::search_pixels`]: a 256x256 window, the
/// smallest region that still decodes.
pub const MIN_SEARCH_PIXELS: usize = 1 << 16;

/// Paths the list decoder tries (see [`code::decode_list`]) when the most
/// likely path fails its CRC but scores high enough to be reported. The
/// payload test bounds the chance that *any* of the 2⁶⁴ payloads' codewords
/// scores as high as the one reported, so trying more paths needs no
/// correction; 32 recovers most of what a longer list would, in about 2 ms.
const LIST_PATHS: usize = 32;

/// Geometries whose payload the search may decode (the unchanged one and
/// 7 of the search's alignments, the strongest), each as received and sharpened
/// ([`restore::RESTORATIONS`]); the payload test's threshold is shared
/// between them ([`Detector::payload_share`]).
pub const MAX_CANDIDATES: usize = 8;
/// Rounds of [`Detector::undo_perspective`] at most: each measures what
/// the last left. The first round measures about half of a strong
/// perspective (its regions still see part of the drift as a shift), so
/// a 4% keystone of a 960x540 frame takes three (pilot 11.8 → 23.2).
const PERSPECTIVE_ROUNDS: usize = 6;
/// Upright pilot strength over a whole canonical plane from which
/// [`Detector::undo_perspective`] looks for a perspective: the geometry is
/// roughly found, or nearly: a 4% keystone leaves the best linear map of
/// a 768x512 frame reading 4.6 to 5.9. Planes of unmarked images reach
/// it now and then (noise's highest peak among a tile's 16,384 shifts is
/// about 4.4), but their regions seldom fit a perspective, and the search
/// then stops after one measure (unmarked frames took no longer, A/B).
/// The unchanged geometry is looked at whatever it reads.
const PERSPECTIVE_MIN_PILOT: f32 = 4.5;
/// Pilot strength (in any orientation) from which the strongest alignment
/// of the identity, the likely maps and the lattice's maps is read before
/// the brute-force families are searched ([`Detector::search_geometry`]).
/// Noise's highest peak among a tile's 16,384 shifts is about 4.4; the
/// marked frames that take this path read 15 to 30 (a 1080p frame turned
/// 2°: 25.8 under its lattice's map; keystoned 2%: 28.1 once its
/// identity's perspective is undone; a 768x512 frame screenshotted: 15.1).
/// An unmarked frame does not come near it, and is searched and read
/// exactly as if this path did not exist.
const FIRST_READING_PILOT: f32 = 8.0;
/// Gain in that strength [`Detector::undo_perspective`]'s rounds must
/// bring, together, to be kept: less is within what noise moves it by,
/// and would change readings that were already right.
const PERSPECTIVE_MIN_GAIN: f32 = 0.5;

/// The share of the payload test's threshold given to each of the two
/// readings a payload is nearly always read from: the image as received,
/// in its unchanged geometry, and the search's first alignment (see
/// [`Detector::search_geometry`]), both
/// not sharpened. Over the benchmark suite (67 attacks on 16 images, session
/// 29) they gave 1,058 of the 1,064 payloads read blind, the sharpened
/// reading of the strongest alignment the other 6, and no later alignment
/// any. A quarter each puts the threshold at z 11.34 instead of the
/// 11.46 of an even split over the 16 readings.
const FIRST_READING_SHARE: f64 = 0.25;

/// The share of each of those two readings when sharpened (z 11.46).
const FIRST_SHARPENED_SHARE: f64 = 1.0 / 16.0;

/// The share of each reading of the search's 2nd to 7th alignments, plain
/// or sharpened: the remaining 3/8 split 12 ways (z 11.52).
const LATER_READING_SHARE: f64 =
    (1.0 - 2.0 * (FIRST_READING_SHARE + FIRST_SHARPENED_SHARE)) / (2.0 * (MAX_CANDIDATES - 2) as f64);

impl Detector {
    /// Looks for the mark in an image.
    pub fn detect(&self, image: &DynamicImage) -> Result<Detection> {
        Ok(self.search(LumaSource::Image(image), Reach::Search).detection)
    }

    /// Checks that a freshly marked image carries its mark: reads it back
    /// at the unchanged geometry and confirms that `recipient`'s chips give
    /// `payload`, under this detector's threshold. Run it after
    /// `tattle_embed::Embedder::embed` and before publishing the file:
    /// an image with too little texture or area (a black slate, a flat
    /// swatch, a small icon) takes the mark's pixels but cannot carry a
    /// mark that reads, and is better refused than shipped as if marked.
    ///
    /// Fails with [`tattle_core::Error::MarkUnreadable`] saying what was
    /// read instead, and when the recipient is not one this detector reads.
    /// It costs one detection without the search (about 5 ms for a 1080p
    /// frame on two cores).
    ///
    /// ```
    /// use image::{DynamicImage, Rgb, RgbImage};
    /// use tattle_detect::{DetectOptions, Key, Payload, Recipient};
    /// use tattle_embed::EmbedOptions;
    ///
    /// let key = Key::from_bytes([7; 32]);
    /// let embedder = EmbedOptions::default().build(&key).unwrap();
    /// let checker = DetectOptions::default().geometric_search(false).build(&key).unwrap();
    /// let payload = Payload::new(41);
    ///
    /// let textured = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 384, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     Rgb([v, v / 2, 255 - v])
    /// }));
    /// let marked = embedder.embed(&textured, payload).unwrap();
    /// assert!(checker.confirm_mark(&marked, Recipient::Studio, payload).is_ok());
    ///
    /// // Flat grey has nowhere to hide a mark: it is refused.
    /// let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(384, 384, Rgb([128, 128, 128])));
    /// let marked = embedder.embed(&flat, payload).unwrap();
    /// let err = checker.confirm_mark(&marked, Recipient::Studio, payload).unwrap_err();
    /// assert!(err.to_string().contains("does not read back"), "{err}");
    /// ```
    pub fn confirm_mark(
        &self,
        marked: &DynamicImage,
        recipient: Recipient,
        payload: Payload,
    ) -> Result<Detection> {
        self.reader(recipient)?;
        let detection = self.search(LumaSource::Image(marked), Reach::Unchanged).detection;
        if detection.payload == Some(payload) && detection.recipient == Some(recipient) {
            return Ok(detection);
        }
        let reason = match (detection.payload, detection.recipient) {
            (Some(other), Some(reader)) => {
                format!("it reads as payload {other} for {reader}, an earlier mark stronger than the new one")
            }
            _ => format!(
                "pilot z {:.1}, payload z {:.1}, where a payload needs about 11; the image has too little \
                 texture or area to carry a mark",
                detection.pilot_score, detection.payload_score
            ),
        };
        Err(tattle_core::Error::MarkUnreadable { reason })
    }

    /// [`Detector::examine`] on an image: the verdict and the reading it
    /// rests on. Like [`Detector::detect`], it builds no luma plane when
    /// the image needs no geometric search.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_detect::{DetectOptions, Key};
    ///
    /// let unmarked = DynamicImage::ImageRgb8(RgbImage::from_fn(256, 256, |x, y| {
    ///     image::Rgb([(x ^ y) as u8, x as u8, y as u8])
    /// }));
    /// let detector = DetectOptions::default().build(&Key::from_bytes([7; 32])).unwrap();
    /// let (detection, reading) = detector.examine_image(&unmarked).unwrap();
    /// assert!(!detection.detected && detection.geometry.is_none());
    /// // The reading is where the search looked hardest, found or not.
    /// assert!(reading.observation.blocks() > 0);
    /// ```
    pub fn examine_image(&self, image: &DynamicImage) -> Result<(Detection, Reading)> {
        let found = self.search(LumaSource::Image(image), Reach::Search);
        Ok((found.detection, found.reading))
    }

    /// Looks for the mark in a luma plane (grey levels).
    pub fn detect_luma(&self, luma: &Plane) -> Detection {
        self.examine(luma).0
    }

    /// Looks for the mark and also returns the reading the verdict rests
    /// on: what [`Detector::match_issued`] compares with issued payloads
    /// (and what benchmarks and diagnostics look at).
    pub fn examine(&self, luma: &Plane) -> (Detection, Reading) {
        let found = self.search(LumaSource::Plane(luma), Reach::Search);
        (found.detection, found.reading)
    }

    /// Looks for the mark and maps where in the image it was found: the
    /// pilot's strength tile by tile (see [`Heatmap`]). No map when no mark
    /// was detected.
    pub fn locate(&self, luma: &Plane) -> (Detection, Option<Heatmap>) {
        let (detection, _, map) = self.examine_and_locate(luma);
        (detection, map)
    }

    /// [`Detector::examine`] and [`Detector::locate`] in one search: the
    /// verdict, the reading it rests on and, when a mark was detected,
    /// where it was found.
    pub fn examine_and_locate(&self, luma: &Plane) -> (Detection, Reading, Option<Heatmap>) {
        let found = self.search(LumaSource::Plane(luma), Reach::Search);
        let map = found
            .detection
            .detected
            .then(|| heatmap::measure(luma, &self.options.mask, found.alignment, self.pilot_schedule()))
            .flatten();
        (found.detection, found.reading, map)
    }

    fn search(&self, source: LumaSource, reach: Reach) -> Found {
        let mask = &self.options.mask;
        // The unchanged geometry first, straight from the source's rows (an
        // image that needs no search never has its luma plane built), each
        // band measured while it is in cache: a block's gain depends on
        // that block alone. The blocks' mean mask says where the texture
        // is, should the search have to work on a window of the image.
        let (h, w) = source.dim();
        let measure_band = |first_row: usize, luma: &[f32], weights: &[f32]| {
            let means = ndarray::ArrayView2::from_shape((weights.len() / w.max(1), w), weights)
                .map(|rows| block_means(&rows))
                .unwrap_or_default();
            let bands = BlockBands::of_slice_masked(luma, w, &means);
            let gains = BlockGains::from_bands(&bands, &means);
            (
                Observation::measure_bands_robust_part(&bands, &gains, first_row / BLOCK),
                means,
            )
        };
        let rows = |first_row: usize, out: &mut [f32]| source.rows(first_row, out);
        let search_whole = w.saturating_mul(h) <= self.options.search_pixels;
        let (weights, parts) = if search_whole {
            let (weights, parts) = perceptual_mask_with(w, h, rows, mask, measure_band);
            (Some(weights), parts)
        } else {
            // The search will not use this mask: keep nothing image-sized.
            let parts = perceptual_mask_bands(w, h, rows, mask, measure_band);
            (None, parts)
        };
        let (parts, block_weights): (Vec<Observation>, Vec<Vec<f32>>) = parts.into_iter().unzip();
        let mut found = Found::new(
            self,
            Observation::sum(parts),
            Alignment::UNCHANGED,
            Geometry::unchanged(),
            0,
        );
        if found.worth_sharpening(self.options.threshold) {
            // The sharpened image, band by band as well: nothing image-sized.
            let sharpened = |first_row: usize, out: &mut [f32]| {
                restore::sharpened_rows(h, w, |first, rows| source.rows(first, rows), first_row, out);
            };
            let parts = perceptual_mask_bands(w, h, sharpened, mask, |first, luma, weights| {
                measure_band(first, luma, weights).0
            });
            let alignment = Alignment {
                sharpened: true,
                ..Alignment::UNCHANGED
            };
            found.merge(Some(Found::new(
                self,
                Observation::sum(parts),
                alignment,
                Geometry::unchanged(),
                0,
            )));
        }
        // The unchanged geometry is one of the search's hypotheses; when it
        // already yields a payload there is nothing better to find.
        if reach == Reach::Unchanged || !self.options.geometric_search || found.detection.payload.is_some() {
            return found.settled();
        }
        let (window, luma, whitened) = match weights {
            Some(weights) => {
                let luma = match source {
                    LumaSource::Plane(luma) => Cow::Borrowed(luma),
                    LumaSource::Image(image) => Cow::Owned(luma(image)),
                };
                let whitened = sync::Whitened::with_weights(&luma, weights, mask);
                (sync::Window::whole(w, h), luma, whitened)
            }
            None => {
                let block_weights =
                    Plane::from_shape_vec((h / BLOCK, w / BLOCK), block_weights.concat()).unwrap_or_default();
                let window = sync::Window::busiest(&block_weights, w, h, self.options.search_pixels);
                let luma = Cow::Owned(window_of(&source, window));
                let whitened = sync::Whitened::of(&luma, mask);
                (window, luma, whitened)
            }
        };
        found.merge(self.search_geometry(&luma, window, whitened));
        found.settled()
    }

    /// A map's canonical plane, its weights and the fold of its whitened
    /// residual, after undoing the perspective its regions' tile shifts
    /// show (`sync::perspective_by_drift`): a screen photographed
    /// off-axis, which no linear map lines up over the whole frame. Tried
    /// where the plane's pilot already stands out, and always on the
    /// `unchanged` geometry: a perspective spoils the whole plane's fold
    /// far more than its regions' (seen from a corner at 2%, the tiger's
    /// unchanged plane reads 3.83 over the frame, and its regions near the
    /// corner that moved least line it up again: 23.5 once undone), and a
    /// search's linear map may not come near it at all. Below the gate the
    /// first round is a trial, and the rounds go on only if it lifts the
    /// pilot past the gate. On an unmarked frame that costs one measure of
    /// its regions, which mostly finds no perspective to fit, and at most
    /// one round. Each round
    /// measures what the last left, until the measured drift is too small
    /// to matter, and the round whose pilot reads most strongly over the
    /// whole plane is kept if it reads clearly more strongly than the plane
    /// as it was. A round may read no better than the last (it undoes only
    /// part of a strong perspective, and the part it undoes can misalign
    /// the band the map fitted), so every round is measured.
    fn undo_perspective<'a>(
        &self,
        luma: &'a Plane,
        window: sync::Window,
        (canonical, weights, residual): (sync::Canonical<'a>, Plane, Plane),
        unchanged: bool,
    ) -> (sync::Canonical<'a>, Plane, Plane) {
        let folded = sync::fold(&residual);
        let strength = self.correlator.best_shift(&folded).strength;
        if strength < PERSPECTIVE_MIN_PILOT && !unchanged {
            return (canonical, weights, folded);
        }
        let offset = canonical.offset();
        let (mut map, mut residual) = ((canonical.linear(), canonical.perspective()), residual);
        let mut origin = canonical.origin();
        let mut best: Option<(sync::Canonical<'a>, Plane, Plane, f32)> = None;
        for round in 0..PERSPECTIVE_ROUNDS {
            let reach = (round > 0).then_some(sync::PERSPECTIVE_NEAR_REACH);
            let Some(next) = sync::perspective_by_drift(&residual, origin, &self.correlator, map, reach)
            else {
                break;
            };
            let Some(resampled) = sync::Canonical::resample_through(luma, window, next.0, next.1, offset)
            else {
                break;
            };
            let whitened = sync::Whitened::of(&resampled.plane, &self.options.mask);
            let next_folded = sync::fold(&whitened.residual);
            let next_strength = self.correlator.best_shift(&next_folded).strength;
            (map, residual, origin) = (next, whitened.residual, resampled.origin());
            // Below the gate a first round is a trial: a perspective the
            // mark shows lifts the pilot past the gate at once (3.8 → 17.4
            // on the tiger seen from a corner), one that noise's peaks
            // happened to fit does not, and further rounds of a large
            // frame cost a resampling each.
            let trial_failed =
                round == 0 && strength < PERSPECTIVE_MIN_PILOT && next_strength < PERSPECTIVE_MIN_PILOT;
            if best.as_ref().is_none_or(|b| next_strength > b.3) {
                best = Some((resampled, whitened.weights, next_folded, next_strength));
            }
            if trial_failed {
                break;
            }
        }
        match best {
            Some((fitted, fitted_weights, fitted_folded, best_strength))
                if best_strength >= strength + PERSPECTIVE_MIN_GAIN =>
            {
                (fitted, fitted_weights, fitted_folded)
            }
            _ => (canonical, weights, folded),
        }
    }

    /// The geometric search proper, on `luma`, which is `window` of the
    /// received image, and its whitened form: rank every (map, orientation,
    /// tile shift) by the pilot's pixel-domain correlation, then decode the
    /// strongest few. The identity, the likely maps and the lattice
    /// estimates try all eight orientations; the brute-force families only
    /// the upright one.
    ///
    /// The identity, the likely maps and the lattice's maps are tried
    /// first, in that order. As soon as the strongest of their alignments
    /// so far reads at least [`FIRST_READING_PILOT`], it is read as the
    /// search's first alignment (a lattice's map under which the mark
    /// already stands out upright was made exact, as a brute-force map is:
    /// [`MapTrial::Lattice`]), and a payload it
    /// gives ends the search before the brute-force families are searched:
    /// the costlier half of the search, which a frame whose lattice shows,
    /// or a keystoned one (found by its identity's perspective), does not
    /// need. Otherwise, or when it gives none, every map is tried and the
    /// rest are read in order of strength, that alignment skipped and the
    /// first share of the threshold ([`Detector::payload_share`]) already
    /// spent on it: no two readings claim the same share.
    fn search_geometry(&self, luma: &Plane, window: sync::Window, whitened: sync::Whitened) -> Option<Found> {
        let sync::Whitened { weights, residual } = whitened;
        let fine = sync::fine_residual(luma, &weights);
        let probe = sync::Probe::new(&residual, &weights, &self.correlator).with_fine(&fine);
        let lattices = sync::lattices(&residual);
        let lattice_maps: Vec<sync::Linear> = lattices
            .maps
            .into_iter()
            .filter(|linear| {
                !linear.is_near_identity()
                    && (probe.lattice_strength(linear) >= sync::MIN_PROBE_STRENGTH
                        || probe.whole_lattice_strength(linear) >= sync::MIN_WHOLE_LATTICE_STRENGTH)
            })
            .collect();
        let mut tried = TriedMaps::default();
        // The likely maps are exact, and cheap where they are tried at all.
        // Even where a family chooses a map near one of them, its own
        // reading may be the better (the refined map is only as exact as
        // its probes).
        let likely_maps = if luma.len() <= sync::LIKELY_MAX_PIXELS {
            &sync::LIKELY_MAPS[..]
        } else {
            &[]
        };
        // The unchanged geometry's weights move into its canonical; its
        // residual is copied, the families' probes still reading it.
        let first_maps = std::iter::once(MapTrial::Unchanged(weights, residual.clone()))
            .chain(likely_maps.iter().map(|&linear| MapTrial::Likely(linear)))
            .chain(lattice_maps.into_iter().map(MapTrial::Lattice));
        let mut best: Option<Found> = None;
        let mut rebuilt = None;
        let mut first = None;
        for trial in first_maps {
            self.try_map(luma, window, trial, &mut tried);
            if first.is_some() {
                continue;
            }
            first = tried
                .strongest_shift()
                .filter(|shift| shift.peak.strength >= FIRST_READING_PILOT);
            if let Some(shift) = first {
                let candidate = self.read_alignment(luma, window, &tried, shift, 1, &mut rebuilt);
                if candidate.as_ref().is_some_and(|c| c.detection.payload.is_some()) {
                    return candidate;
                }
                best = candidate;
            }
        }
        // A family's map near the identity is not tried apart from it: the
        // identity is tried in every orientation.
        let families: Vec<sync::Linear> = probe
            .search_families(&lattices.turns)
            .into_iter()
            .filter(|linear| !linear.is_near_identity())
            .collect();
        drop(probe);
        drop((fine, residual));
        for linear in families {
            self.try_map(luma, window, MapTrial::Searched(linear), &mut tried);
        }
        let mut shifts = std::mem::take(&mut tried.shifts);
        shifts.sort_by(|a, b| b.peak.strength.total_cmp(&a.peak.strength));
        let ranks = if first.is_some() { 2 } else { 1 }..MAX_CANDIDATES;
        let unread = shifts.into_iter().filter(|shift| Some(*shift) != first);
        for (rank, shift) in ranks.zip(unread) {
            let Some(candidate) = self.read_alignment(luma, window, &tried, shift, rank, &mut rebuilt) else {
                continue;
            };
            let decoded = candidate.detection.payload.is_some();
            match best.as_mut() {
                Some(best) => best.merge(Some(candidate)),
                None => best = Some(candidate),
            }
            if decoded {
                break;
            }
        }
        best
    }

    /// Tries one map of the search ([`MapTrial`]): its canonical plane, its
    /// perspective undone where it shows one, and the pilot's strongest
    /// tile shift in each orientation it is read in. Its planes are kept
    /// while they fit the search's pixel budget and rebuilt if chosen
    /// otherwise, so that memory stays bounded however many maps are tried.
    fn try_map<'a>(&self, luma: &'a Plane, window: sync::Window, trial: MapTrial, tried: &mut TriedMaps<'a>) {
        let mask = &self.options.mask;
        let is_unchanged = matches!(trial, MapTrial::Unchanged(..));
        let all_orientations = !matches!(trial, MapTrial::Searched(_));
        let searched = matches!(trial, MapTrial::Searched(_) | MapTrial::Likely(_));
        let (canonical, canonical_weights, whitened) = match trial {
            MapTrial::Unchanged(weights, residual) => {
                (sync::Canonical::identity(luma, window), weights, residual)
            }
            MapTrial::Lattice(linear) | MapTrial::Searched(linear) | MapTrial::Likely(linear) => {
                let Some(c) = sync::Canonical::resample(luma, window, linear) else {
                    return;
                };
                let sync::Whitened { weights, residual } = sync::Whitened::of(&c.plane, mask);
                // A brute-force map is only as exact as its grid, and a
                // lattice's as its autocorrelation's peaks: make it exact
                // from the plane it gives, and undo that instead (its
                // planes freed first, so that only one map's are held). A
                // lattice's map is worth it only where the mark already
                // shows under it, and then it is done here, so that the map
                // is not tried twice.
                let made_exact = searched
                    || self.correlator.best_shift(&sync::fold(&residual)).strength >= FIRST_READING_PILOT;
                let exact = made_exact
                    .then(|| sync::refine_by_drift(&residual, &self.correlator, linear))
                    .flatten();
                let (c, weights, residual) = match exact {
                    Some(exact) => {
                        drop((c, weights, residual));
                        let Some(c) = sync::Canonical::resample(luma, window, exact) else {
                            return;
                        };
                        let sync::Whitened { weights, residual } = sync::Whitened::of(&c.plane, mask);
                        (c, weights, residual)
                    }
                    None => (c, weights, residual),
                };
                // Then put its tile grid on whole pixels.
                let offset = made_exact
                    .then(|| sync::grid_offset(&residual, &self.correlator))
                    .flatten();
                match offset {
                    Some(offset) => {
                        let (linear, perspective) = (c.linear(), c.perspective());
                        drop((c, weights, residual));
                        let Some(c) =
                            sync::Canonical::resample_through(luma, window, linear, perspective, offset)
                        else {
                            return;
                        };
                        let sync::Whitened { weights, residual } = sync::Whitened::of(&c.plane, mask);
                        (c, weights, residual)
                    }
                    None => (c, weights, residual),
                }
            }
        };
        let (canonical, canonical_weights, folded) = self.undo_perspective(
            luma,
            window,
            (canonical, canonical_weights, whitened),
            is_unchanged,
        );
        let (h, w) = canonical_weights.dim();
        let orientations: Vec<sync::Orientation> = if all_orientations {
            sync::Orientation::all().collect()
        } else {
            vec![sync::Orientation::default()]
        };
        for orientation in orientations {
            let peak = self
                .correlator
                .best_shift(&orientation.apply_to_fold(&folded, w, h));
            tried.shifts.push(TriedShift {
                peak,
                map: tried.maps.len(),
                orientation,
            });
        }
        let keep = tried.maps.is_empty() || tried.kept_pixels + w * h <= self.options.search_pixels;
        if keep {
            tried.kept_pixels += w * h;
        }
        tried.maps.push(TriedMap {
            linear: canonical.linear(),
            perspective: canonical.perspective(),
            offset: canonical.offset(),
            kept: keep.then_some((canonical, canonical_weights)),
        });
    }
    /// Reads one alignment the search found (`shift`, of one of `tried`'s
    /// maps) as the search's `rank`th, as it is and, when that is worth it,
    /// sharpened. A map whose planes were not kept is rebuilt into
    /// `rebuilt`, where the next alignment of the same map finds it.
    fn read_alignment<'a>(
        &self,
        luma: &'a Plane,
        window: sync::Window,
        tried: &TriedMaps<'a>,
        shift: TriedShift,
        rank: usize,
        rebuilt: &mut Option<(usize, sync::Canonical<'a>, Plane)>,
    ) -> Option<Found> {
        let mask = &self.options.mask;
        let TriedShift {
            peak,
            map,
            orientation,
        } = shift;
        let tried_map = tried.maps.get(map)?;
        let (canonical, canonical_weights) = match &tried_map.kept {
            Some((canonical, weights)) => (canonical, weights),
            None => {
                if rebuilt.as_ref().map(|r| r.0) != Some(map) {
                    *rebuilt = None;
                    let c = sync::Canonical::resample_through(
                        luma,
                        window,
                        tried_map.linear,
                        tried_map.perspective,
                        tried_map.offset,
                    )?;
                    let weights = perceptual_mask(&c.plane, mask);
                    *rebuilt = Some((map, c, weights));
                }
                let (_, canonical, weights) = rebuilt.as_ref()?;
                (canonical, weights)
            }
        };
        let geometry = canonical.geometry(orientation, peak.origin);
        let plain = Alignment {
            linear: canonical.linear(),
            perspective: canonical.perspective(),
            grid_shift: canonical.offset(),
            orientation,
            offset: (geometry.offset_x, geometry.offset_y),
            sharpened: false,
        };
        let (plane, plane_weights) = if orientation == sync::Orientation::default() {
            (Cow::Borrowed(&*canonical.plane), Cow::Borrowed(canonical_weights))
        } else {
            (
                Cow::Owned(orientation.apply(&canonical.plane)),
                Cow::Owned(orientation.apply(canonical_weights)),
            )
        };
        let mut candidate = Found::new(
            self,
            Observation::measure_masked(&plane, &plane_weights, peak.origin),
            plain,
            geometry.clone(),
            rank,
        );
        if candidate.worth_sharpening(self.options.threshold) {
            drop(plane_weights);
            let sharpened = restore::sharpen(&plane);
            drop(plane);
            let weights = perceptual_mask(&sharpened, mask);
            let observation = Observation::measure_masked(&sharpened, &weights, peak.origin);
            let alignment = Alignment {
                sharpened: true,
                ..plain
            };
            candidate.merge(Some(Found::new(self, observation, alignment, geometry, rank)));
        }
        Some(candidate)
    }

    /// Runs the statistical tests on an observation of the image as
    /// received, in its unchanged geometry: the first reading the detector
    /// makes, with that reading's share of the payload test (see
    /// [`Detector::payload_share`]).
    pub fn test(&self, observation: &Observation) -> Detection {
        self.test_reading(observation, 0, false)
    }

    /// The statistical tests on the reading of geometry `rank` (0 the
    /// unchanged one), sharpened or not.
    fn test_reading(&self, observation: &Observation, rank: usize, sharpened: bool) -> Detection {
        let y = observation.slots();
        let pilot = self.pilot_schedule();
        let roles = pilot.roles();
        let pilot_score = normalised_correlation(y, pilot.chips(), |i| roles.get(i) == Some(&Role::Pilot));

        // Every geometry may be read as received and sharpened.
        let pilot_hypotheses = if self.options.geometric_search {
            sync::HYPOTHESES * restore::RESTORATIONS as f64
        } else {
            restore::RESTORATIONS as f64
        };
        // Every recipient is one more chance for a decoder to find a
        // payload by accident: 2^64 payloads × recipients, over this
        // reading's share of the threshold.
        let payload_trials_log10 = self.payload_trials_log10(self.blind_candidates_log10(), rank, sharpened);
        let log10_threshold = self.options.threshold.log10();
        let payload_norm = self.payload_norm(observation);
        let mut read: Option<(Recipient, Payload, f64, f64, usize)> = None;
        let mut channel_errors = code::CODED_BITS;
        let mut best_payload_score = f64::NEG_INFINITY;
        for reader in self.readers.iter() {
            let soft = soft_bits(&reader.schedule, observation);
            let mut decoded = code::decode(&soft);
            // The most likely path failed its CRC yet scores high enough to
            // be reported: a short error event may have beaten the sent
            // path, which is then among the next most likely. (No codeword
            // scores above the most likely path, so below that bar no path
            // of the list could be reported.)
            let best_path_score = f64::from(decoded.best_metric) / payload_norm.max(f64::MIN_POSITIVE);
            if decoded.payload.is_none()
                && log10_tail_bound(best_path_score) + payload_trials_log10 <= log10_threshold
            {
                decoded = code::decode_list(&soft, LIST_PATHS);
            }
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
        let detected = log10_p <= log10_threshold;
        let payload_ok = detected && log10_payload <= log10_threshold;
        let read = read.filter(|_| payload_ok);
        Detection {
            detected,
            payload: read.as_ref().map(|r| r.1),
            false_positive_probability: 10f64.powf(log10_p),
            false_positive_log10: log10_p,
            payload_false_positive_log10: read.as_ref().map(|r| r.3),
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
            sharpened,
            rank,
            recipient: read.as_ref().map(|r| r.0),
        }
    }

    /// The recipients whose payloads this detector reads.
    pub fn recipients(&self) -> impl Iterator<Item = Recipient> + '_ {
        self.readers.iter().map(|r| r.recipient)
    }

    /// The share of [`DetectOptions::threshold`] the payload test spends on
    /// the reading of geometry `rank` (0 the unchanged geometry, `k` the
    /// `k`th alignment the geometric search read), sharpened or not.
    /// Payload bounds are divided by it.
    ///
    /// A reading's geometry is chosen by the image and the pilot alone, and
    /// the payload chips are independent of both, so under the null
    /// hypothesis each reading's payload correlation is a Rademacher sum
    /// whatever the search chose. The union bound over the readings then
    /// holds for any fixed shares that sum to at most 1 (a weighted
    /// Bonferroni correction): they need not be equal, and the larger ones
    /// go where marks are found.
    ///
    /// ```
    /// use tattle_detect::{DetectOptions, Key, MAX_CANDIDATES};
    ///
    /// let detector = DetectOptions::default().build(&Key::from_bytes([7; 32])).unwrap();
    /// let total: f64 = (0..MAX_CANDIDATES)
    ///     .flat_map(|rank| [false, true].map(|sharpened| detector.payload_share(rank, sharpened)))
    ///     .sum();
    /// assert!(total <= 1.0);
    /// ```
    pub fn payload_share(&self, rank: usize, sharpened: bool) -> f64 {
        if !self.options.geometric_search {
            // Only the unchanged geometry is read, as received and sharpened.
            return if rank == 0 {
                1.0 / restore::RESTORATIONS as f64
            } else {
                0.0
            };
        }
        match (rank, sharpened) {
            (0 | 1, false) => FIRST_READING_SHARE,
            (0 | 1, true) => FIRST_SHARPENED_SHARE,
            (rank, _) if rank < MAX_CANDIDATES => LATER_READING_SHARE,
            _ => 0.0,
        }
    }

    /// The Bonferroni factor (log10) of a payload test at the reading of
    /// geometry `rank`: the number of candidate payloads it chooses among
    /// (`candidates_log10`, log10), over the reading's share of the
    /// threshold.
    fn payload_trials_log10(&self, candidates_log10: f64, rank: usize, sharpened: bool) -> f64 {
        candidates_log10 - self.payload_share(rank, sharpened).log10()
    }

    /// The reader of `recipient`'s chips; an error naming the recipient
    /// when this detector was not built for it.
    fn reader(&self, recipient: Recipient) -> Result<&Reader> {
        self.readers
            .iter()
            .find(|r| r.recipient == recipient)
            .ok_or_else(|| issued::unknown_recipient(recipient))
    }

    /// The payloads a blind reading chooses among (log10): 2⁶⁴ for each
    /// recipient the detector reads.
    fn blind_candidates_log10(&self) -> f64 {
        Payload::BITS as f64 * std::f64::consts::LOG10_2 + (self.readers.len() as f64).log10()
    }

    /// The norm of the observation's payload slots, which payload
    /// correlations are divided by.
    fn payload_norm(&self, observation: &Observation) -> f64 {
        let roles = self.pilot_schedule().roles();
        observation
            .slots()
            .iter()
            .zip(roles)
            .filter(|(_, role)| **role != Role::Pilot)
            .map(|(v, _)| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt()
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

/// The luma of `window` of the source, as a plane of its own.
fn window_of(source: &LumaSource, window: sync::Window) -> Plane {
    let (_, w) = source.dim();
    let mut plane = Plane::zeros((window.height, window.width));
    let mut rows = vec![0.0f32; BAND_ROWS * w];
    for (band, mut out) in plane
        .axis_chunks_iter_mut(ndarray::Axis(0), BAND_ROWS)
        .enumerate()
    {
        let first_row = window.top + band * BAND_ROWS;
        let rows = rows.get_mut(..out.nrows() * w).unwrap_or_default();
        source.rows(first_row, rows);
        for (mut out_row, row) in out.rows_mut().into_iter().zip(rows.chunks_exact(w)) {
            let part = row
                .get(window.left..window.left + window.width)
                .unwrap_or_default();
            out_row.iter_mut().zip(part).for_each(|(o, v)| *o = *v);
        }
    }
    plane
}

/// How far a search goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The unchanged geometry only (as received, and sharpened).
    Unchanged,
    /// On to the geometric search when the unchanged geometry gives no
    /// payload and the detector's options allow it.
    Search,
}

/// The outcome of a search: the verdict, the reading behind it and the
/// alignment that produced that reading.
struct Found {
    detection: Detection,
    reading: Reading,
    alignment: Alignment,
    /// The other readings measured on the way, for issued payloads to be
    /// compared with.
    others: Vec<Reading>,
}

impl Found {
    /// The verdict on one reading of the image.
    fn new(
        detector: &Detector,
        observation: Observation,
        alignment: Alignment,
        geometry: Geometry,
        rank: usize,
    ) -> Self {
        let mut detection = detector.test_reading(&observation, rank, alignment.sharpened);
        detection.geometry = Some(geometry.clone());
        Self {
            detection,
            reading: Reading {
                observation,
                geometry,
                sharpened: alignment.sharpened,
                rank,
                others: Vec::new(),
            },
            alignment,
            others: Vec::new(),
        }
    }

    /// Whether to read this geometry again, sharpened: the plain reading
    /// gave no payload, or one whose own test passed within
    /// [`restore::MARGINAL_DECADES`] of `threshold` (however strong the
    /// pilot: the payload test alone names the recipient), but the pilot
    /// is there (see [`restore::MIN_PILOT_SCORE`]).
    fn worth_sharpening(&self, threshold: f64) -> bool {
        let inconclusive = self
            .detection
            .payload_false_positive_log10
            .is_none_or(|log10| log10 > threshold.log10() - restore::MARGINAL_DECADES);
        inconclusive && self.detection.pilot_score >= restore::MIN_PILOT_SCORE
    }

    /// Takes the search's best candidate when it beats this verdict.
    /// Either way, every reading of both is kept.
    fn merge(&mut self, other: Option<Found>) {
        if let Some(mut other) = other {
            if better(&other.detection, &self.detection) {
                std::mem::swap(self, &mut other);
            }
            self.others.push(other.reading);
            self.others.append(&mut other.others);
        }
    }

    /// Drops the geometry of a verdict that found nothing (the reading
    /// keeps it, for a match with issued payloads to report).
    fn settled(mut self) -> Self {
        if !self.detection.detected {
            self.detection.geometry = None;
        }
        self.reading.others = std::mem::take(&mut self.others);
        self
    }
}

/// A map for the geometric search to try, by where it came from.
enum MapTrial {
    /// The identity, with the received image's whitened planes (weights,
    /// residual): read in every orientation, its perspective always looked
    /// for.
    Unchanged(Plane, Plane),
    /// A map the tile lattice's autocorrelation gave: read in every
    /// orientation. When the mark already stands out upright under it (the
    /// pilot at [`FIRST_READING_PILOT`] or more, which noise does not
    /// reach), it is made exact as a searched map is: the lattice's
    /// estimate is not (a frame turned 5° read 2.9 raw bit errors in 288
    /// under its refined family map, 5.2 under the lattice's).
    Lattice(sync::Linear),
    /// A map a brute-force family gave, only as exact as its grid: made
    /// exact from the plane it gives (`sync::refine_by_drift`), its tile
    /// grid put on whole pixels (`sync::grid_offset`), and read upright.
    Searched(sync::Linear),
    /// One of the likely maps (`sync::LIKELY_MAPS`): made exact as a
    /// searched map is, and read in every orientation, since a halved
    /// frame may also be mirrored or turned a quarter. Where the mark is
    /// not upright, the upright pilot the exactness steps measure is too
    /// faint for them and they leave the map as it is (exact already).
    Likely(sync::Linear),
}

/// The maps the geometric search has tried, in order, the pixels of the
/// planes it keeps, and each (map, orientation)'s strongest tile shift.
#[derive(Default)]
struct TriedMaps<'a> {
    maps: Vec<TriedMap<'a>>,
    kept_pixels: usize,
    shifts: Vec<TriedShift>,
}

impl TriedMaps<'_> {
    /// The strongest alignment so far (the first of equals).
    fn strongest_shift(&self) -> Option<TriedShift> {
        self.shifts
            .iter()
            .fold(None::<&TriedShift>, |strongest, shift| match strongest {
                Some(s) if s.peak.strength >= shift.peak.strength => Some(s),
                _ => Some(shift),
            })
            .copied()
    }
}

/// An alignment the search found: the pilot's strongest tile shift in one
/// orientation of one of its maps (an index into [`TriedMaps::maps`]).
#[derive(Clone, Copy, PartialEq)]
struct TriedShift {
    peak: sync::ShiftPeak,
    map: usize,
    orientation: sync::Orientation,
}

/// A map the geometric search tried: what rebuilds its canonical plane
/// (the map, its perspective and the plane's grid offset), and the plane
/// with its weights while they fit the search's pixel budget.
struct TriedMap<'a> {
    linear: sync::Linear,
    perspective: sync::Perspective,
    offset: (f64, f64),
    kept: Option<(sync::Canonical<'a>, Plane)>,
}

/// How the received image was lined up with the tile grid: resampled
/// through `perspective` and `linear`, turned by `orientation`, its top-left corner at
/// `offset` in a tile (in the oriented canonical plane, as in
/// [`Geometry`]), and whether it was then sharpened. Independent of the
/// window the search worked on. `grid_shift` is the fraction of a pixel the
/// canonical plane was moved by to put the tile grid on whole pixels (see
/// `sync::Canonical::resample_offset`).
#[derive(Clone, Copy, Debug)]
struct Alignment {
    linear: sync::Linear,
    perspective: sync::Perspective,
    grid_shift: (f64, f64),
    orientation: sync::Orientation,
    offset: (f64, f64),
    sharpened: bool,
}

impl Alignment {
    const UNCHANGED: Self = Self {
        linear: sync::Linear::IDENTITY,
        perspective: sync::Perspective::NONE,
        grid_shift: (0.0, 0.0),
        orientation: sync::Orientation {
            mirror: false,
            quarter_turns: 0,
        },
        offset: (0.0, 0.0),
        sharpened: false,
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

    /// For diagnostics: the image point the search's probes are centred
    /// on, the pilot strength its refining probe reads under each map
    /// (row-major, canonical → image, as [`Geometry`] describes them), and
    /// the maps the brute-force families chose, with their strengths.
    #[doc(hidden)]
    pub fn probe_maps(&self, luma: &Plane, maps: &[[f64; 4]]) -> ProbedMaps {
        use rayon::prelude::*;
        let sync::Whitened { weights, residual } = sync::Whitened::of(luma, &self.options.mask);
        let fine = sync::fine_residual(luma, &weights);
        let probe = sync::Probe::new(&residual, &weights, &self.correlator).with_fine(&fine);
        ProbedMaps {
            focus: probe.focus,
            strengths: maps
                .par_iter()
                .map(|&m| probe.refining_strength(&sync::Linear { m }))
                .collect(),
            chosen: probe
                .trace_families(&sync::lattices(&residual).turns)
                .iter()
                .flat_map(|trace| trace.chosen())
                .map(|(strength, linear)| (strength, linear.m))
                .collect(),
        }
    }

    /// What the brute-force searches see on `luma` (read whole, as an image
    /// within the search's pixel budget is): each family's probes, stage
    /// by stage, and where those nearest `truth` ranked. `truth` is a
    /// family's name (`Scale`, `Rotation`, `AspectX`, `AspectY`, or
    /// `TurnedScale` for the scale searches at a lattice's rotation) and
    /// its parameter (log scale, or degrees), for diagnostics.
    #[doc(hidden)]
    pub fn search_report(&self, luma: &Plane, truth: Option<(&str, f64)>) -> Vec<String> {
        let sync::Whitened { weights, residual } = sync::Whitened::of(luma, &self.options.mask);
        let fine = sync::fine_residual(luma, &weights);
        let probe = sync::Probe::new(&residual, &weights, &self.correlator).with_fine(&fine);
        let estimates = sync::lattices(&residual);
        let lattices = estimates.maps.iter().map(|linear| {
            let (sx, sy, rotation, _) = sync::describe(linear, sync::Orientation::default());
            format!(
                "lattice: scale {sx:.4} x {sy:.4}, rotation {rotation:.3}; probed {:.2}",
                probe.lattice_strength(linear)
            )
        });
        let families = probe
            .trace_families(&estimates.turns)
            .into_iter()
            .flat_map(|trace| {
                let family_truth = truth.and_then(|(name, t)| trace.is_named(name).then_some(t));
                trace.describe(family_truth)
            });
        lattices.chain(families).collect()
    }
}

/// What [`Detector::probe_maps`] saw.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct ProbedMaps {
    /// The image point the probes are centred on.
    pub focus: (f64, f64),
    /// The pilot strength under each map asked for.
    pub strengths: Vec<f32>,
    /// The families' chosen maps: (strength, map).
    pub chosen: Vec<(f32, [f64; 4])>,
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
