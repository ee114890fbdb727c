//! The pilot's tile shift: FFT cross-correlation of a folded residual with
//! the pilot's pixel pattern.

use std::sync::Arc;

use ndarray::Array2;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use tattle_core::layout::TILE;
use tattle_core::plane::Plane;

use super::parabola_offset;

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
#[derive(Clone, Copy, Debug, PartialEq)]
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
    pub(super) fn best_sampled_shift(&self, folded: &Plane, step: usize) -> ShiftPeak {
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
pub(super) fn without_grid_edges(spectrum: &mut [Complex32], side: usize) {
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
pub(super) fn surface_peak_of(surface: &Plane, width: usize) -> ((usize, usize), f32) {
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
pub(super) fn surface_peak_near(surface: &Plane, centre: (f64, f64), reach: f64) -> ((usize, usize), f32) {
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
