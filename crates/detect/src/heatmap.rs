//! Where in an image the mark was found.
//!
//! Once the search has lined the image up with the tile grid, every tile
//! of the aligned image is measured on its own and its pilot correlation
//! (a z-score, about N(0, 1) where there is no mark) is mapped back onto
//! the received image. Marked texture lights up; flat areas, which carry
//! almost nothing by design, and pasted-in or repainted regions stay dark.

use serde::Serialize;
use std::borrow::Cow;
use tattle_core::layout::{Role, Schedule, TILE};
use tattle_core::mask::{perceptual_mask, MaskParams};
use tattle_core::observe::Observation;
use tattle_core::plane::Plane;
use tattle_core::stats::normalised_correlation;

use crate::sync::{Canonical, Window};
use crate::Alignment;

/// Side, in received-image pixels, of a heat-map cell.
pub const CELL: u32 = 16;

/// The pilot's strength over the received image, cell by cell.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// use tattle_core::plane::luma;
/// use tattle_detect::{DetectOptions, Key, Payload};
/// use tattle_embed::EmbedOptions;
///
/// let img = DynamicImage::ImageRgb8(RgbImage::from_fn(512, 256, |x, y| {
///     let v = ((x * 7919 + y * 104729) % 251) as u8;
///     image::Rgb([v, v, v])
/// }));
/// let key = Key::from_bytes([7; 32]);
/// let marked = EmbedOptions::default().build(&key).unwrap().embed(&img, Payload::new(1)).unwrap();
/// let detector = DetectOptions::default().build(&key).unwrap();
/// let (found, map) = detector.locate(&luma(&marked));
/// let map = map.unwrap();
/// assert!(found.detected);
/// assert_eq!((map.columns, map.rows), (32, 16));
/// assert!(map.scores.iter().all(|z| z.is_nan() || *z > 1.0));
/// assert!(map.score_at(100, 100).is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heatmap {
    /// Side of a cell in pixels ([`CELL`]).
    pub cell: u32,
    /// Cells per row.
    pub columns: u32,
    /// Rows of cells.
    pub rows: u32,
    /// Pilot z-score of the tile under each cell, row by row; `NaN` where
    /// the cell falls outside the aligned image.
    pub scores: Vec<f32>,
}

impl Heatmap {
    /// The score of the cell holding pixel `(x, y)`.
    pub fn score_at(&self, x: u32, y: u32) -> Option<f32> {
        let (cx, cy) = (x / self.cell, y / self.cell);
        if cx >= self.columns || cy >= self.rows {
            return None;
        }
        self.scores
            .get((cy * self.columns + cx) as usize)
            .copied()
            .filter(|s| !s.is_nan())
    }
}

/// Measures every tile of the aligned image and maps the scores back.
pub(crate) fn measure(
    luma: &Plane,
    mask: &MaskParams,
    alignment: Alignment,
    schedule: &Schedule,
) -> Option<Heatmap> {
    let (rh, rw) = luma.dim();
    let whole = Window::whole(rw, rh);
    let canonical = if alignment.linear.is_near_identity()
        && alignment.perspective.is_none()
        && alignment.grid_shift == (0.0, 0.0)
    {
        Canonical::identity(luma, whole)
    } else {
        Canonical::resample_through(
            luma,
            whole,
            alignment.linear,
            alignment.perspective,
            alignment.grid_shift,
        )?
    };
    let origin = canonical.origin_for(alignment.orientation, alignment.offset);
    // Sharpened as the detection was read. The Laplacian's stencil is the
    // same under quarter turns and mirrors, so sharpening before the
    // orientation is applied equals sharpening after.
    let canonical_plane = if alignment.sharpened {
        Cow::Owned(crate::restore::sharpen(&canonical.plane))
    } else {
        Cow::Borrowed(&*canonical.plane)
    };
    let weights = perceptual_mask(&canonical_plane, mask);
    let plane = alignment.orientation.apply(&canonical_plane);
    let weights = alignment.orientation.apply(&weights);
    let (h, w) = plane.dim();
    // Tiles start at the origin, modulo a tile; partial tiles at the
    // borders are measured too (they carry fewer slots, so lower scores).
    let first = |origin: usize| origin % TILE;
    let starts = |origin: usize, size: usize| {
        let first = first(origin) as isize - TILE as isize;
        (0..)
            .map(move |k| first + k * TILE as isize)
            .take_while(move |s| *s < size as isize)
    };
    let roles = schedule.roles();
    let mut tiles = Vec::new();
    let mut tile_rows = 0;
    for y0 in starts(origin.1, h) {
        tile_rows += 1;
        for x0 in starts(origin.0, w) {
            let (ys, xs) = (y0.max(0) as usize, x0.max(0) as usize);
            let (ye, xe) = (
                ((y0 + TILE as isize) as usize).min(h),
                ((x0 + TILE as isize) as usize).min(w),
            );
            if ye <= ys + 8 || xe <= xs + 8 {
                tiles.push(f32::NAN);
                continue;
            }
            let window = |p: &Plane| p.slice(ndarray::s![ys..ye, xs..xe]).to_owned();
            let sub_origin = (
                (x0 - xs as isize).rem_euclid(TILE as isize) as usize,
                (y0 - ys as isize).rem_euclid(TILE as isize) as usize,
            );
            let observation = Observation::measure_masked(&window(&plane), &window(&weights), sub_origin);
            let z = normalised_correlation(observation.slots(), schedule.chips(), |i| {
                roles.get(i) == Some(&Role::Pilot)
            });
            tiles.push(z as f32);
        }
    }
    let tile_columns = tiles.len() / tile_rows.max(1);
    let (columns, rows) = ((rw as u32).div_ceil(CELL), (rh as u32).div_ceil(CELL));
    let offset = |origin: usize| (first(origin) as f64) - TILE as f64;
    let scores = (0..rows)
        .flat_map(|cy| (0..columns).map(move |cx| (cx, cy)))
        .map(|(cx, cy)| {
            let centre = |c: u32, size: usize| ((c * CELL) as f64 + CELL as f64 / 2.0).min(size as f64 - 0.5);
            let (u, v) = canonical.oriented_point(alignment.orientation, centre(cx, rw), centre(cy, rh));
            if u < 0.0 || v < 0.0 || u >= w as f64 || v >= h as f64 {
                return f32::NAN;
            }
            let tx = ((u - offset(origin.0)) / TILE as f64).floor() as usize;
            let ty = ((v - offset(origin.1)) / TILE as f64).floor() as usize;
            if tx >= tile_columns {
                return f32::NAN;
            }
            tiles.get(ty * tile_columns + tx).copied().unwrap_or(f32::NAN)
        })
        .collect();
    Some(Heatmap {
        cell: CELL,
        columns,
        rows,
        scores,
    })
}
