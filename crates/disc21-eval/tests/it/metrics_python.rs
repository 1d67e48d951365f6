//! The metrics agree with an independent numpy implementation of the same formulas
//! (`tests/python/disc21_metrics_ref.py`) on random predictions with ties, empty ground-truth
//! rows, queries without predictions, predictions for unknown queries and multi-reference
//! queries. Also exercises `disc21-eval metrics --json` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use disc21_eval::metrics::{
    EvalOptions, GroundTruth, Metrics, Prediction, evaluate, read_ground_truth, read_predictions,
    write_ground_truth, write_predictions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let py = workspace_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "the Python reference needs {} (create it with scripts/setup.sh)",
        py.display()
    );
    py
}

/// A random case: `n_q` queries, some without a copy, a few with two references. Scores are
/// drawn from a coarse grid so that many tie, or, when `good`, favour the true references.
fn random_case(seed: u64, n_q: usize, n_ref: usize, good: bool) -> (GroundTruth, Vec<Prediction>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<(String, Option<String>)> = Vec::new();
    for q in 0..n_q {
        let qid = format!("Q{q:05}");
        match rng.gen_range(0..10) {
            0..=3 => rows.push((qid, None)),
            4 => {
                let a = rng.gen_range(0..n_ref);
                let b = (a + 1 + rng.gen_range(0..n_ref - 1)) % n_ref;
                rows.push((qid.clone(), Some(format!("R{a:06}"))));
                rows.push((qid, Some(format!("R{b:06}"))));
            }
            _ => rows.push((qid, Some(format!("R{:06}", rng.gen_range(0..n_ref))))),
        }
    }
    let gt = GroundTruth::from_rows(rows).unwrap();
    let mut preds = Vec::new();
    // Queries 0..n_q are in the ground truth; a few more are not.
    for q in 0..n_q + 5 {
        let qid = format!("Q{q:05}");
        if rng.gen_bool(0.15) {
            continue; // no prediction at all for this query
        }
        let k = rng.gen_range(1..=12).min(n_ref);
        let mut picked: Vec<usize> = Vec::new();
        // Often include a true reference.
        if let Some(r) = gt.references_of(&qid).first()
            && rng.gen_bool(0.7)
        {
            picked.push(r[1..].parse().unwrap());
        }
        while picked.len() < k {
            let r = rng.gen_range(0..n_ref);
            if !picked.contains(&r) {
                picked.push(r);
            }
        }
        for r in picked {
            let is_true = gt
                .references_of(&qid)
                .iter()
                .any(|t| *t == format!("R{r:06}"));
            let score = if good {
                // Scores rounded to 0.01 (ties remain) with true references mostly on top,
                // so the precision-0.9 operating point is reached.
                let u: f64 = rng.r#gen();
                let s = if is_true { 0.7 + 0.3 * u } else { 0.8 * u };
                (s * 100.0).round() / 100.0
            } else {
                match rng.gen_range(0..20) {
                    0 => f64::NEG_INFINITY,
                    _ => f64::from(rng.gen_range(0..8)) / 8.0 - 0.25,
                }
            };
            preds.push(Prediction::new(qid.clone(), format!("R{r:06}"), score));
        }
    }
    (gt, preds)
}

fn assert_close(name: &str, rust: f64, python: &serde_json::Value) {
    let py = python
        .as_f64()
        .unwrap_or_else(|| panic!("{name}: python gave {python}"));
    assert!(
        (rust - py).abs() <= 1e-12,
        "{name}: rust {rust} vs python {py}"
    );
}

fn compare(case: usize, m: &Metrics, py: &serde_json::Value) {
    let ctx = |f: &str| format!("case {case} {f}");
    for (name, v) in [
        ("accuracy", m.accuracy),
        ("top3_accuracy", m.top3_accuracy),
        ("topk_accuracy", m.topk_accuracy),
        ("micro_ap", m.micro_ap),
        ("recall_at_p90", m.recall_at_p90),
        ("recall_at_1", m.recall_at_1),
        ("recall_at_10", m.recall_at_10),
    ] {
        assert_close(&ctx(name), v, &py[name]);
    }
    match m.threshold_at_p90 {
        Some(t) => assert_close(&ctx("threshold_at_p90"), t, &py["threshold_at_p90"]),
        None => assert!(
            py["threshold_at_p90"].is_null(),
            "{}",
            ctx("threshold_at_p90")
        ),
    }
    for (name, v) in [
        ("n_queries", m.n_queries),
        ("n_gt_queries", m.n_gt_queries),
        ("n_gt_pairs", m.n_gt_pairs),
        ("n_predictions", m.n_predictions),
        ("n_true_predictions", m.n_true_predictions),
    ] {
        assert_eq!(py[name].as_u64(), Some(v as u64), "{}", ctx(name));
    }
}

