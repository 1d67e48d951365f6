#!/usr/bin/env bash
# vecindex against faiss-cpu (and hnswlib): flat 1,000 x 100,000 x 768, then HNSW on 100k
# clustered unit vectors of dimension 768 and 512. Same thread count on both sides (THREADS,
# default 2), run back to back with the load average printed before each. Prints markdown
# tables; figures go to docs/BENCHMARKS.md ("Flat search", "HNSW") and docs/BENCHMARKS-LOG.md.
#   scripts/bench_vecindex.sh [DATA_DIR]   (DATA_DIR default target/bench-data/vecindex; ~0.6 GB)
# env: N (default 100000), DIMS (default "768 512"), FLAT=0 to skip the flat part,
#      HNSWLIB=0 to skip hnswlib, EFS (default 16,32,64,128,256), HNSW=0 to skip HNSW,
#      COMPRESSED=0 to skip the compressed indexes (flat SQ8/fp16 and IVF-PQ against
#      IndexScalarQuantizer and IndexIVFPQ; NLIST default 1024, M default 64,
#      NPROBES default 1,2,4,8,16,32,64, RERANK default 10: exact re-ranking factors of the
#      IVF-PQ search, e.g. 10,50,100, REPS / SQ_REPS timed passes of the IVF / flat SQ
#      searches, default 3, FLAT_SQ=0 to skip the flat SQ8 / fp16 indexes; IVF_SEARCH_ROUNDS
#      default 0: search-only rounds of FAISS and ours in turn on the saved IVF-PQ indexes,
#      COMPRESSED=search for only those rounds).
#      HNSW_SQ=0 to skip HNSW over 8-bit codes (ours against FAISS IndexHNSWFlat and IndexHNSWSQ,
#      M 32, efConstruction 200: FAISS builds, ours builds, then a search-only pass of each on the
#      saved indexes, so the searches interleave; SQ_EFS default 16,32,64,128,256; SQ_RERANK
#      default 1: re-ranking factors of the search-only pass, e.g. 1,2,4, where each factor
#      r > 1 re-scores k x r candidates of the 8-bit graph with the f32 rows, FAISS through
#      IndexRefine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
THREADS=${THREADS:-2}
DATA=${1:-target/bench-data/vecindex}
N=${N:-100000}
EFS=${EFS:-16,32,64,128,256}
export RAYON_NUM_THREADS=$THREADS FAISS_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
# CPU time the host took from this VM since the start (/proc/stat's steal column, 1/100 s):
# a round that lost much of it is not comparable.
STEAL0=$(awk '/^cpu /{print $9}' /proc/stat)
steal() { awk -v s0="$STEAL0" '/^cpu /{printf "%.1f s", ($9 - s0) / 100}' /proc/stat; }
echo "== $(date -u '+%F %H:%M') UTC $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), threads = $THREADS"
# Build first, then run the binaries directly so the cargo lock is not held while measuring.
bench_bin() {
  cargo bench -p image-sim-benches --bench "$1" --no-run --message-format=json 2>/dev/null |
    python -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
[ "${HNSW:-1}" != 0 ] && HNSW_BIN=$(bench_bin hnsw_search)
if [ "${COMPRESSED:-1}" != 0 ]; then
  cargo build --release -p vecindex --example compressed_bench 2>/dev/null
  COMPRESSED_BIN=target/release/examples/compressed_bench
fi
if [ "${HNSW_SQ:-1}" != 0 ]; then
  cargo build --release -p vecindex --example hnsw_sq_bench 2>/dev/null
  HNSW_SQ_BIN=target/release/examples/hnsw_sq_bench
fi
if [ "${FLAT:-1}" != 0 ]; then
  FLAT_BIN=$(bench_bin flat_search)
  echo "== flat: ours, load: $(uptime | sed 's/.*load average: //')"
  "$FLAT_BIN" 2>/dev/null
  echo "== flat: faiss, load: $(uptime | sed 's/.*load average: //')"
  python scripts/bench_vecindex.py flat
fi
for d in ${DIMS:-768 512}; do
  dir=$DATA/n${N}_d$d
  [ -f "$dir/base.npy" ] || python scripts/bench_vecindex.py gen "$dir" --n "$N" --d "$d" --seed "$d"
  if [ "${HNSW:-1}" != 0 ]; then
    echo "== hnsw d=$d: vecindex, load: $(uptime | sed 's/.*load average: //')"
    VECINDEX_BENCH_DATA=$dir VECINDEX_BENCH_EFS=$EFS "$HNSW_BIN" 2>/dev/null
    echo "== hnsw d=$d: faiss$([ "${HNSWLIB:-1}" != 0 ] && echo ' + hnswlib'), load: $(uptime | sed 's/.*load average: //')"
    python scripts/bench_vecindex.py hnsw "$dir" --efs "$EFS" $([ "${HNSWLIB:-1}" != 0 ] || echo --no-hnswlib)
  fi
  if [ "${COMPRESSED:-1}" != 0 ]; then
    ivf_env=(NLIST=${NLIST:-1024} M=${M:-64} NPROBES=${NPROBES:-1,2,4,8,16,32,64}
             RERANK=${RERANK:-10} REPS=${REPS:-3} SQ_REPS=${SQ_REPS:-3} FLAT_SQ=${FLAT_SQ:-1})
    ivf_args=(--nlist "${NLIST:-1024}" --m "${M:-64}" --nprobes "${NPROBES:-1,2,4,8,16,32,64}"
              --rerank "${RERANK:-10}" --reps "${REPS:-3}" --sq-reps "${SQ_REPS:-3}")
    if [ "${COMPRESSED:-1}" != search ]; then
      # FAISS first: it writes its index files and results to $dir/faiss for the Rust side.
      echo "== compressed d=$d: faiss, load: $(uptime | sed 's/.*load average: //')"
      python scripts/bench_vecindex.py compressed "$dir" "${ivf_args[@]}" \
        $([ "${FLAT_SQ:-1}" != 0 ] || echo --no-flat-sq) 2>/dev/null
      echo "== compressed d=$d: vecindex, load: $(uptime | sed 's/.*load average: //')"
      env "${ivf_env[@]}" "$COMPRESSED_BIN" "$dir"
    fi
    # Search-only rounds on the saved IVF-PQ indexes, FAISS and ours in turn.
    for round in $(seq "${IVF_SEARCH_ROUNDS:-0}"); do
      echo "== ivf-pq d=$d search round $round: faiss, load: $(uptime | sed 's/.*load average: //'), host steal since the start: $(steal)"
      python scripts/bench_vecindex.py compressed "$dir" "${ivf_args[@]}" --search-only 2>/dev/null
      echo "== ivf-pq d=$d search round $round: vecindex, load: $(uptime | sed 's/.*load average: //'), host steal since the start: $(steal)"
      env "${ivf_env[@]}" SEARCH_ONLY=1 "$COMPRESSED_BIN" "$dir"
    done
    echo "== host steal since the start: $(steal)"
  fi
  if [ "${HNSW_SQ:-1}" != 0 ]; then
    SQ_EFS=${SQ_EFS:-16,32,64,128,256}
    for pass in build search; do
      echo "== hnsw-sq d=$d ($pass): faiss, load: $(uptime | sed 's/.*load average: //')"
      python scripts/bench_vecindex.py hnsw-sq "$dir" --efs "$SQ_EFS" \
        $([ $pass = search ] && echo --search-only --rerank "${SQ_RERANK:-1}")
      echo "== hnsw-sq d=$d ($pass): vecindex, load: $(uptime | sed 's/.*load average: //')"
      if [ $pass = build ]; then
        KINDS=sq8 EFS=$SQ_EFS SAVE=$dir/ours "$HNSW_SQ_BIN" "$dir"
      else
        KINDS=sq8 EFS=$SQ_EFS LOAD=$dir/ours RERANK=${SQ_RERANK:-1} "$HNSW_SQ_BIN" "$dir"
      fi
    done
  fi
  echo "== end, load: $(uptime | sed 's/.*load average: //')"
done
