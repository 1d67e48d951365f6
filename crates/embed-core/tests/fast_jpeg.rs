//! The opt-in DCT-domain JPEG downscale: smaller decode, preprocessed tensor close to exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embed_core::{DecodeOptions, PreprocessSpec, decode_bytes};

mod common;
use common::{encode, with_exif_orientation};

fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let r = 128.0 + 100.0 * (fx * 17.0).sin() * (fy * 5.0).cos();
        let g = 128.0 + 90.0 * (fx * 3.0 + fy * 11.0).cos();
        let b = if ((x / 97) + (y / 61)) % 2 == 0 {
            40.0
        } else {
            210.0
        };
        image::Rgb([r as u8, g as u8, b as u8])
    });
    encode(&img, image::ImageFormat::Jpeg)
}

#[test]
fn dct_downscale_picks_the_smallest_scale_that_keeps_the_side() {
    let bytes = photo_jpeg(2000, 1500);
    let exact = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
    assert_eq!((exact.width(), exact.height()), (2000, 1500));
    let fast_opts = DecodeOptions {
        jpeg_dct_downscale_min_side: Some(448),
        ..Default::default()
    };
    let fast = decode_bytes(&bytes, &fast_opts).unwrap();
    // 1/4 would give 375 < 448 rows, so 1/2.
    assert_eq!((fast.width(), fast.height()), (1000, 750));
    assert!(fast.is_reduced() && !exact.is_reduced());
    assert_eq!(fast.full_size(), (2000, 1500));
    assert_eq!(exact.full_size(), (2000, 1500));
    // Without a crop the output size follows the picture, not the reduced pixels.
    let uncropped = PreprocessSpec {
        crop: None,
        ..PreprocessSpec::clip()
    };
    assert_eq!(uncropped.output_size_of(&fast), (224, 298));
    assert_eq!(uncropped.output_size_of(&exact), (224, 298));
    // Small images are left alone.
    let small = decode_bytes(&photo_jpeg(500, 400), &fast_opts).unwrap();
    assert_eq!((small.width(), small.height()), (500, 400));

    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let a = spec.preprocess(&exact).unwrap();
        let b = spec.preprocess(&fast).unwrap();
        let cos =
            embed_core::cosine_similarity(a.as_slice().unwrap(), b.as_slice().unwrap()).unwrap();
        assert!(cos > 0.995, "pixel tensors diverge: cosine {cos}");
        assert!(a != b, "fast mode must actually take the other path");
    }
}

#[test]
fn fast_jpeg_min_side_is_twice_the_resize_target() {
    assert_eq!(PreprocessSpec::clip().fast_jpeg_min_side(), Some(448));
    assert_eq!(PreprocessSpec::dinov2().fast_jpeg_min_side(), Some(512));
    let exact = PreprocessSpec {
        resize: Some(embed_core::ResizeSpec::Exact {
            height: 100,
            width: 300,
        }),
        ..PreprocessSpec::clip()
    };
    assert_eq!(exact.fast_jpeg_min_side(), Some(600));
    // Without a resize the crop would see a smaller image: no fast mode.
    let no_resize = PreprocessSpec {
        resize: None,
        ..PreprocessSpec::clip()
    };
    assert_eq!(no_resize.fast_jpeg_min_side(), None);
}

/// A JPEG with detail at the scale of the model's input (stripes a few output pixels wide), so
/// that a misplaced resize shows; sizes that leave a partial last block at 1/4 scale.
fn detailed_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let r = 128.0 + 100.0 * (fx * 0.09).sin() * (fy * 0.013).cos();
        let g = 128.0 + 100.0 * ((fx * 0.05 + fy * 0.07).sin());
        let b = if ((x / 23) + (y / 19)) % 2 == 0 {
            30.0
        } else {
            220.0
        };
        image::Rgb([r as u8, g as u8, b as u8])
    });
    encode(&img, image::ImageFormat::Jpeg)
}

/// Mean and largest |a - b| of two 8-bit outputs.
fn level_diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y));
    let max = d.clone().max().unwrap_or(0);
    (d.map(f64::from).sum::<f64>() / a.len() as f64, max)
}

#[test]
fn fast_mode_keeps_the_exact_geometry() {
    // 2013 / 4 = 503.25: the last column of 1/4-scale pixels is a quarter picture, the rest pad.
    let bytes = detailed_jpeg(2013, 1813);
    let exact = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let fast_opts = DecodeOptions {
            jpeg_dct_downscale_min_side: spec.fast_jpeg_min_side(),
            ..Default::default()
        };
        let fast = decode_bytes(&bytes, &fast_opts).unwrap();
        assert!(fast.width() < 1100, "decoded at {}", fast.width());
        let a = embed_core::preprocess::resize_crop(&spec, &exact).unwrap();
        let b = embed_core::preprocess::resize_crop(&spec, &fast).unwrap();
        let (mean, max) = level_diff(&a, &b);
        // Measured (2026-11-27): mean 1.30 / 0.45 levels, max 11 / 5 (CLIP / DINOv2). Resizing
        // the reduced image as if it were the whole picture (off by the partial block) gives
        // 12.9 / 4.5, max 74 / 27.
        assert!(mean < 2.0 && max < 24, "mean {mean} max {max}");
    }
}

#[test]
fn fast_mode_follows_the_exif_orientation() {
    let spec = PreprocessSpec::clip();
    // Partial last blocks on both axes at 1/4 scale (1813 / 4 = 453.25, 2013 / 4 = 503.25).
    let base = detailed_jpeg(2013, 1813);
    for orientation in 1..=8u16 {
        let bytes = with_exif_orientation(&base, orientation);
        let opts = DecodeOptions {
            apply_exif_orientation: true,
            ..Default::default()
        };
        let exact = decode_bytes(&bytes, &opts).unwrap();
        let fast = decode_bytes(
            &bytes,
            &DecodeOptions {
                jpeg_dct_downscale_min_side: spec.fast_jpeg_min_side(),
                ..opts
            },
        )
        .unwrap();
        assert_eq!(fast.full_size(), (exact.width(), exact.height()));
        let a = embed_core::preprocess::resize_crop(&spec, &exact).unwrap();
        let b = embed_core::preprocess::resize_crop(&spec, &fast).unwrap();
        let (mean, max) = level_diff(&a, &b);
        assert!(
            mean < 2.0 && max < 24,
            "orientation {orientation}: mean {mean} max {max}"
        );
    }
}
