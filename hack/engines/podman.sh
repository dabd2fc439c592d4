#!/usr/bin/env bash
# podman (and conmon, CRI-O's runtime driver) on tsrt, with everything private to one directory pair so it runs
# beside other podman users and engines on the same host:
#   hack/engines/podman.sh setup [USER]   install from apt (hack/deps.sh), write containers.conf, import a busybox image
#                                         (USER: also for rootless podman as that user, storage under $W/rootless)
#   hack/engines/podman.sh teardown       stop what this setup started (by pid), unmount and remove its dirs
#   hack/engines/podman.sh env            print the environment the wrapper uses
# Afterwards $W/bin/podman is podman pointed at the private storage and config; pick a runtime with
# `--runtime tsrt` (dist/tsrt of this checkout) or `--runtime runc` (the host's, as the reference).
# TSRT_BIN (default dist/tsrt of this checkout) is the runtime named tsrt.
# PODMAN_TSRT_NAME (default podman-tsrt) names the dirs (W=/var/tmp/$NAME, R=/run/$NAME), the network and the
# bridge (p<NAME without podman->); PODMAN_TSRT_SUBNET (default 10.89.213) its /24.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
name="${PODMAN_TSRT_NAME:-podman-tsrt}"
case "$name" in podman-tsrt*) ;; *) echo "podman.sh: PODMAN_TSRT_NAME must start with podman-tsrt" >&2; exit 2 ;; esac
W="/var/tmp/$name"
R="/run/$name"
image="localhost/$name-busybox:latest"
tsrt="${TSRT_BIN:-$here/dist/tsrt}"
bridge="p${name#podman-}"; bridge="${bridge:0:15}"
subnet="${PODMAN_TSRT_SUBNET:-10.89.213}"

# containers.conf: the host has no CAP_SYS_RESOURCE, so podman's default rlimits (1048576) fail under every
# runtime; no systemd, so cgroupfs and a file event log; tsrt in runtime_supports_json so conmon passes it
# --log-format=json --log FILE exactly as it does runc, and podman reads errors from that log.
write_conf() {
  local conf="$1" run="$2" storage_dir="$3" cni="$4" network="$5"
  mkdir -p "$(dirname "$conf")" "$cni"
  cat > "$conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
init_path = "/usr/bin/catatonit"

[network]
network_backend = "cni"
network_config_dir = "$cni"
default_network = "$network"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$run/events.log"
tmp_dir = "$run/libpod"
volume_path = "$storage_dir/volumes"
infra_image = "localhost/$name-pause:latest"
runtime = "runc"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "tsrt"]

[engine.runtimes]
tsrt = ["$tsrt"]
runc = ["/usr/sbin/runc"]
EOF
}

# The bridge network, written by hand: podman 4.3 cannot name the bridge, and its built-in default would be the
# host-wide cni-podman0. No masquerade or firewall rules: the tests need container <-> host only.
write_network() {
  cat > "$W/cni/$name.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "$subnet.0/24", "gateway": "$subnet.1" }]]
      }
    }
  ]
}
EOF
}

write_wrapper() {
  mkdir -p "$W/bin"
  cat > "$W/bin/podman" <<EOF
#!/bin/sh
# podman on the private storage of hack/engines/podman.sh (root, or the rootless user's own tree)
if [ "\$(id -u)" -eq 0 ]; then
  export CONTAINERS_CONF="$W/etc/containers.conf"
  exec /usr/bin/podman --root "$W/storage" --runroot "$R/runroot" "\$@"
fi
export CONTAINERS_CONF="$W/rootless/containers.conf"
export XDG_RUNTIME_DIR="$W/rootless/xdg"
export HOME="$W/rootless/home"
exec /usr/bin/podman --root "$W/rootless/storage" --runroot "$W/rootless/run" "\$@"
EOF
  chmod 755 "$W/bin/podman"
}

# The image is hack/mkbundle.sh's busybox rootfs as a tarball; no registry is involved. The pod infra image is
# the same rootfs with catatonit, so `podman pod create` does not try to build or pull one.
build_images() {
  local as="${1:-}"
  local run=("$W/bin/podman")
  [ -n "$as" ] && run=(runuser -u "$as" -- "$W/bin/podman")
  "${run[@]}" image exists "$image" ||
    "${run[@]}" import -q --change 'CMD ["/bin/sh"]' "$W/busybox-rootfs.tar" "$image" >/dev/null
  "${run[@]}" image exists "localhost/$name-pause:latest" ||
    "${run[@]}" import -q --change 'ENTRYPOINT ["/catatonit", "-P"]' "$W/pause-rootfs.tar" \
      "localhost/$name-pause:latest" >/dev/null
}

