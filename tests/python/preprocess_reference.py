"""Reference tensors for embed-core's preprocessing parity test.

Generates images of many formats, modes, sizes and aspect ratios into OUT_DIR, runs them through
`transformers`' PIL image processors (CLIP and DINOv2 settings) exactly as the study did, and
writes the resulting pixel_values as .npy next to a manifest.json the Rust test reads.

Usage: python preprocess_reference.py OUT_DIR [--seed N]
"""

import argparse
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from transformers import BitImageProcessorPil, CLIPImageProcessorPil

DINOV2_CONFIG = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}
CLIP_CONFIG = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


def photo(rng, w, h):
    """A photo-like RGB image: smooth colour fields, edges, texture and noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 6, 3)
        img[..., c] = 128 + 90 * np.sin(fx * 2 * np.pi * x / max(w, 1) + ph) * np.cos(fy * 2 * np.pi * y / max(h, 1))
    for _ in range(6):  # hard-edged shapes
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(3, min(w, h) / 3))
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def png_rgb16(arr):
    """Encode an H×W×C uint16 array (C = 3 or 4) as a 16-bit PNG (PIL cannot write those)."""
    h, w, c = arr.shape
    color_type = 2 if c == 3 else 6
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "clip").mkdir(exist_ok=True)
    (out / "dinov2").mkdir(exist_ok=True)
    (out / "clip" / "preprocessor_config.json").write_text(json.dumps(CLIP_CONFIG))
    (out / "dinov2" / "preprocessor_config.json").write_text(json.dumps(DINOV2_CONFIG))
    rng = np.random.default_rng(args.seed)

    sizes = [(500, 400), (400, 500), (224, 224), (640, 480), (1, 300), (300, 1), (1, 1), (50, 30),
             (223, 225), (1000, 17), (17, 1000), (257, 256), (1200, 900), (37, 301), (2, 2), (225, 224)]
    files = []  # (name, kind, bar): bar "parity" must be bit-identical; "decode" is a sanity check

    def save(name, im, fmt, kind, bar="parity", **kw):
        path = out / "images" / name
        im.save(path, format=fmt, **kw)
        files.append((name, kind, bar))

    for i, (w, h) in enumerate(sizes):
        base = photo(rng, w, h)
        save(f"rgb_{w}x{h}.png", base, "PNG", "png-rgb")
        save(f"jpeg420_{w}x{h}.jpg", base, "JPEG", "jpeg-4:2:0", quality=90, subsampling=2)
        if i % 2 == 0:
            save(f"jpeg444_{w}x{h}.jpg", base, "JPEG", "jpeg-4:4:4", quality=95, subsampling=0)
            save(f"jpegprog_{w}x{h}.jpg", base, "JPEG", "jpeg-progressive", quality=85, progressive=True)
            save(f"gray_{w}x{h}.png", base.convert("L"), "PNG", "png-gray")
            save(f"pal_{w}x{h}.png", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG", "png-palette")
        else:
            save(f"jpeg422_{w}x{h}.jpg", base, "JPEG", "jpeg-4:2:2", quality=80, subsampling=1)
            save(f"jpeggray_{w}x{h}.jpg", base.convert("L"), "JPEG", "jpeg-gray", quality=90)
            rgba = base.copy()
            rgba.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
            save(f"rgba_{w}x{h}.png", rgba, "PNG", "png-rgba")
        if i < 6:
            arr16 = (np.asarray(base).astype(np.uint16) * 257 + rng.integers(0, 257, (h, w, 3))).astype(np.uint16)
            (out / "images" / f"rgb16_{w}x{h}.png").write_bytes(png_rgb16(arr16))
            files.append((f"rgb16_{w}x{h}.png", "png-rgb16", "parity"))
            gray16 = Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 3).astype(np.uint16))
            save(f"gray16_{w}x{h}.png", gray16, "PNG", "png-gray16")
            save(f"cmyk_{w}x{h}.jpg", base.convert("CMYK"), "JPEG", "jpeg-cmyk", quality=90)
            la = base.convert("LA")
            save(f"la_{w}x{h}.png", la, "PNG", "png-la")
        if i < 4:
            save(f"img_{w}x{h}.bmp", base, "BMP", "bmp", bar="decode")
            save(f"img_{w}x{h}.tif", base, "TIFF", "tiff", bar="decode")
            save(f"img_{w}x{h}.gif", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=200), "GIF", "gif", bar="decode")
            save(f"lossless_{w}x{h}.webp", base, "WEBP", "webp-lossless", bar="decode", lossless=True)
    # Elongated pictures, both orientations. Pillow resizes a picture whose height shrinks by
    # more than twice as many pixels as its width vertically first (for a shortest-edge resize:
    # taller than twice its width), which rounds differently: ratios just under, at and just
    # over 2 (odd sizes included, and where DINOv2's 256 but not CLIP's 224 upscales the
    # width), and very elongated ones.
    elongated = [(480, 959), (480, 960), (480, 961), (480, 1000), (480, 1200), (300, 640), (401, 899),
                 (401, 802), (401, 803), (257, 515), (225, 451), (240, 1000), (223, 1000), (401, 3000)]
    for w, h in elongated:
        for ew, eh in ((w, h), (h, w)):
            base = photo(rng, ew, eh)
            save(f"long_{ew}x{eh}.png", base, "PNG", "png-elongated")
            save(f"long420_{ew}x{eh}.jpg", base, "JPEG", "jpeg-elongated", quality=90, subsampling=2)
    # Content decides the format, not the name.
    photo(rng, 320, 240).save(out / "images" / "png_named.jpg", format="PNG")
    files.append(("png_named.jpg", "png-as-jpg", "parity"))
    photo(rng, 240, 320).save(out / "images" / "jpeg_named.png", format="JPEG", quality=90)
    files.append(("jpeg_named.png", "jpeg-as-png", "parity"))

    clip = CLIPImageProcessorPil.from_dict(CLIP_CONFIG)
    dino = BitImageProcessorPil.from_dict(DINOV2_CONFIG)
    manifest = []
    for name, kind, bar in files:
        entry = {"file": f"images/{name}", "kind": kind, "bar": bar}
        for tag, proc in (("clip", clip), ("dinov2", dino)):
            with Image.open(out / "images" / name) as im:
                pv = proc(images=im, return_tensors="np")["pixel_values"].astype(np.float32)
            ref = f"{tag}/{name}.npy"
            np.save(out / ref, pv)
            entry[tag] = ref
        manifest.append(entry)
    (out / "manifest.json").write_text(json.dumps({"images": manifest, "clip_std": CLIP_CONFIG["image_std"],
                                                   "dinov2_std": DINOV2_CONFIG["image_std"]}, indent=1))
    print(f"wrote {len(manifest)} images to {out}")


if __name__ == "__main__":
    main()
