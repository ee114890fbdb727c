//! The perceptual model: how much mark each pixel can hide.
//!
//! A change is hard to see where the image is busy (contrast masking) and
//! easier to see in dark, flat areas (luminance masking). The mask follows
//! Watson's DCT model in spirit, evaluated per pixel so that the mark hugs
//! the texture and edges that hide it instead of spilling over a whole 8x8
//! block into the flat colour beside an outline:
//!
//! * *Contrast masking*: the local standard deviation σ of luma over a small
//!   window, raised to Watson's exponent 0.7 (masking grows slower than
//!   contrast) and capped, so strong edges do not take unbounded energy.
//! * *Flat suppression*: a factor σ²/(σ² + σ₀²) that sends the mask to zero
//!   in flat colour — the areas of cel animation and illustration where any
//!   pattern would show.
//! * *Luminance masking*: Watson's power law (mean luma / mid grey)^0.649,
//!   bounded, so the mark is weaker in dark regions.
//!
//! * *Noise compensation*: the image's noise variance, estimated robustly,
//!   is subtracted from the local variance first, so grain or added noise
//!   does not pass for texture (it would make the detector trust flat areas
//!   that carry no mark).
//!
//! The mask is a function of the image alone, so the detector can rebuild it
//! from the image it is given and weigh each block by how much mark it can
//! hold.

use std::cell::RefCell;

use multiversion::multiversion;
use rayon::prelude::*;

use crate::fast_math::{exp2, exp_precise, log2, log2_precise, nearest_whole};
use crate::plane::{box_mean, box_mean_of, BoxFilter, LumaSource, Plane, BAND_ROWS};
use crate::scratch::with_local;

/// Parameters of the perceptual mask. The defaults were tuned on the
/// development corpus for invisibility at the default strength.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskParams {
    /// Radius of the local statistics window in pixels. Default: 2 (5x5).
    pub radius: usize,
    /// Local standard deviation (grey levels) at which the mask is 1. Default: 6.
    pub texture_reference: f32,
    /// Exponent of contrast masking. Default: 0.7 (Watson).
    pub texture_exponent: f32,
    /// Largest value of the contrast term. Default: 4.
    pub cap: f32,
    /// σ₀ of flat suppression, in grey levels. Default: 2.0.
    pub flat_sigma: f32,
    /// Exponent of luminance masking. Default: 0.649 (Watson).
    pub luminance_exponent: f32,
}

impl Default for MaskParams {
    fn default() -> Self {
        Self {
            radius: 2,
            texture_reference: 6.0,
            texture_exponent: 0.7,
            cap: 4.0,
            flat_sigma: 2.0,
            luminance_exponent: 0.649,
        }
    }
}

/// The per-pixel mask of a luma plane (grey levels), dimensionless.
///
/// ```
/// use tattle_core::{mask::{perceptual_mask, MaskParams}, plane::Plane};
/// let flat = Plane::from_elem((16, 16), 128.0);
/// assert!(perceptual_mask(&flat, &MaskParams::default()).iter().all(|&m| m == 0.0));
/// let busy = Plane::from_shape_fn((16, 16), |(_, x)| if (x / 2) % 2 == 0 { 90.0 } else { 160.0 });
/// assert!(perceptual_mask(&busy, &MaskParams::default())[[8, 8]] > 1.0);
/// ```
pub fn perceptual_mask(luma: &Plane, params: &MaskParams) -> Plane {
    let (h, w) = luma.dim();
    let source = LumaSource::Plane(luma);
    perceptual_mask_of_rows(w, h, |first_row, out| source.rows(first_row, out), params)
}

/// [`perceptual_mask`] of a `width` x `height` luma plane that is never
/// stored whole: `luma_rows(first_row, out)` writes its rows from
/// `first_row` on into `out` (whole rows). Bands of rows run in parallel;
/// the result is the same, bit for bit, as from the stored plane.
///
/// ```
/// use tattle_core::{mask::{perceptual_mask, perceptual_mask_of_rows, MaskParams}, plane::Plane};
/// let luma = Plane::from_shape_fn((70, 50), |(y, x)| ((x * 7 + y * 3) % 40) as f32 + 100.0);
/// let values = luma.as_slice().unwrap();
/// let streamed = perceptual_mask_of_rows(50, 70, |first, out| {
///     out.copy_from_slice(&values[first * 50..first * 50 + out.len()])
/// }, &MaskParams::default());
/// assert_eq!(streamed, perceptual_mask(&luma, &MaskParams::default()));
/// ```
pub fn perceptual_mask_of_rows(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
) -> Plane {
    perceptual_mask_with(width, height, luma_rows, params, |_, _, _| ()).0
}

