//! The decoded image type, and where a window or reduced-size decode lies in its picture.

use std::ops::Range;

#[cfg(doc)]
use super::DecodeOptions;
use crate::error::{Error, Result};

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) data: Vec<u8>,
    /// Set when the pixels are a reduced-size decode of a larger picture (the fast JPEG mode).
    pub(super) reduced: Option<Reduced>,
    /// Set when the pixels are a window of a larger picture ([`DecodeOptions::window_for`]).
    pub(super) window: Option<Window>,
}

/// Where a window decode ([`DecodeOptions::window_for`]) lies in its picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// The picture's size, `(width, height)`.
    pub(super) full: (u32, u32),
    /// The picture coordinates of the window's first pixel, `(x, y)`.
    pub(super) origin: (u32, u32),
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
    pub(super) full: (u32, u32),
    /// The scale's denominator: each pixel stands for `denom × denom` picture pixels.
    pub(super) denom: u32,
    /// Whether the partial pixels are at the start (not the end) of the x and y axes.
    pub(super) flipped: (bool, bool),
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
    pub(super) fn oriented(self, o: image::metadata::Orientation) -> Self {
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
pub(super) mod recycle {
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
    pub(in crate::decode) fn for_overwrite(len: usize) -> Vec<u8> {
        let mut v = SPARE.try_with(Cell::take).unwrap_or_default();
        v.truncate(len);
        v.resize(len, 0);
        v
    }

    /// Keeps `v` as this thread's spare buffer (the larger of it and the one already kept).
    pub(in crate::decode) fn give_back(v: Vec<u8>) {
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
