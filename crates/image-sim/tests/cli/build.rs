//! `build`, `query`, `merge-shards` and `slurm-script` with the test embedder: the collection's
//! rows, skipped images and search answers, incremental builds, a different model refused, a
//! failure-rate stop that keeps its work, sharded builds equal to an unsharded one, and bad
//! input.

use std::path::Path;
use std::process::{Command, Output};

use embed_collection::Collection;

use crate::{BIN, make_images, ok};

/// Runs `image-sim ARGS` with `env` set and logs off.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    for k in ["SLURM_ARRAY_TASK_ID", "SLURM_PROCID", "SLURM_NTASKS"] {
        if !env.iter().any(|(n, _)| n == &k) {
            c.env_remove(k);
        }
    }
    c.output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

/// `build` with the test embedder (2×2 grid means) on the CPU.
fn build(images: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "build",
        "--test-model",
        "2",
        "--device",
        "cpu",
        "--batch-size",
        "2",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn vectors(c: &Collection) -> Vec<f32> {
    let mut v = Vec::new();
    c.for_each_vector_block(|_, b| {
        v.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    v
}

fn query_json(coll: &Path, images: &[&Path], k: &str) -> serde_json::Value {
    let mut args = vec!["query", s(coll)];
    args.extend(images.iter().map(|p| s(p)));
    args.extend(["--k", k, "--json", "--device", "cpu"]);
    let out = run(&args);
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn build_writes_rows_sizes_and_skipped_images_and_query_finds_each_image_first() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 6);
    std::fs::write(images.join("broken.jpg"), b"not an image").unwrap();
    let coll = dir.path().join("c");
    let err = ok(&build(&images, &coll, &["--max-failure-rate", "0.5"]));
    assert!(err.contains("6 rows"), "{err}");

    let c = Collection::open(&coll).unwrap();
    assert_eq!(c.len(), 6);
    for (i, r) in c.rows().iter().enumerate() {
        assert_eq!(r.image_path, format!("img{i:03}.png"));
        assert_eq!(r.id, format!("img{i:03}"));
        assert_eq!((r.width, r.height), (20 + 7 * i as u32, 50 - 3 * i as u32));
    }
    assert_eq!(c.skipped().len(), 1);
    assert_eq!(c.skipped()[0].path, "broken.jpg");
    assert!(!c.skipped()[0].reason.is_empty());
    let csv = std::fs::read_to_string(coll.join("skipped.csv")).unwrap();
    assert!(csv.contains("broken.jpg"), "{csv}");
    let json = std::fs::read_to_string(coll.join("collection.json")).unwrap();
    assert!(
        json.contains("test/grid-mean-2") && json.contains("broken.jpg"),
        "{json}"
    );

    let q2 = images.join("img002.png");
    let q5 = images.join("img005.png");
    let answers = query_json(&coll, &[&q2, &q5], "3");
    for (a, want) in answers
        .as_array()
        .unwrap()
        .iter()
        .zip(["img002.png", "img005.png"])
    {
        let hits = a["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0]["image_path"], want);
        assert!(
            (hits[0]["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-5,
            "{a}"
        );
        let sims: Vec<f64> = hits
            .iter()
            .map(|h| h["similarity"].as_f64().unwrap())
            .collect();
        assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");
    }
    // The table: a header and k rows per query.
    let table = run(&["query", s(&coll), s(&q2), "--k", "2", "--device", "cpu"]);
    ok(&table);
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "query\trank\tsimilarity\timage_path");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].ends_with("\t1\t1.000000\timg002.png"), "{text}");
}

#[test]
fn a_second_build_adds_only_the_new_images_and_equals_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 8);
    // First the first five, then all eight.
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    for i in 0..5 {
        let name = format!("img{i:03}.png");
        std::fs::copy(images.join(&name), first.join(&name)).unwrap();
    }
    let coll = dir.path().join("c");
    ok(&build(&first, &coll, &["--kind", "hnsw"]));
    let before = vectors(&Collection::open(&coll).unwrap());
    let err = ok(&build(&images, &coll, &[]));
    assert!(err.contains("3 added"), "{err}");
    assert!(
        err.contains("3 images in"),
        "only the new images are embedded: {err}"
    );
    let c = Collection::open(&coll).unwrap();
    assert_eq!(c.len(), 8);
    assert!(matches!(
        c.manifest().index,
        embed_collection::IndexSpec::Hnsw { .. }
    ));
    // The collection records the list it was last built from: the grown folder's.
    let source = c.manifest().source.clone().unwrap();
    assert_eq!(source.list_len, 8);
    let after = vectors(&c);
    assert_eq!(&after[..before.len()], &before[..], "old rows unchanged");
    // Nothing new: nothing embedded.
    let err = ok(&build(&images, &coll, &[]));
    assert!(err.contains("0 added"), "{err}");

    let fresh = dir.path().join("fresh");
    ok(&build(&images, &fresh, &["--kind", "hnsw"]));
    let f = Collection::open(&fresh).unwrap();
    assert_eq!(f.rows(), c.rows());
    assert_eq!(
        f.manifest().source,
        Some(source),
        "same list as the fresh build's"
    );
    assert_eq!(vectors(&f), after);
    let q = images.join("img006.png");
    assert_eq!(
        query_json(&coll, &[&q], "4"),
        query_json(&fresh, &[&q], "4")
    );
}

