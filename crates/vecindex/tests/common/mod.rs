//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use vecindex::{Hit, Metric};

/// The project's Python (`<workspace>/.venv/bin/python`); fails loudly when missing.
pub fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: create the project venv (scripts/setup.sh) to run the FAISS comparisons",
        p.display()
    );
    p
}

/// The FAISS helper script.
pub fn faiss_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/vecindex_faiss.py")
}

/// Writes raw little-endian f32.
pub fn write_f32(path: &std::path::Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Reads raw little-endian f32.
pub fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads raw little-endian i64.
pub fn read_i64(path: &std::path::Path) -> Vec<i64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Exact search by the definition: every pair scored in f64 (-0 counted as 0), sorted by score
/// then row.
pub fn naive(
    data: &[f32],
    queries: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Vec<Vec<(usize, f64)>> {
    queries
        .chunks_exact(dim)
        .map(|q| {
            let mut all: Vec<(usize, f64)> = data
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, v)| (i, naive_score(q, v, metric) + 0.0))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        })
        .collect()
}

pub fn naive_score(q: &[f32], v: &[f32], metric: Metric) -> f64 {
    let dot = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| *x as f64 * *y as f64)
            .sum::<f64>()
    };
    match metric {
        Metric::InnerProduct => dot(q, v),
        Metric::Cosine => {
            let norms = dot(q, q).sqrt() * dot(v, v).sqrt();
            if norms > 0.0 { dot(q, v) / norms } else { 0.0 }
        }
        Metric::L2 => -q
            .iter()
            .zip(v)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>(),
    }
}

/// Checks `got` against the naive answer: same length, scores within `tol`, and every returned
/// row's true score within `tol` of the naive score at that rank (ids equal up to ties).
pub fn assert_matches_naive(
    got: &[Hit],
    want: &[(usize, f64)],
    data: &[f32],
    q: &[f32],
    dim: usize,
    metric: Metric,
    tol: f64,
) {
    assert_eq!(got.len(), want.len(), "result length");
    let mut rows = std::collections::HashSet::new();
    for (g, w) in got.iter().zip(want) {
        assert!(rows.insert(g.row), "row {} returned twice", g.row);
        assert!(
            (g.score as f64 - w.1).abs() <= tol,
            "score {} vs naive {} (row {} vs {})",
            g.score,
            w.1,
            g.row,
            w.0
        );
        let true_score = naive_score(q, &data[g.row * dim..(g.row + 1) * dim], metric);
        assert!(
            (true_score - w.1).abs() <= tol,
            "row {} (score {true_score}) at a rank where naive has row {} ({})",
            g.row,
            w.0,
            w.1
        );
    }
    for pair in got.windows(2) {
        assert!(
            pair[0].score.total_cmp(&pair[1].score).is_ge(),
            "not sorted"
        );
        if pair[0].score == pair[1].score {
            assert!(
                pair[0].row < pair[1].row,
                "tie not broken by insertion order"
            );
        }
    }
}

/// Recall of `approx` against `exact`: the share of the exact results found, per query.
pub fn recall(exact: &[Vec<Hit>], approx: &[Vec<Hit>]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for (e, a) in exact.iter().zip(approx) {
        total += e.len();
        found += e
            .iter()
            .filter(|h| a.iter().any(|x| x.row == h.row))
            .count();
    }
    found as f64 / total as f64
}

/// `n` unit vectors around `clusters` random unit centres (Gaussian spread `sigma` per
/// coordinate before normalisation).
pub fn clustered(n: usize, dim: usize, clusters: usize, sigma: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| normalise((0..dim).map(|_| gauss(&mut rng)).collect()))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = &centres[rng.gen_range(0..clusters)];
        let v: Vec<f32> = c.iter().map(|x| x + sigma * gauss(&mut rng)).collect();
        out.extend(normalise(v));
    }
    out
}

/// A standard normal draw (Box-Muller).
pub fn gauss(rng: &mut rand_chacha::ChaCha8Rng) -> f32 {
    let u1: f32 = rng.r#gen::<f32>().max(1e-12);
    let u2: f32 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

pub fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("R{i:06}")).collect()
}

/// Deterministic pseudo-random vectors in [-1, 1) (xorshift), `n × d` row-major.
pub fn xorshift_vectors(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n * d)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Reference CRC-32 (IEEE), bitwise, so the tests do not trust the crate's dependency.
pub fn crc32(b: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in b {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the checksum that ends one of our files (the last 4 bytes, CRC-32 of the rest,
/// little endian), so only the parser can catch a lie in the body. `b` holds at least 4 bytes.
pub fn repair_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let crc = crc32(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Runs `f` in a one-thread rayon pool. A batch is inserted in parallel, and which of two
/// racing insertions links first changes the graph, so a parallel build differs from run to run
/// (about one run in a hundred missed one point of 2,200 at `ef` 64 on a loaded 2-core CI box).
/// Built on one thread, the graph is a fixed function of the data and the seed, so the strict
/// assertions of the tests (no point lost, exact at `ef = n`) hold or fail the same way on every run.
/// `hnsw.rs`'s `parallel_build_keeps_recall` covers the parallel path with bounds that allow for the race.
pub fn on_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}
