//! Geometric resynchronisation: finding the tile grid again after cropping,
//! scaling, rotation, aspect change, mirroring and re-encoding.
//!
//! The mark is a tile repeated over the whole image, so it is periodic. We
//! follow the classical two-stage scheme of periodic watermarks:
//!
//! 1. **Lattice from the autocorrelation** (Kutter, "Watermarking resisting
//!    to translation, rotation and scaling", SPIE 3528, 1998; Alattar and
//!    Meyer, ISCAS 2003). The autocorrelation of a whitened residual of the
//!    image peaks on the lattice of tile repeats, whatever the content. Its
//!    two shortest independent peak vectors give the linear part of the
//!    geometric change (scale, rotation, aspect, shear), refined by a least-
//!    squares fit over every lattice peak in reach. Nothing here uses the
//!    key: the lattice is a property of the image.
//! 2. **Grid and orientation from the keyed pilot.** The image is resampled
//!    so that tiles are square and 128 pixels again, leaving only the
//!    symmetries of a square lattice (quarter turns and mirror) and the tile
//!    phase. For each of the eight orientations, all tile copies are folded
//!    into one 128x128 tile and cross-correlated with the pilot's pixel
//!    pattern by FFT (rustfft): the peak gives the tile origin to the pixel.
//!
//! 3. **Pilot-guided brute force** when the lattice is too faint to see
//!    (small or busy images, strong downscaling): one-parameter families of
//!    maps (scale, rotation, aspect) are scanned, each map *probed* by
//!    folding a region around the image's most textured window through it
//!    and correlating with the pilot. A probe has a sample budget that
//!    grows (up to four times) on maps that shrink the image, so that it
//!    always spans about as many image pixels; it samples every canonical
//!    pixel, or every second one (against the pilot sampled the same way,
//!    at each sampling phase) to span more of the image, but never further
//!    apart than the image's own pixels on a downscaled image, where the
//!    mark lies in the image's upper frequencies. The search narrows in
//!    three stages, each on a larger region and a finer grid than the last:
//!    a coarse grid (256 samples a side), the strongest half screened at
//!    three points a third of a step apart (384), the best two refined to a
//!    twelfth of a step (512). Probes run in parallel. On an image whose
//!    shorter side the probes already span, the best map of another peak is
//!    refined too, and up to two peaks are tried on the whole image: there
//!    the probes' noise rivals a true map that the full test reads far
//!    more clearly, and the full test is cheap. Under maps that shrink the
//!    image below ×0.76 the probes read a residual whitened over 3x3
//!    windows instead of 5x5, which reads a downscaled mark more clearly.
//!    Lattice estimates are probed too before the whole image is resampled
//!    for them. On images up to 1 MP the exact halving, the commonest
//!    resize, is tried on the whole image whatever its probes read
//!    (`LIKELY_MAPS`): after halving and JPEG its probes are at the noise
//!    floor (a quarter of the mark per probe), the whole image is not.
//! 4. **Drift refinement of a brute-force map.** A grid places a map to
//!    about 0.1%, a pixel of drift at the borders of a large image. The
//!    tile shift measured to a fraction of a pixel in each quadrant of the
//!    resampled plane gives the map's remaining linear error (how far the
//!    grid has slid between quadrants), and the image is resampled once
//!    more without it (`refine_by_drift`).
//! 5. **Perspective from local drifts.** A screen photographed
//!    off-axis is a projective change: its scale varies across the frame,
//!    and one linear map lines the blocks up along a band only. To first
//!    order a perspective moves the content by terms in `cx²`, `cx·cy`
//!    and `cy²` that no linear error produces. The tile shifts of regions two tiles a side
//!    (overlapping by half) measure it: a least-squares fit of a shift, a
//!    linear error and the perspective's two terms, dropping misplaced
//!    peaks (`perspective_by_drift`). Where a map's pilot already stands
//!    out over the whole plane, the plane is resampled through the
//!    measured perspective (`Perspective`), round by round, and the
//!    strongest round is kept if it reads clearly more strongly than
//!    before. It refines a map the search found; it is not a search, and
//!    it cannot find a perspective strong enough to hide the mark from
//!    every linear map (a keystone of 4% on most of the corpus). Learned
//!    marks (StegaStamp, WAM) train against perspective instead; local
//!    resynchronisation of periodic marks goes back to the same
//!    autocorrelation literature (Ma et al., arXiv:2007.10240, 2021, for
//!    local bending).
//!
//! The statistics stay honest: the lattice is chosen from the image alone,
//! and every (lattice, orientation, shift) the search could pick counts as a
//! hypothesis in the pilot's false-positive bound (see [`HYPOTHESES`]).

use std::sync::Arc;

use ndarray::Array2;
use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::Serialize;
use tattle_core::dct::BLOCK;
use tattle_core::layout::TILE;
use tattle_core::mask::{estimate_noise_sigma, perceptual_mask_from, LocalStats, MaskParams};
use tattle_core::plane::{box_mean, Plane};

/// Lattice estimates tried besides "no geometric change".
pub const MAX_LATTICES: usize = 3;
/// Orientations of a square lattice: four quarter turns, each with and without a mirror.
pub const ORIENTATIONS: usize = 8;
/// Geometric searches by brute force along one parameter, pilot-guided:
/// (name, parameter range, coarse step ratio). See [`search_families`].
const SEARCH_STEPS: usize = 600;
/// Maps tried by refinement around the best screened maps of each family,
/// and those chosen made exact by [`refine_by_drift`].
const REFINE_STEPS: usize = Family::ALL.len() * (REFINED_PER_FAMILY * 9 + CHOSEN_PER_FAMILY);
/// Smallest pilot strength, probed on a central region, for which a map is
/// tried on the whole image.
pub(crate) const MIN_PROBE_STRENGTH: f32 = 5.5;
/// [`MIN_PROBE_STRENGTH`] where the refinement's probe already spans the
/// image's shorter side. There the probes' noise maxima reach 5.5 while a
/// true map may read less (kodim05 halved: 5.26 at the true scale, 5.48 at
/// a noise peak, pilot z 10.2 in the full test), a larger probe would see
/// nothing more, and the full test of a map is cheap.
const MIN_PROBE_STRENGTH_SMALL: f32 = 5.0;
/// Maps of each family tried on the whole image, at most: the best refined
/// map and, where the probes span the image, the best of another peak.
const CHOSEN_PER_FAMILY: usize = 2;
/// Largest canonical plane a map is undone on, in pixels.
const CANONICAL_MAX_PIXELS: f64 = (1 << 23) as f64;
/// Samples a side of the probes that decide whether a map is worth the
/// whole image.
const PROBE_SIDE: usize = 512;
/// Samples a side of the probes of the coarse brute-force grids.
const COARSE_SIDE: usize = 256;
/// Side of the image window, in pixels, the probes are centred on.
const FOCUS_WINDOW: usize = 384;
/// Samples a side of the probes that screen the strongest coarse maps.
const SCREEN_SIDE: usize = 384;
/// One coarse map in this many of each family is screened.
const SCREENED_FRACTION: usize = 2;
/// Maps probed by the screening, at most (three around each screened map).
const SCREEN_STEPS: usize = 3 * (SEARCH_STEPS / SCREENED_FRACTION + Family::ALL.len());
/// Best screened maps of each family that are always refined.
const REFINED_BEST: usize = 2;
/// Screened maps of each family that are refined, at most: the
/// [`REFINED_BEST`], and, where the probes span the image, the best of
/// another peak.
const REFINED_PER_FAMILY: usize = REFINED_BEST + 1;
/// Maps tried on the whole image whatever the probes say, upright: the
/// exact halving, the commonest resize. Its probes hold a quarter of the
/// tile copies they hold at scale 1, so after JPEG the true scale ranks
/// among false ones (8th–74th of a family's screening on the corpus at
/// ×0.5 + JPEG 75, where the best two are refined) while the whole image
/// under it gives the strongest fold peak of the search.
pub(crate) const LIKELY_MAPS: [Linear; 1] = [Linear {
    m: [0.5, 0.0, 0.0, 0.5],
}];
/// Largest image, in pixels, the [`LIKELY_MAPS`] are tried on: the
/// halving's canonical plane is four times the image, a cost only small
/// images can bear within the search's time (a larger halved image leaves
/// the probes enough of the mark to find it themselves).
pub(crate) const LIKELY_MAX_PIXELS: usize = 1 << 20;
/// Pilot hypotheses the search may choose from: every tile shift, in every
/// orientation, for the identity and each lattice estimate, plus every
/// tile shift for each map of the brute-force searches and their
/// refinements, and for the likely maps. An upper bound: fewer are tried.
pub const HYPOTHESES: f64 = (((1 + MAX_LATTICES) * ORIENTATIONS
    + SEARCH_STEPS
    + SCREEN_STEPS
    + REFINE_STEPS
    + Family::ALL.len() * CHOSEN_PER_FAMILY
    + LIKELY_MAPS.len())
    * TILE
    * TILE) as f64;

/// The geometric change the detector undid to find the mark.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Geometry {
    /// Horizontal scale of the image relative to the marked original.
    pub scale_x: f64,
    /// Vertical scale.
    pub scale_y: f64,
    /// Rotation in degrees, counter-clockwise as seen on screen.
    pub rotation_degrees: f64,
    /// The image is a mirror image of the original.
    pub mirrored: bool,
    /// Where the top-left corner of the image lies in the original, in original pixels
    /// modulo the 128-pixel tile (crops are only known up to whole tiles).
    pub offset_x: f64,
    /// Vertical part of the offset.
    pub offset_y: f64,
    /// How much the image's scale changes from one edge to the opposite
    /// one, in percent, where it was seen in perspective (a screen
    /// photographed off-axis) and the detector undid that; 0 otherwise.
    /// The scales above are those at the image's centre.
    pub perspective_percent: f64,
}

impl Geometry {
    /// No geometric change.
    pub fn unchanged() -> Self {
        Self {
            scale_x: 1.0,
            scale_y: 1.0,
            ..Self::default()
        }
    }
}

/// A linear map from canonical (tile-aligned) coordinates to image
/// coordinates: `image = centre + m · (canonical − canonical_centre)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Linear {
    /// Row-major 2x2 matrix: columns are the images of the canonical x and y unit vectors.
    pub m: [f64; 4],
}

impl Linear {
    pub const IDENTITY: Self = Self {
        m: [1.0, 0.0, 0.0, 1.0],
    };

    fn determinant(&self) -> f64 {
        self.m[0] * self.m[3] - self.m[1] * self.m[2]
    }

    fn inverse(&self) -> Option<Self> {
        let d = self.determinant();
        if d.abs() < 1e-9 {
            return None;
        }
        Some(Self {
            m: [self.m[3] / d, -self.m[1] / d, -self.m[2] / d, self.m[0] / d],
        })
    }

    fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (self.m[0] * x + self.m[1] * y, self.m[2] * x + self.m[3] * y)
    }

    /// `self · (I + E)`: the map corrected for a small linear error `E`
    /// (row-major) measured in the canonical plane it gives.
    fn with_error(&self, e: [f64; 4]) -> Self {
        let m = self.m;
        Self {
            m: [
                m[0] * (1.0 + e[0]) + m[1] * e[2],
                m[0] * e[1] + m[1] * (1.0 + e[3]),
                m[2] * (1.0 + e[0]) + m[3] * e[2],
                m[2] * e[1] + m[3] * (1.0 + e[3]),
            ],
        }
    }

    pub(crate) fn is_near_identity(&self) -> bool {
        self.m
            .iter()
            .zip(Self::IDENTITY.m)
            .all(|(a, b)| (a - b).abs() < 0.004)
    }
}

/// A perspective undone before a [`Linear`] map: the canonical point `c`
/// (relative to the canonical centre) is taken to `c / (1 + g·cx + h·cy)`,
/// and that point through the linear map to the image. The scale then
/// changes across the frame, as on a screen photographed off-axis (`h`
/// for one seen from below or above, `g` from a side), which a linear map
/// cannot follow.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Perspective {
    pub g: f64,
    pub h: f64,
}

impl Perspective {
    pub const NONE: Self = Self { g: 0.0, h: 0.0 };

    pub fn is_none(&self) -> bool {
        self.g == 0.0 && self.h == 0.0
    }

    /// Canonical coordinates (relative to the centre) to the linear map's input.
    fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let d = 1.0 + self.g * x + self.h * y;
        (x / d, y / d)
    }

    /// The inverse of [`Perspective::apply`].
    fn invert(&self, x: f64, y: f64) -> (f64, f64) {
        let d = 1.0 - self.g * x - self.h * y;
        (x / d, y / d)
    }
}

/// One of the eight symmetries of the square lattice, applied to a plane:
/// first an optional horizontal mirror, then `quarter_turns` turns
/// clockwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Orientation {
    pub mirror: bool,
    pub quarter_turns: u8,
}

impl Orientation {
    pub fn all() -> impl Iterator<Item = Self> {
        (0..8u8).map(|i| Self {
            mirror: i >= 4,
            quarter_turns: i % 4,
        })
    }

