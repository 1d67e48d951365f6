//! Memory and time of `HnswIndex::load` (Linux: reads `/proc/self/status`).
//!
//! ```sh
//! # time and memory of a build and a first search: `build` (this crate's insertion) or
//! # `hnsw_rs` (hnsw_rs's insertion, the graph then copied out and hnsw_rs's dropped; needs the
//! # `hnsw-rs-compare` feature)
//! cargo run --release -p vecindex --example hnsw_load_memory -- build 100000
//! cargo run --release -p vecindex --features hnsw-rs-compare --example hnsw_load_memory -- hnsw_rs 100000
//! # once: build and save an index of N random unit vectors of dimension 768 (M 16, ef_c 64)
//! cargo run --release -p vecindex --example hnsw_load_memory -- /tmp/hnsw100k.vix 100000
//! # then: load it in a fresh process and print the resident memory it added
//! cargo run --release -p vecindex --example hnsw_load_memory -- /tmp/hnsw100k.vix 100000
//! # and with ADD=K: then insert K more random points into the loaded index, timed
//! ADD=1000 cargo run --release -p vecindex --example hnsw_load_memory -- /tmp/hnsw100k.vix 0
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use vecindex::{HnswIndex, HnswParams, Metric, VectorIndex};

const DIM: usize = 768;

/// A `/proc/self/status` field in MiB (`VmRSS:`, `VmHWM:`).
fn status_mib(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field in /proc/self/status");
    kib / 1024.0
}

/// Deterministic pseudo-random unit vector (xorshift), so no RNG crate is needed.
fn unit(state: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(feature = "hnsw-rs-compare")]
fn build_with_hnsw_rs(params: HnswParams, ids: &[String], data: &[f32]) -> HnswIndex {
    HnswIndex::build_with_hnsw_rs(DIM, Metric::InnerProduct, params, ids, data).unwrap()
}

#[cfg(not(feature = "hnsw-rs-compare"))]
fn build_with_hnsw_rs(_: HnswParams, _: &[String], _: &[f32]) -> HnswIndex {
    eprintln!("the hnsw_rs build needs `--features hnsw-rs-compare`");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: hnsw_load_memory INDEX_FILE N");
        std::process::exit(2);
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    if path == "build" || path == "hnsw_rs" {
        let data: Vec<f32> = (0..n).flat_map(|_| unit(&mut state)).collect();
        let ids: Vec<String> = (0..n).map(|i| format!("R{i:06}")).collect();
        let params = HnswParams {
            m: 16,
            ef_construction: 64,
            ..HnswParams::default()
        };
        let before = status_mib("VmRSS:");
        let t = Instant::now();
        let index = if path == "build" {
            HnswIndex::build(DIM, Metric::InnerProduct, params, &ids, &data).unwrap()
        } else {
            build_with_hnsw_rs(params, &ids, &data)
        };
        let hits = index.search(&unit(&mut state), 5).unwrap();
        println!(
            "{path}: {:.1} s; resident memory +{:.0} MiB after the build and a search (peak {:.0} \
             MiB); the vectors alone {:.0} MiB; {} hits",
            t.elapsed().as_secs_f64(),
            status_mib("VmRSS:") - before,
            status_mib("VmHWM:"),
            (n * DIM * 4) as f64 / f64::from(1u32 << 20),
            hits[0].len()
        );
        return;
    }
    let path = std::path::Path::new(path);
    if !path.exists() {
        let data: Vec<f32> = (0..n).flat_map(|_| unit(&mut state)).collect();
        let ids: Vec<String> = (0..n).map(|i| format!("R{i:06}")).collect();
        let t = Instant::now();
        let params = HnswParams {
            m: 16,
            ef_construction: 64,
            ..HnswParams::default()
        };
        let index = HnswIndex::build(DIM, Metric::InnerProduct, params, &ids, &data).unwrap();
        index.save(path).unwrap();
        println!(
            "built and saved {n} x {DIM} in {:.1} s; run again to measure the load",
            t.elapsed().as_secs_f64()
        );
        return;
    }
    let before = status_mib("VmRSS:");
    let t = Instant::now();
    let mut index = HnswIndex::load(path).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let hits = index.search(&unit(&mut state), 5).unwrap();
    println!(
        "load {load_s:.2} s; resident memory +{:.0} MiB after the load (peak {:.0} MiB); \
         the vectors alone {:.0} MiB; {} hits",
        status_mib("VmRSS:") - before,
        status_mib("VmHWM:"),
        (index.len() * DIM * 4) as f64 / f64::from(1u32 << 20),
        hits[0].len()
    );
    if let Some(k) = std::env::var("ADD")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let data: Vec<f32> = (0..k).flat_map(|_| unit(&mut state)).collect();
        let ids: Vec<String> = (0..k).map(|i| format!("added{i:06}")).collect();
        let t = Instant::now();
        index.add(&ids, &data).unwrap();
        println!(
            "added {k} points to {} in {:.2} s",
            index.len() - k,
            t.elapsed().as_secs_f64()
        );
    }
}
