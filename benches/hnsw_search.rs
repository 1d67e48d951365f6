//! HNSW build time, recall@10 against exact search, and queries/s over `ef_search`, on a data set
//! written by `scripts/bench_vecindex.py gen` (`base.npy`, `queries.npy`). Prints a table;
//! `scripts/bench_vecindex.sh` runs it next to faiss `IndexHNSWFlat` and hnswlib.
//!
//! `VECINDEX_BENCH_DATA=DIR cargo bench -p image-sim-benches --bench hnsw_search`
//! (env: `VECINDEX_BENCH_M`, `VECINDEX_BENCH_EFC` (defaults: `HnswParams::default()`),
//! `VECINDEX_BENCH_EFS` = "16,32,64,128,256", `VECINDEX_BENCH_SELF` = 10000 points checked
//! for self-retrieval, `VECINDEX_BENCH_HNSW_RS` = 1 to also time `hnsw_rs`'s own search on the
//! same graph (reloaded by `hnsw_rs` from the index's dump), 0 to skip it (default: 1 with the
//! `hnsw_rs` builder, 0 with ours); `VECINDEX_BENCH_REPS` = 5 timed passes, the
//! best counts; `VECINDEX_BENCH_INDEX` = a file to reuse a saved index from, or save the built
//! one to; `VECINDEX_BENCH_BUILDER` = `native` (default: `HnswIndex::build`, this crate's
//! insertion) or `hnsw_rs` (`hnsw_rs`'s insertion, the graph then copied out: the build of
//! before).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use vecindex::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(path: &std::path::Path) -> (Vec<f32>, usize, usize) {
    let a = embed_core::npy::read_f32_file(path).unwrap();
    let (n, d) = (a.shape()[0], a.shape()[1]);
    (a.iter().copied().collect(), n, d)
}