setup() {
  local user="${1:-}"
  # podman, conmon, the CNI plugins, catatonit and slirp4netns are in hack/deps.sh's engines section
  bash "$here/hack/deps.sh" >/dev/null
  [ -x "$tsrt" ] || { echo "podman.sh: $tsrt is missing (npm run build)" >&2; exit 1; }
  # shellcheck source=../private-dir.sh
  source "$here/hack/private-dir.sh"
  private_dir "$W"
  mkdir -p "$W/etc" "$R"
  write_conf "$W/etc/containers.conf" "$R" "$W/storage" "$W/cni" "$name"
  write_network
  write_wrapper
  if [ ! -f "$W/busybox-rootfs.tar" ]; then
    rm -rf "$W/bundle"
    bash "$here/hack/mkbundle.sh" "$W/bundle" >/dev/null
    : > "$W/bundle/rootfs/etc/hosts"; : > "$W/bundle/rootfs/etc/resolv.conf"
    tar -C "$W/bundle/rootfs" --numeric-owner -cf "$W/busybox-rootfs.tar.part" .
    cp /usr/bin/catatonit "$W/bundle/rootfs/catatonit"
    tar -C "$W/bundle/rootfs" --numeric-owner -cf "$W/pause-rootfs.tar" .
    mv "$W/busybox-rootfs.tar.part" "$W/busybox-rootfs.tar"
    rm -rf "$W/bundle"
  fi
  chmod 755 "$W" "$W/bin"; chmod 644 "$W"/*.tar
  build_images
  if [ -n "$user" ]; then
    # Rootless podman keeps its own storage and runtime dir, owned by the user, inside $W.
    local group; group="$(id -gn "$user")"
    mkdir -p "$W/rootless"
    chown "$user:$group" "$W/rootless"
    runuser -u "$user" -- mkdir -p "$W/rootless/xdg" "$W/rootless/home" "$W/rootless/run" "$W/rootless/storage" \
      "$W/rootless/cni"
    chmod 700 "$W/rootless/xdg"
    write_conf "$W/rootless/containers.conf" "$W/rootless/run" "$W/rootless/storage" "$W/rootless/cni" podman
    chmod 644 "$W/rootless/containers.conf"
    build_images "$user"
  fi
  echo "podman.sh: ready; $W/bin/podman --runtime tsrt run --rm $image echo hi"
}

# Processes of this setup: conmon and everything else whose command line names our private dirs. Matched by
# path, then ended by pid: nothing of another podman on the host carries $W or $R in its argv.
our_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd="$( { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null)" || continue
    case "$cmd" in *"$W/"*|*"$R/"*) echo "${p#/proc/}" ;; esac
  done
}

teardown() {
  if [ -x "$W/bin/podman" ]; then
    "$W/bin/podman" pod rm -a -f -t 0 >/dev/null 2>&1 || true
    "$W/bin/podman" rm -a -f -t 0 >/dev/null 2>&1 || true
    if [ -d "$W/rootless/storage" ]; then
      local owner; owner="$(stat -c %U "$W/rootless")"
      runuser -u "$owner" -- "$W/bin/podman" rm -a -f -t 0 >/dev/null 2>&1 || true
      runuser -u "$owner" -- "$W/bin/podman" unshare rm -rf "$W/rootless/storage" >/dev/null 2>&1 || true
    fi
  fi
  # Rootless podman keeps a pause process (catatonit -P) holding its user namespace; its command line does
  # not name our dirs, but its pid file lies in the rootless tmp_dir of our containers.conf.
  if [ -s "$W/rootless/run/libpod/pause.pid" ]; then
    kill -KILL "$(cat "$W/rootless/run/libpod/pause.pid")" 2>/dev/null || true
  fi
  local pid
  for pid in $(our_pids); do [ "$pid" != $$ ] && kill -KILL "$pid" 2>/dev/null || true; done
  # Mounts under our dirs, deepest first (overlay merged dirs, netns binds, shm).
  { grep -oE " ($W|$R)/[^ ]*" /proc/self/mountinfo || true; } | awk '{print $1}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  # host-local IPAM keeps its leases under the network's name
  rm -rf "$W" "$R" "/var/lib/cni/networks/$name"
}

case "${1:-}" in
  setup) shift; setup "$@" ;;
  teardown) teardown ;;
  env) echo "CONTAINERS_CONF=$W/etc/containers.conf"; echo "PODMAN=$W/bin/podman"; echo "IMAGE=$image" ;;
  *) echo "usage: hack/engines/podman.sh setup [USER] | teardown | env" >&2; exit 2 ;;
esac
