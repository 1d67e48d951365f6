//! Bad and unusual inputs: every case ends in a typed error or a correct image, never a panic,
//! an abort or an allocation the header talked us into.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use embed_core::{DecodeLimits, DecodeOptions, Error, PreprocessSpec, decode_bytes, decode_file};

mod common;
use common::{encode, with_exif_orientation};

fn rgb(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 3) as u8, ((x ^ y) * 7) as u8])
    })
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), image::ImageFormat::Jpeg)
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), image::ImageFormat::Png)
}

#[test]
fn garbage_is_an_unknown_format() {
    let opts = DecodeOptions::default();
    for bytes in [
        &b""[..],
        b"hello, world\n",
        &[0x13, 0x37, 0, 1, 2, 3, 4, 5, 6, 7, 8][..],
    ] {
        assert!(
            matches!(decode_bytes(bytes, &opts), Err(Error::UnknownFormat { .. })),
            "{bytes:?}"
        );
    }
    // Random bytes, many seeds: never a panic.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for len in [1usize, 7, 64, 1000, 10_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(decode_bytes(&bytes, &opts).is_err());
        // Random bytes behind every magic we know.
        for magic in [
            &[0xFF, 0xD8, 0xFF][..],
            b"\x89PNG\r\n\x1a\n",
            b"GIF89a",
            b"RIFF\0\0\0\0WEBP",
            b"BM",
            b"II*\0",
        ] {
            let mut b = magic.to_vec();
            b.extend_from_slice(&bytes);
            assert!(
                decode_bytes(&b, &opts).is_err(),
                "magic {magic:?} + {len} random bytes decoded"
            );
        }
    }
}

#[test]
fn files_that_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DecodeOptions::default();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let err = decode_file(&empty, &opts).unwrap_err();
    assert!(matches!(err, Error::UnknownFormat { .. }));
    assert!(
        err.to_string().contains("empty.jpg"),
        "error names the file: {err}"
    );

    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    assert!(matches!(
        decode_file(&text, &opts),
        Err(Error::UnknownFormat { .. })
    ));

    assert!(
        matches!(decode_file(dir.path(), &opts), Err(Error::Io { .. })),
        "a directory"
    );
    assert!(matches!(
        decode_file(&dir.path().join("missing.jpg"), &opts),
        Err(Error::Io { .. })
    ));

    #[cfg(unix)]
    {
        let link = dir.path().join("dangling.jpg");
        std::os::unix::fs::symlink(dir.path().join("nowhere.jpg"), &link).unwrap();
        assert!(
            matches!(decode_file(&link, &opts), Err(Error::Io { .. })),
            "a dangling symlink"
        );

        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked.jpg");
        std::fs::write(&locked, jpeg(8, 8)).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        match std::fs::File::open(&locked) {
            // root reads anything: then the image must simply decode.
            Ok(_) => assert!(decode_file(&locked, &opts).is_ok()),
            Err(_) => assert!(matches!(decode_file(&locked, &opts), Err(Error::Io { .. }))),
        }
    }
}

#[test]
fn truncated_files_are_decode_errors() {
    // Defined behaviour (as PIL without LOAD_TRUNCATED_IMAGES): a truncated JPEG or PNG is an
    // error, at every truncation point, never a partial image.
    let opts = DecodeOptions::default();
    for (name, full) in [("jpeg", jpeg(64, 48)), ("png", png(64, 48))] {
        assert!(decode_bytes(&full, &opts).is_ok());
        let step = (full.len() / 60).max(1);
        for cut in (1..full.len() - 2).step_by(step) {
            match decode_bytes(&full[..cut], &opts) {
                Err(Error::Decode { .. } | Error::UnknownFormat { .. }) => {}
                other => panic!("{name} cut at {cut}/{}: {other:?}", full.len()),
            }
        }
    }
}

/// Patches the SOF0 frame size of a JPEG.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut b = jpeg(16, 16);
    let sof = b
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline SOF0");
    b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    b
}

