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
use multiversion::multiversion;
use rayon::prelude::*;
use tattle_core::dct::BLOCK;
use tattle_core::layout::{Role, Schedule, TILE};
use tattle_core::mask::{
    estimate_noise_sigma_of_rows, mse_at_psnr, perceptual_mask_with_noise_into, sample_mask_rows, MaskParams,
};
use tattle_core::observe::{block_means, BlockBands, BlockGains, Observation};
use tattle_core::pattern::tile_pattern;
use tattle_core::plane::{add_luma_by_bands, floors_per_row, LumaSource, Plane, BAND_ROWS};
use tattle_core::scratch::{with_local, ROWS};
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
    /// change stays at or above this many dB. Rounding to the output's
    /// sample precision adds, where the mark is not zero, about 1/12 of a
    /// level² to the mean square error in 8 bits (0.08 dB on the
    /// development corpus, whose lowest marked PSNR is 42.12 dB). Default:
    /// 42.2, so that marked 8-bit images stay above 42 dB.
    pub psnr_floor: f32,
    /// How much of the image's own interference with each coded bit the
    /// embedder cancels (informed embedding; 0 = plain spread spectrum,
    /// 1 = full). Default: 1.0.
    pub host_cancellation: f32,
    /// Where the distortion budget binds, the embedder evens the mark out:
    /// it puts a ceiling on the perceptual mask, taking mark out of the
    /// busiest texture — where it costs the most of the budget and reads
    /// the least, the image's own texture drowning it — and gives it, within
    /// the same budget, to the rest of the textured area. The lowest
    /// ceiling of [`MASK_CEILINGS`] is taken whose predicted luma SSIM
    /// stays at or above this; an image whose plain mark is predicted
    /// below it gets no ceiling. 1.0 turns the ceiling off. Default: 0.99.
    pub ssim_floor: f32,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            strength: 1.0,
            mask: MaskParams::default(),
            psnr_floor: 42.2,
            host_cancellation: 1.0,
            ssim_floor: 0.99,
        }
    }
}

