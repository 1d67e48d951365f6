"""Independent reference for the DISC21 metrics of `disc21_eval::metrics` (numpy only).

Usage: disc21_metrics_ref.py GT1.csv PRED1.csv [GT2.csv PRED2.csv ...]
Prints a JSON list with one object of metrics per (ground truth, predictions) pair.

Definitions (facebookresearch/isc2021 `isc/metrics.py`):
- predictions pooled, sorted by score descending, wrong ones first at equal score;
  precision_i = TP_i / i, recall_i = TP_i / #GT pairs, uAP = sum (recall_i - recall_{i-1}) precision_i;
- recall@P90 = max recall with precision >= 0.9 (0 and threshold None when never reached);
- recall@1/@10 per GT pair: rank = #(predictions of the query with score >= the true one's) - 1;
- the study's accuracy per query with a copy: rank = #(wrong predictions of the query with
  score >= its best true reference's score); top-k correct when rank < k.
"""

import json
import sys

import numpy as np


def read_rows(path):
    with open(path, encoding="utf-8-sig") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    if lines and lines[0].lower().startswith("query_id"):
        lines = lines[1:]
    return [line.split(",") for line in lines]


def evaluate(gt_path, pred_path, top_k=5):
    gt_queries = []
    gt_refs = {}
    for row in read_rows(gt_path):
        q, r = row[0], row[1]
        if q not in gt_refs:
            gt_queries.append(q)
            gt_refs[q] = []
        if r:
            gt_refs[q].append(r)
    n_pairs = sum(len(v) for v in gt_refs.values())

    rows = read_rows(pred_path)
    pq = [r[0] for r in rows]
    pr = [r[1] for r in rows]
    scores = np.array([float(r[2]) for r in rows], dtype=np.float64)
    assert len(set(zip(pq, pr))) == len(rows), "duplicate predictions"
    y = np.array([r in gt_refs.get(q, []) for q, r in zip(pq, pr)], dtype=bool)

    # lexsort: the last key is the primary one.
    order = np.lexsort((y.astype(np.int64), -scores))
    ys = y[order]
    ts = scores[order]
    tp = np.cumsum(ys)
    precision = tp / np.arange(1, len(ys) + 1)
    recall = tp / n_pairs
    prev = np.concatenate([[0.0], recall[:-1]])
    micro_ap = float(np.sum((recall - prev) * precision))

    ok = precision >= 0.9
    if ok.any():
        idx = np.flatnonzero(ok)[np.argmax(recall[ok])]
        recall_at_p90, threshold_at_p90 = float(recall[idx]), float(ts[idx])
    else:
        recall_at_p90, threshold_at_p90 = 0.0, None

    per_query = {}
    for i, q in enumerate(pq):
        per_query.setdefault(q, []).append(i)

    ranks_pair = []
    ranks_query = []
    for q in gt_queries:
        refs = gt_refs[q]
        if not refs:
            continue
        idx = np.array(per_query.get(q, []), dtype=np.int64)
        s = scores[idx] if len(idx) else np.zeros(0)
        names = [pr[i] for i in idx]
        truth = np.array([n in refs for n in names], dtype=bool)
        for r in refs:
            if r in names:
                sr = s[names.index(r)]
                ranks_pair.append(int((s >= sr).sum()) - 1)
            else:
                ranks_pair.append(1 << 40)
        if truth.any():
            best = s[truth].max()
            ranks_query.append(int(((s >= best) & ~truth).sum()))
        else:
            ranks_query.append(1 << 40)
    ranks_pair = np.array(ranks_pair)
    ranks_query = np.array(ranks_query)
    nq = len(ranks_query)

    return {
        "accuracy": float((ranks_query < 1).sum() / nq),
        "top3_accuracy": float((ranks_query < 3).sum() / nq),
        "topk_accuracy": float((ranks_query < top_k).sum() / nq),
        "micro_ap": micro_ap,
        "recall_at_p90": recall_at_p90,
        "threshold_at_p90": threshold_at_p90,
        "recall_at_1": float((ranks_pair < 1).sum() / n_pairs),
        "recall_at_10": float((ranks_pair < 10).sum() / n_pairs),
        "n_queries": nq,
        "n_gt_queries": len(gt_queries),
        "n_gt_pairs": n_pairs,
        "n_predictions": len(rows),
        "n_true_predictions": int(y.sum()),
    }


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        sys.exit(__doc__)
    out = [evaluate(argv[i], argv[i + 1]) for i in range(0, len(argv), 2)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
