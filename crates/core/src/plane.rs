//! Luminance planes and the bridge between images and the mark.
//!
//! The mark lives in luminance only (BT.601 luma, the Y of JPEG's YCbCr),
//! in units of 8-bit grey levels whatever the image's bit depth. Embedding
//! adds the same change to R, G and B, which moves Y by exactly that change
//! and leaves Cb and Cr (the chroma a JPEG encoder subsamples) untouched;
//! where a channel would clip, the change is shrunk so that no channel
//! clips and the hue stays as it was. Alpha is never touched. Float
//! (linear, scene-referred) images are marked in a perceptual encoding of
//! their values ([`encode_linear`]: sRGB up to 1.0, logarithmic above) and
//! written back linear.

use image::DynamicImage;
use multiversion::multiversion;
use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fast_math::{exp_precise, floor_small, ln_precise, pow_precise};
use crate::scratch::{with_local, ROWS};

/// A plane of `f32` values, indexed `[[row, column]]`.
pub type Plane = Array2<f32>;

/// BT.601 luma weights for R, G, B.
const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// A sample type of an image buffer, seen in units of 8-bit grey levels.
trait Sample: Copy {
    /// Largest level a sample can hold.
    const MAX_LEVEL: f32;
    /// Whether [`Sample::level`] is cheap enough to find a run's extremes
    /// before deciding whether the run needs clamping pixel by pixel.
    const CHEAP_LEVELS: bool = true;
    /// Steps of the type in one 8-bit level: [`Sample::shift_all`] leaves a
    /// sample alone when `change × STEPS_PER_LEVEL` is within ±1/2.
    const STEPS_PER_LEVEL: f32;
    /// The sample in 8-bit grey levels (perceptually encoded for float samples).
    fn level(self) -> f32;
    /// Moves every colour sample of a pixel by `change` levels, rounded to
    /// the nearest step of the type (half away from zero); the caller keeps
    /// the change within the pixel's headroom.
    fn shift_all(colour: &mut [Self], change: f32);
    /// Shifts the pixels of a run of at most [`HEADROOM_RUN`] by `scale`
    /// times their changes, which the caller knows fit their headroom.
    #[inline(always)]
    fn shift_run(run: &mut [Self], channels: usize, color_channels: usize, changes: &[f32], scale: f32) {
        for (px, d) in run.chunks_exact_mut(channels).zip(changes) {
            if let Some(colour) = px.get_mut(..color_channels) {
                Self::shift_all(colour, d * scale);
            }
        }
    }
    /// The lowest and highest level among a pixel's colour samples.
    #[inline(always)]
    fn level_range(colour: &[Self]) -> (f32, f32) {
        colour
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s.level()), hi.max(s.level()))
            })
    }
    /// The lowest and highest level among the colour samples (the first
    /// `color_channels` of each pixel's `channels`) of a run of pixels.
    #[inline(always)]
    fn run_level_range(run: &[Self], channels: usize, color_channels: usize) -> (f32, f32) {
        run.chunks_exact(channels)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), px| {
                let (l, h) = Self::level_range(px.get(..color_channels).unwrap_or(px));
                (lo.min(l), hi.max(h))
            })
    }
    /// Clamps each pixel's change to its headroom (see [`headroom_of`]):
    /// `delta` holds one change per pixel of `samples`.
    #[inline(always)]
    fn clamp_changes(delta: &mut [f32], samples: &[Self], channels: usize, color_channels: usize) {
        clamp_pixel_by_pixel(delta, samples, channels, color_channels);
    }
}

/// [`Sample::clamp_changes`] for any layout, one pixel at a time.
#[inline(always)]
fn clamp_pixel_by_pixel<S: Sample>(delta: &mut [f32], samples: &[S], channels: usize, color_channels: usize) {
    for (d, px) in delta.iter_mut().zip(samples.chunks_exact(channels)) {
        let (down, up) = headroom_of(px.get(..color_channels).unwrap_or(px));
        *d = d.clamp(-down, up);
    }
}

