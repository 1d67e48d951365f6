"""How far the fast JPEG mode's pixel tensors are from the exact ones.

For every JPEG of a folder and both models, runs `disc21-eval preprocess` with and without
`--fast-jpeg` and prints the differences in 8-bit levels (the normalised difference times the
channel's std times 255) and the cosine of the two tensors.

    .venv/bin/python scripts/experiments/fast_jpeg_pixels.py target/bench-photos

(`disc21-eval bench --photo-size 1500-3000 --keep-images target/bench-photos ...` makes such a
folder.)
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BIN = Path(__file__).resolve().parents[2] / "target/release/disc21-eval"
STD = {"clip": [0.26862954, 0.26130258, 0.27577711], "dinov2": [0.229, 0.224, 0.225]}


def tensor(model: str, image: Path, fast: bool, out: Path) -> np.ndarray:
    cmd = [str(BIN), "--quiet", "preprocess", "--model", model, str(image), "--out", str(out), "--force"]
    if fast:
        cmd.append("--fast-jpeg")
    subprocess.run(cmd, check=True)
    return np.load(out)[0].astype(np.float64)


def main() -> None:
    folder = Path(sys.argv[1])
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.npy"
        for model in ("clip", "dinov2"):
            std = np.array(STD[model])[:, None, None]
            levels, cosines, equal = [], [], []
            for image in images:
                a = tensor(model, image, False, out)
                b = tensor(model, image, True, out)
                d = np.abs(a - b) * std * 255.0
                levels.append((d.mean(), d.max()))
                equal.append(float((d < 0.5).mean()))
                cosines.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())))
            lv = np.array(levels)
            print(
                f"{model}: {len(images)} images; |fast - exact| in 8-bit levels: mean {lv[:, 0].mean():.2f}, "
                f"largest per-image mean {lv[:, 0].max():.2f}, max {lv[:, 1].max():.0f}; "
                f"values equal {100 * np.mean(equal):.1f} %; tensor cosine mean {np.mean(cosines):.6f}, "
                f"min {np.min(cosines):.6f}"
            )


if __name__ == "__main__":
    main()
