#!/usr/bin/env bash
# The GPU throughput measurement, in one command on a GPU machine, nothing built there:
#   scripts/gpu/prepare.sh               (build machine: release binary + scripts into .devcarry/)
#   bash .devcarry/run_device_checks.sh  (GPU machine)
# or, in a checkout with a release build, `bash scripts/gpu/run_device_checks.sh` (see below).
# It generates real-size random-weight checkpoints and N_IMAGES (8,192) synthetic JPEGs with
# transformers, runs embed-torch's CUDA event test, `disc21-eval bench` for CLIP and DINOv2 (f16,
# batch 256, embeddings compared with f32) with the Python baseline in the same invocation, the
# Python baseline again at the original study's DataLoader batch of 64, the same benches without
# CUDA events and CLIP without window decoding, checks the 8-bit device path against the host
# path on real files, then (time allowing) the resize on the GPU and the fast JPEG mode on
# camera-sized images; packs everything into $OUT/results.tgz and prints a short table last.
# About 250 s on an H200 with PHOTOS=0 (the camera-sized step adds ~110 s). Steps can be left
# out: COMPARE_F32, REFERENCE, AB, PARITY, RESIZE, PHOTOS = 0; the 32,768-image run of
# docs/BENCHMARKS.md took 170 s with
#   N_IMAGES=32768 COMPARE_F32=0 REFERENCE=0 AB=0 PARITY=0 RESIZE=0 PHOTOS=0
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# Everything is written to a work folder and packed into $OUT/results.tgz on exit (also when
# stopped by a TERM signal), so that one file carries all results off the GPU machine.
RESULTS=${OUT:-/tmp/device-out}
OUT=/tmp/devck-results
rm -rf "$OUT" && mkdir -p "$OUT" "$RESULTS"
pack() { tar -C "$OUT" -czf "$RESULTS/results.tgz" . 2>/dev/null; cp "$OUT/timeline.txt" "$RESULTS/" 2>/dev/null; }
trap pack EXIT
trap 'exit 143' TERM
export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1
# Staged by prepare.sh beside this script (.devcarry/), or run from scripts/gpu/ in a checkout
# on your own GPU machine after `cargo build --release -p disc21-eval --bin disc21-eval-torch`, with the project's
# Python first on PATH (see the README, "On a GPU").
BIN=${BIN:-$HERE/disc21-eval}
[ -x "$BIN" ] || BIN="$HERE/../../target/release/disc21-eval-torch"
[ -x "$BIN" ] || { echo "no disc21-eval beside $0 nor disc21-eval-torch in target/release: build it first" >&2; exit 1; }
# System libraries the GPU machine lacks (fontconfig, freetype...) come from .devcarry/lib.
ldd "$BIN" > "$OUT/ldd.txt" 2>&1
if grep -q 'not found' "$OUT/ldd.txt"; then
  echo "from .devcarry/lib: $(grep 'not found' "$OUT/ldd.txt" | awk '{print $1}' | tr '\n' ' ')" | tee "$OUT/libs.txt"
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$HERE/lib
  ldd "$BIN" > "$OUT/ldd.txt" 2>&1
  if grep 'not found' "$OUT/ldd.txt"; then echo "missing libraries" >&2; exit 1; fi
