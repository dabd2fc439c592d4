#!/usr/bin/env bash
# Builds the opencontainers runtime-tools validation suite (runtimetest, the validation programs and the
# busybox rootfs tarball) from Debian 12's apt repositories only, into a cache directory.
#
# Usage: build.sh [-n] [CACHE_DIR]      (default CACHE_DIR: $OCI_VALIDATION_CACHE or /var/tmp/tsrt-oci-validation)
#   -n   do not call apt-get (the packages are known to be installed)
#
# Result: CACHE_DIR/bin/{runtimetest,<program>.t,rootfs-<arch>.tar.gz}. Each step is skipped when its output
# is already there; remove CACHE_DIR to rebuild from scratch.
#
# Why it is built this way:
# - Debian's binary package golang-github-opencontainers-runtime-tools-dev leaves out validation/ and
#   cmd/runtimetest; the *source* package's upstream tarball has them. The tarball is fetched through a
#   private deb-src list kept in CACHE_DIR (the system's apt configuration stays untouched) and checked
#   against the SHA-256 in the signed Sources index. `apt-get source` is not used because the mirror lacks
#   single files of both source versions (bookworm's orig tarball, trixie's .dsc).
# - The build is GOPATH mode against /usr/share/gocode (the packaged Go libraries), nothing from the network.
# - github.com/mndrix/tap-go is not packaged: tap-shim/tap.go, a small TAP-13 writer with the API the
#   programs call, is put in its place.
set -euo pipefail

