#!/usr/bin/env bash
# Whether the tree is written the way its formatters would write it: Biome for TypeScript and the .mjs scripts
# (biome.jsonc), clang-format for native/ (native/.clang-format for C, native/addon/cc.clang-format for C++).
#   bash hack/check-format.sh            report: each file that differs, then "check-format: N of M files differ";
#                                        exits 0
#   bash hack/check-format.sh --strict   the same, and exits 1 when a file differs (CI: test/unit/lint.test.ts)
#   bash hack/check-format.sh --write    formats every file in place
set -euo pipefail
cd "$(dirname "$0")/.."
mode=report
case ${1:-} in
'') ;;
--strict) mode=strict ;;
--write) mode=write ;;
*) echo "usage: bash hack/check-format.sh [--strict | --write]" >&2; exit 2 ;;
esac
clang_format=/usr/bin/clang-format
if [ ! -x "$clang_format" ]; then
  echo "check-format: $clang_format is missing (hack/deps.sh installs clang-format)" >&2
  exit 1
fi
biome=node_modules/.bin/biome

# Tracked and new files (not ignored), so a build's output and node_modules are never looked at.
mapfile -t native < <(git ls-files --cached --others --exclude-standard -- 'native/*.c' 'native/*.h' 'native/*.cc')
style_of() {
  case $1 in
  *.cc) echo "file:native/addon/cc.clang-format" ;;
  *) echo file ;;
  esac
}

if [ "$mode" = write ]; then
  "$biome" format --write . >/dev/null
  for f in "${native[@]}"; do "$clang_format" -i --style="$(style_of "$f")" "$f"; done
  echo "check-format: formatted"
  exit 0
fi

differ=()
# Biome names each file it would change, and counts the files it checked; it exits 1 when one differs.
mapfile -t ts_differ < <("$biome" format --reporter=github --max-diagnostics=none . 2>/dev/null |
  sed -n 's/^::error title=format,file=\([^,]*\),.*/\1/p' | sed "s|^$PWD/||")
differ+=("${ts_differ[@]}")
ts_total=$({ "$biome" format --reporter=summary --max-diagnostics=0 . 2>&1 || true; } | sed -n 's/^Checked \([0-9]*\) files.*/\1/p')
for f in "${native[@]}"; do
  if ! "$clang_format" --dry-run -Werror --style="$(style_of "$f")" "$f" >/dev/null 2>&1; then differ+=("$f"); fi
done
total=$((${ts_total:-0} + ${#native[@]}))
for f in "${differ[@]}"; do echo "differs: $f"; done
echo "check-format: ${#differ[@]} of $total files differ from the formatters$([ "$mode" = report ] && echo ' (report-only)')"
[ "$mode" = strict ] && [ ${#differ[@]} -gt 0 ] && exit 1
exit 0
