//! Measuring an image: what it says about every slot of the tile.
//!
//! The detector and the embedder (for informed embedding) measure images
//! the same way: for every 8x8 block, the DCT coefficients of the band,
//! weighted by how much mark the block can hold (the perceptual mask) over
//! how much the block's own content interferes (its band energy), summed
//! into the slot each coefficient belongs to.

use crate::dct::BLOCK;
use multiversion::multiversion;
use ndarray::{s, ArrayView2};
use rayon::prelude::*;

use crate::layout::{slot_index, BAND, SLOTS, TILE, TILE_BLOCKS};
use crate::mask::{perceptual_mask, MaskParams};
use crate::plane::Plane;

/// Variance (squared grey levels) added to every block's own coefficient
/// variance when weighting it, so that nearly flat blocks — where rounding
/// and compression noise dominate — do not get huge weights.
const NOISE_FLOOR: f32 = 1.0;

/// What an image says about every slot: key-independent, so one
/// observation can be tested against many keys.
#[derive(Clone, Debug)]
pub struct Observation {
    slots: Vec<f32>,
    blocks: usize,
}

/// How coefficients are weighed within a block.
#[derive(Clone, Copy)]
enum Weighting {
    /// The detector's: each coefficient's own size lowers its weight.
    Robust,
    /// Fixed per block, so the measurement is linear in the pixels.
    Linear,
}

/// Coefficients per block in the band.
pub const BAND_LEN: usize = BAND.len();

/// Horizontal and vertical frequencies of the band are all below this, so
/// a band-only transform needs just the first `BAND_REACH` row transforms.
const BAND_REACH: usize = 4;

/// The band coefficients of every whole 8x8 block of a plane, computed
/// with a band-only DCT (a third of the work of a full transform). The DCT
/// is linear, so the bands of a sum of planes are the sums of their bands;
/// the embedder uses this to measure host + mark without transforming the
/// host again.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockBands {
    bands: Vec<[f32; BAND_LEN]>,
    blocks_x: usize,
}

impl BlockBands {
    /// The bands of every whole block of `plane`, row by row.
    pub fn of(plane: &ArrayView2<f32>) -> Self {
        let (h, w) = plane.dim();
        let (blocks_x, blocks_y) = (w / BLOCK, h / BLOCK);
        let mut bands = vec![[0.0f32; BAND_LEN]; blocks_x * blocks_y];
        // Block rows are independent: one task each.
        bands
            .par_chunks_mut(blocks_x.max(1))
            .enumerate()
            .for_each(|(by, out)| {
                // Rows of a standard-layout plane or of a column slice of one
                // are contiguous; anything else is copied.
                let copies: Vec<Vec<f32>>;
                let direct: [&[f32]; BLOCK] =
                    std::array::from_fn(|y| plane.row(by * BLOCK + y).to_slice().unwrap_or(&[]));
                let rows: Vec<&[f32]> = if direct.iter().all(|r| r.len() >= blocks_x * BLOCK) {
                    direct.to_vec()
                } else {
                    copies = (0..BLOCK).map(|y| plane.row(by * BLOCK + y).to_vec()).collect();
                    copies.iter().map(Vec::as_slice).collect()
                };
                transform_block_row(&rows, out);
            });
        Self { bands, blocks_x }
    }

    /// The bands of the whole blocks of a band of rows: `rows` holds whole
    /// rows `width` wide, starting on a block boundary.
    ///
    /// ```
    /// use tattle_core::{observe::BlockBands, plane::Plane};
    /// let plane = Plane::from_shape_fn((40, 24), |(y, x)| ((x * 5 + y * 11) % 17) as f32);
    /// assert_eq!(BlockBands::of_slice(plane.as_slice().unwrap(), 24), BlockBands::of(&plane.view()));
    /// ```
    pub fn of_slice(rows: &[f32], width: usize) -> Self {
        Self::of_slice_masked(rows, width, &[])
    }

