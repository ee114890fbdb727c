//! Image files in and out, content hashes, atomic writes.

use std::io::{Seek, Write};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{ColorType, DynamicImage, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};
use tattle_core::plane::view_transform;

use crate::error::{Error, Result};

/// Reads a whole file, naming it in any error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(path))
}

/// Decodes an image from a file.
///
/// ```
/// let err = tattle_studio::files::load_image(std::path::Path::new("no/such.png")).unwrap_err();
/// assert!(err.to_string().starts_with("no/such.png: "));
/// ```
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    decode_image(path, &read(path)?)
}

/// Decodes an image from a file and returns it with the SHA-256 of the
/// file's bytes: what identifies the file examined, in evidence.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("grey.png");
/// image::DynamicImage::new_luma8(8, 8).save(&path).unwrap();
/// let (sha256, image) = tattle_studio::files::load_image_hashed(&path).unwrap();
/// assert_eq!(sha256, tattle_studio::files::sha256_hex(&std::fs::read(&path).unwrap()));
/// assert_eq!(image.width(), 8);
/// ```
pub fn load_image_hashed(path: &Path) -> Result<(String, DynamicImage)> {
    let bytes = read(path)?;
    Ok((sha256_hex(&bytes), decode_image(path, &bytes)?))
}

/// The largest image decoded, in megapixels, unless `TATTLE_MAX_MEGAPIXELS`
/// says otherwise: a guard against decompression bombs (a few kilobytes
/// of PNG can claim a 100,000 x 100,000 canvas).
pub const DEFAULT_MAX_MEGAPIXELS: u64 = 400;

/// The decoding limit in pixels: `TATTLE_MAX_MEGAPIXELS` (a positive whole
/// number of megapixels) or [`DEFAULT_MAX_MEGAPIXELS`].
pub fn max_pixels() -> u64 {
    std::env::var("TATTLE_MAX_MEGAPIXELS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&mp| mp > 0)
        .unwrap_or(DEFAULT_MAX_MEGAPIXELS)
        .saturating_mul(1_000_000)
}

/// Decodes an image already read from `path` (named in errors), refusing
/// images above [`max_pixels`] from their header, before any pixel memory
/// is allocated.
///
/// ```
/// use std::path::Path;
/// // A valid PNG header claiming 100,000 x 100,000 pixels, and nothing else.
/// let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
/// bomb.extend_from_slice(&100_000u32.to_be_bytes());
/// bomb.extend_from_slice(&100_000u32.to_be_bytes());
/// bomb.extend_from_slice(&[8, 2, 0, 0, 0]);
/// bomb.extend_from_slice(&[0x27, 0x30, 0x9c, 0x9f]); // CRC of the header chunk
/// bomb.extend_from_slice(b"\0\0\0\0IDAT\x35\xaf\x06\x1e\0\0\0\0IEND\xae\x42\x60\x82");
/// let err = tattle_studio::files::decode_image(Path::new("bomb.png"), &bomb).unwrap_err();
/// assert!(err.to_string().contains("above the limit"), "{err}");
/// ```
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<DynamicImage> {
    Ok(decode_image_with_profile(path, bytes)?.0)
}

/// [`decode_image`], also returning the ICC colour profile the file
/// carries, so that a marked copy can keep it.
pub fn decode_image_with_profile(path: &Path, bytes: &[u8]) -> Result<(DynamicImage, Option<Vec<u8>>)> {
    decode_image_within(path, bytes, max_pixels())
}

/// [`decode_image_with_profile`] with an explicit limit in pixels instead
/// of [`max_pixels`].
///
/// ```
/// use std::path::Path;
/// let mut png = Vec::new();
/// image::RgbImage::new(300, 200)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// let path = Path::new("plate.png");
/// assert!(tattle_studio::files::decode_image_within(path, &png, 60_000).is_ok());
/// assert!(tattle_studio::files::decode_image_within(path, &png, 59_999).is_err());
/// ```
pub fn decode_image_within(path: &Path, bytes: &[u8], limit: u64) -> Result<(DynamicImage, Option<Vec<u8>>)> {
    let reader = || {
        ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(Error::io(path))
    };
    let image_error = |source| Error::Image {
        path: path.to_owned(),
        cause: source,
    };
    if reader()?.format().is_none() {
        return Err(Error::Format {
            path: path.to_owned(),
            reason: "not an image format tattle can read (PNG, JPEG, TIFF, WebP, OpenEXR)".into(),
        });
    }
    let (width, height) = reader()?.into_dimensions().map_err(image_error)?;
    if u64::from(width) * u64::from(height) > limit {
        return Err(Error::Format {
            path: path.to_owned(),
            reason: format!(
                "image is {width}x{height} pixels, above the limit of {} MP (raise it with TATTLE_MAX_MEGAPIXELS)",
                limit as f64 / 1e6
            ),
        });
    }
    let mut limits = image::Limits::default();
    // Room for the decoded pixels at up to 32-bit float RGBA, and the codec's own buffers.
    limits.max_alloc = Some(limit.saturating_mul(16).saturating_add(1 << 28));
    let mut reader = reader()?;
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    // A profile the codec cannot read is not worth failing the image for.
    let icc = image::ImageDecoder::icc_profile(&mut decoder).ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    Ok((image, icc))
}

/// The output format for a path, from its extension.
pub fn format_for(path: &Path) -> Result<ImageFormat> {
    let unknown = |reason: String| Error::Format {
        path: path.to_owned(),
        reason,
    };
    let format = ImageFormat::from_path(path)
        .map_err(|_| unknown("unknown output format (use .png, .jpg, .tif, .webp or .exr)".into()))?;
    match format {
        ImageFormat::Png
        | ImageFormat::Jpeg
        | ImageFormat::Tiff
        | ImageFormat::WebP
        | ImageFormat::OpenExr => Ok(format),
        other => Err(unknown(format!("writing {other:?} is not supported"))),
    }
}

/// Whether a file name looks like an image tattle can stamp.
pub fn is_image_path(path: &Path) -> bool {
    format_for(path).is_ok()
}

/// Encodes an image for the format of `path`, converting the pixel type
/// only where the format cannot hold it.
pub fn encode(image: &DynamicImage, path: &Path, quality: u8) -> Result<Vec<u8>> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    encode_into(image, path, quality, None, &mut cursor)?;
    Ok(cursor.into_inner())
}

