//! Image decoding: the format is read from the bytes, the result is 8-bit RGB as PIL's
//! `Image.open(path).convert("RGB")` gives it.

use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
use crate::preprocess::Geometry;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
    /// Set when the pixels are a reduced-size decode of a larger picture (the fast JPEG mode).
    reduced: Option<Reduced>,
    /// Set when the pixels are a window of a larger picture ([`DecodeOptions::window_for`]).
    window: Option<Window>,
}

/// Where a window decode ([`DecodeOptions::window_for`]) lies in its picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// The picture's size, `(width, height)`.
    full: (u32, u32),
    /// The picture coordinates of the window's first pixel, `(x, y)`.
    origin: (u32, u32),
}

/// The pixel grid an image's pixels index into: the picture for a window decode, else the
/// image itself (for a reduced-size decode, its reduced pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Canvas {
    /// `(width, height)`.
    pub(crate) size: (u32, u32),
    /// Canvas coordinates of the image's first pixel, `(x, y)`.
    pub(crate) origin: (usize, usize),
}

impl Canvas {
    /// Canvas rows `rows` as the image's own row indices; fails unless the image (`held`
    /// rows) has them all.
    pub(crate) fn rows(&self, rows: &Range<usize>, held: usize) -> Result<Range<usize>> {
        Self::shift(rows, self.origin.1, held)
    }

    /// Canvas columns `cols` as the image's own column indices (see [`Canvas::rows`]).
    pub(crate) fn cols(&self, cols: &Range<usize>, held: usize) -> Result<Range<usize>> {
        Self::shift(cols, self.origin.0, held)
    }

    fn shift(r: &Range<usize>, origin: usize, held: usize) -> Result<Range<usize>> {
        match (r.start.checked_sub(origin), r.end.checked_sub(origin)) {
            (Some(start), Some(end)) if end <= held => Ok(start..end),
            _ => Err(window_lacks_pixels()),
        }
    }
}

/// The error for a window decode preprocessed by a spec that reads outside it.
pub(crate) fn window_lacks_pixels() -> Error {
    Error::InvalidArgument(
        "the image is a window decoded for other preprocessing (DecodeOptions::window_for): \
         it lacks pixels this resize reads"
            .into(),
    )
}

/// What a reduced-size decode stands for. A JPEG decoded at `1/denom` scale has
/// `ceil(full / denom)` pixels a side, each standing for `denom` picture pixels, so its last row
/// and column can reach past the picture's edge — or its first ones, once the EXIF orientation
/// has flipped the image: `flipped` says on which axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reduced {
    /// The picture's size, `(width, height)`, in the image's current orientation.
    full: (u32, u32),
    denom: u32,
    /// Whether the partial pixels are at the start (not the end) of the x and y axes.
    flipped: (bool, bool),
}

impl Reduced {
    /// Where the picture lies in the reduced image (`width × height` pixels), per axis
    /// `(start, end)` in its pixel coordinates.
    pub(crate) fn picture_box(self, width: u32, height: u32) -> ((f64, f64), (f64, f64)) {
        let d = f64::from(self.denom);
        let axis = |full: u32, size: u32, flipped: bool| {
            let extent = f64::from(full) / d;
            let start = if flipped {
                f64::from(size) - extent
            } else {
                0.0
            };
            (start, start + extent)
        };
        (
            axis(self.full.0, width, self.flipped.0),
            axis(self.full.1, height, self.flipped.1),
        )
    }

