//! Save → load round trips in this crate's format, and damaged files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use vecindex::{
    Error, FlatIndex, HnswIndex, HnswParams, IndexKind, Metric, VectorIndex, peek_kind,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn flat_save_load_identical(d in 1usize..9, n in 0usize..40, ip in any::<bool>(),
                                seed in any::<u64>(), model in "[a-z/0-9-]{0,20}") {
        let metric = if ip { Metric::InnerProduct } else { Metric::L2 };
        let data = clustered(n, d, 3, 0.5, seed);
        let index = FlatIndex::from_vectors(d, metric, &ids(n), &data).unwrap().with_model_id(model.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.vix");
        index.save(&path).unwrap();
        prop_assert_eq!(peek_kind(&path).unwrap(), IndexKind::Flat);
        let back = FlatIndex::load(&path).unwrap();
        prop_assert_eq!((back.dim(), back.len(), back.metric(), back.model_id()), (d, n, metric, model.as_str()));
        prop_assert_eq!(back.ids(), index.ids());
        prop_assert_eq!(back.vectors(), data.clone());
        let q = clustered(9, d, 3, 0.5, seed ^ 1);
        prop_assert_eq!(back.search(&q, 4).unwrap(), index.search(&q, 4).unwrap());
    }
}

/// Flips bytes across the file and truncates it: every variant must be an error, never a
/// panic or an abort.
fn assert_damage_detected(good: &Path, load: impl Fn(&Path) -> Result<(), Error>) {
    let bytes = std::fs::read(good).unwrap();
    let bad = good.with_extension("bad");
    let step = (bytes.len() / 300).max(1);
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(step).collect();
    positions.extend(0..bytes.len().min(80));
    positions.push(bytes.len() - 1);
    for &pos in &positions {
        let mut b = bytes.clone();
        b[pos] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        assert!(load(&bad).is_err(), "flipped byte {pos} went unnoticed");
    }
    for len in [
        0,
        7,
        8,
        30,
        60,
        bytes.len() / 2,
        bytes.len() - 4,
        bytes.len() - 1,
    ] {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        assert!(load(&bad).is_err(), "truncation to {len} went unnoticed");
    }
    std::fs::write(&bad, [bytes.clone(), vec![0u8; 3]].concat()).unwrap();
    assert!(load(&bad).is_err(), "trailing bytes went unnoticed");
}

#[test]
fn damaged_flat_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.vix");
    let (n, d) = (20, 6);
    let index = FlatIndex::from_vectors(d, Metric::L2, &ids(n), &clustered(n, d, 2, 0.3, 5))
        .unwrap()
        .with_model_id("m");
    index.save(&path).unwrap();
    assert_damage_detected(&path, |p| FlatIndex::load(p).map(|_| ()));
    assert!(
        matches!(HnswIndex::load(&path), Err(Error::Format { .. })),
        "a flat file is not an HNSW file"
    );
    assert!(matches!(
        FlatIndex::load(&path).unwrap().check_model_id("other"),
        Err(Error::ModelMismatch { .. })
    ));
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().contains(".tmp.")),
        "{names:?}"
    );
}

#[test]
fn a_save_removes_temporaries_of_killed_saves_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.vix");
    // What a save killed by SIGKILL leaves: `.NAME.tmp.PID.N`. No process has a pid above
    // Linux's largest pid_max (2^22); this process's own pid stands for a save still running.
    let dead = dir.path().join(".flat.vix.tmp.4294967295.0");
    let alive = dir
        .path()
        .join(format!(".flat.vix.tmp.{}.999", std::process::id()));
    let other = dir.path().join(".other.vix.tmp.4294967295.0");
    for p in [&dead, &alive, &other] {
        std::fs::write(p, b"partial").unwrap();
    }
    let (n, d) = (5, 4);
    FlatIndex::from_vectors(d, Metric::L2, &ids(n), &clustered(n, d, 1, 0.3, 1))
        .unwrap()
        .save(&path)
        .unwrap();
    if Path::new("/proc/self").exists() {
        assert!(
            !dead.exists(),
            "the dead save's temporary file is still there"
        );
    }
    assert!(alive.exists(), "a live save's temporary file was removed");
    assert!(other.exists(), "another file's temporary file was removed");
    FlatIndex::load(&path).unwrap();
}

#[test]
fn hnsw_save_load_identical_and_damage_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hnsw.vix");
    let (n, d) = (400, 16);
    let data = clustered(n, d, 8, 0.2, 9);
    let params = HnswParams {
        m: 12,
        ef_construction: 64,
        ef_search: 40,
        seed: 3,
    };
    let index = HnswIndex::build(d, Metric::InnerProduct, params, &ids(n), &data)
        .unwrap()
        .with_model_id("facebook/dinov2-base");
    index.save(&path).unwrap();
    assert_eq!(peek_kind(&path).unwrap(), IndexKind::Hnsw);
    let back = HnswIndex::load(&path).unwrap();
    assert_eq!(
        (back.dim(), back.len(), back.metric(), *back.params()),
        (d, n, Metric::InnerProduct, params)
    );
    assert_eq!(back.model_id(), "facebook/dinov2-base");
    assert_eq!(back.ids(), index.ids());
    let q = clustered(50, d, 8, 0.2, 10);
    assert_eq!(back.search(&q, 10).unwrap(), index.search(&q, 10).unwrap());
    assert_eq!(
        back.search_with_ef(&q, 5, 200).unwrap(),
        index.search_with_ef(&q, 5, 200).unwrap()
    );
    assert_damage_detected(&path, |p| HnswIndex::load(p).map(|_| ()));
    assert!(matches!(FlatIndex::load(&path), Err(Error::Format { .. })));
}

