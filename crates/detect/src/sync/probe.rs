//! The pilot-guided brute-force search: one-parameter families of maps,
//! each probed on a region around the image's most textured window.

use ndarray::Array2;
use rayon::prelude::*;
use tattle_core::layout::TILE;
use tattle_core::plane::Plane;

use super::{
    advance_wrapping, Linear, Orientation, PilotCorrelator, Sampler, Tap, CHOSEN_PER_FAMILY, COARSE_SIDE,
    FINE_BELOW, FOCUS_WINDOW, MIN_PROBE_STRENGTH, MIN_PROBE_STRENGTH_SMALL, PROBE_SIDE, REFINED_BEST,
    REFINED_PER_FAMILY, SCREENED_FRACTION, SCREEN_SIDE, TURNED_SCALES, TURNED_SCREENED_FRACTION,
    WHOLE_LATTICE_SAMPLES,
};

/// A one-parameter family of geometric changes searched by brute force.
#[derive(Clone, Copy, Debug)]
pub(super) enum Family {
    /// Uniform scale, no rotation.
    Scale,
    /// Rotation about the centre, scale 1 (rotate and crop).
    Rotation,
    /// Horizontal scale only.
    AspectX,
    /// Vertical scale only.
    AspectY,
    /// Uniform scale at a fixed rotation, in degrees counter-clockwise on
    /// screen: a frame turned and rescaled together, searched at a rotation
    /// the lattice estimates show (see [`Lattices::turns`]). The lattice's
    /// angle survives where its scale does not: on kodim05 turned 2° and
    /// halved it reads −1.99° at scale 0.67.
    TurnedScale(f64),
}

impl Family {
    pub(super) const ALL: [Family; 4] = [Family::Scale, Family::Rotation, Family::AspectX, Family::AspectY];

    /// Range of the parameter and the coarse step.
    pub(super) fn range(self) -> (f64, f64, f64) {
        match self {
            // Log-scale steps of 0.75%: 212 steps from 0.45 to 2.2.
            Family::Scale | Family::TurnedScale(_) => (0.45f64.ln(), 2.2f64.ln(), 0.0075),
            // 0.4° steps: 56 steps over ±11°.
            Family::Rotation => (-11.0, 11.0, 0.4),
            // 0.75% steps from 0.8 to 1.25: 60 steps each.
            Family::AspectX | Family::AspectY => (0.8f64.ln(), 1.25f64.ln(), 0.0075),
        }
    }

    /// Steps of the coarse grid (which has one point more).
    pub(super) fn steps(self) -> usize {
        let (lo, hi, step) = self.range();
        ((hi - lo) / step).round() as usize
    }

    /// Coarse maps that are screened: one in [`SCREENED_FRACTION`], and one
    /// in [`TURNED_SCREENED_FRACTION`] for a turned scale search. That one
    /// is run at the angle the lattice shows, where the true map, if the
    /// angle is right, reads clearly (kodim15 turned 2° and halved: first
    /// of its coarse grid, at 16.9), and it is run on most unmarked frames
    /// too (a lattice of noise has an angle), whose search time it must
    /// not double.
    pub(super) fn screened(self) -> usize {
        let fraction = match self {
            Family::TurnedScale(_) => TURNED_SCREENED_FRACTION,
            _ => SCREENED_FRACTION,
        };
        (self.steps() + 1).div_ceil(fraction)
    }

