//! Window decoding (`DecodeOptions::window_for`): libjpeg-turbo decodes only the part of a JPEG
//! that preprocessing reads, and the preprocessed tensor equals the whole picture's bit for
//! bit — for every chroma subsampling, baseline and progressive, CMYK, every filter, crops and
//! resizes of all shapes. A window preprocessed by a spec that reads outside it is an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embed_core::{
    CropSize, DecodeOptions, Error, PreprocessSpec, Resample, ResizeSpec, decode_bytes,
};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

mod common;
use common::with_exif_orientation;

/// Decode options that decode only what `spec` reads.
fn only_for(spec: &PreprocessSpec) -> DecodeOptions {
    DecodeOptions {
        window_for: Some(spec.geometry()),
        ..DecodeOptions::default()
    }
}

/// xorshift64*: reproducible noise and random cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 32) % n
    }
    fn side(&mut self, max: u64) -> u32 {
        // Mostly small sides, some tiny, some large.
        match self.below(4) {
            0 => 1 + self.below(16) as u32,
            _ => 1 + self.below(max) as u32,
        }
    }
}

/// A busy picture: smooth colour ramps (chroma upsampling matters) plus noise (so no block is
/// flat), `channels` bytes a pixel.
fn picture(w: usize, h: usize, channels: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut noise = move || (rng.next() >> 58) as i32;
    let mut out = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let ramp = match c {
                    0 => x * 255 / w.max(1),
                    1 => y * 255 / h.max(1),
                    2 => (x + y) * 127 / (w + h),
                    _ => 255 - x * 200 / w.max(1),
                } as i32;
                out.push((ramp + noise() - 32).clamp(0, 255) as u8);
            }
        }
    }
    out
}

fn jpeg(w: usize, h: usize, subsamp: Subsamp, progressive: bool, seed: u64) -> Vec<u8> {
    coded(w, h, subsamp, (progressive, false), seed)
}

/// A JPEG, `(progressive, arithmetic)` coded.
fn coded(
    w: usize,
    h: usize,
    subsamp: Subsamp,
    (progressive, arithmetic): (bool, bool),
    seed: u64,
) -> Vec<u8> {
    let mut c = Compressor::new().unwrap();
    c.set_quality(90).unwrap();
    c.set_subsamp(subsamp).unwrap();
    c.set_progressive(progressive).unwrap();
    c.set_arithmetic(arithmetic).unwrap();
    let (format, channels) = match subsamp {
        Subsamp::Gray => (PixelFormat::GRAY, 1),
        _ => (PixelFormat::RGB, 3),
    };
    let pixels = picture(w, h, channels, seed);
    c.compress_to_vec(Image {
        pixels: &pixels[..],
        width: w,
        pitch: w * channels,
        height: h,
        format,
    })
    .unwrap()
}

fn specs() -> Vec<PreprocessSpec> {
    let clip = PreprocessSpec::clip();
    vec![
        clip.clone(),
        PreprocessSpec::dinov2(),
        // Other filters: wider (lanczos) and narrower (box, bilinear) taps.
        PreprocessSpec {
            resample: Resample::Lanczos,
            ..PreprocessSpec::dinov2()
        },
        PreprocessSpec {
            resample: Resample::Box,
            ..clip.clone()
        },
        PreprocessSpec {
            resample: Resample::Bilinear,
            crop: Some(CropSize {
                height: 96,
                width: 160,
            }),
            ..clip.clone()
        },
        // An exact resize that changes the aspect ratio, then a crop.
        PreprocessSpec {
            resize: Some(ResizeSpec::Exact {
                height: 300,
                width: 200,
            }),
            ..clip.clone()
        },
        // No resize: the crop alone (the copy path).
        PreprocessSpec {
            resize: None,
            crop: Some(CropSize {
                height: 64,
                width: 48,
            }),
            ..clip.clone()
        },
        // Upscaling (the picture is smaller than the resize target).
        PreprocessSpec {
            resize: Some(ResizeSpec::ShortestEdge(512)),
            ..clip
        },
    ]
}

