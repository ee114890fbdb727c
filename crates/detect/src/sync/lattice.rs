//! The tile lattice from the autocorrelation of the residual.

use rustfft::num_complex::Complex32;
use tattle_core::layout::TILE;
use tattle_core::plane::{box_mean, Plane};

#[cfg(doc)]
use super::Family;
use super::{Fft2, Linear, MAX_LATTICES, TURNED_SCALES};

/// Shortest side of the region whose autocorrelation is taken as it is
/// (cyclically, a power of two a side).
const SHORT_SIDE: usize = 256;
/// Shortest side of an image a lattice is sought in: the autocorrelation
/// must reach past the shortest tile (×0.45, 58 pixels) to the next
/// repeat.
const MIN_SIDE: usize = 128;

/// Half-width, in frequency bins, of the neighbourhood whose mean power
/// the autocorrelation's spectrum is flattened by (see [`flattened_power`]).
const FLATTENING_RADIUS: usize = 3;
/// Smallest rotation, in degrees, the scale family is searched at apart
/// from its own: within a quarter of a degree its probes still line up.
const MIN_TURN: f64 = 0.25;
/// Largest rotation the scale family is searched at: that of the rotation
/// family's range (a phone's tilt, not a deliberate turn).
const MAX_TURN: f64 = 11.0;
/// Angles, in degrees, of the tile vectors (1, 1), (2, 1) and (2, −1) to
/// the tile's side: the sides of the square lattices of every second and
/// every fifth tile, which a lattice estimate may be (see
/// [`finest_lattice`]) where the points between read too faintly to refine
/// it.
const SUBLATTICE_ANGLES: [f64; 3] = [45.0, 26.565_051_177_077_99, -26.565_051_177_077_99];

/// What the autocorrelation of an image's residual shows of the tile
/// lattice. Nothing here uses the key: the lattice is a property of the
/// image.
#[derive(Debug, Default)]
pub(crate) struct Lattices {
    /// Up to [`MAX_LATTICES`] linear maps (canonical → image), best first;
    /// none when no periodicity stands out.
    pub(crate) maps: Vec<Linear>,
    /// Up to [`TURNED_SCALES`] rotations, in degrees counter-clockwise on
    /// screen (as [`Family::Rotation`]'s parameter), at which the scale
    /// family is worth searching: the angle of each estimate's clearer
    /// side (its autocorrelation peak the stronger), modulo a quarter
    /// turn, best estimate first, between [`MIN_TURN`] and [`MAX_TURN`];
    /// failing every estimate, the same side read as one of the lattice of
    /// every second or fifth tile ([`SUBLATTICE_ANGLES`]; the flat gnome
    /// turned 5° and scaled ×0.75 reads only the diagonal lattice, at 40.0°,
    /// whose points between read too faintly for [`finest_lattice`]).
    /// A lattice's angle survives where its scale does not: one side's
    /// peaks may be lost in the content, or the basis may be one of every
    /// second tile, while the other side still gives the angle (`fixing`
    /// turned 2° and scaled ×0.75, marked with the key `[3; 32]`: −2.13°
    /// at 0.75 x 0.89).
    pub(crate) turns: Vec<f64>,
}

