//! Drift refinement: a map's remaining linear error and a perspective,
//! from the tile shifts of parts of a resampled plane.

use rayon::prelude::*;
use tattle_core::layout::TILE;
use tattle_core::plane::Plane;

use super::{fold, Linear, Perspective, PilotCorrelator};

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
/// [`perspective_by_drift`] measures; a region starts every quarter of a
/// side ([`region_step`]). Two tiles
/// hold enough of the pilot to place it, and are small enough that the
/// drift a perspective leaves varies little across one (a quadrant's fold
/// is ruled by its part nearest the centre, where the map already fits).
pub(super) const PERSPECTIVE_REGION_TILES: usize = 2;
/// Most regions [`region_drifts`] measures on a plane: as many as a
/// quarter-side step lays on a 2,240-pixel square. A 1920x1080 plane has
/// 378 and a 2048x2048 one 841; on larger planes (a 4K frame's 8 MP
/// window would have 1,856) the step grows instead, since a fit needs
/// only a few dozen regions and each one costs a correlation. Each region
/// still holds two tiles of the mark, so it reads as strongly as before.
pub(super) const PERSPECTIVE_MAX_REGIONS: usize = 1024;
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
/// perspective, per matrix entry. The identity, which no search fitted, is
/// off by the whole linear part of a slight perspective (1–1.5% on a
/// screen seen from a corner at 2%), and a map the search found at the
/// busiest window fits the frame there, which may be a corner: under a 4%
/// keystone the gnome's, at its top right corner, is 3.1% off the frame's
/// centre. Beyond it lie fits to misplaced peaks such as session 40's
/// (kodim05's regions, half of them noise, fitted an error of 4.5%).
const PERSPECTIVE_MAX_CORRECTION: f64 = 0.04;
/// Pilot strength of the regions [`perspective_by_drift`] fits first,
/// where there are enough of them: regions that read 4 to 4.5 are mostly
/// noise's highest peaks at random shifts, and where they outnumber the
/// true ones (a perspective that leaves only part of the frame lined up)
/// they drag a fit to all regions too far for its outliers to be told.
const PERSPECTIVE_STRONG_REGION: f32 = 4.5;
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
pub(super) struct RegionDrift {
    /// The tile origin's shift from the whole plane's, within half a tile.
    pub shift: (f64, f64),
    /// The region's centre in canonical coordinates, relative to the
    /// received image's centre, about which the perspective is undone.
    pub centre: (f64, f64),
    /// The pilot's strength at that shift.
    pub strength: f32,
}

/// The pilot's tile shift, to a fraction of a pixel, in every region of
/// [`PERSPECTIVE_REGION_TILES`] tiles a side (overlapping, [`region_step`] apart) of a
/// whitened canonical plane whose pilot reaches `min_strength`. `origin`
/// is the canonical coordinate of the plane's top-left corner
/// ([`Canonical::origin`](super::Canonical::origin)).
fn region_drifts(
    residual: &Plane,
    origin: (f64, f64),
    correlator: &PilotCorrelator,
    reach: Option<f64>,
) -> Vec<RegionDrift> {
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
    let step = region_step(side, (h, w));
    let (xs, ys) = (region_origins(w, side, step), region_origins(h, side, step));
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
                    origin.0 + x0 as f64 + side as f64 / 2.0,
                    origin.1 + y0 as f64 + side as f64 / 2.0,
                ),
                strength,
            })
        })
        .collect()
}

/// Where [`region_drifts`]' regions, `side` pixels long, start along a
/// plane's side of `n` pixels: every `step`, the last flush with the far
/// edge.
fn region_origins(n: usize, side: usize, step: usize) -> Vec<usize> {
    if n < side {
        return Vec::new();
    }
    let mut at: Vec<usize> = (0..=(n - side)).step_by(step.max(1)).collect();
    if at.last() != Some(&(n - side)) {
        at.push(n - side);
    }
    at
}

