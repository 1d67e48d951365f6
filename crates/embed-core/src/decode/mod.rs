//! Image decoding: the format is read from the bytes, the result is 8-bit RGB as PIL's
//! `Image.open(path).convert("RGB")` gives it.
//!
//! Here: format detection, the entry points and the size checks; the decoded image type in
//! `rgb_image`, the options in `options`, JPEG (libjpeg-turbo) in `jpeg`, the other formats in
//! `other_formats`, and the reading of a header's claimed size for error messages in `header`.

mod header;
mod jpeg;
mod options;
mod other_formats;
mod rgb_image;

use std::path::Path;

pub use options::{DecodeLimits, DecodeOptions};
pub use rgb_image::RgbImage;
pub(crate) use rgb_image::{Reduced, Window, window_lacks_pixels};

use crate::error::{Error, Result};

/// The container formats we recognise from their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (JFIF, Exif, Adobe), decoded by libjpeg-turbo as PIL does.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (first frame).
    Gif,
    /// WebP (lossy and lossless).
    WebP,
    /// Windows bitmap.
    Bmp,
    /// TIFF.
    Tiff,
}

impl ImageFormat {
    /// Detects the format from the leading bytes (never from a file name).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Self::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Self::Gif),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Self::WebP),
            [b'B', b'M', ..] => Some(Self::Bmp),
            [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => Some(Self::Tiff),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Gif => "GIF",
            Self::WebP => "WebP",
            Self::Bmp => "BMP",
            Self::Tiff => "TIFF",
        }
    }
}

/// Reads and decodes an image file. See [`decode_bytes`]. Errors name the file.
pub fn decode_file(path: &Path, options: &DecodeOptions) -> Result<RgbImage> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > options.limits.max_file_bytes {
        return Err(Error::TooLarge {
            path: Some(path.to_path_buf()),
            width: 0,
            height: 0,
            reason: format!(
                "file of {} bytes, limit {}",
                meta.len(),
                options.limits.max_file_bytes
            ),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
    decode_bytes(&bytes, options).map_err(|e| e.with_path(path))
}

/// Decodes an image held in memory. The format is detected from the bytes, never from a file
/// name: JPEG, PNG, GIF (first frame), WebP, BMP and TIFF.
///
/// The result equals PIL's `Image.open(...).convert("RGB")`: alpha is dropped (not composited),
/// grayscale is replicated, palettes are looked up, CMYK JPEGs are converted with PIL's formula,
/// 16-bit RGB keeps the high byte and 16-bit grayscale is clipped to 255, as PIL does. A truncated
/// or corrupt file is an error ([`Error::Decode`]), as in PIL without `LOAD_TRUNCATED_IMAGES`.
/// Sizes are checked against [`DecodeOptions::limits`] before any pixel buffer is allocated.
pub fn decode_bytes(bytes: &[u8], options: &DecodeOptions) -> Result<RgbImage> {
    let format = ImageFormat::sniff(bytes).ok_or_else(|| Error::UnknownFormat {
        path: None,
        detail: Some(describe_prefix(bytes)),
    })?;
    // The decoders are third-party code; a panic inside one (seen: `png` 0.18.1 on a PLTE chunk
    // whose length is not a multiple of 3, fuzz/regressions/decode/) becomes a decode error. The
    // process's panic hook still reports it on stderr.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match format {
        ImageFormat::Jpeg => jpeg::decode(bytes, options),
        ImageFormat::Gif => {
            other_formats::gif_first_frame(bytes, options).map(|image| (image, None))
        }
        other => other_formats::decode(bytes, other, options),
    }))
    .map_err(|payload| Error::Decode {
        path: None,
        format: format.name(),
        message: format!("the decoder panicked: {}", panic_message(payload.as_ref())),
    })?;
    let (image, orientation) =
        decoded.map_err(|e| name_claimed_size(e, format, bytes, &options.limits))?;
    match orientation {
        Some(o) if options.apply_exif_orientation => Ok(apply_orientation(image, o)),
        _ => Ok(image),
    }
}

/// `err`, a decoder's, as the size limit's error when the header claims a size beyond `limits`:
/// some decoders refuse such a picture before saying how large it is (the `image` crate's BMP
/// decoder past 65,535 pixels a side, its PNG decoder past its own limits), and the error
/// should name the size.
fn name_claimed_size(
    err: Error,
    format: ImageFormat,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Error {
    if let Error::TooLarge { width, height, .. } = err
        && (width, height) != (0, 0)
    {
        return err;
    }
    match header::claimed_size(format, bytes).map(|(w, h)| check_limits(w, h, limits)) {
        Some(Err(too_large @ Error::TooLarge { .. })) => too_large,
        _ => err,
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn describe_prefix(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty input".into();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{} bytes starting {}", bytes.len(), head.join(" "))
}

/// Refuses sizes beyond the limits, before allocating.
pub(crate) fn check_limits(width: u64, height: u64, limits: &DecodeLimits) -> Result<()> {
    let too_large = |reason: String| {
        Err(Error::TooLarge {
            path: None,
            width,
            height,
            reason,
        })
    };
    if width == 0 || height == 0 {
        return Err(Error::Decode {
            path: None,
            format: "image",
            message: format!("empty image ({width}×{height})"),
        });
    }
    if width > u64::from(limits.max_side) || height > u64::from(limits.max_side) {
        return too_large(format!("largest side allowed is {}", limits.max_side));
    }
    if width * height > limits.max_pixels {
        return too_large(format!("at most {} pixels allowed", limits.max_pixels));
    }
    Ok(())
}

/// Rotates/flips as the EXIF orientation says (the 8 standard cases, as PIL's `exif_transpose`).
fn apply_orientation(image: RgbImage, orientation: image::metadata::Orientation) -> RgbImage {
    let (w, h) = (image.width, image.height);
    let Some(buffer) = image::RgbImage::from_raw(w, h, image.data.clone()) else {
        return image;
    };
    let mut dynamic = image::DynamicImage::ImageRgb8(buffer);
    dynamic.apply_orientation(orientation);
    let rgb = dynamic.into_rgb8();
    RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
        reduced: image.reduced.map(|r| r.oriented(orientation)),
        // Never set here: the JPEG decoder decodes whole pictures when it will rotate them.
        window: None,
    }
}

/// The environment variable that turns window decoding off: `EMBED_CORE_JPEG_WINDOW=0` makes
/// [`DecodeOptions::window_for`] decode whole pictures (for comparing speeds; results are the
/// same either way).
pub const JPEG_WINDOW_ENV: &str = "EMBED_CORE_JPEG_WINDOW";

/// Whether [`JPEG_WINDOW_ENV`] leaves window decoding on (read once per process).
fn window_decode_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var(JPEG_WINDOW_ENV).map_or(true, |v| v.trim() != "0"))
}