/// [`Sample::run_level_range`] of integer samples: without alpha the run's
/// samples are one contiguous slice, whose extremes the compiler finds with
/// vector instructions.
#[inline(always)]
fn integer_run_level_range<S: Sample + Ord>(run: &[S], channels: usize, color_channels: usize) -> (f32, f32) {
    let Some(&first) = run.first() else {
        return (f32::INFINITY, f32::NEG_INFINITY);
    };
    if channels != color_channels {
        let colour = run
            .chunks_exact(channels)
            .flat_map(|px| px.get(..color_channels).unwrap_or(px));
        let (lo, hi) = colour.fold((first, first), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        return (lo.level(), hi.level());
    }
    let lo = run.iter().fold(first, |lo, &s| lo.min(s));
    let hi = run.iter().fold(first, |hi, &s| hi.max(s));
    (lo.level(), hi.level())
}

/// [`Sample::level_range`] of integer samples, whose level grows with the
/// sample: the extremes are found on the integers and converted once.
#[inline(always)]
fn integer_level_range<S: Sample + Ord>(colour: &[S]) -> (f32, f32) {
    // Grey and RGB spelled out: straight-line code in the per-pixel loops.
    let (lo, hi) = match colour {
        [y] => (*y, *y),
        [r, g, b] => ((*r).min(*g).min(*b), (*r).max(*g).max(*b)),
        _ => match (colour.iter().min(), colour.iter().max()) {
            (Some(lo), Some(hi)) => (*lo, *hi),
            _ => return (f32::INFINITY, f32::NEG_INFINITY),
        },
    };
    (lo.level(), hi.level())
}

impl Sample for u8 {
    const MAX_LEVEL: f32 = 255.0;
    const STEPS_PER_LEVEL: f32 = 1.0;
    #[inline(always)]
    fn level(self) -> f32 {
        f32::from(self)
    }
    #[inline(always)]
    fn shift_all(colour: &mut [Self], change: f32) {
        // The samples are whole levels: the change is rounded once for the
        // pixel, on integers, without a libm call.
        let step = floor_small(change + 0.5);
        for s in colour.iter_mut() {
            *s = (i32::from(*s) + step).clamp(0, 255) as u8;
        }
    }
    #[inline(always)]
    fn level_range(colour: &[Self]) -> (f32, f32) {
        integer_level_range(colour)
    }
    #[inline(always)]
    fn run_level_range(run: &[Self], channels: usize, color_channels: usize) -> (f32, f32) {
        integer_run_level_range(run, channels, color_channels)
    }
    #[inline(always)]
    fn shift_run(run: &mut [Self], channels: usize, color_channels: usize, changes: &[f32], scale: f32) {
        // The pixel layouts images come in get a loop each, with the layout
        // known at compile time.
        match (channels, color_channels) {
            (3, 3) => shift_u8_run::<3, 3>(run, changes, scale),
            (4, 3) => shift_u8_run::<4, 3>(run, changes, scale),
            (1, 1) => shift_u8_run::<1, 1>(run, changes, scale),
            (2, 1) => shift_u8_run::<2, 1>(run, changes, scale),
            _ => {
                for (px, d) in run.chunks_exact_mut(channels).zip(changes) {
                    if let Some(colour) = px.get_mut(..color_channels) {
                        Self::shift_all(colour, d * scale);
                    }
                }
            }
        }
    }
    #[inline(always)]
    fn clamp_changes(delta: &mut [f32], samples: &[Self], channels: usize, color_channels: usize) {
        match (channels, color_channels) {
            (3, 3) => clamp_u8_changes::<3, 3>(delta, samples),
            (4, 3) => clamp_u8_changes::<4, 3>(delta, samples),
            (1, 1) => clamp_u8_changes::<1, 1>(delta, samples),
            (2, 1) => clamp_u8_changes::<2, 1>(delta, samples),
            _ => clamp_pixel_by_pixel(delta, samples, channels, color_channels),
        }
    }
}

/// [`Sample::clamp_changes`] of 8-bit pixels of `CHANNELS` samples, the
/// first `COLOUR` of them colour, a run at a time: the headrooms of the
/// run are found on bytes first, then the changes are clamped in one flat
/// loop of float comparisons, which the compiler vectorises.
#[inline(always)]
fn clamp_u8_changes<const CHANNELS: usize, const COLOUR: usize>(delta: &mut [f32], samples: &[u8]) {
    let runs = delta
        .chunks_mut(HEADROOM_RUN)
        .zip(samples.chunks(HEADROOM_RUN * CHANNELS));
    for (changes, pixels) in runs {
        let (mut down, mut up) = ([0.0f32; HEADROOM_RUN], [0.0f32; HEADROOM_RUN]);
        for ((down, up), px) in down.iter_mut().zip(&mut up).zip(pixels.chunks_exact(CHANNELS)) {
            let colour = px.get(..COLOUR).unwrap_or(px);
            let lo = colour.iter().fold(u8::MAX, |lo, &s| lo.min(s));
            let hi = colour.iter().fold(u8::MIN, |hi, &s| hi.max(s));
            *down = -f32::from(lo);
            *up = 255.0 - f32::from(hi);
        }
        // The bounds never cross (down ≤ 0 ≤ up), so this is `clamp`,
        // spelled as the vector max and min it compiles to.
        for ((d, down), up) in changes.iter_mut().zip(&down).zip(&up) {
            *d = d.max(*down).min(*up);
        }
    }
}

/// [`Sample::shift_run`] of 8-bit pixels of `CHANNELS` samples, the first
/// `COLOUR` of them colour. Each pixel's step is laid out beside its
/// samples, so that the run is moved by one flat loop of byte additions the
/// compiler vectorises. Nothing clips, so the additions may wrap: a step of
/// −3 is an addition of 253, and the sum modulo 256 is the sample moved.
#[inline(always)]
fn shift_u8_run<const CHANNELS: usize, const COLOUR: usize>(run: &mut [u8], changes: &[f32], scale: f32) {
    let mut steps = [0u8; HEADROOM_RUN];
    for (step, d) in steps.iter_mut().zip(changes) {
        // The low byte of the two's complement step.
        *step = floor_small(d * scale + 0.5) as u8;
    }
    let mut sample_steps = [[0u8; CHANNELS]; HEADROOM_RUN];
    for (px_steps, &step) in sample_steps.iter_mut().zip(&steps) {
        px_steps.iter_mut().take(COLOUR).for_each(|s| *s = step);
    }
    // A short run (the image's last) leaves the steps past it unused.
    for (s, step) in run.iter_mut().zip(sample_steps.as_flattened()) {
        *s = s.wrapping_add(*step);
    }
}

impl Sample for u16 {
    const MAX_LEVEL: f32 = 255.0;
    const STEPS_PER_LEVEL: f32 = 257.0;
    #[inline(always)]
    fn level(self) -> f32 {
        f32::from(self) / 257.0
    }
    #[inline(always)]
    fn shift_all(colour: &mut [Self], change: f32) {
        // As for `u8`, in steps of 1/257 level.
        let step = floor_small(change * 257.0 + 0.5);
        for s in colour.iter_mut() {
            *s = (i32::from(*s) + step).clamp(0, 65535) as u16;
        }
    }
    #[inline(always)]
    fn level_range(colour: &[Self]) -> (f32, f32) {
        integer_level_range(colour)
    }
    #[inline(always)]
    fn run_level_range(run: &[Self], channels: usize, color_channels: usize) -> (f32, f32) {
        integer_run_level_range(run, channels, color_channels)
    }
}

impl Sample for f32 {
    // Scene-referred float images have no upper bound.
    const MAX_LEVEL: f32 = f32::INFINITY;
    // A level is a transfer function: each pixel's own is found once.
    const CHEAP_LEVELS: bool = false;
    // Continuous: only a change of exactly zero leaves a sample alone.
    const STEPS_PER_LEVEL: f32 = f32::INFINITY;
    #[inline(always)]
    fn level(self) -> f32 {
        255.0 * encode_linear(self)
    }
    #[inline(always)]
    fn shift_all(colour: &mut [Self], change: f32) {
        // The round trip through the encoding is not exact: samples that
        // do not move are left alone.
        if change == 0.0 {
            return;
        }
        for s in colour.iter_mut() {
            *s = decode_to_linear(encode_linear(*s) + change / 255.0);
        }
    }
}

/// Slope of the sRGB transfer function at 1.0, where the extended curve
/// turns logarithmic.
const SRGB_SLOPE_AT_ONE: f32 = 1.055 / 2.4;

/// The perceptual encoding float (linear, scene-referred) images are marked
/// in: the sRGB transfer function up to 1.0 — so that an 8-bit sRGB export
/// (clamp, then sRGB) carries the mark exactly as it was embedded wherever
/// it does not clip — continued above 1.0 by a logarithm with the same
/// value and slope, so that highlights get marks in proportion to how
/// bright they look rather than to their linear value. Negative values
/// encode as 0.
///
/// ```
/// use tattle_core::plane::{decode_to_linear, encode_linear};
/// assert!((encode_linear(0.5) - 0.7354).abs() < 1e-4); // sRGB
/// assert!((encode_linear(1.0) - 1.0).abs() < 1e-6);
/// for v in [0.0, 0.001, 0.2, 1.0, 4.0, 300.0] {
///     assert!((decode_to_linear(encode_linear(v)) - v).abs() <= 1e-5 * v.max(1.0));
/// }
/// ```
pub fn encode_linear(value: f32) -> f32 {
    if value.is_nan() || value <= 0.0 {
        0.0
    } else if value <= 0.003_130_8 {
        12.92 * value
    } else if value <= 1.0 {
        1.055 * pow_precise(value, 1.0 / 2.4) - 0.055
    } else {
        1.0 + SRGB_SLOPE_AT_ONE * ln_precise(f64::from(value)) as f32
    }
}

/// The inverse of [`encode_linear`].
pub fn decode_to_linear(encoded: f32) -> f32 {
    if encoded.is_nan() || encoded <= 0.0 {
        0.0
    } else if encoded <= 0.040_45 {
        encoded / 12.92
    } else if encoded <= 1.0 {
        pow_precise((encoded + 0.055) / 1.055, 2.4)
    } else {
        exp_precise(f64::from((encoded - 1.0) / SRGB_SLOPE_AT_ONE)) as f32
    }
}

/// The standard view transform of a float (linear, scene-referred) image:
/// colour clamped to [0, 1] and sRGB-encoded into 16 bits, alpha kept
/// linear — what an sRGB export of an EXR holds. Integer images are
/// returned as they are.
///
/// ```
/// use image::{DynamicImage, Rgba, Rgba32FImage};
/// let hdr = DynamicImage::ImageRgba32F(Rgba32FImage::from_pixel(2, 2, Rgba([0.5, 4.0, 0.0, 0.25])));
/// let DynamicImage::ImageRgba16(view) = tattle_core::plane::view_transform(&hdr).into_owned() else { panic!() };
/// assert_eq!(view.get_pixel(0, 0).0, [48_192, 65_535, 0, 16_384]); // sRGB(0.5) = 0.7354
/// ```
pub fn view_transform(image: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    let encode = |v: f32| (65535.0 * encode_linear(v.min(1.0))).round().clamp(0.0, 65535.0) as u16;
    let linear_alpha = |a: f32| (65535.0 * a).round().clamp(0.0, 65535.0) as u16;
    match image {
        DynamicImage::ImageRgb32F(b) => std::borrow::Cow::Owned(DynamicImage::ImageRgb16(
            image::ImageBuffer::from_fn(b.width(), b.height(), |x, y| {
                image::Rgb(b.get_pixel(x, y).0.map(encode))
            }),
        )),
        DynamicImage::ImageRgba32F(b) => std::borrow::Cow::Owned(DynamicImage::ImageRgba16(
            image::ImageBuffer::from_fn(b.width(), b.height(), |x, y| {
                let [r, g, bl, a] = b.get_pixel(x, y).0;
                image::Rgba([encode(r), encode(g), encode(bl), linear_alpha(a)])
            }),
        )),
        other => std::borrow::Cow::Borrowed(other),
    }
}

/// An image as an 8-bit RGB picture for display: [`view_transform`], then
/// reduced to 8 bits.
///
/// ```
/// use image::{DynamicImage, Rgb, Rgb32FImage};
/// let hdr = DynamicImage::ImageRgb32F(Rgb32FImage::from_pixel(2, 2, Rgb([0.5, 4.0, 0.0])));
/// assert_eq!(tattle_core::plane::display_rgb8(&hdr).get_pixel(0, 0).0, [188, 255, 0]);
/// ```
pub fn display_rgb8(image: &DynamicImage) -> image::RgbImage {
    view_transform(image).to_rgb8()
}

/// Luma of one pixel's colour samples, in levels.
#[inline(always)]
fn pixel_luma<S: Sample>(pixel: &[S], color: bool) -> f32 {
    match (color, pixel) {
        (true, [r, g, b, ..]) => {
            LUMA_WEIGHTS[0] * r.level() + LUMA_WEIGHTS[1] * g.level() + LUMA_WEIGHTS[2] * b.level()
        }
        (_, [y, ..]) => y.level(),
        _ => 0.0,
    }
}

/// How far a pixel's luma can move down and up before one of its colour
/// channels clips.
#[inline(always)]
fn headroom_of<S: Sample>(colour: &[S]) -> (f32, f32) {
    let (lo, hi) = S::level_range(colour);
    (lo.max(0.0), (S::MAX_LEVEL - hi).max(0.0))
}

/// Runs `$body` with `$samples` bound to the image's sample buffer (shared
/// or mutable, as `$image` is), `$channels` to its samples per pixel and
/// `$color` to whether it has R, G and B; `$other` binds any other layout.
/// The one place that knows the pixel layouts tattle marks.
macro_rules! with_samples {
    ($image:expr, |$samples:ident, $channels:ident, $color:ident| $body:expr, $other:ident => $fallback:expr) => {
        match $image {
            DynamicImage::ImageLuma8($samples) => with_samples!(@ $samples, 1, false, $channels, $color, $body),
            DynamicImage::ImageLumaA8($samples) => with_samples!(@ $samples, 2, false, $channels, $color, $body),
            DynamicImage::ImageRgb8($samples) => with_samples!(@ $samples, 3, true, $channels, $color, $body),
            DynamicImage::ImageRgba8($samples) => with_samples!(@ $samples, 4, true, $channels, $color, $body),
            DynamicImage::ImageLuma16($samples) => with_samples!(@ $samples, 1, false, $channels, $color, $body),
            DynamicImage::ImageLumaA16($samples) => with_samples!(@ $samples, 2, false, $channels, $color, $body),
            DynamicImage::ImageRgb16($samples) => with_samples!(@ $samples, 3, true, $channels, $color, $body),
            DynamicImage::ImageRgba16($samples) => with_samples!(@ $samples, 4, true, $channels, $color, $body),
            DynamicImage::ImageRgb32F($samples) => with_samples!(@ $samples, 3, true, $channels, $color, $body),
            DynamicImage::ImageRgba32F($samples) => with_samples!(@ $samples, 4, true, $channels, $color, $body),
            $other => $fallback,
        }
    };
    (@ $buffer:ident, $n:expr, $is_color:expr, $channels:ident, $color:ident, $body:expr) => {{
        let ($channels, $color): (usize, bool) = ($n, $is_color);
        $body
    }};
}

/// Rows of an image's samples from `first_row` on: as many whole rows as
/// `values` (one value per pixel) holds.
fn sample_rows<S>(samples: &[S], channels: usize, width: usize, first_row: usize, values: usize) -> &[S] {
    let rows = values / width.max(1);
    samples
        .get(first_row * width * channels..(first_row + rows) * width * channels)
        .unwrap_or_default()
}

/// Writes the luma (as [`luma`] computes it) of the image's rows from
/// `first_row` on into `out`, which holds whole rows. Rows past the image
/// are left as they were.
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// use tattle_core::plane::{luma, luma_rows};
/// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(5, 4, |x, y| Rgb([(x * 40) as u8, (y * 60) as u8, 9])));
/// let mut rows = [0.0f32; 10];
/// luma_rows(&img, 2, &mut rows);
/// assert_eq!(&rows[..], luma(&img).slice(ndarray::s![2..4, ..]).as_slice().unwrap());
/// ```
#[multiversion(targets("x86_64+avx2"))]
pub fn luma_rows(image: &DynamicImage, first_row: usize, out: &mut [f32]) {
    let width = image.width() as usize;
    with_samples!(image, |samples, channels, color| {
        let rows = sample_rows(samples.as_raw(), channels, width, first_row, out.len());
        for (o, px) in out.iter_mut().zip(rows.chunks_exact(channels)) {
            *o = pixel_luma(px, color);
        }
    }, other => {
        let converted = DynamicImage::ImageRgba32F(other.to_rgba32f());
        luma_rows(&converted, first_row, out);
    })
}

/// Clamps a luma change for the image's rows from `first_row` on (`delta`
/// holds whole rows) to what each pixel can take before one of its colour
/// channels clips: exactly the clamp [`add_luma_delta`] applies.
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 1, Rgb([250, 10, 128])));
/// let mut delta = [20.0f32, -40.0];
/// tattle_core::plane::clamp_to_headroom(&img, 0, &mut delta);
/// assert_eq!(delta, [5.0, -10.0]);
/// ```
pub fn clamp_to_headroom(image: &DynamicImage, first_row: usize, delta: &mut [f32]) {
    let width = image.width() as usize;
    with_samples!(image, |samples, channels, color| {
        let rows = sample_rows(samples.as_raw(), channels, width, first_row, delta.len());
        clamp_pixels(delta, rows, channels, color);
    }, other => {
        let converted = DynamicImage::ImageRgba32F(other.to_rgba32f());
        clamp_to_headroom(&converted, first_row, delta);
    })
}

