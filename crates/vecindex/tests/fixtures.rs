//! Index files written by earlier versions of this crate (`tests/fixtures/v<N>/`, see the README
//! there) load and answer fixed queries exactly as they did when they were written: the same
//! ids, in the same order, with the same scores, bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use vecindex::faiss_io::ReadOptions;
use vecindex::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

/// Vectors per fixture index, their dimension, queries and hits per query.
const N: usize = 30;
const DIM: usize = 8;
const QUERIES: usize = 4;
const K: usize = 5;
/// `ef` values the HNSW answers are recorded at (raised to `K` when smaller).
const EFS: [usize; 2] = [1, 50];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Seeded rows of norm 0.5 to 1.5 (not unit length, so that inner product and cosine differ).
fn rows(n: usize, seed: u64) -> Vec<f32> {
    let raw = common::xorshift_vectors(n, DIM, seed);
    raw.chunks_exact(DIM)
        .enumerate()
        .flat_map(|(i, r)| {
            let scale = 0.5 + i as f32 / n as f32;
            common::normalise(r.to_vec())
                .into_iter()
                .map(move |x| x * scale)
        })
        .collect()
}

/// One line per hit: `fixture<TAB>ef<TAB>query<TAB>rank<TAB>id<TAB>score` (`ef` is `-` for flat
/// indexes; the score in Rust's shortest round-trip notation).
fn answer_lines(
    out: &mut String,
    name: &str,
    ef: Option<usize>,
    index: &impl VectorIndex,
    hits: &[Vec<vecindex::Hit>],
) {
    let ef = ef.map_or("-".to_string(), |e| e.to_string());
    for (q, list) in hits.iter().enumerate() {
        for (rank, h) in list.iter().enumerate() {
            let id = index.id(h.row).unwrap();
            writeln!(out, "{name}\t{ef}\t{q}\t{rank}\t{id}\t{:?}", h.score).unwrap();
        }
    }
}

/// What an index file answers, as [`answer_lines`] writes it.
fn answers(name: &str, path: &Path, queries: &[f32]) -> String {
    let mut out = String::new();
    if name.starts_with("hnsw") {
        let index = HnswIndex::load(path).unwrap();
        for ef in EFS {
            let hits = index.search_with_ef(queries, K, ef).unwrap();
            answer_lines(&mut out, name, Some(ef), &index, &hits);
        }
    } else if name.ends_with(".faiss") {
        for mmap in [false, true] {
            let options = ReadOptions {
                mmap,
                ..ReadOptions::default()
            };
            let index = FlatIndex::read_faiss(path, options).unwrap();
            let mut text = String::new();
            answer_lines(
                &mut text,
                name,
                None,
                &index,
                &index.search(queries, K).unwrap(),
            );
            if mmap {
                assert_eq!(text, out, "{name}: memory-mapped answers differ");
            } else {
                out = text;
            }
        }
    } else {
        let index = FlatIndex::load(path).unwrap();
        answer_lines(
            &mut out,
            name,
            None,
            &index,
            &index.search(queries, K).unwrap(),
        );
    }
    out
}

/// Every fixture folder: its files load and answer the stored queries as `answers.tsv` says.
#[test]
fn fixture_files_answer_as_when_they_were_written() {
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no fixture folders in {}",
        fixtures().display()
    );
    for dir in dirs {
        let queries = common::read_f32(&dir.join("queries.f32"));
        assert_eq!(queries.len(), QUERIES * DIM);
        let want = std::fs::read_to_string(dir.join("answers.tsv")).unwrap();
        let mut names: Vec<&str> = want
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        names.dedup();
        for name in names {
            let expected: String = want
                .lines()
                .filter(|l| l.split('\t').next() == Some(name))
                .map(|l| format!("{l}\n"))
                .collect();
            let got = answers(name, &dir.join(name), &queries);
            assert_eq!(got, expected, "{}: {name}", dir.display());
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} fixtures checked");
}

