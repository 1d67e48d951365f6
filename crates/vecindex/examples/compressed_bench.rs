//! Compressed indexes on a data set written by `scripts/bench_vecindex.py gen` (`base.npy`,
//! `queries.npy`), next to the FAISS figures and files that `scripts/bench_vecindex.py
//! compressed DIR` wrote into `DIR/faiss/` (run that first; `scripts/bench_vecindex.sh` runs
//! both). Prints markdown tables:
//! - flat SQ8 / fp16, inner product and L2: train + add time, batched search time of all
//!   queries (best of `SQ_REPS`), and agreement with FAISS's results on FAISS's own file;
//! - IVF-PQ (inner product): train + add time, memory against f32, and per nprobe recall@10
//!   and queries/s without and with exact re-ranking from the `.npy`. The index is saved to
//!   `DIR/ours/ivfpq.faiss`; `SEARCH_ONLY=1` reads it back and runs only the searches (to
//!   interleave search passes with FAISS's `compressed --search-only`).
//!
//! `cargo run --release -p vecindex --example compressed_bench -- DIR`
//! (env: `NLIST` 1024, `M` 64, `NPROBES` "1,2,4,8,16,32,64", `RERANK` "10": re-ranking
//! factors, e.g. "10,50,100", each a pair of columns, `REPS` 3 timed passes of each IVF search,
//! `SQ_REPS` (default `REPS`) of each flat search, `FLAT_SQ=0` to skip the flat indexes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use vecindex::faiss_io::ReadOptions;
use vecindex::ivf::{IvfPqIndex, IvfPqOptions};
use vecindex::npy::NpyF32;
use vecindex::rerank::{RerankOptions, Reranked};
use vecindex::sq::{FlatSqIndex, SqKind, SqOptions};
use vecindex::{FlatIndex, Hit, Metric, VectorIndex};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(path: &Path) -> (Vec<f32>, usize, usize) {
    let a = NpyF32::open(path).unwrap();
    let (n, d) = (a.rows(), a.cols());
    let mut v = vec![0.0; n * d];
    for (i, row) in v.chunks_exact_mut(d).enumerate() {
        a.row_into(i, row);
    }
    (v, n, d)
}

/// Raw little-endian i64 labels FAISS's side saved (`nq × k`).
fn labels(path: &Path) -> Option<Vec<i64>> {
    let b = std::fs::read(path).ok()?;
    Some(
        b.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

fn best_of<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.unwrap())
}

fn recall(got: &[Vec<Hit>], truth: &[Vec<Hit>]) -> f64 {
    let k = truth[0].len();
    let hit: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| {
            g.iter()
                .filter(|h| t.iter().any(|x| x.row == h.row))
                .count()
        })
        .sum();
    hit as f64 / (truth.len() * k) as f64
}

/// Share of result labels equal to FAISS's, and the largest score difference where equal.
fn agreement(got: &[Vec<Hit>], faiss: &[i64], k: usize) -> f64 {
    let same: usize = got
        .iter()
        .enumerate()
        .map(|(q, hits)| {
            hits.iter()
                .enumerate()
                .filter(|(j, h)| faiss[q * k + j] == h.row as i64)
                .count()
        })
        .sum();
    same as f64 / faiss.len() as f64
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: compressed_bench DIR"),
    );
    let (base, n, d) = load(&dir.join("base.npy"));
    let (queries, nq, _) = load(&dir.join("queries.npy"));
    let k = 10;
    let reps = env("REPS", 3);
    let sq_reps = env("SQ_REPS", reps);
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    println!(
        "vecindex compressed: n = {n}, d = {d}, nq = {nq}, k = {k}, threads = {}, kernels = {} / codes {}",
        rayon::current_num_threads(),
        vecindex::kernels::simd_level(),
        vecindex::sq::sq_simd_level()
    );

    let data = Data {
        dir: &dir,
        base: &base,
        queries: &queries,
        ids: &ids,
        d,
        k,
    };
    let search_only = env("SEARCH_ONLY", 0) != 0;
    if env("FLAT_SQ", 1) != 0 && !search_only {
        flat_sq(&data, sq_reps);
    }
    ivf_pq(&data, reps, search_only);
}

/// The data set and the search settings both parts share.
struct Data<'a> {
    dir: &'a Path,
    base: &'a [f32],
    queries: &'a [f32],
    ids: &'a [String],
    d: usize,
    k: usize,
}

