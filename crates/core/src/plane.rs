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
use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// A plane of `f32` values, indexed `[[row, column]]`.
pub type Plane = Array2<f32>;

/// BT.601 luma weights for R, G, B.
const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// A sample type of an image buffer, seen in units of 8-bit grey levels.
trait Sample: Copy {
    /// Largest level a sample can hold.
    const MAX_LEVEL: f32;
    /// The sample in 8-bit grey levels (perceptually encoded for float samples).
    fn level(self) -> f32;
    /// The sample moved by `change` levels (rounded, clamped to the type's range).
    fn shifted(self, change: f32) -> Self;
}

impl Sample for u8 {
    const MAX_LEVEL: f32 = 255.0;
    fn level(self) -> f32 {
        f32::from(self)
    }
    fn shifted(self, change: f32) -> Self {
        (f32::from(self) + change).round().clamp(0.0, 255.0) as u8
    }
}

impl Sample for u16 {
    const MAX_LEVEL: f32 = 255.0;
    fn level(self) -> f32 {
        f32::from(self) / 257.0
    }
    fn shifted(self, change: f32) -> Self {
        (f32::from(self) + change * 257.0).round().clamp(0.0, 65535.0) as u16
    }
}

impl Sample for f32 {
    // Scene-referred float images have no upper bound.
    const MAX_LEVEL: f32 = f32::INFINITY;
    fn level(self) -> f32 {
        255.0 * encode_linear(self)
    }
    fn shifted(self, change: f32) -> Self {
        decode_to_linear(encode_linear(self) + change / 255.0)
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
        1.055 * value.powf(1.0 / 2.4) - 0.055
    } else {
        1.0 + SRGB_SLOPE_AT_ONE * value.ln()
    }
}

/// The inverse of [`encode_linear`].
pub fn decode_to_linear(encoded: f32) -> f32 {
    if encoded.is_nan() || encoded <= 0.0 {
        0.0
    } else if encoded <= 0.040_45 {
        encoded / 12.92
    } else if encoded <= 1.0 {
        ((encoded + 0.055) / 1.055).powf(2.4)
    } else {
        ((encoded - 1.0) / SRGB_SLOPE_AT_ONE).exp()
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
fn pixel_luma<S: Sample>(pixel: &[S], color: bool) -> f32 {
    match (color, pixel) {
        (true, [r, g, b, ..]) => {
            LUMA_WEIGHTS[0] * r.level() + LUMA_WEIGHTS[1] * g.level() + LUMA_WEIGHTS[2] * b.level()
        }
        (_, [y, ..]) => y.level(),
        _ => 0.0,
    }
}

fn luma_of<S: Sample>(samples: &[S], channels: usize, color: bool, width: usize, height: usize) -> Plane {
    let values = samples
        .chunks_exact(channels)
        .map(|px| pixel_luma(px, color))
        .collect();
    Array2::from_shape_vec((height, width), values).unwrap_or_else(|_| Array2::zeros((height, width)))
}

/// The lowest and highest level of a pixel's colour samples.
fn level_range<S: Sample>(colour: &[S]) -> (f32, f32) {
    colour
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.level()), hi.max(s.level()))
        })
}