impl EmbedOptions {
    /// Sets the strength.
    pub fn strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// Sets the SSIM floor of the mask ceiling ([`EmbedOptions::ssim_floor`]);
    /// 1.0 turns the ceiling off.
    ///
    /// ```
    /// use tattle_embed::{EmbedOptions, Key};
    /// let key = Key::from_bytes([7; 32]);
    /// assert!(EmbedOptions::default().ssim_floor(1.0).build(&key).is_ok());
    /// assert!(EmbedOptions::default().ssim_floor(1.5).build(&key).is_err());
    /// ```
    pub fn ssim_floor(mut self, ssim_floor: f32) -> Self {
        self.ssim_floor = ssim_floor;
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
        if !(0.0..=1.0).contains(&self.ssim_floor) {
            return Err(Error::InvalidParameter {
                name: "ssim_floor",
                reason: format!("{} is outside [0, 1]", self.ssim_floor),
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
        let mut out = image.clone();
        self.embed_in_place(&mut out, payload)?;
        Ok(out)
    }

    /// Marks `image` itself with `payload`: [`Embedder::embed`] without the
    /// copy, for frames too big to hold twice. Pixel type, bit depth and
    /// alpha are kept. On error the image is unchanged.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_embed::{EmbedOptions, Key, Payload};
    /// let mut img = DynamicImage::ImageRgb8(RgbImage::from_fn(256, 256, |x, y| {
    ///     let v = ((x * 7919 + y * 104729) % 251) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// }));
    /// let embedder = EmbedOptions::default().build(&Key::from_bytes([7; 32])).unwrap();
    /// let copy = embedder.embed(&img, Payload::new(1)).unwrap();
    /// embedder.embed_in_place(&mut img, Payload::new(1)).unwrap();
    /// assert_eq!(img, copy);
    /// ```
    pub fn embed_in_place(&self, image: &mut DynamicImage, payload: Payload) -> Result<()> {
        let mark = self.plan(&LumaSource::Image(image), payload)?;
        if mark.scale == 0.0 {
            return Ok(());
        }
        add_luma_by_bands(image, mark.scale, &mark.floors, |first_row, out| {
            mark.rows(first_row, out)
        })
    }

    /// The luma change (in grey levels) that marks an image whose luma plane
    /// is `luma`: what [`Embedder::embed`] adds, for callers that hold the
    /// luma plane alone.
    pub fn luma_delta(&self, luma: &Plane, payload: Payload) -> Result<Plane> {
        let (h, w) = luma.dim();
        let host = LumaSource::Plane(luma);
        let mark = self.plan(&host, payload)?;
        let mut delta = Plane::zeros((h, w));
        if let Some(values) = delta.as_slice_mut() {
            values
                .par_chunks_mut(BAND_ROWS * w.max(1))
                .enumerate()
                .for_each(|(band, out)| {
                    let first_row = band * BAND_ROWS;
                    mark.rows(first_row, out);
                    host.clamp_to_headroom(first_row, out);
                    out.iter_mut().for_each(|d| *d *= mark.scale);
                });
        }
        Ok(delta)
    }

    /// The ceiling to put on the perceptual mask ([`EmbedOptions::ssim_floor`]),
    /// or `None`, decided from a sample of the image's rows before the mark
    /// is made. The luma SSIM of a window loses about `v_m / (2 v + C2)` to
    /// a small mark of local variance `v_m` on texture of local variance `v`;
    /// summed over the sampled pixels, with the mark's final energy (the
    /// budget, where it binds), that predicts the SSIM under each ceiling.
    /// Where the budget does not bind (little texture: the mark is boosted
    /// instead), a ceiling would only take energy away, and none is put.
    fn mask_ceiling(
        &self,
        host: &LumaSource,
        noise_sigma: f32,
        tile_mean_square: f32,
        amplitude: f32,
    ) -> Option<f32> {
        if self.options.ssim_floor >= 1.0 {
            return None;
        }
        let (h, w) = host.dim();
        let strips = sample_mask_rows(
            w,
            h,
            |first, out| host.rows(first, out),
            &self.options.mask,
            noise_sigma,
            (h / CEILING_SAMPLE_EVERY).clamp(4, 16),
            CEILING_STRIP_ROWS,
            CeilingSums::of_strip,
        );
        let mut all = CeilingSums::default();
        strips.iter().for_each(|strip| all.add(strip));
        let (pixels, total) = (all.pixels, all.sums);
        let budget = f64::from(mse_at_psnr(self.options.psnr_floor));
        let unit = f64::from(amplitude).powi(2) * f64::from(tile_mean_square) / pixels.max(1) as f64;
        let max_boost = f64::from(MAX_BOOST).powi(2);
        // The predicted SSIM, under a ceiling whose sums are `[Σ m², Σ m² / (2v + C2)]`,
        // where the budget binds; `None` where it does not.
        let predicted = |[m2, weighted]: [f64; 2]| {
            let plain_mse = unit * m2;
            (m2 > 0.0 && plain_mse * max_boost >= budget).then(|| 1.0 - budget * weighted / m2)
        };
        let floor = f64::from(self.options.ssim_floor);
        let (plain, ceilings) = total.split_first()?;
        predicted(*plain).filter(|&plain| plain >= floor)?;
        MASK_CEILINGS
            .iter()
            .zip(ceilings)
            .take_while(|(_, sums)| predicted(**sums).is_some_and(|ssim| ssim >= floor))
            .last()
            .map(|(&c, _)| c)
    }

    /// Works out the mark for a host image: its perceptual mask, the slot
    /// values of its tile, its amplitude and final scale. Nothing
    /// image-sized is kept but the mask; the mark's pixels are rebuilt band
    /// by band whenever a pass needs them.
    ///
    /// The mark is *informed*: the embedder measures the image exactly as
    /// the detector will (see [`tattle_core::observe`]) and, for the pilot
    /// and each coded bit, scales its share of the mark so that the image's
    /// own content, which adds to or subtracts from that bit's correlation,
    /// is cancelled (Malvar and Florêncio's improved spread spectrum, applied
    /// per coded bit). Bits the image already favours get less energy, bits
    /// it works against get more, within [`FACTOR_RANGE`].
    fn plan(&self, host: &LumaSource, payload: Payload) -> Result<Mark> {
        let (h, w) = host.dim();
        check_size(w as u32, h as u32)?;
        let signs = self.schedule.slot_signs(&code::encode(payload));
        let tile = tile_pattern(&signs);
        let amplitude = BASE_AMPLITUDE * self.options.strength;
        let informed = self.options.host_cancellation > 0.0;
        // One pass over the image builds the mask and, band by band while
        // it is in cache, what the first fit needs: the plain mark's energy
        // and measurement, and the host's bands and measurement. The mask is
        // kept in 16-bit steps: half the memory of f32, far finer than it
        // matters.
        let mask_step = MaskStep::for_params(&self.options.mask);
        let tile_mean_square =
            (sum_of_squares(tile.as_slice().unwrap_or_default()) / tile.len().max(1) as f64) as f32;
        let noise_sigma = estimate_noise_sigma_of_rows(w, h, |first, out| host.rows(first, out));
        let ceiling = self.mask_ceiling(host, noise_sigma, tile_mean_square, amplitude);
        let ceiling_steps = ceiling.map(|c| mask_step.steps(c));
        let mut mask = vec![0u16; w * h];
        let bands = perceptual_mask_with_noise_into(
            w,
            h,
            |first, out| host.rows(first, out),
            &self.options.mask,
            noise_sigma,
            &mut mask,
            |first_row, luma, mask, quantised| {
                mask_step.quantise(mask, quantised);
                if let Some(top) = ceiling_steps {
                    quantised.iter_mut().for_each(|q| *q = (*q).min(top));
                }
                with_local(&ROWS, |plain| {
                    let plain = plain.exactly(mask.len());
                    spread_rows(quantised, mask_step, w, first_row, &tile, amplitude, plain);
                    let energy = sum_of_squares(plain);
                    let measured = informed.then(|| {
                        let means = ndarray::ArrayView2::from_shape((mask.len() / w, w), mask)
                            .map(|rows| block_means(&rows))
                            .unwrap_or_default();
                        let host_bands = BlockBands::of_slice_masked(luma, w, &means);
                        // Measurement is linear with fixed gains, and a block's
                        // gain depends on that block alone: the plain mark and
                        // the host are measured here, band by band, and never
                        // transformed again.
                        let gains = BlockGains::from_bands(&host_bands, &means);
                        let block_row = first_row / BLOCK;
                        let plain = Observation::measure_bands_part(
                            &BlockBands::of_slice_masked(plain, w, &means),
                            &gains,
                            block_row,
                        );
                        let host = Observation::measure_bands_part(&host_bands, &gains, block_row);
                        (host_bands, means, plain, host)
                    });
                    // Where the band's pixels are far from clipping, the later
                    // passes need not read them again to clamp the mark.
                    let mut floors = vec![0.0f32; mask.len() / w * floors_per_row(w)];
                    host.headroom_floors(first_row, &mut floors);
                    (energy, measured, floors)
                })
            },
        );
        let mut plain_energy = 0.0f64;
        let mut measured_bands = Vec::with_capacity(bands.len());
        let mut floors = Vec::with_capacity(bands.len());
        // Bands are summed in a fixed order: the same result on any number of threads.
        for (energy, measured, band_floors) in bands {
            plain_energy += energy;
            measured_bands.extend(measured);
            floors.push(band_floors);
        }
        let mut mark = Mark {
            mask,
            mask_step,
            width: w,
            tile,
            amplitude,
            scale: 1.0,
            floors,
        };
        let budget = mse_at_psnr(self.options.psnr_floor);
        // Fit the mark to the distortion budget: shrink it when it exceeds
        // the PSNR floor; when an image has little texture, let the texture
        // it has carry up to MAX_BOOST times more, within the same budget.
        let plain_mse = (plain_energy / (h * w) as f64) as f32;
        if plain_mse <= 0.0 {
            mark.scale = 0.0;
            return Ok(mark);
        }
        let boost = (budget / plain_mse).sqrt().min(MAX_BOOST);
        mark.amplitude *= boost;
        if informed {
            let groups = Groups::new(&self.schedule, &signs);
            // The host's bands, kept band by band with the mask's block
            // means: by linearity the marked image's bands are the host's
            // plus the mark's, so the host is transformed once.
            let mut host_parts = Vec::with_capacity(measured_bands.len());
            let (mut plain_parts, mut host_observed) = (Vec::new(), Vec::new());
            for (host_bands, means, plain, host) in measured_bands {
                host_parts.push((host_bands, means));
                plain_parts.push(plain);
                host_observed.push(host);
            }
            // What a host-free image would show for each group: the target.
            // The plain mark was measured at the first amplitude; the
            // measurement is linear in it.
            let unit: Vec<f32> = groups
                .responses(Observation::sum(plain_parts).slots())
                .iter()
                .map(|r| r * boost)
                .collect();
            let host_response = groups.responses(Observation::sum(host_observed).slots());
            let lambda = self.options.host_cancellation;
            let mut factors: Vec<f32> = host_response
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
            // Where the budget binds, the final fit scales away whatever
            // energy a further round adds and only its reshuffling between
            // bits remains; where it does not (art with so little texture
            // that the boost is capped), a second round brings the response
            // up to its target.
            let rounds = if boost < MAX_BOOST {
                REFINEMENT_ROUNDS
            } else {
                REFINEMENT_ROUNDS + 1
            };
            for round in 0..=rounds {
                mark.tile = tile_pattern(&groups.spread(&signs, &factors));
                if round == rounds {
                    break;
                }
                let seen = groups.responses(mark.measure_marked(host, &host_parts).slots());
                for ((f, m), r) in factors.iter_mut().zip(&unit).zip(&seen) {
                    if *m > 0.0 {
                        *f = (*f + lambda * (m - r) / m).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1);
                    }
                }
            }
        }
        let mse = mark.mean_square(host);
        if mse > budget {
            mark.scale = (budget / mse).sqrt();
        }
        Ok(mark)
    }
}

/// A mark that is never stored whole: pixel `(x, y)` changes by
/// `scale × clamp(amplitude × mask[y][x] × tile[y mod 128][x mod 128])`,
/// the clamp keeping every colour channel in range.
struct Mark {
    /// The perceptual mask, row-major, in [`MaskStep`]s.
    mask: Vec<u16>,
    mask_step: MaskStep,
    width: usize,
    tile: Plane,
    amplitude: f32,
    scale: f32,
    /// Headroom floors of each band (see [`LumaSource::headroom_floors`]).
    floors: Vec<Vec<f32>>,
}

impl Mark {
    /// Writes `amplitude × mask × tile` for whole rows from `first_row` on
    /// (before clamping and scaling).
    fn rows(&self, first_row: usize, out: &mut [f32]) {
        let w = self.width;
        match self.mask.get(first_row * w..first_row * w + out.len()) {
            Some(mask) => spread_rows(
                mask,
                self.mask_step,
                w,
                first_row,
                &self.tile,
                self.amplitude,
                out,
            ),
            None => out.fill(0.0),
        }
    }

    /// Clamps band `band` of the mark to the host's headroom.
    fn clamp(&self, host: &LumaSource, band: usize, rows: &mut [f32]) {
        let first_row = band * BAND_ROWS;
        match self.floors.get(band) {
            Some(floors) => host.clamp_within_floors(first_row, rows, floors),
            None => host.clamp_to_headroom(first_row, rows),
        }
    }

    /// What the detector would measure on the host with this mark added,
    /// given the host's bands and the mask's block means band by band:
    /// each band of the mark is built, clamped where a pixel would clip
    /// (only the part of the change that fits survives), transformed, added
    /// to the host's and measured while in cache. Parts are added in order.
    fn measure_marked(&self, host: &LumaSource, host_parts: &[(BlockBands, Vec<f32>)]) -> Observation {
        let w = self.width;
        let parts: Vec<Observation> = host_parts
            .par_iter()
            .enumerate()
            .map(|(band, (host_bands, means))| {
                with_local(&ROWS, |rows| {
                    let first_row = band * BAND_ROWS;
                    let rows = rows.exactly(means.len() / (w / BLOCK).max(1) * BLOCK * w);
                    self.rows(first_row, rows);
                    self.clamp(host, band, rows);
                    let mut marked = BlockBands::of_slice_masked(rows, w, means);
                    marked.add(host_bands);
                    let gains = BlockGains::from_bands(&marked, means);
                    Observation::measure_bands_robust_part(&marked, &gains, first_row / BLOCK)
                })
            })
            .collect();
        Observation::sum(parts)
    }

    /// The mean square of the mark over the image, clamped to the host's
    /// headroom. Bands are summed in a fixed order, so the result does not
    /// depend on the number of threads.
    fn mean_square(&self, host: &LumaSource) -> f32 {
        let w = self.width;
        let h = self.mask.len() / w.max(1);
        let band_sums: Vec<f64> = (0..h.div_ceil(BAND_ROWS))
            .into_par_iter()
            .map(|band| {
                with_local(&ROWS, |rows| {
                    let first_row = band * BAND_ROWS;
                    let rows = rows.exactly(BAND_ROWS.min(h - first_row) * w);
                    self.rows(first_row, rows);
                    self.clamp(host, band, rows);
                    sum_of_squares(rows)
                })
            })
            .collect();
        (band_sums.iter().sum::<f64>() / (h * w).max(1) as f64) as f32
    }
}

/// Rounds of correction of informed embedding against the detector's own
/// measurement, when the distortion budget binds (one more otherwise).
/// One, measured on the corpus: without it the mark falls short of its
/// target response (JPEG 30, WebP, rotations and the screenshot chain lose
/// images); a second round fits the unattacked image more closely but
/// leaves more raw bit errors after almost every attack, at 12% more
/// embedding time.
const REFINEMENT_ROUNDS: usize = 1;

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

/// Ceilings the embedder may put on the perceptual mask, highest first
/// (see [`EmbedOptions::ssim_floor`]). The mask is 1 on texture of local
/// standard deviation 6 grey levels at mid grey; without a ceiling it
/// reaches 5 (the contrast cap, 4, times the top of the luminance factor).
pub const MASK_CEILINGS: [f32; 5] = [3.0, 2.5, 2.0, 1.75, 1.5];

/// What [`Embedder::mask_ceiling`] needs of the sampled pixels: under no
/// ceiling and under each of [`MASK_CEILINGS`], `Σ min(m, c)²` and
/// `Σ min(m, c)² × cost`, where a pixel's `cost`, `1 / (2v + C2)` (`v`: its
/// local variance), is its share of the SSIM that a mark of unit variance
/// takes.
#[derive(Clone, Copy, Debug, Default)]
struct CeilingSums {
    /// `[Σ min(m, c)², Σ min(m, c)² × cost]`, no ceiling first.
    sums: [[f64; 2]; MASK_CEILINGS.len() + 1],
    /// Pixels sampled, flat ones included.
    pixels: usize,
}

/// Rows of each strip [`Embedder::mask_ceiling`] samples: with one strip
/// per [`CEILING_SAMPLE_EVERY`] rows, about 6% of a 1080p frame's rows,
/// enough for the ratios it needs and cheap next to marking the image (the
/// mask of the strips, with the two rows above and below each that its
/// window reaches). Sampling every second band of 32 rows instead cost a
/// quarter of the marking time of a 1080p frame.
const CEILING_STRIP_ROWS: usize = 8;

/// [`Embedder::mask_ceiling`] samples one strip per this many rows of the
/// image, at least 4 strips and at most 16.
const CEILING_SAMPLE_EVERY: usize = 128;

/// Pixels [`CeilingSums::of_strip`] takes at a time, each in its own
/// accumulators, so that the loop runs in vector registers.
const CEILING_LANES: usize = 8;

impl CeilingSums {
    fn of_strip(mask: &[f32], variance: &[f32]) -> Self {
        const K: usize = MASK_CEILINGS.len() + 1;
        let ceilings: [f32; K] = std::array::from_fn(|k| {
            k.checked_sub(1)
                .and_then(|k| MASK_CEILINGS.get(k))
                .map_or(f32::INFINITY, |&c| c)
        });
        let mut out = Self {
            pixels: mask.len(),
            ..Self::default()
        };
        // f32 lanes over a few thousand pixels at a time, then f64.
        for (mask, variance) in mask.chunks(4096).zip(variance.chunks(4096)) {
            let mut squares = [[0.0f32; CEILING_LANES]; K];
            let mut weighted = [[0.0f32; CEILING_LANES]; K];
            for (m, v) in mask.chunks(CEILING_LANES).zip(variance.chunks(CEILING_LANES)) {
                let mut cost = [0.0f32; CEILING_LANES];
                let mut lane_mask = [0.0f32; CEILING_LANES];
                for ((c, l), (&m, &v)) in cost.iter_mut().zip(&mut lane_mask).zip(m.iter().zip(v)) {
                    *c = 1.0 / (2.0 * v + SSIM_C2);
                    *l = m;
                }
                for ((squares, weighted), &ceiling) in squares.iter_mut().zip(&mut weighted).zip(&ceilings) {
                    for ((s, w), (&m, &c)) in squares
                        .iter_mut()
                        .zip(weighted.iter_mut())
                        .zip(lane_mask.iter().zip(&cost))
                    {
                        let capped = m.min(ceiling);
                        let square = capped * capped;
                        *s += square;
                        *w += square * c;
                    }
                }
            }
            for ((total, squares), weighted) in out.sums.iter_mut().zip(&squares).zip(&weighted) {
                let [s, w] = total;
                *s += squares.iter().map(|&x| f64::from(x)).sum::<f64>();
                *w += weighted.iter().map(|&x| f64::from(x)).sum::<f64>();
            }
        }
        out
    }

    fn add(&mut self, other: &Self) {
        for (sum, other) in self.sums.iter_mut().zip(&other.sums) {
            sum.iter_mut().zip(other).for_each(|(a, b)| *a += b);
        }
        self.pixels += other.pixels;
    }
}

/// SSIM's C2 constant, `(0.03 × 255)²`.
const SSIM_C2: f32 = 58.5225;

/// Smallest and largest amplitude factor informed embedding gives a coded bit.
pub const FACTOR_RANGE: (f32, f32) = (0.35, 3.0);

/// Writes `amplitude × mask × tile` for whole rows `width` wide from
/// `first_row` on, the tile repeated over the image; `mask` holds the
/// same rows of the perceptual mask. Compiled for the vector extensions
/// the processor has (AVX-512 or AVX2); the same bits from every version.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2"))]
fn spread_rows(
    mask: &[u16],
    step: MaskStep,
    width: usize,
    first_row: usize,
    tile: &Plane,
    amplitude: f32,
    out: &mut [f32],
) {
    let per_step = amplitude * step.0;
    let rows = mask
        .chunks_exact(width.max(1))
        .zip(out.chunks_exact_mut(width.max(1)));
    for (y, (mask_row, row)) in (first_row..).zip(rows) {
        let Some(tile_row) = tile.row(y % TILE).to_slice() else {
            row.fill(0.0);
            continue;
        };
        for (chunk, mask_chunk) in row.chunks_mut(TILE).zip(mask_row.chunks(TILE)) {
            for ((d, &m), t) in chunk.iter_mut().zip(mask_chunk).zip(tile_row) {
                *d = f32::from(m) * (per_step * t);
            }
        }
    }
}

/// The sum of the squares of `values`, in f64. Eight partial sums side by
/// side, added in a fixed order: vector registers instead of one serial
/// chain of additions, and the same bits on any processor.
#[multiversion(targets("x86_64+avx2"))]
fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|v| f64::from(v * v)).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v * v);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// The value of one step of the 16-bit mask: the largest mask the
/// parameters allow (contrast cap × the luminance factor's top, 1.25) is
/// 65,535 steps.
#[derive(Clone, Copy, Debug)]
struct MaskStep(f32);

