#!/usr/bin/env bash
# Tears down what hack/cluster/up.sh started, by the pids and names it recorded: jobs are cancelled, step
# daemons and containers of the cluster's network namespaces stopped, then slurmd/slurmctld/munged, the
# netns and links, and $CLUSTER_DIR. Safe to run again; prints what it could not remove and exits 1.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/env.sh"
tsrt="${TSRT:-$repo/dist/tsrt}"
pids="$CLUSTER_DIR/pids"
[ -e "$pids" ] || { echo "cluster: not up (no $pids)"; exit 0; }
status=0

# Jobs first, while slurmctld can still end them on the nodes.
if command -v scancel >/dev/null; then timeout 20 scancel --full --quiet --partition tsrt 2>/dev/null || true; fi

# Processes living in one of our netns (slurmstepd, job tasks, containers) were all started by our slurmd.
our_netns=()
while read -r kind name; do
  [ "$kind" = netns ] && our_netns+=("$(stat -L -c %i "/run/netns/$name" 2>/dev/null)")
done < "$pids"
in_our_netns() {
  local ino; ino=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || return 1
  local n; for n in "${our_netns[@]}"; do [ -n "$n" ] && [ "$n" = "$ino" ] && return 0; done; return 1
}
daemon_pids=()
while read -r kind pid; do
  case "$kind" in link|netns) ;; *) daemon_pids+=("$pid") ;; esac
done < "$pids"
is_daemon() { local d; for d in "${daemon_pids[@]}"; do [ "$d" = "$1" ] && return 0; done; return 1; }
step_pids() {
  local p
  for p in /proc/[0-9]*; do p=${p#/proc/}; is_daemon "$p" && continue; in_our_netns "$p" && echo "$p"; done
}
for sig in TERM KILL; do
  leftover=$(step_pids)
  [ -z "$leftover" ] && break
  kill -"$sig" $leftover 2>/dev/null
  for _ in $(seq 50); do [ -z "$(step_pids)" ] && break; sleep 0.1; done
done

for pid in "${daemon_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for pid in "${daemon_pids[@]}"; do
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done

# Containers the jobs left in the cluster's tsrt roots (a job killed before its RunTimeDelete ran).
for root in "$CLUSTER_DIR"/run/tsrt-*; do
  [ -d "$root" ] || continue
  for id in $("$tsrt" --root "$root" list -q 2>/dev/null); do
    "$tsrt" --root "$root" delete --force "$id" || { echo "cluster: could not delete container $id in $root" >&2; status=1; }
  done
done

# Links before namespaces: deleting a netns destroys the veth peer inside it, and with it the host's end,
# behind our back.
while read -r kind name; do
  [ "$kind" = link ] && ip link show "$name" >/dev/null 2>&1 && { ip link del "$name" || status=1; }
done < "$pids"
while read -r kind name; do
  [ "$kind" = netns ] && [ -e "/run/netns/$name" ] && { ip netns del "$name" || status=1; }
done < "$pids"

if grep -q " $CLUSTER_DIR/" /proc/self/mountinfo; then
  echo "cluster: mounts under $CLUSTER_DIR remain:" >&2
  grep " $CLUSTER_DIR/" /proc/self/mountinfo >&2
  status=1
else
  rm -rf "$CLUSTER_DIR"
fi
[ $status -eq 0 ] && echo "cluster: down"
exit $status