/// Patches the IHDR size of a PNG (and its CRC).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = png(16, 16);
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn decompression_bombs_are_refused_before_allocating() {
    let opts = DecodeOptions::default();
    for (w, h) in [(65_500u32, 65_500u32), (100_000, 100_000), (65_500, 3000)] {
        if w <= u32::from(u16::MAX) && h <= u32::from(u16::MAX) {
            let r = decode_bytes(&jpeg_claiming(w as u16, h as u16), &opts);
            assert!(
                matches!(r, Err(Error::TooLarge { .. })),
                "jpeg {w}×{h}: {r:?}"
            );
        }
        let r = decode_bytes(&png_claiming(w, h), &opts);
        assert!(
            matches!(r, Err(Error::TooLarge { .. })),
            "png {w}×{h}: {r:?}"
        );
    }
    // Limits are configurable.
    let tight = DecodeOptions {
        limits: DecodeLimits {
            max_pixels: 100,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    assert!(matches!(
        decode_bytes(&png(11, 10), &tight),
        Err(Error::TooLarge { .. })
    ));
    assert!(decode_bytes(&png(10, 10), &tight).is_ok());
    let small_files = DecodeOptions {
        limits: DecodeLimits {
            max_file_bytes: 10,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.png");
    std::fs::write(&f, png(4, 4)).unwrap();
    assert!(matches!(
        decode_file(&f, &small_files),
        Err(Error::TooLarge { .. })
    ));
}

/// A GIF whose logical screen claims `w × h` (LE `u16`s at bytes 6..10).
fn gif_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut b = encode(&rgb(16, 16), image::ImageFormat::Gif);
    b[6..8].copy_from_slice(&w.to_le_bytes());
    b[8..10].copy_from_slice(&h.to_le_bytes());
    b
}

/// A lossless WebP whose VP8L header claims `w × h` (14 bits each, minus one, after the
/// signature byte at offset 20).
fn webp_vp8l_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = encode(&rgb(16, 16), image::ImageFormat::WebP);
    assert_eq!(&b[12..16], b"VP8L", "the image crate writes lossless WebP");
    let bits = (w - 1) | ((h - 1) << 14) | (u32::from(b[24]) >> 4 << 28);
    b[21..25].copy_from_slice(&bits.to_le_bytes());
    b
}

/// A WebP with a VP8X chunk (extended format) whose canvas claims `w × h` (24 bits each,
/// minus one), in front of a real 16 × 16 lossless image.
fn webp_vp8x_claiming(w: u32, h: u32) -> Vec<u8> {
    let inner = encode(&rgb(16, 16), image::ImageFormat::WebP);
    let mut vp8x = b"VP8X".to_vec();
    vp8x.extend_from_slice(&10u32.to_le_bytes());
    vp8x.extend_from_slice(&[0, 0, 0, 0]);
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let body = [&b"WEBP"[..], &vp8x, &inner[12..]].concat();
    [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
}

/// A BMP whose BITMAPINFOHEADER claims `w × h` (LE `i32`s at bytes 18..26).
fn bmp_claiming(w: i32, h: i32) -> Vec<u8> {
    let mut b = encode(&rgb(16, 16), image::ImageFormat::Bmp);
    b[18..22].copy_from_slice(&w.to_le_bytes());
    b[22..26].copy_from_slice(&h.to_le_bytes());
    b
}

/// A little-endian TIFF whose first IFD claims `w × h` (tags 256 and 257 made LONGs).
fn tiff_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = encode(&rgb(16, 16), image::ImageFormat::Tiff);
    assert_eq!(&b[..4], b"II*\0");
    let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let n = usize::from(u16::from_le_bytes([b[ifd], b[ifd + 1]]));
    let mut patched = 0;
    for e in (0..n).map(|i| ifd + 2 + 12 * i) {
        let value = match u16::from_le_bytes([b[e], b[e + 1]]) {
            256 => w,
            257 => h,
            _ => continue,
        };
        b[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes()); // LONG
        b[e + 4..e + 8].copy_from_slice(&1u32.to_le_bytes());
        b[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2, "ImageWidth and ImageLength tags");
    b
}

#[test]
fn decompression_bombs_name_the_size_they_claim() {
    // Per format: a side beyond `max_side`, and sides within it whose product exceeds
    // `max_pixels`. The error carries the header's size and says it.
    let cases: Vec<(&str, Vec<u8>, (u64, u64))> = vec![
        ("JPEG", jpeg_claiming(65_500, 65_500), (65_500, 65_500)),
        ("JPEG", jpeg_claiming(65_500, 3_000), (65_500, 3_000)),
        ("PNG", png_claiming(100_000, 100_000), (100_000, 100_000)),
        ("PNG", png_claiming(65_500, 3_000), (65_500, 3_000)),
        ("PNG", png_claiming(70_000, 16), (70_000, 16)),
        ("GIF", gif_claiming(65_535, 65_535), (65_535, 65_535)),
        ("GIF", gif_claiming(65_535, 3_000), (65_535, 3_000)),
        ("WebP", webp_vp8l_claiming(16_384, 16_384), (16_384, 16_384)),
        (
            "WebP",
            webp_vp8x_claiming(100_000, 100_000),
            (100_000, 100_000),
        ),
        ("WebP", webp_vp8x_claiming(70_000, 16), (70_000, 16)),
        ("BMP", bmp_claiming(100_000, 100_000), (100_000, 100_000)),
        ("BMP", bmp_claiming(20_000, 20_000), (20_000, 20_000)),
        ("TIFF", tiff_claiming(100_000, 100_000), (100_000, 100_000)),
        ("TIFF", tiff_claiming(20_000, 20_000), (20_000, 20_000)),
    ];
    let opts = DecodeOptions::default();
    let mut wrong = Vec::new();
    for (format, bytes, (w, h)) in cases {
        let result = decode_bytes(&bytes, &opts);
        let named = match &result {
            Err(err @ Error::TooLarge { width, height, .. }) => {
                (*width, *height) == (w, h) && err.to_string().contains(&format!("{w}×{h}"))
            }
            _ => false,
        };
        if !named {
            wrong.push(format!("{format} claiming {w}×{h}: {result:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_file_over_the_size_limit_says_so_without_a_size() {
    // The file-size limit is checked before anything is read: no claimed size to name.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.png");
    std::fs::write(&f, png(4, 4)).unwrap();
    let opts = DecodeOptions {
        limits: DecodeLimits {
            max_file_bytes: 10,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let err = decode_file(&f, &opts).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(!text.contains("0×0"), "{text}");
    assert!(text.contains("big.png") && text.contains("bytes"), "{text}");
}

#[test]
fn extreme_shapes_give_finite_tensors() {
    let opts = DecodeOptions::default();
    for (w, h) in [(1, 1), (1, 20_000), (20_000, 1), (3, 4000)] {
        for bytes in [png(w, h), jpeg(w, h)] {
            let img = decode_bytes(&bytes, &opts).unwrap();
            assert_eq!((img.width(), img.height()), (w, h));
            for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
                let t = spec.preprocess(&img).unwrap();
                assert_eq!(t.shape(), &[3, 224, 224]);
                assert!(t.iter().all(|v| v.is_finite()));
            }
        }
    }
}

#[test]
fn animated_gif_uses_the_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let frame = |c: u8| {
        Frame::from_parts(
            RgbaImage::from_pixel(6, 4, image::Rgba([c, 255 - c, 40, 255])),
            0,
            0,
            Delay::from_numer_denom_ms(10, 1),
        )
    };
    let mut buf = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut buf);
        enc.encode_frames(vec![frame(200), frame(10), frame(90)])
            .unwrap();
    }
    let img = decode_bytes(&buf, &DecodeOptions::default()).unwrap();
    assert_eq!((img.width(), img.height()), (6, 4));
    let px = &img.as_raw()[..3];
    assert!(
        px[0] > 150 && px[1] < 100,
        "first frame's colour, got {px:?}"
    );
}

/// A JPEG with an EXIF APP1 segment carrying `orientation`.
fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    with_exif_orientation(&jpeg(w, h), orientation)
}

#[test]
fn exif_orientation_is_optional() {
    let bytes = jpeg_with_orientation(40, 20, 6);
    let plain = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
    assert_eq!(
        (plain.width(), plain.height()),
        (40, 20),
        "not applied by default, as in the reference"
    );
    let rotated = decode_bytes(
        &bytes,
        &DecodeOptions {
            apply_exif_orientation: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((rotated.width(), rotated.height()), (20, 40));
    // Orientation 6 = rotate 90° clockwise: the old bottom-left pixel becomes the top-left.
    let w = plain.width() as usize;
    let bottom_left = &plain.as_raw()[(19 * w) * 3..(19 * w) * 3 + 3];
    assert_eq!(&rotated.as_raw()[..3], bottom_left);
}

#[test]
fn content_decides_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DecodeOptions::default();
    let a = dir.path().join("really_png.jpg");
    std::fs::write(&a, png(9, 7)).unwrap();
    let b = dir.path().join("really_jpeg.png");
    std::fs::write(&b, jpeg(9, 7)).unwrap();
    for p in [&a, &b] {
        let img = decode_file(Path::new(p), &opts).unwrap();
        assert_eq!((img.width(), img.height()), (9, 7));
    }
}

/// A PNG whose PLTE chunk is 259 bytes (not a multiple of 3, valid checksums) makes the `png`
/// crate panic inside its palette expansion; found by the CI fuzz step. It is a decode error.
#[test]
fn a_panic_inside_a_decoder_is_a_decode_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/decode/png-plte-not-multiple-of-3");
    let bytes = std::fs::read(path).unwrap();
    match decode_bytes(&bytes, &DecodeOptions::default()) {
        Err(Error::Decode {
            format, message, ..
        }) => {
            assert_eq!(format, "PNG");
            assert!(message.contains("panicked"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}
