//! The orthonormal 8x8 DCT-II used for every block of the mark.
//!
//! The transform is separable, so a block costs two 8x8 matrix products.
//! The basis is orthonormal (the inverse is the transpose), which keeps the
//! mark's energy identical in the pixel and coefficient domains: a change of
//! `d` in one coefficient moves the block's pixels by a pattern of total
//! energy `d²`. That makes strengths comparable across frequencies.

use std::sync::OnceLock;

/// Side of a DCT block in pixels.
pub const BLOCK: usize = 8;
/// Pixels in a block.
pub const BLOCK_AREA: usize = BLOCK * BLOCK;

/// An 8x8 block in row-major order (`[row * 8 + column]`).
pub type Block = [f32; BLOCK_AREA];

/// The DCT basis `C` (`C[u][x]`) and its transpose, computed once.
struct Matrices {
    forward: [[f32; BLOCK]; BLOCK],
    inverse: [[f32; BLOCK]; BLOCK],
}

fn matrices() -> &'static Matrices {
    static MATRICES: OnceLock<Matrices> = OnceLock::new();
    MATRICES.get_or_init(|| {
        let mut forward = [[0.0f32; BLOCK]; BLOCK];
        for (u, row) in forward.iter_mut().enumerate() {
            let scale = if u == 0 {
                (1.0f64 / 8.0).sqrt()
            } else {
                (2.0f64 / 8.0).sqrt()
            };
            for (x, v) in row.iter_mut().enumerate() {
                let angle = std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / 16.0;
                *v = (scale * angle.cos()) as f32;
            }
        }
        let mut inverse = [[0.0f32; BLOCK]; BLOCK];
        for (i, row) in inverse.iter_mut().enumerate() {
            for (v, forward_row) in row.iter_mut().zip(&forward) {
                *v = forward_row.get(i).copied().unwrap_or(0.0);
            }
        }
        Matrices { forward, inverse }
    })
}

/// The DCT basis: `basis()[u][x]` is frequency `u` at sample `x`.
pub fn basis() -> &'static [[f32; BLOCK]; BLOCK] {
    &matrices().forward
}

/// `A · X · Aᵀ`. With `A = C` this is the forward DCT; with `A = Cᵀ` the
/// inverse, because the basis is orthonormal.
fn sandwich(x: &Block, a: &[[f32; BLOCK]; BLOCK]) -> Block {
    let mut tmp = [0.0f32; BLOCK_AREA];
    for (dst, a_row) in tmp.chunks_exact_mut(BLOCK).zip(a.iter()) {
        for (&coef, src) in a_row.iter().zip(x.chunks_exact(BLOCK)) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += coef * s;
            }
        }
    }
    let mut out = [0.0f32; BLOCK_AREA];
    for (row_out, row_tmp) in out.chunks_exact_mut(BLOCK).zip(tmp.chunks_exact(BLOCK)) {
        for (o, a_row) in row_out.iter_mut().zip(a.iter()) {
            *o = row_tmp.iter().zip(a_row).map(|(t, c)| t * c).sum();
        }
    }
    out
}

/// Forward 2-D DCT-II of one block: `out[u * 8 + v]` is the coefficient of
/// vertical frequency `u` and horizontal frequency `v`.
///
/// ```
/// use tattle_core::dct::{forward, inverse};
/// let block = [3.0f32; 64];
/// let coefficients = forward(&block);
/// assert!((coefficients[0] - 24.0).abs() < 1e-4); // DC = 8 × mean
/// let back = inverse(&coefficients);
/// assert!((back[17] - 3.0).abs() < 1e-4);
/// ```
pub fn forward(block: &Block) -> Block {
    sandwich(block, &matrices().forward)
}

/// Inverse of [`forward`].
pub fn inverse(coefficients: &Block) -> Block {
    sandwich(coefficients, &matrices().inverse)
}

/// The pixel pattern of a single unit coefficient at `(u, v)`: what
/// [`inverse`] returns for a block that is zero except for a 1 there.
pub fn basis_pattern(u: usize, v: usize) -> Block {
    let c = &matrices().forward;
    // Frequencies past the block have no pattern: all zero.
    let none = [0.0f32; BLOCK];
    let (vertical, horizontal) = (c.get(u).unwrap_or(&none), c.get(v).unwrap_or(&none));
    let mut out = [0.0f32; BLOCK_AREA];
    for (row, cy) in out.chunks_exact_mut(BLOCK).zip(vertical) {
        for (o, cx) in row.iter_mut().zip(horizontal) {
            *o = cy * cx;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook O(N⁴) definition, in f64, as the oracle.
    fn naive_forward(block: &Block) -> [f64; 64] {
        let mut out = [0.0f64; 64];
        for u in 0..8 {
            for v in 0..8 {
                let cu = if u == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
                let cv = if v == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
                let mut acc = 0.0;
                for y in 0..8 {
                    for x in 0..8 {
                        acc += block[y * 8 + x] as f64
                            * (std::f64::consts::PI * (2 * y + 1) as f64 * u as f64 / 16.0).cos()
                            * (std::f64::consts::PI * (2 * x + 1) as f64 * v as f64 / 16.0).cos();
                    }
                }
                out[u * 8 + v] = cu * cv * acc;
            }
        }
        out
    }

    fn seeded_block(seed: u32) -> Block {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut b = [0.0f32; 64];
        for v in b.iter_mut() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *v = (state % 256) as f32;
        }
        b
    }

    #[test]
    fn forward_matches_naive_definition() {
        for seed in 0..50 {
            let block = seeded_block(seed);
            let fast = forward(&block);
            let slow = naive_forward(&block);
            for (f, s) in fast.iter().zip(slow.iter()) {
                assert!((*f as f64 - s).abs() < 2e-3, "{f} vs {s}");
            }
        }
    }

    #[test]
    fn round_trip_is_exact_to_float_tolerance() {
        for seed in 0..50 {
            let block = seeded_block(seed);
            let back = inverse(&forward(&block));
            for (a, b) in block.iter().zip(back.iter()) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn transform_preserves_energy() {
        let block = seeded_block(7);
        let e_pixels: f32 = block.iter().map(|v| v * v).sum();
        let e_coefs: f32 = forward(&block).iter().map(|v| v * v).sum();
        assert!((e_pixels - e_coefs).abs() / e_pixels < 1e-5);
    }

    #[test]
    fn basis_pattern_is_inverse_of_unit_coefficient() {
        let mut unit = [0.0f32; 64];
        unit[2 * 8 + 3] = 1.0;
        let a = inverse(&unit);
        let b = basis_pattern(2, 3);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}
