//! `index --kind` for every kind and `index --max-memory`: the kind chosen for a budget is
//! printed with its reason, and `search` opens every kind.

use std::path::Path;

use super::{cli, ok};

/// A float32 `.npy` of `rows × cols` values.
fn write_npy(path: &Path, rows: usize, cols: usize, values: &[f32]) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// `n` unit vectors of `d` around 30 centres (a fixed xorshift stream).
fn vectors(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..30 * d).map(|_| next()).collect();
    let mut out = Vec::with_capacity(n * d);
    for i in 0..n {
        let row: Vec<f32> = centres[(i % 30) * d..][..d]
            .iter()
            .map(|c| c + 0.2 * next())
            .collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(row.iter().map(|x| x / norm));
    }
    out
}

/// Writes `refs.npy`/`refs.txt` (`n` vectors of `d`) and `q.npy`/`q.txt` (the first `nq`
/// of them) in `dir`.
fn data_set(dir: &Path, n: usize, d: usize, nq: usize) {
    let refs = vectors(n, d, 1);
    write_npy(&dir.join("refs.npy"), n, d, &refs);
    let ids: String = (0..n).map(|i| format!("R{i:06}\n")).collect();
    std::fs::write(dir.join("refs.txt"), ids).unwrap();
    write_npy(&dir.join("q.npy"), nq, d, &refs[..nq * d]);
    let qids: String = (0..nq).map(|i| format!("Q{i}\n")).collect();
    std::fs::write(dir.join("q.txt"), qids).unwrap();
}

/// `image-sim index --out DIR/OUT EXTRA...` over `DIR/refs.npy`.
fn index(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let mut args: Vec<String> = [
        "index",
        "--embeddings",
        &p("refs.npy"),
        "--ids",
        &p("refs.txt"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--out".into(), p(out)]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&args)
}

/// `image-sim search` of `DIR/FILE` with `DIR/q.npy`, k 5: checks the CSV's row count and,
/// where `self_rank` says so, that each query (a copy of a reference) finds its reference at
/// or above that rank. Returns standard error.
fn search(dir: &Path, file: &str, nq: usize, self_rank: Option<usize>, extra: &[&str]) -> String {
    let k = 5;
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let csv = format!("{file}.csv");
    let mut args = vec![
        "search".to_string(),
        "--index".into(),
        p(file),
        "--queries".into(),
        p("q.npy"),
        "--query-ids".into(),
        p("q.txt"),
        "--k".into(),
        k.to_string(),
        "--out".into(),
        p(&csv),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = ok(&cli(&args));
    let text = std::fs::read_to_string(p(&csv)).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), nq * k, "{file}");
    if let Some(rank) = self_rank {
        for i in 0..nq {
            let own = format!("Q{i},R{i:06},");
            assert!(
                rows[i * k..i * k + rank]
                    .iter()
                    .any(|r| r.starts_with(&own)),
                "{file}: Q{i} not in its first {rank}: {:?}",
                &rows[i * k..(i + 1) * k]
            );
        }
    }
    err
}

/// Every kind is built when asked for and searched; a budget below the set's exact index
/// picks IVF-PQ; too small a budget, or one the asked kind does not fit, is an error.
#[test]
fn every_kind_is_built_and_searched() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq) = (2000, 16, 10);
    data_set(dir.path(), n, d, nq);
    // Exact and f32 kinds find each copy first; 8-bit codes within the first 3 (quantised
    // neighbours in a tight cluster can outscore it); IVF-PQ (2 bytes a vector here) need not.
    for (kind, self_rank) in [
        ("flat", Some(1)),
        ("hnsw", Some(1)),
        ("sq8", Some(3)),
        ("f16", Some(1)),
        ("hnsw-sq8", Some(3)),
        ("ivfpq", None),
    ] {
        let file = format!("{kind}.index");
        let err = ok(&index(dir.path(), &file, &["--kind", kind]));
        assert!(
            err.contains(&format!("index kind: {kind} (asked for)")),
            "{err}"
        );
        let err = search(dir.path(), &file, nq, self_rank, &[]);
        assert!(
            err.contains(&format!(", {kind} index of {n} vectors")),
            "{err}"
        );
    }
    // Exact search fits 1M here (~0.26 MB with the ids): chosen. Below it (IVF-PQ ~0.18 MB).
    let err = ok(&index(
        dir.path(),
        "budget_1m.index",
        &["--max-memory", "1M"],
    ));
    assert!(err.contains("index kind: flat ("), "{err}");
    let err = ok(&index(
        dir.path(),
        "budget_200k.index",
        &["--max-memory", "200K"],
    ));
    assert!(err.contains("index kind: ivfpq ("), "{err}");
    search(
        dir.path(),
        "budget_200k.index",
        nq,
        None,
        &["--nprobe", "4"],
    );
    // Too small for any kind, or for the kind asked for: an error that says so.
    let out = index(dir.path(), "tiny.index", &["--max-memory", "10K"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the memory budget"));
    let out = index(
        dir.path(),
        "big.index",
        &["--kind", "hnsw", "--max-memory", "200K"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over --max-memory"));
    // A size that is not one: a usage error.
    let out = index(dir.path(), "x.index", &["--max-memory", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    // --nprobe only applies to IVF-PQ.
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let out = cli(&[
        "search",
        "--index",
        &p("hnsw.index"),
        "--queries",
        &p("q.npy"),
        "--query-ids",
        &p("q.txt"),
        "--nprobe",
        "4",
        "--out",
        &p("nprobe.csv"),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// Above 10,000 vectors a budget chooses HNSW over f32 rows when it fits, else over 8-bit
/// codes. (At d 8 and M 8: ~2.1 MB and ~1.5 MB with the ids.)
#[test]
fn a_budget_chooses_between_the_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d, nq) = (10_050, 8, 10);
    data_set(dir.path(), n, d, nq);
    for (budget, kind) in [("2.5M", "hnsw"), ("1.8M", "hnsw-sq8")] {
        let file = format!("budget_{budget}.index");
        let err = ok(&index(
            dir.path(),
            &file,
            &["--max-memory", budget, "--m", "8"],
        ));
        assert!(
            err.contains(&format!("index kind: {kind} (")),
            "{budget}: {err}"
        );
        search(dir.path(), &file, nq, None, &[]);
    }
}