/// Estimates the tile lattice of an image from the autocorrelation of its
/// residual.
pub(crate) fn lattices(residual: &Plane) -> Lattices {
    let (h, w) = residual.dim();
    // The central region: a power of two a side, up to 1,024; a side
    // shorter than 256 pixels (a small image, halved) is taken whole and
    // padded with zeros far enough that no lag in reach wraps around.
    let size = |d: usize| -> (usize, usize) {
        if d < SHORT_SIDE {
            return (d, (d + d / 2).next_power_of_two());
        }
        let mut s = SHORT_SIDE;
        while s * 2 <= d.min(1024) {
            s *= 2;
        }
        (s, s)
    };
    if h < MIN_SIDE || w < MIN_SIDE {
        return Lattices::default();
    }
    let ((rh, ch), (rw, cw)) = (size(h), size(w));
    let (y0, x0) = ((h - rh) / 2, (w - rw) / 2);
    let mut region = Plane::zeros((ch, cw));
    // Owned (contiguous) before summing, so that the mean is summed in the
    // same order whatever the image's layout.
    let taken = residual.slice(ndarray::s![y0..y0 + rh, x0..x0 + rw]).to_owned();
    let mean = taken.sum() / taken.len() as f32;
    region
        .slice_mut(ndarray::s![..rh, ..rw])
        .zip_mut_with(&taken, |r, &v| *r = v - mean);
    let fft = Fft2::new(ch, cw);
    let raw = fft.inverse_real(flattened_power(&fft.forward(&region), (ch, cw)));
    let zero = raw.get((0, 0)).copied().unwrap_or(0.0);
    // The mark's periodicity gives sharp peaks; image content gives broad
    // hills. Keep what stands above its neighbourhood.
    let acf = &raw - &box_mean(&raw, 3);
    if zero <= 0.0 {
        return Lattices::default();
    }
    let at = |dx: f64, dy: f64| -> f32 { bilinear_wrapped(&acf, dx, dy) / zero };

    // Local maxima in the annulus of plausible tile sizes (scale 0.45–2.2).
    let (r_min, r_max) = (
        0.45 * TILE as f64,
        (2.2 * TILE as f64).min(rh.min(rw) as f64 / 2.0 - 2.0),
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
    let mut consider = |p: (f64, f64), q: (f64, f64)| {
        let (p, q) = finest_lattice(&at, p, q, r_max);
        bases.push((lattice_score(&at, p, q, r_max), canonical_basis(p, q)));
    };
    for (i, &p) in vectors.iter().enumerate() {
        for &q in vectors.iter().skip(i + 1) {
            let (lp, lq) = ((p.0 * p.0 + p.1 * p.1).sqrt(), (q.0 * q.0 + q.1 * q.1).sqrt());
            let cos = (p.0 * q.0 + p.1 * q.1) / (lp * lq);
            if cos.abs() > 0.5 || lp / lq > 1.35 || lq / lp > 1.35 {
                continue;
            }
            consider(p, q);
        }
    }
    // A rotated and rescaled tile keeps its lattice square: one peak then
    // gives the whole basis, where the second shortest peak may be noise
    // or a longer lattice vector that pairs with nothing.
    for &(_, x, y) in &peaks {
        consider((x, y), (-y, x));
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
    // Each estimate's clearer side, as a rotation modulo a quarter turn.
    let sides: Vec<f64> = out
        .iter()
        .map(|linear| {
            let t = TILE as f64;
            let sides = [
                (linear.m[0] * t, linear.m[2] * t),
                (linear.m[1] * t, linear.m[3] * t),
            ];
            let [first, second] = sides.map(|(x, y)| (at(x, y), x, y));
            let (_, x, y) = if second.0 > first.0 { second } else { first };
            // The rotation family's parameter turns the image's axes by minus itself.
            quarter_turn(-y.atan2(x).to_degrees())
        })
        .collect();
    let turns = turns(&sides);
    Lattices { maps: out, turns }
}

/// The power spectrum of `spectrum` (`height × width` bins, row by row)
/// over the square root of its local mean ([`FLATTENING_RADIUS`]): the
/// autocorrelation's transform, half whitened. The tile's repeats put
/// sharp lines on the spectrum; the content puts most of its power in a
/// few places (broad hills, and the lines of its own periodic textures),
/// and with the plain power those dominate the autocorrelation's noise.
/// Divided by the whole local mean (full whitening, the phase transform of
/// generalised cross-correlation, Knapp and Carter 1976), every bin would
/// count alike, and the many that hold no line of the tile would add as
/// much noise as the lines add peak. Half whitened, the corpus frames
/// turned and rescaled together show their lattice more often: 100 → 114
/// of 144 cases read (nine chains of 16 images), no chain losing one;
/// fully whitened, 97–107, losing up to 6 (session 51, docs/BENCHMARKS.md).
fn flattened_power(spectrum: &[Complex32], (height, width): (usize, usize)) -> Vec<Complex32> {
    let power = Plane::from_shape_fn((height, width), |(y, x)| {
        spectrum.get(y * width + x).map_or(0.0, |c| c.norm_sqr())
    });
    // The box is cut, not wrapped, at the spectrum's edges: only the few
    // lowest frequencies, far below the mark's band, see fewer neighbours.
    let local = box_mean(&power, FLATTENING_RADIUS);
    power
        .iter()
        .zip(local.iter())
        .map(|(&p, &mean)| Complex32::new(if mean > 0.0 { p / mean.sqrt() } else { 0.0 }, 0.0))
        .collect()
}

/// The rotations the scale family is searched at (see [`Lattices::turns`])
/// given each lattice estimate's clearer side as a rotation, best first: a
/// side read as the tile's own first; failing that, as a side of the
/// lattice of every second or fifth tile, the rotation nearest upright it
/// can be.
pub(super) fn turns(sides: &[f64]) -> Vec<f64> {
    let plausible = |degrees: &f64| (MIN_TURN..=MAX_TURN).contains(&degrees.abs());
    let reread = sides.iter().filter_map(|&side| {
        SUBLATTICE_ANGLES
            .iter()
            .map(|&angle| quarter_turn(side + angle))
            .filter(plausible)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
    });
    let mut turns: Vec<f64> = Vec::new();
    for degrees in sides.iter().copied().filter(plausible).chain(reread) {
        if turns.len() < TURNED_SCALES && turns.iter().all(|&turn| (turn - degrees).abs() >= MIN_TURN) {
            turns.push(degrees);
        }
    }
    turns
}

/// `degrees` modulo a quarter turn, within ±45°.
fn quarter_turn(degrees: f64) -> f64 {
    degrees - 90.0 * (degrees / 90.0).round()
}

/// The finest lattice containing the one spanned by `p` and `q` whose
/// points all read as peaks. A lattice of every second tile (twice the
/// tile, or its diagonals) reads as well as the tile's own, since each of
/// its points is a tile repeat, and may outscore it on a few strong peaks;
/// undone, it would fold two tiles into one. So may the square lattice of
/// every fifth tile, spanned by the tile vectors (2, 1) and (−1, 2) or their
/// mirror image, which a frame turned and rescaled together often shows
/// best: ×0.75 and turned 5°, the spring poster's, the tiger's and the
/// gnome's autocorrelations (key `[3; 32]`) read it at 1.677 = 0.75·√5
/// tiles and 21.6° = 26.6° − 5°. Each refinement (the lattice with `p/2`,
/// `q/2` or `(p+q)/2` added, or with `(p ± 2q)/5`) is kept when its new
/// points read at least half as strongly as the lattice's own (for index 5,
/// those of both cosets it adds: one step of the new vector and two): for
/// a wrong refinement they fall between tile repeats, where the
/// autocorrelation holds noise only.
pub(super) fn finest_lattice(
    at: &dyn Fn(f64, f64) -> f32,
    p: (f64, f64),
    q: (f64, f64),
    reach: f64,
) -> ((f64, f64), (f64, f64)) {
    let (mut p, mut q) = (p, q);
    let shortest = 0.45 * TILE as f64;
    let long_enough = |a: (f64, f64), b: (f64, f64)| a.0.hypot(a.1) >= shortest && b.0.hypot(b.1) >= shortest;
    // Each refinement divides the cell by 2 or 5, so two at most stay above the shortest tile.
    for _ in 0..2 {
        let own = lattice_score(at, p, q, reach);
        if own <= 0.0 {
            break;
        }
        let half = |v: (f64, f64)| (0.5 * v.0, 0.5 * v.1);
        let sum = (p.0 + q.0, p.1 + q.1);
        let halvings = [
            (half(p), q, half(p)),
            (p, half(q), half(q)),
            (half(sum), q, half(sum)),
        ]
        .into_iter()
        .filter(|&(a, b, _)| long_enough(a, b))
        .map(|(a, b, offset)| (coset_score(at, p, q, offset, reach), a, b));
        // The new vector v spans the refined lattice with q (p = 5v ∓ 2q);
        // its cosets v and 2v (the others mirror them) must both read.
        let fifths = [2.0, -2.0]
            .into_iter()
            .map(|k| ((p.0 + k * q.0) / 5.0, (p.1 + k * q.1) / 5.0))
            .map(|v| (v, reduced(v, q)))
            .filter(|&(_, (a, b))| long_enough(a, b))
            .map(|(v, (a, b))| {
                let twice = (2.0 * v.0, 2.0 * v.1);
                let score = coset_score(at, p, q, v, reach).min(coset_score(at, p, q, twice, reach));
                (score, a, b)
            });
        let best = halvings.chain(fifths).max_by(|x, y| x.0.total_cmp(&y.0));
        match best {
            Some((score, a, b)) if score >= 0.5 * own => (p, q) = reduced(a, b),
            _ => break,
        }
    }
    (p, q)
}

/// A basis of the same lattice whose vectors are as short as they can be
/// (Lagrange–Gauss reduction), so that [`canonical_basis`] sees the tile's
/// own sides.
pub(super) fn reduced(p: (f64, f64), q: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let norm = |v: (f64, f64)| v.0 * v.0 + v.1 * v.1;
    let (mut a, mut b) = if norm(p) <= norm(q) { (p, q) } else { (q, p) };
    for _ in 0..16 {
        let k = ((a.0 * b.0 + a.1 * b.1) / norm(a)).round();
        b = (b.0 - k * a.0, b.1 - k * a.1);
        if norm(b) >= norm(a) {
            break;
        }
        std::mem::swap(&mut a, &mut b);
    }
    (a, b)
}

/// Mean normalised autocorrelation over the lattice points spanned by `p`
/// and `q` within reach.
fn lattice_score(at: &dyn Fn(f64, f64) -> f32, p: (f64, f64), q: (f64, f64), reach: f64) -> f32 {
    coset_score(at, p, q, (0.0, 0.0), reach)
}

/// Mean normalised autocorrelation over the points `offset + i·p + j·q`
/// within reach (a coset of the lattice spanned by `p` and `q`), leaving
/// out the zero lag.
fn coset_score(
    at: &dyn Fn(f64, f64) -> f32,
    p: (f64, f64),
    q: (f64, f64),
    offset: (f64, f64),
    reach: f64,
) -> f32 {
    let (mut sum, mut count) = (0.0f32, 0);
    for j in -3i32..=3 {
        for i in -3i32..=3 {
            let (x, y) = (
                offset.0 + i as f64 * p.0 + j as f64 * q.0,
                offset.1 + i as f64 * p.1 + j as f64 * q.1,
            );
            if (x, y) == (0.0, 0.0) {
                continue;
            }
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
pub(super) fn parabola_offset(minus: f32, peak: f32, plus: f32) -> f64 {
    let denominator = minus - 2.0 * peak + plus;
    if denominator.abs() < 1e-12 {
        0.0
    } else {
        (0.5 * (minus - plus) / denominator).clamp(-0.5, 0.5) as f64
    }
}

pub(super) fn bilinear_wrapped(plane: &Plane, x: f64, y: f64) -> f32 {
    let (h, w) = plane.dim();
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
    let get = |xx: i64, yy: i64| plane[[yy.rem_euclid(h as i64) as usize, xx.rem_euclid(w as i64) as usize]];
    let (x0, y0) = (fx as i64, fy as i64);
    let top = get(x0, y0) * (1.0 - tx) + get(x0 + 1, y0) * tx;
    let bottom = get(x0, y0 + 1) * (1.0 - tx) + get(x0 + 1, y0 + 1) * tx;
    top * (1.0 - ty) + bottom * ty
}
