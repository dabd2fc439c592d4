#!/usr/bin/env bash
# System packages tsrt needs on Debian 12, from apt only:
#   build:   gcc g++ make python3 (node-gyp), libseccomp-dev (the addon compiles seccomp profiles with it),
#            libc6-dev (libc.a: native/executor/tsrt-executor is linked static)
#   run:     uidmap (newuidmap/newgidmap for multi-range rootless mappings)
#   bundles: busybox-static (hack/mkbundle.sh)
#   tests:   runc crun (their `spec` output is validated), procps, util-linux (runuser), python3 (console
#            socket receiver), gcc (the seccomp agent of test/e2e/seccomp.test.ts),
#            iproute2 (`ip`: the interfaces the netDevices tests move), libc6-dev (libc.a: the static attacker
#            of test/security/), util-linux's nsenter (reading a container's sysctls from the host),
#            dbus python3-dbus python3-gi (a private dbus-daemon and the fake systemd of test/e2e/systemd.test.ts),
#            strace (test/e2e/syscalls.test.ts counts what the small commands ask of the kernel),
#            groff-base man-db (test/unit/manual.test.ts renders every generated man page with groff -ww and man -l)
#            clang-format (hack/check-format.sh and test/unit/lint.test.ts check native/ against native/.clang-format)
#   native checks: clang clang-tools (the static analyzer), libclang-rt-14-dev (libFuzzer, ASan and UBSan
#            runtimes), llvm (llvm-symbolizer): hack/check-native.sh and test/security/native-*.test.ts
#   cluster: slurm-wlm munge (the two-node test cluster of hack/cluster/ and test/cluster/), openmpi-bin
#            libopenmpi-dev (mpicc/mpirun: the MPI ring of test/cluster/ and hack/cluster/mpi-bench)
#   SIF:     squashfs-tools (mksquashfs for test images, unsquashfs for the sandbox fallback), squashfuse and
#            fuse2fs (unprivileged image mounts), fuse3 (fusermount3), e2fsprogs (mkfs.ext3 for ext3 test
#            images), gnupg (the tests export the fixtures' PGP public key into a keyring)
#   singularity run: openmpi-bin libopenmpi-dev (mpirun and mpicc of test/singularity/run-mpi.test.ts; the
#            MPI pods of test/engines/cri-sif-mpi.test.ts bind the host's Open MPI in)
#   singularity build: squashfs-tools (mksquashfs writes a SIF's root filesystem, unsquashfs reads base images),
#            debootstrap (Bootstrap: debootstrap as root), mmdebstrap (the same without root, in a user namespace)
#   singularity --net: passt (pasta: user-mode networking and portmap= for unprivileged users; the
#            network tests serve from inside a container and fetch from the host), uidmap (newuidmap for the
#            network's user namespace), util-linux (unshare, setpriv)
#   singularity registries: docker-registry (distribution 2.8: the registry test/singularity/registry-*.test.ts
#            start on 127.0.0.1), skopeo (pushes the test images into it), apache2-utils (htpasswd: the bcrypt
#            password file of the Basic-auth registry), openssl (the test CA, server and token-signing certificates)
set -euo pipefail
packages=(gcc g++ make python3 libc6-dev libseccomp-dev uidmap busybox-static runc crun procps util-linux iproute2 dbus python3-dbus python3-gi ca-certificates
  squashfs-tools squashfuse fuse2fs fuse3 e2fsprogs gnupg debootstrap mmdebstrap strace passt groff-base man-db clang-format
  slurm-wlm munge openmpi-bin libopenmpi-dev docker-registry skopeo apache2-utils openssl
  clang clang-tools libclang-rt-14-dev llvm)
missing=()
# test/oci-validation builds the runtime-tools validation suite from Debian's source package with Go and these
# packaged Go libraries (its build.sh installs them too, for a run on its own)
packages+=(golang-go xz-utils golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev
  golang-github-blang-semver-dev golang-github-hashicorp-go-multierror-dev golang-github-mrunalp-fileutils-dev
  golang-github-opencontainers-specs-dev golang-github-opencontainers-selinux-dev golang-github-sirupsen-logrus-dev
  golang-github-stretchr-testify-dev golang-github-urfave-cli-dev golang-github-xeipuuv-gojsonschema-dev
  golang-gocapability-dev golang-golang-x-sys-dev)
# engines (hack/engines/, test/engines/): Docker 20.10 (docker.io brings its containerd), containerd 1.6 with ctr
# and its CRI plugin, the CNI plugins for pod networks, docker-init for --init (tini), script(1) for -it
# (bsdutils), and the CRI test client's gRPC (python3-grpcio, python3-protobuf, python3-grpc-tools)
packages+=(docker.io containerd containernetworking-plugins iptables tini bsdutils python3-grpcio python3-protobuf
  python3-grpc-tools)
# engines (test/engines, hack/engines/*.sh): podman drives tsrt through conmon; the CNI plugins give its bridge
# network, catatonit is --init and the pod infra process, slirp4netns serves rootless podman
packages+=(podman conmon containernetworking-plugins catatonit iptables slirp4netns)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian starts docker-registry as a service on port 5000 when installed; the tests start their own on free ports.
if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi
