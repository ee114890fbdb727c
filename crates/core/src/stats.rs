//! The null-hypothesis arithmetic behind every verdict.
//!
//! Under the null hypothesis — the image was not marked with this key — the
//! keyed ±1 chips are independent of the image, whatever the image is
//! (unmarked, or marked under another key). For a fixed vector `y` of
//! measurements from the image and independent Rademacher chips `c`, the
//! normalised correlation `z = Σ cᵢyᵢ / ‖y‖` obeys Hoeffding's inequality
//!
//! ```text
//! P(z ≥ t) ≤ exp(−t²/2)
//! ```
//!
//! for every `y` — no model of images is needed, the probability is over the
//! choice of key. This bound is what tattle reports as the false-positive
//! probability. Testing `m` hypotheses (payload candidates, geometries,
//! vendors) multiplies it by `m` (union bound).

/// Base-10 logarithm of the Hoeffding bound `exp(−z²/2)` for `z > 0`, and 0
/// (probability 1) otherwise.
///
/// ```
/// let l = tattle_core::stats::log10_tail_bound(6.0);
/// assert!((l - (-18.0 / std::f64::consts::LN_10)).abs() < 1e-12);
/// assert_eq!(tattle_core::stats::log10_tail_bound(-1.0), 0.0);
/// ```
pub fn log10_tail_bound(z: f64) -> f64 {
    if z > 0.0 {
        -z * z / (2.0 * std::f64::consts::LN_10)
    } else {
        0.0
    }
}

/// Normalised correlation `Σ sᵢyᵢ / ‖y‖` of measurements `y` with signs
/// `s`, restricted to the indices where `take` is true. Zero when `y` is zero.
pub fn normalised_correlation(y: &[f32], signs: &[f32], take: impl Fn(usize) -> bool) -> f64 {
    let (mut dot, mut norm) = (0.0f64, 0.0f64);
    for (i, (&v, &s)) in y.iter().zip(signs).enumerate() {
        if take(i) {
            dot += f64::from(v) * f64::from(s);
            norm += f64::from(v) * f64::from(v);
        }
    }
    if norm > 0.0 {
        dot / norm.sqrt()
    } else {
        0.0
    }
}
