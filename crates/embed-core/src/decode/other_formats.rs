//! The formats other than JPEG: PNG, WebP, BMP and TIFF through the `image` crate, GIF through
//! the `gif` crate, converted to RGB as PIL converts.

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
        DynamicImage::ImageLuma8(b) => b.into_raw().into_iter().flat_map(|v| [v, v, v]).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0]; 3])
            .collect(),
        // PIL opens 16-bit RGB(A) with the `;16B` raw modes, which keep the high byte.
        DynamicImage::ImageRgb16(b) => b.into_raw().into_iter().map(|v| (v >> 8) as u8).collect(),
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

/// The first frame of a GIF as PIL shows it: palette indices looked up in the frame's local
/// palette (or the global one); a transparent index keeps its palette colour (PIL's
/// `convert("RGB")` ignores transparency); screen area outside the frame takes the background
/// index.
pub(super) fn gif_first_frame(bytes: &[u8], options: &DecodeOptions) -> Result<RgbImage> {
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
