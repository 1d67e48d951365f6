"""FAISS / hnswlib side of the vecindex benchmarks (see scripts/bench_vecindex.sh).

  gen DIR --n N --nq Q --d D [--clusters C] [--seed S]   clustered unit vectors -> DIR/{base,queries}.npy
  flat [--n N --nq Q --d D --k K]                         faiss IndexFlatIP/L2 batched + single-query
  hnsw DIR [--m M --efc EFC --efs 16,32,... --reps R --no-hnswlib]
                                                          faiss IndexHNSWFlat and hnswlib: build, recall, QPS
                                                          (best of R timed passes, default 5, as the Rust bench)
  compressed DIR [--nlist 1024 --m 64 --nprobes 1,2,...,64 --rerank 10,100 --reps 3 --sq-reps 3
                  --no-flat-sq --search-only]
                                                          faiss IndexScalarQuantizer (8-bit, fp16; ip, l2) and
                                                          IndexIVFPQ (ip): timings, memory, recall; writes the
                                                          index files and results to DIR/faiss/ for the Rust side;
                                                          --rerank: IndexRefineFlat k_factors, a column pair each;
                                                          --search-only: IVF-PQ searches on the saved ivfpq.faiss
  hnsw-sq DIR [--m 32 --efc 200 --efs 16,...,256 --reps 3 --search-only --rerank 1]
                                                          faiss IndexHNSWFlat and IndexHNSWSQ (8-bit, ip): build,
                                                          serialised size, recall, QPS; indexes kept in DIR/faiss/
                                                          (--search-only reads them back instead of building);
                                                          --rerank 2,4: also IndexHNSWSQ inside IndexRefine
                                                          (exact f32 re-scoring of k x factor candidates)

Threads: FAISS_THREADS (default 2) for faiss (OpenMP) and hnswlib.
"""
import argparse
import os
import time

import faiss
import numpy as np

THREADS = int(os.environ.get("FAISS_THREADS", "2"))
faiss.omp_set_num_threads(THREADS)


