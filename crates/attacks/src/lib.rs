//! What happens to leaked frames, as code: the attack suite of `tattle
//! bench`, and the quality metrics that say how visible a mark is.
//!
//! Every attack is one small named function in [`SUITE`]. Attacks that use
//! randomness take a seed, so every run of the benchmark is reproducible.
//!
//! ```
//! use image::{DynamicImage, RgbImage};
//! use tattle_attacks::{find, SUITE};
//! let img = DynamicImage::ImageRgb8(RgbImage::new(64, 48));
//! let jpeg = find("jpeg-50").unwrap();
//! let out = (jpeg.apply)(&img, 1).unwrap();
//! assert_eq!((out.width(), out.height()), (64, 48));
//! assert!(SUITE.len() > 30);
//! ```
#![deny(missing_docs)]

pub mod metrics;

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageReader, Rgb, RgbImage};
use imageproc::geometric_transformations::{rotate_about_center, warp, Interpolation, Projection};
use tattle_core::plane::display_rgb8;
use tattle_core::prng::KeyedStream;

/// Why an attack could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// An encoder or decoder inside the attack failed.
    #[error("codec failed inside attack: {0}")]
    Codec(#[from] image::ImageError),
    /// The image is too small for this attack.
    #[error("image too small for this attack")]
    TooSmall,
    /// The copies given to a collusion attack differ in size, or there are none.
    #[error("colluding copies must be one or more images of the same size")]
    MismatchedCopies,
}

/// Result of an attack.
pub type AttackResult = Result<DynamicImage, AttackError>;

/// The kind of change an attack makes; geometric attacks need the
/// detector's resynchronisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// No change at all.
    None,
    /// Lossy re-encoding.
    Compression,
    /// Filtering and noise.
    Signal,
    /// Brightness, contrast, gamma, colour.
    Valumetric,
    /// Local destruction of content.
    Occlusion,
    /// Cropping, scaling, rotation, flipping.
    Geometric,
}

/// One named attack.
#[derive(Clone, Copy)]
pub struct Attack {
    /// Name used on the command line and in tables.
    pub name: &'static str,
    /// What kind of change it is.
    pub family: Family,
    /// Applies the attack; `seed` drives any randomness.
    pub apply: fn(&DynamicImage, u64) -> AttackResult,
}

impl std::fmt::Debug for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attack").field("name", &self.name).finish()
    }
}

/// Looks an attack up by name.
pub fn find(name: &str) -> Option<&'static Attack> {
    SUITE.iter().find(|a| a.name == name)
}

/// Attacks applied one after the other, named by joining their names with
/// `+` (`rotate+5+jpeg-75`: rotate by 5°, then JPEG 75). A single attack is
/// a chain of one.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// use tattle_attacks::Chain;
/// let chain = Chain::parse("scale-0.5-bicubic+jpeg-75").unwrap();
/// assert_eq!(chain.len(), 2);
/// let out = chain.apply(&DynamicImage::ImageRgb8(RgbImage::new(64, 48)), 1).unwrap();
/// assert_eq!((out.width(), out.height()), (32, 24));
/// assert!(Chain::parse("rotate+5").is_some_and(|c| c.len() == 1));
/// assert!(Chain::parse("rotate+7").is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Chain {
    name: String,
    steps: Vec<&'static Attack>,
}

impl Chain {
    /// Parses a chain. Attack names may themselves contain `+` (`rotate+5`),
    /// so the longest known name is taken at each step.
    pub fn parse(name: &str) -> Option<Self> {
        let mut steps = Vec::new();
        let mut rest = name;
        while !rest.is_empty() {
            let step = SUITE
                .iter()
                .filter(|a| rest == a.name || rest.strip_prefix(a.name).is_some_and(|r| r.starts_with('+')))
                .max_by_key(|a| a.name.len())?;
            steps.push(step);
            rest = rest.get(step.name.len()..).unwrap_or("");
            rest = rest.strip_prefix('+').unwrap_or(rest);
        }
        (!steps.is_empty()).then(|| Self {
            name: name.to_owned(),
            steps,
        })
    }

    /// The chain's name, as parsed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many attacks the chain applies.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True for a chain of no attacks (never produced by [`Chain::parse`]).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies every attack in turn; each step gets its own seed derived from `seed`.
    pub fn apply(&self, image: &DynamicImage, seed: u64) -> AttackResult {
        let mut current = image.clone();
        for (i, step) in self.steps.iter().enumerate() {
            current = (step.apply)(&current, seed.wrapping_add(i as u64))?;
        }
        Ok(current)
    }
}

impl From<&'static Attack> for Chain {
    fn from(attack: &'static Attack) -> Self {
        Self {
            name: attack.name.to_owned(),
            steps: vec![attack],
        }
    }
}

macro_rules! attack {
    ($name:literal, $family:ident, $f:expr) => {
        Attack {
            name: $name,
            family: Family::$family,
            apply: $f,
        }
    };
}

