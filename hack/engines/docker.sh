#!/usr/bin/env bash
# A private dockerd (Debian's docker.io 20.10, started by hand: no systemd) whose daemon.json adds the runtime
# "tsrt" = dist/tsrt next to the default runc, with the busybox image loaded and a bridge network for the
# libnetwork prestart hook.
#   hack/engines/docker.sh up      start it; prints the DOCKER_HOST to export
#   hack/engines/docker.sh down    remove its containers and network, stop it by pid, unmount what it left
# ENGINE_PREFIX (default tsrteng) names the private paths (see common.sh).
set -euo pipefail
. "$(dirname "$0")/common.sh"
SOCK=$RUN/docker.sock
PIDFILE=$RUN/docker.pid
DATA=$LIB/docker
EXEC_ROOT=$RUN/docker
NET=${PREFIX}net
BRIDGE=${PREFIX:0:10}-br0
SUBNET=${ENGINE_SUBNET:-172.31.253.0/24}
docker() { DOCKER_HOST=unix://$SOCK /usr/bin/docker "$@"; }

up() {
  [ -x "$TSRT_BIN" ] || { echo "docker.sh: $TSRT_BIN missing (npm run build)" >&2; exit 1; }
  private_dir "$WORK"
  images
  mkdir -p "$WORK/docker" "$RUN"
  # "bridge": "none" and "iptables": false keep this daemon off docker0 and the host's iptables rules.
  cat > "$WORK/docker/daemon.json" <<JSON
{ "runtimes": { "tsrt": { "path": "$TSRT_BIN" } },
  "storage-driver": "overlay2", "iptables": false, "ip-masq": false, "bridge": "none",
  "cgroup-parent": "/$PREFIX" }
JSON
  if ! [ -S "$SOCK" ] || ! docker version >/dev/null 2>&1; then
    setsid /usr/sbin/dockerd --config-file "$WORK/docker/daemon.json" --data-root "$DATA" --exec-root "$EXEC_ROOT" \
      -H "unix://$SOCK" --pidfile "$PIDFILE" > "$WORK/docker/dockerd.log" 2>&1 < /dev/null &
    wait_for 60 docker version || { tail -20 "$WORK/docker/dockerd.log" >&2; echo "docker.sh: dockerd did not come up" >&2; exit 1; }
  fi
  docker image inspect tsrt-busybox:latest >/dev/null 2>&1 || docker load -q -i "$WORK/images/busybox-docker.tar" >&2
  docker network inspect "$NET" >/dev/null 2>&1 ||
    docker network create -o com.docker.network.bridge.name="$BRIDGE" --subnet "$SUBNET" "$NET" >/dev/null
  echo "DOCKER_HOST=unix://$SOCK"
}

down() {
  if [ -S "$SOCK" ] && docker version >/dev/null 2>&1; then
    local ids
    ids=$(docker ps -aq)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
  fi
  stop_daemon "$PIDFILE" "$BRIDGE"
}

dispatch "$@"
