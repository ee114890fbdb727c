//! Does a received image show the original its mark was traced to?
//!
//! A mark says which delivery an image came from. It does not prove that
//! the image *is* that delivery. Whoever holds one marked image can
//! estimate its mark and add it to another picture: the copy attack
//! (Kutter, Voloshynovskiy and Herrigel, "The watermark copy attack",
//! SPIE 3971, 2000). A keyed mark does not prevent that, because the
//! copier never needs the key. The defence is to look at the picture too:
//! a leak of asset X shows asset X.
//!
//! [`compare_content`] makes that look measurable. It takes the geometry
//! the detector recovered (scale, rotation, mirror), and undoes it on the
//! received image at a working resolution of a few hundred pixels. It then
//! finds the translation (where the crop lies) by phase correlation with
//! the original. Last, it measures the normalised correlation of the two
//! images' detail where they overlap, each block of the picture read at
//! the shift an affine field fitted to the blocks' own best shifts gives
//! it (which follows a perspective of a few percent). Detail here means
//! each image minus its local mean, so broad shading and flat fields count
//! for nothing.
//!
//! It is a comparison of pictures, not a statistical test. On the corpus a
//! leak of the asset correlates 0.64 or more through crops, halving,
//! rotations, screenshots, perspectives and JPEG 75, and two different
//! pictures 0.33 at most ([`SHOWS_ORIGINAL`] lies between).

use std::borrow::Cow;

use image::imageops::{interpolate_bilinear, FilterType};
use image::{ImageBuffer, Luma, Rgb, RgbImage};
use rustfft::num_complex::Complex32;
use serde::Serialize;
use tattle_core::plane::{box_mean, Plane};

use crate::sync::{Fft2, Geometry, Sampler};

/// The received image's footprint in the original is compared at most
/// this many working pixels a side: enough detail to align and correlate,
/// and a transform of well under a second.
const WORK_SIDE: f64 = 512.0;
/// The original is downscaled to at most this many pixels a side, which
/// bounds the transform when a small crop comes from a large frame.
const MAX_ORIGINAL_SIDE: f64 = 1024.0;
/// Radius, in working pixels, of the local mean taken away to leave the
/// detail.
const DETAIL_RADIUS: usize = 4;
/// How far the phase correlation whitens the cross-power spectrum: fully
/// (1) sharpens the peak but gives noise-only frequencies a full say,
/// which lost flat art seen in perspective; half keeps the peak and
/// weights what both images hold.
const WHITENING: f32 = 0.5;
/// Fewest overlapping working pixels for a correlation worth reporting.
const MIN_OVERLAP_PIXELS: usize = 1024;
/// Smallest share of the received image that must lie inside the original
/// for a correlation worth reporting. A leak lies inside its asset, but
/// for the borders of a screenshot or letterbox; a chance alignment of two
/// different pictures at the edge of both (a few percent of overlap) can
/// correlate 0.3 (measured).
const MIN_OVERLAP_SHARE: f64 = 0.25;
/// Correlation from which the received image is said to show the
/// original. Measured on the corpus (docs/BENCHMARKS.md, "Content
/// comparison"): leaks of the asset through 18 of the benchmark's attacks
/// read 0.64 or more, different pictures 0.33 at most.
pub const SHOWS_ORIGINAL: f64 = 0.5;

/// How closely a received image shows an original, and where it lies in
/// it.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// use tattle_core::plane::luma;
/// use tattle_detect::{compare_content, Geometry};
///
/// // Patches of 9x7 pixels of hashed grey.
/// let picture = |seed: u32| {
///     DynamicImage::ImageRgb8(RgbImage::from_fn(400, 300, |x, y| {
///         let h = (x / 9).wrapping_mul(0x9e37_79b9) ^ (y / 7).wrapping_mul(0x85eb_ca6b) ^ seed;
///         let v = (h.wrapping_mul(0xc2b2_ae35) >> 24) as u8;
///         image::Rgb([v, v, v])
///     }))
/// };
/// let original = luma(&picture(0));
/// // A crop of it, 100 pixels in from the left and 50 from the top.
/// let crop = luma(&picture(0).crop_imm(100, 50, 200, 200));
/// let same = compare_content(&original, &crop, &Geometry::unchanged()).unwrap();
/// assert!(same.shows_original);
/// assert!((same.offset_x - 100.0).abs() <= 1.0 && (same.offset_y - 50.0).abs() <= 1.0);
/// // Another picture with the same statistics.
/// let other = luma(&picture(97).crop_imm(100, 50, 200, 200));
/// assert!(!compare_content(&original, &other, &Geometry::unchanged()).unwrap().shows_original);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ContentMatch {
    /// Normalised correlation of the two images' detail where they
    /// overlap, from −1 to 1.
    pub correlation: f64,
    /// Where the received image's top-left corner lies in the original, in
    /// original pixels: the whole offset, where the mark's geometry knows
    /// it only modulo the tile.
    pub offset_x: f64,
    /// Vertical part of the offset.
    pub offset_y: f64,
    /// Share of the received image that lies inside the original.
    pub overlap: f64,
    /// Whether the correlation reaches [`SHOWS_ORIGINAL`].
    pub shows_original: bool,
}

