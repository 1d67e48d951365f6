//! The checksum sidecar of the FAISS files this crate writes (`<file>.meta.json`): a damaged
//! index or ids file is refused with an error that names it, memory-mapped or not; files
//! without the sidecar load as FAISS files always did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use vecindex::faiss_io::{IdSource, ReadOptions, meta_path, sidecar_path};
use vecindex::{Error, FlatIndex, Metric, VectorIndex};

fn options(mmap: bool) -> ReadOptions {
    ReadOptions {
        mmap,
        ..ReadOptions::default()
    }
}

fn write(dir: &Path, metric: Metric) -> (std::path::PathBuf, FlatIndex) {
    let (n, d) = (40, 8);
    let index = FlatIndex::from_vectors(d, metric, &ids(n), &xorshift_vectors(n, d, 3)).unwrap();
    let path = dir.join("refs.faiss");
    index.write_faiss(&path).unwrap();
    (path, index)
}

/// Asserts that loading `path` fails as damaged, naming `damaged`.
fn assert_damaged(path: &Path, damaged: &Path, options: ReadOptions) {
    match FlatIndex::read_faiss(path, options) {
        Err(e @ Error::Damaged { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{} is damaged", damaged.display())),
                "{text}"
            );
        }
        other => panic!(
            "{}: expected a damaged-file error, got {other:?}",
            path.display()
        ),
    }
}

/// One byte flipped at 3/4 of the file (inside a vector, where the FAISS header cannot see
/// it): the load fails and says the file is damaged.
#[test]
fn a_flipped_byte_in_a_vector_is_reported_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (path, index) = write(dir.path(), Metric::InnerProduct);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta_path(&path)).unwrap()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(meta["index"]["bytes"], bytes.len());
    assert_eq!(meta["index"]["crc32"], crc32(&bytes));
    assert_eq!(meta["metric"], "ip");
    let ids = std::fs::read(sidecar_path(&path)).unwrap();
    assert_eq!(meta["ids"]["crc32"], crc32(&ids));
    for mmap in [false, true] {
        let back = FlatIndex::read_faiss(&path, options(mmap)).unwrap();
        assert_eq!(back.vectors(), index.vectors());
    }
    let mut damaged = bytes.clone();
    damaged[bytes.len() * 3 / 4] ^= 0x10;
    std::fs::write(&path, &damaged).unwrap();
    for mmap in [false, true] {
        assert_damaged(&path, &path, options(mmap));
    }
    // Without the sidecar the same bytes are a valid FAISS file: loaded, as FAISS would.
    std::fs::remove_file(meta_path(&path)).unwrap();
    let loaded = FlatIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    assert_ne!(loaded.vectors(), index.vectors());
}

/// Every damage the sidecar can see: a flipped header byte (which the FAISS parser refuses
/// too), a truncation, appended bytes, a changed id; and an ids sidecar that is not read is
/// not checked.
#[test]
fn damage_anywhere_is_reported_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), Metric::L2);
    let good = std::fs::read(&path).unwrap();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("header byte", {
            let mut b = good.clone();
            b[33] ^= 1;
            b
        }),
        ("truncated", good[..good.len() - 4].to_vec()),
        ("appended", [good.clone(), vec![0; 4]].concat()),
        ("last byte", {
            let mut b = good.clone();
            *b.last_mut().unwrap() ^= 0x80;
            b
        }),
    ];
    for (what, bytes) in variants {
        std::fs::write(&path, &bytes).unwrap();
        for mmap in [false, true] {
            eprintln!("{what}, mmap {mmap}");
            assert_damaged(&path, &path, options(mmap));
        }
    }
    std::fs::write(&path, &good).unwrap();
    let ids_path = sidecar_path(&path);
    let ids = std::fs::read_to_string(&ids_path).unwrap();
    std::fs::write(&ids_path, ids.replacen("R000003", "R000033", 1)).unwrap();
    assert_damaged(&path, &ids_path, ReadOptions::default());
    let rows = ReadOptions {
        ids: IdSource::NoSidecar,
        ..ReadOptions::default()
    };
    assert_eq!(FlatIndex::read_faiss(&path, rows).unwrap().id(3), Some("3"));
}

/// An `IndexIDMap` file gets the sidecar too (with no ids sidecar recorded); a cosine index
/// is an `IxFI` file that only the sidecar calls cosine; a sidecar that contradicts the file's
/// metric, or is not one, is a format error naming it.
#[test]
fn idmap_files_cosine_and_bad_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let (path, index) = write(dir.path(), Metric::Cosine);
    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"IxFI");
    assert_eq!(
        FlatIndex::read_faiss(&path, ReadOptions::default())
            .unwrap()
            .metric(),
        Metric::Cosine
    );
    let meta = meta_path(&path);
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("\"cosine\"", "\"l2\"")).unwrap();
    match FlatIndex::read_faiss(&path, ReadOptions::default()) {
        Err(Error::Format { message, .. }) => assert!(message.contains("says l2"), "{message}"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&meta, "{ not json").unwrap();
    match FlatIndex::read_faiss(&path, ReadOptions::default()) {
        Err(Error::Format { path: p, .. }) => assert_eq!(p, meta),
        other => panic!("{other:?}"),
    }

    let mapped = dir.path().join("map.faiss");
    let ids: Vec<i64> = (0..index.len() as i64).map(|i| 100 + i).collect();
    index.write_faiss_with_ids(&mapped, &ids).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta_path(&mapped)).unwrap()).unwrap();
    assert!(meta["ids"].is_null());
    let back = FlatIndex::read_faiss(&mapped, ReadOptions::default()).unwrap();
    assert_eq!((back.metric(), back.id(0)), (Metric::Cosine, Some("100")));
    let mut bytes = std::fs::read(&mapped).unwrap();
    let at = bytes.len() * 3 / 4;
    bytes[at] ^= 4;
    std::fs::write(&mapped, &bytes).unwrap();
    assert_damaged(&mapped, &mapped, ReadOptions::default());
}

