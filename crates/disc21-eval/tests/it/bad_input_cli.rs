//! Bad input on the command line is a clear error (exit 1, what is wrong and where), never a
//! crash, a silently lost output or a file left half-written. Cases found by trying the CLI
//! the way a user could misuse it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

/// `args` split at spaces (none of these tests' arguments holds one).
fn sh(dir: &Path, args: &str) -> Output {
    cli(dir, &args.split_whitespace().collect::<Vec<_>>())
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Fails with exit code 1 and an error mentioning every one of `needles`.
fn fails_with(out: &Output, needles: &[&str]) {
    exits_with(out, 1, needles);
}

/// A usage error: exit code 2, the flag and what is wrong with its value named.
fn usage_error(out: &Output, needles: &[&str]) {
    exits_with(out, 2, needles);
}

fn exits_with(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "no `{n}` in: {stderr}");
    }
}

fn two_images(dir: &Path) -> std::path::PathBuf {
    let images = dir.join("imgs");
    std::fs::create_dir(&images).unwrap();
    for (i, name) in ["a.jpg", "b.png"].iter().enumerate() {
        image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 60 * i as u8])
        })
        .save(images.join(name))
        .unwrap();
    }
    images
}

#[test]
fn embed_refuses_clashing_outputs_ids_and_empty_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_images(dir);
    // --ids equal to --out: the ids would replace the embeddings.
    let out = sh(
        dir,
        "embed --test-model 4 --images imgs --out e.npy --ids e.npy",
    );
    fails_with(&out, &["e.npy", "two outputs"]);
    assert!(!dir.join("e.npy").exists());
    // Two files with one id.
    std::fs::copy(dir.join("imgs/a.jpg"), dir.join("imgs/b.jpg")).unwrap();
    let out = sh(dir, "embed --test-model 4 --images imgs --out e.npy");
    fails_with(&out, &["b.jpg", "b.png", "`b`"]);
    // An empty folder and an empty list.
    std::fs::create_dir(dir.join("empty")).unwrap();
    let out = sh(dir, "embed --test-model 4 --images empty --out e.npy");
    fails_with(&out, &["no files in empty"]);
    std::fs::write(dir.join("list.txt"), "# nothing\n").unwrap();
    let out = sh(dir, "embed --test-model 4 --list list.txt --out e.npy");
    fails_with(&out, &["list.txt names no file"]);
    // Absurd worker counts are refused, not a crash.
    std::fs::remove_file(dir.join("imgs/b.jpg")).unwrap();
    let out = sh(
        dir,
        "embed --test-model 4 --images imgs --out e.npy --workers 18446744073709551615",
    );
    usage_error(&out, &["--workers", "outside 0..=1024"]);
}

#[test]
fn search_index_and_metrics_catch_bad_ids_and_empty_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_images(dir);
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    ok(sh(dir, "embed --test-model 4 --images imgs --out e.npy"));
    ok(sh(
        dir,
        "index --embeddings e.npy --ids e.ids.txt --kind flat --out ix.faiss",
    ));
    // A query id twice: refused before anything is written.
    std::fs::write(dir.join("q.ids.txt"), "Q1\nQ1\n").unwrap();
    let out = sh(
        dir,
        "search --index ix.faiss --queries e.npy --query-ids q.ids.txt --k 2 --out p.csv",
    );
    fails_with(&out, &["q.ids.txt", "\"Q1\"", "lines 1 and 2"]);
    // A reference id the CSV cannot hold: an error, and no temporary file left behind.
    // (`index` refuses such ids; an ids sidecar written elsewhere can still hold one. Files
    // written elsewhere have no `.meta.json` checksum record, so it goes too.)
    ok(sh(
        dir,
        "index --embeddings e.npy --ids e.ids.txt --kind flat --out bad.faiss",
    ));
    std::fs::write(dir.join("bad.faiss.ids"), "a,b\nc\n").unwrap();
    std::fs::remove_file(dir.join("bad.faiss.meta.json")).unwrap();
    std::fs::write(dir.join("q.ids.txt"), "Q1\nQ2\n").unwrap();
    let out = sh(
        dir,
        "search --index bad.faiss --queries e.npy --query-ids q.ids.txt --k 2 --out p.csv",
    );
    fails_with(&out, &["\"a,b\""]);
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("p.csv"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Predictions whose ids match nothing in the ground truth: scored, with a warning.
    ok(sh(
        dir,
        "search --index ix.faiss --queries e.npy --query-ids q.ids.txt --k 2 --out p.csv",
    ));
    std::fs::write(dir.join("gt.csv"), "query_id,reference_id\nZ1,R1\nZ2,\n").unwrap();
    let out = sh(dir, "metrics --predictions p.csv --ground-truth gt.csv");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("none of the 4 predictions is a ground-truth pair")
    );
    // Outputs into folders that do not exist yet: created before the work starts (embed's
    // too when its cache is elsewhere: it used to fail only when writing, after the work).
    ok(sh(
        dir,
        "embed --test-model 4 --images imgs --out new/d/e.npy --cache-dir cache",
    ));
    ok(sh(
        dir,
        "index --embeddings e.npy --ids e.ids.txt --kind hnsw --out new/a/ix.vix",
    ));
    ok(sh(
        dir,
        "search --index new/a/ix.vix --queries e.npy --query-ids q.ids.txt --out new/b/p.csv",
    ));
    ok(sh(
        dir,
        "preprocess --model clip imgs/a.jpg --out new/c/px.npy",
    ));
    assert!(dir.join("new/b/p.csv").exists() && dir.join("new/c/px.npy").exists());
    // Nothing to index.
    embed_core::npy::write_f32_file(
        &dir.join("none.npy"),
        &ndarray::Array2::<f32>::zeros((0, 4)),
    )
    .unwrap();
    std::fs::write(dir.join("none.ids.txt"), "").unwrap();
    for kind in ["flat", "hnsw"] {
        let out = sh(
            dir,
            &format!("index --embeddings none.npy --ids none.ids.txt --kind {kind} --out n.idx"),
        );
        fails_with(&out, &["none.npy holds no vectors"]);
    }
}