impl ContentMatch {
    /// `original` as the received image shows it: an image of the
    /// received image's size, `width` × `height`, each of whose pixels shows
    /// the original where this match and `geometry` (the one the match was
    /// found under) place it, and a grey checkerboard where the received
    /// image shows something outside the original (a letterbox, a
    /// screenshot's desktop). Put beside the received image, it shows a
    /// person what the correlation measured.
    ///
    /// The map is the geometry's scale, rotation and mirror with the
    /// match's offset; a perspective the geometry reports is left out, so
    /// an image seen at an angle lines up at its centre and drifts by up
    /// to [`Geometry::perspective_percent`] towards its edges.
    ///
    /// ```
    /// use image::{DynamicImage, RgbImage};
    /// use tattle_core::plane::luma;
    /// use tattle_detect::{compare_content, Geometry};
    ///
    /// let original = RgbImage::from_fn(400, 300, |x, y| {
    ///     let h = (x / 9).wrapping_mul(0x9e37_79b9) ^ (y / 7).wrapping_mul(0x85eb_ca6b);
    ///     let v = (h.wrapping_mul(0xc2b2_ae35) >> 24) as u8;
    ///     image::Rgb([v, v / 2, 255 - v])
    /// });
    /// // A crop of it, 100 pixels in from the left and 50 from the top.
    /// let crop = image::imageops::crop_imm(&original, 100, 50, 200, 200).to_image();
    /// let geometry = Geometry::unchanged();
    /// let plane = |image: &RgbImage| luma(&DynamicImage::ImageRgb8(image.clone()));
    /// let found = compare_content(&plane(&original), &plane(&crop), &geometry).unwrap();
    /// let shown = found.original_as_received(&original, &geometry, 200, 200);
    /// assert_eq!(shown.dimensions(), (200, 200));
    /// let (a, b) = (shown.get_pixel(20, 30), crop.get_pixel(20, 30));
    /// assert!(a.0.iter().zip(b.0).all(|(a, b)| a.abs_diff(b) <= 2));
    /// ```
    pub fn original_as_received(
        &self,
        original: &RgbImage,
        geometry: &Geometry,
        width: u32,
        height: u32,
    ) -> RgbImage {
        let forward = original_to_received(geometry);
        let checker = |x: u32, y: u32| {
            let v = if (x / CHECKER + y / CHECKER) % 2 == 0 {
                96
            } else {
                160
            };
            Rgb([v; 3])
        };
        let Some(inverse) = invert(forward) else {
            return RgbImage::from_fn(width, height, checker);
        };
        // Sampling a larger original at the received image's pixels would
        // alias: shrink it to about the received scale first.
        let shrink = forward_scale(forward).min(1.0);
        let (ow, oh) = original.dimensions();
        let (sw, sh) = (
            ((f64::from(ow) * shrink).round() as u32).max(1),
            ((f64::from(oh) * shrink).round() as u32).max(1),
        );
        let source = if (sw, sh) == (ow, oh) {
            Cow::Borrowed(original)
        } else {
            Cow::Owned(image::imageops::resize(original, sw, sh, FilterType::Triangle))
        };
        let (kx, ky) = (f64::from(sw) / f64::from(ow), f64::from(sh) / f64::from(oh));
        RgbImage::from_fn(width, height, |x, y| {
            let (px, py) = apply(inverse, (f64::from(x) + 0.5, f64::from(y) + 0.5));
            let (px, py) = (px + self.offset_x, py + self.offset_y);
            let (sx, sy) = (px * kx - 0.5, py * ky - 0.5);
            let inside = px >= 0.0 && py >= 0.0 && px <= f64::from(ow) && py <= f64::from(oh);
            let clamp = |v: f64, n: u32| v.clamp(0.0, f64::from(n - 1)) as f32;
            if inside {
                interpolate_bilinear(&*source, clamp(sx, sw), clamp(sy, sh)).unwrap_or_else(|| checker(x, y))
            } else {
                checker(x, y)
            }
        })
    }
}

