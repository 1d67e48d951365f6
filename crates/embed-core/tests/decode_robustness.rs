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
