//! Elementary functions for the per-pixel loops, written so that the
//! compiler keeps those loops in vector registers: no branches, no table
//! look-ups and no float-to-integer conversions (Rust's saturating `as`
//! is scalar code on x86-64). Pure IEEE arithmetic, the same on every
//! platform (libm is not bit-identical everywhere), which keeps marking
//! deterministic across machines.

/// Adding 1.5·2²³ to a value of magnitude below 2²² rounds it to a whole
/// number (to even on ties) that lands in the low bits of the sum.
const ROUNDER: f32 = 12_582_912.0;

/// `y` rounded to the nearest whole number (ties to even), as an integer
/// and as a float. `|y|` must be below 2²².
#[inline(always)]
pub(crate) fn nearest_whole(y: f32) -> (i32, f32) {
    let shifted = y + ROUNDER;
    (
        shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32,
        shifted - ROUNDER,
    )
}

/// `⌊y⌋` for `|y|` below 2²².
///
/// The floors of the change a pixel takes are found this way, run by run,
/// in vector registers.
#[inline(always)]
pub(crate) fn floor_small(y: f32) -> i32 {
    let (whole, nearest) = nearest_whole(y);
    whole - i32::from(nearest > y)
}

/// `log2 x` for `x ≥ 0` (about −127 at 0), to about 2e-5 absolute; with
/// [`exp2`], `x^e` to about 2e-5 relative for the exponents of the mask
/// (below 1), without a division.
#[inline(always)]
pub(crate) fn log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    // The mantissa m in [1, 2); log2 m = t·p(t) with t = m − 1 and p a
    // degree-5 Chebyshev fit (error 1.9e-5 over the interval).
    let t = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) - 1.0;
    let p = 1.442_668_9
        + t * (-0.720_175_86
            + t * (0.468_027_32 + t * (-0.301_046_7 + t * (0.144_683_85 - t * 0.034_176_37))));
    exponent as f32 + t * p
}

/// `2^y`, to about 2e-7 relative.
#[inline(always)]
pub(crate) fn exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    let (whole, nearest) = nearest_whole(y);
    let f = (y - nearest) * std::f32::consts::LN_2;
    // e^f for |f| ≤ ln 2 / 2: Taylor to degree 6 (error below 1.3e-7).
    let e_f =
        1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f / 720.0)))));
    e_f * f32::from_bits((whole as u32).wrapping_add(127) << 23)
}

/// `ln x` for a positive, finite `x`, to a few units in the last place of
/// an `f64`, so that rounding to `f32` almost always gives the correctly
/// rounded value and always the same one. For the constants and the float
/// transfer curve, where precision matters more than speed.
pub(crate) fn ln_precise(x: f64) -> f64 {
    // Odd powers of the atanh series: ln m = 2·atanh((m − 1)/(m + 1)).
    const ATANH_TERMS: [f64; 12] = [
        1.0,
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
    ];
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // m in [√½, √2) keeps |s| ≤ 0.172, where 12 terms reach 1e-19.
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        exponent += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = ATANH_TERMS.iter().rev().fold(0.0, |sum, &c| sum * s2 + c);
    f64::from(exponent) * std::f64::consts::LN_2 + 2.0 * s * series
}

/// `e^y` for `|y|` below 700, to a few units in the last place of an `f64`
/// (see [`ln_precise`]).
pub(crate) fn exp_precise(y: f64) -> f64 {
    // ln 2 split so that `k × LN_2_HIGH` is exact for the k used here.
    const LN_2_HIGH: f64 = 6.931_471_803_691_238e-1;
    const LN_2_LOW: f64 = 1.908_214_929_270_587_7e-10;
    let y = y.clamp(-700.0, 700.0);
    let k = (y * std::f64::consts::LOG2_E).round();
    let r = (y - k * LN_2_HIGH) - k * LN_2_LOW;
    // Taylor to degree 14 for |r| ≤ ln 2 / 2 (error below 1e-18).
    let mut term_sum = 1.0;
    for n in (1..=14).rev() {
        term_sum = 1.0 + term_sum * r / f64::from(n);
    }
    term_sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// `x^e` for `x ≥ 0` through [`ln_precise`] and [`exp_precise`].
pub(crate) fn pow_precise(x: f32, e: f32) -> f32 {
    if x <= 0.0 {
        return if e == 0.0 { 1.0 } else { 0.0 };
    }
    exp_precise(f64::from(e) * ln_precise(f64::from(x))) as f32
}

/// `log2 x` for a positive, finite `x` (see [`ln_precise`]).
pub(crate) fn log2_precise(x: f32) -> f32 {
    (ln_precise(f64::from(x)) / std::f64::consts::LN_2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_powers_match_powf() {
        for &e in &[0.35f32, 0.649, 0.7, 1.5] {
            for i in 0..2000 {
                let x = 1e-4 * 1.01f32.powi(i);
                let (fast, exact) = (exp2(e * log2(x)), x.powf(e));
                assert!((fast - exact).abs() <= 3e-5 * exact, "{x}^{e}: {fast} vs {exact}");
            }
        }
        assert!(exp2(0.35 * log2(0.0)) < 1e-13);
    }

    #[test]
    fn small_floors_are_floors() {
        for i in -40_000..40_000 {
            // Whole numbers, halves (ties) and values just beside them.
            for y in [
                i as f32 / 4.0,
                i as f32 / 4.0 + 1e-3,
                i as f32 / 4.0 - 1e-3,
                i as f32 * 97.3,
            ] {
                assert_eq!(floor_small(y), y.floor() as i32, "{y}");
            }
        }
    }

    #[test]
    fn precise_functions_round_like_libm() {
        let mut differing = 0;
        for i in 0..20_000 {
            let x = 1e-6f32 * 1.0013f32.powi(i);
            let ln = ln_precise(f64::from(x));
            assert!(
                (ln - f64::from(x).ln()).abs() <= 4e-16 * ln.abs().max(1.0),
                "ln {x}"
            );
            let y = f64::from(i as f32 * 0.0331 - 330.0);
            let exp = exp_precise(y);
            assert!((exp - y.exp()).abs() <= 4e-16 * exp, "exp {y}");
            let (fast, exact) = (pow_precise(x, 1.0 / 2.4), x.powf(1.0 / 2.4));
            assert!((fast - exact).abs() <= f32::EPSILON * exact, "{x}^(1/2.4)");
            differing += usize::from(fast != exact);
        }
        // libm's powf is within an ulp, not always correctly rounded.
        assert!(differing < 200, "{differing}");
        assert_eq!(pow_precise(0.0, 0.5), 0.0);
        assert_eq!(log2_precise(8.0), 3.0);
        assert_eq!(exp_precise(0.0), 1.0);
    }
}