/// Side, in pixels, of the squares that mark where
/// [`ContentMatch::original_as_received`] has no original to show.
const CHECKER: u32 = 16;

/// Compares `received` with `original` (both luma planes) under the
/// geometric change `geometry` that maps the original onto the received
/// image, as the detector reports it (its offset is not used: the
/// translation is found again, whole). `None` when the two overlap in too
/// little to say, or a plane is empty. See the module docs.
pub fn compare_content(original: &Plane, received: &Plane, geometry: &Geometry) -> Option<ContentMatch> {
    let (oh, ow) = original.dim();
    let (rh, rw) = received.dim();
    if oh == 0 || ow == 0 || rh == 0 || rw == 0 {
        return None;
    }
    let forward = original_to_received(geometry);
    let inverse = invert(forward)?;
    // The received image's footprint in the original's coordinates.
    let corners = [
        (0.0, 0.0),
        (rw as f64, 0.0),
        (0.0, rh as f64),
        (rw as f64, rh as f64),
    ]
    .map(|q| apply(inverse, q));
    let low = corners.iter().fold((f64::INFINITY, f64::INFINITY), |a, p| {
        (a.0.min(p.0), a.1.min(p.1))
    });
    let high = corners
        .iter()
        .fold((f64::NEG_INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.max(p.0), a.1.max(p.1))
        });
    let span = (high.0 - low.0).max(high.1 - low.1);
    // No finer than either image: detail one of them lacks would only
    // lower the correlation.
    let f = (WORK_SIDE / span)
        .min(MAX_ORIGINAL_SIDE / ow.max(oh) as f64)
        .min(forward_scale(forward))
        .min(1.0);

    let original_work = resized(original, f, f);
    // The factors the rounded sizes give, which the canvas must share.
    let (fx, fy) = (
        original_work.ncols() as f64 / ow as f64,
        original_work.nrows() as f64 / oh as f64,
    );
    // Received pixels per working pixel: shrink the received image first
    // where the working grid is coarser than it, so that sampling it does
    // not alias.
    let received_per_work = forward_scale(forward) / fx.min(fy);
    let shrink = (1.0 / received_per_work).min(1.0);
    let received_work = resized(received, shrink, shrink);
    let (sh, sw) = received_work.dim();
    let (sx, sy) = (sw as f64 / rw as f64, sh as f64 / rh as f64);

    // The received image undone into the original's frame (its translation
    // left out), at the working resolution.
    let (ch, cw) = (
        ((high.1 - low.1) * fy).ceil().max(1.0) as usize,
        ((high.0 - low.0) * fx).ceil().max(1.0) as usize,
    );
    let standard = received_work.as_standard_layout();
    let sampler = Sampler::new(&standard);
    let mut valid = vec![false; ch * cw];
    let mut canvas = Plane::zeros((ch, cw));
    for ((y, x), value) in canvas.indexed_iter_mut() {
        let p = (low.0 + (x as f64 + 0.5) / fx, low.1 + (y as f64 + 0.5) / fy);
        let q = apply(forward, p);
        let (qx, qy) = (q.0 * sx - 0.5, q.1 * sy - 0.5);
        if qx >= 0.0 && qy >= 0.0 && qx < (sw - 1) as f64 && qy < (sh - 1) as f64 {
            *value = sampler.sample_inside(qx, qy);
            if let Some(v) = valid.get_mut(y * cw + x) {
                *v = true;
            }
        }
    }
    let canvas = detail(&canvas, &valid);
    let original_work = detail(&original_work, &vec![true; original_work.len()]);

    let shift = phase_correlation_peak(&original_work, &canvas)?;
    let found = correlation_at(&original_work, &canvas, &valid, shift)?;
    // Canvas pixel u shows original working pixel u + shift, and the
    // received image's corner, the origin of the canvas's frame, lies
    // −low from the canvas's own corner.
    Some(ContentMatch {
        correlation: found.correlation,
        offset_x: shift.1 as f64 / fx - low.0,
        offset_y: shift.0 as f64 / fy - low.1,
        overlap: found.share,
        shows_original: found.correlation >= SHOWS_ORIGINAL,
    })
}