    /// The same after the image is rotated or flipped as `o` says, in the order `image`'s
    /// `apply_orientation` applies them (the rotation, then the flip).
    fn oriented(self, o: image::metadata::Orientation) -> Self {
        use image::metadata::Orientation as O;
        let (fx, fy) = self.flipped;
        let swapped = (self.full.1, self.full.0);
        // A quarter turn clockwise: the new x axis is the old y axis reversed, the new y axis
        // the old x axis; counter-clockwise the other way round.
        let rot90 = Self {
            full: swapped,
            flipped: (!fy, fx),
            ..self
        };
        let rot270 = Self {
            full: swapped,
            flipped: (fy, !fx),
            ..self
        };
        let flip_x = |r: Self| Self {
            flipped: (!r.flipped.0, r.flipped.1),
            ..r
        };
        match o {
            O::NoTransforms => self,
            O::Rotate90 => rot90,
            O::Rotate180 => Self {
                flipped: (!fx, !fy),
                ..self
            },
            O::Rotate270 => rot270,
            O::FlipHorizontal => flip_x(self),
            O::FlipVertical => Self {
                flipped: (fx, !fy),
                ..self
            },
            O::Rotate90FlipH => flip_x(rot90),
            O::Rotate270FlipH => flip_x(rot270),
        }
    }
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
        Ok(Self {
            width,
            height,
            data,
            reduced: None,
            window: None,
        })
    }
    /// The size of the picture this image shows, `(width, height)`: its own size, except for
    /// a JPEG decoded at reduced size in the DCT domain
    /// ([`DecodeOptions::jpeg_dct_downscale_min_side`]), where it is the size the file
    /// declares, and for a window decode ([`DecodeOptions::window_for`]), where it is the
    /// size of the whole picture. Preprocessing takes its resize and crop geometry from this
    /// size, so a reduced or window decode lands on the same output pixels as the full one.
    pub fn full_size(&self) -> (u32, u32) {
        match (self.reduced, self.window) {
            (Some(r), _) => r.full,
            (None, Some(w)) => w.full,
            (None, None) => (self.width, self.height),
        }
    }
    /// Where this image's first pixel lies in the picture, `(x, y)`: `(0, 0)` except for a
    /// window decode ([`DecodeOptions::window_for`]), which holds only the `width × height`
    /// pixels from there on of a [`RgbImage::full_size`] picture.
    pub fn origin(&self) -> (u32, u32) {
        self.window.map_or((0, 0), |w| w.origin)
    }
    /// Whether this is a window decode of a larger picture (see [`RgbImage::origin`]).
    pub fn is_window(&self) -> bool {
        self.window.is_some()
    }
    pub(crate) fn canvas(&self) -> Canvas {
        match self.window {
            Some(w) => Canvas {
                size: w.full,
                origin: (w.origin.0 as usize, w.origin.1 as usize),
            },
            None => Canvas {
                size: (self.width, self.height),
                origin: (0, 0),
            },
        }
    }
    /// Whether this is a reduced-size decode of a larger picture (see [`RgbImage::full_size`]).
    pub fn is_reduced(&self) -> bool {
        self.reduced.is_some()
    }
    pub(crate) fn reduced(&self) -> Option<Reduced> {
        self.reduced
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
    pub fn into_raw(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

impl Drop for RgbImage {
    fn drop(&mut self) {
        recycle::give_back(std::mem::take(&mut self.data));
    }
}

/// Pixel buffers of dropped images, reused by the next decode on the same thread. A fresh
/// allocation of a few hundred kilobytes per image is a fresh mapping from the allocator, and
/// its page faults and zeroing took about a tenth of a 500×400 JPEG decode.
mod recycle {
    use std::cell::Cell;

    /// Largest buffer kept (per thread): 16 MiB, a 2,300 × 2,300 RGB image.
    const MAX_KEPT: usize = 16 << 20;

    thread_local! {
        static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    }

    /// A buffer of `len` bytes for a decoder that overwrites all of them, reusing this thread's
    /// spare one when it is there. Its bytes are unspecified (zeros, or pixels of an earlier
    /// image): only what the kept buffer lacks is zero-filled, so a same-size image costs no
    /// memset.
    pub(super) fn for_overwrite(len: usize) -> Vec<u8> {
        let mut v = SPARE.try_with(Cell::take).unwrap_or_default();
        v.truncate(len);
        v.resize(len, 0);
        v
    }

    /// Keeps `v` as this thread's spare buffer (the larger of it and the one already kept).
    pub(super) fn give_back(v: Vec<u8>) {
        if v.capacity() == 0 || v.capacity() > MAX_KEPT {
            return;
        }
        // During thread teardown the slot may be gone: then the buffer is simply freed.
        let _ = SPARE.try_with(|spare| {
            let kept = spare.take();
            spare.set(if kept.capacity() >= v.capacity() {
                kept
            } else {
                v
            });
        });
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
        ImageFormat::Gif => gif_first_frame(bytes, options).map(|image| (image, None)),
        other => generic::decode(bytes, other, options),
    }))
    .map_err(|payload| Error::Decode {
        path: None,
        format: format.name(),
        message: format!("the decoder panicked: {}", panic_message(payload.as_ref())),
    })?;
    let (image, orientation) = decoded?;
    match orientation {
        Some(o) if options.apply_exif_orientation => Ok(apply_orientation(image, o)),
        _ => Ok(image),
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

mod jpeg {
    //! JPEG through libjpeg-turbo 3 (the same decoder, settings and colour conversion as PIL).

    use std::cell::RefCell;
    use std::ffi::{CStr, c_int};

    use image::metadata::Orientation;
    use turbojpeg::{ScalingFactor, raw};

    use super::{DecodeOptions, Reduced, RgbImage, Window, check_limits};
    use crate::error::{Error, Result};
    use crate::preprocess::{Geometry, Region};

    thread_local! {
        // A TurboJPEG handle per thread: creating one per image costs more than decoding a thumbnail.
        static DECOMPRESSOR: RefCell<Option<Handle>> = const { RefCell::new(None) };
    }

    fn err(e: impl std::fmt::Display) -> Error {
        Error::Decode {
            path: None,
            format: "JPEG",
            message: e.to_string(),
        }
    }

    /// A TurboJPEG 3 decompressor, through the `turbojpeg` crate's own bindings: its
    /// `Decompressor` has no cropping region (and checks output sizes against the whole image).
    struct Handle(raw::tjhandle);

    /// What the header says.
    struct Header {
        width: usize,
        height: usize,
        /// `raw::TJSAMP_*`.
        subsamp: c_int,
        /// `raw::TJCS_*`.
        colorspace: c_int,
        /// Lossless or other than 8-bit: no partial decoding.
        croppable: bool,
    }

    impl Handle {
        fn new() -> Result<Self> {
            // SAFETY: plain constructor; a null handle is checked below.
            let h = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
            if h.is_null() {
                return Err(err("could not create a TurboJPEG decompressor"));
            }
            Ok(Self(h))
        }

        /// `Ok` for a zero status, else the handle's error message.
        fn check(&self, status: c_int) -> Result<()> {
            if status == 0 {
                return Ok(());
            }
            // SAFETY: the handle is live; TurboJPEG returns a NUL-terminated string it owns.
            let message = unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) };
            Err(err(format!(
                "TurboJPEG error: {}",
                message.to_string_lossy()
            )))
        }

        fn get(&self, param: raw::TJPARAM) -> c_int {
            // SAFETY: the handle is live; unknown parameters return -1.
            unsafe { raw::tj3Get(self.0, param as c_int) }
        }

        fn header(&mut self, bytes: &[u8]) -> Result<Header> {
            // SAFETY: the handle is live and the pointer/length pair is a valid slice.
            self.check(unsafe {
                raw::tj3DecompressHeader(self.0, bytes.as_ptr(), bytes.len() as _)
            })?;
            let size = |param| usize::try_from(self.get(param)).map_err(|_| err("no image size"));
            Ok(Header {
                width: size(raw::TJPARAM_TJPARAM_JPEGWIDTH)?,
                height: size(raw::TJPARAM_TJPARAM_JPEGHEIGHT)?,
                subsamp: self.get(raw::TJPARAM_TJPARAM_SUBSAMP),
                colorspace: self.get(raw::TJPARAM_TJPARAM_COLORSPACE),
                croppable: self.get(raw::TJPARAM_TJPARAM_LOSSLESS) == 0
                    && self.get(raw::TJPARAM_TJPARAM_PRECISION) == 8,
            })
        }

        fn set_scaling(&mut self, factor: ScalingFactor) -> Result<()> {
            let f = raw::tjscalingfactor {
                num: factor.num() as c_int,
                denom: factor.denom() as c_int,
            };
            // SAFETY: the handle is live.
            self.check(unsafe { raw::tj3SetScalingFactor(self.0, f) })
        }

        /// The region the next decode writes; all zeros for the whole image. Needs the header.
        fn set_region(&mut self, r: Option<Region>) -> Result<()> {
            let r = r.map_or(
                raw::tjregion {
                    x: 0,
                    y: 0,
                    w: 0,
                    h: 0,
                },
                |r| raw::tjregion {
                    x: r.x as c_int,
                    y: r.y as c_int,
                    w: r.width as c_int,
                    h: r.height as c_int,
                },
            );
            // SAFETY: the handle is live.
            self.check(unsafe { raw::tj3SetCroppingRegion(self.0, r) })
        }

        /// Decodes into `out`, `rows` rows of `pitch` bytes in pixel format `format`.
        fn decompress(
            &mut self,
            bytes: &[u8],
            out: &mut [u8],
            (pitch, rows): (usize, usize),
            format: raw::TJPF,
        ) -> Result<()> {
            if out.len() < pitch * rows {
                return Err(err("output buffer too small"));
            }
            // SAFETY: the handle is live, `bytes` is a valid slice, and `out` holds the
            // `rows × pitch` bytes TurboJPEG writes for the scaling factor and region set.
            self.check(unsafe {
                raw::tj3Decompress8(
                    self.0,
                    bytes.as_ptr(),
                    bytes.len() as _,
                    out.as_mut_ptr(),
                    pitch as c_int,
                    format,
                )
            })
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: the handle came from `tj3Init` and is destroyed once.
            unsafe { raw::tj3Destroy(self.0) }
        }
    }

    /// The region to decode for `geometry`: what it reads ([`Geometry::source_region`]), one
    /// iMCU wider on every side (libjpeg-turbo's smooth chroma upsampling treats a partial
    /// row's ends as the picture's edges, so those pixels may differ from a full decode's),
    /// its left edge on an iMCU boundary as TurboJPEG requires. `None`: decode everything.
    fn window_region(geometry: &Geometry, header: &Header) -> Option<Region> {
        // iMCU sizes per `TJSAMP_*` (444, 422, 420, GRAY, 440, 411, 441): turbojpeg.h's
        // `tjMCUWidth` / `tjMCUHeight`, which are header-only (not exported).
        const MCU: [(u32, u32); 7] = [(8, 8), (16, 8), (16, 16), (8, 8), (8, 16), (32, 8), (8, 32)];
        let (mcu_w, mcu_h) = *MCU.get(usize::try_from(header.subsamp).ok()?)?;
        if !header.croppable {
            return None;
        }
        let (w, h) = (
            u32::try_from(header.width).ok()?,
            u32::try_from(header.height).ok()?,
        );
        let r = geometry.source_region(w, h)?;
        let x0 = r.x.saturating_sub(mcu_w) / mcu_w * mcu_w;
        let y0 = r.y.saturating_sub(mcu_h);
        let x1 = (r.x + r.width).saturating_add(mcu_w).min(w);
        let y1 = (r.y + r.height).saturating_add(mcu_h).min(h);
        let region = Region {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        };
        (u64::from(region.width) * u64::from(region.height) < u64::from(w) * u64::from(h))
            .then_some(region)
    }

    pub(super) fn decode(
        bytes: &[u8],
        options: &DecodeOptions,
    ) -> Result<(RgbImage, Option<Orientation>)> {
        let orientation = exif_chunk(bytes).and_then(Orientation::from_exif_chunk);
        // A picture the orientation will rotate is decoded whole: windows are not rotated.
        let rotates = options.apply_exif_orientation
            && orientation.is_some_and(|o| o != Orientation::NoTransforms);
        let image = DECOMPRESSOR.with(|cell| -> Result<RgbImage> {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(Handle::new()?);
            }
            let Some(d) = slot.as_mut() else {
                return Err(err("no decompressor"));
            };
            // A failed decode can leave the handle's parser state behind (seen: a valid JPEG
            // then fails with "Bogus DQT index"), so a handle that saw an error is dropped.
            let result = (|| -> Result<RgbImage> {
                let header = d.header(bytes)?;
                check_limits(header.width as u64, header.height as u64, &options.limits)?;
                let factor = dct_scale(
                    header.width,
                    header.height,
                    options.jpeg_dct_downscale_min_side,
                );
                d.set_scaling(factor)?;
                let (w, h) = (factor.scale(header.width), factor.scale(header.height));
                let reduced = (factor != ScalingFactor::ONE).then(|| Reduced {
                    full: (header.width as u32, header.height as u32),
                    denom: factor.denom() as u32,
                    flipped: (false, false),
                });
                let region = match options.window_for {
                    Some(g) if reduced.is_none() && !rotates && super::window_decode_enabled() => {
                        window_region(&g, &header)
                    }
                    _ => None,
                };
                d.set_region(region)?;
                let window = region.map(|r| Window {
                    full: (w as u32, h as u32),
                    origin: (r.x, r.y),
                });
                let (w, h) = region.map_or((w, h), |r| (r.width as usize, r.height as usize));
                let cmyk = header.colorspace == raw::TJCS_TJCS_CMYK as c_int
                    || header.colorspace == raw::TJCS_TJCS_YCCK as c_int;
                let data = if cmyk {
                    let mut cmyk = vec![0u8; w * h * 4];
                    d.decompress(bytes, &mut cmyk, (w * 4, h), raw::TJPF_TJPF_CMYK)?;
                    inverted_cmyk_to_rgb(&cmyk)
                } else {
                    // TurboJPEG writes every byte of the `h` rows of `w * 3`.
                    let mut rgb = super::recycle::for_overwrite(w * h * 3);
                    d.decompress(bytes, &mut rgb, (w * 3, h), raw::TJPF_TJPF_RGB)?;
                    rgb
                };
                Ok(RgbImage {
                    width: w as u32,
                    height: h as u32,
                    data,
                    reduced,
                    window,
                })
            })();
            if result.is_err() {
                *slot = None;
            }
            result
        })?;
        Ok((image, orientation))
    }

    /// The smallest of 1/8, 1/4, 1/2 (or 1) whose shorter side is still `min_side` or more.
    fn dct_scale(width: usize, height: usize, min_side: Option<u32>) -> ScalingFactor {
        let Some(min_side) = min_side else {
            return ScalingFactor::ONE;
        };
        for factor in [
            ScalingFactor::ONE_EIGHTH,
            ScalingFactor::ONE_QUARTER,
            ScalingFactor::ONE_HALF,
        ] {
            if factor.scale(width.min(height)) >= min_side as usize {
                return factor;
            }
        }
        ScalingFactor::ONE
    }

    /// PIL reads 4-channel JPEGs as Adobe-inverted CMYK (`CMYK;I`) and converts to RGB with
    /// `nk = 255 - k; out = nk - nk * c / 255` (its `cmyk2rgb`, with its rounding `MULDIV255`).
    fn inverted_cmyk_to_rgb(raw: &[u8]) -> Vec<u8> {
        let muldiv255 = |a: u32, b: u32| {
            let t = a * b + 128;
            ((t >> 8) + t) >> 8
        };
        let mut out = Vec::with_capacity(raw.len() / 4 * 3);
        for px in raw.chunks_exact(4) {
            let [c, m, y, k] = [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]].map(u32::from);
            let nk = 255 - k;
            for v in [c, m, y] {
                out.push(nk.saturating_sub(muldiv255(v, nk)).min(255) as u8);
            }
        }
        out
    }

    /// The TIFF payload of the first APP1 `Exif` segment, if any.
    fn exif_chunk(bytes: &[u8]) -> Option<&[u8]> {
        let mut pos = 2; // after SOI
        while pos + 4 <= bytes.len() {
            if bytes[pos] != 0xFF {
                return None;
            }
            let marker = bytes[pos + 1];
            if marker == 0xFF {
                pos += 1; // fill byte
                continue;
            }
            // Start of scan or end of image: no more metadata segments.
            if marker == 0xDA || marker == 0xD9 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
            let body = bytes.get(pos + 4..pos + 2 + len)?;
            if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
                return Some(&body[6..]);
            }
            pos += 2 + len;
        }
        None
    }
}

