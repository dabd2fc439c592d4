#!/usr/bin/env bash
# Prints the path of the Bun binary from the npm package `bun`. npm 11 does not run its postinstall, which on
# some installs is what puts the real binary in place: run it explicitly when the placeholder is all there is.
set -euo pipefail
cd "$(dirname "$0")/.."
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = "177ELF" ]; }
for candidate in node_modules/bun/bin/bun.exe node_modules/@oven/bun-linux-x64/bin/bun node_modules/@oven/bun-linux-aarch64/bin/bun; do
  if is_elf "$candidate"; then echo "$PWD/$candidate"; exit 0; fi
done
if [ -f node_modules/bun/install.js ]; then
  (cd node_modules/bun && node install.js >&2)
  if is_elf node_modules/bun/bin/bun.exe; then echo "$PWD/node_modules/bun/bin/bun.exe"; exit 0; fi
fi
echo "hack/bun.sh: no Bun binary found; run 'npm ci' first" >&2
exit 1