/// Flat SQ8 / fp16 under both metrics: build, batched search, agreement with FAISS's file.
fn flat_sq(data: &Data, sq_reps: usize) {
    let Data {
        base,
        queries,
        ids,
        d,
        k,
        ..
    } = *data;
    let nq = queries.len() / d;
    let faiss_dir = data.dir.join("faiss");
    println!(
        "\n| index | metric | train + add | batched search (best of {sq_reps}) | queries/s | same ids as FAISS on its file |"
    );
    println!("|---|---|---|---|---|---|");
    for (kind, kname) in [(SqKind::Sq8, "sq8"), (SqKind::Fp16, "fp16")] {
        for (metric, mname) in [(Metric::InnerProduct, "ip"), (Metric::L2, "l2")] {
            let t = Instant::now();
            let index = FlatSqIndex::build(d, metric, SqOptions { kind }, ids, base).unwrap();
            let build = t.elapsed().as_secs_f64();
            let (secs, _) = best_of(sq_reps, || index.search(queries, k).unwrap());
            let file = faiss_dir.join(format!("{kname}_{mname}.faiss"));
            let same = match (
                FlatSqIndex::read_faiss(&file, ReadOptions::default()),
                labels(&faiss_dir.join(format!("{kname}_{mname}.I.i64"))),
            ) {
                (Ok(theirs), Some(fi)) => format!(
                    "{:.4}",
                    agreement(&theirs.search(queries, k).unwrap(), &fi, k)
                ),
                _ => "(no FAISS file)".into(),
            };
            println!(
                "| Flat{kname} | {mname} | {build:.2} s | {secs:.3} s | {:.0} | {same} |",
                nq as f64 / secs
            );
        }
    }
}

/// IVF-PQ (inner product): train + add, memory, and recall / queries/s per nprobe, plain and
/// with each re-ranking factor.
fn ivf_pq(data: &Data, reps: usize, search_only: bool) {
    let Data {
        dir,
        base,
        queries,
        ids,
        d,
        k,
    } = *data;
    let (n, nq) = (base.len() / d, queries.len() / d);
    let faiss_dir = dir.join("faiss");
    let metric = Metric::InnerProduct;
    let truth = FlatIndex::from_vectors(d, metric, ids, base)
        .unwrap()
        .search(queries, k)
        .unwrap();
    let saved = dir.join("ours").join("ivfpq.faiss");
    let ivf = if search_only {
        let ivf = IvfPqIndex::read_faiss(&saved, ReadOptions::default()).unwrap();
        println!(
            "\nIVF-PQ read from {}: nlist {}, m {}",
            saved.display(),
            ivf.nlist(),
            ivf.m()
        );
        ivf
    } else {
        let options = IvfPqOptions {
            nlist: env("NLIST", 1024),
            m: env("M", 64),
            ..Default::default()
        };
        let t = Instant::now();
        let mut ivf = IvfPqIndex::train(d, metric, options, base).unwrap();
        let train = t.elapsed().as_secs_f64();
        let t = Instant::now();
        ivf.add(ids, base).unwrap();
        let add = t.elapsed().as_secs_f64();
        let mem = ivf.memory_bytes();
        println!(
            "\nIVF{},PQ{} ip: train {train:.2} s, add {add:.2} s (total {:.2} s); memory {:.1} MB = {:.4} x f32 ({:.1} MB)",
            options.nlist,
            options.m,
            train + add,
            mem as f64 / 1e6,
            mem as f64 / (4 * n * d) as f64,
            (4 * n * d) as f64 / 1e6
        );
        std::fs::create_dir_all(saved.parent().unwrap()).unwrap();
        ivf.write_faiss(&saved).unwrap();
        ivf
    };
    let faiss_ivf =
        IvfPqIndex::read_faiss(&faiss_dir.join("ivfpq.faiss"), ReadOptions::default()).ok();
    let factors: Vec<usize> = std::env::var("RERANK")
        .unwrap_or_else(|_| "10".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let mut reranked = Reranked::new(
        ivf,
        NpyF32::open(&dir.join("base.npy")).unwrap(),
        RerankOptions::default(),
    )
    .unwrap();
    let columns: String = factors
        .iter()
        .map(|f| format!(" recall@10 re-ranked x{f} | queries/s |"))
        .collect();
    println!(
        "| nprobe | recall@10 | queries/s |{columns} recall@10 of FAISS's file, searched here |"
    );
    println!("|---|---|---|{}---|", "---|---|".repeat(factors.len()));
    let nprobes = std::env::var("NPROBES").unwrap_or_else(|_| "1,2,4,8,16,32,64".into());
    for np in nprobes
        .split(',')
        .map(|s| s.trim().parse::<usize>().unwrap())
    {
        reranked.inner_mut().set_nprobe(np);
        let (s1, plain) = best_of(reps, || reranked.inner().search(queries, k).unwrap());
        let mut row = format!(
            "| {np} | {:.4} | {:.0} |",
            recall(&plain, &truth),
            nq as f64 / s1
        );
        for &factor in &factors {
            let (secs, exact) = best_of(reps, || {
                let wide = reranked.inner().search(queries, k * factor).unwrap();
                reranked.rerank(queries, wide, k)
            });
            row += &format!(" {:.4} | {:.0} |", recall(&exact, &truth), nq as f64 / secs);
        }
        let theirs = faiss_ivf
            .as_ref()
            .map(|f| {
                format!(
                    "{:.4}",
                    recall(&f.search_with_nprobe(queries, k, np).unwrap(), &truth)
                )
            })
            .unwrap_or_else(|| "-".into());
        println!("{row} {theirs} |");
    }
}
