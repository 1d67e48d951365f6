//! `disc21-eval embed` and `merge` end to end, with the binary's deterministic test embedder:
//! outputs and their layout, no clobbering, shards joined by `merge` equal an unsharded run,
//! and SIGKILL at random moments followed by restarts loses nothing and redoes only the
//! unfinished chunks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_disc21-eval");

/// `n` small PNG images plus one unreadable file.
fn make_images(dir: &Path, n: usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for i in 0..n {
        let (w, h) = (rng.gen_range(20..70u32), rng.gen_range(20..70u32));
        let s = rng.r#gen::<u8>();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([s.wrapping_add(x as u8), (y * 3) as u8, (x * y) as u8])
        });
        img.save_with_format(dir.join(format!("R{i:06}.png")), image::ImageFormat::Png)
            .unwrap();
    }
    std::fs::write(dir.join("R000003b.jpg"), b"not a jpeg").unwrap();
}

fn embed(images: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["embed", "--test-model", "2", "--images"])
        .arg(images)
        .arg("--out")
        .arg(out)
        .args(["--workers", "2", "--batch-size", "3"])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "command failed: {err}");
    err
}

fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    out.with_file_name(format!(
        "{}.{suffix}",
        out.file_stem().unwrap().to_string_lossy()
    ))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn writes_outputs_and_never_clobbers() {
    let images = tempfile::tempdir().unwrap();
    make_images(images.path(), 10);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("emb.npy");
    ok(&embed(images.path(), &out, &[]));
    let a = embed_core::npy::read_f32_file(&out).unwrap();
    assert_eq!(a.shape(), &[10, 12]);
    for row in a.outer_iter() {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "row norm {n}");
    }
    let ids = String::from_utf8(read(&sidecar(&out, "ids.txt"))).unwrap();
    let want: Vec<String> = (0..10).map(|i| format!("R{i:06}")).collect();
    assert_eq!(ids.lines().collect::<Vec<_>>(), want);
    let skipped = String::from_utf8(read(&sidecar(&out, "skipped.csv"))).unwrap();
    let lines: Vec<&str> = skipped.lines().collect();
    assert_eq!(lines.len(), 2, "{skipped}");
    assert_eq!(lines[0], "path,reason");
    assert!(lines[1].contains("R000003b.jpg,"), "{skipped}");
    assert!(!sidecar(&out, "cache").exists(), "cache left behind");
    let before = read(&out);

    let again = embed(images.path(), &out, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    ok(&embed(images.path(), &out, &["--force", "--no-normalize"]));
    let raw = embed_core::npy::read_f32_file(&out).unwrap();
    assert_ne!(read(&out), before);
    assert_eq!(raw.shape(), &[10, 12]);

    let strict = embed(images.path(), &out_dir.path().join("s.npy"), &["--strict"]);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("R000003b.jpg"));
}

/// A run killed after writing its sidecars but before the `.npy` (written last) leaves them
/// behind; running the same command again replaces them (seen: a SIGKILL in the test below
/// landed there and the rerun refused to start). An `--ids` file named explicitly still needs
/// `--force`.
#[test]
fn sidecars_without_the_npy_are_an_unfinished_run_and_get_replaced() {
    let images = tempfile::tempdir().unwrap();
    make_images(images.path(), 10); // 1 unreadable of 11: within the default 0.1 rate
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.npy");
    ok(&embed(images.path(), &reference, &[]));

    let out = dir.path().join("emb.npy");
    for suffix in ["ids.txt", "skipped.csv", "meta.json"] {
        std::fs::write(sidecar(&out, suffix), "left by a killed run\n").unwrap();
    }
    let err = ok(&embed(images.path(), &out, &[]));
    assert!(err.contains("unfinished run"), "{err}");
    assert_eq!(read(&out), read(&reference));
    for suffix in ["ids.txt", "skipped.csv"] {
        assert_eq!(
            read(&sidecar(&out, suffix)),
            read(&sidecar(&reference, suffix))
        );
    }

    let named = dir.path().join("named_ids.txt");
    std::fs::write(&named, "someone's file\n").unwrap();
    let refused = embed(
        images.path(),
        &dir.path().join("other.npy"),
        &["--ids", named.to_str().unwrap()],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(read(&named), b"someone's file\n");
}

#[test]
fn shards_merge_to_the_unsharded_output() {
    let images = tempfile::tempdir().unwrap();
    make_images(images.path(), 14);
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.npy");
    ok(&embed(images.path(), &whole, &[]));
    let mut parts = Vec::new();
    for i in [2, 0, 1] {
        let p = dir.path().join(format!("part{i}.npy"));
        // One shard holds the bad file: 1 of 5 images.
        ok(&embed(
            images.path(),
            &p,
            &["--shard", &format!("{i}/3"), "--max-failure-rate", "0.25"],
        ));
        parts.push(p);
    }
    let merged = dir.path().join("merged.npy");
    let m = Command::new(BIN)
        .arg("merge")
        .args(&parts)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    ok(&m);
    assert_eq!(read(&merged), read(&whole));
    assert_eq!(
        read(&sidecar(&merged, "ids.txt")),
        read(&sidecar(&whole, "ids.txt"))
    );
    assert_eq!(
        read(&sidecar(&merged, "skipped.csv")),
        read(&sidecar(&whole, "skipped.csv"))
    );
    // A missing shard is an error.
    let bad = Command::new(BIN)
        .arg("merge")
        .args(&parts[..2])
        .arg("--out")
        .arg(dir.path().join("bad.npy"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let seed: u64 = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("KILL_TEST_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let images = tempfile::tempdir().unwrap();
    make_images(images.path(), 47); // 48 entries: 12 chunks of 4
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.npy");
    let slow = ["--chunk-size", "4", "--test-delay-ms", "60"];
    ok(&embed(images.path(), &reference, &slow));

    let out = dir.path().join("killed.npy");
    let cache = dir.path().join("cache");
    let args = |cmd: &mut Command| {
        cmd.args(["embed", "--test-model", "2", "--images"])
            .arg(images.path())
            .arg("--out")
            .arg(&out)
            .args(["--workers", "2", "--batch-size", "3", "--cache-dir"])
            .arg(&cache)
            .args(slow);
    };
    let mut kills = 0;
    for _ in 0..6 {
        let mut cmd = Command::new(BIN);
        args(&mut cmd);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1600)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if out.exists() {
            break;
        }
    }
    if !out.exists() {
        // A kill before the cache folder exists leaves none.
        let done: usize = std::fs::read_dir(&cache)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bin"))
            .count();
        let mut cmd = Command::new(BIN);
        args(&mut cmd);
        let err = ok(&cmd.output().unwrap());
        let computed: usize = err
            .split(" computed")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no count in: {err}"));
        eprintln!("{done} of 12 chunks were done before the last restart");
        assert_eq!(
            computed,
            48 - 4 * done,
            "redid finished chunks ({done} were done): {err}"
        );
    }
    eprintln!("{kills} kills");
    assert_eq!(read(&out), read(&reference));
    assert_eq!(
        read(&sidecar(&out, "ids.txt")),
        read(&sidecar(&reference, "ids.txt"))
    );
    assert_eq!(
        read(&sidecar(&out, "skipped.csv")),
        read(&sidecar(&reference, "skipped.csv"))
    );
}
