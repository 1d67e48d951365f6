"""Python side of the decode + preprocess benchmark (benches/preprocess.rs).

  python preprocess_bench.py make DIR [--count N]   write N photo-like 500×400 JPEGs
  python preprocess_bench.py time DIR [--rounds R]  print JSON: ms per image, one core, for
      PIL decode alone and PIL decode + the transformers processor (CLIP and DINOv2 settings)
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def make(dir_, count):
    from preprocess_reference import photo  # same generator as the parity test

    rng = np.random.default_rng(1)
    Path(dir_).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        photo(rng, 500, 400).save(Path(dir_) / f"img_{i:03d}.jpg", quality=90)


def time_all(dir_, rounds):
    from transformers import BitImageProcessorPil, CLIPImageProcessorPil

    files = sorted(Path(dir_).glob("*.jpg"))
    blobs = [f.read_bytes() for f in files]
    import io

    clip = CLIPImageProcessorPil()
    dino = BitImageProcessorPil(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )

    def decode(b):
        im = Image.open(io.BytesIO(b))
        im.load()
        return im

    def run(fn):
        fn()  # warm-up
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return 1000 * best / len(blobs)

    out = {
        "images": len(blobs),
        "decode_ms": run(lambda: [decode(b) for b in blobs]),
        "clip_ms": run(lambda: [clip(images=decode(b), return_tensors="np") for b in blobs]),
        "dinov2_ms": run(lambda: [dino(images=decode(b), return_tensors="np") for b in blobs]),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "time"])
    ap.add_argument("dir")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    make(a.dir, a.count) if a.cmd == "make" else time_all(a.dir, a.rounds)
