//! Reliability of saving: a save killed with SIGKILL at random moments
//! leaves the old or the new file, complete; a save that fails (file-size limit, so the write
//! fails like on a full disk) returns an error and leaves the previous file byte-for-byte
//! intact; threads search an index while another saves it.
//!
//! The child processes are this test binary run again with an environment variable naming the
//! role; the test functions check for it first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vecindex::{Error, FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

const ROLE: &str = "VECINDEX_RELIABILITY_ROLE";
const TARGET: &str = "VECINDEX_RELIABILITY_TARGET";

fn ids(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag}{i:06}")).collect()
}

/// Two distinguishable versions of a flat index, big enough (a few MB) that a save takes a
/// while and a kill can land in the middle of it.
fn version(which: u64) -> FlatIndex {
    let (n, d) = (24_000, 32);
    FlatIndex::from_vectors(
        d,
        Metric::InnerProduct,
        &ids(n, if which == 0 { "A" } else { "B" }),
        &common::xorshift_vectors(n, d, 100 + which),
    )
    .unwrap()
    .with_model_id(format!("version-{which}"))
}

fn is_version(index: &FlatIndex, which: u64) -> bool {
    let want = version(which);
    index.model_id() == want.model_id()
        && index.ids() == want.ids()
        && index.vectors() == want.vectors()
}

fn child(test: &str, role: &str, target: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(TARGET, target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn tmp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

#[test]
fn a_save_killed_at_random_moments_leaves_the_old_or_the_new_file() {
    if std::env::var(ROLE).as_deref() == Ok("saver") {
        // Child: save the two versions in turn until killed.
        let target = PathBuf::from(std::env::var(TARGET).unwrap());
        let versions = [version(0), version(1)];
        for i in 0.. {
            versions[i % 2].save(&target).unwrap();
        }
        return;
    }
    let seed = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (rerun with RELIABILITY_SEED={seed})");
    let mut s = seed | 1;
    let mut rand = move |max: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % max
    };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.vix");
    version(0).save(&target).unwrap();
    let test = "a_save_killed_at_random_moments_leaves_the_old_or_the_new_file";
    let (mut seen_a, mut seen_b) = (0, 0);
    let rounds = 12;
    for round in 0..rounds {
        let mut proc = child(test, "saver", &target).spawn().unwrap();
        // Let the child start up (tens of ms) and get into its saves, then kill it anywhere.
        let wait = 150 + rand(600);
        std::thread::sleep(Duration::from_millis(wait));
        proc.kill().unwrap(); // SIGKILL on Unix
        let status = proc.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the saver ended by itself"
        );
        let loaded = FlatIndex::load(&target)
            .unwrap_or_else(|e| panic!("round {round} (killed after {wait} ms): {e}"));
        if is_version(&loaded, 0) {
            seen_a += 1;
        } else if is_version(&loaded, 1) {
            seen_b += 1;
        } else {
            panic!("round {round}: the file is neither version");
        }
    }
    eprintln!(
        "{rounds} kills: version A found {seen_a} times, B {seen_b} times; \
         {} temporary file(s) left by killed saves",
        tmp_files(dir.path()).len()
    );
}

#[test]
fn a_save_that_fails_leaves_the_previous_file_intact() {
    if std::env::var(ROLE).as_deref() == Ok("limited") {
        // Child, run under a file-size limit: the save must fail with an I/O error.
        let target = PathBuf::from(std::env::var(TARGET).unwrap());
        match version(1).save(&target) {
            Err(Error::Io { source, .. }) => {
                eprintln!("save failed as expected: {source}");
                return;
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.vix");
    version(0).save(&target).unwrap();
    let before = std::fs::read(&target).unwrap();
    // A file-size limit (1024 blocks: 512 KiB or 1 MiB, by shell) makes every write past it fail with EFBIG (SIGXFSZ
    // ignored), as a full disk fails with ENOSPC. The old file is smaller than the new one
    // and is never rewritten, so the limit does not touch it.
    let test = "a_save_that_fails_leaves_the_previous_file_intact";
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024 && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, "limited")
        .env(TARGET, &target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(stderr.contains("save failed as expected"), "{stderr}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        before,
        "the previous file changed"
    );
    assert!(is_version(&FlatIndex::load(&target).unwrap(), 0));
    assert_eq!(tmp_files(dir.path()), Vec::<String>::new());

    // Saving into a folder that does not exist is an error too, and creates nothing.
    let missing = dir.path().join("no/such/dir/index.vix");
    assert!(matches!(version(0).save(&missing), Err(Error::Io { .. })));
}

#[test]
fn a_save_whose_rename_fails_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a non-empty directory: writing the temporary file works, the rename fails.
    let target = dir.path().join("index.vix");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    assert!(matches!(version(0).save(&target), Err(Error::Io { .. })));
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"x");
    assert_eq!(tmp_files(dir.path()), Vec::<String>::new());
}

#[test]
fn threads_search_while_another_saves_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (3000, 16);
    let data = common::xorshift_vectors(n, d, 9);
    let flat = Arc::new(FlatIndex::from_vectors(d, Metric::L2, &ids(n, "R"), &data).unwrap());
    let hnsw = Arc::new(
        HnswIndex::build(
            d,
            Metric::L2,
            HnswParams {
                m: 8,
                ef_construction: 40,
                ef_search: 32,
                seed: 3,
            },
            &ids(n, "R"),
            &data,
        )
        .unwrap(),
    );
    let queries = common::xorshift_vectors(20, d, 10);
    let want_flat = flat.search(&queries, 5).unwrap();
    let want_hnsw = hnsw.search(&queries, 5).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let (flat, hnsw, queries) = (flat.clone(), hnsw.clone(), &queries);
            let (want_flat, want_hnsw) = (&want_flat, &want_hnsw);
            scope.spawn(move || {
                let mut rounds = 0;
                while Instant::now() < deadline || rounds < 5 {
                    assert_eq!(&flat.search(queries, 5).unwrap(), want_flat, "thread {t}");
                    assert_eq!(&hnsw.search(queries, 5).unwrap(), want_hnsw, "thread {t}");
                    rounds += 1;
                }
            });
        }
        let (flat, hnsw) = (flat.clone(), hnsw.clone());
        let (fp, hp) = (dir.path().join("f.vix"), dir.path().join("h.vix"));
        let (want_flat, want_hnsw, queries) = (&want_flat, &want_hnsw, &queries);
        scope.spawn(move || {
            let mut saves = 0;
            while Instant::now() < deadline || saves < 3 {
                flat.save(&fp).unwrap();
                hnsw.save(&hp).unwrap();
                // What was saved under concurrent searches loads and answers the same.
                assert_eq!(
                    &FlatIndex::load(&fp).unwrap().search(queries, 5).unwrap(),
                    want_flat
                );
                assert_eq!(
                    &HnswIndex::load(&hp).unwrap().search(queries, 5).unwrap(),
                    want_hnsw
                );
                saves += 1;
            }
            eprintln!("{saves} save/load rounds during the searches");
        });
    });
}
