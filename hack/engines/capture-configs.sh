#!/usr/bin/env bash
# Regenerates test/fixtures/engine-configs/: the config.json and exec process.json files that the installed
# engines (podman with conmon, docker, containerd's ctr and its CRI plugin) hand to an OCI runtime. Each engine
# is started privately (hack/engines/*.sh, prefix tsrtcap) with a capturing shim as its runtime: the shim
# copies the bundle's config.json at create and the --process file at exec, then execs Debian's runc, so the
# engines see a real runtime and nothing of tsrt is involved. Writes, besides the captures, PROVENANCE.md (the
# date, the engine and runtime versions, the command behind each file) and SHA256SUMS.
#   hack/engines/capture-configs.sh [OUT]     OUT defaults to test/fixtures/engine-configs
# Needs root, hack/deps.sh's engines and a build (podman.sh makes its image with hack/mkbundle.sh); about a minute.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(realpath -m "${1:-$REPO/test/fixtures/engine-configs}")
PREFIX=tsrtcap
WORK=/var/tmp/$PREFIX-capture
REAL_RUNC=/usr/sbin/runc
[ "$(id -u)" -eq 0 ] || { echo "capture-configs: the engines' daemons need root" >&2; exit 1; }
for f in "$REAL_RUNC" /usr/bin/podman /usr/sbin/dockerd /usr/bin/docker /usr/bin/containerd /usr/bin/ctr /usr/bin/script; do
  [ -x "$f" ] || { echo "capture-configs: $f is missing (bash hack/deps.sh installs the engines)" >&2; exit 1; }
done
# The prefix names host-wide things (paths, bridges, cgroups): a second capture waits for the first.
exec 9> "/run/lock/$PREFIX.lock"
/usr/bin/flock 9

rm -rf "$WORK"
mkdir -p "$WORK/captured" "$WORK/mnt"
echo "a file of the bind mount" > "$WORK/mnt/marker"
IMAGE=localhost/tsrt-busybox:latest

# shim ENGINE: a runtime named tsrt (podman keys its handling on the basename) that records what ENGINE sends.
# The container id is the last argument of create and exec in every engine's argv.
shim() {
  local dir=$WORK/shim/$1
  mkdir -p "$dir" "$WORK/captured/$1"
  cat > "$dir/tsrt" <<EOF
#!/bin/sh
out=$WORK/captured/$1
sub= bundle=. process= prev=
for a in "\$@"; do
  case "\$prev" in
    --bundle|-b) bundle=\$a ;;
    --process|-p) process=\$a ;;
  esac
  case "\$a" in
    --bundle=*) bundle=\${a#--bundle=} ;;
    --process=*) process=\${a#--process=} ;;
    create|run|exec) [ -n "\$sub" ] || sub=\$a ;;
  esac
  prev=\$a
done
eval "id=\\\${\$#}"
case "\$sub" in
  create|run) cp "\$bundle/config.json" "\$out/\$id.config.json" ;;
  exec) [ -z "\$process" ] || cp "\$process" "\$out/\$id.process.json" ;;
esac
exec $REAL_RUNC "\$@"
EOF
  chmod 755 "$dir/tsrt"
  echo "$dir/tsrt"
}

# keep NAME ENGINE ID KIND COMMAND: moves the capture of container ID to OUT/NAME.KIND.json and notes the command.
keep() {
  local name=$1 engine=$2 id=$3 kind=$4 command=$5 src="$WORK/captured/$2/$3.$4.json"
  [ -s "$src" ] || { echo "capture-configs: $engine wrote no $kind for $name ($id)" >&2; ls "$WORK/captured/$engine" >&2; exit 1; }
  /usr/bin/python3 -m json.tool --indent 2 "$src" > "$NEW/$name.$kind.json"
  printf '| `%s.%s.json` | `%s` |\n' "$name" "$kind" "${command//|/\\|}" >> "$WORK/table"
}

NEW=$WORK/new
mkdir -p "$NEW"
: > "$WORK/table"

# Whatever was started is stopped on the way out, also after a failure (each down is a no-op when not up).
STARTED=()
stop_engines() {
  local e
  for e in "${STARTED[@]}"; do
    case "$e" in
      podman) PODMAN_TSRT_NAME=podman-$PREFIX bash "$REPO/hack/engines/podman.sh" teardown ;;
      *) ENGINE_PREFIX=$PREFIX bash "$REPO/hack/engines/$e.sh" down ;;
    esac
  done
  STARTED=()
}
trap stop_engines EXIT