def unit(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return (x / n).astype("float32")


def gen(a):
    rng = np.random.default_rng(a.seed)
    centres = unit(rng.standard_normal((a.clusters, a.d), dtype=np.float32))
    sigma = a.spread / np.sqrt(a.d)

    def draw(n):
        out = np.empty((n, a.d), dtype="float32")
        for s in range(0, n, 10000):
            m = min(10000, n - s)
            c = centres[rng.integers(0, a.clusters, m)]
            out[s:s + m] = unit(c + sigma * rng.standard_normal((m, a.d), dtype=np.float32))
        return out

    os.makedirs(a.dir, exist_ok=True)
    np.save(os.path.join(a.dir, "base.npy"), draw(a.n))
    np.save(os.path.join(a.dir, "queries.npy"), draw(a.nq))
    print(f"wrote {a.n} base + {a.nq} query unit vectors, d = {a.d}, {a.clusters} clusters, "
          f"noise norm ~ {a.spread}, seed {a.seed} -> {a.dir}")


def flat(a):
    rng = np.random.default_rng(1)
    x = unit(rng.uniform(-1, 1, (a.n, a.d)).astype("float32"))
    q = unit(rng.uniform(-1, 1, (a.nq, a.d)).astype("float32"))
    print(f"faiss {faiss.__version__} IndexFlat: n = {a.n}, nq = {a.nq}, d = {a.d}, k = {a.k}, threads = {THREADS}")
    print(f"| metric | batched {a.nq} queries (best of 3) | queries/s | GFLOP/s | single query (median of 100) |")
    print("|---|---|---|---|---|")
    for name, cls in [("ip", faiss.IndexFlatIP), ("l2", faiss.IndexFlatL2)]:
        index = cls(a.d)
        index.add(x)
        index.search(q[:8], a.k)
        best = min(timed(lambda: index.search(q, a.k)) for _ in range(3))
        lat = sorted(timed(lambda i=i: index.search(q[i:i + 1], a.k)) for i in range(100))
        gflops = 2 * a.nq * a.n * a.d / best / 1e9
        print(f"| {name} | {best:.3f} s | {a.nq / best:.0f} | {gflops:.0f} | {lat[50] * 1e3:.2f} ms |")


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def load_set(directory):
    """The base and query vectors `gen` wrote to `directory`."""
    return (np.load(os.path.join(directory, "base.npy")),
            np.load(os.path.join(directory, "queries.npy")))


def exact_top(x, q, k):
    """Ids of the exact inner-product top k of each query (the recall reference)."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index.search(q, k)[1]


def faiss_dir(directory):
    """`directory`/faiss, created: where the FAISS side keeps its index files for ours."""
    out = os.path.join(directory, "faiss")
    os.makedirs(out, exist_ok=True)
    return out


def recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


def hnsw(a):
    x, q = load_set(a.dir)
    n, d = x.shape
    k = 10
    exact = exact_top(x, q, k)
    efs = [int(e) for e in a.efs.split(",")]

    index = faiss.IndexHNSWFlat(d, a.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = a.efc
    t = time.perf_counter()
    index.add(x)
    build = time.perf_counter() - t
    print(f"faiss {faiss.__version__} IndexHNSWFlat: n = {n}, d = {d}, nq = {len(q)}, M = {a.m}, "
          f"efConstruction = {a.efc}, threads = {THREADS}")
    print(f"build: {build:.1f} s")
    table(lambda ef: search_faiss(index, q, k, ef), efs, exact, len(q), a.reps)

    if a.no_hnswlib:
        return
    try:
        import hnswlib
    except ImportError:
        print("hnswlib not installed; skipped")
        return
    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=n, M=a.m, ef_construction=a.efc, random_seed=100)
    index.set_num_threads(THREADS)
    t = time.perf_counter()
    index.add_items(x, np.arange(n))
    build = time.perf_counter() - t
    print(f"hnswlib {hnswlib.__version__ if hasattr(hnswlib, '__version__') else ''}: M = {a.m}, "
          f"ef_construction = {a.efc}, threads = {THREADS}")
    print(f"build: {build:.1f} s")

    def search_hnswlib(ef):
        index.set_ef(max(ef, k))
        return index.knn_query(q, k=k)[0]

    table(search_hnswlib, efs, exact, len(q), a.reps)


def search_faiss(index, q, k, ef):
    index.hnsw.efSearch = ef
    return index.search(q, k)[1]


def table(search, efs, exact, nq, reps):
    print("| ef_search | recall@10 | queries/s | ms/query (1 thread equiv.) |")
    print("|---|---|---|---|")
    for ef in efs:
        search(ef)
        best, found = float("inf"), None
        for _ in range(reps):
            t = time.perf_counter()
            found = search(ef)
            best = min(best, time.perf_counter() - t)
        qps = nq / best
        print(f"| {ef} | {recall(found, exact):.4f} | {qps:.0f} | {1e3 * THREADS / qps:.3f} |")


def hnsw_sq(a):
    """FAISS IndexHNSWFlat and IndexHNSWSQ (8-bit, inner product): build, memory (the serialised
    size), recall@10 and queries/s per ef; the indexes are written to DIR/faiss for a second,
    search-only pass (`--search-only`) interleaved with ours."""
    x, q = load_set(a.dir)
    n, d = x.shape
    k = 10
    out = faiss_dir(a.dir)
    exact = exact_top(x, q, k)
    efs = [int(e) for e in a.efs.split(",")]
    sq_index = None
    for name in ["IndexHNSWFlat", "IndexHNSWSQ"]:
        path = os.path.join(out, f"{name}_M{a.m}_efc{a.efc}.faiss")
        if a.search_only:
            index = faiss.read_index(path)
            build = float("nan")
        else:
            if name == "IndexHNSWFlat":
                index = faiss.IndexHNSWFlat(d, a.m, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, a.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = a.efc
            t = time.perf_counter()
            index.train(x)
            index.add(x)
            build = time.perf_counter() - t
            faiss.write_index(index, path)
        mem = os.path.getsize(path)
        print(f"faiss {faiss.__version__} {name}: n = {n}, d = {d}, nq = {len(q)}, M = {a.m}, "
              f"efConstruction = {a.efc}, threads = {THREADS}; build {build:.1f} s; "
              f"serialised {mem / 1e6:.1f} MB")
        table(lambda ef: search_faiss(index, q, k, ef), efs, exact, len(q), a.reps)
        if name == "IndexHNSWSQ":
            sq_index = index
    # The re-ranked form of the 8-bit graph, as ours is measured: k x factor candidates from the
    # graph (FAISS raises efSearch to at least that), re-scored with the f32 rows.
    flat = None
    for factor in [int(f) for f in a.rerank.split(",") if int(f) > 1]:
        if flat is None:
            flat = faiss.IndexFlatIP(d)
            flat.add(x)
        refined = faiss.IndexRefine(sq_index, flat)
        refined.k_factor = factor
        print(f"IndexRefine(IndexHNSWSQ, IndexFlatIP), k_factor = {factor}:")

        def search(ef, refined=refined):
            sq_index.hnsw.efSearch = ef
            return refined.search(q, k)[1]

        table(search, efs, exact, len(q), a.reps)


def flat_sq(x, q, k, reps, out):
    """IndexScalarQuantizer 8-bit / fp16, ip / l2: build, batched search, files for the Rust side."""
    d = x.shape[1]
    print(f"\n| index | metric | train + add | batched search (best of {reps}) | queries/s |")
    print("|---|---|---|---|---|")
    for kname, qt in [("sq8", faiss.ScalarQuantizer.QT_8bit), ("fp16", faiss.ScalarQuantizer.QT_fp16)]:
        for mname, mt in [("ip", faiss.METRIC_INNER_PRODUCT), ("l2", faiss.METRIC_L2)]:
            index = faiss.IndexScalarQuantizer(d, qt, mt)
            t = time.perf_counter()
            index.train(x)
            index.add(x)
            build = time.perf_counter() - t
            best, ids = float("inf"), None
            for _ in range(reps):
                t = time.perf_counter()
                _, ids = index.search(q, k)
                best = min(best, time.perf_counter() - t)
            faiss.write_index(index, os.path.join(out, f"{kname}_{mname}.faiss"))
            ids.astype("<i8").tofile(os.path.join(out, f"{kname}_{mname}.I.i64"))
            print(f"| IndexScalarQuantizer {kname} | {mname} | {build:.2f} s | {best:.3f} s | {len(q) / best:.0f} |")


def compressed(a):
    x, q = load_set(a.dir)
    n, d = x.shape
    k = 10
    out = faiss_dir(a.dir)
    print(f"faiss {faiss.__version__} compressed: n = {n}, d = {d}, nq = {len(q)}, k = {k}, threads = {THREADS}")
    if not (a.no_flat_sq or a.search_only):
        flat_sq(x, q, k, a.sq_reps, out)

    exact = exact_top(x, q, k)
    if a.search_only:
        index = faiss.read_index(os.path.join(out, "ivfpq.faiss"))
        print(f"\nIndexIVFPQ read from {out}/ivfpq.faiss: nlist {index.nlist}, m {index.pq.M}")
    else:
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, a.nlist, a.m, 8, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        index.train(x)
        train = time.perf_counter() - t
        t = time.perf_counter()
        index.add(x)
        add = time.perf_counter() - t
        # Codes + 8-byte ids + coarse and PQ centroids + precomputed table (none for inner product).
        mem = n * (a.m + 8) + 4 * (a.nlist * d + d * 256) + 4 * index.precomputed_table.size()
        print(f"\nIndexIVFPQ IVF{a.nlist},PQ{a.m} ip: train {train:.2f} s, add {add:.2f} s (total {train + add:.2f} s); "
              f"memory {mem / 1e6:.1f} MB = {mem / (4 * n * d):.4f} x f32 ({4 * n * d / 1e6:.1f} MB)")
        faiss.write_index(index, os.path.join(out, "ivfpq.faiss"))
    refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(x))
    factors = [int(f) for f in a.rerank.split(",")]
    header = "".join(f" recall@10 IndexRefineFlat x{f} | queries/s |" for f in factors)
    print(f"| nprobe | recall@10 | queries/s |{header}")
    print("|---|---|---|" + "---|---|" * len(factors))
    for nprobe in [int(v) for v in a.nprobes.split(",")]:
        index.nprobe = nprobe
        row = [str(nprobe)]
        for idx, factor in [(index, None)] + [(refine, f) for f in factors]:
            if factor is not None:
                refine.k_factor = factor
            best, found = float("inf"), None
            for _ in range(a.reps):
                t = time.perf_counter()
                found = idx.search(q, k)[1]
                best = min(best, time.perf_counter() - t)
            row += [f"{recall(found, exact):.4f}", f"{len(q) / best:.0f}"]
        print("| " + " | ".join(row) + " |")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--n", type=int, default=100_000)
    g.add_argument("--nq", type=int, default=1000)
    g.add_argument("--d", type=int, default=768)
    g.add_argument("--clusters", type=int, default=1000)
    g.add_argument("--spread", type=float, default=0.75)
    g.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("flat")
    f.add_argument("--n", type=int, default=100_000)
    f.add_argument("--nq", type=int, default=1000)
    f.add_argument("--d", type=int, default=768)
    f.add_argument("--k", type=int, default=10)
    h = sub.add_parser("hnsw")
    h.add_argument("dir")
    h.add_argument("--m", type=int, default=32)
    h.add_argument("--efc", type=int, default=200)
    h.add_argument("--efs", default="16,32,64,128,256")
    h.add_argument("--reps", type=int, default=5)
    h.add_argument("--no-hnswlib", action="store_true")
    c = sub.add_parser("compressed")
    c.add_argument("dir")
    c.add_argument("--nlist", type=int, default=1024)
    c.add_argument("--m", type=int, default=64)
    c.add_argument("--nprobes", default="1,2,4,8,16,32,64")
    c.add_argument("--rerank", default="10")
    c.add_argument("--no-flat-sq", action="store_true")
    c.add_argument("--search-only", action="store_true")
    c.add_argument("--reps", type=int, default=3)
    c.add_argument("--sq-reps", type=int, default=3)
    s = sub.add_parser("hnsw-sq")
    s.add_argument("dir")
    s.add_argument("--m", type=int, default=32)
    s.add_argument("--efc", type=int, default=200)
    s.add_argument("--efs", default="16,32,64,128,256")
    s.add_argument("--reps", type=int, default=3)
    s.add_argument("--search-only", action="store_true")
    s.add_argument("--rerank", default="1")
    a = p.parse_args()
    {"gen": gen, "flat": flat, "hnsw": hnsw, "compressed": compressed, "hnsw-sq": hnsw_sq}[a.cmd](a)


if __name__ == "__main__":
    main()