/// Values out of range are usage errors (exit 2, as documented), before anything runs.
#[test]
fn out_of_range_values_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: &[(&str, &str)] = &[
        (
            "embed --images x --out y.npy --batch-size 0",
            "--batch-size",
        ),
        (
            "embed --images x --out y.npy --chunk-size 0",
            "--chunk-size",
        ),
        (
            "embed --images x --out y.npy --max-failure-rate 2",
            "--max-failure-rate",
        ),
        (
            "embed --images x --out y.npy --max-failure-rate nan",
            "--max-failure-rate",
        ),
        ("embed --images x --out y.npy --device tpu", "--device"),
        (
            "embed --images x --out y.npy --precision bogus",
            "--precision",
        ),
        ("index --embeddings e.npy --ids i.txt --out o --m 0", "--m"),
        (
            "search --index i --queries q.npy --query-ids q.txt --out p.csv --k 0",
            "--k",
        ),
        (
            "search --index i --queries q.npy --query-ids q.txt --out p.csv --ef 0",
            "--ef",
        ),
        (
            "metrics --predictions p.csv --ground-truth g.csv --top-k 0",
            "--top-k",
        ),
        ("generate --out g --references 0", "--references"),
        ("run --data d --out r --k 0", "--k"),
        ("bench --test-model 4 --model-iters 0", "--model-iters"),
    ];
    for (args, flag) in cases {
        usage_error(&sh(dir, args), &[flag]);
    }
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "a usage error wrote something"
    );
}

#[test]
fn generate_bench_and_run_refuse_out_of_range_options() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = sh(
        dir,
        "generate --out g --references 4 --queries 2 --min-side 100000 --max-side 100000",
    );
    usage_error(&out, &["--min-side", "outside 32..=8192"]);
    assert!(
        !dir.join("g/references").exists(),
        "generate left folders behind"
    );
    // --json into a folder that does not exist: refused before the benchmark runs.
    let out = sh(dir, "bench --test-model 4 --n-images 2 --json nodir/b.json");
    fails_with(&out, &["nodir/b.json", "no folder nodir"]);
    // run: k and top-k are checked, and a huge k is clamped to the references, not allocated.
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    ok(sh(
        dir,
        "generate --out d --references 6 --queries 4 --min-side 64 --max-side 96",
    ));
    let run = |extra: &str| {
        sh(
            dir,
            &format!(
                "run --data d --test-model 4 --models clip --force --gallery-queries 0 {extra}"
            ),
        )
    };
    usage_error(&run("--out r1 --top-k 0"), &["--top-k", "at least 1"]);
    fails_with(&run("--out r2 --k 3 --top-k 5"), &["--top-k, 5", "--k, 3"]);
    ok(run("--out r3 --k 1000000000"));
    // --force over a report of more models: their predictions do not linger in the new one.
    let run2 = |models: &str| {
        sh(
            dir,
            &format!(
                "run --data d --test-model 4 --models {models} --force --gallery-queries 0 --out r4"
            ),
        )
    };
    ok(run2("clip,dinov2"));
    assert!(dir.join("r4/predictions_dinov2.csv").exists());
    ok(run2("clip"));
    assert!(dir.join("r4/predictions_clip.csv").exists());
    assert!(
        !dir.join("r4/predictions_dinov2.csv").exists(),
        "stale predictions kept"
    );
}
