"""End-to-end check of `disc21-eval index` / `search` against faiss-cpu.

usage: vecindex_cli_check.py PATH/TO/disc21-eval WORKDIR
Builds random unit embeddings, runs index (flat ip, flat l2, hnsw) and search, and compares the
predictions CSV with faiss IndexFlatIP / IndexFlatL2 (and recall for HNSW). Also searches a FAISS
file written by Python (row numbers as ids). Exits non-zero on any mismatch.
"""
import csv
import os
import subprocess
import sys

import faiss
import numpy as np


def run(*args):
    subprocess.run(list(args), check=True)


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["query_id", "reference_id", "score"], rows[0]
    return rows[1:]


def main():
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    n, nq, d, k = 3000, 50, 64, 5
    centres = rng.normal(size=(30, d))
    refs = centres[rng.integers(0, 30, n)] + 0.3 * rng.normal(size=(n, d))
    refs = (refs / np.linalg.norm(refs, axis=1, keepdims=True)).astype("float32")
    qs = refs[:nq] + 0.05 * rng.normal(size=(nq, d)).astype("float32")
    qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype("float32")
    np.save(f"{work}/refs.npy", refs)
    np.save(f"{work}/qs.npy", qs)
    rids = [f"R{i:06d}" for i in range(n)]
    qids = [f"Q{i:05d}" for i in range(nq)]
    open(f"{work}/rids.txt", "w").write("\n".join(rids) + "\n")
    open(f"{work}/qids.txt", "w").write("\n".join(qids) + "\n")
    for metric, cls in [("ip", faiss.IndexFlatIP), ("l2", faiss.IndexFlatL2)]:
        out = f"{work}/flat_{metric}.faiss"
        run(exe, "index", "--embeddings", f"{work}/refs.npy", "--ids", f"{work}/rids.txt", "--kind", "flat",
            "--metric", metric, "--out", out, "--force")
        # The file loads in FAISS and answers like FAISS's own index.
        fi = faiss.read_index(out)
        ref = cls(d)
        ref.add(refs)
        D, I = ref.search(qs, k)
        D2, I2 = fi.search(qs, k)
        assert np.array_equal(I, I2), "faiss results differ on our file"
        pred = f"{work}/pred_{metric}.csv"
        run(exe, "search", "--index", out, "--queries", f"{work}/qs.npy", "--query-ids", f"{work}/qids.txt",
            "--k", str(k), "--out", pred, "--force")
        rows = read_csv(pred)
        assert len(rows) == nq * k, len(rows)
        for j, (qid, rid, score) in enumerate(rows):
            qi, rank = divmod(j, k)
            assert qid == qids[qi]
            want = D[qi, rank] if metric == "ip" else -D[qi, rank]
            assert abs(float(score) - want) < 1e-4, (qid, rank, score, want)
            # A different id is only acceptable as a tie, which the score check above covers.
        print(f"flat {metric}: {len(rows)} rows match faiss")
    # A FAISS file written by Python, no sidecar: row numbers as ids.
    py = f"{work}/py.faiss"
    idx = faiss.IndexFlatIP(d)
    idx.add(refs)
    faiss.write_index(idx, py)
    if os.path.exists(py + ".ids"):
        os.remove(py + ".ids")
    pred = f"{work}/pred_py.csv"
    run(exe, "search", "--index", py, "--queries", f"{work}/qs.npy", "--query-ids", f"{work}/qids.txt",
        "--k", str(k), "--out", pred, "--force", "--mmap")
    D, I = idx.search(qs, k)
    rows = read_csv(pred)
    got = np.array([int(r[1]) for r in rows]).reshape(nq, k)
    assert (got == I).mean() > 0.99, (got == I).mean()
    print("python-written faiss file: row-number ids match")
    # HNSW.
    out = f"{work}/h.vix"
    run(exe, "index", "--embeddings", f"{work}/refs.npy", "--ids", f"{work}/rids.txt", "--kind", "hnsw",
        "--out", out, "--force")
    pred = f"{work}/pred_h.csv"
    run(exe, "search", "--index", out, "--queries", f"{work}/qs.npy", "--query-ids", f"{work}/qids.txt",
        "--k", str(k), "--out", pred, "--force")
    rows = read_csv(pred)
    found = {(r[0], r[1]) for r in rows}
    exact = {(qids[qi], rids[I[qi, j]]) for qi in range(nq) for j in range(k)}
    recall = len(found & exact) / len(exact)
    print(f"hnsw: recall@{k} = {recall:.3f}")
    assert recall >= 0.95
    # Refuses to overwrite without --force.
    r = subprocess.run([exe, "search", "--index", out, "--queries", f"{work}/qs.npy", "--query-ids",
                        f"{work}/qids.txt", "--k", "1", "--out", pred], capture_output=True)
    assert r.returncode != 0 and b"--force" in r.stderr, r.stderr
    print("ok")


if __name__ == "__main__":
    main()