/// The linear part (row-major, acting on `(x, y)` with y down) of the
/// change that maps the original onto the received image: the inverse of
/// how [`crate::sync`] describes a map (mirror first, then scale, then
/// rotation). The perspective is left out: the field of block shifts the
/// correlation is read under follows a few percent of it.
fn original_to_received(g: &Geometry) -> [f64; 4] {
    // Counter-clockwise on screen is a negative angle in image axes.
    let (sin, cos) = (-g.rotation_degrees.to_radians()).sin_cos();
    let m = [
        g.scale_x * cos,
        -g.scale_y * sin,
        g.scale_x * sin,
        g.scale_y * cos,
    ];
    if g.mirrored {
        [-m[0], m[1], -m[2], m[3]]
    } else {
        m
    }
}

fn apply(m: [f64; 4], (x, y): (f64, f64)) -> (f64, f64) {
    (m[0] * x + m[1] * y, m[2] * x + m[3] * y)
}

fn invert(m: [f64; 4]) -> Option<[f64; 4]> {
    let det = m[0] * m[3] - m[1] * m[2];
    (det.abs() > 1e-9).then(|| [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det])
}

/// Received pixels per original pixel, on average over directions.
fn forward_scale(m: [f64; 4]) -> f64 {
    (m[0] * m[3] - m[1] * m[2]).abs().sqrt()
}

/// `plane` resized by `fx` × `fy` (at least one pixel a side), filtered
/// as it shrinks; borrowed when that leaves its size as it is.
fn resized(plane: &Plane, fx: f64, fy: f64) -> Cow<'_, Plane> {
    let (h, w) = plane.dim();
    let (nw, nh) = (
        ((w as f64 * fx).round() as u32).max(1),
        ((h as f64 * fy).round() as u32).max(1),
    );
    if (nw as usize, nh as usize) == (w, h) {
        return Cow::Borrowed(plane);
    }
    // The image crate takes float samples to lie in [0, 1] and clamps
    // them there: map the plane's range onto it and back (the triangle
    // filter has no negative lobes, so nothing leaves the range).
    let (low, high) = plane
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let range = (high - low).max(f32::MIN_POSITIVE);
    let values = plane
        .as_standard_layout()
        .iter()
        .map(|v| (v - low) / range)
        .collect();
    let Some(buffer) = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(w as u32, h as u32, values) else {
        return Cow::Borrowed(plane);
    };
    let small = image::imageops::resize(&buffer, nw, nh, FilterType::Triangle);
    let values = small.into_raw().into_iter().map(|v| low + v * range).collect();
    Plane::from_shape_vec((nh as usize, nw as usize), values).map_or(Cow::Borrowed(plane), Cow::Owned)
}

/// The detail of `plane` where `valid`: its 3x3 mean minus its
/// [`DETAIL_RADIUS`] mean, then minus the mean of that, and zero
/// elsewhere. Invalid pixels are
/// filled with the valid ones' mean first, so that the border of the
/// valid region does not read as an edge.
fn detail(plane: &Plane, valid: &[bool]) -> Plane {
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (v, _) in plane.iter().zip(valid).filter(|(_, &ok)| ok) {
        sum += f64::from(*v);
        count += 1;
    }
    let fill = (sum / count.max(1) as f64) as f32;
    let mut filled = plane.clone();
    for (v, &ok) in filled.iter_mut().zip(valid) {
        if !ok {
            *v = fill;
        }
    }
    // A band: lightly smoothed, so that a misalignment under a working
    // pixel (a perspective, a rotation known to a tenth of a degree) costs
    // thin outlines little.
    let mut out = &box_mean(&filled, 1) - &box_mean(&filled, DETAIL_RADIUS);
    let mean = out
        .iter()
        .zip(valid)
        .filter(|(_, &ok)| ok)
        .map(|(v, _)| f64::from(*v))
        .sum::<f64>()
        / count.max(1) as f64;
    for (v, &ok) in out.iter_mut().zip(valid) {
        *v = if ok { *v - mean as f32 } else { 0.0 };
    }
    out
}