mod generic {
    //! PNG, WebP, BMP and TIFF through the `image` crate, converted to RGB as PIL converts.

    use std::io::Cursor;

    use image::metadata::Orientation;
    use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

    use super::{DecodeOptions, ImageFormat, RgbImage, check_limits};
    use crate::error::{Error, Result};

    pub(super) fn decode(
        bytes: &[u8],
        format: ImageFormat,
        options: &DecodeOptions,
    ) -> Result<(RgbImage, Option<Orientation>)> {
        let name = format.name();
        let err = |e: image::ImageError| match e {
            image::ImageError::Limits(l) => Error::TooLarge {
                path: None,
                width: 0,
                height: 0,
                reason: l.to_string(),
            },
            other => Error::Decode {
                path: None,
                format: name,
                message: other.to_string(),
            },
        };
        let fmt = match format {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::WebP => image::ImageFormat::WebP,
            ImageFormat::Bmp => image::ImageFormat::Bmp,
            ImageFormat::Tiff => image::ImageFormat::Tiff,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Gif => image::ImageFormat::Gif,
        };
        let mut reader = ImageReader::with_format(Cursor::new(bytes), fmt);
        let mut limits = Limits::default();
        limits.max_image_width = Some(options.limits.max_side);
        limits.max_image_height = Some(options.limits.max_side);
        // Enough for the largest accepted image at 16 bits × 4 channels, plus decoder state.
        limits.max_alloc = Some(
            options
                .limits
                .max_pixels
                .saturating_mul(8)
                .saturating_add(64 << 20),
        );
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(err)?;
        let (w, h) = decoder.dimensions();
        check_limits(u64::from(w), u64::from(h), &options.limits)?;
        let orientation = decoder.orientation().ok();
        let image = DynamicImage::from_decoder(decoder).map_err(err)?;
        Ok((to_rgb_like_pil(image, name)?, orientation))
    }