/// [`perceptual_mask_of_rows`] that also hands every band of rows, while
/// it is in cache, to `per_band(first_row, luma, mask)` — the band's own
/// luma and mask rows, whole rows, at most [`BAND_ROWS`] — and returns what
/// it made of each band, in order. One pass over the image does what
/// would otherwise take several.
///
/// ```
/// use tattle_core::{mask::{perceptual_mask_with, MaskParams}, plane::Plane};
/// let luma = Plane::from_shape_fn((70, 50), |(y, x)| ((x * 7 + y * 3) % 40) as f32 + 100.0);
/// let values = luma.as_slice().unwrap();
/// let (mask, sums) = perceptual_mask_with(50, 70, |first, out| {
///     out.copy_from_slice(&values[first * 50..first * 50 + out.len()])
/// }, &MaskParams::default(), |_, luma, _| luma.iter().sum::<f32>());
/// assert_eq!(mask.dim(), (70, 50));
/// assert_eq!(sums.len(), 3); // bands of 32, 32 and 6 rows
/// ```
pub fn perceptual_mask_with<T: Send>(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
    per_band: impl Fn(usize, &[f32], &[f32]) -> T + Sync,
) -> (Plane, Vec<T>) {
    let mut mask = Plane::zeros((height, width));
    let Some(values) = mask.as_slice_mut() else {
        return (mask, Vec::new());
    };
    let per_band = perceptual_mask_into(
        width,
        height,
        luma_rows,
        params,
        values,
        |first, luma, band, out| {
            out.copy_from_slice(band);
            per_band(first, luma, band)
        },
    );
    (mask, per_band)
}

/// [`perceptual_mask_with`] for callers that store the mask in their own
/// form: `storage` (one element per pixel, row-major) is handed over band
/// by band, with the band's luma and mask, to `per_band(first_row, luma,
/// mask, storage)`, which keeps what it needs of the mask there.
///
/// ```
/// use tattle_core::{mask::{perceptual_mask, perceptual_mask_into, MaskParams}, plane::Plane};
/// let luma = Plane::from_shape_fn((70, 50), |(y, x)| ((x * 7 + y * 3) % 40) as f32 + 100.0);
/// let values = luma.as_slice().unwrap();
/// let mut percent = vec![0u8; 70 * 50];
/// perceptual_mask_into(50, 70, |first, out| {
///     out.copy_from_slice(&values[first * 50..first * 50 + out.len()])
/// }, &MaskParams::default(), &mut percent, |_, _, mask, out| {
///     for (o, m) in out.iter_mut().zip(mask) {
///         *o = (m * 100.0).round() as u8;
///     }
/// });
/// let mask = perceptual_mask(&luma, &MaskParams::default());
/// assert_eq!(percent[60], (mask[[1, 10]] * 100.0).round() as u8);
/// ```
pub fn perceptual_mask_into<S: Send, T: Send>(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
    storage: &mut [S],
    per_band: impl Fn(usize, &[f32], &[f32], &mut [S]) -> T + Sync,
) -> Vec<T> {
    let noise_sigma = estimate_noise_sigma_of_rows(width, height, &luma_rows);
    perceptual_mask_with_noise_into(width, height, luma_rows, params, noise_sigma, storage, per_band)
}

/// [`perceptual_mask_into`] of a plane whose noise is already known
/// ([`estimate_noise_sigma_of_rows`]), for callers that make more than one
/// pass over the mask's bands: the same result, without estimating the
/// noise again.
pub fn perceptual_mask_with_noise_into<S: Send, T: Send>(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
    noise_sigma: f32,
    storage: &mut [S],
    per_band: impl Fn(usize, &[f32], &[f32], &mut [S]) -> T + Sync,
) -> Vec<T> {
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let masker = BandMasker::with_noise(width, height, &luma_rows, params, noise_sigma);
    storage
        .par_chunks_mut(BAND_ROWS * width)
        .enumerate()
        .map(|(band, stored)| {
            with_local(&MASK_SCRATCH, |scratch| {
                let first = band * BAND_ROWS;
                let (luma, mask) = masker.band(first, stored.len() / width, scratch);
                per_band(first, luma, mask, stored)
            })
        })
        .collect()
}

