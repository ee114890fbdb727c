//! Embeds tattle's keyed, invisible watermark into images.
//!
//! ```
//! use image::{DynamicImage, RgbImage};
//! use tattle_embed::{EmbedOptions, Key, Payload};
//!
//! // Something with texture to hide the mark in.
//! let img = RgbImage::from_fn(256, 256, |x, y| {
//!     let v = ((x * 7919 + y * 104729) % 251) as u8;
//!     image::Rgb([v, v / 2, 255 - v])
//! });
//! let key = Key::from_bytes([7; 32]);
//! let embedder = EmbedOptions::default().build(&key).unwrap();
//! let marked = embedder.embed(&DynamicImage::ImageRgb8(img), Payload::new(0xc0ffee)).unwrap();
//! assert_eq!(marked.width(), 256);
//! ```
//!
//! # How it works
//!
//! The payload is protected by a CRC-24 and a convolutional code
//! ([`tattle_core::code`]); the coded bits and a keyed pilot are spread over
//! the mid-frequency DCT coefficients of a 128x128-pixel tile by a keyed
//! schedule ([`tattle_core::layout`]); the tile is repeated over the image
//! and scaled, pixel by pixel, by the perceptual mask
//! ([`tattle_core::mask`]) so that flat colour receives nothing and texture
//! and edges carry the mark. Only luma changes ([`tattle_core::plane`]).
//!
//! # Determinism
//!
//! The same key, payload, options and image give the same output, bit for
//! bit.
#![deny(missing_docs)]
// Every path here is reachable from user input: no index that can panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use image::DynamicImage;
use rayon::prelude::*;
use tattle_core::layout::{Role, Schedule, TILE};
use tattle_core::mask::{perceptual_mask, MaskParams};
use tattle_core::observe::{block_means, BlockBands, BlockGains, Observation};
use tattle_core::pattern::tile_pattern;
use tattle_core::plane::{add_luma_delta, headroom, luma, Headroom, Plane};
use tattle_core::{code, Error};

pub use tattle_core::{Key, Payload, Recipient, Result};

/// Amplitude, in 8-bit grey levels RMS, of the mark where the mask is 1 at
/// strength 1.
pub const BASE_AMPLITUDE: f32 = 2.0;

/// Smallest side, in pixels, of an image that can carry a mark: one tile.
pub const MIN_SIDE: u32 = TILE as u32;

/// Options of an [`Embedder`].
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedOptions {
    /// Multiplies the mark's amplitude everywhere. Higher is more robust and
    /// more visible. Default: 1.0. Valid: greater than 0, at most 10.
    pub strength: f32,
    /// The perceptual model. Default: [`MaskParams::default`].
    pub mask: MaskParams,
    /// The mark is scaled down, never up, so that the luma PSNR of the
    /// marked image stays at or above this many dB. Default: 42.5.
    pub psnr_floor: f32,
    /// How much of the image's own interference with each coded bit the
    /// embedder cancels (informed embedding; 0 = plain spread spectrum,
    /// 1 = full). Default: 1.0.
    pub host_cancellation: f32,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            strength: 1.0,
            mask: MaskParams::default(),
            psnr_floor: 42.5,
            host_cancellation: 1.0,
        }
    }
}

impl EmbedOptions {
    /// Sets the strength.
    pub fn strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// Checks the options and prepares an embedder for one key, on the
    /// studio-wide channel ([`Recipient::Studio`]).
    pub fn build(&self, key: &Key) -> Result<Embedder> {
        self.build_for(key, Recipient::Studio)
    }

    /// Checks the options and prepares an embedder whose payload only the
    /// given recipient's detector reads (see [`tattle_core::recipient`]).
    ///
    /// ```
    /// use tattle_embed::{EmbedOptions, Key, Recipient};
    /// let embedder = EmbedOptions::default().build_for(&Key::from_bytes([7; 32]), Recipient::Vendor(3));
    /// assert!(embedder.is_ok());
    /// ```
    pub fn build_for(&self, key: &Key, recipient: Recipient) -> Result<Embedder> {
        if !(self.strength > 0.0 && self.strength <= 10.0) {
            return Err(Error::InvalidParameter {
                name: "strength",
                reason: format!("{} is outside (0, 10]", self.strength),
            });
        }
        Ok(Embedder {
            schedule: Schedule::new(key, recipient),
            options: self.clone(),
        })
    }
}

