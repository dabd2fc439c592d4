#!/usr/bin/env bash
# Brings up a two-node Slurm cluster on this one machine, from nothing, for tsrt's Slurm and MPI tests:
#   munged (private key and socket), slurmctld in netns cluster-ctl, slurmd "nodes" cn1 and cn2 each in its own
#   netns (and UTS namespace, so `hostname` names the node), all on bridge cluster-br0 in a private /24, with
#   private spool/state/log dirs under $CLUSTER_DIR and an oci.conf that runs `srun --container` through tsrt.
#   hack/cluster/up.sh     (then: export SLURM_CONF=/var/tmp/cluster-tsrt/etc/slurm.conf)
# hack/cluster/down.sh stops it by the pids recorded here and removes every link, netns and directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/env.sh"
[ $# -eq 0 ] || { echo "cluster: no options are taken (settings are in hack/cluster/env.sh)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "cluster: run as root (it makes network namespaces and starts daemons)" >&2; exit 1; }
for tool in slurmctld slurmd munged mungekey ip nsenter unshare; do
  command -v "$tool" >/dev/null || { echo "cluster: $tool is missing (bash hack/deps.sh installs slurm-wlm and munge)" >&2; exit 1; }
done
tsrt="${TSRT:-$repo/dist/tsrt}"
[ -x "$tsrt" ] || { echo "cluster: $tsrt is missing (npm run build)" >&2; exit 1; }
pids="$CLUSTER_DIR/pids"
if [ -e "$pids" ]; then
  # A cluster whose daemons are all gone (the machine rebooted, or a run was killed along with them) only
  # left links, namespaces and files: clear those. One with a live daemon is someone's running cluster.
  alive=$(awk '$1 != "link" && $1 != "netns" {print $2}' "$pids" | while read -r pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi; done)
  if [ -n "$alive" ]; then
    echo "cluster: already up (daemons $(echo $alive) of $pids run); hack/cluster/down.sh first" >&2
    exit 1
  fi
  bash "$here/down.sh" >&2
fi

# From here on a failure takes down whatever was started, so a half-built cluster never stays behind.
trap 'echo "cluster: bring-up failed; tearing down" >&2; bash "$here/down.sh" >&2' ERR

# shellcheck source=../private-dir.sh
source "$here/../private-dir.sh"
private_dir "$CLUSTER_DIR"
mkdir -p "$CLUSTER_DIR"/{etc,munge,state,spool,log,run,tmp}
: > "$pids"
# Users' containers keep their tsrt state here (the oci.conf --root), one directory per node and user.
chmod 1777 "$CLUSTER_DIR/run" "$CLUSTER_DIR/tmp"
chmod 755 "$CLUSTER_DIR"
for node in "${CLUSTER_NODES[@]}"; do mkdir -p "$CLUSTER_DIR/spool/$node"; done

# --- munge: its own key and socket; munged insists on owning its directories and refuses group/other write.
chown munge:munge "$CLUSTER_DIR/munge"
chmod 755 "$CLUSTER_DIR/munge"
setpriv --reuid munge --regid munge --init-groups mungekey --create --keyfile="$CLUSTER_DIR/munge/munge.key"
setsid setpriv --reuid munge --regid munge --init-groups munged --foreground --socket="$CLUSTER_DIR/munge/munge.socket" \
  --key-file="$CLUSTER_DIR/munge/munge.key" --pid-file="$CLUSTER_DIR/munge/munged.pid" \
  --log-file="$CLUSTER_DIR/log/munged.log" --seed-file="$CLUSTER_DIR/munge/munged.seed" \
  </dev/null >>"$CLUSTER_DIR/log/munged.log" 2>&1 &
echo "munged $!" >> "$pids"
wait_for 10 test -S "$CLUSTER_DIR/munge/munge.socket" || { echo "cluster: munged did not start (see $CLUSTER_DIR/log/munged.log)" >&2; false; }

# --- network: a bridge of our own with the host's end, and one netns per daemon on a veth pair.
ip link add "$CLUSTER_BRIDGE" type bridge
echo "link $CLUSTER_BRIDGE" >> "$pids"
ip addr add "$CLUSTER_HOST_ADDR/24" dev "$CLUSTER_BRIDGE"
ip link set "$CLUSTER_BRIDGE" up
attach_netns() { # name address
  local ns="cluster-$1" host_end="cl-$1"
  ip netns add "$ns"
  echo "netns $ns" >> "$pids"
  ip link add "$host_end" type veth peer name eth0 netns "$ns"
  echo "link $host_end" >> "$pids"
  ip link set "$host_end" master "$CLUSTER_BRIDGE" up
  ip -n "$ns" addr add "$2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}
attach_netns ctl "$CLUSTER_CTL_ADDR"
for node in "${CLUSTER_NODES[@]}"; do attach_netns "$node" "${CLUSTER_NODE_ADDR[$node]}"; done

# --- configuration
node_lines=""
for node in "${CLUSTER_NODES[@]}"; do
  # 4 CPUs per node (config_overrides: the two real cores are shared), so 4 MPI ranks fit on one node.
  node_lines+="NodeName=$node NodeAddr=${CLUSTER_NODE_ADDR[$node]} NodeHostname=$node CPUs=4 RealMemory=1000 State=UNKNOWN"$'\n'
done
cat > "$CLUSTER_DIR/etc/slurm.conf" <<CONF
# The tsrt test cluster (hack/cluster/up.sh). Daemons run as root; jobs run as their submitting user.
ClusterName=tsrtcluster
SlurmctldHost=ctl($CLUSTER_CTL_ADDR)
SlurmctldPort=$CLUSTER_CTL_PORT
SlurmdPort=$CLUSTER_SLURMD_PORT
SrunPortRange=$CLUSTER_SRUN_PORTS
AuthType=auth/munge
AuthInfo=socket=$CLUSTER_DIR/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$CLUSTER_DIR/spool/%n
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=debug
# Two slurmd share one kernel: process-tree tracking keeps each node's steps apart without both daemons
# managing the same cgroup v1 "slurm" directories (cgroup.conf is still valid should a site switch to
# proctrack/cgroup on a real node).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=5
InactiveLimit=0
MinJobAge=60
$node_lines
PartitionName=tsrt Nodes=$(IFS=,; echo "${CLUSTER_NODES[*]}") Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$CLUSTER_DIR/etc/cgroup.conf" <<CONF
# Hybrid host without systemd: the v1 controllers under /sys/fs/cgroup are where limits go (cgroup2 at
# /sys/fs/cgroup/unified only owns hugetlb); there is no systemd to ask for scopes.
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
CONF
# The container id is unique per node, job, step and task; the state root per node and user, so the same
# uid on two "nodes" of one kernel never sees the other node's containers.
root_opt="--root $CLUSTER_DIR/run/tsrt-%n-%u"
id_pat="%n.%j.%s.%t"
{
  echo "# srun/sbatch --container=BUNDLE through tsrt, run as the submitting user (rootless)."
  echo "RunTimeQuery=\"$tsrt $root_opt state $id_pat\""
  # exec: slurmstepd runs this through /bin/sh -c and signals the task's process tree; with tsrt run as the
  # task itself (not a child of a shell that SIGTERM kills first), the container stays in that tree until
  # SIGKILL. --keep leaves the stopped record for RunTimeQuery and RunTimeDelete, which slurmstepd runs
  # after every step (without it, the query of a vanished container lands in the job's stderr).
  # Not RunTimeCreate/RunTimeStart: 22.05 runs the create with its output captured in a pipe and waits for
  # EOF, but the created container holds that pipe as its stdio, so the create never returns and start is
  # never run.
  # XDG_CACHE_HOME: the runtime gets slurmd's environment (HOME=/root), and a SIF named by the bundle's
  # org.tsrt.sif annotation is extracted, unprivileged, into a sandbox cache the user must be able to write.
  echo "RunTimeRun=\"exec env XDG_CACHE_HOME=$CLUSTER_DIR/run/cache-%n-%u $tsrt $root_opt run --keep --bundle %b $id_pat\""
  echo "RunTimeKill=\"$tsrt $root_opt kill --all $id_pat KILL\""
  echo "RunTimeDelete=\"$tsrt $root_opt delete --force $id_pat\""
} > "$CLUSTER_DIR/etc/oci.conf"

# --- daemons: each execs in place through nsenter/unshare, so $! is the daemon's own pid.
start_in_ns() { # name logname command...
  local name="$1" log="$CLUSTER_DIR/log/$2.out"; shift 2
  setsid nsenter --net="/run/netns/cluster-$name" -- unshare --uts -- sh -c 'hostname "$0"; exec "$@"' "$name" "$@" \
    </dev/null >>"$log" 2>&1 &
  echo "$name $!" >> "$pids"
}
start_in_ns ctl slurmctld slurmctld -D -i -f "$SLURM_CONF"
for node in "${CLUSTER_NODES[@]}"; do
  start_in_ns "$node" "slurmd-$node" slurmd -D -N "$node" -f "$SLURM_CONF"
done

# Up when both nodes are idle (bounded wait; the daemons register within seconds).
nodes_idle() { [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2=="idle"' | wc -l)" -eq "${#CLUSTER_NODES[@]}" ]; }
if ! wait_for 60 nodes_idle; then
  sinfo -N >&2 || true
  echo "cluster: nodes did not come up idle (logs in $CLUSTER_DIR/log)" >&2
  false
fi
trap - ERR
echo "cluster: up; export SLURM_CONF=$SLURM_CONF"
sinfo -N
