//! Writing, opening, searching, appending to and merging collections, and what happens to
//! folders damaged by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use embed_collection::{
    Collection, CollectionWriter, Dtype, Error, IndexSpec, OpenOptions, ShardSpec, Source, Verify,
    merge_shards, shard_dirs,
};

const DIM: usize = 16;

fn all_vectors(c: &Collection) -> Vec<f32> {
    let mut v = Vec::new();
    c.for_each_vector_block(|first, block| {
        assert_eq!(first, v.len() / DIM);
        v.extend_from_slice(block);
        Ok(())
    })
    .unwrap();
    v
}

/// Rows, metadata, vectors, skipped list and files come back as written, in row order, and
/// every row finds itself first.
#[test]
fn a_written_collection_opens_with_its_rows_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        CollectionWriter::create(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)).unwrap();
    w.set_options(opts(40)).unwrap();
    let (r, v) = (rows(0, 100), vectors(100, DIM, 1));
    w.push_batch(&r[..60], &v[..60 * DIM]).unwrap();
    w.skip("bad, file.jpg", "cannot decode");
    w.push_batch(&r[60..], &v[60 * DIM..]).unwrap();
    let m = w.finish().unwrap();
    assert_eq!(m.rows, 100);
    assert_eq!(
        m.shards.iter().map(|s| s.rows).collect::<Vec<_>>(),
        [40, 40, 20]
    );
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.rows(), &r[..]);
    assert_eq!(c.skipped()[0].reason, "cannot decode");
    let csv = std::fs::read_to_string(dir.path().join("skipped.csv")).unwrap();
    assert_eq!(csv, "path,reason\n\"bad, file.jpg\",cannot decode\n");
    let stored = all_vectors(&c);
    assert_eq!(stored, normalised(&v, DIM));
    for i in [0, 39, 40, 99] {
        let hits = c.search(&v[i * DIM..(i + 1) * DIM], 3).unwrap();
        assert_eq!(hits[0].row, i);
        assert_eq!(hits[0].image.id, format!("R{i:06}"));
        assert!((hits[0].score - 1.0).abs() < 1e-5);
    }
    assert_eq!(c.row_of_path("dir5/img 40.jpg"), Some(40));
    assert_eq!(c.row_of_id("R000099"), Some(99));
    assert!(!c.contains_path("nope.jpg"));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("img_emb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(!dir.path().join(".staging").exists());
}

/// float16 shards hold the f16-rounded unit vectors, and the index holds the same values.
#[test]
fn float16_collections_store_and_index_the_rounded_vectors() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        info(DIM, IndexSpec::Flat, Dtype::F16),
        50,
        2,
        20,
    );
    let c = Collection::open(dir.path()).unwrap();
    let stored = all_vectors(&c);
    let want: Vec<f32> = normalised(&vectors(50, DIM, 2), DIM)
        .iter()
        .map(|&x| half::f16::from_f32(x).to_f32())
        .collect();
    assert_eq!(stored, want);
    let embed_collection::LoadedIndex::Flat(index) = c.index() else {
        panic!("flat expected");
    };
    assert_eq!(index.vectors(), want);
}