    pub(super) fn linear(self, t: f64) -> Linear {
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
            Family::TurnedScale(degrees) => {
                let s = t.exp();
                Linear {
                    m: Family::Rotation.linear(degrees).m.map(|v| v * s),
                }
            }
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
    pub(crate) focus: (f64, f64),
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
    pub(super) fn fold(&self, linear: &Linear, size: usize, step: usize) -> Plane {
        self.fold_region(linear, self.focus, (size, size), step)
    }

    /// [`Probe::fold`] of the `width`×`height` canonical region centred on
    /// the image point `centre`.
    fn fold_region(
        &self,
        linear: &Linear,
        (cx, cy): (f64, f64),
        (width, height): (usize, usize),
        step: usize,
    ) -> Plane {
        let (h, w) = self.residual.dim();
        let (half_u, half_v) = (width as f64 / 2.0 - 0.5, height as f64 / 2.0 - 0.5);
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
        let (samples, rows) = (width.div_ceil(step), height.div_ceil(step));
        let mut tile = vec![0.0f32; side * side];
        let (dx, dy) = (linear.m[0] * step as f64, linear.m[2] * step as f64);
        let inside_x = |px: f64| px >= 0.0 && px < (w - 1) as f64;
        let inside_y = |py: f64| py >= 0.0 && py < (h - 1) as f64;
        let inside = |px: f64, py: f64| inside_x(px) && inside_y(py);
        // Image position of canonical (0, step·j), then steps of `step` canonical pixels along u.
        let row_start = |j: usize| {
            let (x, y) = linear.apply(-half_u, (step * j) as f64 - half_v);
            (x + cx, y + cy)
        };
        // Under a map without rotation or shear (the scale and aspect
        // searches') every row reads the same columns, at its own constant
        // height: the taps of the columns inside the image are found once,
        // and each row then costs four loads and a blend a sample
        // (filtering each image row once at the columns and blending the
        // two filtered rows was slower). Bit for bit the general path's.
        let columns: Option<(usize, Vec<Tap>)> = (linear.m[1] == 0.0 && dy == 0.0).then(|| {
            // x only ever grows (or only shrinks) along a row, so the
            // columns inside the image are one run, from `first`.
            let (mut x, _) = row_start(0);
            let mut first = None;
            let mut taps = Vec::with_capacity(samples);
            for column in 0..samples {
                if inside_x(x) {
                    first.get_or_insert(column);
                    taps.push(Tap::at(x));
                }
                x += dx;
            }
            (first.unwrap_or(0), taps)
        });
        // The run's taps as the tile's rows take them: from the first
        // column's place in the tile to the tile's edge, then whole tile
        // widths.
        let columns = columns.as_ref().map(|(first, taps)| {
            let offset = first % side;
            let (head, tail) = taps.split_at(taps.len().min(side.saturating_sub(offset)));
            (offset, head, tail)
        });
        // Rows and columns wrap around the tile every `side` samples,
        // counted with wrapping indices rather than `% side`: the compiler
        // recomputed that remainder, a division, for every sample.
        let mut tile_row = 0;
        for j in 0..rows {
            let (mut x, mut y) = row_start(j);
            let first = tile_row * side;
            advance_wrapping(&mut tile_row, side);
            let Some(row) = tile.get_mut(first..first + side) else {
                continue;
            };
            if let Some((offset, head, tail)) = columns {
                if inside_y(y) {
                    let pair = sampler.rows_at(y);
                    let add = |cells: &mut [f32], taps: &[Tap]| {
                        for (cell, &tap) in cells.iter_mut().zip(taps) {
                            *cell += pair.sample_inside(tap);
                        }
                    };
                    add(row.get_mut(offset..).unwrap_or_default(), head);
                    for chunk in tail.chunks(side) {
                        add(row, chunk);
                    }
                }
                continue;
            }
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
    pub(super) fn strength(&self, linear: &Linear, samples_per_side: usize) -> f32 {
        let whole = self.fit(linear, usize::MAX);
        let step = if whole < 2 * samples_per_side { 1 } else { 2 };
        let size = whole.min(samples_per_side * step);
        self.correlator
            .best_sampled_shift(&self.fold(linear, size, step), step)
            .strength
    }

    /// Pilot strength under `linear` (upright only) as the refinement of
    /// a family's search probes it.
    pub(crate) fn refining_strength(&self, linear: &Linear) -> f32 {
        self.strength(linear, probe_side(PROBE_SIDE, linear))
    }

    /// The strongest pilot over the eight orientations under `linear`: a
    /// cheap check of a lattice estimate.
    pub fn lattice_strength(&self, linear: &Linear) -> f32 {
        let size = self.fit(linear, PROBE_SIDE);
        self.strongest_orientation(&self.fold(linear, size, 1), (size, size))
    }

    /// The strongest pilot over the eight orientations with the whole
    /// image folded through `linear`: a lattice estimate whose probe of the
    /// centre reads too little may still line up over the frame. A
    /// keystone of 4% leaves the bison's estimate (scale 0.984 x 1.013)
    /// reading 4.0 on the centre and 8.9 over the frame; on the unmarked
    /// corpus frames at 1080p the estimates read 3.9–5.4. At most
    /// [`WHOLE_LATTICE_SAMPLES`] canonical pixels are folded, around the
    /// image's centre.
    pub fn whole_lattice_strength(&self, linear: &Linear) -> f32 {
        let (h, w) = self.residual.dim();
        let Some(inverse) = linear.inverse() else {
            return f32::NEG_INFINITY;
        };
        let corners = [(0.0, 0.0), (w as f64, 0.0), (0.0, h as f64), (w as f64, h as f64)]
            .map(|(x, y)| inverse.apply(x, y));
        let extent = |axis: fn(&(f64, f64)) -> f64| {
            let values = corners.iter().map(axis);
            let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, hi), v| {
                (l.min(v), hi.max(v))
            });
            ((high - low).ceil() as usize).max(TILE)
        };
        let (width, height) = (extent(|p| p.0), extent(|p| p.1));
        let shrink = (WHOLE_LATTICE_SAMPLES as f64 / (width * height) as f64)
            .sqrt()
            .min(1.0);
        let (width, height) = (
            (width as f64 * shrink) as usize,
            (height as f64 * shrink) as usize,
        );
        let centre = (w as f64 / 2.0 - 0.5, h as f64 / 2.0 - 0.5);
        let tile = self.fold_region(linear, centre, (width, height), 1);
        self.strongest_orientation(&tile, (width, height))
    }

    /// The strongest pilot over the eight orientations of `tile`, the fold
    /// of a `width`×`height` canonical region.
    fn strongest_orientation(&self, tile: &Plane, (width, height): (usize, usize)) -> f32 {
        Orientation::all()
            .map(|o| {
                self.correlator
                    .best_shift(&o.apply_to_fold(tile, width, height))
                    .strength
            })
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// The brute-force searches: for each family (and the scale family
    /// turned by each of `turns`, in degrees), the best map on a coarse
    /// grid, then refined on a larger region with a finer grid. Returns the
    /// refined maps strong enough to be worth the whole image, strongest
    /// first, those near the identity included. Key-dependent (it uses the
    /// pilot); every map it can try is counted in [`HYPOTHESES`].
    pub fn search_families(&self, turns: &[f64]) -> Vec<Linear> {
        let mut found: Vec<(f32, Linear)> = families(turns)
            .flat_map(|family| self.search_family(family).chosen())
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.into_iter().map(|(_, linear)| linear).collect()
    }

    pub(super) fn search_family(&self, family: Family) -> FamilyTrace {
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
            .take(family.screened())
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
    pub(crate) fn trace_families(&self, turns: &[f64]) -> Vec<FamilyTrace> {
        families(turns).map(|family| self.search_family(family)).collect()
    }
}

/// The families searched: every one of [`Family::ALL`], and the scale
/// family at each of `turns` (at most [`TURNED_SCALES`] are counted in the
/// hypotheses; more are not searched).
fn families(turns: &[f64]) -> impl Iterator<Item = Family> + '_ {
    Family::ALL.into_iter().chain(
        turns
            .iter()
            .take(TURNED_SCALES)
            .map(|&degrees| Family::TurnedScale(degrees)),
    )
}

/// The probes of one family's search, each stage's strongest first, as
/// (pilot strength, family parameter).
pub(crate) struct FamilyTrace {
    pub(super) family: Family,
    pub(super) coarse: Vec<(f32, f64)>,
    pub(super) screened: Vec<(f32, f64)>,
    pub(super) refined: Vec<(f32, f64)>,
    /// Whether the probes spanned the image (see [`Probe::spans_image`]).
    pub(super) small: bool,
}

impl FamilyTrace {
    /// The refined maps worth trying on the whole image, strongest first:
    /// the best, and, where the probes spanned the image, the best of
    /// another peak.
    pub(crate) fn chosen(&self) -> Vec<(f32, Linear)> {
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
    /// debug form spells it, without a turned scale's rotation).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        format!("{:?}", self.family).split('(').next() == Some(name)
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

/// Samples a side of a probe under `linear`: `side` for a map that keeps or
/// enlarges the image, up to twice that for one that shrinks it, so that
/// the probe spans as many of the image's pixels as at scale 1. On a
/// downscaled image every image pixel holds several canonical pixels of
/// the mark, and the pilot then needs all the pixels it can get.
pub(super) fn probe_side(side: usize, linear: &Linear) -> usize {
    let shrink = linear.determinant().abs().sqrt().max(0.5);
    (side as f64 / shrink.min(1.0)).round() as usize
}

/// The plane filtered by the 3x3 binomial kernel (edges repeated).
pub(super) fn binomial_blur(plane: &Plane) -> Plane {
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
pub(super) fn busiest_window_centre(weights: &Plane, window: usize) -> (f64, f64) {
    let (h, w) = weights.dim();
    let (win_w, win_h) = (window.min(w), window.min(h));
    let (x, y) = busiest_window(weights, (win_w, win_h), 8);
    ((x + win_w / 2) as f64 - 0.5, (y + win_h / 2) as f64 - 0.5)
}

/// Top-left corner of the `(width, height)` rectangle (at most the plane's
/// size) with the largest sum of `weights`, tried every `step` elements; the
/// central one on a tie.
pub(super) fn busiest_window(weights: &Plane, (win_w, win_h): (usize, usize), step: usize) -> (usize, usize) {
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
