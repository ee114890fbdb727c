//! Geometric resynchronisation: finding the tile grid again after cropping,
//! scaling, rotation, aspect change, mirroring and re-encoding.
//!
//! The mark is a tile repeated over the whole image, so it is periodic. We
//! follow the classical two-stage scheme of periodic watermarks:
//!
//! 1. **Lattice from the autocorrelation** (Kutter, "Watermarking resisting
//!    to translation, rotation and scaling", SPIE 3528, 1998; Alattar and
//!    Meyer, ISCAS 2003). The autocorrelation of a whitened residual of the
//!    image peaks on the lattice of tile repeats, whatever the content; it is
//!    taken with the power spectrum half whitened (over the square root of
//!    its local mean), so that the content's strongest frequencies do not
//!    drown the tile's spectral lines, nor the many bins without a line
//!    count as much as those with one (the phase transform of Knapp and
//!    Carter, 1976, whitens fully). Pairs
//!    of its strongest peak vectors, and each strong peak completed to a
//!    square lattice (a rotated and rescaled tile stays square, and the
//!    second side's peak may be lost in the content), give the linear part
//!    of the geometric change (scale, rotation, aspect, shear). Every point
//!    of a lattice of every second tile (or of every fifth: the square one
//!    spanned by the tile vectors (2, 1) and (−1, 2), which a frame turned
//!    and rescaled together often shows best) is a tile repeat too, so such
//!    a lattice can read as strongly as the tile's own: each candidate is
//!    taken to the finest lattice whose added points read as peaks, then
//!    refined by a least-squares fit over every lattice peak in reach. An
//!    image under 256 pixels a side (a small one, halved) is taken whole,
//!    padded. Nothing here uses the key: the lattice is a property of the
//!    image.
//! 2. **Grid and orientation from the keyed pilot.** The image is resampled
//!    so that tiles are square and 128 pixels again, leaving only the
//!    symmetries of a square lattice (quarter turns and mirror) and the tile
//!    phase. For each of the eight orientations, all tile copies are folded
//!    into one 128x128 tile and cross-correlated with the pilot's pixel
//!    pattern by FFT (rustfft): the peak gives the tile origin to the pixel.
//!
//! 3. **Pilot-guided brute force** when the lattice is too faint to see
//!    (small or busy images, strong downscaling): one-parameter families of
//!    maps (scale, rotation, aspect, and scale again at the angle of a
//!    lattice estimate: a frame turned and rescaled together often shows
//!    its lattice's angle but not its scale, or the angle of a lattice of
//!    every second or fifth tile, 45° or 26.6° off the tile's) are scanned,
//!    each map *probed* by
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
//!    for them: on the centre, and where that reads too little, folded over
//!    the whole frame (under a perspective a lattice may line up over the
//!    frame better than on the centre). On images up to 1 MP the exact
//!    halving, the commonest resize, is tried on the whole image whatever
//!    its probes read, in every orientation (`LIKELY_MAPS`): after halving
//!    and JPEG its probes are at the noise floor (a quarter of the mark per
//!    probe), the whole image is not.
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
//!    linear error and the perspective's two terms, made first to the
//!    regions that read the pilot clearly and dropping misplaced peaks
//!    (`perspective_by_drift`). Where a map's pilot already stands
//!    out over the whole plane, and always for the unchanged geometry
//!    (a screen seen from a corner lines up with no linear map, but its
//!    least distorted corner still lines up with the identity), the plane
//!    is resampled through the measured perspective (`Perspective`),
//!    round by round, and the strongest round is kept if it reads clearly
//!    more strongly than before. It refines a map from the regions that
//!    map already lines up; it is not a search, and it cannot find a
//!    perspective that leaves too few regions lined up under every map
//!    (a keystone of 4% on one image of the corpus, with the benchmark
//!    key, and a few more with other keys). Learned
//!    marks (StegaStamp, WAM) train against perspective instead; local
//!    resynchronisation of periodic marks goes back to the same
//!    autocorrelation literature (Ma et al., arXiv:2007.10240, 2021, for
//!    local bending).
//!
//! The statistics stay honest: the lattice is chosen from the image alone,
//! and every (lattice, orientation, shift) the search could pick counts as a
//! hypothesis in the pilot's false-positive bound (see [`HYPOTHESES`]).

use serde::Serialize;
use tattle_core::layout::TILE;
use tattle_core::mask::MaskParams;
use tattle_core::plane::Plane;

