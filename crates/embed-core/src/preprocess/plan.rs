//! Where a resize's centre crop falls: the window of the resized picture that is computed,
//! where it lands in the output (padding around it when the crop is larger than the picture),
//! and which input pixels it reads.

use std::ops::Range;

use super::coeffs::AxisFilter;
use super::spec::{Geometry, Region, Resample};
use crate::decode::RgbImage;
use crate::error::{Error, Result};

/// Where the computed window of the resized image lands in the (cropped) output.
pub(super) struct Placement {
    /// Output height.
    pub(super) out_h: usize,
    /// Output width.
    pub(super) out_w: usize,
    /// Output row and column of the window's first pixel.
    top: usize,
    left: usize,
    /// Window size; outside it the output is padding (a crop larger than the resized image).
    rows: usize,
    cols: usize,
}

/// A run of one output row of one channel: padding (zero pixels) or computed pixels.
pub(super) enum Segment<'a> {
    Pad(usize),
    Pixels(&'a [u8]),
}

impl Placement {
    /// Calls `f(channel, segment)` for the whole output in `C × H × W` order. `window` is the
    /// row-planar window [`super::resize::resize_window`] left in the scratch.
    pub(super) fn emit<'a>(&self, window: &'a [u8], mut f: impl FnMut(usize, Segment<'a>)) {
        let right = self.out_w - self.left - self.cols;
        for c in 0..3 {
            for y in 0..self.out_h {
                match y.checked_sub(self.top).filter(|&i| i < self.rows) {
                    Some(i) => {
                        let o = (i * 3 + c) * self.cols;
                        if self.left > 0 {
                            f(c, Segment::Pad(self.left));
                        }
                        f(c, Segment::Pixels(&window[o..o + self.cols]));
                        if right > 0 {
                            f(c, Segment::Pad(right));
                        }
                    }
                    None => f(c, Segment::Pad(self.out_w)),
                }
            }
        }
    }
}

/// The crop window of a resize, in resized-image coordinates, and where it lands.
pub(super) struct Plan {
    /// Resized size `(width, height)`.
    pub(super) res: (usize, usize),
    /// Resized rows and columns that land inside the output.
    pub(super) rows: Range<usize>,
    pub(super) cols: Range<usize>,
    pub(super) placed: Placement,
}

/// Where `geometry`'s crop falls in the resized `full_w × full_h` picture.
pub(super) fn plan(geometry: &Geometry, full_w: u32, full_h: u32) -> Result<Plan> {
    let (rh, rw) = geometry.resized_size(full_w, full_h);
    let (res_h, res_w) = (rh as usize, rw as usize);
    if res_h == 0 || res_w == 0 {
        return Err(Error::InvalidArgument(format!(
            "a {full_w}×{full_h} image resizes to nothing ({res_w}×{res_h})"
        )));
    }
    let (out_h, out_w) = geometry.output_size(full_w, full_h);
    // Offsets of the crop window in the resized image: Python's floor division, possibly
    // negative (then the crop pads).
    let (top, left) = match geometry.crop {
        Some(_) => (
            (res_h as i64 - out_h as i64).div_euclid(2),
            (res_w as i64 - out_w as i64).div_euclid(2),
        ),
        None => (0, 0),
    };
    let rows = clip_range(top, out_h, res_h);
    let cols = clip_range(left, out_w, res_w);
    let placed = if rows.is_empty() || cols.is_empty() {
        Placement {
            out_h,
            out_w,
            top: 0,
            left: 0,
            rows: 0,
            cols: 0,
        }
    } else {
        Placement {
            out_h,
            out_w,
            top: (rows.start as i64 - top) as usize,
            left: (cols.start as i64 - left) as usize,
            rows: rows.len(),
            cols: cols.len(),
        }
    };
    Ok(Plan {
        res: (res_w, res_h),
        rows,
        cols,
        placed,
    })
}

/// Whether a resize to `res` of a `full` picture is a plain copy (no filter pass at all); never
/// for a reduced-size decode, whose pixels are not the picture's.
pub(super) fn is_copy(
    geometry: &Geometry,
    reduced: bool,
    res: (usize, usize),
    full: (u32, u32),
) -> bool {
    !reduced && (geometry.resize.is_none() || res == (full.0 as usize, full.1 as usize))
}

/// See [`Geometry::source_region`]: the input pixels `plan`'s window reads, as PIL's filter
/// taps reach them.
pub(super) fn source_region(geometry: &Geometry, full_w: u32, full_h: u32) -> Option<Region> {
    if full_w == 0 || full_h == 0 || geometry.resample == Resample::Nearest {
        return None;
    }
    let plan = plan(geometry, full_w, full_h).ok()?;
    if plan.rows.is_empty() || plan.cols.is_empty() {
        return None;
    }
    let (res_w, res_h) = plan.res;
    let copy = is_copy(geometry, false, plan.res, (full_w, full_h));
    let span = |in_size: u32, out_size: usize, range: &Range<usize>| -> Option<Range<usize>> {
        let in_size = in_size as usize;
        if copy || out_size == in_size {
            return Some(range.clone());
        }
        AxisFilter::new(in_size, whole_axis(in_size), out_size, geometry.resample)
            .ok()?
            .span(range.clone())
    };
    let xs = span(full_w, res_w, &plan.cols)?;
    let ys = span(full_h, res_h, &plan.rows)?;
    Some(Region {
        x: xs.start as u32,
        y: ys.start as u32,
        width: xs.len() as u32,
        height: ys.len() as u32,
    })
}

/// The region of the input that the resize maps onto the output, per axis `(start, end)` in
/// input pixels — PIL's `box` argument of `Image.resize`. The whole image, except for a
/// reduced-size decode, whose picture can end inside its last row or column of pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SourceBox {
    pub(super) x: (f64, f64),
    pub(super) y: (f64, f64),
}

impl SourceBox {
    /// The box of `image`: where a reduced-size decode's picture lies, else the whole image.
    pub(super) fn of(image: &RgbImage) -> Self {
        let (w, h) = image.canvas().size;
        match image.reduced() {
            Some(r) => {
                let (x, y) = r.picture_box(w, h);
                Self { x, y }
            }
            None => Self {
                x: whole_axis(w as usize),
                y: whole_axis(h as usize),
            },
        }
    }
}

/// PIL's box along one axis of a plain resize: `(0, size)`, held as `f32` as PIL holds it.
pub(super) fn whole_axis(size: usize) -> (f64, f64) {
    (0.0, f64::from(size as f32))
}

/// Resized-image indices `[offset, offset + len) ∩ [0, size)`.
fn clip_range(offset: i64, len: usize, size: usize) -> Range<usize> {
    let start = offset.max(0) as usize;
    let end = (offset + len as i64).clamp(0, size as i64) as usize;
    start.min(end)..end
}