capture_docker() {
  local bin id
  bin=$(shim docker)
  STARTED+=(docker)
  DOCKER_HOST=$(ENGINE_PREFIX=$PREFIX ENGINE_SUBNET=172.31.248.0/24 TSRT_BIN=$bin bash "$REPO/hack/engines/docker.sh" up |
    sed -n 's/^DOCKER_HOST=//p')
  export DOCKER_HOST
  local image=tsrt-busybox:latest
  id=$(/usr/bin/docker run -d --runtime tsrt "$image" sleep 1000)
  keep docker-run-d-sleep docker "$id" config "docker run -d --runtime tsrt IMAGE sleep 1000"
  /usr/bin/script -qec "/usr/bin/docker exec -t $id sh -c 'tty; echo exec-t-ok'" /dev/null > /dev/null
  keep docker-exec-tty docker "$id" process "docker exec -t CONTAINER sh -c 'tty; echo exec-t-ok'"
  /usr/bin/docker rm -f "$id" > /dev/null
  id=$(/usr/bin/docker run -d --runtime tsrt --network ${PREFIX}net "$image" sh -c 'ip -4 addr show eth0 | grep inet')
  /usr/bin/docker wait "$id" > /dev/null
  keep docker-bridge-net-prestart-hook docker "$id" config "docker run --runtime tsrt --network BRIDGE-NET IMAGE sh -c 'ip -4 addr show eth0 | grep inet'"
  /usr/bin/docker rm -f "$id" > /dev/null
  unset DOCKER_HOST
  stop_engines
}

capture_containerd() {
  local bin cri address
  bin=$(shim ctr)
  cri=$(shim cri)
  STARTED+=(containerd)
  address=$(ENGINE_PREFIX=$PREFIX ENGINE_CNI_SUBNET=10.89.248.0/24 TSRT_BIN=$cri bash "$REPO/hack/engines/containerd.sh" up |
    sed -n 's/^CONTAINERD_ADDRESS=//p')
  local ctr=(/usr/bin/ctr --address "$address")
  local rt=(--runtime io.containerd.runc.v2 --runc-binary "$bin")
  "${ctr[@]}" run -d "${rt[@]}" "$IMAGE" c1 sleep 1000 > /dev/null
  keep ctr-run-d-sleep ctr c1 config "ctr run -d --runc-binary SHIM IMAGE c1 sleep 1000"
  /usr/bin/script -qec "${ctr[*]} task exec -t --exec-id e1 c1 sh -c 'tty; echo exec-t-ok'" /dev/null > /dev/null
  keep ctr-exec-tty ctr c1 process "ctr task exec -t --exec-id e1 c1 sh -c 'tty; echo exec-t-ok'"
  "${ctr[@]}" task kill -s SIGKILL c1 > /dev/null
  "${ctr[@]}" task rm -f c1 > /dev/null 2>&1 || true
  "${ctr[@]}" containers rm c1 > /dev/null
  /usr/bin/script -qec "${ctr[*]} run --rm -t ${rt[*]} $IMAGE c-tty sh -c 'tty; echo run-t-ok'" /dev/null > /dev/null
  keep ctr-run-tty ctr c-tty config "ctr run --rm -t --runc-binary SHIM IMAGE c-tty sh -c 'tty; echo run-t-ok'"
  "${ctr[@]}" run --rm "${rt[@]}" --seccomp --env X=1 --mount "type=bind,src=$WORK/mnt,dst=/mnt,options=rbind:ro" \
    "$IMAGE" c-sec sh -c 'echo $X; ls /mnt | head -1; grep Seccomp: /proc/self/status' > /dev/null
  keep ctr-seccomp-env-bindmount ctr c-sec config "ctr run --rm --seccomp --env X=1 --mount type=bind,src=DIR,dst=/mnt,options=rbind:ro IMAGE c-sec sh -c '…'"
  cat > "$WORK/pod.json" <<JSON
{ "handler": "tsrt", "network": "pod", "cgroup_parent": "/$PREFIX/pods", "log_dir": "$WORK/cri-logs",
  "annotations": { "io.tsrt.test": "yes" },
  "containers": [{ "name": "c1", "image": "$IMAGE", "command": ["sh", "-c", "echo started; sleep 1000"],
                   "envs": { "FOO": "bar" }, "annotations": { "io.tsrt.test": "yes" } }] }
JSON
  local report
  report=$(/usr/bin/python3 "$REPO/hack/engines/cri/cri_pod.py" "$address" "$WORK/pod.json")
  local ids
  ids=$(/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["sandbox"]["id"], r["containers"]["c1"]["id"])' <<< "$report")
  keep cri-containerd-sandbox-podnet cri "${ids% *}" config "CRI RunPodSandbox, runtime_handler tsrt, pod network (hack/engines/cri/cri_pod.py)"
  keep cri-containerd-container cri "${ids#* }" config "CRI CreateContainer in that pod: sh -c 'echo started; sleep 1000', env FOO=bar"
  stop_engines
}

