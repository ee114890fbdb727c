//! The search's window of the received image, and its resampling into
//! canonical coordinates.

use rayon::prelude::*;
use tattle_core::dct::BLOCK;
use tattle_core::layout::TILE;
use tattle_core::plane::Plane;

use super::{busiest_window, describe, Geometry, Linear, Orientation, Perspective, CANONICAL_MAX_PIXELS};

/// The part of the received image the search works on: all of it, or, for
/// a frame larger than the search's pixel budget, the most textured
/// rectangle of that area with the frame's proportions. The budget bounds
/// the search's memory and time; a 4K frame's worth of tile copies (the
/// default budget) carries the mark as well as a whole 4K frame does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
    /// Width and height of the received image.
    pub image: (usize, usize),
}

impl Window {
    /// The whole `width`×`height` image.
    pub fn whole(width: usize, height: usize) -> Self {
        Self {
            left: 0,
            top: 0,
            width,
            height,
            image: (width, height),
        }
    }

    /// The whole image if it has at most `max_pixels`, else the window of
    /// that area on the 8x8 block grid whose blocks have the largest total
    /// weight. `block_weights` holds the mean perceptual mask of every
    /// whole block, row by row (`height / 8` rows of `width / 8`).
    pub fn busiest(block_weights: &Plane, width: usize, height: usize, max_pixels: usize) -> Self {
        if width.saturating_mul(height) <= max_pixels {
            return Self::whole(width, height);
        }
        let shrink = (max_pixels as f64 / (width as f64 * height as f64)).sqrt();
        let on_grid = |v: usize| v / BLOCK * BLOCK;
        // Keep the proportions, but never thinner than a couple of tiles.
        let win_h = on_grid((height as f64 * shrink) as usize)
            .max(2 * TILE)
            .min(on_grid(height));
        let win_w = on_grid((max_pixels / win_h.max(1)).min(width));
        let win_h = on_grid((max_pixels / win_w.max(1)).min(height));
        let (bx, by) = busiest_window(block_weights, (win_w / BLOCK, win_h / BLOCK), 1);
        Self {
            left: bx * BLOCK,
            top: by * BLOCK,
            width: win_w,
            height: win_h,
            image: (width, height),
        }
    }
}

/// An image resampled into canonical coordinates: tiles square and 128
/// pixels, so that only the lattice's symmetries and the tile phase remain.
pub(crate) struct Canonical<'a> {
    /// The received image itself when no map is undone.
    pub plane: std::borrow::Cow<'a, Plane>,
    linear: Linear,
    perspective: Perspective,
    /// How far the plane's pixels were moved off the map's own grid (see
    /// [`Canonical::resample_offset`]).
    offset: (f64, f64),
    /// Canonical coordinates of the plane's pixel (0, 0), relative to the centre.
    min: (f64, f64),
    /// Centre of the received image, in its pixels: canonical coordinates
    /// are anchored to the whole image even when a window of it is undone.
    centre: (f64, f64),
}

impl<'a> Canonical<'a> {
    /// The received image as it is; `luma` is `window` of it.
    pub fn identity(luma: &'a Plane, window: Window) -> Self {
        let centre = window_centre(window);
        Self {
            plane: std::borrow::Cow::Borrowed(luma),
            linear: Linear::IDENTITY,
            perspective: Perspective::NONE,
            offset: (0.0, 0.0),
            min: (window.left as f64 - centre.0, window.top as f64 - centre.1),
            centre,
        }
    }

    /// Resamples `luma`, which is `window` of the received image, through
    /// `linear` (canonical → image), bicubically, clamping at the borders.
    pub fn resample(luma: &Plane, window: Window, linear: Linear) -> Option<Self> {
        Self::resample_offset(luma, window, linear, (0.0, 0.0))
    }

    /// [`Canonical::resample`], the plane's pixels moved by `offset`
    /// canonical pixels: pixel `(u, v)` holds what pixel `(u + offset.0,
    /// v + offset.1)` would have held.
    pub fn resample_offset(luma: &Plane, window: Window, linear: Linear, offset: (f64, f64)) -> Option<Self> {
        Self::resample_through(luma, window, linear, Perspective::NONE, offset)
    }

