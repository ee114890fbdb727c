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

use image::DynamicImage;
use tattle_core::layout::{Role, Schedule, TILE};
use tattle_core::mask::{perceptual_mask, MaskParams};
use tattle_core::observe::{BlockGains, Observation};
use tattle_core::pattern::tile_pattern;
use tattle_core::plane::{add_luma_delta, luma, Plane};
use tattle_core::{code, Error};

pub use tattle_core::{Key, Payload, Result};

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

    /// Checks the options and prepares an embedder for one key.
    pub fn build(&self, key: &Key) -> Result<Embedder> {
        if !(self.strength > 0.0 && self.strength <= 10.0) {
            return Err(Error::InvalidParameter {
                name: "strength",
                reason: format!("{} is outside (0, 10]", self.strength),
            });
        }
        Ok(Embedder {
            schedule: Schedule::new(key),
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
        let delta = self.luma_delta(&luma(image), payload)?;
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
        let (h, w) = luma.dim();
        check_size(w as u32, h as u32)?;
        let signs = self.schedule.slot_signs(&code::encode(payload));
        let mask = perceptual_mask(luma, &self.options.mask);
        let amplitude = BASE_AMPLITUDE * self.options.strength;
        let plain = spread(&mask, &tile_pattern(&signs), amplitude);
        let values = if self.options.host_cancellation > 0.0 {
            let gains = BlockGains::with_mask(luma, &mask);
            let host = Observation::measure_with(luma, &gains);
            let mark = Observation::measure_with(&plain, &gains);
            let factors = self.group_factors(&signs, host.slots(), mark.slots());
            signs.iter().zip(&factors).map(|(s, f)| s * f).collect()
        } else {
            signs
        };
        let mut delta = spread(&mask, &tile_pattern(&values), amplitude);
        let mse = delta.iter().map(|d| d * d).sum::<f32>() / delta.len().max(1) as f32;
        let budget = 255.0f32.powi(2) / 10f32.powf(self.options.psnr_floor / 10.0);
        if mse > budget {
            let shrink = (budget / mse).sqrt();
            delta.mapv_inplace(|d| d * shrink);
        }
        Ok(delta)
    }

    /// Per-slot amplitude factors: one per group (the pilot, each coded bit).
    fn group_factors(&self, signs: &[f32], host: &[f32], mark: &[f32]) -> Vec<f32> {
        let roles = self.schedule.roles();
        let group = |role: &Role| match role {
            Role::Pilot => 0,
            Role::Coded(bit) => 1 + usize::from(*bit),
        };
        let mut host_sum = vec![0.0f32; code::CODED_BITS + 1];
        let mut mark_sum = vec![0.0f32; code::CODED_BITS + 1];
        for (((role, s), h), m) in roles.iter().zip(signs).zip(host).zip(mark) {
            host_sum[group(role)] += s * h;
            mark_sum[group(role)] += s * m;
        }
        let lambda = self.options.host_cancellation;
        let factor: Vec<f32> = host_sum
            .iter()
            .zip(&mark_sum)
            .map(|(h, m)| {
                if *m > 0.0 {
                    (1.0 - lambda * h / m).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1)
                } else {
                    1.0
                }
            })
            .collect();
        roles.iter().map(|r| factor[group(r)]).collect()
    }
}

/// Smallest and largest amplitude factor informed embedding gives a coded bit.
pub const FACTOR_RANGE: (f32, f32) = (0.35, 3.0);

/// `amplitude × mask × tile`, the tile repeated over the plane.
fn spread(mask: &Plane, tile: &Plane, amplitude: f32) -> Plane {
    let mut out = mask.clone();
    for ((y, x), d) in out.indexed_iter_mut() {
        *d *= amplitude * tile[[y % TILE, x % TILE]];
    }
    out
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
