//! Helpers of the compressed-index tests: the FAISS helper script and result comparison.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use vecindex::{Metric, VectorIndex};

#[path = "../common/mod.rs"]
pub mod common;
pub use common::*;

/// FAISS's distance for row `row` of a scalar-quantised index and query `qi`: the decoded
/// vector scored, as FAISS's search reports it.
pub fn faiss_dist<'a>(
    index: &'a vecindex::sq::FlatSqIndex,
    queries: &'a [f32],
) -> impl Fn(usize, usize) -> f32 + 'a {
    move |qi, row| {
        let d = index.dim();
        let v = index.reconstruct(row).unwrap();
        index
            .metric()
            .faiss_distance(index.metric().score(&queries[qi * d..(qi + 1) * d], &v))
    }
}

/// Runs the FAISS helper script with `args`; fails the test when it fails.
pub fn faiss(args: &[&str]) {
    let out = Command::new(python())
        .arg(faiss_script())
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "faiss helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// FAISS's search of the index file at `index`: distances and labels, `k` per query.
pub fn faiss_search(
    index: &Path,
    queries: &[f32],
    d: usize,
    k: usize,
    dir: &Path,
) -> (Vec<f32>, Vec<i64>) {
    let q = dir.join("q.f32");
    write_f32(&q, queries);
    let prefix = dir.join("res");
    faiss(&[
        "search",
        index.to_str().unwrap(),
        q.to_str().unwrap(),
        &d.to_string(),
        &k.to_string(),
        prefix.to_str().unwrap(),
    ]);
    (
        read_f32(&dir.join("res.dist.f32")),
        read_i64(&dir.join("res.ids.i64")),
    )
}

/// FAISS searches the index file `file` and `index` (the same index, read from that file or
/// written to it) searches the same queries; the two must agree as [`compare_hits`] says, with
/// row numbers as labels. Returns our hits and how many labels differed on ties.
pub fn agrees_with_faiss(
    index: &impl VectorIndex,
    file: &Path,
    queries: &[f32],
    k: usize,
    dir: &Path,
    tol: f32,
    faiss_dist: impl Fn(usize, usize) -> f32,
) -> (Vec<Vec<vecindex::Hit>>, usize) {
    let (fd, fi) = faiss_search(file, queries, index.dim(), k, dir);
    let got = index.search(queries, k).unwrap();
    let swaps = compare_hits(index, &got, |r| r as i64, k, (&fd, &fi), tol, faiss_dist);
    (got, swaps)
}

/// Writes `v` as raw f32 in `dir` and returns the path as a string.
pub fn vectors_file(dir: &Path, name: &str, v: &[f32]) -> String {
    let p = dir.join(name);
    write_f32(&p, v);
    p.to_str().unwrap().to_owned()
}

/// Our hits (as FAISS reports them) against FAISS's: the same number of real results, distances
/// within `tol` (relative), and the same labels except where FAISS's own distance for our row
/// (`faiss_dist(query, row)`) ties the distance at that rank within `tol`. Returns how many
/// labels differed (ties).
pub fn compare_hits(
    index: &impl VectorIndex,
    got: &[Vec<vecindex::Hit>],
    label: impl Fn(usize) -> i64,
    k: usize,
    (fd, fi): (&[f32], &[i64]),
    tol: f32,
    faiss_dist: impl Fn(usize, usize) -> f32,
) -> usize {
    let metric: Metric = index.metric();
    let mut swaps = 0;
    for (qi, hits) in got.iter().enumerate() {
        let real = fi[qi * k..(qi + 1) * k].iter().filter(|&&i| i >= 0).count();
        assert_eq!(hits.len(), real, "q{qi}: result count");
        for (j, h) in hits.iter().enumerate() {
            let (dist, id) = (fd[qi * k + j], fi[qi * k + j]);
            let ours = metric.faiss_distance(h.score);
            assert!(
                (ours - dist).abs() <= tol * (1.0 + dist.abs()),
                "q{qi} rank {j}: {ours} vs faiss {dist}"
            );
            if label(h.row) != id {
                let s = faiss_dist(qi, h.row);
                assert!(
                    (s - dist).abs() <= tol * (1.0 + dist.abs()),
                    "q{qi} rank {j}: row {} ({s}) vs faiss id {id} ({dist})",
                    h.row
                );
                swaps += 1;
            }
        }
    }
    swaps
}
