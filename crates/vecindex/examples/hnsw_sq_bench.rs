//! HNSW over f32 rows and over scalar-quantised codes on a data set written by
//! `scripts/bench_vecindex.py gen` (`base.npy`, `queries.npy`, unit vectors, inner product):
//! build time, memory, recall@10 against exact f32 search and queries/s per `ef`. Prints one
//! markdown table; `scripts/bench_vecindex.sh` runs it next to FAISS `IndexHNSWFlat` and
//! `IndexHNSWSQ` (`scripts/bench_vecindex.py hnsw-sq`).
//!
//! `cargo run --release -p vecindex --example hnsw_sq_bench -- DIR`
//! (env: `KINDS` = "f32,sq8" (also fp16), `EFS` = "16,32,64,128,256", `M` = 32, `EFC` = 200,
//! `REPS` = 3 timed passes over the queries, the best counts; `SAVE` = a folder to write the
//! compressed indexes to as FAISS `IndexHNSWSQ` files, `LOAD` = a folder to read them from
//! instead of building: a search-only pass; `RERANK` = "1" re-ranking factors for the
//! compressed kinds: with factor r > 1 the graph returns `k × r` candidates (ef raised to at
//! least that), re-scored exactly with the f32 rows of the memory-mapped `base.npy`, the time
//! of the re-scoring included).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use vecindex::faiss_io::ReadOptions;
use vecindex::npy::NpyF32;
use vecindex::rerank::{RerankOptions, Reranked};
use vecindex::sq::SqKind;
use vecindex::{FlatIndex, Hit, HnswIndex, HnswParams, HnswSqIndex, Metric, VectorIndex};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn load(path: &Path) -> (Vec<f32>, usize, usize) {
    let a = NpyF32::open(path).unwrap();
    let (n, d) = (a.rows(), a.cols());
    let mut v = vec![0.0; n * d];
    for (r, row) in v.chunks_exact_mut(d).enumerate() {
        a.row_into(r, row);
    }
    (v, n, d)
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: hnsw_sq_bench DIR");
    let dir = Path::new(&dir);
    let (base, n, d) = load(&dir.join("base.npy"));
    let (queries, nq, _) = load(&dir.join("queries.npy"));
    let k = 10;
    let efs: Vec<usize> = env_or("EFS", "16,32,64,128,256")
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let reps: usize = env_or("REPS", "3").parse().unwrap();
    let factors: Vec<usize> = env_or("RERANK", "1")
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let params = HnswParams {
        m: env_or("M", "32").parse().unwrap(),
        ef_construction: env_or("EFC", "200").parse().unwrap(),
        ..HnswParams::default()
    };
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let exact = FlatIndex::from_vectors(d, Metric::InnerProduct, &ids, &base)
        .unwrap()
        .search(&queries, k)
        .unwrap();
    println!(
        "vecindex HNSW, n = {n}, d = {d}, {nq} queries, k = {k}, M = {}, efC = {}, {} threads",
        params.m,
        params.ef_construction,
        rayon::current_num_threads()
    );
    let (save, load_dir) = (
        std::env::var_os("SAVE").map(PathBuf::from),
        std::env::var_os("LOAD").map(PathBuf::from),
    );
    // The f32 graph of the same points would hold the rows on 64-byte blocks instead of codes.
    let f32_rows = n * d.div_ceil(16) * 64;
    println!("| index | build s | memory MB | ef | re-rank | recall@10 | queries/s |");
    println!("|---|---|---|---|---|---|---|");
    for kind in env_or("KINDS", "f32,sq8").split(',') {
        let t = Instant::now();
        let q = &queries;
        // (ef, re-ranking factor) -> results; the f32 graph is exact already and ignores the factor.
        let search: Box<dyn Fn(usize, usize) -> Vec<Vec<Hit>> + '_>;
        let memory;
        match kind {
            "f32" => {
                let index = HnswIndex::build(d, Metric::InnerProduct, params, &ids, &base).unwrap();
                memory = index.search_copy_bytes();
                search = Box::new(move |ef, _| index.search_with_ef(q, k, ef).unwrap());
            }
            other => {
                let sq: SqKind = other.parse().unwrap();
                let file = |dir: &Path| dir.join(format!("ours_hnsw_{other}_M{}.faiss", params.m));
                let index = match &load_dir {
                    Some(dir) => HnswSqIndex::read_faiss(&file(dir), ReadOptions::default()),
                    None => HnswSqIndex::build(d, Metric::InnerProduct, sq, params, &ids, &base),
                }
                .unwrap();
                if let Some(dir) = &save {
                    std::fs::create_dir_all(dir).unwrap();
                    index.write_faiss(&file(dir)).unwrap();
                }
                memory = index.memory_bytes();
                let graph = memory - index.quantizer().code_size() * n;
                println!(
                    "{other}: {:.1} MB of codes and ranges, graph {:.1} MB; the f32 HNSW of this graph: {:.1} MB",
                    (memory - graph) as f64 / 1e6,
                    graph as f64 / 1e6,
                    (graph + f32_rows) as f64 / 1e6
                );
                println!("{}", huge_pages_held());
                let vectors = NpyF32::open(&dir.join("base.npy")).unwrap();
                let index = Reranked::new(index, vectors, RerankOptions::default()).unwrap();
                search = Box::new(move |ef, factor| {
                    if factor <= 1 {
                        index.inner().search_with_ef(q, k, ef).unwrap()
                    } else {
                        let wide = index.inner().search_with_ef(q, k * factor, ef).unwrap();
                        index.rerank(q, wide, k)
                    }
                });
            }
        }
        let build = if load_dir.is_some() && kind != "f32" {
            f64::NAN
        } else {
            t.elapsed().as_secs_f64()
        };
        let kind_factors = if kind == "f32" {
            &[1][..]
        } else {
            &factors[..]
        };
        for &ef in &efs {
            for &factor in kind_factors {
                let mut best = f64::INFINITY;
                let mut got = Vec::new();
                for _ in 0..reps.max(1) {
                    let t = Instant::now();
                    got = search(ef, factor);
                    best = best.min(t.elapsed().as_secs_f64());
                }
                let rerank = if factor > 1 {
                    format!("×{factor}")
                } else {
                    "–".into()
                };
                println!(
                    "| ours {kind} | {build:.1} | {:.1} | {ef} | {rerank} | {:.4} | {:.0} |",
                    memory as f64 / 1e6,
                    common::recall(&exact, &got),
                    nq as f64 / best
                );
            }
        }
    }
}

/// How much of this process's memory lies in transparent huge pages (Linux), to tell a slow
/// pass whose random reads missed the TLB from one that did not.
fn huge_pages_held() -> String {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    match rollup.lines().find(|l| l.starts_with("AnonHugePages:")) {
        Some(line) => format!(
            "process memory in huge pages: {}",
            line.trim_start_matches("AnonHugePages:").trim()
        ),
        None => "process memory in huge pages: unknown (no /proc/self/smaps_rollup)".into(),
    }
}