    /// Where the point `(x, y)` of a `w`×`h` plane lands after [`Orientation::apply`]
    /// (continuous coordinates: pixel corners).
    pub fn map_point(&self, x: f64, y: f64, w: f64, h: f64) -> (f64, f64) {
        let (mut x, mut y, mut w, mut h) = (x, y, w, h);
        if self.mirror {
            x = w - x;
        }
        for _ in 0..self.quarter_turns {
            // Clockwise quarter turn of a w×h plane: (x, y) → (h − y, x).
            (x, y, w, h) = (h - y, x, h, w);
        }
        let _ = (w, h);
        (x, y)
    }

    /// The pixel of a `w`×`h` plane that lands on pixel `(x, y)` of the
    /// oriented plane.
    fn source_pixel(&self, x: i64, y: i64, w: i64, h: i64) -> (i64, i64) {
        // Plane size before each turn: turns alternate width and height.
        let before_turn = |k: u8| if k % 2 == 0 { (w, h) } else { (h, w) };
        let (mut x, mut y) = (x, y);
        for k in (0..self.quarter_turns).rev() {
            let (_, height_before) = before_turn(k);
            (x, y) = (y, height_before - 1 - x);
        }
        if self.mirror {
            x = w - 1 - x;
        }
        (x, y)
    }

    /// The plane turned and mirrored.
    pub fn apply(&self, plane: &Plane) -> Plane {
        // As a strided view, copied once: the detector turns whole canonical
        // planes for every candidate it reads, and per-pixel index mapping
        // cost as much as the rest of the search on an unmarked frame.
        let mut view = plane.view();
        if self.mirror {
            view.invert_axis(ndarray::Axis(1));
        }
        for _ in 0..self.quarter_turns {
            // Clockwise: row y of the result is column y read bottom to top.
            view.invert_axis(ndarray::Axis(0));
            view = view.reversed_axes();
        }
        view.as_standard_layout().into_owned()
    }

    /// `fold(self.apply(plane))`, computed from `fold(plane)` alone: both
    /// maps are affine with unit coefficients, so tile positions map to
    /// tile positions.
    pub fn apply_to_fold(&self, folded: &Plane, plane_w: usize, plane_h: usize) -> Plane {
        let t = TILE as i64;
        Plane::from_shape_fn((TILE, TILE), |(y, x)| {
            let (sx, sy) = self.source_pixel(x as i64, y as i64, plane_w as i64, plane_h as i64);
            folded[[sy.rem_euclid(t) as usize, sx.rem_euclid(t) as usize]]
        })
    }
}

/// What to whiten the image with before looking for periodicity or the
/// pilot: the luma minus its local mean, weighted like the detector weighs
/// blocks (perceptual mask over local energy), so that flat areas and
/// strong edges do not swamp the faint periodic mark.
pub(crate) fn residual(luma: &Plane, mask: &MaskParams) -> Plane {
    Whitened::of(luma, mask).residual
}

/// A plane's perceptual mask and residual, sharing their local statistics.
pub(crate) struct Whitened {
    pub weights: Plane,
    pub residual: Plane,
}

impl Whitened {
    pub fn of(luma: &Plane, mask: &MaskParams) -> Self {
        let stats = LocalStats::of(luma, mask.radius);
        let weights = perceptual_mask_from(&stats, estimate_noise_sigma(luma), mask);
        Self::from_stats(luma, stats, weights)
    }

    /// The residual of a plane whose perceptual mask is already known.
    pub fn with_weights(luma: &Plane, weights: Plane, mask: &MaskParams) -> Self {
        Self::from_stats(luma, LocalStats::of(luma, mask.radius), weights)
    }

    fn from_stats(luma: &Plane, stats: LocalStats, weights: Plane) -> Self {
        let residual = residual_from(luma, stats, &weights);
        Self { weights, residual }
    }
}

/// The luma minus its local mean, weighted by the mask over the local
/// variance.
fn residual_from(luma: &Plane, stats: LocalStats, weights: &Plane) -> Plane {
    // The local mean's plane becomes the residual: one plane fewer.
    let LocalStats {
        mean: mut residual,
        variance,
    } = stats;
    ndarray::Zip::from(&mut residual)
        .and(luma)
        .and(weights)
        .and(&variance)
        .par_for_each(|r, &y, &w, &variance| *r = (y - *r) * (w / (variance + 4.0)));
    residual
}

/// Radius of the local statistics of the residual that probes read under
/// maps shrinking the image below [`FINE_BELOW`]: 3x3 windows, against the
/// mask's 5x5 (the weights stay the mask's). The mark of a downscaled image
/// lies higher in its spectrum, up to 3/8 cycle per pixel at ×0.5, where
/// the mark's 8x8 blocks have become 4x4: a 5x5 window spans more than one
/// of them, a 3x3 window less. At the true map of a
/// halved image (bilinear) the probes read, with the 5x5 residual and this
/// one: `photo_kodim05` 4.87 and 7.07, the tiger 5.21 and 8.85,
/// `film3d_sintel` 15.1 and 18.1, `chaosah` 9.8 and 11.7.
const FINE_RADIUS: usize = 1;

/// Scale (square root of the map's determinant) below which probes read the
/// residual over [`FINE_RADIUS`]. At ×0.8 it can lose what the 5x5 residual
/// reads: the flat gnome shown at 80% in a viewer window and recompressed,
/// 13.5 with the 5x5 residual and 5.3 with the 3x3 one, while at ×0.5 and
/// ×0.75 its outlines read as well or better (19.5 against 17.9, 19.7
/// against 19.4).
const FINE_BELOW: f64 = 0.76;

/// The residual of `luma` over [`FINE_RADIUS`], with the mask `weights`,
/// for the probes of maps that shrink the image ([`Probe::with_fine`]).
pub(crate) fn fine_residual(luma: &Plane, weights: &Plane) -> Plane {
    residual_from(luma, LocalStats::of(luma, FINE_RADIUS), weights)
}

/// Sums all 128x128 tile copies of a plane into one tile.
pub(crate) fn fold(plane: &Plane) -> Plane {
    let mut tile = Plane::zeros((TILE, TILE));
    for (y, row) in plane.rows().into_iter().enumerate() {
        let mut target = tile.row_mut(y % TILE);
        for chunk in row.axis_chunks_iter(ndarray::Axis(0), TILE) {
            target.iter_mut().zip(chunk).for_each(|(t, v)| *t += v);
        }
    }
    tile
}

/// 2-D FFTs of one size, planned once.
pub(crate) struct Fft2 {
    rows: Arc<dyn Fft<f32>>,
    cols: Arc<dyn Fft<f32>>,
    rows_inverse: Arc<dyn Fft<f32>>,
    cols_inverse: Arc<dyn Fft<f32>>,
    height: usize,
    width: usize,
}

impl Fft2 {
    pub fn new(height: usize, width: usize) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        Self {
            rows: planner.plan_fft_forward(width),
            cols: planner.plan_fft_forward(height),
            rows_inverse: planner.plan_fft_inverse(width),
            cols_inverse: planner.plan_fft_inverse(height),
            height,
            width,
        }
    }

    fn run(&self, data: &mut [Complex32], inverse: bool) {
        let (rows, cols) = if inverse {
            (&self.rows_inverse, &self.cols_inverse)
        } else {
            (&self.rows, &self.cols)
        };
        rows.process(data);
        let mut column = vec![Complex32::new(0.0, 0.0); self.height];
        for x in 0..self.width {
            for (c, d) in column.iter_mut().zip(data.iter().skip(x).step_by(self.width)) {
                *c = *d;
            }
            cols.process(&mut column);
            for (c, d) in column.iter().zip(data.iter_mut().skip(x).step_by(self.width)) {
                *d = *c;
            }
        }
    }

    pub fn forward(&self, plane: &Plane) -> Vec<Complex32> {
        let mut data: Vec<Complex32> = plane.iter().map(|&v| Complex32::new(v, 0.0)).collect();
        self.run(&mut data, false);
        data
    }

    /// Real part of the inverse transform, unscaled.
    pub fn inverse_real(&self, mut data: Vec<Complex32>) -> Plane {
        self.run(&mut data, true);
        let values = data.iter().map(|c| c.re).collect();
        Array2::from_shape_vec((self.height, self.width), values)
            .unwrap_or_else(|_| Plane::zeros((self.height, self.width)))
    }
}

/// Cross-correlates folded tiles with the pilot's pixel pattern.
pub(crate) struct PilotCorrelator {
    /// One correlator per sampling step of [`SAMPLING_STEPS`].
    by_step: Vec<SampledPilot>,
}

/// Canonical pixels between the samples of a fold, densest first.
///
/// The pilot only has frequencies up to 3/16 cycle per pixel, but a sparse
/// fold need not keep them apart: it is compared with the pilot sampled at
/// the same spacing, once per sampling phase, so aliasing folds the pilot
/// and the fold alike. What the detection statistic depends on is how many
/// weakly correlated image pixels the fold sums: for the same number of
/// samples a sparse fold spans a larger part of the image, which counts on
/// sparse line art, and on a downscaled image (whose pixels are larger than
/// canonical pixels) it still takes about one sample per image pixel.
pub(crate) const SAMPLING_STEPS: [usize; 2] = [1, 2];

/// The pilot sampled every `step` pixels, at every sampling phase.
struct SampledPilot {
    step: usize,
    fft: Fft2,
    /// Conjugate spectra, indexed by phase `ry * step + rx`.
    phases: Vec<Vec<Complex32>>,
}

/// The best tile shift for one orientation and its strength.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShiftPeak {
    /// Pixel of the oriented plane where a tile starts.
    pub origin: (usize, usize),
    /// Peak height in standard deviations of the correlation surface.
    pub strength: f32,
}

impl PilotCorrelator {
    pub fn new(pilot_pattern: &Plane) -> Self {
        let by_step = SAMPLING_STEPS
            .iter()
            .map(|&step| {
                let side = TILE / step;
                let fft = Fft2::new(side, side);
                let phases = (0..step * step)
                    .map(|phase| {
                        let (rx, ry) = (phase % step, phase / step);
                        // Sample j of a fold holds canonical pixel step·j; when the tile starts
                        // at step·d + r that pixel is the pilot's pixel step·(j − d) − r.
                        let sampled = Plane::from_shape_fn((side, side), |(j, i)| {
                            pilot_pattern[[(step * j + TILE - ry) % TILE, (step * i + TILE - rx) % TILE]]
                        });
                        conjugate_spectrum(&fft, &sampled)
                    })
                    .collect();
                SampledPilot { step, fft, phases }
            })
            .collect();
        Self { by_step }
    }

    /// The best tile shift of a fold of whole 128x128 tiles.
    pub fn best_shift(&self, folded: &Plane) -> ShiftPeak {
        self.best_sampled_shift(folded, 1)
    }

    /// [`PilotCorrelator::best_shift`] to a fraction of a pixel: the peak
    /// of the correlation surface placed by a parabola in each direction.
    pub(crate) fn subpixel_shift(&self, folded: &Plane) -> Option<((f64, f64), f32)> {
        self.subpixel_shift_near(folded, None)
    }

    /// [`PilotCorrelator::subpixel_shift`] with the peak sought only
    /// within `reach` pixels (wrapping round the tile) of a shift where
    /// the tile is expected to start. The strength is still measured
    /// against the whole surface.
    pub(crate) fn subpixel_shift_near(
        &self,
        folded: &Plane,
        near: Option<((f64, f64), f64)>,
    ) -> Option<((f64, f64), f32)> {
        let sampled = self.by_step.iter().find(|s| s.step == 1)?;
        let pilot = sampled.phases.first()?;
        let mut spectrum = sampled.fft.forward(folded);
        without_grid_edges(&mut spectrum, sampled.fft.width);
        let product = spectrum.iter().zip(pilot).map(|(a, b)| a * b).collect();
        let surface = sampled.fft.inverse_real(product);
        let ((x, y), strength) = match near {
            None => surface_peak_of(&surface, sampled.fft.width),
            Some((centre, reach)) => surface_peak_near(&surface, centre, reach),
        };
        let at = |dx: i64, dy: i64| {
            let t = TILE as i64;
            let (yy, xx) = (
                (y as i64 + dy).rem_euclid(t) as usize,
                (x as i64 + dx).rem_euclid(t) as usize,
            );
            surface.get((yy, xx)).copied().unwrap_or(0.0)
        };
        let centre = at(0, 0);
        let sub = (
            x as f64 + parabola_offset(at(-1, 0), centre, at(1, 0)),
            y as f64 + parabola_offset(at(0, -1), centre, at(0, 1)),
        );
        Some((sub, strength))
    }

    /// The best tile shift of a fold sampled every `step` pixels (`TILE /
    /// step` square), over every sampling phase.
    fn best_sampled_shift(&self, folded: &Plane, step: usize) -> ShiftPeak {
        let mut best = ShiftPeak {
            origin: (0, 0),
            strength: f32::NEG_INFINITY,
        };
        let Some(sampled) = self.by_step.iter().find(|s| s.step == step) else {
            return best;
        };
        let mut spectrum = sampled.fft.forward(folded);
        without_grid_edges(&mut spectrum, sampled.fft.width);
        for (phase, pilot) in sampled.phases.iter().enumerate() {
            let ((x, y), strength) = surface_peak(&sampled.fft, &spectrum, pilot);
            if strength > best.strength {
                let (rx, ry) = (phase % step, phase / step);
                best = ShiftPeak {
                    origin: (step * x + rx, step * y + ry),
                    strength,
                };
            }
        }
        best
    }
}

