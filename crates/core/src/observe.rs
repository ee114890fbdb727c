//! Measuring an image: what it says about every slot of the tile.
//!
//! The detector and the embedder (for informed embedding) measure images
//! the same way: for every 8x8 block, the DCT coefficients of the band,
//! weighted by how much mark the block can hold (the perceptual mask) over
//! how much the block's own content interferes (its band energy), summed
//! into the slot each coefficient belongs to.

use crate::dct::{forward, Block, BLOCK};
use ndarray::{s, ArrayView2};

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
    /// The gains of a luma plane (grey levels).
    pub fn of(luma: &Plane, mask: &MaskParams) -> Self {
        Self::with_mask(&luma.view(), &perceptual_mask(luma, mask).view())
    }

    /// The gains of a luma plane whose perceptual mask is already known.
    pub fn with_mask(luma: &ArrayView2<f32>, weights: &ArrayView2<f32>) -> Self {
        let (h, w) = luma.dim();
        let (blocks_x, blocks_y) = (w / BLOCK, h / BLOCK);
        let mut gains = Vec::with_capacity(blocks_x * blocks_y);
        for by in 0..blocks_y {
            for bx in 0..blocks_x {
                let mask_mean = block_at(weights, bx, by).iter().sum::<f32>() / 64.0;
                let gain = if mask_mean > 0.0 {
                    let band = band_of(&forward(&block_at(luma, bx, by)));
                    let variance = band.iter().map(|c| c * c).sum::<f32>() / band.len() as f32;
                    mask_mean / (variance + NOISE_FLOOR)
                } else {
                    0.0
                };
                gains.push(gain);
            }
        }
        Self { gains, blocks_x }
    }
}

fn block_at(plane: &ArrayView2<f32>, bx: usize, by: usize) -> Block {
    let mut block: Block = [0.0; 64];
    for (i, p) in block.iter_mut().enumerate() {
        *p = plane[[by * BLOCK + i / BLOCK, bx * BLOCK + i % BLOCK]];
    }
    block
}

fn band_of(coefficients: &Block) -> [f32; BAND.len()] {
    BAND.map(|(u, v, _)| coefficients[u * BLOCK + v])
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
        let (sx, sy) = (ox % BLOCK, oy % BLOCK);
        let view = luma.slice(s![sy.., sx..]);
        let view_weights = weights.slice(s![sy.., sx..]);
        // Block 0 of the view starts at pixel s; its tile block is (s − o) / 8.
        let shift = (
            ((sx + TILE - ox) / BLOCK) % TILE_BLOCKS,
            ((sy + TILE - oy) / BLOCK) % TILE_BLOCKS,
        );
        let gains = BlockGains::with_mask(&view, &view_weights);
        Self::accumulate(&view, &gains, shift, Weighting::Robust)
    }

    /// Measures a plane with given block gains: linear in the plane.
    pub fn measure_with(plane: &Plane, gains: &BlockGains) -> Self {
        Self::accumulate(&plane.view(), gains, (0, 0), Weighting::Linear)
    }

    /// Sums every block's weighted band coefficients into its slots; block
    /// `(bx, by)` of `plane` is tile block `(bx, by) + shift`.
    fn accumulate(
        plane: &ArrayView2<f32>,
        gains: &BlockGains,
        shift: (usize, usize),
        weighting: Weighting,
    ) -> Self {
        let mut slots = vec![0.0f32; SLOTS];
        let mut blocks = 0;
        for (index, &gain) in gains.gains.iter().enumerate() {
            if gain <= 0.0 {
                continue;
            }
            let (bx, by) = (index % gains.blocks_x, index / gains.blocks_x);
            let band = band_of(&forward(&block_at(plane, bx, by)));
            let mean_sq = band.iter().map(|c| c * c).sum::<f32>() / band.len() as f32;
            for (k, (c, &(_, _, weight))) in band.iter().zip(BAND.iter()).enumerate() {
                let robustness = match weighting {
                    // A coefficient's own size enters its weight (a robust,
                    // Cauchy-like correlator): strong host edges count less.
                    Weighting::Robust => (mean_sq + NOISE_FLOOR) / (0.5 * (c * c + mean_sq) + NOISE_FLOOR),
                    Weighting::Linear => 1.0,
                };
                slots[slot_index(bx + shift.0, by + shift.1, k)] += gain * robustness * weight * c;
            }
            blocks += 1;
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