/// [`encode`] into any seekable writer (TIFF and OpenEXR encoders seek),
/// embedding an ICC colour profile where the format carries one (PNG,
/// JPEG, TIFF, WebP); OpenEXR has none and drops it.
pub fn encode_into<W: Write + Seek>(
    image: &DynamicImage,
    path: &Path,
    quality: u8,
    icc: Option<&[u8]>,
    mut out: W,
) -> Result<()> {
    use image::codecs::{png::PngEncoder, tiff::TiffEncoder, webp::WebPEncoder};
    use image::ImageEncoder;
    fn with_profile<E: ImageEncoder>(mut encoder: E, icc: Option<&[u8]>) -> E {
        if let Some(profile) = icc {
            // A format that cannot carry it simply goes without.
            let _ = encoder.set_icc_profile(profile.to_vec());
        }
        encoder
    }
    let format = format_for(path)?;
    // Float images leave OpenEXR through the standard view transform (clamp,
    // sRGB), as a compositor's sRGB export would, not as scaled linear light.
    let original = image;
    let image = &*view_transform(image);
    let result = match format {
        ImageFormat::Jpeg => {
            let eight = if image.color().has_color() {
                DynamicImage::ImageRgb8(image.to_rgb8())
            } else {
                DynamicImage::ImageLuma8(image.to_luma8())
            };
            eight.write_with_encoder(with_profile(
                JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)),
                icc,
            ))
        }
        ImageFormat::OpenExr => {
            let float = if original.color().has_alpha() {
                DynamicImage::ImageRgba32F(original.to_rgba32f())
            } else {
                DynamicImage::ImageRgb32F(original.to_rgb32f())
            };
            float.write_to(&mut out, format)
        }
        ImageFormat::WebP => {
            let eight = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            eight.write_with_encoder(with_profile(WebPEncoder::new_lossless(&mut out), icc))
        }
        _ => {
            // PNG and TIFF hold 8 and 16 bits; float images arrive as 16 (view-transformed).
            if format == ImageFormat::Png {
                image.write_with_encoder(with_profile(PngEncoder::new(&mut out), icc))
            } else {
                // The TIFF encoder has no grey + alpha: such images go out
                // as RGBA, the grey in all three channels, every sample kept.
                let widened = match image.color() {
                    ColorType::La8 => Some(DynamicImage::ImageRgba8(image.to_rgba8())),
                    ColorType::La16 => Some(DynamicImage::ImageRgba16(image.to_rgba16())),
                    _ => None,
                };
                widened
                    .as_ref()
                    .unwrap_or(image)
                    .write_with_encoder(with_profile(TiffEncoder::new(&mut out), icc))
            }
        }
    };
    result.map_err(|source| Error::Image {
        path: path.to_owned(),
        cause: source,
    })?;
    out.flush().map_err(Error::io(path))
}