fi
"$BIN" --version > "$OUT/version.txt" 2>&1 || { cat "$OUT/version.txt"; exit 1; }
W=${WORK:-/tmp/devck}
N_IMAGES=${N_IMAGES:-8192}
PREC=${PREC:-f16}
BATCH=${BATCH:-256}
# For a dry run of this script on a CPU machine (small everything), e.g.
#   DEVICE=cpu PREC=f32 BATCH=8 N_IMAGES=16 MODEL_ITERS=2 N_PHOTOS=8 OUT=/tmp/dry \
#     PATH=$PWD/.venv/bin:$PATH bash .devcarry/run_device_checks.sh
# (about 3 minutes on the 2-core box; the resize-on-device steps fail there by design: they need
# CUDA's 8-bit device transfer).
DEVICE=${DEVICE:-cuda}
MODEL_ITERS=${MODEL_ITERS:-20}
N_PHOTOS=${N_PHOTOS:-384}
{ nvidia-smi; nproc; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|MHz|L3"; python3 -c 'import torch,transformers;print(torch.__version__, transformers.__version__)'; } > "$OUT/machine.txt" 2>&1
t0=$(date +%s)
python3 "$HERE/make_checkpoints.py" "$W" --images "$N_IMAGES" > "$OUT/make.log" 2>&1 || { tail "$OUT/make.log"; exit 1; }
echo "setup $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
# CUDA events (embed-torch's unit test, on the device).
if [ -x "$HERE/embed_torch_tests" ]; then
  timeout 60 "$HERE/embed_torch_tests" cuda_event > "$OUT/unit_tests.txt" 2>&1
  echo "embed-torch cuda_event tests rc=$?" | tee -a "$OUT/timeline.txt"
fi
# In f16/bf16 the bench also embeds the images in f32 and compares (--compare-f32: a few seconds).
COMPARE=()
[ "$PREC" != f32 ] && [ "${COMPARE_F32:-1}" = 1 ] && COMPARE=(--compare-f32)
for m in clip dinov2; do
  t0=$(date +%s)
  timeout 200 "$BIN" bench --model "$m" --weights "$W/$m" --images "$W/images" --device "$DEVICE" \
    --precision "$PREC" "${COMPARE[@]}" --batch-size "$BATCH" --model-iters "$MODEL_ITERS" --python-baseline \
    --python python3 --baseline-script "$HERE/baseline.py" --json "$OUT/bench_$m.json" \
    > "$OUT/bench_$m.md" 2> "$OUT/bench_$m.err"
  echo "bench $m rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
done
# The Python DataLoader pipeline at the settings of the original study's reference figures
# (DataLoader batch 64; one H100: 388 CLIP and 517 DINOv2 images/s end to end), same images.
# Each later step can be left out (0): REFERENCE, AB, PARITY, RESIZE, PHOTOS.
if [ "${REFERENCE:-1}" = 1 ]; then
for m in clip dinov2; do
  t0=$(date +%s)
  timeout 120 python3 "$HERE/baseline.py" --model "$m" --images "$W/images" --device "$DEVICE" \
    --precision "$PREC" --batch-size 64 --model-iters "$MODEL_ITERS" --out "$OUT/reference_$m.json" \
    > "$OUT/reference_$m.log" 2>&1
  echo "reference baseline $m (batch 64) rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
done
fi
# Same runs without CUDA events (the blocking wait of before), and CLIP without window
# decoding: what each choice is worth, on this machine.
if [ "${AB:-1}" = 1 ]; then
for m in clip dinov2; do
  t0=$(date +%s)
  EMBED_TORCH_CUDA_EVENTS=0 timeout 120 "$BIN" bench --model "$m" --weights "$W/$m" --images "$W/images" \
    --device "$DEVICE" --precision "$PREC" --batch-size "$BATCH" --model-iters 5 \
    --json "$OUT/bench_${m}_noevents.json" > "$OUT/bench_${m}_noevents.md" 2> "$OUT/bench_${m}_noevents.err"
  echo "bench $m without CUDA events rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
done
# CLIP is decode-bound here: the same with whole-picture JPEG decoding (no window decode).
t0=$(date +%s)
EMBED_CORE_JPEG_WINDOW=0 timeout 120 "$BIN" bench --model clip --weights "$W/clip" --images "$W/images" \
  --device "$DEVICE" --precision "$PREC" --batch-size "$BATCH" --model-iters 5 \
  > "$OUT/bench_clip_nowindow.md" 2> "$OUT/bench_clip_nowindow.err"
echo "bench clip without window decoding rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
fi
# The 8-bit device path against the f32 host path, same files, same model (f32 for a tight bound).
for m in clip dinov2; do
  [ "${PARITY:-1}" = 1 ] || break
  for t in host device; do
    timeout 90 "$BIN" embed --model "$m" --weights "$W/$m" --images "$W/images" --device "$DEVICE" \
      --precision f32 --batch-size 128 --transfer "$t" --out "/tmp/emb_${m}_$t.npy" --force \
      >> "$OUT/embed.log" 2>&1
  done
  python3 - "$m" >> "$OUT/parity.txt" 2>&1 <<'PY'
import sys, numpy as np
m = sys.argv[1]
a, b = np.load(f"/tmp/emb_{m}_host.npy"), np.load(f"/tmp/emb_{m}_device.npy")
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
print(f"{m}: {a.shape} device vs host path: min cosine {cos.min():.7f}, max |diff| {np.abs(a - b).max():.2e}")
PY
done
# Last, as they are optional: the resize on the GPU (--resize-on device), its end-to-end rate
# and its embeddings against the exact host path (f32, cosine).
# They are skipped when the main part took so long that they could push the whole run past
# DEADLINE_S (570 s by default, for a machine that allows 600 s a command; the summary below must
# still print).
for m in clip dinov2; do
  [ "${RESIZE:-1}" = 1 ] || break
  # 80 + 45 s at most per model: start only when that still ends by DEADLINE_S.
  if [ $((SECONDS + 125)) -gt "${DEADLINE_S:-570}" ]; then
    echo "skipped resize-on-device for $m: ${SECONDS} s elapsed" | tee -a "$OUT/timeline.txt"
    continue
  fi
  t0=$(date +%s)
  timeout 80 "$BIN" bench --model "$m" --weights "$W/$m" --images "$W/images" --device "$DEVICE" \
    --precision "$PREC" --batch-size "$BATCH" --model-iters 5 --resize-on device \
    > "$OUT/bench_${m}_gpu_resize.md" 2> "$OUT/bench_${m}_gpu_resize.err"
  echo "bench $m resize-on-device rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
  timeout 45 "$BIN" embed --model "$m" --weights "$W/$m" --images "$W/images" --device "$DEVICE" \
    --precision f32 --batch-size 128 --resize-on device --out "/tmp/emb_${m}_gpuresize.npy" --force \
    >> "$OUT/embed.log" 2>&1
  python3 - "$m" >> "$OUT/parity.txt" 2>&1 <<'PY'
import sys, numpy as np
m = sys.argv[1]
a, b = np.load(f"/tmp/emb_{m}_host.npy"), np.load(f"/tmp/emb_{m}_gpuresize.npy")
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
print(f"{m}: resize on GPU vs exact host path: min cosine {cos.min():.6f}, mean {cos.mean():.6f}")
PY
done
# Optional, last: camera-sized photo-like JPEGs (1500-3000 px), where decoding costs most; the
# exact path against the opt-in DCT-domain downscale (--fast-jpeg), with the Python pipeline.
if [ "${PHOTOS:-1}" = 0 ]; then
  echo "skipped camera-sized images: PHOTOS=0" | tee -a "$OUT/timeline.txt"
elif [ $((SECONDS + 110)) -gt "${DEADLINE_S:-570}" ]; then
  echo "skipped camera-sized images: ${SECONDS} s elapsed" | tee -a "$OUT/timeline.txt"
else
  t0=$(date +%s)
  rm -rf /tmp/devck-photos
  timeout 110 "$BIN" bench --model clip --weights "$W/clip" --device "$DEVICE" --precision "$PREC" \
    --batch-size "$BATCH" --model-iters 5 --photo-size 1500-3000 --n-images "$N_PHOTOS" \
    --keep-images /tmp/devck-photos --fast-jpeg --python-baseline --python python3 \
    --baseline-script "$HERE/baseline.py" --json "$OUT/bench_clip_photos.json" \
    > "$OUT/bench_clip_photos.md" 2> "$OUT/bench_clip_photos.err"
  echo "bench clip camera-sized + fast JPEG rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/timeline.txt"
fi
echo
echo "== GPU =="; head -12 "$OUT/machine.txt" | grep -E "H100|H200|MiB" | head -2
echo "== parity =="; cat "$OUT/parity.txt"
for m in clip dinov2; do echo "== $m (tail of stderr) =="; tail -3 "$OUT/bench_$m.err"; done
# libtorch's own C++ warnings (format "[W... Memory.cpp:46] Warning: ..."; Python's DataLoader
# prints the same deprecation as "... (Triggered internally at ...)", not counted): expected 0
# since the ring is pinned with `_pin_memory`.
echo "== pin_memory deprecation warnings printed by disc21-eval (expected 0) =="
for m in clip dinov2; do echo "$m: $(grep -c 'Memory.cpp:[0-9]*\] Warning' "$OUT/bench_$m.err")"; done
for m in clip dinov2; do echo "== $m =="; cat "$OUT/bench_$m.md"; done
for m in clip dinov2; do echo "== $m, resize on the GPU =="; cat "$OUT/bench_${m}_gpu_resize.md"; done
for m in clip dinov2; do echo "== $m, without CUDA events =="; cat "$OUT/bench_${m}_noevents.md"; done
echo "== clip, whole-picture JPEG decoding (EMBED_CORE_JPEG_WINDOW=0) =="; cat "$OUT/bench_clip_nowindow.md"
echo "== Python baseline at DataLoader batch 64 (the original study's setting) =="
for m in clip dinov2; do tail -1 "$OUT/reference_$m.log" 2>/dev/null; done
echo "== unit tests =="; tail -4 "$OUT/unit_tests.txt"
echo "== clip, camera-sized JPEGs, exact and --fast-jpeg =="; cat "$OUT/bench_clip_photos.md" 2>/dev/null
true