/// [`perceptual_mask_with`] that keeps nothing image-sized: each band of
/// rows, its luma and its mask, is handed to `per_band(first_row, luma,
/// mask)` while in cache, and only what it returns is kept, in order.
///
/// ```
/// use tattle_core::{mask::{perceptual_mask, perceptual_mask_bands, MaskParams}, plane::Plane};
/// let luma = Plane::from_shape_fn((70, 50), |(y, x)| ((x * 7 + y * 3) % 40) as f32 + 100.0);
/// let values = luma.as_slice().unwrap();
/// let peaks = perceptual_mask_bands(50, 70, |first, out| {
///     out.copy_from_slice(&values[first * 50..first * 50 + out.len()])
/// }, &MaskParams::default(), |_, _, mask| mask.iter().copied().fold(0.0f32, f32::max));
/// let mask = perceptual_mask(&luma, &MaskParams::default());
/// assert_eq!(peaks.len(), 3); // bands of 32, 32 and 6 rows
/// assert_eq!(peaks[2], mask.rows().into_iter().skip(64).flatten().copied().fold(0.0f32, f32::max));
/// ```
pub fn perceptual_mask_bands<T: Send>(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
    per_band: impl Fn(usize, &[f32], &[f32]) -> T + Sync,
) -> Vec<T> {
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let masker = BandMasker::new(width, height, &luma_rows, params);
    (0..height.div_ceil(BAND_ROWS))
        .into_par_iter()
        .map(|band| {
            with_local(&MASK_SCRATCH, |scratch| {
                let first = band * BAND_ROWS;
                let (luma, mask) = masker.band(first, BAND_ROWS.min(height - first), scratch);
                per_band(first, luma, mask)
            })
        })
        .collect()
}

/// The mask and the local variance (squared grey levels, over the mask's
/// window, before the noise is taken out) of `strips` strips of
/// `strip_rows` rows spread evenly down a `width` x `height` luma plane
/// whose noise is `noise_sigma` ([`estimate_noise_sigma_of_rows`]): strip
/// `i` lies in the middle of the `i`th of `strips` equal slices of the
/// rows, and `per_strip(mask, variance)` gets its rows (whole rows); what
/// it returns is kept, in order. A sample of the image's texture at a
/// small fraction of the cost of its whole mask; the same values as the
/// whole mask's rows.
///
/// ```
/// use tattle_core::{mask::{estimate_noise_sigma_of_rows, perceptual_mask, sample_mask_rows, MaskParams}, plane::Plane};
/// let luma = Plane::from_shape_fn((100, 50), |(y, x)| ((x * 7 + y * 3) % 40) as f32 + 100.0);
/// let values = luma.as_slice().unwrap();
/// let rows = |first: usize, out: &mut [f32]| {
///     out.copy_from_slice(&values[first * 50..first * 50 + out.len()])
/// };
/// let noise = estimate_noise_sigma_of_rows(50, 100, rows);
/// let sampled = sample_mask_rows(50, 100, rows, &MaskParams::default(), noise, 2, 4, |mask, variance| {
///     (mask[0], variance.len())
/// });
/// let mask = perceptual_mask(&luma, &MaskParams::default());
/// // Rows 23–26 and 73–76: the middles of rows 0–49 and 50–99.
/// assert_eq!(sampled, vec![(mask[[23, 0]], 4 * 50), (mask[[73, 0]], 4 * 50)]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn sample_mask_rows<T: Send>(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
    params: &MaskParams,
    noise_sigma: f32,
    strips: usize,
    strip_rows: usize,
    per_strip: impl Fn(&[f32], &[f32]) -> T + Sync,
) -> Vec<T> {
    if width == 0 || height == 0 || strips == 0 {
        return Vec::new();
    }
    let masker = BandMasker::with_noise(width, height, &luma_rows, params, noise_sigma);
    let rows = strip_rows.clamp(1, height);
    (0..strips)
        .map(|i| {
            let (start, end) = (i * height / strips, (i + 1) * height / strips);
            (start + (end - start).saturating_sub(rows) / 2).min(height - rows)
        })
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            with_local(&MASK_SCRATCH, |scratch| {
                masker.band_with_variance(first, rows, scratch);
                per_strip(&scratch.mask, &scratch.variance)
            })
        })
        .collect()
}

