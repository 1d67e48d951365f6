#!/usr/bin/env bash
# vecindex against faiss-cpu (and hnswlib): flat 1,000 x 100,000 x 768, then HNSW on 100k
# clustered unit vectors of dimension 768 and 512. Same thread count on both sides (THREADS,
# default 2). Prints markdown tables; figures go to docs/BENCHMARKS.md ("Vector index").
#   scripts/bench_vecindex.sh [DATA_DIR]   (DATA_DIR default /tmp/vecindex-bench; ~2 GB of data)
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
THREADS=${THREADS:-2}
DATA=${1:-/tmp/vecindex-bench}
export RAYON_NUM_THREADS=$THREADS FAISS_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
echo "== $(date -u +%F) $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), threads = $THREADS"
cargo bench -p image-sim-benches --bench flat_search --bench hnsw_search --no-run
echo "== flat"
cargo bench -p image-sim-benches --bench flat_search 2>/dev/null
python scripts/bench_vecindex.py flat
for d in 768 512; do
  dir=$DATA/d$d
  [ -f "$dir/base.npy" ] || python scripts/bench_vecindex.py gen "$dir" --d "$d" --seed "$d"
  echo "== hnsw d=$d"
  VECINDEX_BENCH_DATA=$dir cargo bench -p image-sim-benches --bench hnsw_search 2>/dev/null
  python scripts/bench_vecindex.py hnsw "$dir"
done