impl MaskStep {
    fn for_params(params: &MaskParams) -> Self {
        Self(params.cap.max(1e-3) * 1.25 / f32::from(u16::MAX))
    }

    /// Writes a band of the mask in steps, each rounded to the nearest.
    fn quantise(self, mask: &[f32], out: &mut [u16]) {
        tattle_core::mask::quantise(mask, self.0, out);
    }

    /// A mask value in steps, rounded as [`MaskStep::quantise`] rounds it:
    /// quantising is monotone, so capping the steps at this caps the mask.
    fn steps(self, value: f32) -> u16 {
        let mut out = [0u16];
        self.quantise(&[value], &mut out);
        let [steps] = out;
        steps
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn textured(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            let v = ((x * 7919 + y * 104_729) % 251) as u8;
            // Saturated corners, so that clamping to the headroom matters.
            if x < 40 && y < 40 {
                Rgb([255, v, 250])
            } else {
                Rgb([v, v / 2, 255 - v])
            }
        }))
    }

    fn embedder() -> Embedder {
        EmbedOptions::default().build(&Key::from_bytes([3; 32])).unwrap()
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        // Odd sizes: a partial band, a partial tile and a partial block.
        let image = textured(301, 203);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| embedder().embed(&image, Payload::new(42)).unwrap())
        };
        let one = on(1);
        assert_ne!(one, image);
        assert_eq!(one, on(2));
        assert_eq!(one, on(5));
    }

    #[test]
    fn marked_bytes_are_pinned() {
        // The hot loops are compiled for several vector extensions and
        // chosen at run time; every version, on every machine, must give
        // these bytes. A change here is a change of the engine: deliberate,
        // measured, and pinned again (last: session 25, the payload mixed
        // before coding).
        let fnv = |options: EmbedOptions| {
            let marked = options
                .build(&Key::from_bytes([3; 32]))
                .unwrap()
                .embed(&textured(320, 240), Payload::new(0x5eed))
                .unwrap();
            marked.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        let evened = fnv(EmbedOptions::default());
        assert_eq!(evened, 0xa79f_e565_cff2_2a63, "{evened:#018x}");
        // Without the mask ceiling.
        let plain = fnv(EmbedOptions::default().ssim_floor(1.0));
        assert_eq!(plain, 0xcd22_013f_a414_277f, "{plain:#018x}");
    }

    #[test]
    fn luma_delta_is_the_change_embed_makes() {
        let grey = GrayImage::from_fn(260, 140, |x, y| Luma([((x * 31 + y * 17) % 200) as u8 + 20]));
        let image = DynamicImage::ImageLuma8(grey.clone());
        let luma = tattle_core::plane::luma(&image);
        let delta = embedder().luma_delta(&luma, Payload::new(7)).unwrap();
        let DynamicImage::ImageLuma8(marked) = embedder().embed(&image, Payload::new(7)).unwrap() else {
            panic!("pixel type changed");
        };
        for ((before, after), d) in grey.pixels().zip(marked.pixels()).zip(delta.iter()) {
            let change = i32::from(after[0]) - i32::from(before[0]);
            assert_eq!(change, (d + 0.5).floor() as i32, "delta {d}");
        }
        assert!(delta.iter().any(|d| d.abs() >= 1.0));
    }

    #[test]
    fn the_psnr_floor_holds_and_nothing_clips() {
        let image = textured(384, 256);
        let luma = tattle_core::plane::luma(&image);
        let delta = embedder().luma_delta(&luma, Payload::new(9)).unwrap();
        let mse = delta.iter().map(|d| d * d).sum::<f32>() / delta.len() as f32;
        let psnr = 10.0 * (255.0f32.powi(2) / mse).log10();
        assert!(psnr >= EmbedOptions::default().psnr_floor - 0.01, "{psnr}");
        for (d, y) in delta.iter().zip(luma.iter()) {
            assert!(y + d >= -1e-3 && y + d <= 255.0 + 1e-3, "{y} + {d}");
        }
    }

    #[test]
    fn images_smaller_than_a_tile_are_refused_untouched() {
        let mut small = textured(MIN_SIDE - 1, 400);
        let before = small.clone();
        let error = embedder()
            .embed_in_place(&mut small, Payload::new(1))
            .unwrap_err();
        assert!(matches!(error, Error::ImageTooSmall { .. }), "{error}");
        assert_eq!(small, before);
        assert!(embedder()
            .luma_delta(&Plane::zeros((400, 100)), Payload::new(1))
            .is_err());
    }

    #[test]
    fn a_flat_image_is_returned_unchanged() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 150, Rgb([90, 120, 200])));
        assert_eq!(embedder().embed(&flat, Payload::new(5)).unwrap(), flat);
    }
}