/// The perceptual mask of one band of rows at a time.
struct BandMasker<'a, R> {
    width: usize,
    luma_rows: &'a R,
    model: MaskModel,
    filter: BoxFilter,
}

/// Buffers a thread reuses from band to band.
#[derive(Default)]
struct MaskScratch {
    luma: Vec<f32>,
    mean: Vec<f32>,
    boxes: Vec<f32>,
    mask: Vec<f32>,
    variance: Vec<f32>,
}

thread_local! {
    static MASK_SCRATCH: RefCell<MaskScratch> = RefCell::new(MaskScratch::default());
}

impl<'a, R: Fn(usize, &mut [f32]) + Sync> BandMasker<'a, R> {
    fn new(width: usize, height: usize, luma_rows: &'a R, params: &MaskParams) -> Self {
        let noise_sigma = estimate_noise_sigma_of_rows(width, height, luma_rows);
        Self::with_noise(width, height, luma_rows, params, noise_sigma)
    }

    fn with_noise(
        width: usize,
        height: usize,
        luma_rows: &'a R,
        params: &MaskParams,
        noise_sigma: f32,
    ) -> Self {
        Self {
            width,
            luma_rows,
            model: MaskModel::new(noise_sigma, params),
            filter: BoxFilter::new(width, height, params.radius),
        }
    }

    /// The luma and the mask of `rows` whole rows from `first` on.
    fn band<'s>(&self, first: usize, rows: usize, scratch: &'s mut MaskScratch) -> (&'s [f32], &'s [f32]) {
        self.fill_band(first, rows, scratch, false);
        let (lo, _) = self.filter.reach(first, rows);
        let luma = scratch
            .luma
            .get((first - lo) * self.width..(first - lo + rows) * self.width)
            .unwrap_or_default();
        (luma, &scratch.mask)
    }

    /// [`BandMasker::band`] that leaves the local variance of the band's
    /// pixels in `scratch.variance` and its mask in `scratch.mask`.
    fn band_with_variance(&self, first: usize, rows: usize, scratch: &mut MaskScratch) {
        self.fill_band(first, rows, scratch, true);
    }

    fn fill_band(&self, first: usize, rows: usize, scratch: &mut MaskScratch, keep_variance: bool) {
        let width = self.width;
        let (lo, hi) = self.filter.reach(first, rows);
        scratch.luma.resize((hi - lo) * width, 0.0);
        (self.luma_rows)(lo, &mut scratch.luma);
        scratch.mean.resize(rows * width, 0.0);
        scratch.mask.resize(rows * width, 0.0);
        self.filter
            .band(&scratch.luma, first, &mut scratch.mean, |v| v, &mut scratch.boxes);
        // Variance is shift-invariant; centring on mid grey keeps the
        // squares small, so E[x²] − E[x]² loses less to rounding.
        self.filter.band(
            &scratch.luma,
            first,
            &mut scratch.mask,
            centred_square,
            &mut scratch.boxes,
        );
        if keep_variance {
            scratch.variance.clear();
            scratch.variance.extend(
                scratch
                    .mask
                    .iter()
                    .zip(&scratch.mean)
                    .map(|(&square, &mean)| variance_from(square, mean)),
            );
        }
        self.model.fill(&mut scratch.mask, &scratch.mean);
    }
}

fn centred_square(v: f32) -> f32 {
    (v - MID_GREY) * (v - MID_GREY)
}

/// The local variance from the local means of the centred square and of the value.
fn variance_from(mean_centred_square: f32, mean: f32) -> f32 {
    let centred = mean - MID_GREY;
    (mean_centred_square - centred * centred).max(0.0)
}

/// Local mean and variance of a plane over a `(2r+1)²` window.
#[derive(Clone, Debug)]
pub struct LocalStats {
    /// Local mean.
    pub mean: Plane,
    /// Local variance (never negative).
    pub variance: Plane,
}

impl LocalStats {
    /// The statistics of `luma` over windows of radius `radius`.
    pub fn of(luma: &Plane, radius: usize) -> Self {
        let mean = box_mean(luma, radius);
        let mut variance = box_mean_of(luma, radius, centred_square);
        ndarray::Zip::from(&mut variance)
            .and(&mean)
            .par_for_each(|v, &mu| *v = variance_from(*v, mu));
        Self { mean, variance }
    }
}