capture_podman() {
  local bin name=podman-$PREFIX
  bin=$(shim podman)
  STARTED+=(podman)
  PODMAN_TSRT_NAME=$name PODMAN_TSRT_SUBNET=10.89.247 TSRT_BIN=$bin bash "$REPO/hack/engines/podman.sh" setup > /dev/null
  local pm=(/var/tmp/$name/bin/podman --runtime tsrt) image=localhost/$name-busybox:latest id
  id=$("${pm[@]}" run -d "$image" sleep 1000)
  keep podman-run-d-sleep podman "$id" config "podman run -d --runtime tsrt IMAGE sleep 1000"
  /usr/bin/script -qec "${pm[*]} exec -t $id sh -c 'tty; echo exec-t-ok'" /dev/null > /dev/null
  keep podman-exec-tty podman "$id" process "podman exec -t CONTAINER sh -c 'tty; echo exec-t-ok'"
  "${pm[@]}" rm -f -t 0 "$id" > /dev/null
  id=$("${pm[@]}" run -d --uidmap 0:100000:65536 "$image" id)
  "${pm[@]}" wait "$id" > /dev/null
  keep podman-userns-uidmap podman "$id" config "podman run --runtime tsrt --uidmap 0:100000:65536 IMAGE id"
  "${pm[@]}" rm -f -t 0 "$id" > /dev/null
  "${pm[@]}" pod create --name scpod > /dev/null
  id=$("${pm[@]}" run -d --pod scpod "$image" sh -c 'hostname; ip addr | grep inet')
  "${pm[@]}" wait "$id" > /dev/null
  keep podman-pod-member podman "$id" config "podman pod create --name scpod; podman run --runtime tsrt --pod scpod IMAGE sh -c 'hostname; ip addr | grep inet'"
  "${pm[@]}" pod rm -f -t 0 scpod > /dev/null
  stop_engines
}

capture_podman
capture_docker
capture_containerd

version() { "$@" 2>&1 | head -1; }
{
  cat <<EOF
# Engine configs: what the engines hand to an OCI runtime

Captured by \`hack/engines/capture-configs.sh\` on $(date -u +%Y-%m-%d) (UTC): each engine ran privately
with a shim as its runtime that copied the bundle's \`config.json\` at create and the \`--process\` file at exec,
then exec'd runc. Regenerate them with that script (as root, on Debian 12 with hack/deps.sh's engines); the
tests read them (test/e2e/seccomp.test.ts: the engines' default seccomp profiles; test/e2e/exec.test.ts: their
exec process files; test/unit/schema.test.ts: every file validates) and test/unit/fixtures.test.ts checks
\`SHA256SUMS\`.

## Versions

- $(version /usr/bin/podman --version); $(version /usr/bin/conmon --version)
- docker $(/usr/bin/docker --version | sed 's/^Docker version //') (Debian's docker.io, dockerd and its containerd-shim-runc-v2)
- $(version /usr/bin/containerd --version); ctr $(/usr/bin/ctr --version | sed 's/^ctr //')
- $(version $REAL_RUNC --version) (the runtime behind the shim)
- kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), cgroups $( [ -d /sys/fs/cgroup/unified ] && echo hybrid || echo v2)

## Files

| file | what made it |
|---|---|
EOF
  sort "$WORK/table"
} > "$NEW/PROVENANCE.md"
(cd "$NEW" && sha256sum *.json > SHA256SUMS)
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT/SHA256SUMS" "$OUT/PROVENANCE.md"
cp "$NEW"/* "$OUT/"
# The engines' image cache (hack/engines/common.sh's work dir) goes too: nothing of the capture stays.
rm -rf "$WORK" "/var/tmp/$PREFIX"
echo "capture-configs: $(ls "$OUT" | grep -c '\.json$') files in $OUT"