/// Marks images with one key. Cheap to share between threads.
#[derive(Clone, Debug)]
pub struct Embedder {
    schedule: Schedule,
    options: EmbedOptions,
}

impl Embedder {
    /// Returns a marked copy of `image` carrying `payload`. Pixel type, bit
    /// depth and alpha are kept.
    pub fn embed(&self, image: &DynamicImage, payload: Payload) -> Result<DynamicImage> {
        check_size(image.width(), image.height())?;
        let delta = self.delta(&luma(image), || headroom(image), payload)?;
        let mut out = image.clone();
        add_luma_delta(&mut out, &delta)?;
        Ok(out)
    }

    /// The luma change (in grey levels) that marks an image whose luma plane
    /// is `luma`. This is the in-memory core of [`Embedder::embed`].
    ///
    /// The mark is *informed*: the embedder measures the image exactly as
    /// the detector will (see [`tattle_core::observe`]) and, for the pilot
    /// and each coded bit, scales its share of the mark so that the image's
    /// own content, which adds to or subtracts from that bit's correlation,
    /// is cancelled (Malvar and Florêncio's improved spread spectrum, applied
    /// per coded bit). Bits the image already favours get less energy, bits
    /// it works against get more, within [`FACTOR_RANGE`].
    pub fn luma_delta(&self, luma: &Plane, payload: Payload) -> Result<Plane> {
        self.delta(luma, || Headroom::of_luma(luma), payload)
    }

    /// The luma change for a plane whose pixels can move by at most
    /// `headroom()` grey levels before clipping. The headroom is only built
    /// once the perceptual mask is done: two image-sized planes fewer at the
    /// memory peak.
    fn delta(&self, luma: &Plane, headroom: impl FnOnce() -> Headroom, payload: Payload) -> Result<Plane> {
        let (h, w) = luma.dim();
        check_size(w as u32, h as u32)?;
        let signs = self.schedule.slot_signs(&code::encode(payload));
        let amplitude = BASE_AMPLITUDE * self.options.strength;
        let mask = perceptual_mask(luma, &self.options.mask);
        let budget = 255.0f32.powi(2) / 10f32.powf(self.options.psnr_floor / 10.0);
        // Fit the mark to the distortion budget: shrink it when it exceeds
        // the PSNR floor; when an image has little texture, let the texture
        // it has carry up to MAX_BOOST times more, within the same budget.
        // One image-sized buffer for the mark, rewritten in place by every
        // round below: fewer planes alive at once, no fresh pages to fault in.
        let mut delta = Plane::zeros(luma.dim());
        spread_into(&mut delta, &mask, &tile_pattern(&signs), amplitude);
        let plain_mse = mean_square(&delta);
        if plain_mse <= 0.0 {
            return Ok(delta);
        }
        let amplitude = amplitude * (budget / plain_mse).sqrt().min(MAX_BOOST);
        let headroom = headroom();
        if headroom.down.dim() != luma.dim() || headroom.up.dim() != luma.dim() {
            return Err(Error::BufferSize {
                expected: luma.len(),
                actual: headroom.down.len(),
            });
        }
        spread_into(&mut delta, &mask, &tile_pattern(&signs), amplitude);
        if self.options.host_cancellation > 0.0 {
            let groups = Groups::new(&self.schedule, &signs);
            // The host is transformed once; by linearity the marked image's
            // bands are the host's plus the mark's.
            let host_bands = BlockBands::of(&luma.view());
            let mask_means = block_means(&mask.view());
            let gains = BlockGains::from_bands(&host_bands, &mask_means);
            // What a host-free image would show for each group: the target.
            let unit = groups.responses(Observation::measure_with(&delta, &gains).slots());
            let host = groups.responses(Observation::measure_bands(&host_bands, &gains).slots());
            let lambda = self.options.host_cancellation;
            let mut factors: Vec<f32> = host
                .iter()
                .zip(&unit)
                .map(|(h, m)| if *m > 0.0 { 1.0 - lambda * h / m } else { 1.0 })
                .map(|f| f.clamp(FACTOR_RANGE.0, FACTOR_RANGE.1))
                .collect();
            // The detector's weighting is not quite linear (a coefficient's
            // own size enters its weight), so check the prediction with the
            // detector's own measurement and correct the factors. The
            // marked image's perceptual mask is taken to be the host's: the
            // mark moves local contrast by a few percent at most.
            for round in 0..=REFINEMENT_ROUNDS {
                let values: Vec<f32> = groups.spread(&signs, &factors);
                spread_into(&mut delta, &mask, &tile_pattern(&values), amplitude);
                // Where a pixel would clip, only the part of the change that
                // fits survives; the next round sees exactly that.
                headroom.clamp(&mut delta);
                if round == REFINEMENT_ROUNDS {
                    break;
                }
                let marked = host_bands.plus(&BlockBands::of(&delta.view()));
                let marked_gains = BlockGains::from_bands(&marked, &mask_means);
                let seen =
                    groups.responses(Observation::measure_bands_robust(&marked, &marked_gains).slots());
                for ((f, m), r) in factors.iter_mut().zip(&unit).zip(&seen) {
                    if *m > 0.0 {
                        *f = (*f + lambda * (m - r) / m).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1);
                    }
                }
            }
        }
        let mse = mean_square(&delta);
        if mse > budget {
            let shrink = (budget / mse).sqrt();
            delta.mapv_inplace(|d| d * shrink);
        }
        Ok(delta)
    }
}

