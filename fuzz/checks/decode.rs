//! The checks of the `decode` fuzz target, shared with the seed replay that plain `cargo test`
//! runs (`crates/embed-core/tests/reliability_fuzz_seeds.rs`): both include this file as a
//! module, so the two cannot drift apart.

use embed_core::{DecodeLimits, DecodeOptions, PreprocessSpec, decode_bytes};

/// Any bytes give an image or a typed error; an image preprocesses to a finite 3×224×224
/// tensor for CLIP and DINOv2; a window decode for CLIP succeeds exactly where the whole decode
/// does and preprocesses to the same tensor. Returns whether the input decoded.
pub fn decode_target(data: &[u8]) -> bool {
    // Options from the length (a JPEG's first and last bytes are always the same): the
    // truncations of one file try every combination.
    let flags = data.len() % 8;
    // Tighter limits than the defaults keep each input within libFuzzer's memory limit; the
    // limits themselves are what is being exercised.
    let options = DecodeOptions {
        limits: DecodeLimits {
            max_side: 4096,
            max_pixels: 4 << 20,
            max_file_bytes: 1 << 20,
        },
        apply_exif_orientation: flags & 1 == 1,
        jpeg_dct_downscale_min_side: (flags & 2 == 2).then_some(16),
        window_for: None,
    };
    let decoded = decode_bytes(data, &options);
    // Flag 4: decode only what CLIP's preprocessing reads, which must give what the whole
    // picture gives.
    if flags & 4 == 4 {
        let spec = PreprocessSpec::clip();
        let windowed = DecodeOptions {
            window_for: Some(spec.geometry()),
            ..options
        };
        let part = decode_bytes(data, &windowed);
        assert_eq!(
            part.is_ok(),
            decoded.is_ok(),
            "a window decode fails exactly where the whole decode fails"
        );
        if let (Ok(part), Ok(whole)) = (&part, &decoded) {
            assert_eq!(
                spec.preprocess(part).expect("a window preprocesses"),
                spec.preprocess(whole)
                    .expect("a decoded image preprocesses")
            );
        }
    }
    let Ok(image) = decoded else {
        return false;
    };
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let t = spec
            .preprocess(&image)
            .expect("a decoded image preprocesses");
        assert_eq!(t.shape(), [3, 224, 224]);
        assert!(t.iter().all(|v| v.is_finite()));
    }
    true
}
