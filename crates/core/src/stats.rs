//! The null-hypothesis arithmetic behind every verdict.
//!
//! Under the null hypothesis — the image was not marked with this key — the
//! keyed ±1 chips are independent of the image, whatever the image is
//! (unmarked, or marked under another key). For a fixed vector `y` of
//! measurements from the image and independent Rademacher chips `c`, the
//! normalised correlation `z = Σ cᵢyᵢ / ‖y‖` is a Rademacher sum with unit
//! weight vector, and two classical bounds hold for every `y` — no model
//! of images is needed, the probability is over the choice of key:
//!
//! ```text
//! P(z ≥ t) ≤ exp(−t²/2)                  (Hoeffding, 1963)
//! P(z ≥ t) ≤ c* · P(η ≥ t),  η ~ N(0, 1)  (Bentkus & Dzindzalieta, 2015)
//! ```
//!
//! where `c* = 1 / (4 P(η ≥ √2)) ≈ 3.1787` is the smallest constant for
//! which the second holds for all weight vectors and all `t` (V. K. Bentkus,
//! D. Dzindzalieta, "A tight Gaussian bound for weighted sums of Rademacher
//! random variables", Bernoulli 21(2), 2015, 1231–1237; Pinelis proved it
//! first with 2e³/9 ≈ 4.46). With the Gaussian tail bounded by Mills'
//! inequality `P(η ≥ t) ≤ φ(t)/t`, the second is tighter than Hoeffding's
//! by the factor `t·√(2π)/c*`: 0.7–1.0 of a decade where tattle's
//! thresholds lie (t ≈ 6.4–11.8). tattle reports the smaller of the two.
//! Testing `m` hypotheses (payload candidates, geometries, vendors)
//! multiplies it by `m` (union bound).

/// `c*` of Bentkus & Dzindzalieta, `1 / (4 P(η ≥ √2)) = 3.178655…`, rounded
/// up so that the bound stays a bound.
const RADEMACHER_GAUSSIAN_CONSTANT: f64 = 3.1787;

/// Base-10 logarithm of an upper bound on `P(z ≥ t)` for a normalised
/// Rademacher correlation `z` (see the [module docs](self)): the smaller of
/// Hoeffding's `exp(−t²/2)` and `c*·φ(t)/t`, and 0 (probability 1) for
/// `t ≤ 0`.
///
/// ```
/// use tattle_core::stats::log10_tail_bound;
/// let hoeffding = -18.0 / std::f64::consts::LN_10; // exp(−6²/2)
/// // Tighter than Hoeffding by 6·√(2π)/3.1787 ≈ 4.73 at t = 6.
/// assert!((hoeffding - log10_tail_bound(6.0) - 4.7313f64.log10()).abs() < 1e-3);
/// assert_eq!(log10_tail_bound(-1.0), 0.0);
/// ```
pub fn log10_tail_bound(t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let hoeffding = -t * t / (2.0 * std::f64::consts::LN_10);
    let gaussian =
        hoeffding + (RADEMACHER_GAUSSIAN_CONSTANT / (t * (2.0 * std::f64::consts::PI).sqrt())).log10();
    hoeffding.min(gaussian).min(0.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `log10 P(S ≥ x)` for `S = (ε₁ + … + εₙ)/√n`, exactly, at every value
    /// `S` takes: the binomial tail summed from the top.
    fn equal_weight_tails(n: usize) -> Vec<(f64, f64)> {
        let ln_choose =
            |k: usize| -> f64 { (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum() };
        let mut tails = Vec::with_capacity(n + 1);
        let mut tail = 0.0f64;
        for heads in (0..=n).rev() {
            tail += (ln_choose(heads) - n as f64 * std::f64::consts::LN_2).exp();
            let x = (2.0 * heads as f64 - n as f64) / (n as f64).sqrt();
            tails.push((x, tail.log10()));
        }
        tails
    }

    #[test]
    fn the_bound_holds_for_every_equal_weight_sum_up_to_400_signs() {
        for n in 1..=400 {
            for (x, exact) in equal_weight_tails(n) {
                let bound = log10_tail_bound(x);
                assert!(
                    exact <= bound + 1e-12,
                    "n = {n}, x = {x}: exact {exact} > bound {bound}"
                );
            }
        }
    }

    #[test]
    fn the_bound_is_nearly_reached_where_the_constant_comes_from() {
        // Two signs with weights 1/√2: P(S ≥ √2) = 1/4 = c*·P(η ≥ √2). Our
        // bound uses φ(t)/t for the Gaussian tail, 32% above it at t = √2,
        // so a constant 25% too small would already break the previous test.
        let exact = 0.25f64.log10();
        let bound = log10_tail_bound(std::f64::consts::SQRT_2);
        assert!(bound >= exact && bound < exact + 0.13, "{bound}");
    }

    #[test]
    fn never_looser_than_hoeffding_and_tighter_where_verdicts_are_made() {
        for i in 1..400 {
            let t = f64::from(i) * 0.05;
            let hoeffding = -t * t / (2.0 * std::f64::consts::LN_10);
            assert!(log10_tail_bound(t) <= hoeffding.min(0.0) + 1e-15);
        }
        let gain = |t: f64| -t * t / (2.0 * std::f64::consts::LN_10) - log10_tail_bound(t);
        assert!((0.70..0.72).contains(&gain(6.5)), "{}", gain(6.5));
        assert!((0.83..0.85).contains(&gain(8.8)), "{}", gain(8.8));
    }
}
