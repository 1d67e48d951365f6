//! How images are decoded: the decompression-bomb limits and the decoding options.

#[cfg(doc)]
use super::RgbImage;
use crate::preprocess::Geometry;

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
        Self {
            max_side: 65_535,
            max_pixels: 178_956_970,
            max_file_bytes: 1 << 30,
        }
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
    /// Opt-in fast mode, **not exact**: decode JPEGs at 1/2, 1/4 or 1/8 size in the DCT domain
    /// (much less work for large photos) when the shorter side stays at least this many pixels.
    /// Set it to about twice the resize target (e.g. 448 for a 224 shortest edge, as
    /// [`crate::PreprocessSpec::fast_jpeg_min_side`] gives) to keep the antialiasing close to
    /// the exact path; `None` (default) decodes at full size, as PIL. Its effect on the
    /// embeddings is measured in `docs/BENCHMARKS.md` (section "Fast JPEG mode").
    pub jpeg_dct_downscale_min_side: Option<u32>,
    /// Decode only the part of a JPEG that preprocessing with this geometry reads
    /// ([`crate::PreprocessSpec::geometry`]), **exact**: preprocessing the result with that
    /// spec gives the same values as preprocessing the whole picture, for less decoding work
    /// (libjpeg-turbo skips the inverse DCT, upsampling and colour conversion of the rest).
    /// The image is then a window of the picture ([`RgbImage::origin`],
    /// [`RgbImage::full_size`]), so leave this `None` when the pixels serve anything else.
    /// Preprocessing a window with a spec that reads outside it is an error, not a guess.
    /// Ignored for other formats, reduced-size decodes, and images the EXIF orientation
    /// rotates.
    pub window_for: Option<Geometry>,
}
