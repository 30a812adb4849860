#!/usr/bin/env bash
# Brings up a single-node Slurm (Debian's slurm-wlm + munge) on this machine, for testing
# `seqmodal sweep --emit slurm` for real. Installs the packages if missing (needs root and
# apt), writes a minimal slurm.conf, starts munged, slurmctld and slurmd, and waits (bounded)
# until the node is idle. Idempotent: returns at once if the node is already idle.
# Stop with scripts/slurm-down.sh. Logs: /var/log/slurm-seqmodal/.
set -euo pipefail

LOGS=/var/log/slurm-seqmodal
WAIT_S=${SLURM_UP_WAIT_S:-30}

die() {
    echo "slurm-up: error: $*" >&2
    for f in "$LOGS"/*.log; do
        [ -s "$f" ] && { echo "--- last lines of $f:" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts daemons)"

if command -v sinfo >/dev/null 2>&1 && [ "$(sinfo -h -o %T 2>/dev/null | head -n1)" = idle ]; then
    echo "slurm-up: already up: $(sinfo -h -o '%N %T %c CPUs')"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurmctld/slurmd/sbatch/munged are missing and apt-get is not available"
    echo "slurm-up: installing slurmctld slurmd slurm-client munge (about 20 s)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >/dev/null || die "apt-get update failed or took over 300 s (no network or mirror?)"
    timeout 300 apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install of slurmctld slurmd slurm-client munge failed or took over 300 s"
fi

mkdir -p "$LOGS"
HOST=$(hostname -s)
CPUS=$(nproc)

# munge: one key, directories owned by the munge user, daemon run as that user.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key >/dev/null
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -u munge -x munged >/dev/null; then
    runuser -u munge -- munged --force >>"$LOGS/munged.log" 2>&1 || die "munged did not start"
fi
for _ in $(seq 1 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n | unmunge >/dev/null 2>&1 || die "munge does not round-trip a credential"

# Slurm: one node on the loopback address, no accounting, no cgroups (containers lack them).
CONF_DIR=/etc/slurm
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /run/slurm
cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by seqmodal scripts/slurm-up.sh: a single-node test cluster.
ClusterName=seqmodal
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MaxArraySize=10001
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# Foreground mode (-D) in the background: daemon mode hides bind failures. -c: this is a
# throwaway test cluster, so jobs recorded by an earlier (killed) run are not recovered.
if ! pgrep -x slurmctld >/dev/null; then
    nohup slurmctld -D -c -i >>"$LOGS/slurmctld.stderr.log" 2>&1 &
fi
if ! pgrep -x slurmd >/dev/null; then
    nohup slurmd -D >>"$LOGS/slurmd.stderr.log" 2>&1 &
fi

deadline=$((SECONDS + WAIT_S))
state=""
while [ $SECONDS -lt $deadline ]; do
    pgrep -x slurmctld >/dev/null || die "slurmctld exited"
    pgrep -x slurmd >/dev/null || die "slurmd exited"
    state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
    [ "$state" = idle ] && break
    # A controller that was already running may still hold jobs of an earlier, killed test
    # run: they would keep the node allocated forever.
    if [ -z "${cancelled:-}" ] && [ -n "$(squeue -h -o %A 2>/dev/null)" ]; then
        echo "slurm-up: cancelling leftover jobs: $(squeue -h -o %i | tr '\n' ' ')"
        scancel $(squeue -h -o %A) 2>/dev/null || true
        cancelled=1
    fi
    sleep 0.2
done
[ "$state" = idle ] || die "node not idle after ${WAIT_S} s (state: '${state:-no answer}')"
echo "slurm-up: up: $(sinfo -h -o '%N %T %c CPUs')"
