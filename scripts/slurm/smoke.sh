#!/usr/bin/env bash
# Checks a cluster started by cluster.sh the way a sharded build uses it: a 4-task job array,
# one task requeued while it runs, and a job chained with --dependency=afterok on the array,
# which must run once, after every task (the requeued one included) has succeeded. Prints the
# time each phase took and the scheduler's latency for a trivial job.
#
#   scripts/slurm/smoke.sh DIR      (DIR as given to cluster.sh start)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(cd -- "$1" && pwd)
export SLURM_CONF=$dir/slurm.conf
work=$dir/smoke
rm -rf -- "$work"
mkdir -p -- "$work/runs" "$work/logs"
now() { date +%s.%N; }
since() { awk "BEGIN { printf \"%.2f\", $(now) - $1 }"; }
fail() { echo "FAIL: $*" >&2; tail -n 30 "$dir/log/slurmctld.log" >&2; exit 1; }

# The scheduler's latency: submission to completion of a job that does nothing.
t=$(now)
for _ in 1 2 3; do
    sbatch --wait --quiet --output=/dev/null --wrap=true
done
echo "trivial job, submit to done: $(awk "BEGIN { printf \"%.2f\", ($(now) - $t) / 3 }") s (mean of 3)"

t0=$(now)
array=$(sbatch --parsable --array=0-3 --job-name=smoke-shards --output="$work/logs/task_%a.out" <<EOF
#!/usr/bin/env bash
echo "\$SLURM_ARRAY_TASK_ID \$SLURM_ARRAY_TASK_MIN \$SLURM_ARRAY_TASK_COUNT" >> "$work/runs/task_\$SLURM_ARRAY_TASK_ID"
sleep 3
echo done >> "$work/runs/task_\$SLURM_ARRAY_TASK_ID"
EOF
)
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name=smoke-merge --output="$work/logs/merge.out" <<EOF
#!/usr/bin/env bash
for i in 0 1 2 3; do
    grep -q done "$work/runs/task_\$i" || { echo "task \$i not done"; exit 1; }
done
echo merged >> "$work/merged"
EOF
)
merge=${merge%%;*}
echo "submitted array $array and merge $merge"

# Requeue task 1 while it runs, as a preemption would.
for _ in $(seq 200); do
    [ "$(squeue -h -j "${array}_1" -o %T 2>/dev/null)" = RUNNING ] && break
    sleep 0.1
done
[ "$(squeue -h -j "${array}_1" -o %T)" = RUNNING ] || fail "task 1 never ran"
t_requeue=$(now)
scontrol requeue "${array}_1"
# Slurm holds a requeued job for about two minutes (reason BeginTime) before it may start
# again; make it eligible now so the check takes seconds.
scontrol update JobId="${array}_1" StartTime=now
echo "task 1 requeued $(awk "BEGIN { printf \"%.2f\", $t_requeue - $t0 }") s after submission"

for _ in $(seq 3000); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 0.1
done
[ -z "$(squeue -h -o %i)" ] || fail "jobs still queued after 300 s: $(squeue)"
echo "array + merge done $(since "$t0") s after submission"

for i in 0 1 2 3; do
    [ -f "$work/runs/task_$i" ] || fail "task $i never ran"
    grep -q "^$i 0 4\$" "$work/runs/task_$i" || fail "task $i saw the wrong array variables"
done
starts=$(grep -c '^1 ' "$work/runs/task_1")
[ "$starts" -ge 2 ] || fail "task 1 ran $starts time(s): the requeue did not rerun it"
[ "$(cat "$work/merged" 2>/dev/null)" = merged ] || fail "the merge job did not run exactly once after the array"
echo "OK: 4 tasks ran (task 1 started $starts times), the merge ran once after all of them"