    /// [`BlockBands::of_slice`] of the blocks that count in a
    /// measurement: a block whose mean mask (`mask_means`, block by block
    /// as [`block_means`] gives them) is not above 0 has a gain of 0 (see
    /// [`BlockGains::from_bands`]), so nothing reads its band, which is
    /// left at 0 without being transformed. Blocks past the end of
    /// `mask_means` are transformed. Flat colour costs nothing.
    ///
    /// ```
    /// use tattle_core::observe::BlockBands;
    /// let rows: Vec<f32> = (0..8 * 24).map(|i| (i % 13) as f32).collect();
    /// let masked = BlockBands::of_slice_masked(&rows, 24, &[0.5, 0.0, 0.5]);
    /// let mut zeroed = rows.clone();
    /// zeroed.chunks_mut(24).for_each(|row| row[8..16].fill(0.0));
    /// assert_eq!(masked, BlockBands::of_slice(&zeroed, 24));
    /// ```
    pub fn of_slice_masked(rows: &[f32], width: usize, mask_means: &[f32]) -> Self {
        let blocks_x = width / BLOCK;
        let mut bands = vec![[0.0f32; BAND_LEN]; blocks_x * (rows.len() / width.max(1) / BLOCK)];
        transform_rows(rows, width, mask_means, &mut bands);
        Self { bands, blocks_x }
    }