    /// [`Canonical::resample_offset`] with `perspective` undone before `linear`.
    pub fn resample_through(
        luma: &Plane,
        window: Window,
        linear: Linear,
        perspective: Perspective,
        offset: (f64, f64),
    ) -> Option<Self> {
        let inverse = linear.inverse()?;
        let centre = window_centre(window);
        let (left, top) = (window.left as f64, window.top as f64);
        let (right, bottom) = (left + window.width as f64, top + window.height as f64);
        let corners = [(left, top), (right, top), (left, bottom), (right, bottom)].map(|(x, y)| {
            let (u, v) = inverse.apply(x - centre.0, y - centre.1);
            perspective.invert(u, v)
        });
        let (min_x, max_x) = corners
            .iter()
            .fold((f64::MAX, f64::MIN), |a, c| (a.0.min(c.0), a.1.max(c.0)));
        let (min_y, max_y) = corners
            .iter()
            .fold((f64::MAX, f64::MIN), |a, c| (a.0.min(c.1), a.1.max(c.1)));
        let (mut out_w, mut out_h) = ((max_x - min_x).round() as usize, (max_y - min_y).round() as usize);
        let (h, w) = luma.dim();
        if out_w < 8 || out_h < 8 || out_w.saturating_mul(out_h) > 16 * (w * h).max(1) {
            return None;
        }
        // A map that enlarges a large image is undone on a central part only:
        // a few megapixels carry the mark many times over.
        let area = (out_w * out_h) as f64;
        let (mut min_x, mut min_y) = (min_x, min_y);
        if area > CANONICAL_MAX_PIXELS {
            let shrink = (CANONICAL_MAX_PIXELS / area).sqrt();
            let (new_w, new_h) = ((out_w as f64 * shrink) as usize, (out_h as f64 * shrink) as usize);
            min_x += (out_w - new_w) as f64 / 2.0;
            min_y += (out_h - new_h) as f64 / 2.0;
            (out_w, out_h) = (new_w, new_h);
        }
        let (min_x, min_y) = (min_x + offset.0, min_y + offset.1);
        let standard = luma.as_standard_layout();
        let sampler = Sampler::new(&standard);
        // From image coordinates (pixel corners) to indices into `luma`.
        let (to_x, to_y) = (centre.0 - left - 0.5, centre.1 - top - 0.5);
        let start_of_row = |v: usize| {
            let (x, y) = linear.apply(0.5 + min_x, v as f64 + 0.5 + min_y);
            (x + to_x, y + to_y)
        };
        let plane = if !perspective.is_none() {
            sampler.resample_mapped((out_h, out_w), |u, v| {
                let (cx, cy) = perspective.apply(u as f64 + 0.5 + min_x, v as f64 + 0.5 + min_y);
                let (x, y) = linear.apply(cx, cy);
                (x + to_x, y + to_y)
            })
        } else if linear.m[1] == 0.0 && linear.m[2] == 0.0 {
            sampler.resample_axis_aligned((out_h, out_w), start_of_row(0).0, linear.m[0], |v| {
                start_of_row(v).1
            })
        } else {
            sampler.resample((out_h, out_w), start_of_row, (linear.m[0], linear.m[2]))
        };
        Some(Self {
            plane: std::borrow::Cow::Owned(plane),
            linear,
            perspective,
            offset,
            min: (min_x, min_y),
            centre,
        })
    }

    /// The map from canonical to received-image coordinates.
    pub fn linear(&self) -> Linear {
        self.linear
    }

    /// The perspective undone before the linear map.
    pub fn perspective(&self) -> Perspective {
        self.perspective
    }

    /// The canonical coordinates of the plane's top-left corner, relative
    /// to the received image's centre.
    pub fn origin(&self) -> (f64, f64) {
        self.min
    }

    /// The offset this plane was resampled with: with [`Canonical::linear`]
    /// and [`Canonical::perspective`], what rebuilds it.
    pub fn offset(&self) -> (f64, f64) {
        self.offset
    }

    /// Where the point `(x, y)` of the received image (pixel corners) lies
    /// in the canonical plane turned by `orientation`.
    pub fn oriented_point(&self, orientation: Orientation, x: f64, y: f64) -> (f64, f64) {
        let (h, w) = self.plane.dim();
        let canonical = self
            .linear
            .inverse()
            .map(|inv| {
                let (u, v) = inv.apply(x - self.centre.0, y - self.centre.1);
                self.perspective.invert(u, v)
            })
            .unwrap_or((0.0, 0.0));
        orientation.map_point(
            canonical.0 - self.min.0,
            canonical.1 - self.min.1,
            w as f64,
            h as f64,
        )
    }

