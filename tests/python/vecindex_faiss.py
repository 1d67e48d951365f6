"""FAISS side of vecindex's round-trip tests (raw little-endian f32/i64 files, no npy needed).

  search INDEX QUERIES.f32 D K OUT_PREFIX   -> OUT_PREFIX.dist.f32, OUT_PREFIX.ids.i64
  write ip|l2 VECTORS.f32 D OUT [IDS.i64]   -> a FAISS IndexFlat file (IndexIDMap when ids given)
  write-sq sq8|fp16 ip|l2 VECTORS.f32 D OUT  -> IndexScalarQuantizer trained on and holding VECTORS
  write-ivfpq ip|l2 VECTORS.f32 D NLIST M NPROBE OUT
                                            -> IndexIVFPQ (8-bit codes, by residual) trained on and
                                               holding VECTORS, nprobe stored in the file
  write-hnswsq sq8|fp16 ip|l2 VECTORS.f32 D M EF_CONSTRUCTION EF_SEARCH OUT
                                            -> IndexHNSWSQ trained on and holding VECTORS
  write-ivfsq sq8|fp16 ip|l2 VECTORS.f32 D NLIST NPROBE OUT
                                            -> IndexIVFScalarQuantizer, likewise
"""
import sys

import faiss
import numpy as np


def qtype(kind: str) -> int:
    return {"sq8": faiss.ScalarQuantizer.QT_8bit, "fp16": faiss.ScalarQuantizer.QT_fp16}[kind]


def metric_type(metric: str) -> int:
    return {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}[metric]


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
    elif cmd == "write-sq":
        kind, metric, v_path, d, out = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
        v = np.fromfile(v_path, dtype="<f4").reshape(-1, d)
        index = faiss.IndexScalarQuantizer(d, qtype(kind), metric_type(metric))
        index.train(v)
        index.add(v)
        faiss.write_index(index, out)
    elif cmd == "write-ivfpq":
        metric, v_path, d, nlist, m, nprobe, out = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]), sys.argv[8]
        v = np.fromfile(v_path, dtype="<f4").reshape(-1, d)
        quantizer = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, metric_type(metric))
        index.train(v)
        index.add(v)
        index.nprobe = nprobe
        faiss.write_index(index, out)
    elif cmd == "write-hnswsq":
        kind, metric, v_path = sys.argv[2], sys.argv[3], sys.argv[4]
        d, m, efc, efs = map(int, sys.argv[5:9])
        out = sys.argv[9]
        v = np.fromfile(v_path, dtype="<f4").reshape(-1, d)
        index = faiss.IndexHNSWSQ(d, qtype(kind), m, metric_type(metric))
        index.hnsw.efConstruction = efc
        index.train(v)
        index.add(v)
        index.hnsw.efSearch = efs
        faiss.write_index(index, out)
    elif cmd == "write-ivfsq":
        kind, metric, v_path, d, nlist, nprobe, out = sys.argv[2], sys.argv[3], sys.argv[4], *map(int, sys.argv[5:8]), sys.argv[8]
        v = np.fromfile(v_path, dtype="<f4").reshape(-1, d)
        quantizer = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, qtype(kind), metric_type(metric))
        index.train(v)
        index.add(v)
        index.nprobe = nprobe
        faiss.write_index(index, out)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
