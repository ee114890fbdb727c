//! Whitening: the residual the search looks for periodicity and the pilot
//! in, and the fold of its tile copies.

use tattle_core::layout::TILE;
use tattle_core::mask::{estimate_noise_sigma, perceptual_mask_from, LocalStats, MaskParams};
use tattle_core::plane::Plane;

/// What to whiten the image with before looking for periodicity or the
/// pilot: the luma minus its local mean, weighted like the detector weighs
/// blocks (perceptual mask over local energy), so that flat areas and
/// strong edges do not swamp the faint periodic mark.
pub(crate) fn residual(luma: &Plane, mask: &MaskParams) -> Plane {
    Whitened::of(luma, mask).residual
}

/// A plane's perceptual mask and residual, sharing their local statistics.
pub(crate) struct Whitened {
    pub weights: Plane,
    pub residual: Plane,
}

impl Whitened {
    pub fn of(luma: &Plane, mask: &MaskParams) -> Self {
        let stats = LocalStats::of(luma, mask.radius);
        let weights = perceptual_mask_from(&stats, estimate_noise_sigma(luma), mask);
        Self::from_stats(luma, stats, weights)
    }

    /// The residual of a plane whose perceptual mask is already known.
    pub fn with_weights(luma: &Plane, weights: Plane, mask: &MaskParams) -> Self {
        Self::from_stats(luma, LocalStats::of(luma, mask.radius), weights)
    }

    fn from_stats(luma: &Plane, stats: LocalStats, weights: Plane) -> Self {
        let residual = residual_from(luma, stats, &weights);
        Self { weights, residual }
    }
}

/// The luma minus its local mean, weighted by the mask over the local
/// variance.
fn residual_from(luma: &Plane, stats: LocalStats, weights: &Plane) -> Plane {
    // The local mean's plane becomes the residual: one plane fewer.
    let LocalStats {
        mean: mut residual,
        variance,
    } = stats;
    ndarray::Zip::from(&mut residual)
        .and(luma)
        .and(weights)
        .and(&variance)
        .par_for_each(|r, &y, &w, &variance| *r = (y - *r) * (w / (variance + 4.0)));
    residual
}

/// Radius of the local statistics of the residual that probes read under
/// maps shrinking the image below [`FINE_BELOW`]: 3x3 windows, against the
/// mask's 5x5 (the weights stay the mask's). The mark of a downscaled image
/// lies higher in its spectrum, up to 3/8 cycle per pixel at ×0.5, where
/// the mark's 8x8 blocks have become 4x4: a 5x5 window spans more than one
/// of them, a 3x3 window less. At the true map of a
/// halved image (bilinear) the probes read, with the 5x5 residual and this
/// one: `photo_kodim05` 4.87 and 7.07, the tiger 5.21 and 8.85,
/// `film3d_sintel` 15.1 and 18.1, `chaosah` 9.8 and 11.7.
const FINE_RADIUS: usize = 1;

/// Scale (square root of the map's determinant) below which probes read the
/// residual over [`FINE_RADIUS`]. At ×0.8 it can lose what the 5x5 residual
/// reads: the flat gnome shown at 80% in a viewer window and recompressed,
/// 13.5 with the 5x5 residual and 5.3 with the 3x3 one, while at ×0.5 and
/// ×0.75 its outlines read as well or better (19.5 against 17.9, 19.7
/// against 19.4).
pub(super) const FINE_BELOW: f64 = 0.76;

/// The residual of `luma` over [`FINE_RADIUS`], with the mask `weights`,
/// for the probes of maps that shrink the image ([`Probe::with_fine`]).
pub(crate) fn fine_residual(luma: &Plane, weights: &Plane) -> Plane {
    residual_from(luma, LocalStats::of(luma, FINE_RADIUS), weights)
}

/// Sums all 128x128 tile copies of a plane into one tile.
pub(crate) fn fold(plane: &Plane) -> Plane {
    let mut tile = Plane::zeros((TILE, TILE));
    for (y, row) in plane.rows().into_iter().enumerate() {
        let mut target = tile.row_mut(y % TILE);
        for chunk in row.axis_chunks_iter(ndarray::Axis(0), TILE) {
            target.iter_mut().zip(chunk).for_each(|(t, v)| *t += v);
        }
    }
    tile
}