    /// The geometry found when `orientation` and a tile starting at
    /// `origin` (in the oriented plane) line the mark up.
    pub fn geometry(&self, orientation: Orientation, origin: (usize, usize)) -> Geometry {
        let (scale_x, scale_y, rotation_degrees, mirrored) = describe(&self.linear, orientation);
        // Where the received image's top-left corner lands in the oriented
        // canonical plane, then in the original (modulo a tile).
        let (u, v) = self.oriented_point(orientation, 0.0, 0.0);
        let t = TILE as f64;
        // Across the plane, 1 + g·cx + h·cy changes by |g|·width + |h|·height.
        let (h, w) = self.plane.dim();
        let Perspective { g, h: p } = self.perspective;
        Geometry {
            scale_x,
            scale_y,
            rotation_degrees,
            mirrored,
            offset_x: (u - origin.0 as f64).rem_euclid(t),
            offset_y: (v - origin.1 as f64).rem_euclid(t),
            perspective_percent: 100.0 * (g.abs() * w as f64 + p.abs() * h as f64),
        }
    }

    /// The tile origin in the oriented plane that puts the received
    /// image's top-left corner at `offset` in the tile: the inverse of
    /// [`Canonical::geometry`]'s offset, for another canonical plane of the
    /// same map.
    pub fn origin_for(&self, orientation: Orientation, offset: (f64, f64)) -> (usize, usize) {
        let (u, v) = self.oriented_point(orientation, 0.0, 0.0);
        let at = |p: f64, o: f64| ((p - o).rem_euclid(TILE as f64).round() as usize) % TILE;
        (at(u, offset.0), at(v, offset.1))
    }
}

/// Centre of the received image a window belongs to.
fn window_centre(window: Window) -> (f64, f64) {
    (window.image.0 as f64 / 2.0, window.image.1 as f64 / 2.0)
}

/// A `(height, width)` plane whose row `v` is filled by `fill(v, row)`,
/// rows in parallel.
fn rows_in_parallel(
    (height, width): (usize, usize),
    fill: impl Fn(usize, ndarray::ArrayViewMut1<f32>) + Sync,
) -> Plane {
    let mut plane = Plane::zeros((height, width));
    plane
        .axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(v, row)| fill(v, row));
    plane
}

/// Bilinear sampling of a standard-layout plane, clamped at the borders.
pub(crate) struct Sampler<'a> {
    data: &'a [f32],
    width: usize,
    height: usize,
}

/// `index + 1`, back to 0 at `period`: a tile's row or column counter.
#[inline]
pub(super) fn advance_wrapping(index: &mut usize, period: usize) {
    *index += 1;
    if *index == period {
        *index = 0;
    }
}

impl<'a> Sampler<'a> {
    pub(crate) fn new(plane: &'a ndarray::ArrayBase<ndarray::CowRepr<'a, f32>, ndarray::Ix2>) -> Self {
        let (height, width) = plane.dim();
        Self {
            data: plane.as_slice().unwrap_or(&[]),
            width,
            height,
        }
    }

    /// Whether the data holds the whole `width × height` plane, and it is
    /// not empty: the cubic taps index it without further checks.
    fn is_well_formed(&self) -> bool {
        self.data.len() == self.width * self.height && self.width > 0 && self.height > 0
    }

    /// The bilinear sample at a point known to lie inside `[0, w−1) × [0, h−1)`.
    #[inline]
    pub(crate) fn sample_inside(&self, x: f64, y: f64) -> f32 {
        let (column, row) = (Tap::at(x), Tap::at(y));
        let i = row.index as usize * self.width + column.index as usize;
        match (
            self.data.get(i..i + 2),
            self.data.get(i + self.width..i + self.width + 2),
        ) {
            (Some(&[a, b]), Some(&[c, d])) => bilinear([a, b, c, d], column.weight, row.weight),
            _ => 0.0,
        }
    }

