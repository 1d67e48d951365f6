//! Image decoding: the format is read from the bytes, the result is 8-bit RGB as PIL's
//! `Image.open(path).convert("RGB")` gives it.

use std::path::Path;

use crate::error::{Error, Result};

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbImage {
    /// Wraps interleaved RGB bytes. Fails when `data.len() != width * height * 3`.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(3));
        if expected != Some(data.len()) {
            return Err(Error::Shape(format!(
                "{} bytes for a {width}×{height} RGB image",
                data.len()
            )));
        }
        Ok(Self { width, height, data })
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The interleaved RGB bytes.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }
    /// Consumes the image, returning its bytes.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }
}

/// Guards against decompression bombs: checked against the header before any pixel buffer is
/// allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width or height.
    pub max_side: u32,
    /// Largest accepted `width × height`. The default is PIL's own error threshold
    /// (`2 × Image.MAX_IMAGE_PIXELS`).
    pub max_pixels: u64,
    /// Largest accepted file size in bytes.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_side: 65_535, max_pixels: 178_956_970, max_file_bytes: 1 << 30 }
    }
}

/// How files are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Size limits, checked before allocating.
    pub limits: DecodeLimits,
    /// Rotate and flip by the EXIF orientation tag. Off by default, as in the reference
    /// (`transformers` does not call `ImageOps.exif_transpose`).
    pub apply_exif_orientation: bool,
}

/// Reads and decodes an image file. See [`decode_bytes`].
pub fn decode_file(path: &Path, options: &DecodeOptions) -> Result<RgbImage> {
    let _ = (path, options);
    Err(Error::Config("decoding not implemented yet".into()))
}

/// Decodes an image held in memory. The format is detected from the bytes, never from a file
/// name: JPEG, PNG, GIF (first frame), WebP, BMP and TIFF.
pub fn decode_bytes(bytes: &[u8], options: &DecodeOptions) -> Result<RgbImage> {
    let _ = (bytes, options);
    Err(Error::Config("decoding not implemented yet".into()))
}
