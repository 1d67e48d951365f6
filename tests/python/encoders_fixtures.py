"""Random-weight CLIP / DINOv2 checkpoints and their transformers reference outputs.

Used by the tests of crates/embed-clip and crates/embed-dinov2 (and by benches/model_forward.rs).

    python encoders_fixtures.py OUT_DIR --family clip|dinov2 [--full]

Writes one folder per case under OUT_DIR: the checkpoint as `save_pretrained` writes it
(config.json, model.safetensors), a `case.json` manifest, and for each input
`<input>.pixel_values.npy` with the reference outputs `<input>.<output>.npy` computed by
transformers on CPU in float32 with SDPA attention. Tiny cases exercise every switch of the
configurations; `--full` writes the full-size architectures (CLIP ViT-B/32,
DINOv2-base with its 518-pixel position grid) with random weights. Also writes deliberately broken
checkpoints (`broken_*`) for the strict-loading tests. `DONE` marks a complete folder.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import transformers
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
)

transformers.logging.set_verbosity_error()


def randomize(model, seed, layerscale=None):
    """Weights with realistic spread (the HF init leaves attention nearly uniform)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lambda1"):
                p.copy_(layerscale * (1 + 0.3 * torch.randn(p.shape, generator=g)))
            elif p.ndim >= 2 and "embedding" not in name and "token" not in name:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif p.ndim == 1 and ("norm" in name or "layrnorm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and "class_embedding" not in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model.eval()


def smooth_images(n, h, w, seed, mean, std):
    """Synthetic photos: gradients, blobs and noise as 8-bit RGB, normalised like the processors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((n, 3, h, w), np.float32)
    for i in range(n):
        img = np.zeros((h, w, 3))
        for c in range(3):
            a, b, f = rng.uniform(-1, 1, 3)
            img[..., c] = 128 + 60 * np.sin(a * xx / 9 + b * yy / 13 + f * 6)
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 10, h / 3)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        img = np.clip(np.round(img), 0, 255) / 255.0
        out[i] = ((img - np.array(mean)) / np.array(std)).transpose(2, 0, 1).astype(np.float32)
    return out


def random_pixels(n, h, w, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, 3, h, w)).astype(np.float32)


def save(case_dir, model, manifest):
    os.makedirs(case_dir, exist_ok=True)
    model.save_pretrained(case_dir)
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(manifest, f, indent=1)


@torch.no_grad()
def clip_outputs(model, pixels):
    t = torch.from_numpy(pixels)
    if isinstance(model, CLIPModel):
        vis = model.vision_model(pixel_values=t)
        embeds = model.get_image_features(pixel_values=t)
        embeds = getattr(embeds, "pooler_output", embeds)
    else:
        out = model(pixel_values=t)
        vis = model.vision_model(pixel_values=t)
        embeds = out.image_embeds
    return {
        "embeds": embeds,
        "last_hidden_state": vis.last_hidden_state,
        "pooler_output": vis.pooler_output,
    }


@torch.no_grad()
def dinov2_outputs(model, pixels, registers):
    out = model(pixel_values=torch.from_numpy(pixels))
    h = out.last_hidden_state
    patch_mean = h[:, 1 + registers :].mean(dim=1)
    return {
        "last_hidden_state": h,
        "pooler_output": out.pooler_output,
        "mean": h.mean(dim=1),
        "cls": out.pooler_output,
        "patch_mean": patch_mean,
        "cls_patch_mean": torch.cat([out.pooler_output, patch_mean], dim=-1),
    }


def write_inputs(case_dir, model, inputs, fn):
    names = []
    for name, pixels in inputs:
        np.save(os.path.join(case_dir, f"{name}.pixel_values.npy"), pixels)
        for key, value in fn(model, pixels).items():
            np.save(os.path.join(case_dir, f"{name}.{key}.npy"), value.float().numpy())
        names.append(name)
    return names


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def clip_cases(out, full):
    if full:
        cases = [("full_vit_b32", "vision", {}, 224, CLIP_MEAN, CLIP_STD)]
    else:
        cases = [
            # full CLIPModel (text tower present), quick_gelu, 4×4 grid
            ("tiny_quick_p8", "clip",
             dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5), 32, None, None),
            # vision-only with projection, exact gelu, patch 7, odd eps
            ("tiny_gelu_p7_vision", "vision",
             dict(hidden_size=48, intermediate_size=64, num_hidden_layers=3, num_attention_heads=3,
                  image_size=28, patch_size=7, hidden_act="gelu", layer_norm_eps=1e-3, projection_dim=24), 28, None, None),
            # CLIPModel, patch 16 on 48 pixels, two heads, large eps
            ("tiny_p16_clipmodel", "clip",
             dict(hidden_size=24, intermediate_size=40, num_hidden_layers=1, num_attention_heads=2,
                  image_size=48, patch_size=16, hidden_act="quick_gelu", layer_norm_eps=1e-2), 48, None, None),
        ]
    for i, (name, kind, vcfg, size, mean, std) in enumerate(cases):
        torch.manual_seed(i)
        if kind == "clip":
            text = dict(hidden_size=16, intermediate_size=20, num_hidden_layers=1, num_attention_heads=2,
                        vocab_size=64, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
            model = CLIPModel(CLIPConfig(vision_config=vcfg, text_config=text, projection_dim=20))
        else:
            model = CLIPVisionModelWithProjection(CLIPVisionConfig(**vcfg))
        randomize(model, 100 + i)
        case_dir = os.path.join(out, name)
        if full:
            inputs = [("batch7", smooth_images(7, size, size, 7, mean, std))]
        else:
            inputs = [("random3", random_pixels(3, size, size, i))]
        save(case_dir, model, {})
        names = write_inputs(case_dir, model, inputs, clip_outputs)
        save(case_dir, model, {"family": "clip", "inputs": names, "class": type(model).__name__})
        if i == 0 and not full:
            broken(out, case_dir, "clip")
            half = os.path.join(out, "tiny_quick_p8_f16")
            model.half().save_pretrained(half)
            model.float()


def dinov2_cases(out, full):
    if full:
        cases = [("full_base", Dinov2Model, dict(image_size=518), [("batch7", (224, 224), 7)])]
    else:
        cases = [
            ("tiny_gelu_ls", Dinov2Model,
             dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=56, patch_size=14,
                  mlp_ratio=3, layerscale_value=0.5, layer_norm_eps=1e-6, hidden_act="gelu"),
             [("native56", (56, 56), 3), ("interp42x70", (42, 70), 2), ("interp84", (84, 84), 2)]),
            ("tiny_swiglu", Dinov2Model,
             dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14,
                  use_swiglu_ffn=True, layerscale_value=2.0, layer_norm_eps=1e-5, qkv_bias=False,
                  use_mask_token=False),
             [("native28", (28, 28), 2), ("interp56x42", (56, 42), 2)]),
            ("tiny_registers", Dinov2WithRegistersModel,
             dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
                  num_register_tokens=3, layerscale_value=0.1, layer_norm_eps=1e-4, hidden_act="quick_gelu"),
             [("native32", (32, 32), 2), ("up48x40", (48, 40), 2), ("down24", (24, 24), 2)]),
        ]
    for i, (name, cls, cfg, inputs) in enumerate(cases):
        torch.manual_seed(i)
        config = (Dinov2WithRegistersConfig if cls is Dinov2WithRegistersModel else Dinov2Config)(**cfg)
        model = randomize(cls(config), 200 + i, layerscale=config.layerscale_value)
        registers = getattr(config, "num_register_tokens", 0)
        case_dir = os.path.join(out, name)
        arrays = []
        for j, (iname, (h, w), n) in enumerate(inputs):
            if full:
                arrays.append((iname, smooth_images(n, h, w, 11, IMAGENET_MEAN, IMAGENET_STD)))
            else:
                arrays.append((iname, random_pixels(n, h, w, 10 * i + j)))
        save(case_dir, model, {})
        names = write_inputs(case_dir, model, arrays, lambda m, p: dinov2_outputs(m, p, registers))
        save(case_dir, model, {"family": "dinov2", "inputs": names, "registers": registers,
                               "class": type(model).__name__})
        if i == 0 and not full:
            broken(out, case_dir, "dinov2")


def broken(out, case_dir, family):
    """Checkpoints that strict loading must reject, each in its own folder."""
    tensors = load_file(os.path.join(case_dir, "model.safetensors"))
    config = json.load(open(os.path.join(case_dir, "config.json")))
    if family == "clip":
        victim = "vision_model.encoder.layers.0.layer_norm1.weight"
    else:
        victim = "encoder.layer.0.norm1.weight"

    def write(name, t, cfg=None):
        d = os.path.join(out, f"broken_{name}")
        os.makedirs(d, exist_ok=True)
        save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        json.dump(cfg or config, open(os.path.join(d, "config.json"), "w"), indent=1)

    t = dict(tensors); del t[victim]; write("missing", t)
    t = dict(tensors); t[victim] = t[victim].unsqueeze(0).contiguous(); write("misshaped", t)
    t = dict(tensors); t["extra.weight"] = torch.zeros(3); write("unexpected", t)
    t = dict(tensors); t[victim] = t[victim].to(torch.int32); write("int_dtype", t)
    t = dict(tensors); v = t[victim].clone(); v[1] = float("nan"); t[victim] = v; write("nan", t)
    t = dict(tensors); v = t[victim].clone(); v[0] = 1e6; t[victim] = v; write("f16_overflow", t)
    cfg = json.loads(json.dumps(config))
    target = cfg["vision_config"] if "vision_config" in cfg else cfg
    target["num_attention_heads"] = 5  # does not divide the width
    write("bad_heads", dict(tensors), cfg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--family", choices=["clip", "dinov2"], required=True)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    (clip_cases if args.family == "clip" else dinov2_cases)(args.out, args.full)
    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "attn": "sdpa", "python": sys.version.split()[0]}
    json.dump(info, open(os.path.join(args.out, "versions.json"), "w"))
    open(os.path.join(args.out, "DONE"), "w").write("ok\n")


if __name__ == "__main__":
    main()