fn add_luma<S: Sample>(samples: &mut [S], channels: usize, color: bool, delta: &Plane) {
    let color_channels = if color { 3 } else { 1 };
    for (px, d) in samples.chunks_exact_mut(channels).zip(delta.iter()) {
        let Some(colour) = px.get_mut(..color_channels) else {
            continue;
        };
        let (lo, hi) = level_range(colour);
        let change = d.clamp(-lo.max(0.0), (S::MAX_LEVEL - hi).max(0.0));
        if change == 0.0 {
            continue;
        }
        for s in colour.iter_mut() {
            *s = s.shifted(change);
        }
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
    match image {
        DynamicImage::ImageLuma8(b) => luma_of(b.as_raw(), 1, false, w, h),
        DynamicImage::ImageLumaA8(b) => luma_of(b.as_raw(), 2, false, w, h),
        DynamicImage::ImageRgb8(b) => luma_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba8(b) => luma_of(b.as_raw(), 4, true, w, h),
        DynamicImage::ImageLuma16(b) => luma_of(b.as_raw(), 1, false, w, h),
        DynamicImage::ImageLumaA16(b) => luma_of(b.as_raw(), 2, false, w, h),
        DynamicImage::ImageRgb16(b) => luma_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba16(b) => luma_of(b.as_raw(), 4, true, w, h),
        DynamicImage::ImageRgb32F(b) => luma_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba32F(b) => luma_of(b.as_raw(), 4, true, w, h),
        other => luma(&DynamicImage::ImageRgba32F(other.to_rgba32f())),
    }
}

/// How far, in 8-bit grey levels, each pixel's luma can move down and up
/// before one of its colour channels clips.
#[derive(Clone, Debug)]
pub struct Headroom {
    /// Room below, per pixel.
    pub down: Plane,
    /// Room above, per pixel (infinite for float images).
    pub up: Plane,
}

impl Headroom {
    /// The headroom of a luma-only plane in 8-bit grey levels.
    pub fn of_luma(luma: &Plane) -> Self {
        Self {
            down: luma.mapv(|y| y.max(0.0)),
            up: luma.mapv(|y| (255.0 - y).max(0.0)),
        }
    }

    /// Clamps a luma change to what the pixels can take.
    pub fn clamp(&self, delta: &mut Plane) {
        ndarray::Zip::from(delta)
            .and(&self.down)
            .and(&self.up)
            .par_for_each(|d, &down, &up| *d = d.clamp(-down, up));
    }
}

fn headroom_of<S: Sample>(
    samples: &[S],
    channels: usize,
    color: bool,
    width: usize,
    height: usize,
) -> Headroom {
    let color_channels = if color { 3 } else { 1 };
    let (mut down, mut up) = (
        Vec::with_capacity(width * height),
        Vec::with_capacity(width * height),
    );
    for px in samples.chunks_exact(channels) {
        let (lo, hi) = level_range(px.get(..color_channels).unwrap_or(px));
        down.push(lo.max(0.0));
        up.push((S::MAX_LEVEL - hi).max(0.0));
    }
    let plane = |v: Vec<f32>| {
        Array2::from_shape_vec((height, width), v).unwrap_or_else(|_| Array2::zeros((height, width)))
    };
    Headroom {
        down: plane(down),
        up: plane(up),
    }
}

/// The [`Headroom`] of every pixel of an image.
pub fn headroom(image: &DynamicImage) -> Headroom {
    let (w, h) = (image.width() as usize, image.height() as usize);
    match image {
        DynamicImage::ImageLuma8(b) => headroom_of(b.as_raw(), 1, false, w, h),
        DynamicImage::ImageLumaA8(b) => headroom_of(b.as_raw(), 2, false, w, h),
        DynamicImage::ImageRgb8(b) => headroom_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba8(b) => headroom_of(b.as_raw(), 4, true, w, h),
        DynamicImage::ImageLuma16(b) => headroom_of(b.as_raw(), 1, false, w, h),
        DynamicImage::ImageLumaA16(b) => headroom_of(b.as_raw(), 2, false, w, h),
        DynamicImage::ImageRgb16(b) => headroom_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba16(b) => headroom_of(b.as_raw(), 4, true, w, h),
        DynamicImage::ImageRgb32F(b) => headroom_of(b.as_raw(), 3, true, w, h),
        DynamicImage::ImageRgba32F(b) => headroom_of(b.as_raw(), 4, true, w, h),
        other => headroom(&DynamicImage::ImageRgba32F(other.to_rgba32f())),
    }
}

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
    match image {
        DynamicImage::ImageLuma8(b) => add_luma(b, 1, false, delta),
        DynamicImage::ImageLumaA8(b) => add_luma(b, 2, false, delta),
        DynamicImage::ImageRgb8(b) => add_luma(b, 3, true, delta),
        DynamicImage::ImageRgba8(b) => add_luma(b, 4, true, delta),
        DynamicImage::ImageLuma16(b) => add_luma(b, 1, false, delta),
        DynamicImage::ImageLumaA16(b) => add_luma(b, 2, false, delta),
        DynamicImage::ImageRgb16(b) => add_luma(b, 3, true, delta),
        DynamicImage::ImageRgba16(b) => add_luma(b, 4, true, delta),
        DynamicImage::ImageRgb32F(b) => add_luma(b, 3, true, delta),
        DynamicImage::ImageRgba32F(b) => add_luma(b, 4, true, delta),
        other => {
            return Err(Error::UnsupportedLayout(format!("{:?}", other.color())));
        }
    }
    Ok(())
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

/// Output rows per band of [`box_mean_of`]: each band sums its own rows'
/// horizontal windows, so no image-sized intermediate plane is needed.
const BOX_BAND_ROWS: usize = 32;

/// [`box_mean`] of `f` applied to every value of `plane`, without storing
/// the mapped plane or the horizontal sums: rows are processed in bands
/// of 32 (plus the window's margin), in parallel. Same arithmetic, in the
/// same order, as a whole-plane pass.
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
    let window = |i: usize, n: usize| (i.saturating_sub(radius), (i + radius + 1).min(n));
    let inverse_width: Vec<f32> = (0..w)
        .map(|x| {
            let (lo, hi) = window(x, w);
            1.0 / (hi - lo) as f32
        })
        .collect();
    let span = 2 * radius + 1;
    let horizontal_row = |row_in: &[f32], row_out: &mut [f32]| {
        if w > span {
            // Interior: the sum of 2r+1 shifted copies of the row, which
            // the compiler vectorises.
            let interior = row_out.get_mut(radius..w - radius).unwrap_or_default();
            for offset in 0..span {
                for (o, v) in interior.iter_mut().zip(row_in.iter().skip(offset)) {
                    *o += v;
                }
            }
        }
        for (x, (out, inverse)) in row_out.iter_mut().zip(&inverse_width).enumerate() {
            if w <= span || x < radius || x >= w - radius {
                let (lo, hi) = window(x, w);
                *out = row_in.get(lo..hi).unwrap_or_default().iter().sum::<f32>();
            }
            *out *= inverse;
        }
    };
    let mut out = vec![0.0f32; h * w];
    out.par_chunks_mut(BOX_BAND_ROWS * w)
        .enumerate()
        .for_each(|(band, band_out)| {
            let first = band * BOX_BAND_ROWS;
            let last = first + band_out.len() / w;
            // Horizontal sums of every input row the band's windows reach.
            let (reach_lo, reach_hi) = (first.saturating_sub(radius), (last + radius).min(h));
            let mut horizontal = vec![0.0f32; (reach_hi - reach_lo) * w];
            let mut mapped = vec![0.0f32; w];
            let rows_in = data.chunks_exact(w).skip(reach_lo);
            for (row_out, row_in) in horizontal.chunks_exact_mut(w).zip(rows_in) {
                for (m, v) in mapped.iter_mut().zip(row_in) {
                    *m = f(*v);
                }
                horizontal_row(&mapped, row_out);
            }
            for (y, row_out) in (first..last).zip(band_out.chunks_exact_mut(w)) {
                let (lo, hi) = window(y, h);
                let rows = horizontal
                    .get((lo - reach_lo) * w..(hi - reach_lo) * w)
                    .unwrap_or_default();
                for row in rows.chunks_exact(w) {
                    for (o, v) in row_out.iter_mut().zip(row) {
                        *o += v;
                    }
                }
                let inverse_height = 1.0 / (hi - lo) as f32;
                row_out.iter_mut().for_each(|o| *o *= inverse_height);
            }
        });
    Array2::from_shape_vec((h, w), out).unwrap_or_else(|_| Array2::zeros((h, w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banded_box_means_equal_the_plain_sums() {
        // Taller than several bands, odd sizes, a radius reaching across band edges.
        let p = Plane::from_shape_fn((101, 37), |(y, x)| ((y * 31 + x * 17) % 23) as f32 - 7.5);
        for radius in [0, 1, 3] {
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
    use image::{ImageBuffer, Rgb, Rgba};

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