/// The benchmark's attack suite.
pub static SUITE: &[Attack] = &[
    attack!("identity", None, |i, _| Ok(DynamicImage::ImageRgb8(
        display_rgb8(i)
    ))),
    attack!("jpeg-90", Compression, |i, _| jpeg(i, 90)),
    attack!("jpeg-75", Compression, |i, _| jpeg(i, 75)),
    attack!("jpeg-50", Compression, |i, _| jpeg(i, 50)),
    attack!("jpeg-30", Compression, |i, _| jpeg(i, 30)),
    attack!("webp-75", Compression, |i, _| webp_lossy(i, 75.0)),
    attack!("noise-5", Signal, |i, s| gaussian_noise(i, 5.0, s)),
    attack!("blur-1", Signal, |i, _| Ok(DynamicImage::ImageRgb8(
        imageops::blur(&display_rgb8(i), 1.0)
    ))),
    attack!("median-3", Signal, |i, _| median3(i)),
    attack!("sharpen", Signal, |i, _| sharpen(i)),
    attack!("brightness-1.3", Valumetric, |i, _| map_levels(i, |v| v * 1.3)),
    attack!("contrast-1.3", Valumetric, |i, _| map_levels(i, |v| (v - 127.5)
        * 1.3
        + 127.5)),
    attack!("gamma-0.8", Valumetric, |i, _| map_levels(i, |v| 255.0
        * (v / 255.0).powf(0.8))),
    attack!("grayscale", Valumetric, |i, _| Ok(DynamicImage::ImageRgb8(
        DynamicImage::ImageLuma8(imageops::grayscale(&display_rgb8(i))).to_rgb8()
    ))),
    attack!("occlusion-15", Occlusion, occlusion),
    attack!("crop-50-centre", Geometric, |i, _| crop_fraction(
        i, 0.5, 0.5, 0.5
    )),
    attack!("crop-25-top-left", Geometric, |i, _| crop_fraction(
        i, 0.25, 0.0, 0.0
    )),
    attack!("crop-25-top-right", Geometric, |i, _| crop_fraction(
        i, 0.25, 1.0, 0.0
    )),
    attack!("crop-25-bottom-left", Geometric, |i, _| crop_fraction(
        i, 0.25, 0.0, 1.0
    )),
    attack!("crop-25-bottom-right", Geometric, |i, _| crop_fraction(
        i, 0.25, 1.0, 1.0
    )),
    attack!("crop-50-odd-offset", Geometric, |i, s| crop_random(i, 0.5, s)),
    attack!("scale-0.5-bilinear", Geometric, |i, _| scale(
        i,
        0.5,
        0.5,
        FilterType::Triangle
    )),
    attack!("scale-0.5-bicubic", Geometric, |i, _| scale(
        i,
        0.5,
        0.5,
        FilterType::CatmullRom
    )),
    attack!("scale-0.5-lanczos", Geometric, |i, _| scale(
        i,
        0.5,
        0.5,
        FilterType::Lanczos3
    )),
    attack!("scale-0.75-bilinear", Geometric, |i, _| scale(
        i,
        0.75,
        0.75,
        FilterType::Triangle
    )),
    attack!("scale-0.75-bicubic", Geometric, |i, _| scale(
        i,
        0.75,
        0.75,
        FilterType::CatmullRom
    )),
    attack!("scale-0.75-lanczos", Geometric, |i, _| scale(
        i,
        0.75,
        0.75,
        FilterType::Lanczos3
    )),
    attack!("scale-1.5-bilinear", Geometric, |i, _| scale(
        i,
        1.5,
        1.5,
        FilterType::Triangle
    )),
    attack!("scale-1.5-bicubic", Geometric, |i, _| scale(
        i,
        1.5,
        1.5,
        FilterType::CatmullRom
    )),
    attack!("scale-1.5-lanczos", Geometric, |i, _| scale(
        i,
        1.5,
        1.5,
        FilterType::Lanczos3
    )),
    attack!("scale-2-bilinear", Geometric, |i, _| scale(
        i,
        2.0,
        2.0,
        FilterType::Triangle
    )),
    attack!("scale-2-bicubic", Geometric, |i, _| scale(
        i,
        2.0,
        2.0,
        FilterType::CatmullRom
    )),
    attack!("scale-2-lanczos", Geometric, |i, _| scale(
        i,
        2.0,
        2.0,
        FilterType::Lanczos3
    )),
    attack!("width-1080-jpeg-75", Geometric, |i, _| {
        let f = 1080.0 / i.width() as f32;
        jpeg(&scale(i, f, f, FilterType::CatmullRom)?, 75)
    }),
    attack!("aspect-y-0.9", Geometric, |i, _| scale(
        i,
        1.0,
        0.9,
        FilterType::CatmullRom
    )),
    attack!("aspect-x-0.9", Geometric, |i, _| scale(
        i,
        0.9,
        1.0,
        FilterType::CatmullRom
    )),
    attack!("rotate+2", Geometric, |i, _| rotate_crop(i, 2.0)),
    attack!("rotate-2", Geometric, |i, _| rotate_crop(i, -2.0)),
    attack!("rotate+5", Geometric, |i, _| rotate_crop(i, 5.0)),
    attack!("rotate-5", Geometric, |i, _| rotate_crop(i, -5.0)),
    attack!("rotate+10", Geometric, |i, _| rotate_crop(i, 10.0)),
    attack!("rotate-10", Geometric, |i, _| rotate_crop(i, -10.0)),
    attack!("rotate-90", Geometric, |i, _| Ok(DynamicImage::ImageRgb8(
        imageops::rotate90(&display_rgb8(i))
    ))),
    attack!("rotate-180", Geometric, |i, _| Ok(DynamicImage::ImageRgb8(
        imageops::rotate180(&display_rgb8(i))
    ))),
    attack!("rotate-270", Geometric, |i, _| Ok(DynamicImage::ImageRgb8(
        imageops::rotate270(&display_rgb8(i))
    ))),
    attack!("mirror", Geometric, |i, _| Ok(DynamicImage::ImageRgb8(
        imageops::flip_horizontal(&display_rgb8(i))
    ))),
    attack!("screenshot-chain", Geometric, screenshot_chain),
    attack!("letterbox", Geometric, |i, _| letterbox(i)),
    attack!("window-screenshot", Geometric, window_screenshot),
    attack!("keystone-1", Geometric, |i, _| keystone(i, 0.01)),
    attack!("keystone-2", Geometric, |i, _| keystone(i, 0.02)),
    attack!("keystone-4", Geometric, |i, _| keystone(i, 0.04)),
    attack!("oblique-1", Geometric, |i, _| oblique(i, 0.01)),
    attack!("oblique-2", Geometric, |i, _| oblique(i, 0.02)),
];