/// Sets a fold's frequency axes (`kx = 0` or `ky = 0`) to zero when they
/// hold more than [`AXIS_ENERGY_LIMIT`] times their share of its energy.
///
/// A long straight edge parallel to the tile grid — the frame of a window
/// around a screenshot, a picture pasted on a page, a letterbox bar —
/// folds into a row or column of constant offset, which lives on those
/// axes alone, and can swamp the pilot's peak (the whitened residual damps
/// strong edges and has nothing of faint ones, but edges of middling
/// contrast keep their full weight). The pilot keeps 97–98% of its
/// energy without the axes. Folds of ordinary content are left whole: they
/// rarely come near the limit, so their surfaces, and what the search
/// ranks by, are as before. One surface per hypothesis either way, so the
/// count of hypotheses the false-positive bound allows for is unchanged.
fn without_grid_edges(spectrum: &mut [Complex32], side: usize) {
    let on_axes = |index: usize| index < side || index % side.max(1) == 0;
    let (mut axes, mut total) = (0.0f64, 0.0f64);
    // The constant term (index 0) shifts the surface, not its shape.
    for (index, value) in spectrum.iter().enumerate().skip(1) {
        let energy = f64::from(value.norm_sqr());
        total += energy;
        if on_axes(index) {
            axes += energy;
        }
    }
    // Of the side² − 1 varying frequencies, 2·(side − 1) are on the axes.
    let fair_share = 2.0 / (side as f64 + 1.0);
    if axes > AXIS_ENERGY_LIMIT * fair_share * total {
        for (index, value) in spectrum.iter_mut().enumerate() {
            if on_axes(index) {
                *value = Complex32::new(0.0, 0.0);
            }
        }
    }
}

/// How many times its fair share of a fold's energy its frequency axes may
/// hold before [`without_grid_edges`] removes them. Of all the folds one
/// search correlates (measured on the corpus), a photo rotated 10° has 0 of
/// 800 over it, enlarged ×1.5 1 of 795, halved 29 of 801; a window
/// screenshot of cel art recompressed as JPEG 75 has 368 of 776, including
/// every fold of a whole canonical plane.
const AXIS_ENERGY_LIMIT: f64 = 4.0;

fn conjugate_spectrum(fft: &Fft2, plane: &Plane) -> Vec<Complex32> {
    fft.forward(plane).iter().map(|c| c.conj()).collect()
}

/// The highest point of the cross-correlation whose spectrum is
/// `spectrum · pilot_conj`, and its height in standard deviations of the
/// whole surface.
fn surface_peak(fft: &Fft2, spectrum: &[Complex32], pilot_conj: &[Complex32]) -> ((usize, usize), f32) {
    let product = spectrum.iter().zip(pilot_conj).map(|(a, b)| a * b).collect();
    surface_peak_of(&fft.inverse_real(product), fft.width)
}

/// The highest point of a correlation surface `width` wide and its height
/// in standard deviations of the whole surface.
fn surface_peak_of(surface: &Plane, width: usize) -> ((usize, usize), f32) {
    // The surface comes out in standard layout; a flat slice walks it far
    // faster than indexed iteration, and this runs for every probe.
    let values = surface.as_slice().unwrap_or(&[]);
    let (index, peak) =
        values.iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        );
    let (y, x) = (index / width.max(1), index % width.max(1));
    ((x, y), height_in_deviations(values, peak))
}

/// How far `peak` stands above the mean of a correlation surface's
/// `values`, in standard deviations (0 for a flat surface).
fn height_in_deviations(values: &[f32], peak: f32) -> f32 {
    let n = values.len().max(1) as f32;
    let mean = values.iter().sum::<f32>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    if variance > 0.0 && peak.is_finite() {
        (peak - mean) / variance.sqrt()
    } else {
        0.0
    }
}

/// [`surface_peak_of`] with the peak sought only within `reach` pixels of
/// `centre` (the surface wraps round: it is a tile's shifts).
fn surface_peak_near(surface: &Plane, centre: (f64, f64), reach: f64) -> ((usize, usize), f32) {
    let (h, w) = surface.dim();
    let wrapped = |v: f64, side: usize| {
        let side = side as f64;
        (v + side / 2.0).rem_euclid(side) - side / 2.0
    };
    let mut best = ((0, 0), f32::NEG_INFINITY);
    for ((y, x), &v) in surface.indexed_iter() {
        let (dx, dy) = (wrapped(x as f64 - centre.0, w), wrapped(y as f64 - centre.1, h));
        if v > best.1 && dx.hypot(dy) <= reach {
            best = ((x, y), v);
        }
    }
    (
        best.0,
        height_in_deviations(surface.as_slice().unwrap_or(&[]), best.1),
    )
}

/// A one-parameter family of geometric changes searched by brute force.
#[derive(Clone, Copy, Debug)]
enum Family {
    /// Uniform scale, no rotation.
    Scale,
    /// Rotation about the centre, scale 1 (rotate and crop).
    Rotation,
    /// Horizontal scale only.
    AspectX,
    /// Vertical scale only.
    AspectY,
}

impl Family {
    const ALL: [Family; 4] = [Family::Scale, Family::Rotation, Family::AspectX, Family::AspectY];

    /// Range of the parameter and the coarse step.
    fn range(self) -> (f64, f64, f64) {
        match self {
            // Log-scale steps of 0.75%: 212 steps from 0.45 to 2.2.
            Family::Scale => (0.45f64.ln(), 2.2f64.ln(), 0.0075),
            // 0.4° steps: 56 steps over ±11°.
            Family::Rotation => (-11.0, 11.0, 0.4),
            // 0.75% steps from 0.8 to 1.25: 60 steps each.
            Family::AspectX | Family::AspectY => (0.8f64.ln(), 1.25f64.ln(), 0.0075),
        }
    }

    /// Steps of the coarse grid (which has one point more).
    fn steps(self) -> usize {
        let (lo, hi, step) = self.range();
        ((hi - lo) / step).round() as usize
    }

    fn linear(self, t: f64) -> Linear {
        match self {
            Family::Scale => {
                let s = t.exp();
                Linear { m: [s, 0.0, 0.0, s] }
            }
            Family::Rotation => {
                // Counter-clockwise on screen (y down) by t degrees.
                let (sin, cos) = (-t.to_radians()).sin_cos();
                Linear {
                    m: [cos, -sin, sin, cos],
                }
            }
            Family::AspectX => Linear {
                m: [t.exp(), 0.0, 0.0, 1.0],
            },
            Family::AspectY => Linear {
                m: [1.0, 0.0, 0.0, t.exp()],
            },
        }
    }
}

/// Cheap looks at the pilot through a candidate map, on a region around
/// the image's most textured part, before the whole image is resampled for
/// the map.
pub(crate) struct Probe<'a> {
    residual: &'a Plane,
    /// The residual without the frequencies above the mark's band, for
    /// folds that sample it sparsely (so that they alias no noise into it);
    /// built the first time such a fold needs it.
    smooth: std::sync::OnceLock<Plane>,
    /// The residual over [`FINE_RADIUS`], read under maps that shrink the
    /// image below [`FINE_BELOW`], if given.
    fine: Option<&'a Plane>,
    /// Image point the probed regions are centred on.
    focus: (f64, f64),
    correlator: &'a PilotCorrelator,
}

impl<'a> Probe<'a> {
    /// `weights` is the perceptual mask of the image: the mark is strongest,
    /// and the pilot easiest to see, where it is high. Choosing the focus
    /// from the image alone keeps it out of the hypothesis count.
    pub fn new(residual: &'a Plane, weights: &Plane, correlator: &'a PilotCorrelator) -> Self {
        Self {
            residual,
            smooth: std::sync::OnceLock::new(),
            fine: None,
            focus: busiest_window_centre(weights, FOCUS_WINDOW),
            correlator,
        }
    }

    /// Reads `fine` ([`fine_residual`], of the same image) instead under
    /// maps that shrink the image below [`FINE_BELOW`].
    pub fn with_fine(self, fine: &'a Plane) -> Self {
        Self {
            fine: (fine.dim() == self.residual.dim()).then_some(fine),
            ..self
        }
    }

    /// The largest square (in canonical pixels, a multiple of 8 between 128
    /// and `limit`) worth probing under `linear`: as much canonical area as
    /// the image's shorter side spans.
    fn fit(&self, linear: &Linear, limit: usize) -> usize {
        let (h, w) = self.residual.dim();
        let stretch = linear.m[0]
            .hypot(linear.m[2])
            .max(linear.m[1].hypot(linear.m[3]))
            .max(1e-3);
        let side = (w.min(h) as f64 / stretch) as usize;
        (side.min(limit) / 8 * 8).max(128)
    }

    /// Folds the `size`×`size` canonical region around the focus, taken
    /// through `linear` (canonical → image) and sampled every `step`
    /// canonical pixels, into one tile of `TILE / step` samples a side.
    /// Samples falling outside the image count as zero. The region is
    /// folded as it is sampled, without being stored.
    fn fold(&self, linear: &Linear, size: usize, step: usize) -> Plane {
        let (h, w) = self.residual.dim();
        let (cx, cy) = self.focus;
        let half = size as f64 / 2.0 - 0.5;
        let scale = linear.determinant().abs().sqrt();
        let spacing = step as f64 * scale;
        let source = match self.fine {
            _ if spacing > 1.5 => self.smooth.get_or_init(|| binomial_blur(self.residual)),
            Some(fine) if scale < FINE_BELOW => fine,
            _ => self.residual,
        };
        let standard = source.as_standard_layout();
        let sampler = Sampler::new(&standard);
        let side = TILE / step;
        let samples = size.div_ceil(step);
        let mut tile = vec![0.0f32; side * side];
        let (dx, dy) = (linear.m[0] * step as f64, linear.m[2] * step as f64);
        let inside = |px: f64, py: f64| px >= 0.0 && py >= 0.0 && px < (w - 1) as f64 && py < (h - 1) as f64;
        // Rows and columns wrap around the tile every `side` samples,
        // counted with wrapping indices rather than `% side`: the compiler
        // recomputed that remainder, a division, for every sample.
        let mut tile_row = 0;
        for j in 0..samples {
            // Image position of canonical (0, step·j), then steps of `step` canonical pixels along u.
            let (mut x, mut y) = linear.apply(-half, (step * j) as f64 - half);
            x += cx;
            y += cy;
            let first = tile_row * side;
            advance_wrapping(&mut tile_row, side);
            let Some(row) = tile.get_mut(first..first + side) else {
                continue;
            };
            let (end_x, end_y) = (x + dx * (samples - 1) as f64, y + dy * (samples - 1) as f64);
            if inside(x, y) && inside(end_x, end_y) {
                // The row's path is a segment: inside at both ends, inside throughout.
                let mut remaining = samples;
                while remaining > 0 {
                    let n = remaining.min(side);
                    for cell in row.get_mut(..n).unwrap_or_default() {
                        *cell += sampler.sample_inside(x, y);
                        x += dx;
                        y += dy;
                    }
                    remaining -= n;
                }
            } else {
                let mut column = 0;
                for _ in 0..samples {
                    if let (true, Some(cell)) = (inside(x, y), row.get_mut(column)) {
                        *cell += sampler.sample_inside(x, y);
                    }
                    x += dx;
                    y += dy;
                    advance_wrapping(&mut column, side);
                }
            }
        }
        Plane::from_shape_vec((side, side), tile).unwrap_or_else(|_| Plane::zeros((side, side)))
    }

    /// Pilot strength under `linear` (upright only) with at most
    /// `samples_per_side`² samples: every canonical pixel when that covers
    /// the image, or when every second one would not use the budget;
    /// every second one otherwise, to span more of it. (Sparser folds
    /// would sample a downscaled image — the search reaches ×0.45 —
    /// further apart than its pixels, where the mark then lies.) On an
    /// image between one and two budgets a side, the sparse fold would
    /// look no further than a smaller budget's and with fewer samples: the
    /// screening stage then saw nothing the coarse grid had not, and an
    /// enlarged 768x512 photo's true scale lost to noise.
    fn strength(&self, linear: &Linear, samples_per_side: usize) -> f32 {
        let whole = self.fit(linear, usize::MAX);
        let step = if whole < 2 * samples_per_side { 1 } else { 2 };
        let size = whole.min(samples_per_side * step);
        self.correlator
            .best_sampled_shift(&self.fold(linear, size, step), step)
            .strength
    }