/// The window decode of `bytes` for `spec` and the whole decode preprocess to the same tensor;
/// returns whether the decode was a window.
fn check(bytes: &[u8], spec: &PreprocessSpec, what: &str) -> bool {
    let whole = decode_bytes(bytes, &DecodeOptions::default()).unwrap();
    let only = only_for(spec);
    let part = decode_bytes(bytes, &only).unwrap();
    assert_eq!(part.full_size(), whole.full_size(), "{what}");
    // The pixels the spec reads are the whole decode's pixels. (Not all of the window's:
    // libjpeg-turbo's smooth chroma upsampling may differ at a partial row's ends, which is
    // why the window is wider than what the spec reads.)
    let (w, h) = whole.full_size();
    if let Some(r) = spec.geometry().source_region(w, h) {
        let (ox, oy) = part.origin();
        let (pw, ww) = (part.width() as usize, whole.width() as usize);
        for y in r.y..r.y + r.height {
            let cols = (r.x as usize)..(r.x + r.width) as usize;
            let at = |row: usize, stride: usize, x0: usize| {
                (row * stride + cols.start - x0) * 3..(row * stride + cols.end - x0) * 3
            };
            assert_eq!(
                &part.as_raw()[at(y as usize - oy as usize, pw, ox as usize)],
                &whole.as_raw()[at(y as usize, ww, 0)],
                "{what}: picture row {y}"
            );
        }
    }
    assert_eq!(
        spec.preprocess(&part).unwrap(),
        spec.preprocess(&whole).unwrap(),
        "{what}"
    );
    part.is_window()
}

