#!/usr/bin/env bash
# A real, one-host Slurm cluster for the tests (and for trying the Slurm executor on a laptop).
# Idempotent and quiet when it already runs; needs root (or passwordless sudo) when something is
# missing. Run by scripts/prepare-test-machine.sh, so `make test` needs nothing else.
#
# May install (Debian): slurmctld slurmd slurm-client munge (Slurm 22.05 on Debian 12).
# Writes /etc/slurm/slurm.conf only when none exists or it is the one this script wrote (a foreign
# configuration is left alone and used as it is). State, spool, logs and pids live under $STATE.
# Starts: munged, slurmctld, and two slurmd on this host (nodes cpt-n1 and cpt-n2, ports 17101 and
# 17102) in partitions `debug` (default, MaxTime 10 min), `short` (MaxTime 1 min) and `urgent`
# (preempts the other two), so that two-node jobs, time limits and preemption happen for real on
# one machine. No cgroups, no accounting daemon.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "slurm-local: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

CONF=/etc/slurm/slurm.conf
STATE=${CPT_SLURM_LOCAL_STATE:-/var/lib/cpt-slurm-local}
MARK="# written by cpt-panel scripts/slurm-local.sh"
NODES=(cpt-n1 cpt-n2)
PORTS=(17101 17102)

need=()
for bin in slurmctld slurmd sbatch munged; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$bin")
done
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install slurmctld slurmd slurm-client munge"
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# --- munge ---------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  as_root mungekey -c -f >/dev/null
  as_root chown munge:munge /etc/munge/munge.key
  as_root chmod 0400 /etc/munge/munge.key
fi
if ! munge -n >/dev/null 2>&1; then
  say "starting munged"
  as_root mkdir -p /run/munge
  as_root chown munge:munge /run/munge
  as_root runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- configuration -------------------------------------------------------------------------
if [ ! -e "$CONF" ] || grep -qF "$MARK" "$CONF"; then
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 / 4}' /proc/meminfo)  # a quarter per node
  tmp=$(mktemp)
  {
    echo "$MARK"
    echo "ClusterName=cpt-local"
    echo "SlurmctldHost=$host"
    echo "SlurmUser=root"
    echo "SlurmctldPort=17100"
    echo "AuthType=auth/munge"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "JobCompType=jobcomp/none"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    # Finished jobs stay visible to squeue/scontrol this long (there is no sacct without accounting).
    echo "MinJobAge=600"
    echo "KillWait=10"
    echo "InactiveLimit=0"
    echo "SchedulerType=sched/backfill"
    echo "StateSaveLocation=$STATE/ctld"
    echo "SlurmdSpoolDir=$STATE/slurmd-%n"
    echo "SlurmctldPidFile=$STATE/slurmctld.pid"
    echo "SlurmdPidFile=$STATE/slurmd-%n.pid"
    echo "SlurmctldLogFile=$STATE/slurmctld.log"
    echo "SlurmdLogFile=$STATE/slurmd-%n.log"
    for i in "${!NODES[@]}"; do
      echo "NodeName=${NODES[$i]} NodeHostname=$host NodeAddr=127.0.0.1 Port=${PORTS[$i]} CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    # A job in `urgent` preempts (cancels, after a 30 s grace with SIGTERM) jobs of the others.
    echo "PreemptType=preempt/partition_prio"
    echo "PreemptMode=CANCEL"
    nodes=$(IFS=,; echo "${NODES[*]}")
    echo "PartitionName=debug Nodes=$nodes Default=YES MaxTime=10 State=UP PriorityTier=1 GraceTime=30"
    echo "PartitionName=short Nodes=$nodes Default=NO MaxTime=1 State=UP PriorityTier=1 GraceTime=30"
    echo "PartitionName=urgent Nodes=$nodes Default=NO MaxTime=10 State=UP PriorityTier=10 PreemptMode=OFF"
  } >"$tmp"
  if ! cmp -s "$tmp" "$CONF" 2>/dev/null; then
    say "writing $CONF"
    as_root mkdir -p /etc/slurm
    as_root install -m 0644 "$tmp" "$CONF"
    changed=1
  fi
  rm -f "$tmp"
fi
as_root mkdir -p "$STATE/ctld"

# --- daemons -------------------------------------------------------------------------------
if [ "${changed:-0}" = 1 ]; then
  # A new configuration: restart the daemons this script started (by their pid files); jobs of
  # the old configuration are dropped (slurmctld -c).
  for pidfile in "$STATE"/slurmd-*.pid "$STATE/slurmctld.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    as_root kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
fi
if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
  say "starting slurmctld"
  as_root /usr/sbin/slurmctld -c
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.1; done
fi
for node in "${NODES[@]}"; do
  pidfile="$STATE/slurmd-$node.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    continue
  fi
  say "starting slurmd $node"
  as_root /usr/sbin/slurmd -N "$node"
done
# Nodes come up within a few seconds of their slurmd registering.
for _ in $(seq 100); do
  idle=$(sinfo -h -p debug -o '%D %t' 2>/dev/null | awk '$2 ~ /^(idle|alloc|mix)/ {n += $1} END {print n + 0}')
  [ "$idle" -ge "${#NODES[@]}" ] && exit 0
  sleep 0.2
done
say "nodes not up yet:"; sinfo -N 2>&1 | sed 's/^/  /'
exit 1