/// The shift `(dy, dx)` for which `canvas[u]` best matches
/// `original[u + shift]`: the peak of their phase correlation, both
/// zero-padded so that no shift wraps around.
fn phase_correlation_peak(original: &Plane, canvas: &Plane) -> Option<(isize, isize)> {
    let (oh, ow) = original.dim();
    let (ch, cw) = canvas.dim();
    let (h, w) = (oh + ch, ow + cw);
    let padded = |p: &Plane| {
        let mut out = Plane::zeros((h, w));
        let (ph, pw) = p.dim();
        out.slice_mut(ndarray::s![..ph, ..pw]).assign(p);
        out
    };
    let fft = Fft2::new(h, w);
    let a = fft.forward(&padded(original));
    let b = fft.forward(&padded(canvas));
    let cross: Vec<Complex32> = a
        .iter()
        .zip(&b)
        .map(|(a, b)| {
            let c = a * b.conj();
            let norm = c.norm().powf(WHITENING);
            if norm > f32::EPSILON {
                c / norm
            } else {
                Complex32::new(0.0, 0.0)
            }
        })
        .collect();
    let surface = fft.inverse_real(cross);
    let (index, _) = surface
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let (dy, dx) = (index / w, index % w);
    // Shifts past the original's extent are negative ones, wrapped.
    let signed = |d: usize, n: usize, extent: usize| {
        if d + extent > n {
            d as isize - n as isize
        } else {
            d as isize
        }
    };
    Some((signed(dy, h, ch), signed(dx, w, cw)))
}

/// The normalised correlation of `canvas[u]` with `original[u + shift]`,
/// over the pixels where both are defined and away from either's border
/// (a border is an edge in one image and not in the other), and the share
/// of the canvas's pixels that covers.
///
/// A perspective, or a rotation known to a tenth of a degree, moves parts
/// of the picture by a few working pixels against others, so one shift
/// does not line up the whole. Each block of [`BLOCK`] working pixels first
/// finds the shift within [`LOCAL_REACH`] of `shift` where it correlates
/// best; an affine field of shifts is fitted to those, weighted by how
/// much each block correlates; then every block is read at the field's
/// shift. A real leak's shifts vary smoothly and the field follows them;
/// on two different pictures the blocks' best shifts are noise, which a
/// field of six parameters cannot follow, so the chance alignments each
/// block finds alone are not counted.
struct Overlap {
    correlation: f64,
    /// The share of the canvas's inner pixels that overlap the original.
    share: f64,
}

/// Side, in working pixels, of the blocks that find their own shifts.
const BLOCK: usize = 64;
/// How far, in working pixels, a block's shift may move from the global one.
const LOCAL_REACH: isize = 6;

/// The sums a correlation is made of.
#[derive(Clone, Copy, Default)]
struct Sums {
    ab: f64,
    aa: f64,
    bb: f64,
    pixels: usize,
}

impl Sums {
    fn correlation(&self) -> f64 {
        if self.aa > 0.0 && self.bb > 0.0 {
            self.ab / (self.aa * self.bb).sqrt()
        } else {
            0.0
        }
    }

    fn add(&mut self, other: Sums) {
        self.ab += other.ab;
        self.aa += other.aa;
        self.bb += other.bb;
        self.pixels += other.pixels;
    }
}

/// The pair of planes being compared, with the canvas's usable pixels.
struct Pair<'a> {
    original: &'a Plane,
    canvas: &'a Plane,
    inner: Vec<bool>,
    margin: isize,
}

