# Shared by docker.sh and containerd.sh (sourced). PREFIX names every private path, so several daemons (and
# other users of the default paths) can run side by side:
#   /var/tmp/$PREFIX   configs, images, logs      /run/$PREFIX   sockets, pid files, exec roots, runtime roots
#   /var/lib/$PREFIX   data roots (images, overlay snapshots)
#   /sys/fs/cgroup/*/$PREFIX   the cgroup parent of every container and pod (left behind by the engines)
PREFIX=${ENGINE_PREFIX:-tsrteng}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TSRT_BIN=${TSRT_BIN:-$REPO/dist/tsrt}
WORK=/var/tmp/$PREFIX
RUN=/run/$PREFIX
LIB=/var/lib/$PREFIX
# shellcheck source=../private-dir.sh
source "$REPO/hack/private-dir.sh"

# images: builds the busybox/pause archives once per work dir.
images() {
  [ -s "$WORK/images/pause-oci.tar" ] || bash "$REPO/hack/engines/image.sh" "$WORK/images" >&2
}

# wait_for SECONDS CMD...: retries CMD until it succeeds, the bound scaled with the load.
. "$REPO/hack/wait.sh"

# stop_pid PIDFILE: TERM, then KILL after 30 s, of the daemon this script started.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
  kill -TERM "$pid"
  wait_for 30 sh -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  wait_for 10 sh -c "! kill -0 $pid" || true
  rm -f "$1"
}

# unmount_under DIR...: what a daemon left mounted below DIR (netns bind mounts, overlay snapshots, shm),
# deepest first.
unmount_under() {
  local dir m
  for dir in "$@"; do
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
}

# remove_private_dirs: everything under this prefix's run and lib dirs is ours (sockets, runtime roots given
# to ctr, data roots); never rm -rf through something still mounted there.
remove_private_dirs() {
  local d
  for d in "$RUN" "$LIB"; do
    unmount_under "$d"
    if awk -v d="$d" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
      echo "$(basename "$0"): mounts left under $d, not removing it" >&2
    else
      rm -rf "$d"
    fi
  done
}

# remove_cgroups: the engines leave their (empty) parent cgroups behind; removed bottom-up in every hierarchy.
remove_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/"$PREFIX" /sys/fs/cgroup/"$PREFIX"; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}

# stop_daemon PIDFILE BRIDGE: after the engine has removed its containers, the daemon by pid, the bridge it
# made, and everything of the prefix left on the host.
stop_daemon() {
  stop_pid "$1"
  ip link del "$2" 2>/dev/null || true
  remove_private_dirs
  remove_cgroups
}

# dispatch up|down: each engine script defines up() and down().
dispatch() {
  case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
  esac
}