    /// The strongest pilot over the eight orientations under `linear`: a
    /// cheap check of a lattice estimate.
    pub fn lattice_strength(&self, linear: &Linear) -> f32 {
        let size = self.fit(linear, PROBE_SIDE);
        let tile = self.fold(linear, size, 1);
        Orientation::all()
            .map(|o| {
                self.correlator
                    .best_shift(&o.apply_to_fold(&tile, size, size))
                    .strength
            })
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// The brute-force searches: for each family, the best map on a coarse
    /// grid, then refined on a larger region with a finer grid. Returns the
    /// refined maps strong enough to be worth the whole image, strongest
    /// first, those near the identity included. Key-dependent (it uses the
    /// pilot); every map it can try is counted in [`HYPOTHESES`].
    pub fn search_families(&self) -> Vec<(f32, Linear)> {
        let mut found: Vec<(f32, Linear)> = Family::ALL
            .into_iter()
            .flat_map(|family| self.search_family(family).chosen())
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found
    }

    fn search_family(&self, family: Family) -> FamilyTrace {
        let (lo, _, step) = family.range();
        let steps = family.steps();
        let probe = |t: f64, side: usize| {
            let linear = family.linear(t);
            self.strength(&linear, probe_side(side, &linear))
        };
        // Probes are independent: spread them over the cores.
        let mut coarse: Vec<(f32, f64)> = (0..=steps)
            .into_par_iter()
            .map(|i| {
                let t = lo + i as f64 * step;
                (probe(t, COARSE_SIDE), t)
            })
            .collect();
        coarse.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Screen the strongest half on a larger region. Its probes see
        // the pilot half again as clearly, but only near the true map: a
        // map a third of a coarse step off has lost most of its peak, so
        // each is probed at three points that far apart. Near the noise
        // floor the true map ranks anywhere in the top half of the coarse
        // grid (40th of 212 on a recompressed screenshot of line art, 57th
        // on a photo enlarged ×1.5, where the coarse probe reads 4.1 and
        // the screening one 6.3).
        let third = step / 3.0;
        let mut screened: Vec<(f32, f64)> = coarse
            .iter()
            .take(screened_per_family(steps))
            .flat_map(|&(_, centre)| (-1..=1).map(move |i| centre + f64::from(i) * third))
            .collect::<Vec<f64>>()
            .into_par_iter()
            .map(|t| (probe(t, SCREEN_SIDE), t))
            .collect();
        screened.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Refine the strongest few on a larger region still, to a twelfth
        // of a coarse step. The two best screened maps are often neighbours
        // a third of a step apart, whose grids then share five maps: each
        // is probed once.
        let fine_step = step / 12.0;
        let mut centres: Vec<f64> = screened.iter().take(REFINED_BEST).map(|&(_, t)| t).collect();
        // A noise peak can take both. Where the probes already span the
        // image, the best map of any other peak (over a coarse step away)
        // is refined too, and may be tried on the whole image.
        let small = centres
            .first()
            .is_some_and(|&t| self.spans_image(&family.linear(t)));
        if small {
            if let Some(&(_, other)) = screened
                .iter()
                .find(|&&(_, t)| centres.iter().all(|&c| (c - t).abs() > step))
            {
                centres.push(other);
            }
        }
        let mut grid: Vec<f64> = Vec::with_capacity(REFINED_PER_FAMILY * 9);
        for centre in centres {
            for t in (-4..=4).map(|i| centre + f64::from(i) * fine_step) {
                if grid.iter().all(|&probed| (probed - t).abs() > fine_step / 2.0) {
                    grid.push(t);
                }
            }
        }
        let mut refined: Vec<(f32, f64)> = grid.into_par_iter().map(|t| (probe(t, PROBE_SIDE), t)).collect();
        refined.sort_by(|a, b| b.0.total_cmp(&a.0));
        FamilyTrace {
            family,
            coarse,
            screened,
            refined,
            small,
        }
    }

    /// Whether the refinement's probe under `linear` spans the image's
    /// shorter side, so that no larger probe could see more of it.
    fn spans_image(&self, linear: &Linear) -> bool {
        self.fit(linear, usize::MAX) <= probe_side(PROBE_SIDE, linear)
    }

    /// What each family's search saw, for diagnostics: every probe of
    /// every stage, strongest first.
    pub(crate) fn trace_families(&self) -> Vec<FamilyTrace> {
        Family::ALL
            .into_iter()
            .map(|family| self.search_family(family))
            .collect()
    }
}

/// The probes of one family's search, each stage's strongest first, as
/// (pilot strength, family parameter).
pub(crate) struct FamilyTrace {
    family: Family,
    coarse: Vec<(f32, f64)>,
    screened: Vec<(f32, f64)>,
    refined: Vec<(f32, f64)>,
    /// Whether the probes spanned the image (see [`Probe::spans_image`]).
    small: bool,
}

impl FamilyTrace {
    /// The refined maps worth trying on the whole image, strongest first:
    /// the best, and, where the probes spanned the image, the best of
    /// another peak.
    fn chosen(&self) -> Vec<(f32, Linear)> {
        // Below this the refined peak is within the noise of the search
        // (the null maximum is about 4.5); resampling the whole image for it
        // would cost time and find nothing.
        let (floor, peaks) = if self.small {
            (MIN_PROBE_STRENGTH_SMALL, CHOSEN_PER_FAMILY)
        } else {
            (MIN_PROBE_STRENGTH, 1)
        };
        let (_, _, step) = self.family.range();
        let mut chosen: Vec<(f32, f64)> = Vec::with_capacity(peaks);
        for &(strength, t) in &self.refined {
            if chosen.len() == peaks || strength < floor {
                break;
            }
            if chosen.iter().all(|&(_, c)| (c - t).abs() > step) {
                chosen.push((strength, t));
            }
        }
        chosen
            .into_iter()
            .map(|(strength, t)| (strength, self.family.linear(t)))
            .collect()
    }

    /// Whether this is the search of the family called `name` (as its
    /// debug form spells it).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        format!("{:?}", self.family) == name
    }

    /// Lines saying, stage by stage, how many probes there were and the
    /// strongest; given the family parameter's true value, also the rank
    /// and strength of the probes within reach of it (half a step of the
    /// stage's grid) and, in parameter order, the strengths of those within
    /// eight reaches (as offset from the truth: strength).
    pub(crate) fn describe(&self, truth: Option<f64>) -> Vec<String> {
        let (_, _, step) = self.family.range();
        let stage = |name: &str, probes: &[(f32, f64)], reach: f64| {
            let mut line = format!("  {name}: {} probes", probes.len());
            if let Some(&(strength, t)) = probes.first() {
                line += &format!(", strongest {strength:.2} at {t:.5}");
            }
            let Some(truth) = truth else {
                return line;
            };
            let within =
                |distance: f64| move |&(_, &(_, t)): &(usize, &(f32, f64))| (t - truth).abs() <= distance;
            let ranks: Vec<String> = probes
                .iter()
                .enumerate()
                .filter(within(reach))
                .map(|(rank, &(strength, t))| format!("#{} {strength:.2} at {t:.5}", rank + 1))
                .collect();
            let mut around: Vec<(f64, f32)> = probes
                .iter()
                .enumerate()
                .filter(within(8.0 * reach))
                .map(|(_, &(strength, t))| (t - truth, strength))
                .collect();
            around.sort_by(|a, b| a.0.total_cmp(&b.0));
            let around: Vec<String> = around.iter().map(|(d, s)| format!("{d:+.4}: {s:.2}")).collect();
            format!(
                "{line}; at the truth: {}\n    around it: {}",
                ranks.join(", "),
                around.join("  ")
            )
        };
        vec![
            format!("{:?}", self.family),
            stage("coarse", &self.coarse, step / 2.0),
            stage("screen", &self.screened, step / 6.0),
            stage("refine", &self.refined, step / 24.0),
        ]
    }
}

/// Smallest pilot strength, in each quadrant of a canonical plane, for
/// which [`refine_by_drift`] trusts the quadrant's tile shift.
const DRIFT_MIN_STRENGTH: f32 = 5.0;
/// Largest correction [`refine_by_drift`] applies, per matrix entry: the
/// brute-force grids leave at most about a tenth of this, so anything
/// larger is a misplaced peak.
const DRIFT_MAX_CORRECTION: f64 = 0.004;

/// How far, in canonical pixels, the tile grid of a resampled plane falls
/// from whole pixels, when that is more than [`GRID_OFFSET_TOLERANCE`]
/// in either direction and its pilot stands out (a peak of at least
/// [`DRIFT_MIN_STRENGTH`]). A map placed to a few hundredths of a degree
/// or a few hundredths of a percent can still leave the grid half a pixel
/// off, and the mark's 8x8 blocks read half a pixel off lose most of it;
/// resampling the plane by this offset puts the grid back on the pixels.
pub(crate) fn grid_offset(residual: &Plane, correlator: &PilotCorrelator) -> Option<(f64, f64)> {
    let ((sx, sy), strength) = correlator.subpixel_shift(&fold(residual))?;
    let offset = (sx - sx.round(), sy - sy.round());
    (strength >= DRIFT_MIN_STRENGTH
        && (offset.0.abs() > GRID_OFFSET_TOLERANCE || offset.1.abs() > GRID_OFFSET_TOLERANCE))
        .then_some(offset)
}

/// Largest distance of a tile grid from whole pixels left alone by
/// [`grid_offset`].
const GRID_OFFSET_TOLERANCE: f64 = 0.25;

/// Coarse maps of a family of `steps` grid steps that are screened.
fn screened_per_family(steps: usize) -> usize {
    (steps + 1).div_ceil(SCREENED_FRACTION)
}

/// The pilot's tile shift, to a fraction of a pixel, in each quadrant of
/// a whitened canonical plane, relative to the first quadrant's (within
/// half a tile), with the quadrant's centre relative to the plane's.
/// `None` when a quadrant is smaller than two tiles a side or its pilot too
/// faint to trust.
fn quadrant_drifts(residual: &Plane, correlator: &PilotCorrelator) -> Option<[QuadrantDrift; 4]> {
    let (h, w) = residual.dim();
    let (half_w, half_h) = (w / 2, h / 2);
    if half_w < 2 * TILE || half_h < 2 * TILE {
        return None;
    }
    let t = TILE as f64;
    let wrap = |v: f64| (v + t / 2.0).rem_euclid(t) - t / 2.0;
    let mut shifts = [QuadrantDrift::default(); 4];
    for (shift, (x0, y0)) in shifts
        .iter_mut()
        .zip([(0, 0), (half_w, 0), (0, half_h), (half_w, half_h)])
    {
        let region = residual
            .slice(ndarray::s![y0..y0 + half_h, x0..x0 + half_w])
            .to_owned();
        let ((sx, sy), strength) = correlator.subpixel_shift(&fold(&region))?;
        if strength < DRIFT_MIN_STRENGTH {
            return None;
        }
        // Tile origin in plane coordinates, and the quadrant's centre
        // relative to the plane's.
        let centre = (
            x0 as f64 + half_w as f64 / 2.0 - w as f64 / 2.0,
            y0 as f64 + half_h as f64 / 2.0 - h as f64 / 2.0,
        );
        *shift = QuadrantDrift {
            shift: (x0 as f64 + sx, y0 as f64 + sy),
            centre,
        };
    }
    let (rx, ry) = shifts.first()?.shift;
    Some(shifts.map(
        |QuadrantDrift {
             shift: (x, y),
             centre,
         }| QuadrantDrift {
            shift: (wrap(x - rx), wrap(y - ry)),
            centre,
        },
    ))
}

/// One quadrant's tile shift, as [`quadrant_drifts`] gives it.
#[derive(Clone, Copy, Debug, Default)]
struct QuadrantDrift {
    /// The tile origin's shift, relative to the first quadrant's.
    shift: (f64, f64),
    /// The quadrant's centre, relative to the plane's.
    centre: (f64, f64),
}

/// Side, in tiles, of the regions whose tile shifts
/// [`perspective_by_drift`] measures; they overlap by half. Two tiles
/// hold enough of the pilot to place it, and are small enough that the
/// drift a perspective leaves varies little across one (a quadrant's fold
/// is ruled by its part nearest the centre, where the map already fits).
const PERSPECTIVE_REGION_TILES: usize = 2;
/// Smallest pilot strength of a region whose shift [`perspective_by_drift`]
/// uses. A wrong peak is then rare, and the fit drops what it leaves.
const PERSPECTIVE_REGION_MIN_STRENGTH: f32 = 4.0;
/// Smallest pilot strength of a region whose shift [`perspective_by_drift`]
/// seeks near where the fit so far expects it: a peak sought among a
/// hundred shifts or so, not the tile's sixteen thousand, stands out of
/// the noise at a lower height.
const PERSPECTIVE_NEAR_MIN_STRENGTH: f32 = 3.5;
/// How far, in canonical pixels, from the whole plane's tile shift a
/// region's is sought once a first perspective has been undone: what is
/// left of the drift is then a pixel or two.
pub(crate) const PERSPECTIVE_NEAR_REACH: f64 = 6.0;
/// Largest linear error [`perspective_by_drift`] undoes with a
/// perspective, per matrix entry: the linear map the search chose is the
/// one that fits the frame as a whole best, which a perspective of a few
/// percent leaves up to half a percent off at the frame's centre.
const PERSPECTIVE_MAX_CORRECTION: f64 = 0.01;
/// Fewest regions [`perspective_by_drift`] fits its eight unknowns to.
const PERSPECTIVE_MIN_REGIONS: usize = 8;
/// Largest distance, in canonical pixels, of a region's shift from the
/// fit it is kept in: a larger one is a misplaced peak, not a drift.
const PERSPECTIVE_OUTLIER: f64 = 1.5;
/// Smallest drift, in canonical pixels at the corners of the plane, that
/// [`perspective_by_drift`] corrects: below it the regions' shifts, each
/// known to a tenth of a pixel or so, do not tell a perspective from noise.
const PERSPECTIVE_MIN_DRIFT: f64 = 0.6;
/// Largest perspective undone, per coefficient: 10⁻⁴ moves a point 1,000
/// pixels from the centre of a 2,000-pixel-high frame by a tenth of its
/// distance, a screen seen some 15° off-axis.
const PERSPECTIVE_MAX: f64 = 1e-4;

