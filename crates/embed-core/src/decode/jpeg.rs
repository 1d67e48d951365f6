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
        self.check(unsafe { raw::tj3DecompressHeader(self.0, bytes.as_ptr(), bytes.len() as _) })?;
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
                let mut rgb = super::rgb_image::recycle::for_overwrite(w * h * 3);
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