    /// Adds `other` block by block: afterwards these are the bands of the
    /// sum of the two planes.
    pub fn add(&mut self, other: &BlockBands) {
        for (a, b) in self.bands.iter_mut().zip(&other.bands) {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
    }
}

/// The bands of the whole blocks of whole rows `width` wide (starting on
/// a block boundary), block row by block row, but for blocks whose mean
/// mask is not above 0 (see [`BlockBands::of_slice_masked`]).
fn transform_rows(pixels: &[f32], width: usize, mask_means: &[f32], out: &mut [[f32; BAND_LEN]]) {
    let blocks_x = width / BLOCK;
    if blocks_x == 0 {
        return;
    }
    for (by, (block_row, out)) in pixels
        .chunks_exact(BLOCK * width)
        .zip(out.chunks_exact_mut(blocks_x))
        .enumerate()
    {
        let rows: [&[f32]; BLOCK] =
            std::array::from_fn(|y| block_row.get(y * width..(y + 1) * width).unwrap_or_default());
        let means = mask_means.get(by * blocks_x..).unwrap_or_default();
        if means.len() < blocks_x {
            transform_block_row(&rows, out);
            continue;
        }
        // Runs of blocks that count, transformed together.
        let mut bx = 0;
        while bx < blocks_x {
            let counts = |i: &usize| means.get(*i).is_some_and(|m| *m > 0.0);
            let start = (bx..blocks_x).find(counts).unwrap_or(blocks_x);
            let end = (start..blocks_x).find(|i| !counts(i)).unwrap_or(blocks_x);
            if start < end {
                let run: [&[f32]; BLOCK] =
                    rows.map(|row| row.get(start * BLOCK..end * BLOCK).unwrap_or_default());
                transform_block_row(&run, out.get_mut(start..end).unwrap_or_default());
            }
            bx = end;
        }
    }
}

/// The bands of one row of blocks, given its 8 pixel rows (at least as
/// long as the blocks `out` has room for).
///
/// Both passes of the separable transform are written as sums of
/// `BAND_REACH`-wide rows scaled by one value each (matrix products in
/// outer-product form), which the compiler keeps in vector registers; dot
/// products would leave it one serial chain of additions each. Compiled
/// for AVX-512 and AVX2 too, where the processor has them: Rust never fuses
/// a multiply and an add on its own, so every version gives the same bits.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2"))]
fn transform_block_row(rows: &[&[f32]], out: &mut [[f32; BAND_LEN]]) {
    let basis = crate::dct::basis();
    // `low[x][v]`: horizontal frequency v < BAND_REACH at sample x.
    let low: [[f32; BAND_REACH]; BLOCK] = std::array::from_fn(|x| {
        std::array::from_fn(|v| basis.get(v).and_then(|b| b.get(x)).copied().unwrap_or(0.0))
    });
    for (bx, band) in out.iter_mut().enumerate() {
        // Row transforms for the low horizontal frequencies only…
        let mut partial = [[0.0f32; BAND_REACH]; BLOCK];
        for (p, row) in partial.iter_mut().zip(rows.iter()) {
            let pixels = row.get(bx * BLOCK..bx * BLOCK + BLOCK).unwrap_or(&[]);
            for (&pixel, low) in pixels.iter().zip(&low) {
                p.iter_mut().zip(low).for_each(|(p, c)| *p += pixel * c);
            }
        }
        // …then the column transforms for the low vertical frequencies.
        let mut coefficients = [[0.0f32; BAND_REACH]; BAND_REACH];
        for (column, basis_row) in coefficients.iter_mut().zip(basis) {
            for (&c, p) in basis_row.iter().zip(&partial) {
                column.iter_mut().zip(p).for_each(|(o, p)| *o += c * p);
            }
        }
        for (coefficient, &(u, v, _)) in band.iter_mut().zip(BAND.iter()) {
            *coefficient = coefficients.get(u).and_then(|c| c.get(v)).copied().unwrap_or(0.0);
        }
    }
}

/// The mean of a plane over every whole 8x8 block, row by row.
pub fn block_means(plane: &ArrayView2<f32>) -> Vec<f32> {
    let (h, w) = plane.dim();
    let (blocks_x, blocks_y) = (w / BLOCK, h / BLOCK);
    let mut sums = vec![0.0f32; blocks_x * blocks_y];
    if blocks_x > 0 {
        for (y, row) in plane.rows().into_iter().take(blocks_y * BLOCK).enumerate() {
            let out = sums.chunks_exact_mut(blocks_x).nth(y / BLOCK).unwrap_or_default();
            for (bx, o) in out.iter_mut().enumerate() {
                *o += row.iter().skip(bx * BLOCK).take(BLOCK).sum::<f32>();
            }
        }
    }
    sums.iter_mut().for_each(|s| *s /= (BLOCK * BLOCK) as f32);
    sums
}

/// How much each block counts in a measurement: its mean perceptual mask
/// over its band energy plus a noise floor. Computed once from a reference
/// image, it makes measurement a linear function of the pixels, which the
/// embedder uses to predict exactly what the detector will see.
#[derive(Clone, Debug)]
pub struct BlockGains {
    gains: Vec<f32>,
    blocks_x: usize,
}

impl BlockGains {
    /// The gains of blocks with these bands and these mean mask values.
    pub fn from_bands(bands: &BlockBands, mask_means: &[f32]) -> Self {
        let gains = bands
            .bands
            .iter()
            .zip(mask_means)
            .map(|(band, &mask_mean)| {
                if mask_mean > 0.0 {
                    mask_mean / (mean_square(band) + NOISE_FLOOR)
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            gains,
            blocks_x: bands.blocks_x,
        }
    }
}

fn mean_square(band: &[f32; BAND_LEN]) -> f32 {
    band.iter().map(|c| c * c).sum::<f32>() / BAND_LEN as f32
}

impl Observation {
    /// Measures a luma plane (grey levels) whose tile grid starts at its
    /// top-left corner, weighing blocks by the plane's own gains.
    pub fn measure(luma: &Plane, mask: &MaskParams) -> Self {
        Self::measure_aligned(luma, mask, (0, 0))
    }

    /// Measures a luma plane in which a tile starts at pixel `origin`
    /// (`x`, `y`); only the position modulo the tile size matters.
    pub fn measure_aligned(luma: &Plane, mask: &MaskParams, origin: (usize, usize)) -> Self {
        Self::measure_masked(luma, &perceptual_mask(luma, mask), origin)
    }

    /// [`Observation::measure_aligned`] with the plane's perceptual mask
    /// already computed.
    pub fn measure_masked(luma: &Plane, weights: &Plane, origin: (usize, usize)) -> Self {
        let (ox, oy) = (origin.0 % TILE, origin.1 % TILE);
        // A plane thinner than the offset has no whole block: an empty view.
        let (h, w) = luma.dim();
        let (sx, sy) = ((ox % BLOCK).min(w), (oy % BLOCK).min(h));
        let view = luma.slice(s![sy.., sx..]);
        let view_weights = weights.slice(s![sy.., sx..]);
        // Block 0 of the view starts at pixel s; its tile block is (s − o) / 8.
        let shift = (
            ((sx + TILE - ox) / BLOCK) % TILE_BLOCKS,
            ((sy + TILE - oy) / BLOCK) % TILE_BLOCKS,
        );
        let bands = BlockBands::of(&view);
        let gains = BlockGains::from_bands(&bands, &block_means(&view_weights));
        Self::from_bands(&bands, &gains, shift, Weighting::Robust)
    }

    /// Measures one band of rows of a plane, whose bands are known, with
    /// given gains: linear in the plane. The band's first row of blocks is
    /// the plane's `first_block_row`; the parts of a plane
    /// [`Observation::sum`] to the measurement of the whole.
    pub fn measure_bands_part(bands: &BlockBands, gains: &BlockGains, first_block_row: usize) -> Self {
        Self::from_bands(bands, gains, (0, first_block_row), Weighting::Linear)
    }

    /// The detector's measurement ([`Observation::measure_masked`] at the
    /// origin) of one band of rows of a plane whose bands are known, with
    /// given gains, as [`Observation::measure_bands_part`].
    pub fn measure_bands_robust_part(bands: &BlockBands, gains: &BlockGains, first_block_row: usize) -> Self {
        Self::from_bands(bands, gains, (0, first_block_row), Weighting::Robust)
    }

    /// The measurement of a plane from those of its parts, added in order.
    ///
    /// ```
    /// use tattle_core::{observe::{BlockBands, BlockGains, Observation}, plane::Plane};
    /// let plane = Plane::from_shape_fn((64, 48), |(y, x)| ((x * 5 + y * 11) % 17) as f32);
    /// let bands = BlockBands::of(&plane.view());
    /// let whole = Observation::measure_bands_part(&bands, &BlockGains::from_bands(&bands, &vec![1.0; 48]), 0);
    /// let values = plane.as_slice().unwrap();
    /// let parts = [0, 32].map(|first| {
    ///     let rows = &values[first * 48..(first + 32) * 48];
    ///     let part_gains = BlockGains::from_bands(&BlockBands::of_slice(rows, 48), &vec![1.0; 24]);
    ///     Observation::measure_bands_part(&BlockBands::of_slice(rows, 48), &part_gains, first / 8)
    /// });
    /// let summed = Observation::sum(parts);
    /// assert_eq!(summed.blocks(), whole.blocks());
    /// for (a, b) in summed.slots().iter().zip(whole.slots()) {
    ///     assert!((a - b).abs() < 1e-3);
    /// }
    /// ```
    pub fn sum(parts: impl IntoIterator<Item = Observation>) -> Self {
        let mut whole = Self {
            slots: vec![0.0; SLOTS],
            blocks: 0,
        };
        for part in parts {
            whole.slots.iter_mut().zip(part.slots).for_each(|(s, p)| *s += p);
            whole.blocks += part.blocks;
        }
        whole
    }

    /// Sums every block's weighted band coefficients into its slots; block
    /// `(bx, by)` is tile block `(bx, by) + shift`.
    fn from_bands(
        bands: &BlockBands,
        gains: &BlockGains,
        shift: (usize, usize),
        weighting: Weighting,
    ) -> Self {
        // Rows of blocks a tile high, summed in parallel, then added in
        // order: the same sums on any number of threads.
        let chunk = (TILE_BLOCKS * gains.blocks_x).max(1);
        let parts: Vec<(Vec<f32>, usize)> = gains
            .gains
            .par_chunks(chunk)
            .zip(bands.bands.par_chunks(chunk))
            .enumerate()
            .map(|(part, (gains_part, bands_part))| {
                let mut slots = vec![0.0f32; SLOTS];
                let mut blocks = 0;
                for (offset, (&gain, band)) in gains_part.iter().zip(bands_part).enumerate() {
                    if gain <= 0.0 {
                        continue;
                    }
                    let index = part * chunk + offset;
                    let (bx, by) = (index % gains.blocks_x, index / gains.blocks_x);
                    let mean_sq = mean_square(band);
                    let first_slot = slot_index(bx + shift.0, by + shift.1, 0);
                    let block_slots = slots
                        .get_mut(first_slot..first_slot + BAND_LEN)
                        .unwrap_or_default();
                    for ((slot, c), &(_, _, weight)) in block_slots.iter_mut().zip(band).zip(BAND.iter()) {
                        let robustness = match weighting {
                            // A coefficient's own size enters its weight (a
                            // robust, Cauchy-like correlator): strong host
                            // edges count less.
                            Weighting::Robust => {
                                (mean_sq + NOISE_FLOOR) / (0.5 * (c * c + mean_sq) + NOISE_FLOOR)
                            }
                            Weighting::Linear => 1.0,
                        };
                        *slot += gain * robustness * weight * c;
                    }
                    blocks += 1;
                }
                (slots, blocks)
            })
            .collect();
        let mut slots = vec![0.0f32; SLOTS];
        let mut blocks = 0;
        for (part, count) in parts {
            slots.iter_mut().zip(part).for_each(|(s, p)| *s += p);
            blocks += count;
        }
        Self { slots, blocks }
    }

    /// The measurement of every slot.
    pub fn slots(&self) -> &[f32] {
        &self.slots
    }

    /// Number of blocks that contributed.
    pub fn blocks(&self) -> usize {
        self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dct::forward;
    use crate::prng::KeyedStream;

    fn noise(h: usize, w: usize, seed: u8) -> Plane {
        let mut rng = KeyedStream::from_seed([seed; 32]);
        Plane::from_shape_fn((h, w), |_| rng.below(256) as f32)
    }

    #[test]
    fn band_only_transform_matches_the_full_dct() {
        let plane = noise(24, 40, 1);
        let bands = BlockBands::of(&plane.view());
        assert_eq!(bands.bands.len(), 3 * 5);
        for (index, band) in bands.bands.iter().enumerate() {
            let (bx, by) = (index % 5, index / 5);
            let block: crate::dct::Block =
                std::array::from_fn(|i| plane[[by * BLOCK + i / BLOCK, bx * BLOCK + i % BLOCK]]);
            let full = forward(&block);
            for (k, &(u, v, _)) in BAND.iter().enumerate() {
                assert!(
                    (band[k] - full[u * BLOCK + v]).abs() < 1e-3,
                    "block {index} coef {k}"
                );
            }
        }
        assert!(BAND.iter().all(|&(u, v, _)| u < BAND_REACH && v < BAND_REACH));
    }

    #[test]
    fn a_plane_thinner_than_the_offset_measures_nothing() {
        // Found by the property test: 92x5 pixels, tile offset (0, 7).
        let plane = noise(5, 92, 4);
        let obs = Observation::measure_masked(&plane, &plane, (0, 7));
        assert_eq!(obs.blocks(), 0);
        assert!(obs.slots().iter().all(|v| *v == 0.0));
    }

    #[test]
    fn bands_are_linear_and_block_means_average_blocks() {
        let (a, b) = (noise(16, 16, 2), noise(16, 16, 3));
        let sum = BlockBands::of(&(&a + &b).view());
        let mut added = BlockBands::of(&a.view());
        added.add(&BlockBands::of(&b.view()));
        for (x, y) in sum.bands.iter().flatten().zip(added.bands.iter().flatten()) {
            assert!((x - y).abs() < 1e-2);
        }
        let ramp = Plane::from_shape_fn((16, 17), |(y, x)| (y * 17 + x) as f32);
        let means = block_means(&ramp.view());
        assert_eq!(means.len(), 4);
        assert!((means[0] - (3.5 * 17.0 + 3.5)).abs() < 1e-4);
    }
}
