//! Replays the `decode` fuzz seeds (`fuzz/seeds/decode`, one small image per format and colour
//! mode) and any saved crash reproducers (`fuzz/regressions/decode/`) through the fuzz target's
//! checks, plus every truncation and a bit flip per byte of each: decoding gives an image or a
//! typed error, and an image preprocesses to a finite 3×224×224 tensor. This is the cheap part
//! of fuzzing that plain `cargo test` runs (the cargo-fuzz build takes minutes: scripts/fuzz.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use embed_core::{DecodeOptions, decode_bytes};

// The `decode` fuzz target's own checks (returns whether the input decoded).
#[path = "../../../fuzz/checks/decode.rs"]
mod checks;
use checks::decode_target;

#[test]
fn decode_seeds_and_their_variants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir).join("decode")) {
            files.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    assert!(files.len() >= 10, "seeds missing: {files:?}");
    let (mut n, mut decoded) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if f.parent().unwrap().ends_with("seeds/decode") {
            if let Err(e) = decode_bytes(&bytes, &DecodeOptions::default()) {
                panic!("seed {}: {e}", f.display());
            }
            assert!(decode_target(&bytes), "seed {}", f.display());
        }
        // Every prefix, the whole file included: a saved reproducer is replayed as it is.
        let cuts = (0..=bytes.len()).map(|k| bytes[..k].to_vec());
        let flips = (0..bytes.len()).map(|i| {
            let mut b = bytes.clone();
            b[i] ^= 1 << (i % 8);
            b
        });
        for v in cuts.chain(flips) {
            decoded += usize::from(decode_target(&v));
            n += 1;
        }
    }
    eprintln!("{n} variants of {} files, {decoded} decoded", files.len());
}

/// A JPEG that fails to decode must not break the next one on the same thread (the decoder
/// handle is reused per thread).
#[test]
fn a_failed_jpeg_does_not_poison_the_next_decode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/decode");
    let good = std::fs::read(root.join("gray.jpg")).unwrap();
    let cmyk = std::fs::read(root.join("cmyk.jpg")).unwrap();
    let options = DecodeOptions::default();
    decode_bytes(&good, &options).unwrap();
    let mut failures = 0;
    for i in 0..cmyk.len() {
        let mut b = cmyk.clone();
        b[i] ^= 1 << (i % 8);
        failures += usize::from(decode_bytes(&b, &options).is_err());
        if let Err(e) = decode_bytes(&good, &options) {
            panic!("after the variant flipping byte {i}: {e}");
        }
    }
    assert!(failures > 0);
}
