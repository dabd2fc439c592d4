#!/usr/bin/env bash
# Builds an OCI bundle from busybox-static: <dir>/rootfs and <dir>/config.json (tsrt's spec template, with
# terminal off so it runs without a tty).
#   hack/mkbundle.sh DIR [--rootless] [--owner UID:GID] [-- ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:?usage: hack/mkbundle.sh DIR [--rootless] [--owner UID:GID] [-- ARGS...]}"; shift
rootless=""
owner=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rootless) rootless="--rootless"; shift ;;
    --owner) owner="$2"; shift 2 ;;
    --) shift; args=("$@"); break ;;
    *) echo "mkbundle: unknown option $1" >&2; exit 2 ;;
  esac
done
# busybox-static's binary: it needs no libraries inside the rootfs.
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "mkbundle: a static /bin/busybox is needed (apt-get install busybox-static, or run hack/deps.sh)" >&2
  exit 1
fi

mkdir -p "$dir"
rootfs="$dir/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,home,run,var/tmp,usr/bin,usr/sbin}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$busybox" "$rootfs/bin/busybox"
cat > "$rootfs/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$rootfs/etc/group" <<'GR'
root:x:0:
tty:x:5:
nogroup:x:65534:
GR
echo tsrt > "$rootfs/etc/hostname"

rm -f "$dir/config.json"
tsrt="$here/dist/tsrt"
[ -x "$tsrt" ] || { echo "mkbundle: $tsrt is missing (npm run build)" >&2; exit 1; }
"$tsrt" spec $rootless -b "$dir"
# The applet links are made by the node that edits the config: one process instead of one ln per applet
# (about 270), which made bundles the slowest part of many tests.
APPLETS="$("$rootfs/bin/busybox" --list)" node - "$dir/config.json" "${args[@]}" <<'JS'
const fs = require('fs');
const path = require('path');
const [file, ...args] = process.argv.slice(2);
const bin = path.join(path.dirname(file), 'rootfs', 'bin');
for (const applet of process.env.APPLETS.split('\n')) {
  if (applet && applet !== 'busybox') fs.symlinkSync('busybox', path.join(bin, applet));
}
const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
spec.process.terminal = false;
if (args.length) spec.process.args = args;
fs.writeFileSync(file, JSON.stringify(spec, null, 2) + '\n');
JS
if [ -n "$owner" ]; then chown -R "$owner" "$dir"; fi
echo "bundle ready: $dir"
