#!/usr/bin/env bash
# npm run build:sanitize [OUTDIR]: the test-only sanitized variant (native/hardening.mk, TSRT_SANITIZE=1): the
# executor under ASan+UBSan, the helper and the addon under UBSan in trap mode, built by hack/build.sh in a copy
# of this tree so dist/, build/ and the native binaries here stay the normal ones. Writes OUTDIR (default
# dist-sanitize/): tsrt and tsrt-singularity with the sanitized addon embedded, and the sanitized
# tsrt-executor, tsrt-init and tsrt.node as embedded (for the self-test). The tests run it with TSRT_DIST=OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dist-sanitize}")"
copy="$(mktemp -d /tmp/tsrt-sanitize-build.XXXXXX)"
trap 'rm -rf "$copy"' EXIT
echo "build:sanitize: copying the tree to $copy"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -c | tar -x -C "$copy"
ln -s "$PWD/node_modules" "$copy/node_modules"
# The generated TS/C constants are not in git: the copy gets them as npm run build makes them.
mkdir -p "$copy/native/generated"
cp native/generated/tsrt-abi.h native/generated/tsrt-exec-abi.h "$copy/native/generated/"
cp src/native-abi/abi.gen.ts "$copy/src/native-abi/"
TSRT_SANITIZE=1 bash "$copy/hack/build.sh"
rm -rf "$out"
mkdir -p "$out"
cp -a "$copy/dist/." "$out/"
cp "$copy/native/executor/tsrt-executor" "$copy/native/init/tsrt-init" "$copy/build/Release/tsrt.node" "$out/"
echo "build:sanitize: done ($out/tsrt)"
