"""Reads an embed-collection folder with the tools people use on clip-retrieval's layout and
checks that they see what the collection says, and find the neighbours it finds.

    python collection_interop.py COLLECTION QUERIES EXPECTED K [--autofaiss]

QUERIES: raw little-endian float32, nq x dim (dim from collection.json). EXPECTED: raw int64,
nq x K, the rows the collection's own search returned. Checks:
  - pyarrow and pandas read metadata/ with the columns image_path, id, width, height and one
    row per vector;
  - faiss.read_index opens image.index and returns the same rows;
  - embedding-reader (the reader autofaiss uses) reads img_emb/ with metadata/ in the same
    order; an exact faiss index over what it reads returns the same rows;
  - with --autofaiss: autofaiss.build_index(index_key="Flat") over img_emb/ returns the same rows.
Prints one line per check; exits 1 on the first mismatch.
"""

import json
import os
import sys
import tempfile

import numpy as np


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def same_rows(name, got, expected, scores=None):
    got = np.asarray(got, dtype=np.int64)
    if got.shape != expected.shape:
        fail(f"{name}: shape {got.shape}, expected {expected.shape}")
    bad = np.argwhere(got != expected)
    if len(bad):
        q, r = bad[0]
        fail(f"{name}: query {q} rank {r}: row {got[q, r]}, collection says {expected[q, r]}")
    print(f"ok: {name} returns the collection's {expected.shape[1]} neighbours for {expected.shape[0]} queries")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    use_autofaiss = "--autofaiss" in sys.argv
    coll, queries_path, expected_path, k = args[0], args[1], args[2], int(args[3])
    with open(os.path.join(coll, "collection.json")) as f:
        manifest = json.load(f)
    dim, rows = manifest["dim"], manifest["rows"]
    queries = np.fromfile(queries_path, dtype="<f4").reshape(-1, dim)
    expected = np.fromfile(expected_path, dtype="<i8").reshape(len(queries), k)

    import faiss

    if not use_autofaiss:
        import pandas as pd
        import pyarrow.parquet as pq

        table = pq.read_table(os.path.join(coll, "metadata"))
        cols = set(table.column_names)
        if not {"image_path", "id", "width", "height"} <= cols:
            fail(f"pyarrow columns {sorted(cols)}")
        if table.num_rows != rows:
            fail(f"pyarrow reads {table.num_rows} rows, collection.json says {rows}")
        print(f"ok: pyarrow reads {table.num_rows} rows with columns {sorted(cols)}")
        df = pd.read_parquet(os.path.join(coll, "metadata"))
        if len(df) != rows or df["id"].dtype != object:
            fail(f"pandas reads {len(df)} rows, id dtype {df['id'].dtype}")
        # Row order across shards, as the files sort by name: a row's id is its position.
        parts = sorted(os.listdir(os.path.join(coll, "metadata")))
        ordered = pd.concat(
            [pd.read_parquet(os.path.join(coll, "metadata", p)) for p in parts], ignore_index=True
        )
        if list(ordered["image_path"]) != list(df["image_path"]):
            fail("pandas reads the shards in another order than their names sort")
        print(f"ok: pandas reads {len(df)} rows in shard-name order")

        index = faiss.read_index(os.path.join(coll, "image.index"))
        if index.ntotal != rows or index.d != dim:
            fail(f"faiss index has {index.ntotal} x {index.d}")
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        _, ids = index.search(np.ascontiguousarray(qn, dtype="float32"), k)
        same_rows("faiss.read_index(image.index)", ids, expected)

        from embedding_reader import EmbeddingReader

        reader = EmbeddingReader(
            embeddings_folder=os.path.join(coll, "img_emb"),
            metadata_folder=os.path.join(coll, "metadata"),
            meta_columns=["image_path", "id"],
            file_format="parquet_npy",
        )
        if reader.count != rows or reader.dimension != dim:
            fail(f"embedding-reader sees {reader.count} x {reader.dimension}")
        embs, metas = [], []
        for emb, meta in reader(batch_size=rows, start=0, end=rows, show_progress=False):
            embs.append(emb)
            metas.append(meta)
        emb = np.concatenate(embs)
        meta = pd.concat(metas, ignore_index=True)
        if list(meta["image_path"]) != list(df["image_path"]) or list(meta["i"]) != list(range(rows)):
            fail("embedding-reader pairs the vectors with other metadata rows")
        norms = np.linalg.norm(emb.astype("float64"), axis=1)
        if np.abs(norms - 1).max() > 2e-3:
            fail(f"vectors are not unit length (max deviation {np.abs(norms - 1).max()})")
        flat = faiss.IndexFlatIP(dim)
        flat.add(np.ascontiguousarray(emb, dtype="float32"))
        _, ids = flat.search(np.ascontiguousarray(qn, dtype="float32"), k)
        same_rows("embedding-reader + faiss.IndexFlatIP", ids, expected)
        print(f"ok: embedding-reader reads {reader.count} x {reader.dimension} ({reader.byte_per_item // dim}-byte values) with metadata in row order")
    else:
        from autofaiss import build_index

        with tempfile.TemporaryDirectory() as tmp:
            index, _ = build_index(
                embeddings=os.path.join(coll, "img_emb"),
                index_path=os.path.join(tmp, "knn.index"),
                index_infos_path=os.path.join(tmp, "infos.json"),
                index_key="Flat",
                metric_type="ip",
                save_on_disk=True,
                verbose=40,
            )
            if index is None:
                index = faiss.read_index(os.path.join(tmp, "knn.index"))
        if index.ntotal != rows:
            fail(f"autofaiss indexed {index.ntotal} vectors, collection.json says {rows}")
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        _, ids = index.search(np.ascontiguousarray(qn, dtype="float32"), k)
        same_rows("autofaiss.build_index(index_key='Flat')", ids, expected)


if __name__ == "__main__":
    main()