install=1
if [ "${1:-}" = -n ]; then install=0; shift; fi
CACHE=${1:-${OCI_VALIDATION_CACHE:-/var/tmp/tsrt-oci-validation}}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC_PKG=golang-github-opencontainers-runtime-tools
# The trixie snapshot builds with bookworm's Go 1.19 and -dev packages; bookworm's own orig tarball is
# missing on the mirror. Other versions in the index are tried after this one.
SRC_VERSION=${OCI_VALIDATION_SRC_VERSION:-0.9.0.109.ge931285-1}
MIRROR=${OCI_VALIDATION_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(golang-go busybox-static crun xz-utils tar gzip ca-certificates
  golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev
  golang-github-blang-semver-dev golang-github-hashicorp-go-multierror-dev
  golang-github-mrunalp-fileutils-dev golang-github-opencontainers-specs-dev
  golang-github-opencontainers-selinux-dev golang-github-sirupsen-logrus-dev
  golang-github-stretchr-testify-dev golang-github-urfave-cli-dev
  golang-github-xeipuuv-gojsonschema-dev golang-gocapability-dev golang-golang-x-sys-dev)

say() { echo "oci-validation build: $*" >&2; }
die() { say "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (apt, and the suite itself needs root)"
# shellcheck source=../../hack/private-dir.sh
source "$HERE/../../hack/private-dir.sh"
private_dir "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# Concurrent builds into one cache (two worktrees' test runs) would step on each other's files: take turns.
exec 9>"$CACHE/.build.lock"
flock 9
BIN=$CACHE/bin
GOPATH_DIR=$CACHE/gopath
SRC=$GOPATH_DIR/src/github.com/opencontainers/runtime-tools

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  # Other jobs on the machine may hold the dpkg lock; apt waits for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" \
    >"$CACHE/apt-install.log" 2>&1 || { tail -20 "$CACHE/apt-install.log" >&2; die "apt-get install failed"; }
}

# Prints "version directory sha256 file" for each orig tarball in the deb-src index, the pinned version first.
source_candidates() {
  apt-cache "${APT_OPTS[@]}" showsrc "$SRC_PKG" 2>/dev/null | awk '
    function emit() { if (version != "" && file != "") print version, dir, sha, file; version = dir = sha = file = "" }
    /^$/ { emit(); next }
    /^Version:/ { version = $2 }
    /^Directory:/ { dir = $2 }
    /^[A-Za-z0-9-]+:/ { in_sha256 = ($1 == "Checksums-Sha256:"); next }
    in_sha256 && $3 ~ /\.orig\.tar\./ { sha = $1; file = $3 }
    END { emit() }' | sort -u | sort -k1,1Vr |
    awk -v pin="$SRC_VERSION" '$1 == pin { print; next } { others = others $0 "\n" } END { printf "%s", others }'
}

fetch_source() {
  [ -f "$SRC/validation/util/test.go" ] && return 0
  local apt_dir=$CACHE/apt-src
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/dl" "$apt_dir/parts"
  cat >"$apt_dir/deb-src.sources" <<EOF
Types: deb-src
URIs: $MIRROR
Suites: trixie bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APT_OPTS=(-o "Dir::Etc::SourceList=$apt_dir/deb-src.sources" -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root")
  local orig
  orig=$(ls "$apt_dir"/dl/"${SRC_PKG}"_*.orig.tar.* 2>/dev/null | head -1 || true)
  if [ -z "$orig" ]; then
    say "fetching the $SRC_PKG source (deb-src index in $apt_dir)"
    apt-get "${APT_OPTS[@]}" -qq update || die "apt-get update of the private deb-src list failed"
    local version dir sha file
    while read -r version dir sha file; do
      [ -n "$file" ] || continue
      say "trying $SRC_PKG $version: $file"
      # apt-helper refuses the file unless its SHA-256 matches the one from the signed index.
      if /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$MIRROR/$dir/${file//+/%2B}" \
          "$apt_dir/dl/$file" "SHA256:$sha" >>"$apt_dir/fetch.log" 2>&1; then
        orig=$apt_dir/dl/$file
        break
      fi
      rm -f "$apt_dir/dl/$file" "$apt_dir/dl/$file.FAILED"
    done < <(source_candidates)
    [ -n "$orig" ] || { cat "$apt_dir/fetch.log" >&2 2>/dev/null; die "no orig tarball of $SRC_PKG could be fetched"; }
  fi
  local unpack=$CACHE/unpack
  rm -rf "$SRC" "$unpack"
  mkdir -p "$unpack" "$(dirname "$SRC")"
  tar -C "$unpack" -xf "$orig"
  mv "$unpack"/* "$SRC"
  rmdir "$unpack"
  [ -f "$SRC/validation/util/test.go" ] || die "$orig has no validation/ directory"
  basename "$orig" >"$CACHE/source-version"
}

build_binaries() {
  [ -f "$BIN/.built" ] && [ -x "$BIN/runtimetest" ] && return 0
  mkdir -p "$BIN" "$CACHE/build-logs" "$GOPATH_DIR/src/github.com/mndrix/tap-go"
  cp "$HERE/tap-shim/tap.go" "$GOPATH_DIR/src/github.com/mndrix/tap-go/tap.go"
  export GOPATH=$GOPATH_DIR:/usr/share/gocode GO111MODULE=off GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local \
    GOCACHE=$CACHE/gocache CGO_ENABLED=0
  local tags='netgo osusergo' failed=() dir name
  say "building runtimetest and the validation programs"
  (cd "$SRC" && go build -tags "$tags" -o "$BIN/runtimetest" ./cmd/runtimetest) \
    >"$CACHE/build-logs/runtimetest.log" 2>&1 || { cat "$CACHE/build-logs/runtimetest.log" >&2; die "runtimetest did not build"; }
  for dir in "$SRC"/validation/*/; do
    name=$(basename "$dir")
    [ "$name" = util ] && continue
    (cd "$SRC" && go build -tags "$tags" -o "$BIN/$name.t" "./validation/$name") \
      >"$CACHE/build-logs/$name.log" 2>&1 || failed+=("$name")
  done
  # A program that does not build would silently vanish from the run: fail the build instead.
  [ ${#failed[@]} -eq 0 ] || die "did not build (logs in $CACHE/build-logs): ${failed[*]}"
  date -u >"$BIN/.built"
}

# The harness extracts rootfs-<GOARCH>.tar.gz into each bundle; a busybox-static tree is all runtimetest and
# the programs' shell commands need.
build_rootfs() {
  local arch tarball tree applet
  arch=$(go env GOARCH)
  tarball=$BIN/rootfs-$arch.tar.gz
  [ -s "$tarball" ] && return 0
  tree=$CACHE/rootfs
  rm -rf "$tree"
  mkdir -p "$tree"/{bin,etc,dev,proc,sys}
  cp /bin/busybox "$tree/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$tree/bin/$applet"
  done
  printf '%s\n' root:x:0:0:root:/root:/bin/sh daemon:x:1:1:daemon:/usr/sbin:/bin/false \
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false >"$tree/etc/passwd"
  printf '%s\n' root:x:0: daemon:x:1: tty:x:5: users:x:100: nogroup:x:65534: >"$tree/etc/group"
  chmod 755 "$tree" "$tree"/{bin,etc,dev,proc,sys}
  tar --numeric-owner --owner=0 --group=0 -C "$tree" -czf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$tree"
}

[ "$install" = 1 ] && install_packages
command -v go >/dev/null || die "go is not installed (run without -n)"
fetch_source
build_binaries
build_rootfs
say "ready: $BIN ($(ls "$BIN"/*.t | wc -l) programs, source $(cat "$CACHE/source-version"))"
