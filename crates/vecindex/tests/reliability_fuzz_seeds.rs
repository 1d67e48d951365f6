//! Replays the fuzz seeds (`fuzz/seeds/{vecindex_file,faiss_file}`) and any saved crash
//! reproducers (`fuzz/regressions/<target>/`) through the same checks as the fuzz targets, plus
//! every truncation and a bit flip per byte of each: the cheap part of fuzzing that plain
//! `cargo test` runs (building the cargo-fuzz targets takes minutes; see scripts/fuzz.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use vecindex::{FlatIndex, HnswIndex};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) {
            out.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

/// Its truncations at every length up to the whole input (so a saved reproducer is replayed as
/// it is) and one flipped bit per byte (rotating through the 8).
fn variants(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let cuts = (0..=bytes.len()).map(|n| bytes[..n].to_vec());
    let flips = (0..bytes.len()).map(|i| {
        let mut b = bytes.to_vec();
        b[i] ^= 1 << (i % 8);
        b
    });
    cuts.chain(flips)
}

// The fuzz targets' own checks (`checks::vecindex_file`, `checks::faiss_file`).
#[path = "../../../fuzz/checks/vecindex.rs"]
mod checks;

#[test]
fn vecindex_file_seeds_and_their_variants() {
    replay_vecindex_file(|name| !name.starts_with("hnsw_3"));
}

/// HNSW variants with a repaired checksum reach the parser of the embedded `hnsw_rs` dump.
#[test]
fn hnsw_variants_with_repaired_checksums() {
    replay_vecindex_file(|name| name.starts_with("hnsw_3"));
}

fn replay_vecindex_file(select: impl Fn(&str) -> bool) {
    let files: Vec<PathBuf> = inputs("vecindex_file")
        .into_iter()
        .filter(|f| select(&f.file_name().unwrap().to_string_lossy()))
        .collect();
    assert!(!files.is_empty(), "seeds missing");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.vix");
    let mut n = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        // The seeds themselves are valid files.
        if f.parent().unwrap().ends_with("seeds/vecindex_file") {
            let body = &bytes[1..];
            std::fs::write(&path, body).unwrap();
            let ok = if bytes[0] & 2 == 0 {
                FlatIndex::load(&path).is_ok()
            } else {
                HnswIndex::load(&path).is_ok()
            };
            assert!(ok, "seed {} does not load", f.display());
        }
        for v in variants(&bytes) {
            checks::vecindex_file(&v, &path);
            n += 1;
        }
    }
    eprintln!("{n} inputs from {} files", files.len());
}

#[test]
fn faiss_file_seeds_and_their_variants() {
    let files = inputs("faiss_file");
    assert!(files.len() >= 2, "seeds missing: {files:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.faiss");
    for f in &files {
        for v in variants(&std::fs::read(f).unwrap()) {
            checks::faiss_file(&v, &path);
        }
    }
}

/// Found by CI's fuzz step: an HNSW file with a valid checksum whose embedded `hnsw_rs` dump
/// frames six points, but whose layers, as `hnsw_rs` walks them (up to its entry point's level),
/// hold only four. `hnsw_rs` reloads it without complaint; every search then failed (and the
/// fuzz target aborted). The load now refuses the file.
#[test]
fn hnsw_dump_whose_layers_walk_fewer_points_is_a_load_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/vecindex_file");
    let data = std::fs::read(root.join("hnsw-layers-walk-fewer-points")).unwrap();
    let mut bytes = data[1..].to_vec();
    assert_eq!(data[0], 3, "HNSW, checksum repaired");
    common::repair_crc(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.vix");
    std::fs::write(&path, &bytes).unwrap();
    match HnswIndex::load(&path) {
        Err(vecindex::Error::Format { message, .. }) => {
            assert!(
                message.contains("hnsw_rs graph holds 4 points"),
                "{message}"
            );
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}
