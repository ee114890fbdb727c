//! The spatial pattern of one tile of the mark.

use crate::dct::{basis_pattern, Block, BLOCK};
use crate::layout::{slot_index, BAND, TILE, TILE_BLOCKS};
use crate::plane::Plane;

/// The tile's luma pattern for the given slot values (normally the signs of
/// [`crate::layout::Schedule::slot_signs`], possibly scaled per slot): every
/// block is the inverse DCT of its band coefficients, each set to the slot's
/// value times the band weight. Scaled so that ±1 values give unit RMS.
///
/// ```
/// use tattle_core::{layout::{Schedule, TILE}, pattern::tile_pattern, code, Key, Payload};
/// let schedule = Schedule::new(&Key::from_bytes([2; 32]), tattle_core::Recipient::Studio);
/// let signs = schedule.slot_signs(&code::encode(Payload::new(5)));
/// let tile = tile_pattern(&signs);
/// assert_eq!(tile.dim(), (TILE, TILE));
/// let rms = (tile.iter().map(|v| v * v).sum::<f32>() / tile.len() as f32).sqrt();
/// assert!((rms - 1.0).abs() < 1e-3);
/// ```
pub fn tile_pattern(slot_signs: &[f32]) -> Plane {
    let basis: Vec<Block> = BAND.iter().map(|&(u, v, _)| basis_pattern(u, v)).collect();
    let mut tile = Plane::zeros((TILE, TILE));
    for by in 0..TILE_BLOCKS {
        for bx in 0..TILE_BLOCKS {
            let mut block = [0.0f32; 64];
            for (k, (pattern, &(_, _, weight))) in basis.iter().zip(BAND.iter()).enumerate() {
                let sign = slot_signs.get(slot_index(bx, by, k)).copied().unwrap_or(0.0);
                for (b, p) in block.iter_mut().zip(pattern) {
                    *b += sign * weight * p;
                }
            }
            let mut target = tile.slice_mut(ndarray::s![
                by * BLOCK..(by + 1) * BLOCK,
                bx * BLOCK..(bx + 1) * BLOCK
            ]);
            for (t, v) in target.iter_mut().zip(&block) {
                *t = *v;
            }
        }
    }
    // The basis is orthonormal, so ±1 values give every block the energy
    // Σ weight², whatever the signs.
    let unit_rms = (BAND.iter().map(|&(_, _, w)| w * w).sum::<f32>() / 64.0).sqrt();
    tile.mapv_inplace(|v| v / unit_rms);
    tile
}