    /// PIL's `convert("RGB")` for the layouts these decoders produce.
    fn to_rgb_like_pil(image: DynamicImage, name: &'static str) -> Result<RgbImage> {
        let (width, height) = (image.width(), image.height());
        let data: Vec<u8> = match image {
            DynamicImage::ImageRgb8(b) => b.into_raw(),
            DynamicImage::ImageRgba8(b) => b
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            DynamicImage::ImageLuma8(b) => {
                b.into_raw().into_iter().flat_map(|v| [v, v, v]).collect()
            }
            DynamicImage::ImageLumaA8(b) => b
                .into_raw()
                .chunks_exact(2)
                .flat_map(|p| [p[0]; 3])
                .collect(),
            // PIL opens 16-bit RGB(A) with the `;16B` raw modes, which keep the high byte.
            DynamicImage::ImageRgb16(b) => {
                b.into_raw().into_iter().map(|v| (v >> 8) as u8).collect()
            }
            DynamicImage::ImageRgba16(b) => b
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]].map(|v| (v >> 8) as u8))
                .collect(),
            // 16-bit grayscale is mode `I;16` in PIL, and its conversion to RGB clips at 255.
            DynamicImage::ImageLuma16(b) => b
                .into_raw()
                .into_iter()
                .flat_map(|v| [v.min(255) as u8; 3])
                .collect(),
            DynamicImage::ImageLumaA16(b) => b
                .into_raw()
                .chunks_exact(2)
                .flat_map(|p| [(p[0] >> 8) as u8; 3])
                .collect(),
            DynamicImage::ImageRgb32F(b) => b.into_raw().into_iter().map(float_to_u8).collect(),
            DynamicImage::ImageRgba32F(b) => b
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]].map(float_to_u8))
                .collect(),
            other => {
                return Err(Error::Decode {
                    path: None,
                    format: name,
                    message: format!("unsupported pixel layout {:?}", other.color()),
                });
            }
        };
        RgbImage::from_raw(width, height, data)
    }

    fn float_to_u8(v: f32) -> u8 {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// The first frame of a GIF as PIL shows it: palette indices looked up in the frame's local
/// palette (or the global one); a transparent index keeps its palette colour (PIL's
/// `convert("RGB")` ignores transparency); screen area outside the frame takes the background
/// index.
fn gif_first_frame(bytes: &[u8], options: &DecodeOptions) -> Result<RgbImage> {
    let err = |e: gif::DecodingError| Error::Decode {
        path: None,
        format: "GIF",
        message: e.to_string(),
    };
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let bytes_limit = options.limits.max_pixels.saturating_mul(4);
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(bytes_limit).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut decoder = opts.read_info(std::io::Cursor::new(bytes)).map_err(err)?;
    let (sw, sh) = (u32::from(decoder.width()), u32::from(decoder.height()));
    check_limits(u64::from(sw), u64::from(sh), &options.limits)?;
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let background = decoder.bg_color().unwrap_or(0);
    let frame = decoder
        .read_next_frame()
        .map_err(err)?
        .ok_or_else(|| Error::Decode {
            path: None,
            format: "GIF",
            message: "no frames".into(),
        })?;
    let palette = frame.palette.clone().or(global).unwrap_or_else(|| {
        // No palette at all: PIL falls back to a grayscale ramp.
        (0..=255u8).flat_map(|v| [v, v, v]).collect()
    });
    let lookup = |index: u8| -> [u8; 3] {
        let i = usize::from(index) * 3;
        match palette.get(i..i + 3) {
            Some(c) => [c[0], c[1], c[2]],
            None => [0, 0, 0],
        }
    };
    let (w, h) = (sw as usize, sh as usize);
    let bg = lookup(background as u8);
    let mut data: Vec<u8> = std::iter::repeat_n(bg, w * h).flatten().collect();
    let (fx, fy) = (usize::from(frame.left), usize::from(frame.top));
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    for y in 0..fh {
        let Some(row) = frame.buffer.get(y * fw..(y + 1) * fw) else {
            break;
        };
        if fy + y >= h {
            break;
        }
        for (x, &idx) in row.iter().enumerate() {
            if fx + x >= w {
                break;
            }
            let o = ((fy + y) * w + fx + x) * 3;
            data[o..o + 3].copy_from_slice(&lookup(idx));
        }
    }
    RgbImage::from_raw(sw, sh, data)
}
