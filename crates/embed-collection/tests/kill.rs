//! A writer killed with SIGKILL at random moments: after each kill the collection opens as the
//! version before or the version being written, never a mix, and never fails to open.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use embed_collection::{Collection, CollectionWriter, Dtype, IndexSpec};

const ROLE: &str = "EMBED_COLLECTION_KILL_ROLE";
const TARGET: &str = "EMBED_COLLECTION_KILL_TARGET";
const DIM: usize = 64;

/// Version 0: 700 rows in 7 shards, written by `replace`; version 1: version 0 plus 150 rows
/// appended (2 more shards, the index file rewritten). The writer loop alternates them, so a
/// kill lands in replaces and appends alike.
fn write_version(dir: &Path, which: usize) {
    if which == 0 {
        build(dir, info(DIM, IndexSpec::Flat, Dtype::F32), 700, 0, 100);
        return;
    }
    let mut w = CollectionWriter::append(dir, info(DIM, IndexSpec::Flat, Dtype::F32)).unwrap();
    w.set_options(opts(100)).unwrap();
    w.push_batch(&rows(700, 150), &vectors(150, DIM, 1))
        .unwrap();
    w.finish().unwrap();
}

/// What the folder holds: (rows, first path, last path).
fn version_of(c: &Collection) -> (usize, String, String) {
    let r = c.rows();
    (
        r.len(),
        r[0].image_path.clone(),
        r[r.len() - 1].image_path.clone(),
    )
}

fn child(test: &str, target: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, "writer")
        .env(TARGET, target)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn a_writer_killed_at_random_moments_leaves_the_old_or_the_new_version() {
    if std::env::var(ROLE).as_deref() == Ok("writer") {
        let target = PathBuf::from(std::env::var(TARGET).unwrap());
        for i in 0.. {
            write_version(&target, i % 2);
        }
        return;
    }
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (rerun with KILL_SEED={seed})");
    let mut s = seed | 1;
    let mut rand = move |max: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % max
    };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("coll");
    write_version(&target, 0);
    let v0 = version_of(&Collection::open(&target).unwrap());
    write_version(&target, 1);
    let v1 = version_of(&Collection::open(&target).unwrap());
    let test = "a_writer_killed_at_random_moments_leaves_the_old_or_the_new_version";
    let mut seen = [0, 0];
    let mut interrupted = [0, 0];
    let rounds = 16;
    for round in 0..rounds {
        let mut proc = child(test, &target).spawn().unwrap();
        let wait = 100 + rand(900);
        std::thread::sleep(Duration::from_millis(wait));
        proc.kill().unwrap(); // SIGKILL on Unix
        assert!(
            !proc.wait().unwrap().success(),
            "round {round}: the writer ended by itself"
        );
        // What the kill interrupted: a decided commit (journal) or an undecided one (staging).
        if target.join(".commit.json").exists() {
            interrupted[0] += 1;
        } else if target.join(".staging").exists() {
            interrupted[1] += 1;
        }
        let c = Collection::open(&target)
            .unwrap_or_else(|e| panic!("round {round} (killed after {wait} ms): {e}"));
        let v = version_of(&c);
        if v == v0 {
            seen[0] += 1;
        } else if v == v1 {
            seen[1] += 1;
        } else {
            panic!("round {round} (killed after {wait} ms): neither version: {v:?}");
        }
    }
    eprintln!(
        "{rounds} kills: version 0 found {} times, version 1 {} times; {} kills after the \
         commit point (rolled forward on open), {} before it (staging left undecided)",
        seen[0], seen[1], interrupted[0], interrupted[1]
    );
}