mod canonical;
mod correlate;
mod drift;
mod lattice;
mod probe;
#[cfg(test)]
mod tests;
mod whiten;

pub(crate) use self::{canonical::*, correlate::*, drift::*, lattice::*, probe::*, whiten::*};

/// Lattice estimates tried besides "no geometric change".
pub const MAX_LATTICES: usize = 3;
/// Orientations of a square lattice: four quarter turns, each with and without a mirror.
pub const ORIENTATIONS: usize = 8;
/// Scale searches at a rotation the lattice estimates show, at most (see
/// [`Lattices::turns`]): each screens an eighth of its coarse grid where the
/// other families screen half, and costs about 0.13 s at 1920x1080.
pub(crate) const TURNED_SCALES: usize = 1;
/// Brute-force families searched, at most.
const FAMILIES: usize = Family::ALL.len() + TURNED_SCALES;
/// Maps of the brute-force searches' coarse grids, over all families, at
/// most. See [`Probe::search_families`].
const SEARCH_STEPS: usize = 620;
/// Maps tried by refinement around the best screened maps of each family,
/// and those chosen made exact by [`refine_by_drift`].
const REFINE_STEPS: usize = FAMILIES * (REFINED_PER_FAMILY * 9 + CHOSEN_PER_FAMILY);
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
/// Canonical pixels, at most, of [`Probe::whole_lattice_strength`]'s fold:
/// a 1080p frame at scale 1.
const WHOLE_LATTICE_SAMPLES: usize = 1 << 21;
/// Smallest pilot strength over the whole frame for which a lattice
/// estimate whose probe of the centre reads less than
/// [`MIN_PROBE_STRENGTH`] is tried on the whole image.
pub(crate) const MIN_WHOLE_LATTICE_STRENGTH: f32 = 6.0;
/// Samples a side of the probes of the coarse brute-force grids.
const COARSE_SIDE: usize = 256;
/// Side of the image window, in pixels, the probes are centred on.
const FOCUS_WINDOW: usize = 384;
/// Samples a side of the probes that screen the strongest coarse maps.
const SCREEN_SIDE: usize = 384;
/// One coarse map in this many of each family is screened.
const SCREENED_FRACTION: usize = 2;
/// One coarse map in this many of a turned scale search is screened.
const TURNED_SCREENED_FRACTION: usize = 8;
/// Maps probed by the screening, at most (three around each screened map).
const SCREEN_STEPS: usize = 3 * (SEARCH_STEPS / SCREENED_FRACTION + FAMILIES);
/// Best screened maps of each family that are always refined.
const REFINED_BEST: usize = 2;
/// Screened maps of each family that are refined, at most: the
/// [`REFINED_BEST`], and, where the probes span the image, the best of
/// another peak.
const REFINED_PER_FAMILY: usize = REFINED_BEST + 1;
/// Maps tried on the whole image whatever the probes say, in every
/// orientation: the exact halving, the commonest resize. Its probes hold a
/// quarter of the tile copies they hold at scale 1, so after JPEG the true
/// scale ranks among false ones (8th–74th of a family's screening on the
/// corpus at ×0.5 + JPEG 75, where the best two are refined) while the
/// whole image under it gives the strongest fold peak of the search. The
/// brute-force families probe upright only, and a halved frame's lattice
/// often reads as that of every second or fifth tile (which the pilot does
/// not fold under), so a halved frame also mirrored or turned a quarter
/// was found only where its lattice read true: 10 of 16 on the corpus,
/// against 16 of 16 upright.
pub(crate) const LIKELY_MAPS: [Linear; 1] = [Linear {
    m: [0.5, 0.0, 0.0, 0.5],
}];
/// Largest image, in pixels, the [`LIKELY_MAPS`] are tried on: the
/// halving's canonical plane is four times the image, a cost only small
/// images can bear within the search's time (a larger halved image leaves
/// the probes enough of the mark to find it themselves).
pub(crate) const LIKELY_MAX_PIXELS: usize = 1 << 20;
/// Pilot hypotheses the search may choose from: every tile shift, in every
/// orientation, for the identity, each lattice estimate and the likely
/// maps, plus every tile shift for each map of the brute-force searches
/// and their refinements. An upper bound: fewer are tried.
pub const HYPOTHESES: f64 = (((1 + MAX_LATTICES + LIKELY_MAPS.len()) * ORIENTATIONS
    + SEARCH_STEPS
    + SCREEN_STEPS
    + REFINE_STEPS
    + FAMILIES * CHOSEN_PER_FAMILY)
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
        .maps
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