/// Clamps each pixel's change to its headroom.
#[inline(always)]
fn clamp_pixels<S: Sample>(delta: &mut [f32], samples: &[S], channels: usize, color: bool) {
    S::clamp_changes(delta, samples, channels, if color { 3 } else { 1 });
}

/// Pixels per run of a row that share one headroom floor (see
/// [`LumaSource::headroom_floors`]).
pub const HEADROOM_RUN: usize = 16;

/// Headroom floors per row of an image `width` pixels wide.
pub fn floors_per_row(width: usize) -> usize {
    width.div_ceil(HEADROOM_RUN)
}

/// The headroom floors of whole rows of an image (see
/// [`LumaSource::headroom_floors`]).
#[multiversion(targets("x86_64+avx2"))]
fn image_headroom_floors(image: &DynamicImage, first_row: usize, floors: &mut [f32]) {
    let width = image.width() as usize;
    let runs = floors_per_row(width).max(1);
    with_samples!(image, |samples, channels, color| {
        let color_channels = if color { 3 } else { 1 };
        let rows = sample_rows(samples.as_raw(), channels, width, first_row, floors.len() / runs * width);
        for (row, floors) in rows.chunks_exact(width * channels).zip(floors.chunks_exact_mut(runs)) {
            for (run, floor) in row.chunks(HEADROOM_RUN * channels).zip(floors.iter_mut()) {
                *floor = run_floor(run, channels, color_channels);
            }
        }
    }, other => {
        let converted = DynamicImage::ImageRgba32F(other.to_rgba32f());
        image_headroom_floors(&converted, first_row, floors);
    })
}

/// The least headroom (down or up) of a run of pixels: that of its
/// darkest and its brightest colour sample.
#[inline(always)]
fn run_floor<S: Sample>(run: &[S], channels: usize, color_channels: usize) -> f32 {
    let (lo, hi) = S::run_level_range(run, channels, color_channels);
    lo.max(0.0).min((S::MAX_LEVEL - hi).max(0.0))
}

/// [`clamp_to_headroom`] given the rows' headroom floors: a run whose
/// every change is within its floor cannot clip and is left alone without
/// reading its pixels. Same result as [`clamp_to_headroom`].
#[multiversion(targets("x86_64+avx2"))]
fn clamp_image_within_floors(image: &DynamicImage, first_row: usize, delta: &mut [f32], floors: &[f32]) {
    let width = image.width() as usize;
    with_samples!(image, |samples, channels, color| {
        let rows = sample_rows(samples.as_raw(), channels, width, first_row, delta.len());
        for_each_run_over_floor(delta, width, floors, |start, run| {
            if let Some(pixels) = rows.get(start * channels..(start + run.len()) * channels) {
                clamp_pixels(run, pixels, channels, color);
            }
        });
    }, other => {
        let converted = DynamicImage::ImageRgba32F(other.to_rgba32f());
        clamp_image_within_floors(&converted, first_row, delta, floors);
    })
}

/// Calls `clamp_run(start, run)` for every run of [`HEADROOM_RUN`] changes
/// of whole rows `width` wide (`start`: the run's first index in `delta`)
/// whose largest change exceeds the run's floor: the only runs that can
/// clip.
fn for_each_run_over_floor(
    delta: &mut [f32],
    width: usize,
    floors: &[f32],
    mut clamp_run: impl FnMut(usize, &mut [f32]),
) {
    let runs = floors_per_row(width).max(1);
    let lines = delta
        .chunks_exact_mut(width.max(1))
        .zip(floors.chunks_exact(runs));
    for (row, (line, floors)) in lines.enumerate() {
        for (i, (run, floor)) in line.chunks_mut(HEADROOM_RUN).zip(floors).enumerate() {
            if largest_magnitude(run) > *floor {
                clamp_run(row * width + i * HEADROOM_RUN, run);
            }
        }
    }
}