/// Each kind of hand damage is an error naming the damaged file, never a panic or a result.
#[test]
fn hand_damaged_folders_are_errors_naming_the_file() {
    type Hurt = Box<dyn Fn(&Path)>;
    let damage: Vec<(&str, Hurt)> = vec![
        (
            "img_emb_00001.npy",
            Box::new(|d: &Path| std::fs::remove_file(d.join("img_emb/img_emb_00001.npy")).unwrap()),
        ),
        (
            "img_emb_00000.npy",
            Box::new(|d: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("img_emb/img_emb_00000.npy"))
                    .unwrap();
                f.set_len(300).unwrap();
            }),
        ),
        (
            "metadata_00002.parquet",
            Box::new(|d: &Path| {
                let p = d.join("metadata/metadata_00002.parquet");
                let mut b = std::fs::read(&p).unwrap();
                let n = b.len();
                b[n / 2] ^= 0xff;
                std::fs::write(p, b).unwrap();
            }),
        ),
        (
            "image.index",
            Box::new(|d: &Path| {
                let p = d.join("image.index");
                let mut b = std::fs::read(&p).unwrap();
                let n = b.len();
                b[n - 3] ^= 1;
                std::fs::write(p, b).unwrap();
            }),
        ),
        (
            "collection.json",
            Box::new(|d: &Path| {
                let p = d.join("collection.json");
                let s = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, &s[..s.len() / 2]).unwrap();
            }),
        ),
    ];
    for (name, hurt) in damage {
        for verify in [Verify::Full, Verify::Quick] {
            let dir = tempfile::tempdir().unwrap();
            build(
                dir.path(),
                info(DIM, IndexSpec::Flat, Dtype::F32),
                100,
                3,
                40,
            );
            hurt(dir.path());
            let opts = OpenOptions {
                verify,
                ..Default::default()
            };
            match Collection::open_with(dir.path(), opts) {
                Err(e @ Error::Damaged { .. }) => {
                    assert!(e.to_string().contains(name), "{name}: {e}")
                }
                // Quick mode skips the CRC of vectors: a flipped bit in the index is accepted.
                Ok(_) if verify == Verify::Quick && name == "image.index" => {}
                other => panic!("{name} ({verify:?}): {other:?}"),
            }
        }
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Collection::open(empty.path()),
        Err(Error::NotACollection(_))
    ));
}

/// A metadata shard whose rows do not match its vectors (checksums made to agree, as a buggy
/// writer would leave it) is refused, naming the Parquet file.
#[test]
fn metadata_rows_that_do_not_match_the_vectors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        info(DIM, IndexSpec::Flat, Dtype::F32),
        100,
        3,
        40,
    );
    // Rewrite shard 1's metadata with 39 rows, and record its size and CRC.
    let other = tempfile::tempdir().unwrap();
    build(
        other.path(),
        info(DIM, IndexSpec::Flat, Dtype::F32),
        39,
        3,
        40,
    );
    let src = other.path().join("metadata/metadata_00000.parquet");
    let dst = dir.path().join("metadata/metadata_00001.parquet");
    std::fs::copy(&src, &dst).unwrap();
    let bytes = std::fs::read(&dst).unwrap();
    let mpath = dir.path().join("collection.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == "metadata/metadata_00001.parquet" {
            f["bytes"] = bytes.len().into();
            f["crc32"] = format!("{:08x}", crc32fast::hash(&bytes)).into();
        }
    }
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let e = Collection::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("metadata_00001.parquet") && e.contains("39 rows"),
        "{e}"
    );
}

/// `create` refuses an existing collection, `replace` swaps it, and a second writer is busy
/// while the first one lives; readers meanwhile see the committed version.
#[test]
fn create_replace_and_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        info(DIM, IndexSpec::Flat, Dtype::F32),
        30,
        4,
        40,
    );
    assert!(matches!(
        CollectionWriter::create(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)),
        Err(Error::AlreadyExists(_))
    ));
    let mut w =
        CollectionWriter::replace(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)).unwrap();
    w.push_batch(&rows(500, 5), &vectors(5, DIM, 9)).unwrap();
    assert!(matches!(
        CollectionWriter::replace(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)),
        Err(Error::Busy(_))
    ));
    assert_eq!(Collection::open(dir.path()).unwrap().len(), 30);
    w.finish().unwrap();
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.rows(), &rows(500, 5)[..]);
    let shards = std::fs::read_dir(dir.path().join("img_emb"))
        .unwrap()
        .count();
    assert_eq!(shards, 1, "the replaced version's shards are deleted");
}

/// A writer dropped without `finish` leaves the previous version and no staging files.
#[test]
fn an_abandoned_writer_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        info(DIM, IndexSpec::Flat, Dtype::F32),
        30,
        4,
        40,
    );
    let before = std::fs::read(dir.path().join("collection.json")).unwrap();
    let mut w =
        CollectionWriter::replace(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)).unwrap();
    w.push_batch(&rows(0, 5), &vectors(5, DIM, 9)).unwrap();
    drop(w);
    assert_eq!(
        std::fs::read(dir.path().join("collection.json")).unwrap(),
        before
    );
    assert!(!dir.path().join(".staging").exists());
    assert_eq!(Collection::open(dir.path()).unwrap().len(), 30);
}

