//! Load test over loopback: N concurrent keep-alive clients for a bounded time against the
//! service, with image queries on the host test model and with `embedding_input` queries on a
//! large HNSW collection; prints throughput, p50/p99 latency, errors by status and resident
//! memory after warm-up and at the end. For image queries it also measures the same work done
//! in-process (decode, preprocess, embed in batches, search) on the same images: the ratio
//! says what HTTP and batching cost.
//!
//! ```sh
//! cargo run --release -p image-sim-serve --example load -- --mode image --seconds 30
//! cargo run --release -p image-sim-serve --example load -- --mode embedding --rows 1000000 \
//!     --dim 768 --keep /tmp/hnsw-1m --seconds 30 --rate 200
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/http.rs"]
mod http;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use embed_collection::{CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec};
use embed_core::{DecodeOptions, Embedder, PreprocessSpec};
use embed_pipeline::test_model::GridMeanEmbedder;
use image_sim_serve::{CollectionSpec, ServeConfig, Server};
use rand::{Rng, SeedableRng};

struct Opts {
    mode: String,
    clients: usize,
    seconds: f64,
    warmup: f64,
    rows: usize,
    dim: usize,
    images: usize,
    rate: Option<f64>,
    keep: Option<PathBuf>,
    ef_search: Option<usize>,
}