/// Rounds of correction of informed embedding against the detector's own measurement.
const REFINEMENT_ROUNDS: usize = 2;

fn mean_square(plane: &Plane) -> f32 {
    plane.iter().map(|d| d * d).sum::<f32>() / plane.len().max(1) as f32
}

/// The groups of slots whose correlations the detector reads as one
/// value: the pilot (group 0) and each coded bit (group 1 + bit).
struct Groups {
    group_of_slot: Vec<usize>,
    signs: Vec<f32>,
}

impl Groups {
    const COUNT: usize = code::CODED_BITS + 1;

    fn new(schedule: &Schedule, signs: &[f32]) -> Self {
        let group_of_slot = schedule
            .roles()
            .iter()
            .map(|role| match role {
                Role::Pilot => 0,
                Role::Coded(bit) => 1 + usize::from(*bit),
            })
            .collect();
        Self {
            group_of_slot,
            signs: signs.to_vec(),
        }
    }

    /// Each group's correlation of measured slot values with its signs.
    fn responses(&self, slots: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; Self::COUNT];
        for ((g, s), y) in self.group_of_slot.iter().zip(&self.signs).zip(slots) {
            if let Some(o) = out.get_mut(*g) {
                *o += s * y;
            }
        }
        out
    }

    /// Slot values: each slot's sign times its group's factor.
    fn spread(&self, signs: &[f32], factors: &[f32]) -> Vec<f32> {
        signs
            .iter()
            .zip(&self.group_of_slot)
            .map(|(s, g)| s * factors.get(*g).copied().unwrap_or(1.0))
            .collect()
    }
}

/// Largest factor by which the mark of a low-texture image is raised
/// towards the distortion budget (see [`EmbedOptions::psnr_floor`]).
pub const MAX_BOOST: f32 = 3.0;

/// Smallest and largest amplitude factor informed embedding gives a coded bit.
pub const FACTOR_RANGE: (f32, f32) = (0.35, 3.0);

/// Writes `amplitude × mask × tile` into `out`, the tile repeated over the plane.
fn spread_into(out: &mut Plane, mask: &Plane, tile: &Plane, amplitude: f32) {
    let tile = tile.as_standard_layout();
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(mask.axis_iter(ndarray::Axis(0)))
        .enumerate()
        .for_each(|(y, (mut row, mask_row))| {
            let tile_row = tile.row(y % TILE);
            let (Some(row), Some(tile_row)) = (row.as_slice_mut(), tile_row.to_slice()) else {
                return;
            };
            for (chunk, mask_chunk) in row
                .chunks_mut(TILE)
                .zip(mask_row.axis_chunks_iter(ndarray::Axis(0), TILE))
            {
                for ((d, m), t) in chunk.iter_mut().zip(mask_chunk).zip(tile_row) {
                    *d = m * (amplitude * t);
                }
            }
        });
}

fn check_size(width: u32, height: u32) -> Result<()> {
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Error::ImageTooSmall {
            width,
            height,
            min_side: MIN_SIDE,
        });
    }
    Ok(())
}
