"""Times transformers' model-only forward pass on CPU for benches/model_forward.rs.

    python encoders_time_forward.py CHECKPOINT_DIR --family clip|dinov2 --batch 8 --iters 10 --threads N [--dtype bfloat16]

Prints one JSON line: {"median_s": ..., "min_s": ..., "times_s": [...], ...}. The forward is the
embedding the Rust encoders compute (CLIP: image_embeds; DINOv2: mean of last_hidden_state),
float32 unless --dtype (weights and input in that dtype, as the Rust encoders run it), SDPA attention, under torch.no_grad, on the same fixed random input each iteration.
"""

import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import CLIPVisionModelWithProjection, Dinov2Model

transformers.logging.set_verbosity_error()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--family", choices=["clip", "dinov2"], required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cls = CLIPVisionModelWithProjection if args.family == "clip" else Dinov2Model
    dtype = getattr(torch, args.dtype)
    model = cls.from_pretrained(args.checkpoint, dtype=dtype).eval()
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    x = x.to(dtype)

    def forward():
        if args.family == "clip":
            return model(pixel_values=x).image_embeds
        return model(pixel_values=x).last_hidden_state.mean(dim=1)

    times = []
    with torch.no_grad():
        for _ in range(args.warmup):
            forward()
        for _ in range(args.iters):
            t0 = time.perf_counter()
            forward()
            times.append(time.perf_counter() - t0)
    print(json.dumps({
        "median_s": statistics.median(times), "min_s": min(times), "times_s": times,
        "threads": torch.get_num_threads(), "dtype": args.dtype, "attn": model.config._attn_implementation,
        "torch": torch.__version__, "transformers": transformers.__version__,
    }))


if __name__ == "__main__":
    main()
