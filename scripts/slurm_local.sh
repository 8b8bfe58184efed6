#!/usr/bin/env bash
# A real single-node Slurm on this host, for tests and local sweeps (`make test-cluster`).
#
#   scripts/slurm_local.sh start   # install slurm-wlm + munge if missing, start munged,
#                                  # slurmctld, slurmd; wait until the node is idle
#   scripts/slurm_local.sh stop    # stop only the daemons this script started (pid files)
#   scripts/slurm_local.sh env     # print `export SLURM_CONF=...` for sbatch/sinfo/squeue
#
# Everything (slurm.conf, munge key and socket, state, spool, logs, pid files) lives under
# $SLURM_LOCAL_DIR (default /tmp/rl-aux-slurm); the system's /etc/slurm and /etc/munge are
# not touched. One partition `local` with this machine's CPUs and memory (`slurmd -C`);
# daemons listen on 127.0.0.1 ports $SLURM_LOCAL_PORT and +1 (default 16817, 16818).
# Installing packages needs root (apt-get); the daemons run as the calling user.
set -euo pipefail

DIR="${SLURM_LOCAL_DIR:-/tmp/rl-aux-slurm}"
PORT="${SLURM_LOCAL_PORT:-16817}"
HOST="$(hostname)"
CONF="$DIR/slurm.conf"
SOCKET="$DIR/munge/munge.socket.2"

log() { echo "slurm_local: $*" >&2; }

install_missing() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing slurm-wlm munge (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    # `slurmd -C` prints this host's NodeName=... CPUs=... RealMemory=... line.
    local node
    node="$(slurmd -C | head -n1)"
    local cpus
    cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")"
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster on $HOST.
ClusterName=rlauxlocal
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=300
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    log "wrote $CONF ($cpus CPUs)"
}

start() {
    install_missing
    mkdir -p "$DIR"/{state,spool,log,munge}
    chmod 700 "$DIR/munge"
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        log "already running (SLURM_CONF=$CONF)"
        return 0
    fi
    write_conf
    if ! alive "$DIR/munged.pid"; then
        [ -f "$DIR/munge/munge.key" ] || {
            dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
            chmod 600 "$DIR/munge/munge.key"
        }
        # --force: munged refuses root and group-writable /tmp parents without it
        munged --force --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
            --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" \
            --seed-file="$DIR/munge/munged.seed" 2>>"$DIR/log/munged.stderr"
    fi
    export SLURM_CONF="$CONF"
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    local i state=""
    for i in $(seq 1 60); do
        state="$(sinfo -h -N -n "$HOST" -o %T 2>/dev/null || true)"
        case "$state" in
            idle | mixed | allocated) break ;;
            *down* | *drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    if [ "$state" != idle ] && [ "$state" != mixed ] && [ "$state" != allocated ]; then
        log "node $HOST not idle after 60 s (state: ${state:-none}); logs in $DIR/log"
        stop
        return 1
    fi
    log "node $HOST $state; export SLURM_CONF=$CONF"
}

stop_one() {
    # SIGTERM the daemon named in pid file $1, wait up to 15 s, then SIGKILL.
    local pidfile="$1" name="$2" pid i
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}

stop() {
    stop_one "$DIR/slurmd.pid" slurmd
    stop_one "$DIR/slurmctld.pid" slurmctld
    stop_one "$DIR/munged.pid" munged
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *)
        echo "usage: $0 start|stop|env (got: '${1:-}'); state in SLURM_LOCAL_DIR=$DIR" >&2
        exit 2
        ;;
esac
