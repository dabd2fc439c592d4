#!/usr/bin/env bash
# The README's first command: set up, build a busybox bundle, run a real container in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
bundle=bundles/busybox
bash hack/mkbundle.sh "$bundle" -- sh -c 'echo "hello from a tsrt container: hostname $(hostname), pid $$, user $(id -un)"; echo "its root:"; ls /'
echo "+ dist/tsrt run -b $bundle demo-$$"
exec dist/tsrt run -b "$bundle" "demo-$$"
