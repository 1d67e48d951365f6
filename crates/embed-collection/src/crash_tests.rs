//! Simulated crashes at every step of every kind of commit, and during the recovery that
//! follows: the folder must always open as the old version or the new one.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use rand::{Rng, SeedableRng};

use crate::commit::{self, crash_after, crash_points_passed};
use crate::{
    Collection, CollectionInfo, CollectionWriter, Dtype, Error, ImageRow, IndexSpec, ShardSpec,
    Source, WriteOptions, merge_shards,
};

const DIM: usize = 8;

fn info(index: IndexSpec) -> CollectionInfo {
    CollectionInfo {
        model_id: "test/model".into(),
        weights_digest: "sha256:1234".into(),
        preprocessing: serde_json::json!({"resize": 224}),
        dim: DIM,
        metric: vecindex::Metric::InnerProduct,
        dtype: Dtype::F32,
        index,
        source: None,
        tool: "crash-tests".into(),
    }
}

/// Rows `first..first + n` of a version: paths and vectors depend on `tag`.
fn rows(tag: &str, first: usize, n: usize) -> (Vec<ImageRow>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(first as u64 ^ tag.len() as u64);
    let rows = (first..first + n)
        .map(|i| ImageRow {
            image_path: format!("{tag}/{i}.jpg"),
            id: format!("{tag}{i}"),
            width: i as u32,
            height: 1,
        })
        .collect();
    let v = (0..n * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
    (rows, v)
}

fn opts() -> WriteOptions {
    WriteOptions {
        rows_per_file: 4,
        hnsw_threads: 1,
    }
}

/// Writes version `tag` with `n` rows into `dir` (replacing what is there).
fn write(dir: &Path, index: IndexSpec, tag: &str, n: usize) -> crate::Result<()> {
    let mut w = CollectionWriter::replace(dir, info(index))?;
    w.set_options(opts())?;
    let (r, v) = rows(tag, 0, n);
    w.push_batch(&r, &v)?;
    w.skip(format!("{tag}/bad.jpg"), "unreadable");
    w.finish().map(|_| ())
}

/// The paths the collection holds, in row order; and a check that nothing else is visible to
/// the readers that glob the folders.
fn state(dir: &Path) -> Option<Vec<String>> {
    let c = match Collection::open(dir) {
        Ok(c) => c,
        Err(Error::NotACollection(_)) => return None,
        Err(e) => panic!("{e}"),
    };
    let mut listed: Vec<String> = c
        .manifest()
        .shards
        .iter()
        .map(|s| s.embeddings.clone())
        .collect();
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.join("img_emb"))
        .unwrap()
        .map(|e| format!("img_emb/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk, "stray or missing shard files");
    assert!(!commit::journal_exists(dir));
    // The index answers from the same rows: each row finds itself first.
    let mut vectors = Vec::new();
    c.for_each_vector_block(|_, b| {
        vectors.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    if !c.is_empty() {
        let hits = c.search(&vectors[..DIM], 1).unwrap();
        assert_eq!(hits[0].row, 0);
    }
    Some(c.rows().iter().map(|r| r.image_path.clone()).collect())
}

fn paths(tag: &str, n: usize) -> Vec<String> {
    rows(tag, 0, n)
        .0
        .into_iter()
        .map(|r| r.image_path)
        .collect()
}

/// Runs `change` with a crash planned at every step in turn, then a recovery with a crash at
/// every step in turn; after each, the folder opens as `old` or `new`.
fn crash_everywhere(
    setup: impl Fn(&Path),
    change: impl Fn(&Path) -> crate::Result<()>,
    old: Option<Vec<String>>,
    new: Option<Vec<String>>,
) {
    let mut saw = (0, 0);
    for n in 0.. {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        crash_after(Some(n));
        let r = change(dir.path());
        let passed = crash_points_passed();
        crash_after(None);
        match r {
            Ok(()) => {
                assert_eq!(state(dir.path()), new);
                assert!(n >= passed, "crash {n} planned but not hit");
                break;
            }
            Err(Error::SimulatedCrash(_)) => {}
            Err(e) => panic!("crash {n}: {e}"),
        }
        // A recovery that itself crashes at each of its steps, then a clean open.
        for m in 0.. {
            crash_after(Some(m));
            let r = Collection::open(dir.path());
            crash_after(None);
            if !matches!(r, Err(Error::SimulatedCrash(_))) {
                break;
            }
        }
        let s = state(dir.path());
        if s == old {
            saw.0 += 1;
        } else if s == new {
            saw.1 += 1;
        } else {
            panic!("crash {n}: neither version: {s:?}");
        }
    }
    assert!(
        saw.0 > 0 && saw.1 > 0,
        "both outcomes should occur: {saw:?}"
    );
}

/// Replacing a 10-row (3 shard) version by a 6-row (2 shard) one: old or new after any crash.
#[test]
fn replace_survives_a_crash_at_every_step() {
    for index in [IndexSpec::Flat, IndexSpec::hnsw_default()] {
        crash_everywhere(
            |d| write(d, index, "a", 10).unwrap(),
            |d| write(d, index, "b", 6),
            Some(paths("a", 10)),
            Some(paths("b", 6)),
        );
    }
}

/// Creating a collection in an empty folder: nothing or the collection after any crash.
#[test]
fn create_survives_a_crash_at_every_step() {
    crash_everywhere(
        |_| {},
        |d| write(d, IndexSpec::Flat, "a", 5),
        None,
        Some(paths("a", 5)),
    );
}

/// Appending 5 rows to 6 (new shards, the index extended): old or new after any crash.
#[test]
fn append_survives_a_crash_at_every_step() {
    for index in [IndexSpec::Flat, IndexSpec::hnsw_default()] {
        let mut both = paths("a", 6);
        both.extend(rows("n", 6, 5).0.into_iter().map(|r| r.image_path));
        crash_everywhere(
            |d| write(d, index, "a", 6).unwrap(),
            |d| {
                let mut w = CollectionWriter::append(d, info(index))?;
                w.set_options(opts())?;
                let (r, v) = rows("n", 6, 5);
                w.push_batch(&r, &v)?;
                w.finish().map(|_| ())
            },
            Some(paths("a", 6)),
            Some(both),
        );
    }
}

/// Merging two shards into a folder that holds an older collection: old or merged after any
/// crash.
#[test]
fn merge_survives_a_crash_at_every_step() {
    let shards = tempfile::tempdir().unwrap();
    let (all_rows, all_vectors) = rows("s", 0, 9);
    let mut dirs = Vec::new();
    for index in 0..2 {
        let spec = ShardSpec { index, count: 2 };
        let range = spec.range(9);
        let dir = shards.path().join(format!("shard_{index}"));
        let mut i = info(IndexSpec::Flat);
        i.source = Some(Source {
            list_digest: "sha256:list".into(),
            list_len: 9,
            shard: Some(spec),
        });
        let mut w = CollectionWriter::create(&dir, i).unwrap();
        w.set_options(opts()).unwrap();
        w.push_batch(
            &all_rows[range.clone()],
            &all_vectors[range.start * DIM..range.end * DIM],
        )
        .unwrap();
        w.finish().unwrap();
        dirs.push(dir);
    }
    crash_everywhere(
        |d| write(d, IndexSpec::Flat, "a", 3).unwrap(),
        |d| merge_shards(&dirs, d, opts()).map(|_| ()),
        Some(paths("a", 3)),
        Some(paths("s", 9)),
    );
}

/// A random mix of crashed and finished writes, appends and replaces always leaves one of the
/// versions written so far, never a mix.
#[test]
fn random_crash_sequences_leave_a_written_version() {
    let seed: u64 = rand::thread_rng().r#gen();
    eprintln!("seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut current: Option<Vec<String>> = None;
    for round in 0..30 {
        let n = rng.gen_range(1..9);
        let tag = format!("v{round}");
        let crash = rng.gen_range(0..12);
        crash_after(Some(crash));
        let r = write(dir.path(), IndexSpec::Flat, &tag, n);
        crash_after(None);
        let s = state(dir.path());
        match r {
            Ok(()) => assert_eq!(s, Some(paths(&tag, n))),
            Err(Error::SimulatedCrash(_)) => {
                assert!(s == current || s == Some(paths(&tag, n)), "round {round}")
            }
            Err(e) => panic!("{e}"),
        }
        current = s;
    }
}