/// Bad input to `push_batch` is refused and nothing of the batch is added.
#[test]
fn bad_batches_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        CollectionWriter::create(dir.path(), info(DIM, IndexSpec::Flat, Dtype::F32)).unwrap();
    w.push_batch(&rows(0, 3), &vectors(3, DIM, 1)).unwrap();
    let dup = [rows(3, 1), rows(0, 1)].concat();
    assert!(matches!(
        w.push_batch(&dup, &vectors(2, DIM, 2)),
        Err(Error::Duplicate {
            what: "image_path",
            ..
        })
    ));
    let mut zero = vectors(1, DIM, 3);
    zero.iter_mut().for_each(|x| *x = 0.0);
    assert!(w.push_batch(&rows(9, 1), &zero).is_err());
    assert!(w.push_batch(&rows(9, 2), &vectors(1, DIM, 3)).is_err());
    assert_eq!(w.len(), 3);
    w.finish().unwrap();
    assert_eq!(Collection::open(dir.path()).unwrap().len(), 3);
}

/// An append adds new images only, extends the index (the old rows keep their ids and the new
/// ones are found), and an append with another model or weights is refused.
#[test]
fn appends_extend_the_collection_and_refuse_other_models() {
    for index in [IndexSpec::Flat, IndexSpec::hnsw_default()] {
        let dir = tempfile::tempdir().unwrap();
        let i = info(DIM, index, Dtype::F32);
        build(dir.path(), i.clone(), 50, 5, 40);
        let c = Collection::open(dir.path()).unwrap();
        let all = rows(0, 80);
        let new: Vec<_> = all
            .iter()
            .filter(|r| !c.contains_path(&r.image_path))
            .cloned()
            .collect();
        assert_eq!(new.len(), 30);
        let mut other = i.clone();
        other.weights_digest = "sha256:other".into();
        let e = CollectionWriter::append(dir.path(), other).unwrap_err();
        assert!(e.to_string().contains("weights digest"), "{e}");
        let mut w = c.append(i.clone()).unwrap();
        w.set_options(opts(40)).unwrap();
        let v = vectors(30, DIM, 6);
        assert!(
            w.push_batch(&rows(0, 1), &v[..DIM]).is_err(),
            "already present"
        );
        w.push_batch(&new, &v).unwrap();
        w.skip("x.jpg", "too small");
        let m = w.finish().unwrap();
        assert_eq!((m.rows, m.shards.len()), (80, 3));
        let c = Collection::open(dir.path()).unwrap();
        assert_eq!(c.rows(), &all[..]);
        let stored = all_vectors(&c);
        let mut want = normalised(&vectors(50, DIM, 5), DIM);
        want.extend(normalised(&v, DIM));
        assert_eq!(stored, want);
        for row in [0, 49, 50, 79] {
            let hits = c.search(&want[row * DIM..(row + 1) * DIM], 1).unwrap();
            assert_eq!(hits[0].row, row, "{index:?}");
        }
    }
}

/// Writes shard collections of a 103-image list (rows 17 and 60 skipped) as N tasks would.
fn write_shards(root: &Path, index: IndexSpec, count: usize, digest: &str) -> Vec<PathBuf> {
    let (all, v) = (rows(0, 103), vectors(103, DIM, 7));
    (0..count)
        .map(|s| {
            let spec = ShardSpec { index: s, count };
            let range = spec.range(103);
            let dir = root.join(format!("shard_{s}"));
            let mut i = info(DIM, index, Dtype::F32);
            i.source = Some(Source {
                list_digest: digest.into(),
                list_len: 103,
                shard: Some(spec),
            });
            let mut w = CollectionWriter::replace(&dir, i).unwrap();
            w.set_options(opts(16)).unwrap();
            for r in range {
                if r == 17 || r == 60 {
                    w.skip(all[r].image_path.clone(), "unreadable");
                } else {
                    w.push_batch(&all[r..r + 1], &v[r * DIM..(r + 1) * DIM])
                        .unwrap();
                }
            }
            w.finish().unwrap();
            dir
        })
        .collect()
}