impl Pair<'_> {
    /// The sums over the canvas block at `(by, bx)` read at `shift`, every
    /// `stride`th pixel each way.
    fn block(&self, (by, bx): (usize, usize), (dy, dx): (isize, isize), stride: usize) -> Sums {
        let (oh, ow) = self.original.dim();
        let (ch, cw) = self.canvas.dim();
        let m = self.margin;
        let mut sums = Sums::default();
        for y in (by..(by + BLOCK).min(ch)).step_by(stride) {
            for x in (bx..(bx + BLOCK).min(cw)).step_by(stride) {
                let (oy, ox) = (y as isize + dy, x as isize + dx);
                if !self.inner.get(y * cw + x).copied().unwrap_or(false)
                    || oy < m
                    || ox < m
                    || oy >= oh as isize - m
                    || ox >= ow as isize - m
                {
                    continue;
                }
                let (Some(&a), Some(&b)) = (
                    self.original.get((oy as usize, ox as usize)),
                    self.canvas.get((y, x)),
                ) else {
                    continue;
                };
                let (a, b) = (f64::from(a), f64::from(b));
                sums.ab += a * b;
                sums.aa += a * a;
                sums.bb += b * b;
                sums.pixels += 1;
            }
        }
        sums
    }

    /// The shift within [`LOCAL_REACH`] of `around` where the block
    /// correlates best, with that correlation (on every second pixel each
    /// way: the detail is smooth at that scale).
    fn best_shift(&self, corner: (usize, usize), around: (isize, isize)) -> Option<((isize, isize), f64)> {
        let mut best: Option<((isize, isize), f64)> = None;
        for sy in -LOCAL_REACH..=LOCAL_REACH {
            for sx in -LOCAL_REACH..=LOCAL_REACH {
                let shift = (around.0 + sy, around.1 + sx);
                let sums = self.block(corner, shift, 2);
                if sums.pixels == 0 {
                    continue;
                }
                let score = sums.correlation();
                if best.is_none_or(|(_, b)| score > b) {
                    best = Some((shift, score));
                }
            }
        }
        best
    }
}

fn correlation_at(
    original: &Plane,
    canvas: &Plane,
    valid: &[bool],
    shift: (isize, isize),
) -> Option<Overlap> {
    let (ch, cw) = canvas.dim();
    let margin = DETAIL_RADIUS + 1;
    let pair = Pair {
        original,
        canvas,
        inner: eroded(valid, (ch, cw), margin),
        margin: margin as isize,
    };
    let corners: Vec<(usize, usize)> = (0..ch)
        .step_by(BLOCK)
        .flat_map(|by| (0..cw).step_by(BLOCK).map(move |bx| (by, bx)))
        .collect();
    let centre = |(by, bx): (usize, usize)| ((by + BLOCK / 2) as f64, (bx + BLOCK / 2) as f64);
    // Each block's own best shift, weighted by how well it correlates there.
    let found: Vec<BlockShift> = corners
        .iter()
        .filter_map(|&corner| {
            let (best, score) = pair.best_shift(corner, shift)?;
            (score > 0.0).then(|| BlockShift {
                centre: centre(corner),
                shift: best,
                weight: score * score,
            })
        })
        .collect();
    let field = ShiftField::fit(&found).unwrap_or(ShiftField::constant(shift));
    let mut total = Sums::default();
    for &corner in &corners {
        total.add(pair.block(corner, field.at(centre(corner)), 1));
    }
    let candidates = pair.inner.iter().filter(|&&v| v).count();
    let share = (total.pixels as f64 / candidates.max(1) as f64).min(1.0);
    if total.pixels < MIN_OVERLAP_PIXELS || share < MIN_OVERLAP_SHARE {
        return None;
    }
    Some(Overlap {
        correlation: total.correlation(),
        share,
    })
}

/// A block's own best shift: the block's centre `(y, x)`, the shift
/// `(dy, dx)`, and the weight of its vote.
struct BlockShift {
    centre: (f64, f64),
    shift: (isize, isize),
    weight: f64,
}

/// Shifts that vary affinely over the canvas: `(dy, dx)` at `(y, x)` is
/// `c + gy·y + gx·x` for each of the two.
#[derive(Clone, Copy, Debug)]
struct ShiftField {
    dy: [f64; 3],
    dx: [f64; 3],
}

impl ShiftField {
    fn constant((dy, dx): (isize, isize)) -> Self {
        Self {
            dy: [dy as f64, 0.0, 0.0],
            dx: [dx as f64, 0.0, 0.0],
        }
    }

    fn at(&self, (y, x): (f64, f64)) -> (isize, isize) {
        let value = |c: &[f64; 3]| (c[0] + c[1] * y + c[2] * x).round() as isize;
        (value(&self.dy), value(&self.dx))
    }

