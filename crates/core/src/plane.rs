//! Luminance planes and the bridge between images and the mark.
//!
//! The mark lives in luminance only (BT.601 luma, the Y of JPEG's YCbCr),
//! in units of 8-bit grey levels whatever the image's bit depth. Embedding
//! adds the same change to R, G and B, which moves Y by exactly that change
//! and leaves Cb and Cr (the chroma a JPEG encoder subsamples) untouched;
//! where a channel would clip, the change is shrunk so that no channel
//! clips and the hue stays as it was. Alpha is never touched.

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
    /// Sample units per 8-bit grey level.
    const PER_LEVEL: f32;
    /// Largest valid sample value.
    const MAX: f32;
    fn to_f32(self) -> f32;
    fn from_f32(value: f32) -> Self;
}

impl Sample for u8 {
    const PER_LEVEL: f32 = 1.0;
    const MAX: f32 = 255.0;
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    fn from_f32(value: f32) -> Self {
        value.round().clamp(0.0, 255.0) as u8
    }
}

impl Sample for u16 {
    const PER_LEVEL: f32 = 257.0;
    const MAX: f32 = 65535.0;
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    fn from_f32(value: f32) -> Self {
        value.round().clamp(0.0, 65535.0) as u16
    }
}

impl Sample for f32 {
    const PER_LEVEL: f32 = 1.0 / 255.0;
    // Scene-referred float images have no upper bound.
    const MAX: f32 = f32::INFINITY;
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(value: f32) -> Self {
        value.max(0.0)
    }
}

/// Luma of one pixel's colour samples, in sample units.
fn pixel_luma<S: Sample>(pixel: &[S], color: bool) -> f32 {
    match (color, pixel) {
        (true, [r, g, b, ..]) => {
            LUMA_WEIGHTS[0] * r.to_f32() + LUMA_WEIGHTS[1] * g.to_f32() + LUMA_WEIGHTS[2] * b.to_f32()
        }
        (_, [y, ..]) => y.to_f32(),
        _ => 0.0,
    }
}

fn luma_of<S: Sample>(samples: &[S], channels: usize, color: bool, width: usize, height: usize) -> Plane {
    let values = samples
        .chunks_exact(channels)
        .map(|px| pixel_luma(px, color) / S::PER_LEVEL)
        .collect();
    Array2::from_shape_vec((height, width), values).unwrap_or_else(|_| Array2::zeros((height, width)))
}

fn add_luma<S: Sample>(samples: &mut [S], channels: usize, color: bool, delta: &Plane) {
    let color_channels = if color { 3 } else { 1 };
    for (px, d) in samples.chunks_exact_mut(channels).zip(delta.iter()) {
        let Some(colour) = px.get_mut(..color_channels) else {
            continue;
        };
        let (lo, hi) = colour
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s.to_f32()), hi.max(s.to_f32()))
            });
        let change = (d * S::PER_LEVEL).clamp(-lo.max(0.0), (S::MAX - hi).max(0.0));
        for s in colour.iter_mut() {
            *s = S::from_f32(s.to_f32() + change);
        }
    }
}

/// The luma plane of an image, in 8-bit grey levels (`0.0..=255.0` for
/// integer images; float images keep their range scaled by 255).
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
        let colour = px.get(..color_channels).unwrap_or(px);
        let lo = colour.iter().map(|s| s.to_f32()).fold(f32::INFINITY, f32::min);
        let hi = colour
            .iter()
            .map(|s| s.to_f32())
            .fold(f32::NEG_INFINITY, f32::max);
        down.push(lo.max(0.0) / S::PER_LEVEL);
        up.push((S::MAX - hi).max(0.0) / S::PER_LEVEL);
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
    let (h, w) = plane.dim();
    if h == 0 || w == 0 {
        return plane.clone();
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
    let mut horizontal = vec![0.0f32; h * w];
    let span = 2 * radius + 1;
    horizontal
        .par_chunks_exact_mut(w)
        .zip(data.par_chunks_exact(w))
        .for_each(|(row_out, row_in)| {
            if w > span {
                // Interior: the sum of 2r+1 shifted copies of the row, which
                // the compiler vectorises.
                let interior = &mut row_out[radius..w - radius];
                for offset in 0..span {
                    for (o, v) in interior.iter_mut().zip(&row_in[offset..]) {
                        *o += v;
                    }
                }
            }
            for (x, out) in row_out.iter_mut().enumerate() {
                if w <= span || x < radius || x >= w - radius {
                    let (lo, hi) = window(x, w);
                    *out = row_in[lo..hi].iter().sum::<f32>();
                }
                *out *= inverse_width[x];
            }
        });
    let mut out = vec![0.0f32; h * w];
    out.par_chunks_exact_mut(w).enumerate().for_each(|(y, row_out)| {
        let (lo, hi) = window(y, h);
        for row in horizontal[lo * w..hi * w].chunks_exact(w) {
            for (o, v) in row_out.iter_mut().zip(row) {
                *o += v;
            }
        }
        let inverse_height = 1.0 / (hi - lo) as f32;
        row_out.iter_mut().for_each(|o| *o *= inverse_height);
    });
    Array2::from_shape_vec((h, w), out).unwrap_or_else(|_| Array2::zeros((h, w)))
}

#[cfg(test)]
mod tests {
    use super::*;
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