/// How many regions [`region_drifts`] measures on a `(height, width)`
/// plane, for regions `side` pixels square, one every `step` pixels.
pub(super) fn region_count(side: usize, (h, w): (usize, usize), step: usize) -> usize {
    region_origins(w, side, step).len() * region_origins(h, side, step).len()
}

/// The distance between [`region_drifts`]' region origins on a `(height,
/// width)` plane, for regions `side` pixels square: a quarter of a side,
/// or the smallest whole multiple of it that keeps the regions within
/// [`PERSPECTIVE_MAX_REGIONS`] (a whole side at most).
pub(super) fn region_step(side: usize, (h, w): (usize, usize)) -> usize {
    let quarter = (side / 4).max(1);
    (1..=4)
        .map(|k| k * quarter)
        .find(|&step| region_count(side, (h, w), step) <= PERSPECTIVE_MAX_REGIONS)
        .unwrap_or(4 * quarter)
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
/// [`PERSPECTIVE_OUTLIER`]: first to the regions whose pilot reads
/// [`PERSPECTIVE_STRONG_REGION`] where there are enough of them, then to
/// every region that fit places within [`PERSPECTIVE_OUTLIER`].
/// `None` when too few regions can be measured, or what they show is too
/// small to matter or too large to be a perspective.
///
/// `c` is measured from the received image's centre, about which
/// [`Canonical::resample_through`](super::Canonical::resample_through)
/// undoes a perspective, not from the plane's own: in a window of a large
/// frame, or a plane a perspective already moved, the two differ, and
/// the fit would read part of the perspective as a linear error that the
/// resampling then adds to it (on a 3840x3840 frame searched on its
/// busiest 8 MP, 460 px off-centre, a 2% keystone was no longer found).
pub(crate) fn perspective_by_drift(
    residual: &Plane,
    origin: (f64, f64),
    correlator: &PilotCorrelator,
    (linear, current): (Linear, Perspective),
    reach: Option<f64>,
) -> Option<(Linear, Perspective)> {
    fit_perspective(
        region_drifts(residual, origin, correlator, reach),
        residual.dim(),
        (linear, current),
    )
}

/// [`perspective_by_drift`]'s fit, to the drifts of a `(height, width)` plane.
pub(super) fn fit_perspective(
    drifts: Vec<RegionDrift>,
    (h, w): (usize, usize),
    (linear, current): (Linear, Perspective),
) -> Option<(Linear, Perspective)> {
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
    let converge = |mut kept: Vec<RegionDrift>| -> Option<[f64; 8]> {
        loop {
            let solution = fit(&kept)?;
            let misses: Vec<f64> = kept.iter().map(|d| miss(d, &solution)).collect();
            let worst = misses.iter().copied().fold(0.0, f64::max);
            if worst <= PERSPECTIVE_OUTLIER {
                return Some(solution);
            }
            let limit = (worst / 2.0).max(PERSPECTIVE_OUTLIER);
            kept = kept
                .into_iter()
                .zip(&misses)
                .filter(|(_, &m)| m <= limit)
                .map(|(d, _)| d)
                .collect();
        }
    };
    let strong: Vec<RegionDrift> = drifts
        .iter()
        .filter(|d| d.strength >= PERSPECTIVE_STRONG_REGION)
        .copied()
        .collect();
    let from_strong = (strong.len() >= PERSPECTIVE_MIN_REGIONS)
        .then(|| converge(strong))
        .flatten()
        .and_then(|first| {
            converge(
                drifts
                    .iter()
                    .filter(|d| miss(d, &first) <= PERSPECTIVE_OUTLIER)
                    .copied()
                    .collect(),
            )
        });
    let [_, _, ex_u, ex_v, ey_u, ey_v, at_corner_g, at_corner_h] = match from_strong {
        Some(solution) => solution,
        None => converge(drifts)?,
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
