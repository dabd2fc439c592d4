#!/usr/bin/env bash
# npm run build: every step explicit, nothing fetched. Needs what hack/deps.sh installs (a C compiler,
# make, python3 for node-gyp) and `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "build: spec types and validators from schemas/"
node hack/gen-spec.mjs

version="$(node -p 'require("./package.json").version')"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
bun="$(bash hack/bun.sh)"
# package.json's build runs hack/gen-abi.ts first: the shared TS/C constants from src/native-abi/table.ts.
if [ ! -f native/generated/tsrt-abi.h ] || [ ! -f native/generated/tsrt-exec-abi.h ] || [ ! -f src/native-abi/abi.gen.ts ]; then
  echo "build: native/generated/tsrt-abi.h or tsrt-exec-abi.h missing: build with npm run build (it runs hack/gen-abi.ts first)" >&2
  exit 1
fi

echo "build: sealed helper native/init/tsrt-init"
make -s -C native/init tsrt-init

echo "build: front door native/frontdoor/tsrt-frontdoor"
make -s -C native/frontdoor tsrt-frontdoor

echo "build: sealed executor native/executor/tsrt-executor"
make -s -C native/executor tsrt-executor

echo "build: N-API addon (against the installed Node headers, never downloaded)"
nodedir="$(node -p 'require("path").resolve(process.execPath, "../..")')"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build: Node headers not found under $nodedir/include/node (install nodejs's headers)" >&2
  exit 1
fi
node node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$nodedir" --loglevel=warn

echo "build: type check"
node node_modules/typescript/bin/tsc -p tsconfig.build.json --noEmit

echo "build: dist/tsrt-core (single executable), dist/tsrt (front door) and dist/tsrt.js (Node)"
defines=(--define "TSRT_VERSION=\"$version\"" --define "TSRT_COMMIT=\"$commit\"")
mkdir -p dist
# --bytecode: JavaScriptCore bytecode compiled at build time; parsing and compiling the bundle at every start
# was half of each small command (tsrt state: 34.4 -> 15.7 ms wall, CPU 12.2 -> 6.0 ms, paired, n=30).
# The core is dist/tsrt-core; dist/tsrt is the static front door, which does state, start, kill, delete and list
# of a container whose lifecycle record allows it and hands everything else to the core (issue 17).
# No bunfig.toml or .env from the working directory: a bunfig `preload` ran its script inside the runtime (as
# root), a .env set its environment, and the cwd is whatever the caller left (test/security/cwd-config.test.ts).
# The .env lookup also listed the cwd and each parent at every start (run: 0.93x wall, 0.96x CPU, paired).
compile=(build --compile --bytecode --minify-syntax --minify-whitespace --no-compile-autoload-dotenv --no-compile-autoload-bunfig)
"$bun" "${compile[@]}" "${defines[@]}" src/cli/tsrt.ts --outfile dist/tsrt-core >/dev/null
install -m 0755 native/frontdoor/tsrt-frontdoor dist/tsrt
echo "build: dist/tsrt-singularity (single executable)"
"$bun" "${compile[@]}" "${defines[@]}" src/singularity/cli.ts --outfile dist/tsrt-singularity >/dev/null
# What `./image.sif` runs through the SIF's "#!/usr/bin/env run-singularity" line; installed beside it.
install -m 0755 src/singularity/run-singularity dist/run-singularity
# Node bundles (library use): they load the addon from build/Release, so the asset copy Bun makes is dropped.
node_bundle() {
  local tmp; tmp="$(mktemp -d)"
  "$bun" build --target=node "${defines[@]}" "$1" --outdir "$tmp" >/dev/null
  mv "$tmp/$(basename "${1%.ts}").js" "dist/$2"
  rm -rf "$tmp"
}
echo "build: dist/man/ and dist/completion/ (man pages and bash completion, from the help tables)"
# The pages' date is the commit's (or SOURCE_DATE_EPOCH's), so the same tree writes the same pages.
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)"
else
  date="$(git log -1 --format=%cs 2>/dev/null || date -u +%F)"
fi
"$bun" hack/gen-docs.ts dist "$version" "$date" >/dev/null
node_bundle src/cli/tsrt.ts tsrt.js
node_bundle src/index.ts index.js
echo "build: done ($(du -h dist/tsrt | cut -f1) dist/tsrt, $(du -h dist/tsrt-core | cut -f1) dist/tsrt-core)"
