//! The collection as clip-retrieval's ecosystem reads it: pyarrow and pandas read the
//! metadata, `faiss.read_index` opens `image.index`, embedding-reader (autofaiss's reader)
//! reads the shards in row order, and all of them find the neighbours the collection finds.
//! Runs `tests/python/collection_interop.py` with the project venv's Python (or
//! `INTEROP_PYTHON`); when
//! `AUTOFAISS_PYTHON` names a Python that has autofaiss (its pins, numpy < 2, cannot live in
//! the project venv), autofaiss's own Flat build is checked too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use embed_collection::{Collection, Dtype, IndexSpec};

const DIM: usize = 64;
const K: usize = 10;

/// The project venv's Python, or `INTEROP_PYTHON` (to try new pins in a throwaway venv).
fn venv_python() -> PathBuf {
    if let Ok(p) = std::env::var("INTEROP_PYTHON") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: create the project venv (scripts/setup.sh)",
        p.display()
    );
    p
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/collection_interop.py")
}

/// Writes the queries and the collection's own answers, runs the script, returns its output.
fn check(python: &Path, coll: &Path, extra: &[&str]) -> String {
    let c = Collection::open(coll).unwrap();
    let queries = vectors(25, DIM, 1234);
    let hits = c.search_batch(&queries, K).unwrap();
    let work = tempfile::tempdir().unwrap();
    let q = work.path().join("queries.f32");
    let e = work.path().join("expected.i64");
    std::fs::write(
        &q,
        queries
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let expected: Vec<u8> = hits
        .iter()
        .flat_map(|list| list.iter().flat_map(|h| (h.row as i64).to_le_bytes()))
        .collect();
    std::fs::write(&e, expected).unwrap();
    let out = Command::new(python)
        .arg(script())
        .args([coll, &q, &e].map(|p| p.to_str().unwrap()))
        .arg(K.to_string())
        .args(extra)
        .output()
        .expect("run python");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn python_tools_read_the_collection_and_find_the_same_neighbours() {
    for dtype in [Dtype::F32, Dtype::F16] {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), info(DIM, IndexSpec::Flat, dtype), 1000, 77, 300);
        let out = check(&venv_python(), dir.path(), &[]);
        eprintln!("{dtype}:\n{out}");
        assert_eq!(out.matches("ok:").count(), 5, "{out}");
        if let Ok(py) = std::env::var("AUTOFAISS_PYTHON") {
            let out = check(Path::new(&py), dir.path(), &["--autofaiss"]);
            eprintln!("{dtype} (autofaiss):\n{out}");
            assert!(out.contains("ok: autofaiss"), "{out}");
        }
    }
}