/// [`perceptual_mask`] from precomputed local statistics (window radius
/// `params.radius`) and noise level.
pub fn perceptual_mask_from(stats: &LocalStats, noise_sigma: f32, params: &MaskParams) -> Plane {
    let model = MaskModel::new(noise_sigma, params);
    let mut mask = stats.variance.clone();
    ndarray::Zip::from(&mut mask)
        .and(&stats.mean)
        .par_for_each(|m, &mu| *m = model.at(*m, mu));
    mask
}

/// The mask as a function of a pixel's local variance and mean.
///
/// Both power laws and their bounds are evaluated in the log domain,
/// without branches or table look-ups, so that the per-pixel loop runs in
/// vector registers: `contrast × luminance = 2^(c + l)` with `c` and `l`
/// the bounded base-2 logarithms of the two factors.
struct MaskModel {
    noise_variance: f32,
    flat_sq: f32,
    /// Half the contrast exponent: the law is applied to the variance.
    contrast_exponent: f32,
    /// `−exponent × log2(texture_reference)`.
    contrast_offset: f32,
    /// `log2(cap)`.
    contrast_top: f32,
    luminance_exponent: f32,
    /// Bounds of the luminance factor, as base-2 logarithms.
    luminance_range: (f32, f32),
}

impl MaskModel {
    fn new(noise_sigma: f32, params: &MaskParams) -> Self {
        Self {
            noise_variance: noise_sigma * noise_sigma,
            flat_sq: params.flat_sigma * params.flat_sigma,
            contrast_exponent: params.texture_exponent / 2.0,
            contrast_offset: -params.texture_exponent * log2_precise(params.texture_reference.max(1e-6)),
            contrast_top: log2_precise(params.cap.max(1e-30)),
            luminance_exponent: params.luminance_exponent,
            luminance_range: (log2_precise(LUMINANCE_RANGE.0), log2_precise(LUMINANCE_RANGE.1)),
        }
    }

    #[inline(always)]
    fn at(&self, local_variance: f32, local_mean: f32) -> f32 {
        let variance = (local_variance - self.noise_variance).max(0.0);
        // 0 where there is no texture, whatever σ₀ (even 0).
        let flat = variance / (variance + self.flat_sq).max(f32::MIN_POSITIVE);
        let contrast =
            (self.contrast_exponent * log2(variance) + self.contrast_offset).min(self.contrast_top);
        let luminance = (self.luminance_exponent * log2((local_mean + 16.0) * (1.0 / 144.0)))
            .clamp(self.luminance_range.0, self.luminance_range.1);
        flat * exp2(contrast + luminance)
    }

    /// The mask of a band: `out` holds the local mean of the centred
    /// square on entry (see [`variance_from`]), the mask on return.
    fn fill(&self, out: &mut [f32], mean: &[f32]) {
        fill_mask(self, out, mean);
    }
}

/// [`MaskModel::fill`], compiled for the vector extensions the processor
/// has (chosen at run time). The loop is element by element, without
/// fused multiply-adds, so every version gives the same bits.
///
/// Flat colour, where the variance left after the noise is none, has a
/// mask of exactly 0 (see [`MaskModel::at`]): [`FILL_LANES`] such pixels
/// in a row are written as 0 without the power laws, which makes the flat
/// parts of frames and cel art nearly free.
///
/// The formula is one long chain of dependent operations per pixel; with
/// AVX-512's 32 registers and 16 lanes, more pixels are in flight at once
/// (filling a 1080p frame's mask took about half as long on this
/// project's AMD EPYC: 2.9 ms instead of 5.6 on one thread).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2"))]
fn fill_mask(model: &MaskModel, out: &mut [f32], mean: &[f32]) {
    let mut out_chunks = out.chunks_exact_mut(FILL_LANES);
    let mut mean_chunks = mean.chunks_exact(FILL_LANES);
    for (m, mu) in (&mut out_chunks).zip(&mut mean_chunks) {
        let textured = m.iter().zip(mu).fold(false, |any, (&m, &mu)| {
            // A mean that is not finite keeps its lane on the formula.
            any | (variance_from(m, mu) > model.noise_variance) | !mu.is_finite()
        });
        if textured {
            for (m, &mu) in m.iter_mut().zip(mu) {
                *m = model.at(variance_from(*m, mu), mu);
            }
        } else {
            m.fill(0.0);
        }
    }
    for (m, &mu) in out_chunks
        .into_remainder()
        .iter_mut()
        .zip(mean_chunks.remainder())
    {
        *m = model.at(variance_from(*m, mu), mu);
    }
}