fn parse() -> Opts {
    let mut o = Opts {
        mode: "both".into(),
        clients: 64,
        seconds: 30.0,
        warmup: 3.0,
        rows: 100_000,
        dim: 768,
        images: 256,
        rate: None,
        keep: None,
        ef_search: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--mode" => o.mode = v,
            "--clients" => o.clients = v.parse().expect("--clients N"),
            "--seconds" => o.seconds = v.parse().expect("--seconds S"),
            "--warmup" => o.warmup = v.parse().expect("--warmup S"),
            "--rows" => o.rows = v.parse().expect("--rows N"),
            "--dim" => o.dim = v.parse().expect("--dim D"),
            "--images" => o.images = v.parse().expect("--images N"),
            "--rate" => o.rate = Some(v.parse().expect("--rate QPS")),
            "--keep" => o.keep = Some(v.into()),
            "--ef-search" => o.ef_search = Some(v.parse().expect("--ef-search N")),
            _ => {
                eprintln!(
                    "usage: load [--mode image|embedding|both] [--clients 64] [--seconds 30] \
                     [--warmup 3] [--rows 100000] [--dim 768] [--images 256] [--rate QPS] \
                     [--keep DIR] [--ef-search N]"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) this process has used, in seconds: on a shared machine, work per
/// CPU-second compares two runs better than wall-clock rates do.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

fn info(model: &dyn Embedder, dim: usize, index: IndexSpec) -> CollectionInfo {
    CollectionInfo {
        model_id: model.model_id().into(),
        weights_digest: "sha256:00".into(),
        preprocessing: serde_json::json!("bench"),
        dim,
        metric: vecindex::Metric::InnerProduct,
        dtype: Dtype::F32,
        index,
        source: None,
        tool: "image-sim-serve load".into(),
    }
}

/// Runs `clients` keep-alive clients for `seconds` after `warmup`, each sending `body(i)`.
fn drive(
    addr: std::net::SocketAddr,
    o: &Opts,
    bodies: Arc<Vec<Vec<u8>>>,
) -> (
    Vec<f64>,
    std::collections::BTreeMap<u16, usize>,
    f64,
    f64,
    f64,
    f64,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let per_client_interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.clients as f64 / r));
    let handles: Vec<_> = (0..o.clients)
        .map(|c| {
            let (stop, measuring, bodies) = (stop.clone(), measuring.clone(), bodies.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut statuses = std::collections::BTreeMap::new();
                let mut conn = http::Conn::open(addr).expect("connect");
                let mut i = c * 7919;
                let mut next = Instant::now()
                    + per_client_interval.map_or(Duration::ZERO, |d| d.mul_f64(c as f64 / 64.0));
                while !stop.load(Ordering::Relaxed) {
                    if let Some(d) = per_client_interval {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += d;
                    }
                    let body = &bodies[i % bodies.len()];
                    i += 1;
                    let t = Instant::now();
                    let status = match conn.send("POST", "/knn-service", &[], body) {
                        Ok(r) => r.status,
                        Err(_) => {
                            conn = http::Conn::open(addr).expect("reconnect");
                            0
                        }
                    };
                    if measuring.load(Ordering::Relaxed) {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        *statuses.entry(status).or_insert(0usize) += 1;
                    }
                }
                (lat, statuses)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.warmup));
    let rss_warm = rss_mib();
    let cpu0 = cpu_seconds();
    measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let rss_end = rss_mib();
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for h in handles {
        let (l, s) = h.join().expect("client");
        lat.extend(l);
        for (k, v) in s {
            *statuses.entry(k).or_insert(0) += v;
        }
    }
    lat.sort_by(f64::total_cmp);
    (lat, statuses, elapsed, rss_warm, rss_end, cpu)
}

fn report(
    what: &str,
    lat: &[f64],
    statuses: &std::collections::BTreeMap<u16, usize>,
    secs: f64,
    rss: (f64, f64),
    cpu: f64,
) -> f64 {
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let ok = statuses.get(&200).copied().unwrap_or(0);
    let qps = ok as f64 / secs;
    println!(
        "{what}: {qps:.1} queries/s answered 200, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, statuses {statuses:?}, RSS {:.0} MiB after warm-up, {:.0} MiB at the end, {:.2} CPU ms per query ({:.2} cores busy)",
        q(0.5),
        q(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        rss.0,
        rss.1,
        cpu * 1e3 / ok.max(1) as f64,
        cpu / secs
    );
    qps
}

fn image_mode(o: &Opts) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut paths = Vec::new();
    for i in 0..o.images {
        let (w, h) = (rng.gen_range(320..640u32), rng.gen_range(240..480u32));
        let base = [rng.r#gen::<u8>(), rng.r#gen::<u8>(), rng.r#gen::<u8>()];
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                base[0].wrapping_add((x / 7) as u8),
                base[1].wrapping_add((y / 5) as u8),
                base[2] ^ ((x ^ y) as u8),
            ])
        });
        let p = root.join(format!("I{i:05}.jpg"));
        img.save(&p).expect("save");
        paths.push(p);
    }
    let model = GridMeanEmbedder::new(PreprocessSpec::clip(), 2);
    let mut v =
        embed_core::embed_paths(&model, &paths, 32, &DecodeOptions::default()).expect("embed");
    embed_core::l2_normalize_rows(&mut v);
    let dir = tmp.path().join("tiny");
    let rows: Vec<ImageRow> = paths
        .iter()
        .map(|p| ImageRow {
            image_path: p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            id: p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            width: 0,
            height: 0,
        })
        .collect();
    let mut w =
        CollectionWriter::create(&dir, info(&model, model.dim(), IndexSpec::Flat)).expect("create");
    w.push_batch(&rows, v.as_slice().expect("rows"))
        .expect("push");
    w.finish().expect("finish");
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();

    // The same work in-process: decode + preprocess on every core, the model in batches of 32,
    // one search per image.
    let coll = embed_collection::Collection::open(&dir).expect("open");
    let spec = model.preprocess_spec().clone();
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let mut done = 0usize;
    while t.elapsed().as_secs_f64() < o.seconds.min(10.0) {
        use rayon::prelude::*;
        for chunk in files.chunks(32) {
            let pixels: Vec<_> = chunk
                .par_iter()
                .map(|b| {
                    let opts = DecodeOptions {
                        window_for: Some(spec.geometry()),
                        ..DecodeOptions::default()
                    };
                    spec.preprocess(&embed_core::decode_bytes(b, &opts).expect("decode"))
                        .expect("preprocess")
                })
                .collect();
            let views: Vec<_> = pixels.iter().map(|p| p.view()).collect();
            let batch =
                embed_core::ndarray::stack(embed_core::ndarray::Axis(0), &views).expect("stack");
            let out = model.embed_batch(batch.view()).expect("embed");
            for r in out.rows() {
                let hits = coll.search(r.as_slice().expect("row"), 10).expect("search");
                std::hint::black_box(hits);
            }
            done += chunk.len();
        }
    }
    let direct = done as f64 / t.elapsed().as_secs_f64();
    let direct_cpu = (cpu_seconds() - cpu0) * 1e3 / done.max(1) as f64;
    println!(
        "image, in-process (decode + preprocess on all cores, batches of 32, search): {direct:.1} images/s, {direct_cpu:.2} CPU ms per image"
    );
    drop(coll);

    let config = ServeConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        handle_signals: false,
        ..ServeConfig::default()
    };
    let spec = CollectionSpec::new(
        &dir,
        Box::new(|| Ok(Box::new(GridMeanEmbedder::new(PreprocessSpec::clip(), 2)) as _)),
    )
    .expect("spec")
    .with_image_root(&root);
    let server = Server::start(config, vec![spec]).expect("start");
    let b64 = base64::engine::general_purpose::STANDARD;
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .map(|f| {
            serde_json::json!({
        "image": b64.encode(f), "modality": "image", "num_images": 10, "indice_name": "tiny",
    }).to_string().into_bytes()
        })
        .collect();
    let (lat, st, secs, r0, r1, cpu) = drive(server.local_addr(), o, Arc::new(bodies));
    let qps = report(
        &format!("image queries over HTTP, {} clients", o.clients),
        &lat,
        &st,
        secs,
        (r0, r1),
        cpu,
    );
    let ok = st.get(&200).copied().unwrap_or(0).max(1) as f64;
    println!(
        "HTTP / in-process: {:.2} by wall-clock rate, {:.2} by queries per CPU-second",
        qps / direct,
        direct_cpu / (cpu * 1e3 / ok)
    );
    let m = http::get(server.local_addr(), "/metrics").text();
    for l in m.lines().filter(|l| {
        l.starts_with("image_sim_embed_batch_size_sum")
            || l.starts_with("image_sim_embed_batch_size_count")
    }) {
        println!("  {l}");
    }
    server.shutdown().expect("shutdown");
}

