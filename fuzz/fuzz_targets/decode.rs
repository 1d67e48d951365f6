//! Image decoding and preprocessing: any bytes give an image or a typed error; an image gives
//! a finite tensor of the model's input size.
#![no_main]

use embed_core::{DecodeLimits, DecodeOptions, PreprocessSpec, decode_bytes};
use libfuzzer_sys::fuzz_target;

static QUIET_CAUGHT_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // embed-core turns a panic inside a third-party decoder into a decode error with
    // catch_unwind; libFuzzer's panic hook would abort before it is caught. A panic that escapes
    // still aborts: libfuzzer-sys catches it around this body.
    QUIET_CAUGHT_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // Tighter limits than the defaults keep each input within libFuzzer's memory limit; the
    // limits themselves are what is being exercised.
    // Options from the length (a JPEG's first and last bytes are always the same): the
    // truncations of one file try every combination.
    let flags = data.len() % 8;
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
    // Flag 4: decode only what CLIP's preprocessing reads, which must give what the whole
    // picture gives.
    if flags & 4 == 4 {
        let spec = PreprocessSpec::clip();
        let windowed = DecodeOptions {
            window_for: Some(spec.geometry()),
            ..options
        };
        let (Ok(part), Ok(whole)) = (decode_bytes(data, &windowed), decode_bytes(data, &options))
        else {
            assert_eq!(
                decode_bytes(data, &windowed).is_ok(),
                decode_bytes(data, &options).is_ok(),
                "a window decode fails exactly where the whole decode fails"
            );
            return;
        };
        assert_eq!(spec.preprocess(&part).unwrap(), spec.preprocess(&whole).unwrap());
    }
    let Ok(image) = decode_bytes(data, &options) else {
        return;
    };
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let t = spec
            .preprocess(&image)
            .expect("a decoded image preprocesses");
        assert_eq!(t.shape(), [3, 224, 224]);
        assert!(t.iter().all(|v| v.is_finite()));
    }
});