/// Rewriting an index replaces its sidecar: the new file loads.
#[test]
fn rewriting_replaces_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), Metric::InnerProduct);
    let other =
        FlatIndex::from_vectors(3, Metric::L2, &ids(5), &xorshift_vectors(5, 3, 8)).unwrap();
    other.write_faiss(&path).unwrap();
    let back = FlatIndex::read_faiss(&path, ReadOptions::default()).unwrap();
    assert_eq!((back.dim(), back.len(), back.metric()), (3, 5, Metric::L2));
}

/// A compressed FAISS file this crate wrote, loaded back as the index kind it is.
fn load_any(kind: &str, path: &Path, options: ReadOptions) -> vecindex::Result<(Metric, String)> {
    use vecindex::HnswSqIndex;
    use vecindex::ivf::IvfPqIndex;
    use vecindex::sq::FlatSqIndex;
    fn first(i: &impl VectorIndex) -> (Metric, String) {
        (i.metric(), i.id(0).unwrap_or_default().to_owned())
    }
    Ok(match kind {
        "sq8" => first(&FlatSqIndex::read_faiss(path, options)?),
        "hnsw-sq8" => first(&HnswSqIndex::read_faiss(path, options)?),
        _ => first(&IvfPqIndex::read_faiss(path, options)?),
    })
}

/// The compressed kinds (scalar quantiser, HNSW over codes, IVF-PQ) get the same record as
/// flat files: a cosine index comes back cosine (its FAISS file says inner product), a flipped
/// byte or a changed id is damage naming the file, and without the record the same bytes
/// load unchecked, as FAISS would load them.
#[test]
fn compressed_files_get_the_record_too() {
    use vecindex::ivf::{IvfPqIndex, IvfPqOptions};
    use vecindex::sq::{FlatSqIndex, SqKind, SqOptions};
    use vecindex::{HnswParams, HnswSqIndex};
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (300, 8);
    let data: Vec<f32> = clustered(n, d, 4, 0.4, 61)
        .iter()
        .map(|x| 2.0 * x)
        .collect();
    let names = ids(n);
    let hnsw = HnswParams {
        m: 8,
        ef_construction: 40,
        ef_search: 32,
        seed: 5,
    };
    let ivf = IvfPqOptions {
        nlist: 4,
        m: 2,
        nprobe: 2,
        ..Default::default()
    };
    for kind in ["sq8", "hnsw-sq8", "ivfpq"] {
        let path = dir.path().join(format!("{kind}.faiss"));
        let metric = Metric::Cosine;
        match kind {
            "sq8" => FlatSqIndex::build(d, metric, SqOptions { kind: SqKind::Sq8 }, &names, &data)
                .unwrap()
                .write_faiss(&path),
            "hnsw-sq8" => HnswSqIndex::build(d, metric, SqKind::Sq8, hnsw, &names, &data)
                .unwrap()
                .write_faiss(&path),
            _ => IvfPqIndex::build(d, metric, ivf, &names, &data)
                .unwrap()
                .write_faiss(&path),
        }
        .unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(meta_path(&path)).unwrap()).unwrap();
        assert_eq!(meta["metric"], "cosine", "{kind}");
        let good = std::fs::read(&path).unwrap();
        assert_eq!(meta["index"]["crc32"], crc32(&good), "{kind}");
        let loaded = load_any(kind, &path, ReadOptions::default()).unwrap();
        assert_eq!(loaded, (Metric::Cosine, names[0].clone()), "{kind}");

        let mut damaged = good.clone();
        damaged[good.len() * 3 / 4] ^= 0x10;
        std::fs::write(&path, &damaged).unwrap();
        let err = load_any(kind, &path, ReadOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::Damaged { path: ref p, .. } if p == &path),
            "{kind}: {err}"
        );
        std::fs::write(&path, &good).unwrap();

        let ids_path = sidecar_path(&path);
        let ids_text = std::fs::read_to_string(&ids_path).unwrap();
        std::fs::write(&ids_path, ids_text.replacen("R000003", "R000033", 1)).unwrap();
        let err = load_any(kind, &path, ReadOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::Damaged { path: ref p, .. } if p == &ids_path),
            "{kind}: {err}"
        );
        std::fs::write(&ids_path, ids_text).unwrap();

        std::fs::remove_file(meta_path(&path)).unwrap();
        let unchecked = load_any(kind, &path, ReadOptions::default()).unwrap();
        assert_eq!(
            unchecked.0,
            Metric::InnerProduct,
            "{kind}: the FAISS file's own metric"
        );
    }
}