fn build_large(dir: &Path, rows: usize, dim: usize) {
    let model = GridMeanEmbedder::new(PreprocessSpec::clip(), 16);
    let t = Instant::now();
    let mut w = CollectionWriter::create(dir, info(&model, dim, IndexSpec::hnsw_default()))
        .expect("create");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let centres: Vec<Vec<f32>> = (0..256)
        .map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0f32)).collect())
        .collect();
    let chunk = 10_000;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let mut v = Vec::with_capacity(n * dim);
        let mut meta = Vec::with_capacity(n);
        for i in 0..n {
            let c = &centres[rng.gen_range(0..centres.len())];
            v.extend(c.iter().map(|x| x + rng.gen_range(-0.6..0.6f32)));
            meta.push(ImageRow {
                image_path: format!("v/{:08}.jpg", done + i),
                id: format!("V{:08}", done + i),
                width: 0,
                height: 0,
            });
        }
        w.push_batch(&meta, &v).expect("push");
        done += n;
        eprintln!("pushed {done}/{rows} ({:.0} s)", t.elapsed().as_secs_f64());
    }
    w.finish().expect("finish");
    println!(
        "built {rows} x {dim} HNSW collection in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

fn embedding_mode(o: &Opts) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = match &o.keep {
        Some(d) => d.clone(),
        None => tmp.path().join("large"),
    };
    if !dir.join("collection.json").exists() {
        build_large(&dir, o.rows, o.dim);
    }
    let t = Instant::now();
    let coll_rows;
    let dim;
    {
        let c = embed_collection::Collection::open_with(
            &dir,
            embed_collection::OpenOptions {
                verify: embed_collection::Verify::Quick,
                ..Default::default()
            },
        )
        .expect("open");
        coll_rows = c.len();
        dim = c.manifest().dim;
    }
    println!(
        "collection {}: {coll_rows} x {dim} (opened in {:.1} s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    let config = ServeConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        handle_signals: false,
        verify: embed_collection::Verify::Quick,
        ..ServeConfig::default()
    };
    let mut spec = CollectionSpec::new(
        &dir,
        Box::new(|| Ok(Box::new(GridMeanEmbedder::new(PreprocessSpec::clip(), 16)) as _)),
    )
    .expect("spec");
    spec.ef_search = o.ef_search;
    let name = spec.name.clone();
    let server = Server::start(config, vec![spec]).expect("start");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let bodies: Vec<Vec<u8>> = (0..1024).map(|_| {
        let q: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0f32)).collect();
        serde_json::json!({"embedding_input": q, "modality": "image", "num_images": 10, "indice_name": name}).to_string().into_bytes()
    }).collect();
    let (lat, st, secs, r0, r1, cpu) = drive(server.local_addr(), o, Arc::new(bodies));
    let rate = o.rate.map_or("closed loop".to_string(), |r| {
        format!("offered {r} queries/s")
    });
    report(
        &format!(
            "embedding_input queries, {coll_rows} x {dim} HNSW, {} clients, {rate}",
            o.clients
        ),
        &lat,
        &st,
        secs,
        (r0, r1),
        cpu,
    );
    server.shutdown().expect("shutdown");
}

fn main() {
    let o = parse();
    println!(
        "{} CPUs, {} clients, {} s after {} s warm-up",
        std::thread::available_parallelism().map_or(0, usize::from),
        o.clients,
        o.seconds,
        o.warmup
    );
    if o.mode == "image" || o.mode == "both" {
        image_mode(&o);
    }
    if o.mode == "embedding" || o.mode == "both" {
        embedding_mode(&o);
    }
}
