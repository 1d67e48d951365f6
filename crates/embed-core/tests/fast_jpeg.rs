//! The opt-in DCT-domain JPEG downscale: smaller decode, preprocessed tensor close to exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;

use embed_core::{DecodeOptions, PreprocessSpec, decode_bytes};

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
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
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