    /// The two rows of the plane that samples at height `y` (inside
    /// `[0, h−1)`) read: a row of samples at constant height then reads
    /// them with [`Rows::sample_inside`], equal bit for bit to
    /// [`Sampler::sample_inside`] at the same point, without recomputing
    /// the height's index and weight for every sample.
    #[inline]
    pub(super) fn rows_at(&self, y: f64) -> Rows<'a> {
        let tap = Tap::at(y);
        let start = tap.index as usize * self.width;
        Rows {
            top: self.data.get(start..start + self.width).unwrap_or(&[]),
            bottom: self
                .data
                .get(start + self.width..start + 2 * self.width)
                .unwrap_or(&[]),
            weight: tap.weight,
        }
    }

    /// Catmull-Rom interpolation: unlike bilinear, it keeps most of the
    /// mark's upper band when a downscaled image is enlarged back.
    pub(super) fn sample_cubic(&self, x: f64, y: f64) -> f32 {
        if !self.is_well_formed() {
            return 0.0;
        }
        // Away from the edges no tap is clamped, and each row's four taps
        // are neighbours: read them as one slice rather than sixteen
        // clamped and checked indices, and floor the point by truncating
        // it (it is positive) rather than through the C library. Every
        // turned map's reading of a whole frame samples here (8.5 million
        // samples at 3840x2160), the same sums in the same order as
        // [`Sampler::sample_cubic_clamped`].
        if x >= 1.0 && y >= 1.0 && x < self.width as f64 - 2.0 && y < self.height as f64 - 2.0 {
            let (column, row) = (x as usize, y as usize);
            let wx = catmull_rom((x - column as f64) as f32);
            let wy = catmull_rom((y - row as f64) as f32);
            let corner = (row - 1) * self.width + column - 1;
            let mut sum = 0.0;
            for (j, wyj) in wy.iter().enumerate() {
                let start = corner + j * self.width;
                if let Some(&[a, b, c, d]) = self.data.get(start..start + 4) {
                    sum += wyj * (0.0 + wx[0] * a + wx[1] * b + wx[2] * c + wx[3] * d);
                }
            }
            return sum;
        }
        self.sample_cubic_clamped(x, y)
    }

    /// [`Sampler::sample_cubic`] anywhere, its taps clamped to the plane.
    pub(super) fn sample_cubic_clamped(&self, x: f64, y: f64) -> f32 {
        if !self.is_well_formed() {
            return 0.0;
        }
        let (columns, wx) = cubic_taps(x, self.width);
        let (rows, wy) = cubic_taps(y, self.height);
        let mut sum = 0.0;
        for (row, wyj) in rows.iter().zip(wy) {
            let line = self.data.get(row * self.width..).unwrap_or(&[]);
            sum += wyj * cubic_sum(line, &columns, &wx);
        }
        sum
    }

    /// A `(height, width)` plane whose pixel `(u, v)` is [`Sampler::sample_cubic`]
    /// at `start_of_row(v) + u · step`, rows in parallel.
    pub(super) fn resample(
        &self,
        dim: (usize, usize),
        start_of_row: impl Fn(usize) -> (f64, f64) + Sync,
        step: (f64, f64),
    ) -> Plane {
        // Each row steps from its own start: the same values on any number of threads.
        rows_in_parallel(dim, |v, mut row| {
            let (mut x, mut y) = start_of_row(v);
            for o in row.iter_mut() {
                *o = self.sample_cubic(x, y);
                x += step.0;
                y += step.1;
            }
        })
    }

    /// A `(height, width)` plane whose pixel `(u, v)` is [`Sampler::sample_cubic`]
    /// at `point(u, v)`, rows in parallel: for maps that are not linear
    /// along a row.
    fn resample_mapped(
        &self,
        dim: (usize, usize),
        point: impl Fn(usize, usize) -> (f64, f64) + Sync,
    ) -> Plane {
        rows_in_parallel(dim, |v, mut row| {
            for (u, o) in row.iter_mut().enumerate() {
                let (x, y) = point(u, v);
                *o = self.sample_cubic(x, y);
            }
        })
    }

    /// [`Sampler::resample`] for a map without rotation or shear (every row
    /// starts at `x_start`, steps `x_step` and keeps `row_y(v)`), bit for
    /// bit, in two passes: each source row is filtered horizontally once
    /// for all the output rows that read it, rather than sixteen taps per
    /// output pixel. The scale and aspect searches' maps are all of this kind.
    pub(super) fn resample_axis_aligned(
        &self,
        (height, width): (usize, usize),
        x_start: f64,
        x_step: f64,
        row_y: impl Fn(usize) -> f64 + Sync,
    ) -> Plane {
        if !self.is_well_formed() {
            return Plane::zeros((height, width));
        }
        let mut x = x_start;
        let columns: Vec<([usize; 4], [f32; 4])> = (0..width)
            .map(|_| {
                let taps = cubic_taps(x, self.width);
                x += x_step;
                taps
            })
            .collect();
        let rows: Vec<([usize; 4], [f32; 4])> =
            (0..height).map(|v| cubic_taps(row_y(v), self.height)).collect();
        // Source rows read at all, and each one filtered horizontally.
        let mut read = vec![false; self.height];
        for &index in rows.iter().flat_map(|(taps, _)| taps) {
            if let Some(read) = read.get_mut(index) {
                *read = true;
            }
        }
        let mut filtered = vec![0.0f32; self.height * width];
        filtered
            .par_chunks_mut(width)
            .zip(read.par_iter())
            .enumerate()
            .filter(|(_, (_, &read))| read)
            .for_each(|(r, (out, _))| {
                let line = self.data.get(r * self.width..).unwrap_or(&[]);
                for (o, (taps, weights)) in out.iter_mut().zip(&columns) {
                    *o = cubic_sum(line, taps, weights);
                }
            });
        let mut plane = Plane::zeros((height, width));
        plane
            .axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .zip(rows.par_iter())
            .for_each(|(mut out, (taps, weights))| {
                let lines = taps.map(|r| filtered.get(r * width..(r + 1) * width).unwrap_or(&[]));
                for (u, o) in out.iter_mut().enumerate() {
                    let mut sum = 0.0;
                    for (line, weight) in lines.iter().zip(weights) {
                        sum += weight * line.get(u).copied().unwrap_or(0.0);
                    }
                    *o = sum;
                }
            });
        plane
    }
}