    /// The weighted least-squares field through the blocks' shifts; `None` when they do not determine one (fewer than three
    /// blocks, or all in a line).
    fn fit(samples: &[BlockShift]) -> Option<Self> {
        // Normal equations of [1, y, x] · c = shift.
        let mut normal = [[0.0f64; 3]; 3];
        let (mut rhs_y, mut rhs_x) = ([0.0f64; 3], [0.0f64; 3]);
        for &BlockShift {
            centre: (y, x),
            shift: (sy, sx),
            weight: w,
        } in samples
        {
            let basis = [1.0, y, x];
            for (row, &bi) in normal.iter_mut().zip(&basis) {
                for (cell, &bj) in row.iter_mut().zip(&basis) {
                    *cell += w * bi * bj;
                }
            }
            for ((ry, rx), &b) in rhs_y.iter_mut().zip(rhs_x.iter_mut()).zip(&basis) {
                *ry += w * b * sy as f64;
                *rx += w * b * sx as f64;
            }
        }
        Some(Self {
            dy: solve3(normal, rhs_y)?,
            dx: solve3(normal, rhs_x)?,
        })
    }
}

/// The solution of the 3x3 system `m · c = r` (Cramer's rule), if `m` is
/// far enough from singular.
fn solve3(m: [[f64; 3]; 3], r: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    let scale = m.iter().flatten().map(|v| v.abs()).fold(0.0, f64::max).powi(3);
    if d.abs() <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
        return None;
    }
    let column = |k: usize| {
        let mut mk = m;
        for (row, &value) in mk.iter_mut().zip(&r) {
            if let Some(cell) = row.get_mut(k) {
                *cell = value;
            }
        }
        det(mk) / d
    };
    Some([column(0), column(1), column(2)])
}