/// One region's tile shift, as [`region_drifts`] measures it.
#[derive(Clone, Copy, Debug)]
struct RegionDrift {
    /// The tile origin's shift from the whole plane's, within half a tile.
    shift: (f64, f64),
    /// The region's centre, relative to the plane's.
    centre: (f64, f64),
}

/// The pilot's tile shift, to a fraction of a pixel, in every region of
/// [`PERSPECTIVE_REGION_TILES`] tiles a side (overlapping by half) of a
/// whitened canonical plane whose pilot reaches `min_strength`.
fn region_drifts(residual: &Plane, correlator: &PilotCorrelator, reach: Option<f64>) -> Vec<RegionDrift> {
    let min_strength = match reach {
        None => PERSPECTIVE_REGION_MIN_STRENGTH,
        Some(_) => PERSPECTIVE_NEAR_MIN_STRENGTH,
    };
    let (h, w) = residual.dim();
    let side = PERSPECTIVE_REGION_TILES * TILE;
    let Some(((rx, ry), _)) = correlator.subpixel_shift(&fold(residual)) else {
        return Vec::new();
    };
    let t = TILE as f64;
    let wrap = |v: f64| (v + t / 2.0).rem_euclid(t) - t / 2.0;
    // Region origins every half region, the last flush with the far edge.
    let origins = |n: usize| -> Vec<usize> {
        if n < side {
            return Vec::new();
        }
        let mut at: Vec<usize> = (0..=(n - side)).step_by(side / 4).collect();
        if at.last() != Some(&(n - side)) {
            at.push(n - side);
        }
        at
    };
    let (xs, ys) = (origins(w), origins(h));
    let corners: Vec<(usize, usize)> = ys.iter().flat_map(|&y| xs.iter().map(move |&x| (x, y))).collect();
    corners
        .par_iter()
        .filter_map(|&(x0, y0)| {
            let region = residual
                .slice(ndarray::s![y0..y0 + side, x0..x0 + side])
                .to_owned();
            let expected = ((rx - x0 as f64).rem_euclid(t), (ry - y0 as f64).rem_euclid(t));
            let near = reach.map(|reach| (expected, reach));
            let ((sx, sy), strength) = correlator.subpixel_shift_near(&fold(&region), near)?;
            (strength >= min_strength).then(|| RegionDrift {
                shift: (wrap(x0 as f64 + sx - rx), wrap(y0 as f64 + sy - ry)),
                centre: (
                    x0 as f64 + side as f64 / 2.0 - w as f64 / 2.0,
                    y0 as f64 + side as f64 / 2.0 - h as f64 / 2.0,
                ),
            })
        })
        .collect()
}

/// The perspective left in a canonical plane resampled through `current`,
/// fitted to the tile shifts of its regions ([`region_drifts`]).
///
/// Where the plane shows the original's point `c·(1 + g·cx + h·cy)` at `c`
/// (a residual perspective `(g, h)`, to first order), the tile origin
/// near `c` moves by `−(g·cx² + h·cx·cy, g·cx·cy + h·cy²)`; a shift and a
/// linear error of the map add a constant and a term linear in `c`. All
/// eight are fitted by least squares, again and again without the regions
/// the last fit missed most, until it misses none by more than
/// [`PERSPECTIVE_OUTLIER`].
/// `None` when too few regions can be measured, or what they show is too
/// small to matter or too large to be a perspective.
pub(crate) fn perspective_by_drift(
    residual: &Plane,
    correlator: &PilotCorrelator,
    (linear, current): (Linear, Perspective),
    reach: Option<f64>,
) -> Option<(Linear, Perspective)> {
    let drifts = region_drifts(residual, correlator, reach);
    let (h, w) = residual.dim();
    let (half_w, half_h) = (w as f64 / 2.0, h as f64 / 2.0);
    // The model's terms for a region's x and y shifts. Unknowns: the x and
    // y shifts, the linear error's four terms, then g and h in pixels at
    // the corner; coordinates are scaled to ±1 at the plane's edges, which
    // keeps the system well conditioned.
    let terms = |d: &RegionDrift| -> [[f64; 8]; 2] {
        let (u, v) = (d.centre.0 / half_w, d.centre.1 / half_h);
        let (wide, tall) = (half_w / half_h, half_h / half_w);
        [
            [1.0, 0.0, u, v, 0.0, 0.0, -u * u * wide, -u * v],
            [0.0, 1.0, 0.0, 0.0, u, v, -u * v, -v * v * tall],
        ]
    };
    let fit = |drifts: &[RegionDrift]| -> Option<[f64; 8]> {
        if drifts.len() < PERSPECTIVE_MIN_REGIONS {
            return None;
        }
        let rows: Vec<[f64; 8]> = drifts.iter().flat_map(terms).collect();
        let a = nalgebra::DMatrix::from_row_iterator(rows.len(), 8, rows.iter().flatten().copied());
        let b =
            nalgebra::DVector::from_iterator(rows.len(), drifts.iter().flat_map(|d| [d.shift.0, d.shift.1]));
        let svd = a.svd(true, true);
        if svd.rank(1e-6 * svd.singular_values.max()) < 8 {
            return None;
        }
        svd.solve(&b, 1e-12).ok()?.as_slice().try_into().ok()
    };
    let miss = |d: &RegionDrift, solution: &[f64; 8]| {
        let [px, py] = terms(d).map(|row| row.iter().zip(solution).map(|(t, x)| t * x).sum::<f64>());
        (d.shift.0 - px).hypot(d.shift.1 - py)
    };
    // Misplaced peaks are dropped worst first: each fit drops the regions
    // it misses by more than half its worst miss, until every region left
    // lies within [`PERSPECTIVE_OUTLIER`] of the fit.
    let mut kept = drifts;
    let [_, _, ex_u, ex_v, ey_u, ey_v, at_corner_g, at_corner_h] = loop {
        let solution = fit(&kept)?;
        let misses: Vec<f64> = kept.iter().map(|d| miss(d, &solution)).collect();
        let worst = misses.iter().copied().fold(0.0, f64::max);
        if worst <= PERSPECTIVE_OUTLIER {
            break solution;
        }
        let limit = (worst / 2.0).max(PERSPECTIVE_OUTLIER);
        kept = kept
            .into_iter()
            .zip(&misses)
            .filter(|(_, &m)| m <= limit)
            .map(|(d, _)| d)
            .collect();
    };
    let corner = half_w * half_h;
    let next = Perspective {
        g: current.g + at_corner_g / corner,
        h: current.h + at_corner_h / corner,
    };
    // The linear error the best linear map made, to fit the frame as a
    // whole, is undone with the perspective: its terms, per pixel.
    let error = [ex_u / half_w, ex_v / half_h, ey_u / half_w, ey_v / half_h];
    (at_corner_g.abs().max(at_corner_h.abs()) >= PERSPECTIVE_MIN_DRIFT
        && next.g.abs().max(next.h.abs()) <= PERSPECTIVE_MAX
        && error.iter().all(|e| e.abs() <= PERSPECTIVE_MAX_CORRECTION))
    .then(|| (linear.with_error(error), next))
}

/// A brute-force map made exact from the canonical plane it gives.
///
/// The search's grids place a map to about 0.1%, which across a large
/// image drifts the block grid by a pixel or more at the borders. If the
/// map is off by a small linear error `E` (true map `linear · (I + E)`),
/// the pilot's tile grid in a region of the canonical plane centred at `c`
/// lies shifted by `E · c`: so the tile shift is measured, to a fraction of
/// a pixel, in each quadrant of the whitened canonical plane, and `E`
/// fitted by least squares. `None` when a quadrant is too small or its
/// pilot too faint to trust, or the correction too small to matter.
pub(crate) fn refine_by_drift(
    residual: &Plane,
    correlator: &PilotCorrelator,
    linear: Linear,
) -> Option<Linear> {
    let drifts = quadrant_drifts(residual, correlator)?;
    // The quadrant centres are symmetric, so each column of E is a plain
    // regression on one coordinate.
    let (mut e, mut sum_xx, mut sum_yy) = ([0.0f64; 4], 0.0f64, 0.0f64);
    let mean = drifts
        .iter()
        .fold((0.0, 0.0), |a, d| (a.0 + d.shift.0 / 4.0, a.1 + d.shift.1 / 4.0));
    for &QuadrantDrift {
        shift: (x, y),
        centre: (cx, cy),
    } in &drifts
    {
        let (dx, dy) = (x - mean.0, y - mean.1);
        e[0] += dx * cx;
        e[1] += dx * cy;
        e[2] += dy * cx;
        e[3] += dy * cy;
        sum_xx += cx * cx;
        sum_yy += cy * cy;
    }
    let e = [e[0] / sum_xx, e[1] / sum_yy, e[2] / sum_xx, e[3] / sum_yy];
    if e.iter().any(|v| v.abs() > DRIFT_MAX_CORRECTION) || e.iter().all(|v| v.abs() < 2e-5) {
        return None;
    }
    Some(linear.with_error(e))
}

/// Samples a side of a probe under `linear`: `side` for a map that keeps or
/// enlarges the image, up to twice that for one that shrinks it, so that
/// the probe spans as many of the image's pixels as at scale 1. On a
/// downscaled image every image pixel holds several canonical pixels of
/// the mark, and the pilot then needs all the pixels it can get.
fn probe_side(side: usize, linear: &Linear) -> usize {
    let shrink = linear.determinant().abs().sqrt().max(0.5);
    (side as f64 / shrink.min(1.0)).round() as usize
}

/// The plane filtered by the 3x3 binomial kernel (edges repeated).
fn binomial_blur(plane: &Plane) -> Plane {
    let (h, w) = plane.dim();
    let smooth_along = |p: &Plane, axis: usize| -> Plane {
        let n = if axis == 0 { h } else { w };
        Plane::from_shape_fn((h, w), |(y, x)| {
            let at = |i: usize| if axis == 0 { p[[i, x]] } else { p[[y, i]] };
            let i = if axis == 0 { y } else { x };
            0.25 * at(i.saturating_sub(1)) + 0.5 * at(i) + 0.25 * at((i + 1).min(n - 1))
        })
    };
    if h == 0 || w == 0 {
        return plane.clone();
    }
    smooth_along(&smooth_along(plane, 1), 0)
}

/// Centre of the `window`-pixel square (clipped to the plane) with the
/// largest sum of `weights`, searched on an 8-pixel grid.
fn busiest_window_centre(weights: &Plane, window: usize) -> (f64, f64) {
    let (h, w) = weights.dim();
    let (win_w, win_h) = (window.min(w), window.min(h));
    let (x, y) = busiest_window(weights, (win_w, win_h), 8);
    ((x + win_w / 2) as f64 - 0.5, (y + win_h / 2) as f64 - 0.5)
}

/// Top-left corner of the `(width, height)` rectangle (at most the plane's
/// size) with the largest sum of `weights`, tried every `step` elements; the
/// central one on a tie.
fn busiest_window(weights: &Plane, (win_w, win_h): (usize, usize), step: usize) -> (usize, usize) {
    let (h, w) = weights.dim();
    let (win_w, win_h) = (win_w.min(w), win_h.min(h));
    // Summed-area table with a zero first row and column.
    let mut table = Array2::<f64>::zeros((h + 1, w + 1));
    for (y, row) in weights.rows().into_iter().enumerate() {
        let mut row_sum = 0.0f64;
        for (x, &v) in row.iter().enumerate() {
            row_sum += f64::from(v);
            let above = table.get((y, x + 1)).copied().unwrap_or(0.0);
            if let Some(t) = table.get_mut((y + 1, x + 1)) {
                *t = above + row_sum;
            }
        }
    }
    let sum = |x: usize, y: usize| {
        let at = |xx: usize, yy: usize| table.get((yy, xx)).copied().unwrap_or(0.0);
        at(x + win_w, y + win_h) - at(x, y + win_h) - at(x + win_w, y) + at(x, y)
    };
    let mut best = (f64::NEG_INFINITY, ((w - win_w) / 2, (h - win_h) / 2));
    for y in (0..=h - win_h).step_by(step.max(1)) {
        for x in (0..=w - win_w).step_by(step.max(1)) {
            let total = sum(x, y);
            if total > best.0 {
                best = (total, (x, y));
            }
        }
    }
    best.1
}

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