/// Every fixture saved again with the code as it is now (HNSW: the loaded graph written back;
/// flat: in this crate's format and as FAISS) loads and answers as the original did: an index
/// keeps its metric and, for HNSW, its graph distance (format 1 inner product's
/// `max(0, 1 - dot)`) through a save.
#[test]
fn fixture_files_saved_again_answer_the_same() {
    let out = tempfile::tempdir().unwrap();
    for dir in std::fs::read_dir(fixtures()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let queries = common::read_f32(&dir.join("queries.f32"));
        let want = std::fs::read_to_string(dir.join("answers.tsv")).unwrap();
        let mut names: Vec<&str> = want
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        names.dedup();
        for name in names {
            let expected: String = want
                .lines()
                .filter(|l| l.split('\t').next() == Some(name))
                .map(|l| format!("{l}\n"))
                .collect();
            let path = out.path().join(name);
            if name.starts_with("hnsw") {
                HnswIndex::load(&dir.join(name))
                    .unwrap()
                    .save(&path)
                    .unwrap();
                let bytes = std::fs::read(&path).unwrap();
                let legacy_ip = dir.ends_with("v1") && name.contains("_ip");
                assert_eq!(
                    bytes[14],
                    u8::from(legacy_ip),
                    "{name}: graph distance byte"
                );
            } else if name.ends_with(".faiss") {
                let index = FlatIndex::read_faiss(&dir.join(name), ReadOptions::default()).unwrap();
                index.write_faiss(&path).unwrap();
            } else {
                FlatIndex::load(&dir.join(name))
                    .unwrap()
                    .save(&path)
                    .unwrap();
            }
            assert_eq!(
                answers(name, &path, &queries),
                expected,
                "{}: {name}",
                dir.display()
            );
        }
    }
}

/// Writes a fixture folder with the code as it is now: `VECINDEX_WRITE_FIXTURES=DIR cargo test
/// -p vecindex --test fixtures -- --ignored`. A new folder is added when the file format
/// changes; the committed ones are never rewritten. It holds what the format added: for
/// format 2, cosine (flat in both file kinds, HNSW) and HNSW with inner product (whose graph
/// distance changed); `v1/` holds flat and HNSW for inner product and L2.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn write_fixtures() {
    let dir = PathBuf::from(
        std::env::var("VECINDEX_WRITE_FIXTURES").expect("VECINDEX_WRITE_FIXTURES=DIR"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let data = rows(N, 20_261_202);
    let queries = rows(QUERIES, 7);
    common::write_f32(&dir.join("queries.f32"), &queries);
    let ids = common::ids(N);
    let params = HnswParams {
        m: 4,
        ef_construction: 16,
        ef_search: 8,
        seed: 11,
    };
    let mut names = Vec::new();
    for (tag, metric, flat) in [
        ("cosine", Metric::Cosine, true),
        ("ip", Metric::InnerProduct, false),
    ] {
        if flat {
            let flat = FlatIndex::from_vectors(DIM, metric, &ids, &data)
                .unwrap()
                .with_model_id("fixture/model");
            let name = format!("flat_{tag}.vix");
            flat.save(&dir.join(&name)).unwrap();
            names.push(name);
            let name = format!("flat_{tag}.faiss");
            flat.write_faiss(&dir.join(&name)).unwrap();
            names.push(name);
        }
        let hnsw = common::on_one_thread(|| HnswIndex::build(DIM, metric, params, &ids, &data))
            .unwrap()
            .with_model_id("fixture/model");
        let name = format!("hnsw_{tag}.vix");
        hnsw.save(&dir.join(&name)).unwrap();
        names.push(name);
    }
    let mut all = String::new();
    for name in &names {
        all += &answers(name, &dir.join(name), &queries);
    }
    std::fs::write(dir.join("answers.tsv"), all).unwrap();
}