/// Pixels [`fill_mask`] takes at a time: one AVX-512 register, two AVX2 ones.
const FILL_LANES: usize = 16;

/// Writes a mask in 16-bit steps of `step` each into `out` (as many values
/// as both hold): every value rounded to the nearest step (ties to even),
/// negative values to 0 and values past 65,535 steps to 65,535. Half the
/// memory of `f32`; a step of a thousandth of the mask's range is far
/// finer than the eye or the detector can tell.
///
/// ```
/// let mut steps = [0u16; 5];
/// tattle_core::mask::quantise(&[0.0, 0.26, 1.0, -3.0, 1e9], 0.5, &mut steps);
/// assert_eq!(steps, [0, 1, 2, 0, 65_535]);
/// ```
pub fn quantise(mask: &[f32], step: f32, out: &mut [u16]) {
    quantise_with(mask, 1.0 / step, out);
}

/// [`quantise`] (`per_step`: steps per unit of mask), compiled for the
/// vector extensions the processor has; the same bits from every version.
#[multiversion(targets("x86_64+avx2"))]
fn quantise_with(mask: &[f32], per_step: f32, out: &mut [u16]) {
    for (o, &m) in out.iter_mut().zip(mask) {
        *o = nearest_whole((m * per_step).clamp(0.0, f32::from(u16::MAX))).0 as u16;
    }
}

/// The mean squared error, in 8-bit levels squared, of a given PSNR in
/// dB: `255² / 10^(psnr/10)`. Computed without the platform's libm, so
/// that a distortion budget, and the marked bytes it scales, are the same
/// on every machine.
///
/// ```
/// let budget = tattle_core::mask::mse_at_psnr(42.2);
/// assert!((budget - 3.918_14).abs() < 1e-4);
/// assert_eq!(tattle_core::mask::mse_at_psnr(0.0), 65_025.0);
/// ```
pub fn mse_at_psnr(psnr_db: f32) -> f32 {
    let tenths = f64::from(psnr_db) / 10.0;
    (65_025.0 * exp_precise(-tenths * std::f64::consts::LN_10)) as f32
}

/// Lowest and highest value of the luminance factor.
const LUMINANCE_RANGE: (f32, f32) = (0.4, 1.25);

/// Mid grey, 8-bit scale.
const MID_GREY: f32 = 128.0;

/// Robust estimate of the standard deviation of white noise in a plane:
/// the median absolute value of the finest diagonal Haar detail over
/// 0.6745 (Donoho's estimator). Texture barely moves the median; flat
/// art gives 0. Planes of 16 bands of [`BAND_ROWS`] rows or more are sampled:
/// one band in 2 to 4, spread evenly, at least 8 bands.
pub fn estimate_noise_sigma(luma: &Plane) -> f32 {
    let (h, w) = luma.dim();
    let source = LumaSource::Plane(luma);
    estimate_noise_sigma_of_rows(w, h, |first_row, out| source.rows(first_row, out))
}

