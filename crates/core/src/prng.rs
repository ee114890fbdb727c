//! Keyed pseudo-random streams.
//!
//! Every keyed sequence is drawn from ChaCha20 through its raw `next_u64`
//! output and our own conversions (chips, bounded integers, shuffles), never
//! through `rand`'s distribution helpers: their output may change between
//! versions, and a changed sequence would make every existing mark
//! unreadable. A golden test pins the output.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A deterministic stream of keyed random values.
///
/// ```
/// use tattle_core::prng::KeyedStream;
/// let mut a = KeyedStream::from_seed([9u8; 32]);
/// let mut b = KeyedStream::from_seed([9u8; 32]);
/// assert_eq!(a.below(1000), b.below(1000));
/// ```
pub struct KeyedStream {
    rng: ChaCha20Rng,
    chip_bits: u64,
    chips_left: u32,
}

impl KeyedStream {
    /// A stream seeded with 32 bytes (normally from [`crate::Key::derive`]).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            chip_bits: 0,
            chips_left: 0,
        }
    }

    /// The next raw 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next chip, `+1.0` or `-1.0` with equal probability; 64 chips are
    /// taken from each 64-bit word.
    pub fn chip(&mut self) -> f32 {
        if self.chips_left == 0 {
            self.chip_bits = self.rng.next_u64();
            self.chips_left = 64;
        }
        let bit = self.chip_bits & 1;
        self.chip_bits >>= 1;
        self.chips_left -= 1;
        if bit == 1 {
            1.0
        } else {
            -1.0
        }
    }

    /// A uniformly distributed integer in `0..bound` (`bound > 0`), without
    /// modulo bias (Lemire's multiply-and-reject method).
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        let bound = bound.max(1);
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.rng.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates), every order equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_pinned() {
        let mut s = KeyedStream::from_seed([42u8; 32]);
        let words: Vec<u64> = (0..2).map(|_| s.next_u64()).collect();
        let chips: Vec<f32> = (0..8).map(|_| s.chip()).collect();
        let bounded: Vec<u64> = (0..4).map(|_| s.below(10)).collect();
        assert_eq!(format!("{words:?} {chips:?} {bounded:?}"), GOLDEN);
    }
    const GOLDEN: &str =
        "[1585975039535028632, 8820585230369182788] [-1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, -1.0] [3, 5, 4, 7]";

    #[test]
    fn chips_are_balanced() {
        let mut s = KeyedStream::from_seed([1u8; 32]);
        let sum: f32 = (0..100_000).map(|_| s.chip()).sum();
        assert!(sum.abs() < 1_500.0, "sum {sum}"); // 4.7 sigma
    }

    #[test]
    fn below_is_uniform_and_in_range() {
        let mut s = KeyedStream::from_seed([3u8; 32]);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            let v = s.below(7) as usize;
            counts[v] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut s = KeyedStream::from_seed([5u8; 32]);
        let mut v: Vec<usize> = (0..1000).collect();
        s.shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}
