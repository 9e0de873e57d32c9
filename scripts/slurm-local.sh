#!/usr/bin/env bash
# A real single-node Slurm cluster on this host, for the tests of the Slurm launcher.
#
#   scripts/slurm-local.sh start DIR   installs slurm-wlm + munge with apt-get if missing, writes
#                                      DIR/slurm.conf, starts munged, slurmctld and slurmd (PID
#                                      files, logs and state under DIR), waits for the node to be
#                                      idle and prints `export SLURM_CONF=DIR/slurm.conf` on stdout:
#                                      eval "$(scripts/slurm-local.sh start "$dir")"
#   scripts/slurm-local.sh stop DIR    cancels every job, stops the daemons that `start` started.
#
# Both are idempotent. On failure it exits 1 with a one-line reason on stderr (a test prints
# "skipped: <reason>"). Needs root or passwordless sudo; one such cluster per host (fixed ports).
# No systemd needed: the daemons are started by hand. Debian 12 ships Slurm 22.05.
# Environment: SLURM_LOCAL_TIMEOUT (seconds to wait for the node, 60), SLURM_LOCAL_SHARE (jobs
# that may share one core, 4: the node runs CPUs x SHARE jobs at once).
set -euo pipefail

die() { echo "slurm-local.sh: $*" >&2; exit 1; }
log() { echo "slurm-local.sh: $*" >&2; }

[ $# -eq 2 ] && { [ "$1" = start ] || [ "$1" = stop ]; } || die "usage: $0 start|stop DIR"
if [ "$(id -u)" -ne 0 ]; then  # the daemons (and apt) need root
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || die "needs root or passwordless sudo"
    exec sudo -n --preserve-env=SLURM_LOCAL_TIMEOUT,SLURM_LOCAL_SHARE -- "$0" "$@"
fi
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
export SLURM_CONF="$DIR/slurm.conf"

# pid NAME: the PID in DIR/NAME.pid if that process is alive and is NAME, else fails.
pid() {
    local p
    p="$(cat "$DIR/$1.pid" 2>/dev/null)" && [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
}

# kill_wait NAME...: SIGTERM those daemons, SIGKILL any still alive after 10 s.
kill_wait() {
    local n p i pids=() alive
    for n in "$@"; do
        p="$(pid "$n")" && kill "$p" 2>/dev/null && pids+=("$p") && log "stopping $n ($p)"
        rm -f "$DIR/$n.pid"
    done
    for i in $(seq 50); do
        alive=()
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
        [ ${#alive[@]} -eq 0 ] && return 0
        sleep 0.2
    done
    kill -9 "${alive[@]}" 2>/dev/null || true
}

stop() {
    local i p
    if pid slurmctld >/dev/null && pid slurmd >/dev/null; then
        # slurmstepd (and the jobs under it) outlive slurmd by design: cancel the jobs first and
        # wait out KillWait (30 s) + cleanup until no job is left running.
        scancel --partition=local 2>/dev/null || true
        for i in $(seq 45); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 1; done
    fi
    kill_wait slurmd slurmctld
    kill_wait munged  # only if this script started it (else there is no DIR/munged.pid)
    # Any slurmstepd left (jobs that would not die) was started by our slurmd: it has our SLURM_CONF.
    for p in $(pgrep -x slurmstepd || true); do
        grep -qzx "SLURM_CONF=$SLURM_CONF" "/proc/$p/environ" 2>/dev/null && kill -9 "$p" && log "killed slurmstepd $p"
    done
    # Hand DIR back to the user that called us through sudo.
    [ -z "${SUDO_UID:-}" ] || chown -R "$SUDO_UID:$SUDO_GID" "$DIR"
    return 0
}

install_slurm() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    command -v apt-get >/dev/null || die "cannot install Slurm: apt-get not found and slurmctld/slurmd/munged missing"
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(slurm-wlm munge)
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 \
        || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; } \
        || die "cannot install Slurm: apt-get install slurm-wlm munge failed"
}

# munged: reuse one that already answers (then `stop` leaves it alone), else start our own.
start_munge() {
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    if [ ! -s /etc/munge/munge.key ]; then  # Debian's postinst creates it; make sure
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    setpriv --reuid=munge --regid=munge --init-groups munged --force  # daemonises itself
    local i
    for i in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || die "munged did not start: $(tail -n 3 /var/log/munge/munged.log 2>/dev/null)"
}

write_conf() {
    # The node as slurmd sees it: "NodeName=<hostname -s> CPUs=.. Boards=.. ... RealMemory=..".
    local node host
    node="$(slurmd -C | head -n 1)"
    [[ "$node" == NodeName=* ]] || die "slurmd -C failed: $node"
    host="${node%% *}" && host="${host#NodeName=}"
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$DIR/slurm.conf.new" <<EOF
# Written by scripts/slurm-local.sh: a single-node cluster on this host, daemons run as root.
ClusterName=m2mlocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# No cgroups (containers rarely allow them): plain /proc process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd, so no sacct: finished jobs are appended to a text file instead.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=30
# Cores are the consumable resource, memory is not; the partition lets ${SLURM_LOCAL_SHARE:-4} jobs share a
# core, so a 2-CPU runner still runs a 3-task array and more side by side.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:${SLURM_LOCAL_SHARE:-4}
EOF
    mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
}

last_line() { tail -n 1 "$DIR/$1.log" 2>/dev/null | sed 's/^\[[^]]*\] //'; }

fail_with_logs() {
    local f
    for f in "$DIR/slurmctld.log" "$DIR/slurmd.log" /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
    done
    stop >/dev/null 2>&1 || true
    die "$1"
}

start() {
    install_slurm
    start_munge
    if ! pid slurmctld >/dev/null || ! pid slurmd >/dev/null; then
        write_conf
        pid slurmctld >/dev/null || slurmctld || fail_with_logs "slurmctld failed to start"
        pid slurmd >/dev/null || slurmd || fail_with_logs "slurmd failed to start"
        local i  # they daemonise before they write their PID files
        for i in $(seq 50); do pid slurmctld >/dev/null && pid slurmd >/dev/null && break; sleep 0.1; done
    fi
    # A query of a dead controller takes 10 s or more: check the daemons and bound each sinfo.
    local state="" end=$((SECONDS + ${SLURM_LOCAL_TIMEOUT:-60}))
    while [ "$state" != idle ]; do
        pid slurmctld >/dev/null || fail_with_logs "slurmctld died: $(last_line slurmctld)"
        pid slurmd >/dev/null || fail_with_logs "slurmd died: $(last_line slurmd)"
        [ "$SECONDS" -lt "$end" ] || fail_with_logs "node not idle after ${SLURM_LOCAL_TIMEOUT:-60} s (state: ${state:-no answer})"
        sleep 0.5
        state="$(timeout 5 sinfo -h -N -o %t 2>/dev/null || true)"
    done
    [ -z "${SUDO_UID:-}" ] || chown "$SUDO_UID:$SUDO_GID" "$DIR"
    log "cluster up: $(sinfo -h -N -o '%N %t cpus=%c mem=%m')"
    echo "export SLURM_CONF=$SLURM_CONF"
}

"$1"