/// Estimates the tile lattice of an image from the autocorrelation of its
/// residual. Returns up to [`MAX_LATTICES`] linear maps (canonical →
/// image), best first; none when no periodicity stands out.
pub(crate) fn lattices(residual: &Plane) -> Vec<Linear> {
    let (h, w) = residual.dim();
    let size = |d: usize| -> usize {
        let mut s = 256;
        while s * 2 <= d.min(1024) {
            s *= 2;
        }
        s
    };
    if h < 256 || w < 256 {
        return Vec::new();
    }
    let (ch, cw) = (size(h), size(w));
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    let mut region = residual.slice(ndarray::s![y0..y0 + ch, x0..x0 + cw]).to_owned();
    let mean = region.sum() / region.len() as f32;
    region.mapv_inplace(|v| v - mean);
    let fft = Fft2::new(ch, cw);
    let power: Vec<Complex32> = fft
        .forward(&region)
        .iter()
        .map(|c| Complex32::new(c.norm_sqr(), 0.0))
        .collect();
    let raw = fft.inverse_real(power);
    let zero = raw.get((0, 0)).copied().unwrap_or(0.0);
    // The mark's periodicity gives sharp peaks; image content gives broad
    // hills. Keep what stands above its neighbourhood.
    let acf = &raw - &box_mean(&raw, 3);
    if zero <= 0.0 {
        return Vec::new();
    }
    let at = |dx: f64, dy: f64| -> f32 { bilinear_wrapped(&acf, dx, dy) / zero };

    // Local maxima in the annulus of plausible tile sizes (scale 0.45–2.2).
    let (r_min, r_max) = (
        0.45 * TILE as f64,
        (2.2 * TILE as f64).min(ch.min(cw) as f64 / 2.0 - 2.0),
    );
    let mut peaks: Vec<(f32, f64, f64)> = Vec::new();
    let half = |v: usize, n: usize| -> f64 {
        if v > n / 2 {
            v as f64 - n as f64
        } else {
            v as f64
        }
    };
    for ((y, x), &v) in acf.indexed_iter() {
        let (dx, dy) = (half(x, cw), half(y, ch));
        let r = (dx * dx + dy * dy).sqrt();
        if r < r_min || r > r_max || dy < 0.0 || (dy == 0.0 && dx < 0.0) {
            continue;
        }
        let neighbours_lower = (-1i64..=1).all(|j| {
            (-1i64..=1).all(|i| {
                (i == 0 && j == 0) || {
                    let yy = (y as i64 + j).rem_euclid(ch as i64) as usize;
                    let xx = (x as i64 + i).rem_euclid(cw as i64) as usize;
                    acf.get((yy, xx)).is_some_and(|&n| n < v)
                }
            })
        });
        if neighbours_lower {
            peaks.push((v / zero, dx, dy));
        }
    }
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    peaks.truncate(12);
    // Both signs of every peak vector.
    let vectors: Vec<(f64, f64)> = peaks.iter().flat_map(|&(_, x, y)| [(x, y), (-x, -y)]).collect();

    let mut bases: Vec<(f32, Linear)> = Vec::new();
    for (i, &p) in vectors.iter().enumerate() {
        for &q in vectors.iter().skip(i + 1) {
            let (lp, lq) = ((p.0 * p.0 + p.1 * p.1).sqrt(), (q.0 * q.0 + q.1 * q.1).sqrt());
            let cos = (p.0 * q.0 + p.1 * q.1) / (lp * lq);
            if cos.abs() > 0.5 || lp / lq > 1.35 || lq / lp > 1.35 {
                continue;
            }
            let score = lattice_score(&at, p, q, r_max);
            let linear = canonical_basis(p, q);
            bases.push((score, linear));
        }
    }
    bases.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<Linear> = Vec::new();
    for (score, linear) in bases {
        if out.len() == MAX_LATTICES {
            break;
        }
        if score <= 0.0 {
            break;
        }
        let refined = refine(&acf, linear, r_max);
        if !out
            .iter()
            .any(|o| o.m.iter().zip(refined.m).all(|(a, b)| (a - b).abs() < 0.02))
        {
            out.push(refined);
        }
    }
    out
}

/// Mean normalised autocorrelation over the lattice points spanned by `p`
/// and `q` within reach.
fn lattice_score(at: &dyn Fn(f64, f64) -> f32, p: (f64, f64), q: (f64, f64), reach: f64) -> f32 {
    let (mut sum, mut count) = (0.0f32, 0);
    for j in -3i32..=3 {
        for i in -3i32..=3 {
            if i == 0 && j == 0 {
                continue;
            }
            let (x, y) = (i as f64 * p.0 + j as f64 * q.0, i as f64 * p.1 + j as f64 * q.1);
            if (x * x + y * y).sqrt() <= reach {
                sum += at(x, y);
                count += 1;
            }
        }
    }
    if count < 4 {
        0.0
    } else {
        sum / count as f32
    }
}

/// Of the eight bases of the same square lattice, the one closest to the
/// identity (first vector nearest +x, second nearest +y), scaled so that a
/// tile of 128 pixels maps to the basis vectors.
fn canonical_basis(p: (f64, f64), q: (f64, f64)) -> Linear {
    let candidates = [p, q, (-p.0, -p.1), (-q.0, -q.1)];
    let first = candidates
        .iter()
        .copied()
        .max_by(|a, b| (a.0 / a.0.hypot(a.1)).total_cmp(&(b.0 / b.0.hypot(b.1))))
        .unwrap_or(p);
    let second = candidates
        .iter()
        .copied()
        .filter(|c| (c.0 * first.0 + c.1 * first.1).abs() < 0.9 * c.0.hypot(c.1) * first.0.hypot(first.1))
        .max_by(|a, b| (a.1 / a.0.hypot(a.1)).total_cmp(&(b.1 / b.0.hypot(b.1))))
        .unwrap_or(q);
    let t = TILE as f64;
    Linear {
        m: [first.0 / t, second.0 / t, first.1 / t, second.1 / t],
    }
}

