"""FAISS side of vecindex's round-trip tests (raw little-endian f32/i64 files, no npy needed).

  search INDEX QUERIES.f32 D K OUT_PREFIX   -> OUT_PREFIX.dist.f32, OUT_PREFIX.ids.i64
  write ip|l2 VECTORS.f32 D OUT [IDS.i64]   -> a FAISS IndexFlat file (IndexIDMap when ids given)
"""
import sys

import faiss
import numpy as np


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "search":
        index_path, q_path, d, k, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        index = faiss.read_index(index_path)
        q = np.fromfile(q_path, dtype="<f4").reshape(-1, d)
        dist, ids = index.search(q, k)
        dist.astype("<f4").tofile(out + ".dist.f32")
        ids.astype("<i8").tofile(out + ".ids.i64")
        print(type(index).__name__, index.ntotal, index.d, index.metric_type)
    elif cmd == "write":
        metric, v_path, d, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        v = np.fromfile(v_path, dtype="<f4").reshape(-1, d)
        index = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
        if len(sys.argv) > 6:
            ids = np.fromfile(sys.argv[6], dtype="<i8")
            index = faiss.IndexIDMap(index)
            index.add_with_ids(v, ids)
        else:
            index.add(v)
        faiss.write_index(index, out)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