/// Header fields that lie, behind a valid checksum: still errors, with no huge allocation.
#[test]
fn lying_headers_with_valid_checksums_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("f.vix");
    FlatIndex::from_vectors(
        4,
        Metric::InnerProduct,
        &ids(10),
        &clustered(10, 4, 2, 0.3, 1),
    )
    .unwrap()
    .save(&flat)
    .unwrap();
    let hnsw = dir.path().join("h.vix");
    let params = HnswParams {
        m: 8,
        ef_construction: 20,
        ef_search: 10,
        seed: 0,
    };
    HnswIndex::build(
        4,
        Metric::L2,
        params,
        &ids(30),
        &clustered(30, 4, 2, 0.3, 2),
    )
    .unwrap()
    .save(&hnsw)
    .unwrap();
    let bad = dir.path().join("bad.vix");
    let patched = |src: &Path, at: usize, val: &[u8]| {
        let mut b = std::fs::read(src).unwrap();
        b[at..at + val.len()].copy_from_slice(val);
        repair_crc(&mut b);
        std::fs::write(&bad, b).unwrap();
    };
    let fields: Vec<(&str, usize, Vec<u8>)> = vec![
        ("version", 8, 3u32.to_le_bytes().to_vec()),
        ("version 0", 8, 0u32.to_le_bytes().to_vec()),
        ("kind", 12, vec![3]),
        ("metric", 13, vec![7]),
        ("graph distance", 14, vec![1]),
        ("graph distance 2", 14, vec![2]),
        ("reserved", 15, vec![1]),
        ("dim 0", 16, 0u32.to_le_bytes().to_vec()),
        ("dim huge", 16, (1u32 << 21).to_le_bytes().to_vec()),
        ("dim other", 16, 5u32.to_le_bytes().to_vec()),
        ("count huge", 20, u64::MAX.to_le_bytes().to_vec()),
        ("count +1", 20, 11u64.to_le_bytes().to_vec()),
        ("M", 28, 300u32.to_le_bytes().to_vec()),
        ("model id length", 48, u32::MAX.to_le_bytes().to_vec()),
        ("ids length", 52, u64::MAX.to_le_bytes().to_vec()),
    ];
    for (name, at, val) in &fields {
        patched(&flat, *at, val);
        assert!(FlatIndex::load(&bad).is_err(), "flat: {name}");
    }
    for (name, at, val) in fields.iter().chain(
        [
            ("M 9", 28, 9u32.to_le_bytes().to_vec()),
            ("count 29", 20, 29u64.to_le_bytes().to_vec()),
        ]
        .iter(),
    ) {
        patched(&hnsw, *at, val);
        assert!(HnswIndex::load(&bad).is_err(), "hnsw: {name}");
    }
}

/// Where the embedded dump's graph part starts in a file of ours: after the 52-byte fixed
/// header, the model id, the ids section and the payload and graph lengths.
fn graph_part(bytes: &[u8]) -> (usize, usize) {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let ids_at = 52 + u32_at(48);
    let payload_at = ids_at + 8 + u64_at(ids_at);
    let graph_at = payload_at + 8 + 8;
    (graph_at, u64_at(payload_at + 8))
}

/// The embedded dump names its distance with a fixed string, whatever the Rust type that
/// computes it is called (a renamed or moved type, or another compiler's `type_name`, must not
/// change the file): `vecindex::HnswDistance`, then the vector type `f32`, each after its
/// length as a little-endian u64. Every number of the dump is little-endian: the description's
/// magic, the dimension and point count, the data part's header.
#[test]
fn hnsw_files_name_their_distance_with_a_fixed_string_and_are_little_endian() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.vix");
    let (n, d) = (30, 5);
    for metric in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
        HnswIndex::build(
            d,
            metric,
            HnswParams::default(),
            &ids(n),
            &clustered(n, d, 2, 0.3, 4),
        )
        .unwrap()
        .save(&path)
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            2,
            "format version"
        );
        let (at, len) = graph_part(&bytes);
        let graph = &bytes[at..at + len];
        // magic, dump mode 1 (full), M 32, level scale f64, 16 layers, ef_construction,
        // points, dimension, the two names.
        assert_eq!(graph[..4], 0x002a_6779u32.to_le_bytes());
        assert_eq!(graph[4..6], [1, 32]);
        assert_eq!(graph[6..14], (1.0 / 32f64.ln()).to_le_bytes());
        assert_eq!(graph[14], 16);
        assert_eq!(graph[15..23], 200u64.to_le_bytes());
        assert_eq!(graph[23..31], (n as u64).to_le_bytes());
        assert_eq!(graph[31..39], (d as u64).to_le_bytes());
        let name = b"vecindex::HnswDistance";
        assert_eq!(graph[39..47], (name.len() as u64).to_le_bytes());
        assert_eq!(&graph[47..47 + name.len()], name, "{metric}");
        let rest = &graph[47 + name.len()..];
        assert_eq!(rest[..8], 3u64.to_le_bytes());
        assert_eq!(&rest[8..11], b"f32");
        // The data part: magic 0xa67f0000, then the dimension.
        let data_at = at + len + 8;
        assert_eq!(bytes[data_at..data_at + 4], 0xa67f_0000u32.to_le_bytes());
        assert_eq!(bytes[data_at + 4..data_at + 12], (d as u64).to_le_bytes());
    }
}

/// The file formats are little-endian whatever the host: no code of the crate reads or writes
/// numbers in the host's byte order.
#[test]
fn no_native_byte_order_in_the_crate() {
    fn visit(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if line.contains("_ne_bytes") {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "native byte order:\n{}", found.join("\n"));
}
