#!/usr/bin/env bash
# Stops the single-node Slurm started by scripts/slurm-up.sh: cancels jobs, stops slurmd,
# slurmctld and munged (by the pids they recorded or run under), with a bounded wait.
set -euo pipefail

if command -v scancel >/dev/null 2>&1; then
    scancel --quiet --user root 2>/dev/null || true
fi
stop() { # name pidfile
    local pid=""
    [ -f "$2" ] && pid=$(cat "$2" 2>/dev/null || true)
    [ -n "$pid" ] || pid=$(pgrep -x "$1" || true)
    [ -n "$pid" ] || return 0
    kill $pid 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 $pid 2>/dev/null || return 0
        sleep 0.1
    done
    echo "slurm-down: $1 ($pid) did not stop in 5 s: killing" >&2
    kill -9 $pid 2>/dev/null || true
}
stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid
echo "slurm-down: stopped"