/// `mask` (row-major, `(h, w)`) with every pixel within `radius` of an
/// unset one unset too.
fn eroded(mask: &[bool], (h, w): (usize, usize), radius: usize) -> Vec<bool> {
    let set = Plane::from_shape_fn((h, w), |(y, x)| {
        if mask.get(y * w + x).copied().unwrap_or(false) {
            1.0
        } else {
            0.0
        }
    });
    // A window's mean is 1 only where all of it is set; the window is cut
    // at the plane's edges, which count as unset.
    box_mean(&set, radius)
        .indexed_iter()
        .map(|((y, x), &m)| m > 1.0 - 1e-4 && y >= radius && x >= radius && y + radius < h && x + radius < w)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, RgbImage};
    use tattle_core::plane::luma;

    /// A picture with detail at every scale: blobs of random grey, their
    /// edges, and fine noise, different for every `seed`.
    fn picture(seed: u64, width: u32, height: u32) -> DynamicImage {
        let hash = |x: u64, y: u64, s: u64| {
            let mut v = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ y.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ s;
            v ^= v >> 31;
            v = v.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            (v >> 40) as f32 / (1u64 << 24) as f32
        };
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            let (x, y) = (u64::from(x), u64::from(y));
            // Blob grids placed by the seed, so that two pictures do not
            // share their edges.
            let (dx, dy) = (seed * 11 % 23, seed * 5 % 17);
            let blob = hash((x + dx) / 23, (y + dy) / 17, seed) * 150.0
                + hash((x + dy) / 7, (y + dx) / 5, seed + 1) * 90.0;
            let v = (blob + hash(x, y, seed + 2) * 8.0).min(255.0) as u8;
            image::Rgb([v, v, v])
        }))
    }

    fn geometry(scale: f64, rotation_degrees: f64, mirrored: bool) -> Geometry {
        Geometry {
            scale_x: scale,
            scale_y: scale,
            rotation_degrees,
            mirrored,
            ..Geometry::default()
        }
    }

    #[test]
    fn a_crop_mirrored_and_shrunk_is_found_where_it_was_cut() {
        let original = picture(1, 640, 480);
        let cut = original.crop_imm(200, 120, 360, 300);
        let received = cut
            .fliph()
            .resize_exact(180, 150, image::imageops::FilterType::CatmullRom);
        let found = compare_content(&luma(&original), &luma(&received), &geometry(0.5, 0.0, true)).unwrap();
        assert!(found.shows_original && found.correlation > 0.9, "{found:?}");
        // Mirrored, the received image's top-left corner is the cut's top-right.
        assert!(
            (found.offset_x - 560.0).abs() <= 2.0 && (found.offset_y - 120.0).abs() <= 2.0,
            "{found:?}"
        );
        assert!(found.overlap > 0.95, "{found:?}");
    }

    /// Mean absolute difference of two images' luma over the pixels at
    /// least `margin` from their edges.
    fn mean_difference(a: &RgbImage, b: &RgbImage, margin: u32) -> f64 {
        let (a, b) = (
            luma(&DynamicImage::ImageRgb8(a.clone())),
            luma(&DynamicImage::ImageRgb8(b.clone())),
        );
        let (h, w) = a.dim();
        let m = margin as usize;
        let inner = a.slice(ndarray::s![m..h - m, m..w - m]);
        let other = b.slice(ndarray::s![m..h - m, m..w - m]);
        inner
            .iter()
            .zip(other.iter())
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / inner.len() as f64
    }

    #[test]
    fn the_original_is_drawn_as_the_received_image_shows_it() {
        let original = picture(8, 640, 480);
        let received = original
            .crop_imm(200, 120, 360, 300)
            .fliph()
            .resize_exact(180, 150, image::imageops::FilterType::CatmullRom)
            .to_rgb8();
        let g = geometry(0.5, 0.0, true);
        let plane = |i: &RgbImage| luma(&DynamicImage::ImageRgb8(i.clone()));
        let found = compare_content(&luma(&original), &plane(&received), &g).unwrap();
        let shown = found.original_as_received(&original.to_rgb8(), &g, 180, 150);
        assert!(mean_difference(&shown, &received, 2) < 8.0);
        // Unmirrored, the same pixels no longer agree: the test can tell.
        let wrong = found.original_as_received(&original.to_rgb8(), &geometry(0.5, 0.0, false), 180, 150);
        assert!(mean_difference(&wrong, &received, 2) > 20.0);
    }

    #[test]
    fn what_lies_outside_the_original_is_drawn_as_a_checkerboard() {
        let original = picture(9, 320, 240);
        // Letterboxed: 40 black rows above and below the whole picture.
        let mut received = RgbImage::new(320, 320);
        image::imageops::replace(&mut received, &original.to_rgb8(), 0, 40);
        let g = Geometry::unchanged();
        let found = compare_content(
            &luma(&original),
            &luma(&DynamicImage::ImageRgb8(received.clone())),
            &g,
        )
        .unwrap();
        let shown = found.original_as_received(&original.to_rgb8(), &g, 320, 320);
        assert_eq!(shown.get_pixel(5, 5).0, [96; 3]);
        assert_eq!(shown.get_pixel(5 + CHECKER, 5).0, [160; 3]);
        assert_eq!(shown.get_pixel(100, 100), received.get_pixel(100, 100));
    }

    #[test]
    fn a_turned_copy_shows_the_original() {
        let original = picture(2, 640, 480);
        let received = tattle_attacks::rotate_crop(&original, 5.0).unwrap();
        // Turned clockwise on screen: −5° as the detector reports it.
        let found = compare_content(&luma(&original), &luma(&received), &geometry(1.0, -5.0, false)).unwrap();
        assert!(found.shows_original, "{found:?}");
        // Turned the wrong way, the same picture no longer lines up.
        let wrong = compare_content(&luma(&original), &luma(&received), &geometry(1.0, 5.0, false)).unwrap();
        assert!(!wrong.shows_original, "{wrong:?}");
    }

    #[test]
    fn another_picture_does_not_show_the_original() {
        let original = picture(3, 640, 480);
        for (seed, g) in [
            (4, geometry(1.0, 0.0, false)),
            (5, geometry(0.75, 2.0, false)),
            (6, geometry(1.0, 0.0, true)),
        ] {
            let other = picture(seed, 480, 360);
            let found = compare_content(&luma(&original), &luma(&other), &g).unwrap();
            assert!(found.correlation < 0.2, "{found:?}");
            assert!(!found.shows_original);
        }
    }

    #[test]
    fn too_little_overlap_or_nothing_to_compare_gives_none() {
        let original = luma(&picture(7, 320, 240));
        let speck = luma(&picture(7, 320, 240).crop_imm(10, 10, 12, 12));
        assert_eq!(compare_content(&original, &speck, &Geometry::unchanged()), None);
        let empty = Plane::zeros((0, 0));
        assert_eq!(compare_content(&original, &empty, &Geometry::unchanged()), None);
        assert_eq!(compare_content(&empty, &original, &Geometry::unchanged()), None);
        let degenerate = geometry(0.0, 0.0, false);
        assert_eq!(compare_content(&original, &original, &degenerate), None);
    }
}