/// The largest absolute value of a run (0 for none; NaN is passed over).
#[inline(always)]
fn largest_magnitude(values: &[f32]) -> f32 {
    // Eight running maxima side by side, which the compiler keeps in
    // vector registers, where one would be a serial chain of comparisons.
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0.0f32, |m, v| larger(m, v.abs()));
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = larger(*lane, v.abs());
        }
    }
    lanes.iter().fold(tail, |m, &v| larger(m, v))
}

/// Adds `scale` times a luma change, clamped to each pixel's headroom, to
/// the samples of whole rows `width` pixels wide. `floors`, when given,
/// holds the rows' headroom floors (see [`LumaSource::headroom_floors`]),
/// which spares finding them again.
#[multiversion(targets("x86_64+avx2"))]
fn add_luma<S: Sample>(
    samples: &mut [S],
    (channels, color, width): (usize, bool, usize),
    delta: &[f32],
    scale: f32,
    floors: Option<&[f32]>,
) {
    let color_channels = if color { 3 } else { 1 };
    if !S::CHEAP_LEVELS {
        return add_luma_clamped(samples, channels, color_channels, delta, scale);
    }
    // A run whose every change, before and after scaling, is within the
    // headroom of its darkest and brightest sample cannot clip: its pixels
    // skip the clamp. A run whose every change rounds to no step at all
    // (flat colour, where the mask is 0) is not even read.
    let reach = scale.abs().max(1.0);
    let width = width.max(1);
    let runs_per_row = floors_per_row(width);
    let rows = samples.chunks_mut(width * channels).zip(delta.chunks(width));
    for (y, (row, row_changes)) in rows.enumerate() {
        let row_floors = floors
            .and_then(|floors| floors.get(y * runs_per_row..(y + 1) * runs_per_row))
            .unwrap_or_default();
        let runs = row
            .chunks_mut(HEADROOM_RUN * channels)
            .zip(row_changes.chunks(HEADROOM_RUN));
        for (i, (run, changes)) in runs.enumerate() {
            let largest = largest_magnitude(changes);
            // Clamping only shrinks a change, and rounding is monotonic: the
            // largest change decides for the whole run.
            if largest * scale.abs() * S::STEPS_PER_LEVEL < 0.5 {
                continue;
            }
            let floor = match row_floors.get(i) {
                Some(&floor) => floor,
                None => run_floor(run, channels, color_channels),
            };
            if largest * reach <= floor {
                S::shift_run(run, channels, color_channels, changes, scale);
            } else if (0.0..=1.0).contains(&scale) {
                // A change clamped to its pixel's headroom still fits it
                // once shrunk by the scale, and rounds to a step that fits
                // too (the headrooms are whole steps): clamp the run, then
                // shift it with the run's own loop.
                let mut clamped = [0.0f32; HEADROOM_RUN];
                let clamped = clamped.get_mut(..changes.len()).unwrap_or_default();
                clamped.copy_from_slice(changes);
                S::clamp_changes(clamped, run, channels, color_channels);
                S::shift_run(run, channels, color_channels, clamped, scale);
            } else {
                add_luma_clamped(run, channels, color_channels, changes, scale);
            }
        }
    }
}

/// [`add_luma`], pixel by pixel.
#[inline(always)]
fn add_luma_clamped<S: Sample>(
    samples: &mut [S],
    channels: usize,
    color_channels: usize,
    delta: &[f32],
    scale: f32,
) {
    for (px, d) in samples.chunks_exact_mut(channels).zip(delta) {
        let Some(colour) = px.get_mut(..color_channels) else {
            continue;
        };
        let (down, up) = headroom_of(colour);
        let change = d.clamp(-down, up) * scale;
        S::shift_all(colour, change);
    }
}

/// The luma plane of an image, in 8-bit grey levels (`0.0..=255.0` for
/// integer images; float images in the levels of [`encode_linear`], which
/// go past 255 in highlights).
///
/// ```
/// use image::{DynamicImage, RgbImage, Rgb};
/// let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 3, Rgb([200, 100, 0])));
/// let y = tattle_core::plane::luma(&img);
/// assert_eq!(y.dim(), (3, 4));
/// assert!((y[[0, 0]] - (0.299 * 200.0 + 0.587 * 100.0)).abs() < 1e-3);
/// ```
pub fn luma(image: &DynamicImage) -> Plane {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut plane = Plane::zeros((h, w));
    if let Some(values) = plane.as_slice_mut() {
        values
            .par_chunks_mut(BAND_ROWS * w.max(1))
            .enumerate()
            .for_each(|(band, out)| luma_rows(image, band * BAND_ROWS, out));
    }
    plane
}

/// Copies whole rows of a row-major plane `width` wide, from `first_row`
/// on, into `out`: the row source of the banded passes for a stored plane.
///
/// ```
/// let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
/// let mut out = [0.0f32; 6];
/// tattle_core::plane::copy_rows(&values, 3, 2, &mut out);
/// assert_eq!(out, [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
/// ```
pub fn copy_rows(values: &[f32], width: usize, first_row: usize, out: &mut [f32]) {
    let rows = values
        .get(first_row * width..first_row * width + out.len())
        .unwrap_or_default();
    out.iter_mut().zip(rows).for_each(|(o, v)| *o = *v);
}

