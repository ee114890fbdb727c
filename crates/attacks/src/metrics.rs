//! Quality metrics: how far a marked image is from its original.

use image::DynamicImage;
use ndarray::Axis;
use tattle_core::plane::{encode_linear, luma, Plane};

/// Peak signal-to-noise ratio (dB) of two planes in 8-bit grey levels; infinite when equal.
pub fn psnr_planes(a: &Plane, b: &Plane) -> f64 {
    psnr(a.iter().copied(), b.iter().copied())
}

/// PSNR (dB) of two sequences of values in 8-bit grey levels, over the
/// pairs they have; infinite when equal.
fn psnr(a: impl Iterator<Item = f32>, b: impl Iterator<Item = f32>) -> f64 {
    let (mut squares, mut n) = (0.0f64, 0usize);
    for (x, y) in a.zip(b) {
        squares += f64::from(x - y).powi(2);
        n += 1;
    }
    let mse = squares / n.max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// PSNR (dB) of the luma (BT.601) of two images of the same size.
pub fn luma_psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    psnr_planes(&luma(a), &luma(b))
}

/// PSNR (dB) over all R, G and B values (8-bit scale) of two images of the
/// same size; float images are compared in the perceptual encoding they are
/// marked in ([`tattle_core::plane::encode_linear`]), not in linear light.
pub fn rgb_psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let levels = |image: &DynamicImage| -> Vec<f32> {
        let values = image.to_rgb32f().into_raw();
        match image {
            DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
                values.into_iter().map(|v| 255.0 * encode_linear(v)).collect()
            }
            _ => values.into_iter().map(|v| 255.0 * v).collect(),
        }
    };
    psnr(levels(a).into_iter(), levels(b).into_iter())
}

/// Mean SSIM (Wang et al. 2004: 11x11 gaussian window, σ = 1.5, K1 = 0.01,
/// K2 = 0.03, L = 255) of the luma of two images of the same size.
pub fn luma_ssim(a: &DynamicImage, b: &DynamicImage) -> f64 {
    ssim_planes(&luma(a), &luma(b))
}

/// Mean SSIM of two planes in 8-bit grey levels.
pub fn ssim_planes(a: &Plane, b: &Plane) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let blur = |p: &Plane| gaussian_blur(p);
    let (mu_a, mu_b) = (blur(a), blur(b));
    let aa = blur(&(a * a));
    let bb = blur(&(b * b));
    let ab = blur(&(a * b));
    let mut total = 0.0f64;
    let (h, w) = a.dim();
    // Only where the whole window fits, as the reference implementation does.
    let r = 5;
    let mut count = 0usize;
    for y in r..h.saturating_sub(r) {
        for x in r..w.saturating_sub(r) {
            let (ma, mb) = (f64::from(mu_a[[y, x]]), f64::from(mu_b[[y, x]]));
            let va = f64::from(aa[[y, x]]) - ma * ma;
            let vb = f64::from(bb[[y, x]]) - mb * mb;
            let cov = f64::from(ab[[y, x]]) - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
        }
    }
    if count == 0 {
        1.0
    } else {
        total / count as f64
    }
}

fn gaussian_blur(p: &Plane) -> Plane {
    let weights: Vec<f32> = (-5..=5i32)
        .map(|i| (-(i * i) as f32 / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let sum: f32 = weights.iter().sum();
    let weights: Vec<f32> = weights.iter().map(|w| w / sum).collect();
    blur_along(&blur_along(p, &weights, Axis(1)), &weights, Axis(0))
}

/// `p` convolved along `axis` with the odd-length kernel `weights`, the
/// edge samples repeated beyond the borders.
fn blur_along(p: &Plane, weights: &[f32], axis: Axis) -> Plane {
    let reach = weights.len() / 2;
    let mut out = Plane::zeros(p.dim());
    for (lane, mut out_lane) in p.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
        let last = lane.len().saturating_sub(1);
        for (i, o) in out_lane.iter_mut().enumerate() {
            *o = weights
                .iter()
                .enumerate()
                .map(|(k, wt)| wt * lane[(i + k).saturating_sub(reach).min(last)])
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_planes() {
        let p = Plane::from_shape_fn((32, 32), |(y, x)| (x * y % 255) as f32);
        assert!(psnr_planes(&p, &p).is_infinite());
        assert!((ssim_planes(&p, &p) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn psnr_of_known_error() {
        let a = Plane::zeros((10, 10));
        let b = Plane::from_elem((10, 10), 1.0);
        assert!((psnr_planes(&a, &b) - 48.1308).abs() < 1e-3);
    }

    #[test]
    fn ssim_drops_with_noise_in_flat_areas() {
        let a = Plane::from_elem((40, 40), 100.0);
        let b = Plane::from_shape_fn((40, 40), |(y, x)| {
            100.0 + if (x + y) % 2 == 0 { 3.0 } else { -3.0 }
        });
        let s = ssim_planes(&a, &b);
        assert!(s < 0.9, "{s}");
    }
}
