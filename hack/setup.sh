#!/usr/bin/env bash
# Everything a fresh Debian 12 machine (root, apt and npm reachable) needs before tsrt runs:
# apt packages, npm dependencies, and the build (dist/tsrt, dist/tsrt.js).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
