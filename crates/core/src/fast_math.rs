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
}