/// [`estimate_noise_sigma`] of a plane given by its rows, as in
/// [`perceptual_mask_of_rows`].
pub fn estimate_noise_sigma_of_rows(
    width: usize,
    height: usize,
    luma_rows: impl Fn(usize, &mut [f32]) + Sync,
) -> f32 {
    // The median is found in one pass, without storing the details: they
    // are not negative, so their order is that of their bit patterns, and a
    // histogram of the high 16 bits (sign, exponent and 7 bits of mantissa:
    // bins 1/128 of their value wide) finds the bin holding the median,
    // which is then interpolated within the bin. Counts add the same way on
    // any number of threads; 32 bits hold the details of any image the
    // decoders accept (a bin would need 17 gigapixels to overflow).
    if height < 2 || width < 2 {
        return 0.0;
    }
    // On a tall image, a quarter of its bands, spread evenly over its
    // height, give a median as good as all of them (at least eight bands,
    // some 100,000 details at 1080p) and spare a pass over the image.
    let bands = height.div_ceil(BAND_ROWS);
    let stride = (bands / NOISE_BANDS_AT_LEAST).clamp(1, 4);
    let read: Vec<usize> = (0..bands).step_by(stride).collect();
    // One histogram per worker, not one per task rayon splits off: each is
    // 256 KiB to clear.
    let per_worker = read.len().div_ceil(rayon::current_num_threads().max(1)).max(1);
    let counts = read
        .par_chunks(per_worker)
        .map(|bands| {
            let (mut counts, mut luma) = (vec![0u32; 1 << 16], Vec::new());
            for &band in bands {
                let first = band * BAND_ROWS;
                luma.resize(BAND_ROWS.min(height - first) * width, 0.0);
                luma_rows(first, &mut luma);
                for_each_detail(&luma, width, |d| {
                    if let Some(c) = counts.get_mut((d.to_bits() >> 16) as usize) {
                        *c += 1;
                    }
                });
            }
            counts
        })
        .reduce(
            || vec![0u32; 1 << 16],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    let count: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    // The rank `select_nth_unstable` would put the median at.
    let (bin, rank) = bin_of_rank(&counts, count / 2);
    if bin == 0 {
        // Bin 0 holds nothing but zero and denormals: no noise.
        return 0.0;
    }
    let in_bin = counts.get(bin).map_or(1, |&c| u64::from(c).max(1));
    let low = f32::from_bits((bin as u32) << 16);
    let high = f32::from_bits(((bin as u32 + 1) << 16).min(0x7f80_0000));
    let fraction = (rank as f64 + 0.5) / in_bin as f64;
    (f64::from(low) + fraction * f64::from(high - low)) as f32 / 0.6745
}

/// The fewest bands of rows the noise estimate reads when it reads only
/// some of them.
const NOISE_BANDS_AT_LEAST: usize = 8;

/// The finest diagonal Haar detail, `|a − b − c + d| / 2`, of every 2x2
/// block of pixels of whole rows `width` wide (an even number of them).
fn for_each_detail(luma: &[f32], width: usize, mut f: impl FnMut(f32)) {
    for pair in luma.chunks_exact(2 * width.max(1)) {
        let (top, bottom) = pair.split_at(width);
        for (t, b) in top.chunks_exact(2).zip(bottom.chunks_exact(2)) {
            if let ([t0, t1], [b0, b1]) = (t, b) {
                f(((t0 - t1 - b0 + b1) / 2.0).abs());
            }
        }
    }
}

/// The bin holding the element of rank `rank` (from 0) of a histogram, and
/// that element's rank within the bin.
fn bin_of_rank(counts: &[u32], mut rank: u64) -> (usize, u64) {
    for (bin, &c) in counts.iter().enumerate() {
        let c = u64::from(c);
        if rank < c {
            return (bin, rank);
        }
        rank -= c;
    }
    (counts.len().saturating_sub(1), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prng::KeyedStream;

    #[test]
    fn flat_runs_skipped_by_the_fill_are_what_the_formula_gives() {
        // Runs wholly flat (variance at or under the noise's), runs with
        // one textured pixel, a mean that is not finite, and a tail
        // shorter than a run: the fill must match the formula bit for bit
        // everywhere.
        let model = MaskModel::new(1.5, &MaskParams::default());
        let mut rng = KeyedStream::from_seed([9; 32]);
        let n = FILL_LANES * 40 + 5;
        let mean: Vec<f32> = (0..n)
            .map(|i| {
                // Two means that are not finite, in a run otherwise flat.
                if i == 4 * FILL_LANES + 4 {
                    f32::INFINITY
                } else if i == 4 * FILL_LANES + 5 {
                    f32::NAN
                } else {
                    rng.below(256) as f32
                }
            })
            .collect();
        let variance = |i: usize| match (i / FILL_LANES) % 4 {
            0 => 0.0,
            1 if i % FILL_LANES == 3 => 2.3,
            1 => 2.25, // the noise variance, give or take rounding
            2 => texture_variance(i),
            _ => (i % 3) as f32 * 0.5,
        };
        // The fill takes the local mean of the centred square; build it
        // from the variance and the mean (see `variance_from`).
        let mut filled: Vec<f32> = (0..n)
            .map(|i| variance(i) + (mean[i] - MID_GREY) * (mean[i] - MID_GREY))
            .collect();
        let expected: Vec<f32> = filled
            .iter()
            .zip(&mean)
            .map(|(&m, &mu)| model.at(variance_from(m, mu), mu))
            .collect();
        fill_mask(&model, &mut filled, &mean);
        for (i, (a, b)) in filled.iter().zip(&expected).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "pixel {i}: {a} vs {b}"
            );
        }
        assert!(expected.iter().filter(|&&m| m == 0.0).count() > n / 4);
        assert!(expected.iter().filter(|&&m| m > 0.0).count() > n / 8);
    }

    fn texture_variance(i: usize) -> f32 {
        ((i * 7919) % 97) as f32 + 3.0
    }

    #[test]
    fn mask_matches_the_formula() {
        let params = MaskParams::default();
        let stats = LocalStats {
            mean: Plane::from_shape_fn((1, 300), |(_, x)| x as f32 * 0.9),
            variance: Plane::from_shape_fn((1, 300), |(_, x)| (x as f32 * 0.2).powi(2)),
        };
        let mask = perceptual_mask_from(&stats, 0.0, &params);
        for x in 0..300 {
            let (mu, sigma) = (x as f32 * 0.9, x as f32 * 0.2);
            let variance = sigma * sigma;
            let exact = (sigma / params.texture_reference)
                .powf(params.texture_exponent)
                .min(params.cap)
                * variance
                / (variance + params.flat_sigma * params.flat_sigma)
                * ((mu + 16.0) / 144.0)
                    .powf(params.luminance_exponent)
                    .clamp(0.4, 1.25);
            assert!(
                (mask[[0, x]] - exact).abs() <= 1e-4 * exact + 1e-7,
                "x {x}: {} vs {exact}",
                mask[[0, x]]
            );
        }
    }

    #[test]
    fn noise_estimate_finds_added_noise() {
        let mut rng = KeyedStream::from_seed([4; 32]);
        let mut gauss = || {
            (0..12)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                .sum::<f32>()
                - 6.0
        };
        let noisy = Plane::from_shape_fn((200, 200), |(y, _)| 100.0 + y as f32 * 0.2 + 5.0 * gauss());
        let sigma = estimate_noise_sigma(&noisy);
        assert!((sigma - 5.0).abs() < 0.4, "{sigma}");
        // Tall enough that only some bands are read.
        let tall = Plane::from_shape_fn((1100, 150), |(y, x)| {
            80.0 + ((x * 3 + y) % 50) as f32 * 0.1 + 3.0 * gauss()
        });
        let sigma = estimate_noise_sigma(&tall);
        assert!((sigma - 3.0).abs() < 0.25, "{sigma}");
        assert_eq!(estimate_noise_sigma(&Plane::from_elem((64, 64), 9.0)), 0.0);
    }

    #[test]
    fn noise_estimate_is_the_exact_median_of_the_details() {
        let mut rng = KeyedStream::from_seed([6; 32]);
        // Odd sizes, ties (whole levels) and zeros (a flat strip).
        for (h, w) in [(37, 53), (70, 2), (3, 300), (101, 64)] {
            let plane = Plane::from_shape_fn((h, w), |(y, x)| {
                if x < 5 {
                    7.0
                } else {
                    rng.below(9) as f32 * 0.5 + y as f32
                }
            });
            let mut details = Vec::new();
            for y in (0..h - 1).step_by(2) {
                for x in (0..w - 1).step_by(2) {
                    let d = plane[[y, x]] - plane[[y, x + 1]] - plane[[y + 1, x]] + plane[[y + 1, x + 1]];
                    details.push((d / 2.0).abs());
                }
            }
            details.sort_by(f32::total_cmp);
            let median = details[details.len() / 2];
            // Within the 1/128-wide bin the median falls in.
            let estimate = estimate_noise_sigma(&plane) * 0.6745;
            assert!(
                (estimate - median).abs() <= median / 128.0,
                "{h}x{w}: {estimate} vs {median}"
            );
        }
        assert_eq!(estimate_noise_sigma(&Plane::zeros((1, 40))), 0.0);
    }

    #[test]
    fn added_noise_does_not_turn_flat_areas_into_texture() {
        let mut rng = KeyedStream::from_seed([5; 32]);
        let mut gauss = || {
            (0..12)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                .sum::<f32>()
                - 6.0
        };
        let noisy = Plane::from_shape_fn((128, 128), |_| 120.0 + 5.0 * gauss());
        let mask = perceptual_mask(&noisy, &MaskParams::default());
        let mean = mask.iter().sum::<f32>() / mask.len() as f32;
        assert!(mean < 0.35, "{mean}");
    }
}
