#!/usr/bin/env bash
# A one-node Slurm cluster in a folder, for tests: its own munge key and socket, its own ports,
# state, spool, logs and pid files, so it cannot clash with another one on the same machine.
#
#   scripts/slurm/cluster.sh start DIR    install slurm-wlm/munge if missing, start, wait for an idle node
#   scripts/slurm/cluster.sh status DIR   daemons alive, sinfo
#   scripts/slurm/cluster.sh stop DIR     stop the daemons by pid (idempotent, also after a failed start)
#   scripts/slurm/cluster.sh install      only install slurm-wlm/munge if missing
#
# After `start`, `source DIR/env.sh` points sbatch, squeue, scontrol... at this cluster.
# Runs as root (no systemd needed: the daemons fork themselves).
set -euo pipefail

log() { echo "[slurm-cluster] $*" >&2; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

usage() { echo "usage: $0 start|stop|status DIR, or $0 install" >&2; exit 2; }
if [ "${1:-}" = install ] && [ $# -eq 1 ]; then
    install_packages
    exit
fi
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p -- "$2" && cd -- "$2" && pwd)
conf=$dir/slurm.conf

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Two consecutive free ports from 16817 up (Slurm's defaults are 6817/6818).
pick_ports() {
    local p=16817
    while ! { port_free "$p" && port_free $((p + 1)); }; do
        p=$((p + 2))
        [ "$p" -lt 17817 ] || { log "no free port pair in 16817-17816"; exit 1; }
    done
    echo "$p"
}

# Kills the process in pid file $1 if it still runs the program $2 (a reused pid is left alone).
stop_pid() {
    local file=$1 name=$2 pid
    [ -s "$file" ] || return 0
    pid=$(cat -- "$file")
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -e "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -e "/proc/$pid" ]; then
            log "$name ($pid) still running after 5 s: SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f -- "$file"
}

stop() {
    stop_pid "$dir/slurmd.pid" slurmd
    stop_pid "$dir/slurmctld.pid" slurmctld
    stop_pid "$dir/munge/munged.pid" munged
    log "stopped"
}

write_conf() {
    local port=$1 cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
    cat >"$conf" <<EOF
ClusterName=test
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munged.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install_packages
    # A previous run may have left daemons behind: stop them first.
    stop 2>/dev/null
    local t0 port
    t0=$(date +%s.%N)
    mkdir -p -- "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
    chmod 700 "$dir/munge"
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$dir/munge/munge.key"
    port=$(pick_ports)
    write_conf "$port"
    cat >"$dir/env.sh" <<EOF
export SLURM_CONF=$conf
EOF
    export SLURM_CONF=$conf
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munged.sock" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    slurmctld
    slurmd -N localhost
    for _ in $(seq 300); do
        if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; then
            log "node idle after $(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }") s (ports $port, $((port + 1)))"
            return 0
        fi
        sleep 0.1
    done
    log "the node did not become idle within 30 s; logs in $dir/log"
    sinfo >&2 || true
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop
    exit 1
}

status() {
    local rc=0
    for p in "slurmctld:$dir/slurmctld.pid" "slurmd:$dir/slurmd.pid" "munged:$dir/munge/munged.pid"; do
        name=${p%%:*}
        file=${p#*:}
        if [ -s "$file" ] && [ -e "/proc/$(cat "$file")" ]; then
            echo "$name running (pid $(cat "$file"))"
        else
            echo "$name not running"
            rc=1
        fi
    done
    if [ "$rc" = 0 ]; then
        SLURM_CONF=$conf sinfo
    fi
    return "$rc"
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