/// This thread's CPU time in ns (Linux: first field of `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let Ok(dir) = std::env::var("VECINDEX_BENCH_DATA") else {
        eprintln!(
            "set VECINDEX_BENCH_DATA to a folder made by `scripts/bench_vecindex.py gen`; skipping"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let (base, n, d) = load(&dir.join("base.npy"));
    let (queries, nq, _) = load(&dir.join("queries.npy"));
    let k = 10;
    let defaults = HnswParams::default();
    let params = HnswParams {
        m: env("VECINDEX_BENCH_M", defaults.m),
        ef_construction: env("VECINDEX_BENCH_EFC", defaults.ef_construction),
        ..defaults
    };
    let efs: Vec<usize> = std::env::var("VECINDEX_BENCH_EFS")
        .unwrap_or_else(|_| "16,32,64,128,256".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let threads = rayon::current_num_threads();

    let flat = FlatIndex::from_vectors(d, Metric::InnerProduct, &ids, &base).unwrap();
    let exact = flat.search(&queries, k).unwrap();

    // VECINDEX_BENCH_INDEX=FILE: load the index from FILE when it exists (no build time then),
    // else build it and save it there, to iterate on search without rebuilding.
    let saved = std::env::var_os("VECINDEX_BENCH_INDEX").map(PathBuf::from);
    let reused = saved.as_ref().is_some_and(|p| p.exists());
    let hnsw_rs_builder = match std::env::var("VECINDEX_BENCH_BUILDER").as_deref() {
        Ok("hnsw_rs") => true,
        Ok("native") | Err(_) => false,
        Ok(other) => panic!("VECINDEX_BENCH_BUILDER={other}: native or hnsw_rs"),
    };
    let t = Instant::now();
    let index = match &saved {
        Some(p) if p.exists() => HnswIndex::load(p).unwrap(),
        _ => {
            let index = if hnsw_rs_builder {
                HnswIndex::build_with_hnsw_rs(d, Metric::InnerProduct, params, &ids, &base).unwrap()
            } else {
                HnswIndex::build(d, Metric::InnerProduct, params, &ids, &base).unwrap()
            };
            if let Some(p) = &saved {
                index.save(p).unwrap();
            }
            index
        }
    };
    let build = t.elapsed().as_secs_f64();
    println!(
        "vecindex HnswIndex (graph built by {}): n = {n}, d = {d}, nq = {nq}, M = {}, ef_construction = {}, threads = {threads}, kernels {}, transparent huge pages: {}",
        if hnsw_rs_builder {
            "hnsw_rs"
        } else {
            "vecindex"
        },
        params.m,
        params.ef_construction,
        vecindex::kernels::simd_level(),
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .map_or_else(|_| "n/a".into(), |m| m.trim().to_string())
    );
    if reused {
        println!("loaded a saved index in {build:.1} s (no build)");
    } else {
        println!("build: {build:.1} s");
    }
    let recall_of = |res: &[Vec<vecindex::Hit>]| {
        let mut found = 0;
        for (e, a) in exact.iter().zip(res) {
            found += e
                .iter()
                .filter(|h| a.iter().any(|x| x.row == h.row))
                .count();
        }
        found as f64 / (nq * k) as f64
    };
    // Best of `reps` timed passes after a warm-up on 50 queries.
    let reps = env("VECINDEX_BENCH_REPS", 5).max(1);
    let timed = |f: &dyn Fn(&[f32]) -> Vec<Vec<vecindex::Hit>>| {
        let _ = f(&queries[..d * nq.min(50)]);
        let mut best = f64::INFINITY;
        let mut res = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            res = f(&queries);
            best = best.min(t.elapsed().as_secs_f64());
        }
        (res, nq as f64 / best)
    };
    let t = Instant::now();
    let _ = index.search_one_with_ef(&queries[..d], k, 16).unwrap();
    println!(
        "graph and vectors {:.0} MB; first search {:.2} s",
        index.search_copy_bytes() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let with_hnsw_rs = env("VECINDEX_BENCH_HNSW_RS", usize::from(hnsw_rs_builder)) != 0;
    let hnsw_rs = with_hnsw_rs.then(|| index.hnsw_rs_searcher().unwrap());
    println!(
        "| ef_search | recall@{k} | queries/s | ms/query (1 thread equiv.) | single query, 1 thread: wall ms | CPU ms |{}",
        if with_hnsw_rs {
            " hnsw_rs search: recall@10 | queries/s |"
        } else {
            ""
        }
    );
    println!(
        "|---|---|---|---|---|{}",
        if with_hnsw_rs { "---|---|" } else { "" }
    );
    for &ef in &efs {
        let (res, qps) = timed(&|q| index.search_with_ef(q, k, ef).unwrap());
        let recall = recall_of(&res);
        // Sequential single-query calls (no rayon): latency without batch overhead, as wall
        // time and as this thread's CPU time (robust to other load on the machine).
        let (t, c) = (Instant::now(), thread_cpu_ns());
        for q in queries.chunks_exact(d) {
            std::hint::black_box(index.search_one_with_ef(q, k, ef).unwrap());
        }
        let single = 1e3 * t.elapsed().as_secs_f64() / nq as f64;
        let cpu = match (c, thread_cpu_ns()) {
            (Some(a), Some(b)) => format!("{:.3}", (b - a) as f64 / 1e6 / nq as f64),
            _ => "n/a".into(),
        };
        let mut line = format!(
            "| {ef} | {recall:.4} | {qps:.0} | {:.3} | {single:.3} | {cpu} |",
            1e3 * threads as f64 / qps
        );
        if let Some(hnsw_rs) = &hnsw_rs {
            let (res, qps) = timed(&|q| hnsw_rs.search_with_ef(q, k, ef).unwrap());
            line += &format!(" {:.4} | {qps:.0} |", recall_of(&res));
        }
        println!("{line}");
    }
    // Self-retrieval on a sample of the inserted points (all of them when the sample covers n).
    let m = env("VECINDEX_BENCH_SELF", 10_000).min(n);
    let step = (n / m.max(1)).max(1);
    let rows: Vec<usize> = (0..n).step_by(step).take(m).collect();
    let sample: Vec<f32> = rows
        .iter()
        .flat_map(|&r| base[r * d..(r + 1) * d].iter().copied())
        .collect();
    let hits = index.search_with_ef(&sample, 1, params.ef_search).unwrap();
    let lost = rows
        .iter()
        .zip(&hits)
        .filter(|(r, h)| {
            h.is_empty()
                || h[0].row != **r
                    && base[h[0].row * d..(h[0].row + 1) * d] != base[**r * d..(**r + 1) * d]
        })
        .count();
    println!(
        "self-retrieval (ef = {}): {lost} of {} sampled points do not find themselves",
        params.ef_search,
        rows.len()
    );
    let path = dir.join("bench_hnsw.vix");
    let t = Instant::now();
    index.save(&path).unwrap();
    let save = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = HnswIndex::load(&path).unwrap();
    println!(
        "save {save:.1} s, load {:.1} s, file {:.0} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e6
    );
    assert_eq!(back.len(), n);
    let ef = efs[0];
    assert_eq!(
        back.search_with_ef(&queries, k, ef).unwrap(),
        index.search_with_ef(&queries, k, ef).unwrap(),
        "results after save and load differ"
    );
    let _ = std::fs::remove_file(&path);
}