#[test]
fn a_different_model_is_refused_and_the_collection_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 4);
    let coll = dir.path().join("c");
    ok(&build(&images, &coll, &[]));
    let manifest = std::fs::read(coll.join("collection.json")).unwrap();
    make_images(&images, 6);
    let other = run(&[
        "build",
        "--test-model",
        "3",
        "--device",
        "cpu",
        "--images",
        s(&images),
        "--out",
        s(&coll),
    ]);
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("was built with test/grid-mean-2"), "{err}");
    assert!(err.contains("--replace"), "{err}");
    assert_eq!(
        std::fs::read(coll.join("collection.json")).unwrap(),
        manifest
    );
    assert_eq!(Collection::open(&coll).unwrap().len(), 4);
    // --replace starts over with the other model.
    let replaced = run(&[
        "build",
        "--test-model",
        "3",
        "--device",
        "cpu",
        "--images",
        s(&images),
        "--out",
        s(&coll),
        "--replace",
    ]);
    ok(&replaced);
    let c = Collection::open(&coll).unwrap();
    assert_eq!((c.len(), c.manifest().dim), (6, 27));
}

#[test]
fn a_failure_rate_stop_commits_the_work_so_far_and_a_rerun_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 6);
    for i in 0..4 {
        std::fs::write(images.join(format!("zz_bad{i}.jpg")), b"not an image").unwrap();
    }
    let coll = dir.path().join("c");
    let stopped = build(&images, &coll, &["--max-failure-rate", "0.1"]);
    assert_eq!(stopped.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert!(err.contains("--max-failure-rate"), "{err}");
    assert!(err.contains("skipped.csv"), "{err}");
    let c = Collection::open(&coll).unwrap();
    assert!(!c.skipped().is_empty());
    assert!(c.skipped().iter().all(|s| s.path.starts_with("zz_bad")));
    let csv = std::fs::read_to_string(coll.join("skipped.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + c.skipped().len(), "{csv}");
    let (rows, skipped) = (c.len(), c.skipped().len());
    drop(c);
    let err = ok(&build(&images, &coll, &["--max-failure-rate", "1"]));
    assert!(
        err.contains(&format!("{} images in", 10 - rows - skipped)),
        "only what the stopped run left is embedded: {err}"
    );
    let c = Collection::open(&coll).unwrap();
    assert_eq!((c.len(), c.skipped().len()), (6, 4));
}

#[test]
fn shard_builds_merge_into_the_unsharded_collection() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 7);
    std::fs::write(images.join("img003b.jpg"), b"broken").unwrap();
    let shards = dir.path().join("out/shards");
    // Shard 0 by hand, shard 1 as task 2 of an array that starts at 1.
    let rate = ["--max-failure-rate", "0.5"];
    ok(&build(
        &images,
        &shards.join("shard_0"),
        &["--shard", "0/2"],
    ));
    let auto = run_env(
        &[
            "build",
            "--test-model",
            "2",
            "--device",
            "cpu",
            "--images",
            s(&images),
            "--out",
            s(&shards.join("shard_1")),
            "--shard",
            "auto",
            rate[0],
            rate[1],
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    ok(&auto);
    // A requeued task rewrites its shard.
    ok(&build(
        &images,
        &shards.join("shard_0"),
        &["--shard", "0/2"],
    ));
    let merged = dir.path().join("out");
    ok(&run(&["merge-shards", s(&shards), "--out", s(&merged)]));
    let unsharded = dir.path().join("u");
    ok(&build(&images, &unsharded, &rate));
    let (m, u) = (
        Collection::open(&merged).unwrap(),
        Collection::open(&unsharded).unwrap(),
    );
    assert_eq!(m.rows(), u.rows());
    assert_eq!(m.skipped(), u.skipped());
    assert_eq!(vectors(&m), vectors(&u));
    let q = images.join("img004.png");
    assert_eq!(
        query_json(&merged, &[&q], "5"),
        query_json(&unsharded, &[&q], "5")
    );

    // A merge with a shard missing names it.
    std::fs::remove_dir_all(shards.join("shard_1")).unwrap();
    let missing = run(&[
        "merge-shards",
        s(&shards),
        "--out",
        s(&dir.path().join("m2")),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("missing shard(s) 1 of 2"), "{err}");
}

/// `--kind` takes the compressed kinds and `--max-memory` chooses one; either way the kind is
/// recorded in collection.json. A kind over the budget, and IVF-PQ on fewer images than it
/// trains on, are refused before anything is written.
#[test]
fn build_records_the_index_kind_given_or_chosen_for_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 8);

    let sq = dir.path().join("sq");
    ok(&build(&images, &sq, &["--kind", "hnsw-sq8"]));
    let c = Collection::open(&sq).unwrap();
    assert_eq!(c.manifest().index.kind(), vecindex::IndexType::HnswSq8);
    let json = std::fs::read_to_string(sq.join("collection.json")).unwrap();
    assert!(json.contains("\"kind\": \"hnsw-sq8\""), "{json}");
    let q = images.join("img003.png");
    let answers = query_json(&sq, &[&q], "1");
    assert_eq!(answers[0]["hits"][0]["image_path"], "img003.png");

    let chosen = dir.path().join("chosen");
    let err = ok(&build(&images, &chosen, &["--max-memory", "64M"]));
    assert!(err.contains("index kind: flat"), "{err}");
    let c = Collection::open(&chosen).unwrap();
    assert_eq!(c.manifest().index, embed_collection::IndexSpec::Flat);

    let over = dir.path().join("over");
    let out = build(&images, &over, &["--kind", "hnsw", "--max-memory", "1K"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("over --max-memory"), "{err}");
    assert!(!over.exists());

    let ivf = dir.path().join("ivf");
    let out = build(&images, &ivf, &["--kind", "ivfpq"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 256 vectors"), "{err}");
    assert!(!ivf.exists());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 2);
    let coll = dir.path().join("c");
    // --shard auto outside Slurm: a usage error, before anything is written.
    let auto = build(&images, &coll, &["--shard", "auto"]);
    assert_eq!(auto.status.code(), Some(2));
    let err = String::from_utf8_lossy(&auto.stderr);
    assert!(err.contains("not running under Slurm"), "{err}");
    assert!(!coll.exists());
    let embed_auto = run(&[
        "embed",
        "--test-model",
        "2",
        "--images",
        s(&images),
        "--out",
        s(&dir.path().join("e.npy")),
        "--shard",
        "auto",
    ]);
    assert_eq!(embed_auto.status.code(), Some(2));
    // No such folder.
    let missing = build(&dir.path().join("nope"), &coll, &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    // A query on a folder that holds no collection, and with an image that is not one.
    ok(&build(&images, &coll, &[]));
    let not_coll = run(&["query", s(&images), s(&images.join("img000.png"))]);
    assert_eq!(not_coll.status.code(), Some(1));
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"no").unwrap();
    let bad_q = run(&["query", s(&coll), s(&bad), "--device", "cpu"]);
    assert_eq!(bad_q.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_q.stderr).contains("bad.jpg"));
    // A damaged collection: a truncated shard is named.
    let npy = coll.join("img_emb/img_emb_00000.npy");
    let len = std::fs::metadata(&npy).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&npy)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    let damaged = run(&[
        "query",
        s(&coll),
        s(&images.join("img000.png")),
        "--device",
        "cpu",
    ]);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("img_emb_00000.npy"));
}