/// Where luma comes from, band by band: a whole image (luma from its
/// colour, headroom from its channels) or a luma plane alone (8-bit scale,
/// headroom to 0 and 255).
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// use tattle_core::plane::{luma, LumaSource};
/// let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 2, Rgb([250, 100, 0])));
/// let plane = luma(&img);
/// let (mut a, mut b) = ([0.0f32; 4], [0.0f32; 4]);
/// LumaSource::Image(&img).rows(1, &mut a);
/// LumaSource::Plane(&plane).rows(1, &mut b);
/// assert_eq!(a, b);
/// let mut change = [9.0f32; 4];
/// LumaSource::Image(&img).clamp_to_headroom(0, &mut change);
/// assert_eq!(change, [5.0; 4]); // red has 5 levels left
/// ```
#[derive(Clone, Copy, Debug)]
pub enum LumaSource<'a> {
    /// A whole image.
    Image(&'a DynamicImage),
    /// A luma plane alone.
    Plane(&'a Plane),
}

impl LumaSource<'_> {
    /// (height, width).
    pub fn dim(&self) -> (usize, usize) {
        match self {
            LumaSource::Image(image) => (image.height() as usize, image.width() as usize),
            LumaSource::Plane(plane) => plane.dim(),
        }
    }

    /// Writes the luma of whole rows from `first_row` on into `out`.
    pub fn rows(&self, first_row: usize, out: &mut [f32]) {
        match self {
            LumaSource::Image(image) => luma_rows(image, first_row, out),
            LumaSource::Plane(plane) => match plane.as_slice() {
                Some(values) => copy_rows(values, plane.ncols(), first_row, out),
                // A plane not in row-major order: row by row.
                None => {
                    let rows = plane.rows().into_iter().skip(first_row);
                    for (row, out) in rows.zip(out.chunks_exact_mut(plane.ncols().max(1))) {
                        row.iter().zip(out.iter_mut()).for_each(|(v, o)| *o = *v);
                    }
                }
            },
        }
    }

    /// Clamps a luma change of whole rows from `first_row` on to what the
    /// pixels can take (see [`clamp_to_headroom`]).
    pub fn clamp_to_headroom(&self, first_row: usize, delta: &mut [f32]) {
        match self {
            LumaSource::Image(image) => clamp_to_headroom(image, first_row, delta),
            LumaSource::Plane(plane) => {
                let rows = plane.rows().into_iter().skip(first_row);
                for (row, delta) in rows.zip(delta.chunks_exact_mut(plane.ncols().max(1))) {
                    for (d, y) in delta.iter_mut().zip(row) {
                        let (down, up) = grey_headroom(*y);
                        *d = d.clamp(-down, up);
                    }
                }
            }
        }
    }

    /// The headroom floor of every run of [`HEADROOM_RUN`] pixels of whole
    /// rows from `first_row` on: the least headroom (down or up) of its
    /// pixels. `floors` holds [`floors_per_row`] values per row, for as
    /// many rows as it has room. A change no larger than a run's floor
    /// never clips there, which [`LumaSource::clamp_within_floors`] uses to
    /// skip the pixels.
    ///
    /// ```
    /// use image::{DynamicImage, Rgb, RgbImage};
    /// use tattle_core::plane::{floors_per_row, LumaSource};
    /// // 20 pixels a row: runs of 16 and 4; one pixel of the second run is near white.
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(20, 2, |x, _| {
    ///     if x == 18 { Rgb([250, 100, 100]) } else { Rgb([100, 120, 140]) }
    /// }));
    /// let mut floors = vec![0.0f32; 2 * floors_per_row(20)];
    /// LumaSource::Image(&img).headroom_floors(0, &mut floors);
    /// assert_eq!(floors, [100.0, 5.0, 100.0, 5.0]);
    /// ```
    pub fn headroom_floors(&self, first_row: usize, floors: &mut [f32]) {
        match self {
            LumaSource::Image(image) => image_headroom_floors(image, first_row, floors),
            LumaSource::Plane(plane) => {
                let rows = plane.rows().into_iter().skip(first_row);
                let runs = floors_per_row(plane.ncols()).max(1);
                for (row, floors) in rows.zip(floors.chunks_exact_mut(runs)) {
                    floors.fill(f32::INFINITY);
                    for (x, y) in row.iter().enumerate() {
                        if let Some(floor) = floors.get_mut(x / HEADROOM_RUN) {
                            let (down, up) = grey_headroom(*y);
                            *floor = floor.min(down).min(up);
                        }
                    }
                }
            }
        }
    }

    /// [`LumaSource::clamp_to_headroom`] given the rows' headroom floors
    /// (from [`LumaSource::headroom_floors`] for the same rows): the same
    /// result, but runs whose every change is within their floor are not
    /// looked at again.
    ///
    /// ```
    /// use image::{DynamicImage, Rgb, RgbImage};
    /// use tattle_core::plane::{floors_per_row, LumaSource};
    /// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 3, |x, y| Rgb([(x * 6 + y) as u8, 30, 250])));
    /// let source = LumaSource::Image(&img);
    /// let mut floors = vec![0.0f32; 3 * floors_per_row(40)];
    /// source.headroom_floors(0, &mut floors);
    /// let change: Vec<f32> = (0..120).map(|i| (i % 13) as f32 - 6.0).collect();
    /// let (mut a, mut b) = (change.clone(), change);
    /// source.clamp_to_headroom(0, &mut a);
    /// source.clamp_within_floors(0, &mut b, &floors);
    /// assert_eq!(a, b);
    /// ```
    pub fn clamp_within_floors(&self, first_row: usize, delta: &mut [f32], floors: &[f32]) {
        match self {
            LumaSource::Image(image) => clamp_image_within_floors(image, first_row, delta, floors),
            LumaSource::Plane(plane) => {
                let width = plane.ncols();
                let values = plane.slice(ndarray::s![first_row.min(plane.nrows()).., ..]);
                let values = values.as_standard_layout();
                let values = values.as_slice().unwrap_or_default();
                for_each_run_over_floor(delta, width, floors, |start, run| {
                    for (d, y) in run.iter_mut().zip(values.get(start..).unwrap_or_default()) {
                        let (down, up) = grey_headroom(*y);
                        *d = d.clamp(-down, up);
                    }
                });
            }
        }
    }
}

/// How far a luma plane's value can move down and up within `0..=255`.
#[inline(always)]
fn grey_headroom(y: f32) -> (f32, f32) {
    (y.max(0.0), (255.0 - y).max(0.0))
}

/// Rows per band of the banded passes over an image: enough to amortise a
/// task, few enough that a band's working set stays in cache. A multiple
/// of the 8-pixel block.
pub const BAND_ROWS: usize = 32;

/// Adds a luma change (in 8-bit grey levels) to an image, keeping its pixel
/// type, bit depth and alpha.
pub fn add_luma_delta(image: &mut DynamicImage, delta: &Plane) -> Result<()> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if delta.dim() != (h, w) {
        return Err(Error::BufferSize {
            expected: w * h,
            actual: delta.len(),
        });
    }
    let delta = delta.as_standard_layout();
    let values = delta.as_slice().unwrap_or_default();
    add_luma_by_rows(image, 1.0, |first_row, out| copy_rows(values, w, first_row, out))
}

/// Adds a luma change that is never stored whole: `delta_rows(first_row,
/// out)` writes the change of the image's rows from `first_row` on into
/// `out` (whole rows, at most [`BAND_ROWS`]; it must write every value, as
/// `out` holds what an earlier band left). Each pixel's change is first
/// clamped to its headroom (as [`clamp_to_headroom`] does), then
/// multiplied by `scale`. Bands run in parallel; pixel type, bit depth and
/// alpha are kept.
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// let mut img = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, Rgb([250, 10, 128])));
/// tattle_core::plane::add_luma_by_rows(&mut img, 0.5, |_, out| out.fill(20.0)).unwrap();
/// // Clamped to the 5 levels the red channel has left, then halved.
/// assert_eq!(img.to_rgb8().get_pixel(2, 1).0, [253, 13, 131]);
/// ```
pub fn add_luma_by_rows(
    image: &mut DynamicImage,
    scale: f32,
    delta_rows: impl Fn(usize, &mut [f32]) + Sync,
) -> Result<()> {
    add_luma_by_bands(image, scale, &[], delta_rows)
}

/// [`add_luma_by_rows`] given the image's headroom floors, band by band:
/// `floors[b]` holds those of band `b` (rows `b × BAND_ROWS` on), as
/// [`LumaSource::headroom_floors`] wrote them for this very image. Bands
/// without floors have theirs found again. Same result, without reading
/// the extremes of every run again.
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// use tattle_core::plane::{add_luma_by_bands, add_luma_by_rows, floors_per_row, LumaSource};
/// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 3, |x, y| Rgb([(x * 6) as u8, 200, (y * 90) as u8])));
/// let mut floors = vec![0.0; 3 * floors_per_row(40)];
/// LumaSource::Image(&img).headroom_floors(0, &mut floors);
/// let (mut a, mut b) = (img.clone(), img);
/// add_luma_by_rows(&mut a, 0.8, |_, out| out.fill(9.0)).unwrap();
/// add_luma_by_bands(&mut b, 0.8, &[floors], |_, out| out.fill(9.0)).unwrap();
/// assert_eq!(a, b);
/// ```
pub fn add_luma_by_bands(
    image: &mut DynamicImage,
    scale: f32,
    floors: &[Vec<f32>],
    delta_rows: impl Fn(usize, &mut [f32]) + Sync,
) -> Result<()> {
    let width = image.width() as usize;
    with_samples!(image, |samples, channels, color| {
        let band_samples = BAND_ROWS * width.max(1) * channels;
        let samples: &mut [_] = samples;
        samples
            .par_chunks_mut(band_samples)
            .enumerate()
            .for_each(|(band, samples)| {
                with_local(&ROWS, |delta| {
                    let delta = delta.exactly(samples.len() / channels);
                    delta_rows(band * BAND_ROWS, delta);
                    let floors = floors.get(band).map(Vec::as_slice);
                    add_luma(samples, (channels, color, width), delta, scale, floors);
                })
            });
        Ok(())
    }, other => Err(Error::UnsupportedLayout(format!("{:?}", other.color()))))
}

/// Mean of `plane` over a `(2r+1)²` window around every pixel; the window
/// is cut at the borders and the mean taken over what remains.
///
/// Direct sums, separable: `O(r)` work per pixel, meant for the small
/// radii of the perceptual model (2–3), where it beats running sums and
/// has no drift along long rows.
pub fn box_mean(plane: &Plane, radius: usize) -> Plane {
    box_mean_of(plane, radius, |v| v)
}

/// [`box_mean`] of `f` applied to every value of `plane`, without storing
/// the mapped plane or the horizontal sums: rows are processed in bands
/// of [`BAND_ROWS`] (plus the window's margin), in parallel. Same
/// arithmetic, in the same order, as a whole-plane pass.
///
/// ```
/// use tattle_core::plane::{box_mean, box_mean_of, Plane};
/// let p = Plane::from_shape_fn((40, 9), |(y, x)| (y + 2 * x) as f32);
/// let squares = p.mapv(|v| v * v);
/// assert_eq!(box_mean_of(&p, 2, |v| v * v), box_mean(&squares, 2));
/// ```
pub fn box_mean_of(plane: &Plane, radius: usize, f: impl Fn(f32) -> f32 + Sync) -> Plane {
    let (h, w) = plane.dim();
    if h == 0 || w == 0 {
        return plane.mapv(&f);
    }
    let src = plane.as_standard_layout();
    let data = src.as_slice().unwrap_or(&[]);
    let filter = BoxFilter::new(w, h, radius);
    let mut out = vec![0.0f32; h * w];
    out.par_chunks_mut(BAND_ROWS * w)
        .enumerate()
        .for_each_init(Vec::new, |scratch, (band, band_out)| {
            let first = band * BAND_ROWS;
            let (reach_lo, reach_hi) = filter.reach(first, band_out.len() / w);
            let rows_in = data.get(reach_lo * w..reach_hi * w).unwrap_or_default();
            filter.band(rows_in, first, band_out, &f, scratch);
        });
    Array2::from_shape_vec((h, w), out).unwrap_or_else(|_| Array2::zeros((h, w)))
}

/// Box means of a `width` x `height` plane over `(2r+1)²` windows cut at
/// the borders, one band of rows at a time.
pub struct BoxFilter {
    width: usize,
    height: usize,
    radius: usize,
    inverse_width: Vec<f32>,
}

impl BoxFilter {
    /// A filter of radius `radius` for planes of this size.
    pub fn new(width: usize, height: usize, radius: usize) -> Self {
        let mut filter = Self {
            width,
            height,
            radius,
            inverse_width: Vec::new(),
        };
        filter.inverse_width = (0..width)
            .map(|x| {
                let (lo, hi) = filter.window(x, width);
                1.0 / (hi - lo) as f32
            })
            .collect();
        filter
    }

    fn window(&self, i: usize, n: usize) -> (usize, usize) {
        (i.saturating_sub(self.radius), (i + self.radius + 1).min(n))
    }

    /// The input rows `lo..hi` that the windows of `rows` output rows from
    /// `first` on reach.
    pub fn reach(&self, first: usize, rows: usize) -> (usize, usize) {
        (
            first.saturating_sub(self.radius),
            (first + rows + self.radius).min(self.height),
        )
    }

    /// Writes the box means of `f` of the input into `out`, whole output
    /// rows from `first` on; `rows_in` holds the input rows
    /// [`BoxFilter::reach`] names for them. `scratch` is reused between
    /// calls.
    pub fn band(
        &self,
        rows_in: &[f32],
        first: usize,
        out: &mut [f32],
        f: impl Fn(f32) -> f32,
        scratch: &mut Vec<f32>,
    ) {
        box_band(self, rows_in, first, out, f, scratch);
    }
}

/// [`BoxFilter::band`], compiled for the vector extensions the processor
/// has (chosen at run time). Every version adds in the same order and
/// gives the same bits.
#[multiversion(targets("x86_64+avx2"))]
fn box_band<F: Fn(f32) -> f32>(
    filter: &BoxFilter,
    rows_in: &[f32],
    first: usize,
    out: &mut [f32],
    f: F,
    scratch: &mut Vec<f32>,
) {
    let w = filter.width;
    let last = first + out.len() / w.max(1);
    let (reach_lo, reach_hi) = filter.reach(first, last - first);
    // Horizontal sums of every input row the band's windows reach, then
    // one mapped input row. Every value is written before it is read:
    // the scratch is not cleared.
    scratch.resize((reach_hi - reach_lo + 1) * w, 0.0);
    let (horizontal, mapped) = scratch.split_at_mut((reach_hi - reach_lo) * w);
    for (row_out, row_in) in horizontal.chunks_exact_mut(w).zip(rows_in.chunks_exact(w)) {
        for (m, v) in mapped.iter_mut().zip(row_in) {
            *m = f(*v);
        }
        filter.horizontal_row(mapped, row_out);
    }
    for (y, row_out) in (first..last).zip(out.chunks_exact_mut(w)) {
        let (lo, hi) = filter.window(y, filter.height);
        let rows = horizontal
            .get((lo - reach_lo) * w..(hi - reach_lo) * w)
            .unwrap_or_default();
        let inverse_height = 1.0 / (hi - lo) as f32;
        if hi - lo == 5 {
            let row = |i: usize| rows.get(i * w..(i + 1) * w).unwrap_or_default();
            sum_of_five(row_out, [row(0), row(1), row(2), row(3), row(4)], inverse_height);
            continue;
        }
        let mut rows = rows.chunks_exact(w);
        match rows.next() {
            Some(top) => row_out.copy_from_slice(top),
            None => row_out.fill(0.0),
        }
        for row in rows {
            for (o, v) in row_out.iter_mut().zip(row) {
                *o += v;
            }
        }
        row_out.iter_mut().for_each(|o| *o *= inverse_height);
    }
}

/// `((((a + b) + c) + d) + e) × scale`, element by element, in one loop:
/// the window of the default radius (2), added in the same order as
/// the general loops do, so with the same bits.
#[inline(always)]
fn sum_of_five(out: &mut [f32], [a, b, c, d, e]: [&[f32]; 5], scale: f32) {
    let terms = a.iter().zip(b).zip(c).zip(d).zip(e);
    for (o, ((((a, b), c), d), e)) in out.iter_mut().zip(terms) {
        *o = ((((a + b) + c) + d) + e) * scale;
    }
}

impl BoxFilter {
    /// Horizontal window means of one row.
    #[inline(always)]
    fn horizontal_row(&self, row_in: &[f32], row_out: &mut [f32]) {
        let (w, radius) = (self.width, self.radius);
        let span = 2 * radius + 1;
        let border = |x: usize, out: &mut f32| {
            let (lo, hi) = self.window(x, w);
            let inverse = self.inverse_width.get(x).copied().unwrap_or(0.0);
            *out = row_in.get(lo..hi).unwrap_or_default().iter().sum::<f32>() * inverse;
        };
        if w <= span {
            row_out.iter_mut().enumerate().for_each(|(x, out)| border(x, out));
            return;
        }
        // Interior: the sum of 2r+1 shifted copies of the row over the
        // whole window, in loops the compiler vectorises.
        let (head, rest) = row_out.split_at_mut(radius);
        let (interior, tail) = rest.split_at_mut(w - 2 * radius);
        let inverse = 1.0 / span as f32;
        if span == 5 {
            let shifted = |offset: usize| row_in.get(offset..).unwrap_or_default();
            sum_of_five(
                interior,
                [shifted(0), shifted(1), shifted(2), shifted(3), shifted(4)],
                inverse,
            );
        } else {
            interior.iter_mut().zip(row_in).for_each(|(o, v)| *o = *v);
            for offset in 1..span {
                for (o, v) in interior.iter_mut().zip(row_in.iter().skip(offset)) {
                    *o += v;
                }
            }
            interior.iter_mut().for_each(|o| *o *= inverse);
        }
        head.iter_mut().enumerate().for_each(|(x, out)| border(x, out));
        let tail_start = w - radius;
        tail.iter_mut()
            .enumerate()
            .for_each(|(i, out)| border(tail_start + i, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_means_add_left_to_right_then_top_to_bottom() {
        // Exactly, bit for bit: the mask (and so the marked bytes) depends
        // on the order of the additions, whichever loop a radius takes.
        let p = Plane::from_shape_fn((77, 45), |(y, x)| {
            ((y * 7919 + x * 104_729) % 1000) as f32 * 0.0137 + 0.3
        });
        let (h, w) = p.dim();
        for radius in 0..=4 {
            let window = |i: usize, n: usize| (i.saturating_sub(radius), (i + radius + 1).min(n));
            let mapped = |v: f32| (v - 7.0) * (v - 7.0);
            let horizontal = Plane::from_shape_fn((h, w), |(y, x)| {
                let (lo, hi) = window(x, w);
                let sum = (lo + 1..hi).fold(mapped(p[[y, lo]]), |sum, k| sum + mapped(p[[y, k]]));
                sum * (1.0 / (hi - lo) as f32)
            });
            let expected = Plane::from_shape_fn((h, w), |(y, x)| {
                let (lo, hi) = window(y, h);
                let sum = (lo + 1..hi).fold(horizontal[[lo, x]], |sum, k| sum + horizontal[[k, x]]);
                sum * (1.0 / (hi - lo) as f32)
            });
            assert_eq!(box_mean_of(&p, radius, mapped), expected, "radius {radius}");
        }
    }

    #[test]
    fn banded_box_means_equal_the_plain_sums() {
        // Taller than several bands, odd sizes, a radius reaching across band edges.
        let p = Plane::from_shape_fn((101, 37), |(y, x)| ((y * 31 + x * 17) % 23) as f32 - 7.5);
        for radius in [0, 1, 2, 3] {
            let mapped = box_mean_of(&p, radius, |v| v * v);
            for ((y, x), &m) in mapped.indexed_iter() {
                let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(101));
                let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(37));
                let window = p.slice(ndarray::s![y0..y1, x0..x1]);
                let expected = window.iter().map(|v| v * v).sum::<f32>() / window.len() as f32;
                assert!(
                    (m - expected).abs() <= 1e-4 * expected.max(1.0),
                    "{radius} {y} {x}: {m} {expected}"
                );
            }
            // The identity map is `box_mean`, bit for bit.
            assert_eq!(box_mean_of(&p, radius, |v| v), box_mean(&p, radius));
        }
    }

    #[test]
    fn added_changes_match_the_per_pixel_definition() {
        use image::{GrayAlphaImage, GrayImage, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};
        // Bright and dark pixels beside mid greys, changes up to 40 levels
        // and scales above 1: runs that clip and runs that cannot, in each
        // pixel layout the runs have their own loop for.
        let level = |x: u32, y: u32| ((x * 37 + y * 91) % 256) as u8;
        // Rows of near white (runs with a floor of about 25), mid grey and mixed.
        let colour = |x: u32, y: u32| match y % 3 {
            0 => [225 + (x % 5) as u8, 228, 230],
            1 => [100 + (x % 7) as u8, 110, 120],
            _ => [level(x, y), level(x + 3, y) / 2 + 60, 250 - level(x, y) / 4],
        };
        let rgb = RgbImage::from_fn(53, 9, |x, y| Rgb(colour(x, y)));
        let rgba = RgbaImage::from_fn(53, 9, |x, y| {
            let [r, g, b] = colour(x, y);
            Rgba([r, g, b, level(y, x)])
        });
        let grey = GrayImage::from_fn(53, 9, |x, y| Luma([colour(x, y)[0]]));
        let grey_alpha = GrayAlphaImage::from_fn(53, 9, |x, y| LumaA([colour(x, y)[0], level(y, x)]));
        let change = |i: usize| ((i * 7919) % 81) as f32 / 2.0 - 20.0;
        // Scales of 0.01 and 0.025 leave every change of a run, or all but
        // its largest (exactly half a level), short of a step: runs that
        // are skipped and runs on the edge of it.
        for scale in [0.3f32, 1.0, 2.5, -1.0, 0.01, 0.025, -0.025, 0.05] {
            for image in [
                DynamicImage::ImageRgb8(rgb.clone()),
                DynamicImage::ImageRgba8(rgba.clone()),
                DynamicImage::ImageLuma8(grey.clone()),
                DynamicImage::ImageLumaA8(grey_alpha.clone()),
            ] {
                let width = image.width() as usize;
                let mut marked = image.clone();
                let changes = |first: usize, out: &mut [f32]| {
                    out.iter_mut()
                        .enumerate()
                        .for_each(|(i, d)| *d = change(first * width + i));
                };
                add_luma_by_rows(&mut marked, scale, changes).unwrap();
                // The same given the floors the image has.
                let mut floors = vec![0.0; 9 * floors_per_row(width)];
                LumaSource::Image(&image).headroom_floors(0, &mut floors);
                let mut within_floors = image.clone();
                add_luma_by_bands(&mut within_floors, scale, &[floors], changes).unwrap();
                assert_eq!(within_floors, marked, "scale {scale}");
                let (before, after) = (image.to_rgba8(), marked.to_rgba8());
                for (i, (b, a)) in before.pixels().zip(after.pixels()).enumerate() {
                    let (lo, hi) = (b[0].min(b[1]).min(b[2]), b[0].max(b[1]).max(b[2]));
                    let moved = change(i).clamp(-f32::from(lo), 255.0 - f32::from(hi)) * scale;
                    let step = (moved + 0.5).floor() as i32;
                    let expected: Vec<u8> = (0..3)
                        .map(|c| (i32::from(b[c]) + step).clamp(0, 255) as u8)
                        .collect();
                    assert_eq!(&a.0[..3], &expected[..], "pixel {i}, scale {scale}");
                    assert_eq!(a[3], b[3], "alpha moved");
                }
            }
        }
    }

    #[test]
    fn float_images_move_by_perceptual_levels() {
        use image::{Rgb, Rgb32FImage};
        // A dark grey, a highlight four times diffuse white, and black.
        let values = [0.2f32, 4.0, 0.0];
        let mut image =
            DynamicImage::ImageRgb32F(Rgb32FImage::from_fn(3, 1, |x, _| Rgb([values[x as usize]; 3])));
        let before = luma(&image);
        add_luma_delta(
            &mut image,
            &Plane::from_shape_vec((1, 3), vec![2.0, 2.0, -2.0]).unwrap(),
        )
        .unwrap();
        let after = luma(&image);
        // Two levels up in the encoding, whatever the brightness; black cannot go down.
        assert!((after[[0, 0]] - before[[0, 0]] - 2.0).abs() < 1e-3);
        assert!((after[[0, 1]] - before[[0, 1]] - 2.0).abs() < 1e-3);
        assert_eq!(after[[0, 2]], 0.0);
        let DynamicImage::ImageRgb32F(marked) = &image else {
            panic!("float in, float out")
        };
        // Above 1.0 the encoding is logarithmic: a relative change of 2 / (255 · 1.055 / 2.4).
        let relative = (marked.get_pixel(1, 0).0[0] - 4.0) / 4.0;
        assert!((relative - 0.01786).abs() < 2e-4, "{relative}");
        // In the darks it follows sRGB: about 3.5% here. (Marking linear values by 2/255 would
        // move the dark grey by 3.9% and the highlight by only 0.2%.)
        let dark = (marked.get_pixel(0, 0).0[0] - 0.2) / 0.2;
        assert!(dark > 0.03 && dark < 0.04, "{dark}");
    }
    use image::{ImageBuffer, Luma, Rgb, Rgba};

    #[test]
    fn delta_moves_luma_and_keeps_chroma_and_alpha() {
        let img = ImageBuffer::from_fn(16, 16, |x, y| {
            Rgba([(x * 10) as u8, (y * 10) as u8, 90, (x + y) as u8])
        });
        let mut dynamic = DynamicImage::ImageRgba8(img.clone());
        let delta = Plane::from_elem((16, 16), 3.0);
        add_luma_delta(&mut dynamic, &delta).unwrap();
        let out = dynamic.to_rgba8();
        for (a, b) in img.pixels().zip(out.pixels()) {
            assert_eq!(a[3], b[3]);
            for c in 0..3 {
                assert_eq!(i16::from(b[c]) - i16::from(a[c]), 3);
            }
        }
    }

    #[test]
    fn delta_never_clips_a_channel() {
        let img = ImageBuffer::from_pixel(8, 8, Rgb([250u8, 10, 128]));
        let mut dynamic = DynamicImage::ImageRgb8(img);
        add_luma_delta(&mut dynamic, &Plane::from_elem((8, 8), 20.0)).unwrap();
        assert_eq!(dynamic.to_rgb8().get_pixel(0, 0), &Rgb([255, 15, 133]));
        add_luma_delta(&mut dynamic, &Plane::from_elem((8, 8), -40.0)).unwrap();
        assert_eq!(dynamic.to_rgb8().get_pixel(0, 0), &Rgb([240, 0, 118]));
    }

    #[test]
    fn sixteen_bit_images_keep_their_precision() {
        let img = ImageBuffer::from_pixel(8, 8, Rgb([1000u16, 2000, 3000]));
        let mut dynamic = DynamicImage::ImageRgb16(img);
        add_luma_delta(&mut dynamic, &Plane::from_elem((8, 8), 0.5)).unwrap();
        let DynamicImage::ImageRgb16(out) = &dynamic else {
            panic!("type changed")
        };
        assert_eq!(out.get_pixel(3, 3), &Rgb([1129, 2129, 3129]));
        // Half a step of 1/257 level is the edge: below it nothing moves,
        // at it the samples move by one step.
        for (change, moved) in [
            (0.49 / 257.0, 0),
            (0.5 / 257.0, 1),
            (-0.5 / 257.0, 0),
            (-0.51 / 257.0, -1),
        ] {
            let mut dynamic =
                DynamicImage::ImageRgb16(ImageBuffer::from_pixel(20, 2, Rgb([1000u16, 2000, 3000])));
            add_luma_delta(&mut dynamic, &Plane::from_elem((2, 20), change)).unwrap();
            let DynamicImage::ImageRgb16(out) = &dynamic else {
                panic!("type changed")
            };
            let expected = [1000, 2000, 3000].map(|s: i32| (s + moved) as u16);
            assert!(out.pixels().all(|p| p.0 == expected), "change {change}");
        }
    }

    #[test]
    fn integer_shifts_round_to_the_nearest_step() {
        // Every 8-bit level and changes around every half level, against
        // rounding done exactly (in f64), half away from zero.
        let exact = |level: f64, steps: f64| (level + steps + 0.5).floor();
        for level in 0..=255u8 {
            let (down, up) = headroom_of(&[level]);
            for step in -2100..=2100 {
                let change = (step as f32 * 0.125 + 0.001 * (step % 7) as f32).clamp(-down, up);
                let mut pixel = [level; 3];
                u8::shift_all(&mut pixel, change);
                let expected = exact(f64::from(level), f64::from(change)) as u8;
                assert_eq!(pixel, [expected; 3], "{level} {change}");
            }
        }
        for level in (0..=65535u16).step_by(97) {
            let (down, up) = headroom_of(&[level]);
            for step in -300..=300 {
                let change = (step as f32 * 0.0371).clamp(-down, up);
                let mut pixel = [level];
                u16::shift_all(&mut pixel, change);
                let expected = exact(f64::from(level), f64::from(change * 257.0)) as u16;
                assert_eq!(pixel, [expected], "{level} {change}");
            }
        }
    }

    #[test]
    fn headroom_clamp_matches_what_adding_does() {
        let img = DynamicImage::ImageRgb16(ImageBuffer::from_fn(9, 5, |x, y| {
            Rgb([(x * 8000) as u16, 65535 - (y * 9000) as u16, 30000])
        }));
        let mut delta = vec![0.0f32; 45];
        for (i, d) in delta.iter_mut().enumerate() {
            *d = (i as f32 - 22.0) * 3.7;
        }
        let mut clamped = delta.clone();
        clamp_to_headroom(&img, 0, &mut clamped);
        let mut via_clamp = img.clone();
        add_luma_by_rows(&mut via_clamp, 1.0, |first, out| {
            out.copy_from_slice(&clamped[first * 9..first * 9 + out.len()])
        })
        .unwrap();
        let mut direct = img.clone();
        add_luma_by_rows(&mut direct, 1.0, |first, out| {
            out.copy_from_slice(&delta[first * 9..first * 9 + out.len()])
        })
        .unwrap();
        assert_eq!(via_clamp, direct);
        assert_ne!(clamped, delta);
    }

    #[test]
    fn clamping_within_floors_is_clamping() {
        // 37 pixels a row (two whole runs and a short one), rows from the
        // third on; levels spread over the range so that many pixels sit
        // near 0 or the top, and changes large enough to clip them.
        let level =
            |x: u32, y: u32, c: u32| ((x * 37 + y * 101 + c * 59).wrapping_mul(2654435761) >> 24) as u8;
        let rgb = ImageBuffer::from_fn(37, 9, |x, y| {
            Rgb([level(x, y, 0), level(x, y, 1), level(x, y, 2)])
        });
        let images = [
            DynamicImage::ImageRgb8(rgb.clone()),
            DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(rgb.clone()).to_rgb16()),
            DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb.clone()).to_rgba8()),
            DynamicImage::ImageRgba16(DynamicImage::ImageRgb8(rgb.clone()).to_rgba16()),
            DynamicImage::ImageLuma8(ImageBuffer::from_fn(37, 9, |x, y| Luma([level(x, y, 1)]))),
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(37, 9, |x, y| {
                image::LumaA([level(x, y, 1), level(x, y, 0)])
            })),
            DynamicImage::ImageRgb32F(DynamicImage::ImageRgb8(rgb).to_rgb32f()),
        ];
        let plane = Plane::from_shape_fn((9, 37), |(y, x)| f32::from(level(x as u32, y as u32, 2)));
        let sources = images
            .iter()
            .map(|image| (LumaSource::Image(image), format!("{:?}", image.color())))
            .chain([(LumaSource::Plane(&plane), "luma plane".to_string())]);
        for (source, name) in sources {
            let (first_row, rows) = (2, 7);
            let mut floors = vec![0.0f32; rows * floors_per_row(37)];
            source.headroom_floors(first_row, &mut floors);
            // Each floor is its run's least headroom, pixel by pixel.
            let (mut up, mut down) = (vec![1e6f32; rows * 37], vec![-1e6f32; rows * 37]);
            source.clamp_to_headroom(first_row, &mut up);
            source.clamp_to_headroom(first_row, &mut down);
            for (r, floor) in floors.iter().enumerate() {
                let (row, run) = (r / floors_per_row(37), r % floors_per_row(37));
                let pixels = row * 37 + run * HEADROOM_RUN..row * 37 + ((run + 1) * HEADROOM_RUN).min(37);
                let least = pixels.map(|i| up[i].min(-down[i])).fold(f32::INFINITY, f32::min);
                assert_eq!(*floor, least.min(1e6), "{name} run {r}");
            }
            for amplitude in [0.5f32, 4.0, 40.0] {
                let change: Vec<f32> = (0..rows * 37)
                    .map(|i| amplitude * (((i * 7919) % 23) as f32 / 11.0 - 1.0))
                    .collect();
                let (mut expected, mut got) = (change.clone(), change.clone());
                source.clamp_to_headroom(first_row, &mut expected);
                source.clamp_within_floors(first_row, &mut got, &floors);
                assert_eq!(got, expected, "{name} amplitude {amplitude}");
                // Float samples have no top to clip at, but the others must.
                if amplitude == 40.0 && name != "Rgb32F" {
                    assert_ne!(
                        got, change,
                        "nothing clipped in {name}: the test would prove nothing"
                    );
                }
            }
        }
    }

    #[test]
    fn eight_bit_clamping_is_each_pixels_headroom() {
        // The 8-bit layouts have loops of their own; each change must end
        // within its pixel's darkest and brightest colour sample, as read
        // here from the pixels themselves. 37 pixels a row: two whole runs
        // and a short one.
        let level =
            |x: u32, y: u32, c: u32| ((x * 37 + y * 101 + c * 59).wrapping_mul(2654435761) >> 24) as u8;
        let rgba = ImageBuffer::from_fn(37, 5, |x, y| {
            image::Rgba([level(x, y, 0), level(x, y, 1), level(x, y, 2), level(x, y, 3)])
        });
        let rgba = DynamicImage::ImageRgba8(rgba);
        let images = [
            DynamicImage::ImageRgb8(rgba.to_rgb8()),
            rgba.clone(),
            DynamicImage::ImageLuma8(ImageBuffer::from_fn(37, 5, |x, y| Luma([level(x, y, 1)]))),
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(37, 5, |x, y| {
                image::LumaA([level(x, y, 1), level(x, y, 0)])
            })),
        ];
        let change: Vec<f32> = (0..4 * 37)
            .map(|i| 60.0 * (((i * 7919) % 23) as f32 / 11.0 - 1.0))
            .collect();
        for image in &images {
            let colour = if image.color().has_color() { 3 } else { 1 };
            let mut got = change.clone();
            clamp_to_headroom(image, 1, &mut got);
            let samples = image.as_bytes();
            let channels = usize::from(image.color().channel_count());
            for (i, (got, d)) in got.iter().zip(&change).enumerate() {
                let px = &samples[(37 + i) * channels..][..colour];
                let lo = f32::from(*px.iter().min().unwrap());
                let hi = f32::from(*px.iter().max().unwrap());
                assert_eq!(*got, d.clamp(-lo, 255.0 - hi), "{:?} pixel {i}", image.color());
            }
            assert_ne!(got, change, "{:?}: nothing clipped", image.color());
        }
    }

    #[test]
    fn wrong_delta_size_is_an_error() {
        let mut dynamic = DynamicImage::new_rgb8(8, 8);
        assert!(add_luma_delta(&mut dynamic, &Plane::zeros((4, 8))).is_err());
    }

    #[test]
    fn box_mean_matches_direct_sum() {
        let p = Plane::from_shape_fn((9, 11), |(y, x)| ((x * 7 + y * 13) % 17) as f32);
        let m = box_mean(&p, 2);
        for y in 0..9usize {
            for x in 0..11usize {
                let (mut s, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(2)..(y + 3).min(9) {
                    for xx in x.saturating_sub(2)..(x + 3).min(11) {
                        s += p[[yy, xx]];
                        n += 1.0;
                    }
                }
                assert!((m[[y, x]] - s / n).abs() < 1e-4);
            }
        }
    }
}