#[test]
fn window_decode_equals_whole_decode() {
    let subsamps = [
        Subsamp::None,
        Subsamp::Sub2x1,
        Subsamp::Sub2x2,
        Subsamp::Sub1x2,
        Subsamp::Sub4x1,
        Subsamp::Sub1x4,
        Subsamp::Gray,
    ];
    // Landscape, portrait, near-square, sizes off every block grid, one much wider than tall.
    let sizes = [(641, 479), (383, 517), (300, 301), (1001, 203), (97, 61)];
    let specs = specs();
    let (mut checked, mut windows) = (0, 0);
    for (i, &subsamp) in subsamps.iter().enumerate() {
        for progressive in [false, true] {
            for (j, &(w, h)) in sizes.iter().enumerate() {
                let bytes = jpeg(w, h, subsamp, progressive, (i * 10 + j) as u64 + 1);
                for (k, spec) in specs.iter().enumerate() {
                    let what = format!("{subsamp:?} progressive={progressive} {w}×{h} spec {k}");
                    windows += usize::from(check(&bytes, spec, &what));
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} decodes, {windows} of them windows");
    // Most combinations leave something out (all but upscaling and tiny pictures).
    assert!(windows * 2 > checked, "{windows} windows of {checked}");
}

#[test]
fn elongated_window_equals_whole() {
    // Pictures around and beyond twice as tall as wide, in both orientations (odd sizes, one
    // very elongated): the tall ones are resized vertical pass first, whose input columns the
    // window must hold as well.
    let shapes = [
        (480, 959),
        (480, 960),
        (480, 961),
        (401, 803),
        (257, 515),
        (240, 1000),
        (401, 3000),
    ];
    let specs = specs();
    let (mut checked, mut windows) = (0, 0);
    for (i, &(w, h)) in shapes.iter().enumerate() {
        for (w, h) in [(w, h), (h, w)] {
            for (j, (subsamp, progressive)) in [
                (Subsamp::Sub2x2, false),
                (Subsamp::Sub2x1, true),
                (Subsamp::None, false),
            ]
            .into_iter()
            .enumerate()
            {
                let bytes = jpeg(w, h, subsamp, progressive, (i * 10 + j) as u64 + 101);
                for (k, spec) in specs.iter().enumerate() {
                    let what = format!("{subsamp:?} progressive={progressive} {w}×{h} spec {k}");
                    windows += usize::from(check(&bytes, spec, &what));
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} decodes, {windows} of them windows");
    assert!(windows * 2 > checked, "{windows} windows of {checked}");
}

#[test]
fn arithmetic_coded_window_equals_whole() {
    let clip = PreprocessSpec::clip();
    let dinov2 = PreprocessSpec::dinov2();
    let mut windows = 0;
    for subsamp in [Subsamp::Sub2x2, Subsamp::Sub2x1, Subsamp::None] {
        for progressive in [false, true] {
            let bytes = coded(517, 389, subsamp, (progressive, true), 21);
            for spec in [&clip, &dinov2] {
                let what = format!("arithmetic {subsamp:?} progressive={progressive}");
                windows += usize::from(check(&bytes, spec, &what));
            }
        }
    }
    assert_eq!(windows, 12);
}

#[test]
fn the_window_is_smaller_than_the_picture() {
    // CLIP on a 640 × 480 picture reads the middle ~490 columns and every row.
    let bytes = jpeg(640, 480, Subsamp::Sub2x2, false, 7);
    let only = only_for(&PreprocessSpec::clip());
    let part = decode_bytes(&bytes, &only).unwrap();
    assert!(part.is_window());
    assert_eq!(part.full_size(), (640, 480));
    assert_eq!(part.height(), 480);
    assert!(part.width() < 560, "window {} wide", part.width());
    assert_eq!(part.origin().0 % 16, 0, "left edge on the iMCU grid");
    assert_eq!(part.origin().1, 0);
    // DINOv2 crops 224 of 256 rows too.
    let only = only_for(&PreprocessSpec::dinov2());
    let part = decode_bytes(&bytes, &only).unwrap();
    assert!(part.height() < 480 && part.width() < 480);
}

#[test]
fn cmyk_window_equals_whole() {
    let (w, h) = (500, 375);
    let pixels = picture(w, h, 4, 3);
    let mut c = Compressor::new().unwrap();
    c.set_quality(90).unwrap();
    c.set_subsamp(Subsamp::None).unwrap();
    let bytes = c
        .compress_to_vec(Image {
            pixels: &pixels[..],
            width: w,
            pitch: w * 4,
            height: h,
            format: PixelFormat::CMYK,
        })
        .unwrap();
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        assert!(check(&bytes, &spec, "CMYK"));
    }
}

#[test]
fn a_window_read_outside_is_an_error() {
    // DINOv2's window crops rows; CLIP reads every row of a landscape picture.
    let bytes = jpeg(640, 480, Subsamp::Sub2x2, false, 9);
    let only = only_for(&PreprocessSpec::dinov2());
    let part = decode_bytes(&bytes, &only).unwrap();
    assert!(part.is_window());
    let err = PreprocessSpec::clip().preprocess(&part).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("window"), "{err}");
    // The same for the copy path (a crop of the whole picture) and nearest-neighbour
    // resampling.
    for spec in [
        PreprocessSpec {
            resize: None,
            crop: Some(CropSize {
                height: 480,
                width: 640,
            }),
            ..PreprocessSpec::clip()
        },
        PreprocessSpec {
            resample: Resample::Nearest,
            ..PreprocessSpec::clip()
        },
    ] {
        let err = spec.preprocess(&part).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    // CLIP's window holds all DINOv2 reads of this picture: that works, and exactly.
    let clip_part = decode_bytes(&bytes, &only_for(&PreprocessSpec::clip())).unwrap();
    let whole = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
    let dinov2 = PreprocessSpec::dinov2();
    assert_eq!(
        dinov2.preprocess(&clip_part).unwrap(),
        dinov2.preprocess(&whole).unwrap()
    );
}

#[test]
fn no_window_where_it_would_not_be_exact_or_possible() {
    let bytes = jpeg(640, 480, Subsamp::Sub2x2, false, 11);
    let clip = PreprocessSpec::clip();
    let only = only_for(&clip);
    // A picture the EXIF orientation rotates is decoded whole, and still preprocesses right.
    let rotated = with_exif_orientation(&bytes, 6);
    let with_orientation = DecodeOptions {
        apply_exif_orientation: true,
        ..only
    };
    let image = decode_bytes(&rotated, &with_orientation).unwrap();
    assert!(!image.is_window());
    assert_eq!((image.width(), image.height()), (480, 640));
    // Unapplied orientation: windows as usual.
    assert!(decode_bytes(&rotated, &only).unwrap().is_window());
    // Reduced-size decodes (the fast mode) are not windowed.
    let fast = DecodeOptions {
        jpeg_dct_downscale_min_side: Some(200),
        ..only
    };
    let image = decode_bytes(&bytes, &fast).unwrap();
    assert!(image.is_reduced() && !image.is_window());
    // Lossless JPEG cannot be partially decoded: whole, and the same tensor.
    let mut c = Compressor::new().unwrap();
    c.set_lossless(true).unwrap();
    let pixels = picture(320, 240, 3, 5);
    let lossless = c
        .compress_to_vec(Image {
            pixels: &pixels[..],
            width: 320,
            pitch: 960,
            height: 240,
            format: PixelFormat::RGB,
        })
        .unwrap();
    assert!(!check(&lossless, &clip, "lossless"));
    // Other formats ignore the option.
    let png = common::encode(
        &image::RgbImage::from_raw(320, 240, pixels).unwrap(),
        image::ImageFormat::Png,
    );
    assert!(!decode_bytes(&png, &only).unwrap().is_window());
}

#[test]
fn random_geometries_window_equals_whole() {
    // Random picture sizes (tiny, thin, large), codings and specs (any filter, shortest-edge
    // and exact resizes that up- and downscale, crops smaller and larger than the resized
    // picture, no crop, no resize): the window decode always preprocesses to the same tensor.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let subsamps = [
        Subsamp::None,
        Subsamp::Sub2x1,
        Subsamp::Sub2x2,
        Subsamp::Sub1x2,
        Subsamp::Sub4x1,
        Subsamp::Gray,
    ];
    let filters = [
        Resample::Bicubic,
        Resample::Bilinear,
        Resample::Lanczos,
        Resample::Box,
        Resample::Hamming,
        Resample::Nearest,
    ];
    let (mut cases, mut windows) = (0, 0);
    for i in 0..150 {
        let (w, h) = (rng.side(900), rng.side(900));
        let subsamp = subsamps[rng.below(subsamps.len() as u64) as usize];
        let bytes = coded(
            w as usize,
            h as usize,
            subsamp,
            (rng.below(2) == 1, false),
            i,
        );
        for _ in 0..3 {
            let resize = match rng.below(4) {
                0 => None,
                1 => Some(ResizeSpec::Exact {
                    height: rng.side(400),
                    width: rng.side(400),
                }),
                _ => Some(ResizeSpec::ShortestEdge(rng.side(400))),
            };
            let crop = (rng.below(4) != 0).then(|| CropSize {
                height: rng.side(300),
                width: rng.side(300),
            });
            let spec = PreprocessSpec {
                resize,
                crop,
                resample: filters[rng.below(filters.len() as u64) as usize],
                ..PreprocessSpec::clip()
            };
            // Without a crop or an exact resize the output size follows the picture.
            let what = format!("case {i}: {w}×{h} {subsamp:?} {spec:?}");
            windows += usize::from(check(&bytes, &spec, &what));
            cases += 1;
        }
    }
    eprintln!("{cases} random cases, {windows} window decodes");
    assert!(windows * 4 > cases, "{windows} windows of {cases}");
}