/// The merge of N shard collections equals the unsharded build: same rows in the same order,
/// same vectors, same index answers (flat and HNSW built on one thread), same skipped list.
#[test]
fn merged_shards_equal_an_unsharded_build() {
    for index in [IndexSpec::Flat, IndexSpec::hnsw_default()] {
        let root = tempfile::tempdir().unwrap();
        let shards = write_shards(&root.path().join("shards"), index, 4, "sha256:list");
        let single = write_shards(&root.path().join("single"), index, 1, "sha256:list");
        let mut reversed = shards.clone();
        reversed.reverse();
        let merged_dir = root.path().join("merged");
        merge_shards(&reversed, &merged_dir, opts(1000)).unwrap();
        let merged = Collection::open(&merged_dir).unwrap();
        let whole = Collection::open(&single[0]).unwrap();
        assert_eq!(merged.rows(), whole.rows());
        assert_eq!(merged.len(), 101);
        assert_eq!(all_vectors(&merged), all_vectors(&whole));
        assert_eq!(merged.skipped(), whole.skipped());
        assert_eq!(merged.manifest().source.as_ref().unwrap().shard, None);
        let queries = vectors(20, DIM, 99);
        let a = merged.search_batch(&queries, 10).unwrap();
        let b = whole.search_batch(&queries, 10).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let rx: Vec<(usize, f32)> = x.iter().map(|h| (h.row, h.score)).collect();
            let ry: Vec<(usize, f32)> = y.iter().map(|h| (h.row, h.score)).collect();
            assert_eq!(rx, ry, "{index:?}");
        }
        if matches!(index, IndexSpec::Hnsw { .. }) {
            let a = std::fs::read(merged_dir.join("image.index")).unwrap();
            let b = std::fs::read(single[0].join("image.index")).unwrap();
            assert_eq!(a, b, "the HNSW files are identical");
        }
        assert_eq!(shard_dirs(&root.path().join("shards")).unwrap(), shards);
    }
}

/// Missing, unfinished, duplicated and foreign shards are refused with their names.
#[test]
fn incomplete_or_foreign_shard_sets_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let shards = write_shards(&root.path().join("a"), IndexSpec::Flat, 4, "sha256:list");
    let out = root.path().join("out");
    let e = merge_shards(&shards[..3], &out, opts(100)).unwrap_err();
    assert!(e.to_string().contains("missing shard(s) 3 of 4"), "{e}");
    let unfinished = root.path().join("a/shard_9");
    std::fs::create_dir_all(&unfinished).unwrap();
    let mut with_unfinished = shards[1..].to_vec();
    with_unfinished.push(unfinished.clone());
    let e = merge_shards(&with_unfinished, &out, opts(100))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing shard(s) 0 of 4") && e.contains("shard_9"),
        "{e}"
    );
    let e = merge_shards(&[shards[0].clone(), shards[0].clone()], &out, opts(100)).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let foreign = write_shards(&root.path().join("b"), IndexSpec::Flat, 4, "sha256:other");
    let mut mixed = shards[..3].to_vec();
    mixed.push(foreign[3].clone());
    let e = merge_shards(&mixed, &out, opts(100)).unwrap_err();
    assert!(e.to_string().contains("another image list"), "{e}");
    let hnsw = write_shards(
        &root.path().join("c"),
        IndexSpec::hnsw_default(),
        4,
        "sha256:list",
    );
    let mut mixed = shards[..3].to_vec();
    mixed.push(hnsw[3].clone());
    let e = merge_shards(&mixed, &out, opts(100)).unwrap_err();
    assert!(e.to_string().contains("index differs"), "{e}");
    assert!(!out.join("collection.json").exists());
}

/// An empty collection (every image skipped) is a valid collection, and can be appended to.
#[test]
fn an_empty_collection_opens() {
    for index in [IndexSpec::Flat, IndexSpec::hnsw_default()] {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CollectionWriter::create(dir.path(), info(DIM, index, Dtype::F32)).unwrap();
        w.skip("a.jpg", "unreadable");
        w.finish().unwrap();
        let c = Collection::open(dir.path()).unwrap();
        assert!(c.is_empty());
        assert!(c.search(&vectors(1, DIM, 1), 3).unwrap().is_empty());
        // And it can be appended to.
        let mut w = c.append(info(DIM, index, Dtype::F32)).unwrap();
        let v = vectors(5, DIM, 2);
        w.push_batch(&rows(0, 5), &v).unwrap();
        w.finish().unwrap();
        let c = Collection::open(dir.path()).unwrap();
        assert_eq!(
            c.search(&v[2 * DIM..3 * DIM], 1).unwrap()[0].row,
            2,
            "{index:?}"
        );
    }
}
