"""Python / Hugging Face baseline for `disc21-eval bench --python-baseline`.

Adapted from the original study's Python baseline script (same models, processors and DataLoader
pipeline) so that it measures the figures the Rust bench prints, on the same images and device, in
one process:
  seed_style         one image at a time: PIL open -> HF processor -> model -> feature (fp32)
  decode_preprocess  DataLoader workers: PIL open + HF processor, no model
  model_only         batched random input, the given precision and batch size
  e2e                DataLoader workers decode + preprocess, model in the given precision
Weights are random (the real architectures; the cost equals the pretrained models').

usage: python3 baseline.py --model clip|dinov2 --images DIR [--batch-size N] [--precision f32|f16|bf16]
                           [--device cpu|cuda] [--workers N] [--n-seed N] [--out FILE.json]
Prints one JSON object last.
"""
import argparse, glob, json, os, time
import torch
from PIL import Image
from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, CLIPImageProcessor,
                          Dinov2Config, Dinov2Model, BitImageProcessor)

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True, choices=["clip", "dinov2"])
ap.add_argument("--images", required=True)
ap.add_argument("--batch-size", type=int, default=0)
ap.add_argument("--precision", default="")
ap.add_argument("--device", default="")
ap.add_argument("--workers", type=int, default=0)
ap.add_argument("--n-seed", type=int, default=0)
ap.add_argument("--model-iters", type=int, default=0)
ap.add_argument("--out")
args = ap.parse_args()

dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
cpu = dev == "cpu"
bs = args.batch_size or (8 if cpu else 256)
prec = args.precision or ("f32" if cpu else "f16")
dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[prec]
workers = args.workers or min(16, os.cpu_count() or 2)
paths = sorted(p for p in glob.glob(f"{args.images}/*") if p.lower().endswith((".jpg", ".jpeg", ".png")))

def build(name):
    if name == "clip":
        m = CLIPVisionModelWithProjection(CLIPVisionConfig())
        return m, CLIPImageProcessor(), lambda mm, x: mm(pixel_values=x).image_embeds
    m = Dinov2Model(Dinov2Config(image_size=518, patch_size=14))
    proc = BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                             do_center_crop=True, image_mean=[0.485, 0.456, 0.406],
                             image_std=[0.229, 0.224, 0.225])
    return m, proc, lambda mm, x: mm(pixel_values=x).last_hidden_state.mean(dim=1)

def sync():
    if not cpu: torch.cuda.synchronize()

m, proc, fwd = build(args.model)
m = m.eval().to(dev)
pix = lambda p: proc(images=Image.open(p).convert("RGB"), return_tensors="pt")["pixel_values"]
r = {}

class DS(torch.utils.data.Dataset):
    def __len__(self): return len(paths)
    def __getitem__(self, i): return pix(paths[i])[0]

def loader():
    return torch.utils.data.DataLoader(DS(), batch_size=bs, num_workers=workers, pin_memory=not cpu)

with torch.no_grad():
    n1 = min(len(paths), args.n_seed or (8 if cpu else 200))
    for p in paths[:2]: fwd(m, pix(p).to(dev))
    sync(); t = time.perf_counter()
    for p in paths[:n1]:
        f = fwd(m, pix(p).to(dev)); (f / f.norm(dim=-1, keepdim=True)).cpu()
    sync(); r["seed_style"] = n1 / (time.perf_counter() - t)

    t = time.perf_counter(); n = 0
    for x in loader(): n += x.shape[0]
    r["decode_preprocess"] = n / (time.perf_counter() - t)

    mm = m.to(dtype)
    x = torch.randn(bs, 3, 224, 224, device=dev, dtype=dtype)
    for _ in range(2 if cpu else 3): fwd(mm, x)
    it = args.model_iters or (3 if cpu else 20)
    sync(); t = time.perf_counter()
    for _ in range(it): fwd(mm, x).float().cpu()
    sync(); r["model_only"] = it * bs / (time.perf_counter() - t)

    sync(); t = time.perf_counter(); n = 0
    for x in loader():
        f = fwd(mm, x.to(dev, dtype, non_blocking=True)); (f.float() / f.float().norm(dim=-1, keepdim=True)).cpu(); n += x.shape[0]
    sync(); r["e2e"] = n / (time.perf_counter() - t)

out = {"device": "cpu" if cpu else torch.cuda.get_device_name(0), "torch": torch.__version__,
       "model": args.model, "images": len(paths), "batch_size": bs, "precision": prec,
       "workers": workers, "results": {k: round(v, 2) for k, v in r.items()}}
if args.out:
    with open(args.out, "w") as f: json.dump(out, f, indent=1)
print(json.dumps(out), flush=True)
