"""Writes real-size, random-weight checkpoints of the study's two models (the cost of a forward
pass equals the pretrained ones'), plus synthetic JPEGs, for `disc21-eval bench`.

usage: python3 make_checkpoints.py OUT_DIR [--images N]
Creates OUT_DIR/clip (CLIPVisionModelWithProjection, ViT-B/32), OUT_DIR/dinov2 (Dinov2Model base,
patch 14, image 518) with their preprocessor_config.json, and OUT_DIR/images (N JPEGs, 360-640 px,
made by the original study's Python baseline script's generator: same seed, same order).
"""
import argparse, os
import numpy as np
import torch
from PIL import Image
from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, CLIPImageProcessor,
                          Dinov2Config, Dinov2Model, BitImageProcessor)

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--images", type=int, default=64)
args = ap.parse_args()
torch.manual_seed(0)
os.makedirs(args.out, exist_ok=True)
clip = os.path.join(args.out, "clip")
if not os.path.exists(os.path.join(clip, "config.json")):
    CLIPVisionModelWithProjection(CLIPVisionConfig()).save_pretrained(clip)
    CLIPImageProcessor().save_pretrained(clip)
dino = os.path.join(args.out, "dinov2")
if not os.path.exists(os.path.join(dino, "config.json")):
    Dinov2Model(Dinov2Config(image_size=518, patch_size=14)).save_pretrained(dino)
    BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                      do_center_crop=True, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(dino)
d = os.path.join(args.out, "images")
os.makedirs(d, exist_ok=True)
# The images the original study's baseline script makes (same generator, same order), written by
# all cores.
rng = np.random.default_rng(0)
jobs = []
for i in range(args.images):
    h, w = int(rng.integers(360, 640)), int(rng.integers(360, 640))
    base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    jobs.append((f"{d}/img{i:05d}.jpg", base, w, h))

def write(job):
    p, base, w, h = job
    if not os.path.exists(p):
        Image.fromarray(base).resize((w, h), Image.BILINEAR).save(p, quality=90)

if __name__ == "__main__":
    import multiprocessing
    # fork: the workers need only `write` and the jobs, not a re-run of this script.
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        pool.map(write, jobs, chunksize=64)
    print(args.out)