/// Encodes and writes an image atomically (see [`write_atomic`]).
pub fn save_image_atomic(image: &DynamicImage, path: &Path, quality: u8) -> Result<()> {
    save_image_atomic_with_profile(image, path, quality, None)
}

/// Encodes an image straight into a temporary file beside `path`, with
/// its ICC profile where the format carries one, and renames it into place
/// as [`write_atomic`] does. The encoded image is never held in memory
/// whole.
pub fn save_image_atomic_with_profile(
    image: &DynamicImage,
    path: &Path,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<()> {
    write_atomic_with(path, |file| {
        encode_into(image, path, quality, icc, std::io::BufWriter::new(file))
    })
}

/// [`save_image_atomic_with_profile`] that also returns the SHA-256 of the
/// file written, read back from it (still in the page cache) so that the
/// hash is of exactly the bytes on disk.
///
/// ```
/// use image::{DynamicImage, RgbImage};
/// use tattle_studio::files;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.png");
/// let image = DynamicImage::ImageRgb8(RgbImage::new(8, 8));
/// let sha256 = files::save_image_atomic_hashed(&image, &path, 95, None).unwrap();
/// assert_eq!(sha256, files::sha256_hex(&std::fs::read(&path).unwrap()));
/// ```
pub fn save_image_atomic_hashed(
    image: &DynamicImage,
    path: &Path,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<String> {
    let mut sha256 = String::new();
    write_atomic_with(path, |file| {
        encode_into(image, path, quality, icc, std::io::BufWriter::new(&mut *file))?;
        file.rewind().map_err(Error::io(path))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::io::BufReader::new(&mut *file), &mut hasher).map_err(Error::io(path))?;
        sha256 = hex(&hasher.finalize());
        Ok(())
    })?;
    Ok(sha256)
}

/// Writes `bytes` through a temporary file in the same folder, flushed to
/// disk, then renamed into place: `path` is never seen half-written, even
/// if the process is killed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes).map_err(Error::io(path)))
}

/// [`write_atomic`] with the contents written by `fill` into the temporary
/// file; if it fails, nothing is renamed and the temporary file is removed.
fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tattle-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(Error::io(dir))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(Error::io(path))?;
    #[cfg(unix)]
    {
        // Temporary files are private; a published image is not.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io(path))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// SHA-256 of some bytes, as 64 lowercase hex digits.
///
/// ```
/// assert_eq!(
///     tattle_studio::files::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when both paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::RgbImage;

    #[test]
    fn a_failed_encode_leaves_neither_output_nor_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("too-wide.webp");
        // WebP cannot hold an image wider than 16,384 pixels.
        let image = DynamicImage::ImageRgb8(RgbImage::new(16_385, 1));
        let error = save_image_atomic_hashed(&image, &path, 95, None).unwrap_err();
        assert!(error.to_string().contains("too-wide.webp"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_returned_hash_is_of_the_bytes_written_in_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([x as u8, y as u8, 7])
        }));
        for name in ["a.png", "a.jpg", "a.tif", "a.webp", "a.exr"] {
            let path = dir.path().join(name);
            let sha256 = save_image_atomic_hashed(&image, &path, 90, None).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(sha256, sha256_hex(&bytes), "{name}");
            assert_eq!(bytes, encode(&image, &path, 90).unwrap(), "{name}");
        }
    }
}