/// Least-squares refinement of a lattice basis from sub-pixel positions of
/// every lattice peak within reach.
fn refine(acf: &Plane, basis: Linear, reach: f64) -> Linear {
    let t = TILE as f64;
    let p = (basis.m[0] * t, basis.m[2] * t);
    let q = (basis.m[1] * t, basis.m[3] * t);
    // Normal equations for x = i·p + j·q (separately for the x and y parts).
    let (mut sii, mut sij, mut sjj) = (0.0f64, 0.0f64, 0.0f64);
    let (mut six, mut sjx, mut siy, mut sjy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut used = 0;
    for j in -3i32..=3 {
        for i in -3i32..=3 {
            if i == 0 && j == 0 {
                continue;
            }
            let (x, y) = (i as f64 * p.0 + j as f64 * q.0, i as f64 * p.1 + j as f64 * q.1);
            if (x * x + y * y).sqrt() > reach {
                continue;
            }
            let Some((px, py)) = subpixel_peak(acf, x, y) else {
                continue;
            };
            let (fi, fj) = (f64::from(i), f64::from(j));
            sii += fi * fi;
            sij += fi * fj;
            sjj += fj * fj;
            six += fi * px;
            sjx += fj * px;
            siy += fi * py;
            sjy += fj * py;
            used += 1;
        }
    }
    let det = sii * sjj - sij * sij;
    if used < 4 || det.abs() < 1e-9 {
        return basis;
    }
    let solve = |a: f64, b: f64| ((sjj * a - sij * b) / det, (sii * b - sij * a) / det);
    let (px, qx) = solve(six, sjx);
    let (py, qy) = solve(siy, sjy);
    Linear {
        m: [px / t, qx / t, py / t, qy / t],
    }
}

/// The autocorrelation peak nearest `(x, y)` (within 2 pixels), located to
/// a fraction of a pixel by fitting a parabola in each direction.
fn subpixel_peak(acf: &Plane, x: f64, y: f64) -> Option<(f64, f64)> {
    let (h, w) = acf.dim();
    let get = |xx: i64, yy: i64| acf[[yy.rem_euclid(h as i64) as usize, xx.rem_euclid(w as i64) as usize]];
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    let mut best = (cx, cy, f32::NEG_INFINITY);
    for dy in -2..=2 {
        for dx in -2..=2 {
            let v = get(cx + dx, cy + dy);
            if v > best.2 {
                best = (cx + dx, cy + dy, v);
            }
        }
    }
    let (bx, by, v) = best;
    let ox = parabola_offset(get(bx - 1, by), v, get(bx + 1, by));
    let oy = parabola_offset(get(bx, by - 1), v, get(bx, by + 1));
    Some((bx as f64 + ox, by as f64 + oy))
}

/// Where the vertex of the parabola through `(−1, minus)`, `(0, peak)` and
/// `(1, plus)` lies, within half a sample of the peak.
fn parabola_offset(minus: f32, peak: f32, plus: f32) -> f64 {
    let denominator = minus - 2.0 * peak + plus;
    if denominator.abs() < 1e-12 {
        0.0
    } else {
        (0.5 * (minus - plus) / denominator).clamp(-0.5, 0.5) as f64
    }
}

fn bilinear_wrapped(plane: &Plane, x: f64, y: f64) -> f32 {
    let (h, w) = plane.dim();
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
    let get = |xx: i64, yy: i64| plane[[yy.rem_euclid(h as i64) as usize, xx.rem_euclid(w as i64) as usize]];
    let (x0, y0) = (fx as i64, fy as i64);
    let top = get(x0, y0) * (1.0 - tx) + get(x0 + 1, y0) * tx;
    let bottom = get(x0, y0 + 1) * (1.0 - tx) + get(x0 + 1, y0 + 1) * tx;
    top * (1.0 - ty) + bottom * ty
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
struct Sampler<'a> {
    data: &'a [f32],
    width: usize,
    height: usize,
}

/// `index + 1`, back to 0 at `period`: a tile's row or column counter.
#[inline]
fn advance_wrapping(index: &mut usize, period: usize) {
    *index += 1;
    if *index == period {
        *index = 0;
    }
}

impl<'a> Sampler<'a> {
    fn new(plane: &'a ndarray::ArrayBase<ndarray::CowRepr<'a, f32>, ndarray::Ix2>) -> Self {
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

    /// [`Sampler::sample`] for a point known to lie inside `[0, w−1) × [0, h−1)`.
    #[inline]
    fn sample_inside(&self, x: f64, y: f64) -> f32 {
        // Through u32, which converts to and from f64 in one instruction
        // each (usize takes several); a point inside a plane fits.
        let (x0, y0) = (x as u32, y as u32);
        let (tx, ty) = ((x - f64::from(x0)) as f32, (y - f64::from(y0)) as f32);
        let i = y0 as usize * self.width + x0 as usize;
        match (
            self.data.get(i..i + 2),
            self.data.get(i + self.width..i + self.width + 2),
        ) {
            (Some(&[a, b]), Some(&[c, d])) => {
                let top = a + (b - a) * tx;
                let bottom = c + (d - c) * tx;
                top + (bottom - top) * ty
            }
            _ => 0.0,
        }
    }

    /// Catmull-Rom interpolation: unlike bilinear, it keeps most of the
    /// mark's upper band when a downscaled image is enlarged back.
    fn sample_cubic(&self, x: f64, y: f64) -> f32 {
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
    fn resample(
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
    fn resample_axis_aligned(
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

/// Scale, rotation and mirror of the change that maps the original onto the
/// image, from the canonical→image map and the orientation that undid the
/// lattice's symmetry.
pub(crate) fn describe(linear: &Linear, orientation: Orientation) -> (f64, f64, f64, bool) {
    // The orientation was applied to the canonical plane to recover the
    // original; compose its inverse into the map: image ← canonical ← original.
    let o = orientation_matrix(orientation);
    let inv_o = [o[0], o[2], o[1], o[3]]; // orthogonal: inverse = transpose
    let m = linear.m;
    let full = [
        m[0] * inv_o[0] + m[1] * inv_o[2],
        m[0] * inv_o[1] + m[1] * inv_o[3],
        m[2] * inv_o[0] + m[3] * inv_o[2],
        m[2] * inv_o[1] + m[3] * inv_o[3],
    ];
    let det = full[0] * full[3] - full[1] * full[2];
    let mirrored = det < 0.0;
    // Remove the mirror (x → −x in the original) before reading the rotation.
    let a = if mirrored {
        [-full[0], full[1], -full[2], full[3]]
    } else {
        full
    };
    let scale_x = a[0].hypot(a[2]);
    let scale_y = a[1].hypot(a[3]);
    // Image y points down; counter-clockwise on screen is a negative angle in these axes.
    let rotation = -a[2].atan2(a[0]).to_degrees();
    (scale_x, scale_y, rotation, mirrored)
}

/// The matrix (row-major, acting on (x, y) with y down) of an orientation
/// about the origin, as applied to a plane by [`Orientation::apply`].
fn orientation_matrix(o: Orientation) -> [f64; 4] {
    let mut m = if o.mirror {
        [-1.0, 0.0, 0.0, 1.0]
    } else {
        [1.0, 0.0, 0.0, 1.0]
    };
    // Clockwise quarter turn on screen (y down): (x, y) → (−y, x).
    let turn = [0.0, -1.0, 1.0, 0.0];
    for _ in 0..o.quarter_turns {
        m = [
            turn[0] * m[0] + turn[1] * m[2],
            turn[0] * m[1] + turn[1] * m[3],
            turn[2] * m[0] + turn[3] * m[2],
            turn[2] * m[1] + turn[3] * m[3],
        ];
    }
    m
}

/// Lines describing the lattice estimates of an image, for diagnostics.
#[doc(hidden)]
pub fn debug_report(luma: &Plane, mask: &MaskParams) -> Vec<String> {
    let r = residual(luma, mask);
    lattices(&r)
        .iter()
        .map(|l| {
            let (sx, sy, rot, m) = describe(
                l,
                Orientation {
                    mirror: false,
                    quarter_turns: 0,
                },
            );
            format!(
                "lattice {:?}: scale {sx:.4} x {sy:.4}, rotation {rot:.3}, mirror {m}",
                l.m
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypothesis_count_covers_every_probed_map() {
        let (mut coarse, mut screened) = (0, 0);
        for family in Family::ALL {
            coarse += family.steps() + 1;
            screened += 3 * screened_per_family(family.steps());
        }
        assert!(coarse <= SEARCH_STEPS, "{coarse}");
        assert!(screened <= SCREEN_STEPS, "{screened}");
    }

    #[test]
    fn a_small_image_tries_a_second_peak_below_the_usual_floor() {
        // kodim05 halved, as its scale search ranked it: a noise peak (two
        // maps) above the true scale, all below MIN_PROBE_STRENGTH.
        let refined = vec![(5.48, -0.1441), (5.45, -0.1435), (5.26, -0.6935), (5.2, -0.6929)];
        let trace = |small| FamilyTrace {
            family: Family::Scale,
            coarse: Vec::new(),
            screened: Vec::new(),
            refined: refined.clone(),
            small,
        };
        let scales =
            |chosen: Vec<(f32, Linear)>| -> Vec<f64> { chosen.iter().map(|(_, l)| l.m[0]).collect() };
        let small = scales(trace(true).chosen());
        assert_eq!(small.len(), CHOSEN_PER_FAMILY);
        assert!((small[0] - (-0.1441f64).exp()).abs() < 1e-9);
        assert!((small[1] - 0.5).abs() < 0.001, "{small:?}");
        // On a larger image the probes see more than the full test would
        // add cheaply: only the best map, and only above the usual floor.
        assert!(trace(false).chosen().is_empty());
        let strong = FamilyTrace {
            refined: vec![(6.0, -0.1441), (5.9, -0.6935)],
            ..trace(false)
        };
        assert_eq!(strong.chosen().len(), 1);
    }

    #[test]
    fn the_fine_residual_reads_a_downscaled_mark_more_clearly() {
        // Cel art (a part of the tiger sample), marked and halved bilinearly,
        // probed at the true map.
        let key = crate::Key::from_bytes([5; 32]);
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/cel_openclipart_tiger.png");
        let img = image::open(path).unwrap().crop_imm(400, 400, 768, 768);
        let marked = tattle_embed::EmbedOptions::default()
            .build(&key)
            .unwrap()
            .embed(&img, crate::Payload::new(7))
            .unwrap();
        let halved = marked.resize_exact(
            img.width() / 2,
            img.height() / 2,
            image::imageops::FilterType::Triangle,
        );
        let luma = tattle_core::plane::luma(&halved);
        let detector = crate::DetectOptions::default().build(&key).unwrap();
        let mask = MaskParams::default();
        let halving = Linear {
            m: [0.5, 0.0, 0.0, 0.5],
        };
        let Whitened { weights, residual } = Whitened::of(&luma, &mask);
        let fine = fine_residual(&luma, &weights);
        let probe = Probe::new(&residual, &weights, &detector.correlator);
        let side = probe_side(PROBE_SIDE, &halving);
        let plain = probe.strength(&halving, side);
        let probe = probe.with_fine(&fine);
        let fine_strength = probe.strength(&halving, side);
        // 9.4 against 5.6 when measured: line art halved, the case the
        // smaller window helps most. Near the mark's own scale the probe
        // reads the usual residual.
        assert!(fine_strength > 1.4 * plain, "{fine_strength} against {plain}");
        let identity = Linear::IDENTITY;
        let side = probe_side(PROBE_SIDE, &identity);
        let with_fine = probe.strength(&identity, side);
        let without = Probe::new(&residual, &weights, &detector.correlator).strength(&identity, side);
        assert_eq!(with_fine.to_bits(), without.to_bits());
    }

    #[test]
    fn orientations_are_the_eight_symmetries() {
        let p = Plane::from_shape_fn((3, 5), |(y, x)| (y * 5 + x) as f32);
        let images: Vec<Plane> = Orientation::all().map(|o| o.apply(&p)).collect();
        for (i, a) in images.iter().enumerate() {
            for b in images.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        let turn = Orientation {
            mirror: false,
            quarter_turns: 1,
        }
        .apply(&p);
        assert_eq!(turn.dim(), (5, 3));
        // Clockwise: the top-left corner goes to the top-right.
        assert_eq!(turn[[0, 2]], p[[0, 0]]);
    }

    #[test]
    fn orienting_a_fold_equals_folding_the_oriented_plane() {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([9; 32]);
        let plane = Plane::from_shape_fn((300, 413), |_| rng.chip());
        let folded = fold(&plane);
        for o in Orientation::all() {
            assert_eq!(
                o.apply_to_fold(&folded, 413, 300),
                fold(&o.apply(&plane)),
                "{o:?}"
            );
        }
    }

    #[test]
    fn fft_correlation_finds_a_cyclic_shift() {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([8; 32]);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let shifted = Plane::from_shape_fn((TILE, TILE), |(y, x)| {
            pattern[[(y + TILE - 9) % TILE, (x + TILE - 40) % TILE]]
        });
        let peak = PilotCorrelator::new(&pattern).best_shift(&shifted);
        assert_eq!(peak.origin, (40, 9));
        assert!(peak.strength > 10.0, "{peak:?}");
    }

    /// A fold holding a faint copy of `pattern` (a tenth of the noise's
    /// size) shifted to tile origin (40, 9), noise, and `edges(x, y)`.
    fn faint_fold(pattern: &Plane, edges: impl Fn(usize, usize) -> f32) -> Plane {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([4; 32]);
        Plane::from_shape_fn((TILE, TILE), |(y, x)| {
            0.4 * pattern[[(y + TILE - 9) % TILE, (x + TILE - 40) % TILE]] + 4.0 * rng.chip() + edges(x, y)
        })
    }

    /// A random ±1 pilot tile (seeded by `seed`), and a `side`-pixel square
    /// of it repeated, scaled by `scale` and at `amplitude` times the size
    /// of the ±1 noise added to it.
    fn scaled_pilot(seed: u8, scale: f64, side: usize, amplitude: f32) -> (Plane, Plane) {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([seed; 32]);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let image = Plane::from_shape_fn((side, side), |(y, x)| {
            let (u, v) = (x as f64 / scale, y as f64 / scale);
            amplitude * bilinear_wrapped(&pattern, u, v) + rng.chip()
        });
        (pattern, image)
    }

    #[test]
    fn screening_looks_closer_than_the_coarse_grid_on_a_mid_sized_image() {
        // A pilot tile repeated and enlarged ×1.5 (768 pixels a side, so 512
        // canonical pixels), under noise ten times its size: the screening
        // budget must see the true map more clearly than the coarse one,
        // not sample the same pixels again.
        let scale = 1.5;
        let (pattern, image) = scaled_pilot(5, scale, 768, 0.1);
        let weights = Plane::from_elem(image.dim(), 1.0);
        let correlator = PilotCorrelator::new(&pattern);
        let probe = Probe::new(&image, &weights, &correlator);
        let linear = Family::Scale.linear(scale.ln());
        let coarse = probe.strength(&linear, COARSE_SIDE);
        let screen = probe.strength(&linear, SCREEN_SIDE);
        assert!(
            screen > 1.2 * coarse,
            "screening {screen} against coarse {coarse}"
        );
    }

    #[test]
    fn a_family_trace_ranks_the_true_map_and_chooses_it() {
        // A pilot tile repeated and shrunk ×0.8, under noise five times its
        // size: the scale family must choose the true map, and its trace
        // must say where the probes near it ranked at every stage.
        let scale: f64 = 0.8;
        let (pattern, image) = scaled_pilot(6, scale, 512, 0.2);
        let weights = Plane::from_elem(image.dim(), 1.0);
        let correlator = PilotCorrelator::new(&pattern);
        let probe = Probe::new(&image, &weights, &correlator);
        let trace = probe.search_family(Family::Scale);
        let (strength, linear) = *trace.chosen().first().expect("the true scale stands out");
        assert!(
            (linear.m[0] / scale - 1.0).abs() < 0.002,
            "{linear:?} at {strength}"
        );
        let lines = trace.describe(Some(scale.ln()));
        assert_eq!(lines.first().map(String::as_str), Some("Scale"));
        let refine = lines
            .iter()
            .find(|l| l.contains("refine:"))
            .expect("a refine line");
        // Grids of nine around the best two screened maps and, since the
        // probes span this small image, the best of another peak: each map
        // probed once however much the grids overlap.
        let probes: usize = refine
            .trim_start()
            .trim_start_matches("refine: ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a probe count");
        assert!(trace.small);
        assert!((9..=REFINED_PER_FAMILY * 9).contains(&probes), "{refine}");
        let (_, _, step) = Family::Scale.range();
        let mut maps: Vec<f64> = trace.refined.iter().map(|&(_, t)| t).collect();
        maps.sort_by(f64::total_cmp);
        assert!(maps.windows(2).all(|w| w[1] - w[0] > step / 24.0), "{maps:?}");
        assert!(refine.contains("at the truth: #1 "), "{refine}");
        assert!(trace.is_named("Scale") && !trace.is_named("Rotation"));
        let blind = trace.describe(None);
        assert!(blind.iter().all(|l| !l.contains("truth")), "{blind:?}");
    }

    #[test]
    fn straight_edges_along_the_grid_do_not_hide_the_pilot() {
        // A bright column and a dark row: the fold of a window's frame.
        let mut rng = tattle_core::prng::KeyedStream::from_seed([8; 32]);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let folded = faint_fold(&pattern, |x, y| {
            let column = if x == 70 { 400.0 } else { 0.0 };
            let row = if y == 20 { -300.0 } else { 0.0 };
            column + row
        });
        let peak = PilotCorrelator::new(&pattern).best_shift(&folded);
        assert_eq!(peak.origin, (40, 9), "{peak:?}");
        assert!(peak.strength > 5.0, "{peak:?}");
    }

    #[test]
    fn folds_without_long_edges_keep_their_frequency_axes() {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([8; 32]);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let fft = Fft2::new(TILE, TILE);
        let plain = fft.forward(&faint_fold(&pattern, |_, _| 0.0));
        let mut kept = plain.clone();
        without_grid_edges(&mut kept, TILE);
        assert_eq!(kept, plain);
        // A column 32 times the noise's size is far over the limit.
        let mut edged = fft.forward(&faint_fold(
            &pattern,
            |x, _| if x == 70 { 8.0 * 16.0 } else { 0.0 },
        ));
        without_grid_edges(&mut edged, TILE);
        assert!(edged.iter().take(TILE).all(|c| c.norm_sqr() == 0.0));
        assert!(edged.iter().step_by(TILE).all(|c| c.norm_sqr() == 0.0));
        assert!(edged
            .iter()
            .skip(TILE + 1)
            .take(TILE - 1)
            .any(|c| c.norm_sqr() > 0.0));
    }

    /// A smooth 128-periodic pattern, defined everywhere, and a plane that
    /// shows it through the linear map `I + e` about the plane's centre.
    fn drifted_pattern(e: [f64; 4], (h, w): (usize, usize)) -> (Plane, Plane) {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([12; 32]);
        // Wave numbers 4..20 per tile in each direction, either sign, random phases.
        let waves: Vec<(f64, f64, f64)> = (0..40)
            .map(|_| {
                let mut k = || (4 + rng.below(16)) as f64 * f64::from(rng.chip());
                (k(), k(), rng.below(1000) as f64 / 1000.0 * std::f64::consts::TAU)
            })
            .collect();
        let value = |x: f64, y: f64| -> f32 {
            let tau = std::f64::consts::TAU / TILE as f64;
            waves
                .iter()
                .map(|&(kx, ky, phase)| (tau * (kx * x + ky * y) + phase).cos())
                .sum::<f64>() as f32
        };
        let pattern = Plane::from_shape_fn((TILE, TILE), |(y, x)| value(x as f64, y as f64));
        // u = (I + e) p about the centre, so p = (I + e)⁻¹ u.
        let inverse = Linear {
            m: [1.0 + e[0], e[1], e[2], 1.0 + e[3]],
        }
        .inverse()
        .unwrap_or(Linear::IDENTITY);
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let plane = Plane::from_shape_fn((h, w), |(y, x)| {
            let (px, py) = inverse.apply(x as f64 - cx, y as f64 - cy);
            value(px + cx, py + cy)
        });
        (pattern, plane)
    }

    #[test]
    fn drift_across_the_plane_gives_the_maps_error() {
        for e in [[0.0015, 0.0, 0.0, 0.0015], [-0.001, 0.0004, -0.0004, -0.0012]] {
            let (pattern, plane) = drifted_pattern(e, (700, 900));
            let correlator = PilotCorrelator::new(&pattern);
            let refined = refine_by_drift(&plane, &correlator, Linear::IDENTITY).unwrap_or(Linear::IDENTITY);
            for (i, (got, want)) in refined
                .m
                .iter()
                .zip([1.0 + e[0], e[1], e[2], 1.0 + e[3]])
                .enumerate()
            {
                assert!(
                    (got - want).abs() < 1.5e-4,
                    "{e:?}: entry {i} is {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn a_perspective_is_undone_by_its_inverse() {
        let p = Perspective { g: 3e-5, h: -7e-5 };
        for (x, y) in [(0.0, 0.0), (640.0, -360.0), (-1000.0, 900.0)] {
            let (u, v) = p.apply(x, y);
            let (bx, by) = p.invert(u, v);
            assert!(
                (bx - x).abs() < 1e-9 && (by - y).abs() < 1e-9,
                "({x}, {y}) → ({bx}, {by})"
            );
        }
        assert_eq!(Perspective::NONE.apply(12.5, -3.0), (12.5, -3.0));
        assert!(Perspective::NONE.is_none() && !p.is_none());
    }

    #[test]
    fn a_peak_sought_near_a_shift_is_the_highest_within_reach() {
        let mut surface = Plane::zeros((TILE, TILE));
        surface[[10, 120]] = 5.0;
        surface[[70, 70]] = 9.0;
        // (120, 10) is 11.7 pixels from (2, 4), round the tile's edge.
        let (at, strength) = surface_peak_near(&surface, (2.0, 4.0), 12.0);
        assert_eq!(at, (120, 10));
        let (_, anywhere) = surface_peak_of(&surface, TILE);
        assert!(strength > 0.0 && strength < anywhere, "{strength} {anywhere}");
        let (at, _) = surface_peak_near(&surface, (2.0, 4.0), 11.0);
        assert!(at != (120, 10) && at != (70, 70), "{at:?}");
        assert_eq!(surface_peak_near(&surface, (2.0, 4.0), 200.0).0, (70, 70));
    }

    #[test]
    fn region_drifts_give_the_perspective() {
        let (pattern, _) = drifted_pattern([0.0; 4], (TILE, TILE));
        let correlator = PilotCorrelator::new(&pattern);
        let value = |x: f64, y: f64| bilinear_wrapped(&pattern, x, y);
        let (w, h) = (900usize, 700usize);
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        for q in [Perspective { g: 0.0, h: 4e-5 }, Perspective { g: 3e-5, h: -2e-5 }] {
            // The original's point o shows at q.apply(o): resampling
            // through q lines the tiles up again. Each estimate is made on
            // the plane resampled through the last.
            let resampled = |p: Perspective| {
                Plane::from_shape_fn((h, w), |(y, x)| {
                    let (px, py) = p.apply(x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                    let (ox, oy) = q.invert(px, py);
                    value(ox + cx, oy + cy)
                })
            };
            let (mut linear, mut found) = (Linear::IDENTITY, Perspective::NONE);
            for round in 0..3 {
                let reach = (round > 0).then_some(PERSPECTIVE_NEAR_REACH);
                match perspective_by_drift(&resampled(found), &correlator, (Linear::IDENTITY, found), reach) {
                    Some(next) => (linear, found) = next,
                    None => break,
                }
            }
            assert!(
                (found.g - q.g).abs() < 6e-6 && (found.h - q.h).abs() < 6e-6,
                "{q:?}: found {found:?}"
            );
            // There is no linear error to undo.
            assert!(
                linear
                    .m
                    .iter()
                    .zip(Linear::IDENTITY.m)
                    .all(|(a, b)| (a - b).abs() < 3e-4),
                "{q:?}: {linear:?}"
            );
        }
        // An unwarped plane shows none.
        let plane = Plane::from_shape_fn((h, w), |(y, x)| value(x as f64, y as f64));
        assert_eq!(
            perspective_by_drift(&plane, &correlator, (Linear::IDENTITY, Perspective::NONE), None),
            None
        );
    }

    #[test]
    fn drift_refinement_leaves_exact_maps_and_noise_alone() {
        let (pattern, exact) = drifted_pattern([0.0; 4], (600, 600));
        let correlator = PilotCorrelator::new(&pattern);
        assert_eq!(refine_by_drift(&exact, &correlator, Linear::IDENTITY), None);
        let mut rng = tattle_core::prng::KeyedStream::from_seed([13; 32]);
        let noise = Plane::from_shape_fn((600, 600), |_| rng.chip());
        assert_eq!(refine_by_drift(&noise, &correlator, Linear::IDENTITY), None);
        // Too small to split into quadrants of two tiles.
        let small = exact.slice(ndarray::s![..400, ..400]).to_owned();
        assert_eq!(refine_by_drift(&small, &correlator, Linear::IDENTITY), None);
    }

    #[test]
    fn sparse_folds_find_the_shift_at_every_phase() {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([9; 32]);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let correlator = PilotCorrelator::new(&pattern);
        for step in SAMPLING_STEPS {
            for origin in [(0, 0), (41, 10), (3, 126)] {
                let side = TILE / step;
                // Canonical pixel step·j of a plane whose tiles start at `origin`.
                let sparse = Plane::from_shape_fn((side, side), |(j, i)| {
                    pattern[[
                        (step * j + TILE - origin.1) % TILE,
                        (step * i + TILE - origin.0) % TILE,
                    ]]
                });
                let peak = correlator.best_sampled_shift(&sparse, step);
                assert_eq!(peak.origin, origin, "step {step}");
                assert!(peak.strength > 10.0, "step {step}: {peak:?}");
            }
        }
    }

    #[test]
    fn folds_wrap_rows_and_columns_around_the_tile() {
        let mut rng = tattle_core::prng::KeyedStream::from_seed([5; 32]);
        let residual = Plane::from_shape_fn((300, 420), |_| rng.chip() * 3.0);
        let weights = Plane::from_elem((300, 420), 1.0);
        let pattern = Plane::from_shape_fn((TILE, TILE), |_| rng.chip());
        let correlator = PilotCorrelator::new(&pattern);
        let probe = Probe::new(&residual, &weights, &correlator);
        let blurred = binomial_blur(&residual);
        let (h, w) = residual.dim();
        let inside = |x: f64, y: f64| x >= 0.0 && y >= 0.0 && x < (w - 1) as f64 && y < (h - 1) as f64;
        // Regions inside the image and across its borders, dense and sparse
        // (a sparse fold reads the blurred residual).
        for (linear, size) in [
            (Linear::IDENTITY, 264usize),
            (Family::Rotation.linear(7.0), 296),
            (Family::Scale.linear(0.9f64.ln()), 360),
        ] {
            for step in [1, 2] {
                let source = if step == 1 { &residual } else { &blurred };
                let standard = source.as_standard_layout();
                let sampler = Sampler::new(&standard);
                let side = TILE / step;
                let samples = size.div_ceil(step);
                let half = size as f64 / 2.0 - 0.5;
                let mut expected = Plane::zeros((side, side));
                for j in 0..samples {
                    let (mut x, mut y) = linear.apply(-half, (step * j) as f64 - half);
                    x += probe.focus.0;
                    y += probe.focus.1;
                    for i in 0..samples {
                        if inside(x, y) {
                            expected[[j % side, i % side]] += sampler.sample_inside(x, y);
                        }
                        x += linear.m[0] * step as f64;
                        y += linear.m[2] * step as f64;
                    }
                }
                let folded = probe.fold(&linear, size, step);
                let differing = folded
                    .iter()
                    .zip(&expected)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(differing, 0, "{linear:?} step {step}");
            }
        }
    }

    #[test]
    fn the_probe_focus_is_the_busiest_window() {
        let weights = Plane::from_shape_fn((600, 900), |(y, x)| {
            if (400..520).contains(&y) && (100..260).contains(&x) {
                1.0
            } else {
                0.01
            }
        });
        let (x, y) = busiest_window_centre(&weights, 128);
        assert!(
            (150.0..=210.0).contains(&x) && (430.0..=490.0).contains(&y),
            "{x} {y}"
        );
        // Windows larger than the plane are clipped to it.
        assert_eq!(busiest_window_centre(&Plane::zeros((20, 30)), 128), (14.5, 9.5));
    }

    #[test]
    fn the_search_window_is_the_busiest_part_of_a_large_frame() {
        // 8K frame, texture only in a 1000x600 patch at (5000, 3000).
        let (w, h) = (7680, 4320);
        let blocks = Plane::from_shape_fn((h / 8, w / 8), |(y, x)| {
            if (625..700).contains(&x) && (375..450).contains(&y) {
                1.0
            } else {
                0.01
            }
        });
        let window = Window::busiest(&blocks, w, h, 1 << 23);
        assert!(window.width * window.height <= 1 << 23, "{window:?}");
        assert!(
            window.left % 8 == 0 && window.top % 8 == 0 && window.width % 8 == 0,
            "{window:?}"
        );
        assert!(window.left + window.width <= w && window.top + window.height <= h);
        // The image's proportions, about 3840x2160.
        assert!(
            (window.width as f64 / window.height as f64 - 16.0 / 9.0).abs() < 0.02,
            "{window:?}"
        );
        assert!(
            window.left <= 5000 && window.left + window.width >= 5600,
            "{window:?}"
        );
        assert!(
            window.top <= 3000 && window.top + window.height >= 3600,
            "{window:?}"
        );
        assert_ne!(window, Window::whole(w, h));
        // Within the budget: the whole image.
        let small = Window::busiest(&Plane::zeros((135, 240)), 1920, 1080, 1 << 23);
        assert_eq!(small, Window::whole(1920, 1080));
        // A long strip keeps at least two tiles of height.
        let strip = Window::busiest(&Plane::zeros((32, 12500)), 100_000, 256, 1 << 16);
        assert_eq!((strip.height, strip.width), (256, 256));
    }

    #[test]
    fn a_grid_between_pixels_is_put_back_on_them() {
        let (pattern, aligned) = drifted_pattern([0.0; 4], (384, 384));
        let correlator = PilotCorrelator::new(&pattern);
        let whole = Window::whole(384, 384);
        assert_eq!(grid_offset(&aligned, &correlator), None);
        let moved = Canonical::resample_offset(&aligned, whole, Linear::IDENTITY, (0.45, -0.4))
            .unwrap()
            .plane
            .into_owned();
        let offset = grid_offset(&moved, &correlator).unwrap();
        assert!(
            (offset.0 + 0.45).abs() < 0.1 && (offset.1 - 0.4).abs() < 0.1,
            "{offset:?}"
        );
        let back = Canonical::resample_offset(&moved, whole, Linear::IDENTITY, offset)
            .unwrap()
            .plane
            .into_owned();
        assert_eq!(grid_offset(&back, &correlator), None);
        let peak = |p: &Plane| correlator.best_shift(&fold(p)).strength;
        assert!(peak(&back) > peak(&moved), "{} {}", peak(&back), peak(&moved));
    }

    #[test]
    fn axis_aligned_resampling_matches_the_pointwise_one_bit_for_bit() {
        let source = Plane::from_shape_fn((37, 53), |(y, x)| {
            ((x * 7919 + y * 104_729) % 251) as f32 / 7.0 - 11.0
        });
        let standard = source.as_standard_layout();
        let sampler = Sampler::new(&standard);
        // Enlarging, shrinking and stretching maps whose rows start outside
        // the source, so that the border clamping is exercised too.
        for (size, x_start, x_step, y_start, y_step) in [
            ((90, 120), -2.3, 0.4537, -1.7, 0.4412),
            ((20, 25), 0.25, 2.2, 0.5, 1.9),
            ((41, 64), -0.75, 0.9, 1.1, 1.0),
        ] {
            let row_y = |v: usize| y_start + v as f64 * y_step;
            let pointwise = sampler.resample(size, |v| (x_start, row_y(v)), (x_step, 0.0));
            let separable = sampler.resample_axis_aligned(size, x_start, x_step, row_y);
            let bits = |p: &Plane| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&pointwise), bits(&separable), "{size:?} step {x_step}");
        }
    }

    #[test]
    fn canonical_resampling_undoes_a_known_scale() {
        let original =
            Plane::from_shape_fn((64, 64), |(y, x)| (x as f32 * 0.3).sin() + (y as f32 * 0.2).cos());
        let standard = original.as_standard_layout();
        let sampler = Sampler::new(&standard);
        let doubled = Plane::from_shape_fn((128, 128), |(y, x)| {
            sampler.sample_cubic(x as f64 / 2.0 - 0.25, y as f64 / 2.0 - 0.25)
        });
        let back = Canonical::resample(
            &doubled,
            Window::whole(128, 128),
            Linear {
                m: [2.0, 0.0, 0.0, 2.0],
            },
        )
        .unwrap()
        .plane;
        assert_eq!(back.dim(), (64, 64));
        let err: f32 = back
            .iter()
            .zip(original.iter())
            .skip(200)
            .take(3000)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / 3000.0;
        assert!(err < 0.05, "{err}");
    }

    #[test]
    fn describe_reports_rotation_and_mirror() {
        let o = Orientation {
            mirror: false,
            quarter_turns: 0,
        };
        let (sx, sy, r, m) = describe(&Linear::IDENTITY, o);
        assert!((sx - 1.0).abs() < 1e-9 && (sy - 1.0).abs() < 1e-9 && r.abs() < 1e-9 && !m);
        let mirror = Orientation {
            mirror: true,
            quarter_turns: 0,
        };
        assert!(describe(&Linear::IDENTITY, mirror).3);
    }
}