/// Re-encodes as JPEG at `quality` (4:2:0 chroma, as most encoders do) and decodes again.
pub fn jpeg(image: &DynamicImage, quality: u8) -> AttackResult {
    let rgb = display_rgb8(image);
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(&rgb)?;
    Ok(ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg).decode()?)
}

/// Re-encodes as lossy WebP at `quality` (libwebp, through the `webp`
/// crate) and decodes again.
pub fn webp_lossy(image: &DynamicImage, quality: f32) -> AttackResult {
    let rgb = display_rgb8(image);
    let encoded = webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height()).encode(quality);
    Ok(ImageReader::with_format(Cursor::new(encoded.to_vec()), image::ImageFormat::WebP).decode()?)
}

/// Standard normal deviates from a keyed stream (Box–Muller on raw words).
fn normal_deviates(seed: u64) -> impl FnMut() -> f32 {
    let mut stream = KeyedStream::from_seed(seed_bytes(seed));
    move || {
        let u1 = ((stream.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (stream.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes
}

/// Adds independent gaussian noise of standard deviation `sigma` (8-bit
/// grey levels) to every channel.
pub fn gaussian_noise(image: &DynamicImage, sigma: f32, seed: u64) -> AttackResult {
    let mut rgb = display_rgb8(image);
    let mut normal = normal_deviates(seed);
    for v in rgb.iter_mut() {
        *v = (f32::from(*v) + sigma * normal()).round().clamp(0.0, 255.0) as u8;
    }
    Ok(DynamicImage::ImageRgb8(rgb))
}

/// Applies `f` to every channel value (0–255), rounding and clamping.
pub fn map_levels(image: &DynamicImage, f: impl Fn(f32) -> f32) -> AttackResult {
    let mut rgb = display_rgb8(image);
    for v in rgb.iter_mut() {
        *v = f(f32::from(*v)).round().clamp(0.0, 255.0) as u8;
    }
    Ok(DynamicImage::ImageRgb8(rgb))
}

fn per_channel(image: &DynamicImage, f: impl Fn(&GrayImage) -> GrayImage) -> AttackResult {
    let rgb = display_rgb8(image);
    let planes: Vec<GrayImage> = (0..3)
        .map(|c| {
            f(&GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                image::Luma([rgb.get_pixel(x, y)[c]])
            }))
        })
        .collect();
    Ok(DynamicImage::ImageRgb8(RgbImage::from_fn(
        rgb.width(),
        rgb.height(),
        |x, y| Rgb([0, 1, 2].map(|c| planes[c].get_pixel(x, y)[0])),
    )))
}

/// 3x3 median filter on every channel.
pub fn median3(image: &DynamicImage) -> AttackResult {
    per_channel(image, |p| imageproc::filter::median_filter(p, 1, 1))
}

/// The StirMark sharpening kernel `[0 −1 0; −1 5 −1; 0 −1 0]`.
pub fn sharpen(image: &DynamicImage) -> AttackResult {
    let kernel = [0.0f32, -1.0, 0.0, -1.0, 5.0, -1.0, 0.0, -1.0, 0.0];
    per_channel(image, |p| imageproc::filter::filter3x3(p, &kernel))
}

/// The collusion attack: several recipients' copies of one image averaged
/// pixel by pixel, rounded back to 8-bit RGB.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// let a = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 4, image::Rgb([10, 20, 30])));
/// let b = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 4, image::Rgb([20, 40, 60])));
/// let mean = tattle_attacks::collusion_average(&[a, b]).unwrap();
/// assert_eq!(mean.to_rgb8().get_pixel(0, 0).0, [15, 30, 45]);
/// ```
pub fn collusion_average(copies: &[DynamicImage]) -> AttackResult {
    let first = copies.first().ok_or(AttackError::MismatchedCopies)?;
    let (w, h) = (first.width(), first.height());
    if copies.iter().any(|c| (c.width(), c.height()) != (w, h)) {
        return Err(AttackError::MismatchedCopies);
    }
    let floats: Vec<image::Rgb32FImage> = copies.iter().map(DynamicImage::to_rgb32f).collect();
    let n = copies.len() as f32;
    let mean = image::Rgb32FImage::from_fn(w, h, |x, y| {
        Rgb([0, 1, 2].map(|c| floats.iter().map(|f| f.get_pixel(x, y)[c]).sum::<f32>() / n))
    });
    Ok(DynamicImage::ImageRgb8(DynamicImage::ImageRgb32F(mean).to_rgb8()))
}

/// Paints an opaque mid-grey rectangle over 15% of the area at a seeded place.
pub fn occlusion(image: &DynamicImage, seed: u64) -> AttackResult {
    let mut rgb = display_rgb8(image);
    let (w, h) = rgb.dimensions();
    let side = 0.15f64.sqrt();
    let (rw, rh) = ((w as f64 * side) as u32, (h as f64 * side) as u32);
    let mut stream = KeyedStream::from_seed(seed_bytes(seed));
    let x0 = stream.below(u64::from(w - rw + 1)) as u32;
    let y0 = stream.below(u64::from(h - rh + 1)) as u32;
    for y in y0..y0 + rh {
        for x in x0..x0 + rw {
            rgb.put_pixel(x, y, Rgb([128, 128, 128]));
        }
    }
    Ok(DynamicImage::ImageRgb8(rgb))
}

/// Crops to `area` of the image with the same aspect ratio; `fx`, `fy` in
/// 0..=1 place the crop (0 = left/top, 1 = right/bottom).
pub fn crop_fraction(image: &DynamicImage, area: f64, fx: f64, fy: f64) -> AttackResult {
    let (w, h) = (image.width(), image.height());
    let (cw, ch) = crop_size(w, h, area)?;
    let x0 = ((w - cw) as f64 * fx).round() as u32;
    let y0 = ((h - ch) as f64 * fy).round() as u32;
    Ok(DynamicImage::ImageRgb8(
        imageops::crop_imm(&display_rgb8(image), x0, y0, cw, ch).to_image(),
    ))
}

/// Size of a crop keeping `area` of a `w`×`h` image at the same aspect ratio.
fn crop_size(w: u32, h: u32, area: f64) -> Result<(u32, u32), AttackError> {
    let side = area.sqrt();
    let (cw, ch) = ((w as f64 * side).round() as u32, (h as f64 * side).round() as u32);
    if cw == 0 || ch == 0 || cw > w || ch > h {
        return Err(AttackError::TooSmall);
    }
    Ok((cw, ch))
}

/// Crops to `area` at a seeded offset that is never a multiple of 8.
pub fn crop_random(image: &DynamicImage, area: f64, seed: u64) -> AttackResult {
    let mut stream = KeyedStream::from_seed(seed_bytes(seed));
    let (w, h) = (image.width(), image.height());
    let (cw, ch) = crop_size(w, h, area)?;
    let odd = |stream: &mut KeyedStream, room: u32| -> u32 {
        if room < 2 {
            return 0;
        }
        let v = stream.below(u64::from(room)) as u32;
        if v % 8 == 0 {
            v + 1
        } else {
            v
        }
    };
    let x0 = odd(&mut stream, w - cw).min(w - cw);
    let y0 = odd(&mut stream, h - ch).min(h - ch);
    Ok(DynamicImage::ImageRgb8(
        imageops::crop_imm(&display_rgb8(image), x0, y0, cw, ch).to_image(),
    ))
}

/// Resizes by `fx` horizontally and `fy` vertically.
pub fn scale(image: &DynamicImage, fx: f32, fy: f32, filter: FilterType) -> AttackResult {
    let w = ((image.width() as f32 * fx).round() as u32).max(1);
    let h = ((image.height() as f32 * fy).round() as u32).max(1);
    Ok(DynamicImage::ImageRgb8(imageops::resize(
        &display_rgb8(image),
        w,
        h,
        filter,
    )))
}

/// Rotates by `degrees` clockwise about the centre (bilinear) and crops to the
/// largest axis-aligned rectangle that holds no border.
pub fn rotate_crop(image: &DynamicImage, degrees: f32) -> AttackResult {
    let rgb = display_rgb8(image);
    let theta = degrees.to_radians();
    let rotated = rotate_about_center(&rgb, theta, Interpolation::Bilinear, Rgb([0, 0, 0]));
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    let (cw, ch) = largest_inscribed(w, h, theta.abs());
    let (cw, ch) = (cw.floor() as u32, ch.floor() as u32);
    if cw < 8 || ch < 8 {
        return Err(AttackError::TooSmall);
    }
    let x0 = ((w - cw as f32) / 2.0).ceil() as u32;
    let y0 = ((h - ch as f32) / 2.0).ceil() as u32;
    Ok(DynamicImage::ImageRgb8(
        imageops::crop_imm(&rotated, x0, y0, cw, ch).to_image(),
    ))
}

/// Largest axis-aligned rectangle inside a `w`×`h` rectangle rotated by `theta`.
fn largest_inscribed(w: f32, h: f32, theta: f32) -> (f32, f32) {
    let (sin, cos) = (theta.sin().abs(), theta.cos().abs());
    let (long, short) = if w >= h { (w, h) } else { (h, w) };
    let (a, b) = if short <= 2.0 * sin * cos * long || (sin - cos).abs() < 1e-10 {
        let x = 0.5 * short;
        if w >= h {
            (x / sin, x / cos)
        } else {
            (x / cos, x / sin)
        }
    } else {
        let cos2 = cos * cos - sin * sin;
        ((w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2)
    };
    (a.min(w), b.min(h))
}

/// A photo of a screen seen from below: the top edge `tilt` (a fraction of
/// the width) narrower than the bottom, centred (bilinear), cropped to the
/// largest axis-aligned rectangle that holds no border
/// ([`ScreenPhoto::keystone`]).
pub fn keystone(image: &DynamicImage, tilt: f32) -> AttackResult {
    photographed(image, ScreenPhoto::keystone(image.width(), image.height(), tilt))
}

/// A photo of a screen seen from below and from the left, so that no axis
/// of the frame stays upright ([`ScreenPhoto::oblique`]).
pub fn oblique(image: &DynamicImage, tilt: f32) -> AttackResult {
    photographed(image, ScreenPhoto::oblique(image.width(), image.height(), tilt))
}

/// Where a photo of a screen ([`keystone`], [`oblique`]) takes an image: the
/// places of its corners in the warped frame and the part of that frame
/// kept. Knowing it, an experiment can undo the attack exactly, and so tell
/// what the mark still holds from what a blind search finds.
///
/// ```
/// use tattle_attacks::ScreenPhoto;
///
/// let photo = ScreenPhoto::keystone(800, 600, 0.04);
/// // The top edge is 4% narrower, the bottom edge stays where it was.
/// assert_eq!(photo.corners[0], (16.0, 0.0));
/// assert_eq!(photo.corners[2], (800.0, 600.0));
/// // The bottom edge's midpoint stays where it was in the warp; the crop
/// // then moves it by the kept part's corner.
/// assert_eq!(photo.keep, (17, 1, 783, 599));
/// let place = photo.placement().unwrap();
/// let (x, y) = place(400.0, 600.0);
/// assert!((x - 383.0).abs() < 1e-3 && (y - 599.0).abs() < 1e-3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreenPhoto {
    /// Size of the image photographed.
    pub size: (u32, u32),
    /// Where its corners (top left, top right, bottom right, bottom left)
    /// land in the warped frame.
    pub corners: [(f32, f32); 4],
    /// The part of the warped frame kept (left, top, right, bottom), which
    /// holds no border.
    pub keep: (u32, u32, u32, u32),
}

impl ScreenPhoto {
    /// The top edge `tilt` (a fraction of the width) narrower than the
    /// bottom, centred.
    pub fn keystone(width: u32, height: u32, tilt: f32) -> Self {
        let (w, h) = (width as f32, height as f32);
        let inset = 0.5 * tilt * w;
        let margin = inset.ceil() + 1.0;
        Self::new(
            (width, height),
            [(inset, 0.0), (w - inset, 0.0), (w, h), (0.0, h)],
            (margin, 1.0, w - margin, h - 1.0),
        )
    }

    /// The top edge `tilt` (a fraction of the width) shorter than the bottom
    /// and the right edge `tilt` (a fraction of the height) shorter than the
    /// left, both taken from the top right corner. Unlike
    /// [`ScreenPhoto::keystone`], whose centre line stays upright, every part
    /// of the frame is sheared as well as scaled.
    pub fn oblique(width: u32, height: u32, tilt: f32) -> Self {
        let (w, h) = (width as f32, height as f32);
        let (dx, dy) = (tilt * w, tilt * h);
        let margin = 1.0;
        Self::new(
            (width, height),
            [(0.0, 0.0), (w - dx, dy), (w, h), (0.0, h)],
            (margin, dy.ceil() + margin, w - dx.ceil() - margin, h - 1.0),
        )
    }

    /// The photo the suite's attack `name` takes of a `width`×`height`
    /// image (`keystone-N` and `oblique-N`, a tilt of N percent), or that
    /// of the first attack of a chain (`oblique-2+jpeg-75`); `None` when
    /// that attack is no photo of a screen.
    ///
    /// ```
    /// use tattle_attacks::ScreenPhoto;
    ///
    /// let photo = ScreenPhoto::of_attack("keystone-4+jpeg-75", 800, 600);
    /// assert_eq!(photo, Some(ScreenPhoto::keystone(800, 600, 0.04)));
    /// assert_eq!(ScreenPhoto::of_attack("rotate+5", 800, 600), None);
    /// ```
    pub fn of_attack(name: &str, width: u32, height: u32) -> Option<Self> {
        let first = Chain::parse(name)?.steps.first()?.name;
        let tilt = |percent: &str| percent.parse::<f32>().ok().map(|p| p / 100.0);
        match (first.strip_prefix("keystone-"), first.strip_prefix("oblique-")) {
            (Some(percent), _) => Some(Self::keystone(width, height, tilt(percent)?)),
            (_, Some(percent)) => Some(Self::oblique(width, height, tilt(percent)?)),
            _ => None,
        }
    }

    fn new(size: (u32, u32), corners: [(f32, f32); 4], keep: (f32, f32, f32, f32)) -> Self {
        // Every edge of `keep` is a whole pixel, and a negative one (an
        // image too small for its tilt) is caught by `photographed`.
        let whole = |v: f32| v.max(0.0) as u32;
        Self {
            size,
            corners,
            keep: (whole(keep.0), whole(keep.1), whole(keep.2), whole(keep.3)),
        }
    }

    /// The warp from the image onto the photographed frame, `None` for a
    /// degenerate one.
    pub fn projection(&self) -> Option<Projection> {
        let (w, h) = (self.size.0 as f32, self.size.1 as f32);
        Projection::from_control_points([(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)], self.corners)
    }

    /// Where each point `(x, y)` of the image lands in the attacked (warped
    /// and cropped) image, `None` for a degenerate warp.
    pub fn placement(&self) -> Option<impl Fn(f32, f32) -> (f32, f32) + Send + Sync> {
        let projection = self.projection()?;
        let (left, top) = (self.keep.0 as f32, self.keep.1 as f32);
        Some(move |x, y| {
            let (u, v) = projection * (x, y);
            (u - left, v - top)
        })
    }
}

/// The image warped as `photo` says (bilinear), then cropped to its kept
/// part.
fn photographed(image: &DynamicImage, photo: ScreenPhoto) -> AttackResult {
    let rgb = display_rgb8(image);
    let projection = photo.projection().ok_or(AttackError::TooSmall)?;
    let (left, top, right, bottom) = photo.keep;
    if right < left + 8 || bottom < top + 8 {
        return Err(AttackError::TooSmall);
    }
    let warped = warp(&rgb, &projection, Interpolation::Bilinear, Rgb([0, 0, 0]));
    Ok(DynamicImage::ImageRgb8(
        imageops::crop_imm(&warped, left, top, right - left, bottom - top).to_image(),
    ))
}

/// A screenshot of a scaled-down view: scale 0.8 (bilinear), crop to 90% of
/// the area at a seeded offset, JPEG 85.
pub fn screenshot_chain(image: &DynamicImage, seed: u64) -> AttackResult {
    let scaled = scale(image, 0.8, 0.8, FilterType::Triangle)?;
    jpeg(&crop_random(&scaled, 0.9, seed)?, 85)
}

/// Black bars above and below, each an eighth of the height and 3 pixels
/// more (so that the image no longer starts on an 8-pixel boundary): a
/// frame shown in a wider player and captured whole.
pub fn letterbox(image: &DynamicImage) -> AttackResult {
    let rgb = display_rgb8(image);
    let bar = rgb.height() / 8 + 3;
    let mut canvas = RgbImage::new(rgb.width(), rgb.height() + 2 * bar);
    imageops::replace(&mut canvas, &rgb, 0, i64::from(bar));
    Ok(DynamicImage::ImageRgb8(canvas))
}

/// A screenshot of an image viewer: the image at 80% (bilinear) inside a
/// window of UI grey 1.4 times its size, with a darker title bar, at a
/// seeded offset, then JPEG 85.
pub fn window_screenshot(image: &DynamicImage, seed: u64) -> AttackResult {
    let view = scale(image, 0.8, 0.8, FilterType::Triangle)?.to_rgb8();
    let (w, h) = (view.width(), view.height());
    let (cw, ch) = (w * 7 / 5, h * 7 / 5);
    let mut canvas = RgbImage::from_pixel(cw, ch, Rgb([236, 236, 236]));
    let title = (ch / 20).max(4).min(ch - h);
    for y in 0..title {
        for x in 0..cw {
            canvas.put_pixel(x, y, Rgb([60, 63, 68]));
        }
    }
    let mut stream = KeyedStream::from_seed(seed_bytes(seed));
    let mut offset = |room: u32| stream.below(u64::from(room) + 1) as i64;
    let x0 = offset(cw - w);
    let y0 = i64::from(title) + offset(ch - h - title);
    imageops::replace(&mut canvas, &view, x0, y0);
    jpeg(&DynamicImage::ImageRgb8(canvas), 85)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8])
        }))
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = SUITE.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SUITE.len());
    }

    #[test]
    fn every_attack_is_deterministic_and_sized_as_documented() {
        let img = test_image(320, 240);
        for attack in SUITE {
            let a = (attack.apply)(&img, 9).unwrap();
            let b = (attack.apply)(&img, 9).unwrap();
            assert_eq!(a.as_bytes(), b.as_bytes(), "{}", attack.name);
            let (w, h) = (a.width(), a.height());
            let expected = match attack.name {
                n if n.starts_with("crop-50") => Some((226, 170)),
                n if n.starts_with("crop-25") => Some((160, 120)),
                n if n.starts_with("scale-0.5") => Some((160, 120)),
                n if n.starts_with("scale-2") => Some((640, 480)),
                n if n.starts_with("scale-0.75") => Some((240, 180)),
                n if n.starts_with("scale-1.5") => Some((480, 360)),
                "rotate-90" | "rotate-270" => Some((240, 320)),
                "rotate-180" => Some((320, 240)),
                "aspect-y-0.9" => Some((320, 216)),
                "aspect-x-0.9" => Some((288, 240)),
                "width-1080-jpeg-75" => Some((1080, 810)),
                n if n.starts_with("rotate") => None,
                "screenshot-chain" => Some((243, 182)),
                "letterbox" => Some((320, 306)),
                "window-screenshot" => Some((358, 268)),
                "keystone-1" => Some((314, 238)),
                "keystone-2" => Some((310, 238)),
                "keystone-4" => Some((304, 238)),
                "oblique-1" => Some((314, 235)),
                "oblique-2" => Some((311, 233)),
                _ => Some((320, 240)),
            };
            if let Some(e) = expected {
                assert_eq!((w, h), e, "{}", attack.name);
            } else {
                assert!(
                    w < 320 && h < 240 && w > 200 && h > 150,
                    "{}: {w}x{h}",
                    attack.name
                );
            }
        }
    }

    #[test]
    fn keystone_narrows_the_top_and_keeps_the_bottom() {
        // A white column a quarter of the way across a black frame.
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(320, 240, |x, _| {
            Rgb([if x == 80 { 255 } else { 0 }; 3])
        }));
        let out = keystone(&img, 0.04).unwrap().to_luma8();
        let column = |y: u32| (0..out.width()).max_by_key(|&x| out.get_pixel(x, y)[0]).unwrap();
        // 8 columns are cropped from each side; near the bottom the column
        // stays where it was, near the top it moves 4% of its distance from
        // the centre inwards (80 → 83.2).
        assert_eq!(column(235), 72);
        assert!((74..=76).contains(&column(4)), "{}", column(4));
        assert!(matches!(
            keystone(&test_image(16, 16), 0.5),
            Err(AttackError::TooSmall)
        ));
    }

    #[test]
    fn oblique_pulls_the_top_right_corner_in() {
        // A white row near the top and a white column near the right of a
        // black frame.
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(320, 240, |x, y| {
            Rgb([if y == 40 || x == 280 { 255 } else { 0 }; 3])
        }));
        let out = oblique(&img, 0.02).unwrap().to_luma8();
        let row = |x: u32| (0..out.height()).max_by_key(|&y| out.get_pixel(x, y)[0]).unwrap();
        let column = |y: u32| (0..out.width()).max_by_key(|&x| out.get_pixel(x, y)[0]).unwrap();
        // Near the left edge the row stays level and near the bottom the
        // column stays upright; towards the top right corner, pulled in by
        // 2% of the height and of the width, the row drops by about 2% of
        // its distance from the top (40 → 44) and the column moves in by
        // about 2% of its distance from the left (280 → 274). A
        // perspective keeps lines straight but not the spacing along them,
        // so the fixed ends move by a pixel too.
        assert!((3..=5).contains(&(row(250) - row(2))), "{} {}", row(2), row(250));
        assert!(
            (5..=7).contains(&(column(230) - column(2))),
            "{} {}",
            column(2),
            column(230)
        );
        assert!(matches!(
            oblique(&test_image(8, 8), 0.5),
            Err(AttackError::TooSmall)
        ));
    }

    #[test]
    fn photographed_screens_are_cropped_to_no_border() {
        // Until session 40 a keystone kept the warp's black first or last row.
        let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(320, 240, Rgb([255; 3])));
        for tilt in [0.01, 0.02, 0.04] {
            for out in [oblique(&white, tilt), keystone(&white, tilt)] {
                let out = out.unwrap().to_luma8();
                assert!(out.pixels().all(|p| p[0] == 255), "{tilt}");
            }
        }
    }

    #[test]
    fn a_screen_photo_places_each_point_where_the_attack_put_it() {
        // Smooth waves (a period of 64 px), so that reading the attacked
        // image between its pixels gives the value sent, and steep enough
        // (up to 10 levels a pixel) that a point placed a pixel off does not.
        let (w, h) = (320u32, 240u32);
        let wave = |v: u32| 128.0 + 100.0 * (v as f32 * std::f32::consts::TAU / 64.0).sin();
        let sent = RgbImage::from_fn(w, h, |x, y| Rgb([wave(x) as u8, wave(y) as u8, 128]));
        let image = DynamicImage::ImageRgb8(sent.clone());
        for (photo, attacked) in [
            (ScreenPhoto::keystone(w, h, 0.04), keystone(&image, 0.04)),
            (ScreenPhoto::oblique(w, h, 0.02), oblique(&image, 0.02)),
        ] {
            let attacked = attacked.unwrap().to_rgb8();
            let place = photo.placement().unwrap();
            let mut checked = 0;
            for y in (20..h - 20).step_by(7) {
                for x in (20..w - 20).step_by(7) {
                    let (u, v) = place(x as f32, y as f32);
                    let Some(seen) = between_pixels(&attacked, u, v) else {
                        continue;
                    };
                    let expected = sent.get_pixel(x, y).0;
                    for (a, b) in seen.iter().zip(expected) {
                        assert!(
                            a.abs_diff(b) <= 3,
                            "{photo:?} at ({x}, {y}): {seen:?} against {expected:?}"
                        );
                    }
                    checked += 1;
                }
            }
            // The crop keeps nearly all of the interior.
            assert!(checked > 1000, "{checked}");
        }
    }

    #[test]
    fn every_photo_of_a_screen_in_the_suite_is_described_by_its_name() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(200, 150, |x, y| {
            Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) % 256) as u8])
        }));
        let photos: Vec<&Attack> = SUITE
            .iter()
            .filter(|a| ScreenPhoto::of_attack(a.name, 200, 150).is_some())
            .collect();
        let names: Vec<&str> = photos.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            ["keystone-1", "keystone-2", "keystone-4", "oblique-1", "oblique-2"]
        );
        for attack in photos {
            let photo = ScreenPhoto::of_attack(attack.name, 200, 150).unwrap();
            let described = photographed(&image, photo).unwrap();
            let attacked = (attack.apply)(&image, 0).unwrap();
            assert_eq!(described.to_rgb8(), attacked.to_rgb8(), "{}", attack.name);
        }
        // A chain is described by its first attack, and nothing else is a photo.
        assert!(ScreenPhoto::of_attack("oblique-2+jpeg-75", 200, 150).is_some());
        assert!(ScreenPhoto::of_attack("jpeg-75+oblique-2", 200, 150).is_none());
        assert!(ScreenPhoto::of_attack("keystone-3", 200, 150).is_none());
    }

    /// `image` read at `(x, y)` between its pixels (bilinear), `None`
    /// outside it.
    fn between_pixels(image: &RgbImage, x: f32, y: f32) -> Option<[u8; 3]> {
        let (x0, y0) = (x.floor(), y.floor());
        if x0 < 0.0 || y0 < 0.0 || x0 + 1.0 >= image.width() as f32 || y0 + 1.0 >= image.height() as f32 {
            return None;
        }
        let (fx, fy) = (x - x0, y - y0);
        let at = |dx: u32, dy: u32, c: usize| f32::from(image.get_pixel(x0 as u32 + dx, y0 as u32 + dy)[c]);
        Some([0, 1, 2].map(|c| {
            let top = at(0, 0, c) * (1.0 - fx) + at(1, 0, c) * fx;
            let bottom = at(0, 1, c) * (1.0 - fx) + at(1, 1, c) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    }

    #[test]
    fn seeded_attacks_change_with_the_seed() {
        let img = test_image(64, 64);
        for name in ["noise-5", "occlusion-15"] {
            let attack = find(name).unwrap();
            assert_ne!(
                (attack.apply)(&img, 1).unwrap().as_bytes(),
                (attack.apply)(&img, 2).unwrap().as_bytes()
            );
        }
    }

    #[test]
    fn rotated_crop_has_no_black_border() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 300, Rgb([200, 200, 200])));
        for deg in [2.0, -5.0, 10.0] {
            let out = rotate_crop(&img, deg).unwrap().to_rgb8();
            let darkest = out.pixels().map(|p| p[0]).min().unwrap();
            assert!(darkest > 150, "{deg}: {darkest}");
        }
    }

    #[test]
    fn occlusion_covers_fifteen_percent() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 100, Rgb([0, 0, 0])));
        let out = occlusion(&img, 3).unwrap().to_rgb8();
        let grey = out.pixels().filter(|p| p[0] == 128).count() as f64 / 20_000.0;
        assert!((grey - 0.15).abs() < 0.01, "{grey}");
    }
}
