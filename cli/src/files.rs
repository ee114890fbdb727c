//! Files: images in and out, key files, atomic writes.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader};

/// True when both paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Decodes an image, naming the file in any error.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    let reader = ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if reader.format().is_none() {
        bail!("{}: not an image format tattle can read", path.display());
    }
    reader
        .decode()
        .with_context(|| format!("cannot decode {}", path.display()))
}

/// The output format for a path, from its extension.
pub fn format_for(path: &Path) -> Result<ImageFormat> {
    let format = ImageFormat::from_path(path).with_context(|| {
        format!(
            "{}: unknown output format (use .png, .jpg, .tif, .webp or .exr)",
            path.display()
        )
    })?;
    match format {
        ImageFormat::Png
        | ImageFormat::Jpeg
        | ImageFormat::Tiff
        | ImageFormat::WebP
        | ImageFormat::OpenExr => Ok(format),
        other => bail!("{}: writing {other:?} is not supported", path.display()),
    }
}

/// Encodes an image for `format`, converting the pixel type only where the
/// format cannot hold it.
pub fn encode(image: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut cursor = std::io::Cursor::new(&mut bytes);
    match format {
        ImageFormat::Jpeg => {
            let rgb = if image.color().has_color() {
                DynamicImage::ImageRgb8(image.to_rgb8())
            } else {
                DynamicImage::ImageLuma8(image.to_luma8())
            };
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut cursor, quality))?;
        }
        ImageFormat::OpenExr => {
            let float = if image.color().has_alpha() {
                DynamicImage::ImageRgba32F(image.to_rgba32f())
            } else {
                DynamicImage::ImageRgb32F(image.to_rgb32f())
            };
            float.write_to(&mut cursor, format)?;
        }
        ImageFormat::WebP => {
            let eight = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            eight.write_to(&mut cursor, format)?;
        }
        _ => match image {
            DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
                DynamicImage::ImageRgba16(image.to_rgba16()).write_to(&mut cursor, format)?;
            }
            _ => image.write_to(&mut cursor, format)?,
        },
    }
    Ok(bytes)
}

/// Writes an image through a temporary file in the same folder and renames
/// it into place, so `path` is never left half-written.
pub fn save_image_atomic(image: &DynamicImage, path: &Path, quality: u8) -> Result<()> {
    let format = format_for(path)?;
    let bytes =
        encode(image, format, quality).with_context(|| format!("cannot encode {}", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tattle-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        w.write_all(&bytes)
            .and_then(|_| w.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        // Temporary files are private; a published image is not.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// A probability given as its base-10 logarithm, readably.
pub fn format_probability(log10: f64) -> String {
    if log10 >= -4.0 {
        format!("{:.3}", 10f64.powf(log10))
    } else {
        let exponent = log10.floor();
        let mantissa = 10f64.powf(log10 - exponent);
        format!("{mantissa:.1}e{exponent}")
    }
}

/// A short description of a recovered geometry, empty when nothing changed.
pub fn describe_geometry(g: &tattle_detect::Geometry) -> String {
    let mut parts = Vec::new();
    if (g.scale_x - 1.0).abs() > 0.005 || (g.scale_y - 1.0).abs() > 0.005 {
        if (g.scale_x - g.scale_y).abs() < 0.005 {
            parts.push(format!("scaled {:.3}", g.scale_x));
        } else {
            parts.push(format!("scaled {:.3} x {:.3}", g.scale_x, g.scale_y));
        }
    }
    if g.rotation_degrees.abs() > 0.05 {
        parts.push(format!("rotated {:.1}°", g.rotation_degrees));
    }
    if g.mirrored {
        parts.push("mirrored".to_owned());
    }
    if g.offset_x != 0.0 || g.offset_y != 0.0 {
        parts.push(format!(
            "cropped at +{:.0},+{:.0} (mod 128)",
            g.offset_x, g.offset_y
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}