#[test]
fn slurm_script_asks_gpus_only_for_cuda_and_passes_build_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let script = |device: &str| {
        let out = run(&[
            "slurm-script",
            "--shards",
            "3",
            "--model",
            "dinov2",
            "--images",
            s(dir.path()),
            "--out",
            s(&dir.path().join("coll")),
            "--device",
            device,
            "--partition",
            "gpu",
            "--qos",
            "high",
            "--time",
            "01:00:00",
            "--",
            "--pooling",
            "cls",
        ]);
        ok(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let cuda = script("cuda");
    assert!(
        cuda.contains("--gres=gpu:1") && cuda.contains("--array=0-2"),
        "{cuda}"
    );
    assert!(
        cuda.contains("--qos=high") && cuda.contains("--partition=gpu"),
        "{cuda}"
    );
    assert!(cuda.contains("--pooling cls --shard auto"), "{cuda}");
    assert!(cuda.contains(" merge-shards "), "{cuda}");
    assert!(!script("cpu").contains("--gres"));
    let syntax = Command::new("bash")
        .args(["-n", "-c", &cuda])
        .status()
        .unwrap();
    assert!(syntax.success());
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_collection_or_the_new_one() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("im");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 4);
    let coll = dir.path().join("c");
    ok(&build(&images, &coll, &[]));
    make_images(&images, 12);
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        // Batches of 2 with 30 ms each: a kill lands before, during or after the commit
        // (start-up takes most of a second on a loaded machine).
        let mut child = Command::new(BIN)
            .args([
                "build",
                "--test-model",
                "2",
                "--test-delay-ms",
                "30",
                "--device",
                "cpu",
                "--batch-size",
                "2",
                "--images",
                s(&images),
                "--out",
                s(&coll),
            ])
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..2500)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let c = Collection::open(&coll).unwrap();
        assert!(
            c.len() == 4 || c.len() == 12,
            "{} rows (seed {seed})",
            c.len()
        );
        seen.insert(c.len());
        if c.len() == 12 {
            break;
        }
    }
    // Whatever the kills left, a last build completes the collection.
    ok(&build(&images, &coll, &[]));
    assert_eq!(Collection::open(&coll).unwrap().len(), 12);
    println!("states seen: {seen:?}");
}