/// Where a bilinear sample falls along one axis: the sample before it and
/// the weight of the one after.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tap {
    index: u32,
    weight: f32,
}

impl Tap {
    /// The tap at `x`, which must lie inside the plane.
    #[inline]
    pub(super) fn at(x: f64) -> Self {
        // Through u32, which converts to and from f64 in one instruction
        // each (usize takes several); a point inside a plane fits.
        let index = x as u32;
        Self {
            index,
            weight: (x - f64::from(index)) as f32,
        }
    }
}

/// Two neighbouring rows of a plane and the weight of the lower, for
/// samples along a constant height (see [`Sampler::rows_at`]).
pub(super) struct Rows<'a> {
    top: &'a [f32],
    bottom: &'a [f32],
    weight: f32,
}

impl Rows<'_> {
    /// The bilinear sample at `column`, which must lie inside `[0, w−1)`.
    #[inline]
    pub(super) fn sample_inside(&self, column: Tap) -> f32 {
        let i = column.index as usize;
        match (self.top.get(i..i + 2), self.bottom.get(i..i + 2)) {
            (Some(&[a, b]), Some(&[c, d])) => bilinear([a, b, c, d], column.weight, self.weight),
            _ => 0.0,
        }
    }
}

/// Bilinear interpolation between `[top left, top right, bottom left,
/// bottom right]`, horizontally first: every bilinear sample of the search
/// is this one expression, so that its fast paths agree bit for bit.
#[inline]
fn bilinear([a, b, c, d]: [f32; 4], tx: f32, ty: f32) -> f32 {
    let top = a + (b - a) * tx;
    let bottom = c + (d - c) * tx;
    top + (bottom - top) * ty
}

/// The four sample indices around `x` along an axis of `len > 0` samples,
/// clamped to it, and their Catmull-Rom weights.
fn cubic_taps(x: f64, len: usize) -> ([usize; 4], [f32; 4]) {
    let floor = x.floor();
    let first = floor as i64 - 1;
    let last = len as i64 - 1;
    (
        std::array::from_fn(|i| (first + i as i64).clamp(0, last) as usize),
        catmull_rom((x - floor) as f32),
    )
}

/// One row's four taps, weighted and added left to right: the horizontal
/// half of a Catmull-Rom sample.
#[inline]
fn cubic_sum(line: &[f32], taps: &[usize; 4], weights: &[f32; 4]) -> f32 {
    let mut sum = 0.0;
    for (&tap, weight) in taps.iter().zip(weights) {
        sum += weight * line.get(tap).copied().unwrap_or(0.0);
    }
    sum
}

/// Weights of the four Catmull-Rom taps around a point `t` ∈ [0, 1) past the second.
fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}
