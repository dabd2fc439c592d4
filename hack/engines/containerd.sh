#!/usr/bin/env bash
# A private containerd (Debian's containerd 1.6, started by hand: no systemd) for ctr and for its CRI plugin:
# the CRI runtime handler "tsrt" runs containerd-shim-runc-v2 with BinaryName = dist/tsrt, "runc" the host's
# runc, each with its own state root; pods get a private CNI bridge. The busybox image is imported into the
# "default" namespace (ctr) and, with the sandbox image registry.k8s.io/pause:3.6, into "k8s.io" (CRI).
#   hack/engines/containerd.sh up      start it; prints CONTAINERD_ADDRESS and the runtime roots
#   hack/engines/containerd.sh down    remove its tasks, containers and pods, stop it by pid, unmount what it left
# ENGINE_PREFIX (default tsrteng) names the private paths (see common.sh); ENGINE_CNI_SUBNET the pod subnet.
set -euo pipefail
. "$(dirname "$0")/common.sh"
STATE=$RUN/containerd
SOCK=$STATE/containerd.sock
PIDFILE=$RUN/containerd.pid
DATA=$LIB/containerd
CNI_DIR=$WORK/cni
BRIDGE=${PREFIX:0:10}-cni0
SUBNET=${ENGINE_CNI_SUBNET:-10.89.253.0/24}
ctr() { /usr/bin/ctr --address "$SOCK" "$@"; }

config() {
  mkdir -p "$WORK/containerd" "$CNI_DIR/net.d" "$RUN"
  cat > "$CNI_DIR/net.d/10-$PREFIX.conflist" <<JSON
{ "cniVersion": "0.4.0", "name": "$PREFIX",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$RUN/cni-ipam", "routes": [{ "dst": "0.0.0.0/0" }],
                "ranges": [[{ "subnet": "$SUBNET" }]] } },
    { "type": "loopback" } ] }
JSON
  # restrict_oom_score_adj: the sandbox asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE (this
  # host's bounding set lacks it); containerd then clamps to its own score. The stream server takes a free
  # port, so several containerds can run at once.
  cat > "$WORK/containerd/config.toml" <<TOML
version = 2
root = "$DATA"
state = "$STATE"
[grpc]
  address = "$SOCK"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CNI_DIR/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "$RUN/runc-cri-root"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsrt]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = ["io.tsrt.*", "org.tsrt.*"]
        container_annotations = ["org.tsrt.*"]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsrt.options]
          BinaryName = "$TSRT_BIN"
          Root = "$RUN/tsrt-cri-root"
          SystemdCgroup = false
TOML
}

up() {
  [ -x "$TSRT_BIN" ] || { echo "containerd.sh: $TSRT_BIN missing (npm run build)" >&2; exit 1; }
  private_dir "$WORK"
  images
  config
  if ! [ -S "$SOCK" ] || ! ctr version >/dev/null 2>&1; then
    setsid /usr/bin/containerd --config "$WORK/containerd/config.toml" > "$WORK/containerd/containerd.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    wait_for 60 ctr version || { tail -20 "$WORK/containerd/containerd.log" >&2; echo "containerd.sh: containerd did not come up" >&2; exit 1; }
  fi
  ctr images import "$WORK/images/busybox-oci.tar" >/dev/null
  ctr -n k8s.io images import "$WORK/images/busybox-oci.tar" >/dev/null
  ctr -n k8s.io images import "$WORK/images/pause-oci.tar" >/dev/null
  echo "CONTAINERD_ADDRESS=$SOCK"
  echo "RUNC_CRI_ROOT=$RUN/runc-cri-root/k8s.io"
  echo "TSRT_CRI_ROOT=$RUN/tsrt-cri-root/k8s.io"
}

# Tasks first (their shims exit with them), then containers; pods go through the CRI, which the tests clean
# up themselves, so whatever is left is removed as plain containers after its tasks are killed.
down() {
  if [ -S "$SOCK" ] && ctr version >/dev/null 2>&1; then
    local ns id
    for ns in $(ctr namespaces ls -q); do
      for id in $(ctr -n "$ns" tasks ls -q); do
        ctr -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
        ctr -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
      done
      for id in $(ctr -n "$ns" containers ls -q); do ctr -n "$ns" containers rm "$id" >/dev/null 2>&1 || true; done
    done
  fi
  stop_daemon "$PIDFILE" "$BRIDGE"
}

dispatch "$@"