#[test]
fn agrees_with_numpy_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    let mut ours = Vec::new();
    // Sizes from tiny (where every edge case bites) to a few thousand predictions.
    let sizes = [
        (3, 4, false),
        (10, 6, false),
        (40, 30, false),
        (200, 100, false),
        (500, 2000, false),
        (60, 8, false),
        (300, 400, true),
        (50, 20, true),
    ];
    for (case, &(n_q, n_ref, good)) in sizes.iter().enumerate() {
        let seed = 1000 + case as u64;
        let (gt, preds) = random_case(seed, n_q, n_ref, good);
        if gt.n_pairs() == 0 {
            continue;
        }
        let gt_path = dir.path().join(format!("gt{case}.csv"));
        let pred_path = dir.path().join(format!("pred{case}.csv"));
        write_ground_truth(&gt_path, &gt).unwrap();
        write_predictions(&pred_path, &preds).unwrap();
        // Score what was read back, as the Python side does.
        let gt2 = read_ground_truth(&gt_path).unwrap();
        let preds2 = read_predictions(&pred_path).unwrap();
        assert_eq!(gt2, gt);
        assert_eq!(preds2, preds);
        let m = evaluate(&gt2, &preds2, &EvalOptions::default()).unwrap();
        ours.push((case, seed, m));
        args.push(gt_path);
        args.push(pred_path);
    }
    assert!(ours.len() >= 7);
    let out = Command::new(python())
        .arg(workspace_root().join("tests/python/disc21_metrics_ref.py"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(py.len(), ours.len());
    let mut nontrivial = 0;
    let mut p90_reached = 0;
    for ((case, seed, m), p) in ours.iter().zip(&py) {
        eprintln!(
            "case {case} (seed {seed}): accuracy {:.4} µAP {:.4} recall@P90 {:.4} ({} predictions)",
            m.accuracy, m.micro_ap, m.recall_at_p90, m.n_predictions
        );
        compare(*case, m, p);
        if m.micro_ap > 0.0 && m.micro_ap < 1.0 && m.accuracy > 0.0 && m.accuracy < 1.0 {
            nontrivial += 1;
        }
        if m.threshold_at_p90.is_some() && m.recall_at_p90 > 0.0 && m.recall_at_p90 < 1.0 {
            p90_reached += 1;
        }
    }
    assert!(p90_reached >= 1, "no case has a non-trivial recall@P90");
    // The cases must exercise the formulas, not only the 0 and 1 corners.
    assert!(nontrivial >= 3, "only {nontrivial} non-trivial cases");
}

#[test]
fn cli_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.csv");
    let pred = dir.path().join("pred.csv");
    std::fs::write(&gt, "query_id,reference_id\r\nQ1,R1\r\nQ2,\r\nQ3,R3\r\n").unwrap();
    std::fs::write(
        &pred,
        "\u{feff}query_id,reference_id,score\nQ1,R1,0.9\nQ1,R2,0.9\nQ2,R1,0.8\nQ3,R3,0.7\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .args(["metrics", "--json", "--predictions"])
        .arg(&pred)
        .arg("--ground-truth")
        .arg(&gt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "accuracy",
        "top3_accuracy",
        "recall_at_10",
        "micro_ap",
        "recall_at_p90",
        "n_queries",
        "n_predictions",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    // Q1's true reference ties with a wrong one: pessimistic, so Q1 is a miss.
    assert_eq!(v["accuracy"], 0.5);
    assert_eq!(v["n_queries"], 2);
    assert_eq!(v["n_predictions"], 4);
    // Order: (Q1,R2) wrong, (Q1,R1) right, (Q2,R1) wrong, (Q3,R3) right → AP = .5·.5 + .5·.5.
    assert_eq!(v["micro_ap"], 0.5);

    // A duplicate prediction is an error naming the line.
    std::fs::write(&pred, "Q1,R1,0.9\nQ1,R1,0.8\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .args(["metrics", "--predictions"])
        .arg(&pred)
        .arg("--ground-truth")
        .arg(&gt)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("duplicate") && err.contains("line 2"), "{err}");
}
