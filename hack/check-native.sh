#!/usr/bin/env bash
# The native core checked as issue 13 asks (R10: it parses bytes an attacker chose). test/security/native-*.test.ts
# run each step (`npm run check:native` runs those files); each step also runs by hand:
#   hack/check-native.sh warnings        every native file built with gcc and with clang, native/hardening.mk's
#                                        flags, warnings as errors; prints "warnings: <cc> clean"
#   hack/check-native.sh analyze         clang's static analyzer on every native file; prints each finding in
#                                        native/ and "analyzer: N findings" (exit 1 unless 0)
#   hack/check-native.sh fuzzers DIR     the libFuzzer harnesses of test/security/fixtures/fuzz (ASan + UBSan)
#                                        and the ASan + UBSan copy-up harness, built into DIR
# Needs clang, clang-tools (the analyzer), libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) and llvm
# (llvm-symbolizer for readable reports): hack/deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

harden_cflags="$(make -s -f native/hardening.mk cflags)"
harden_ldflags="$(make -s -f native/hardening.mk ldflags)"
napi_include="$(node -p "require('node-addon-api').include_dir")"
node_include="$(node -p 'require("path").resolve(process.execPath, "../../include/node")')"
cxx_defines=(-std=c++17 -D_GNU_SOURCE -DNAPI_DISABLE_CPP_EXCEPTIONS -DNAPI_VERSION=8 -I"$napi_include" -I"$node_include")
executor_sources=(native/executor/{main,stages,util,paths,rootfs,mountinfo,pivot,process,exec,copyup,decode}.c)
addon_c=(native/addon/netdev.c native/addon/spawn.c native/executor/joined.c)
addon_cc=(native/addon/{addon,process,fds,host,seccomp}.cc)
frontdoor_sources=(native/frontdoor/{main,report,state,verbs}.c)

# Builds everything with one compiler pair into a scratch directory: the executor and the helper linked as
# their Makefiles link them, the addon's files compiled as binding.gyp compiles them (-O3, -fPIC).
warnings() {
  local cc="$1" cxx="$2" out
  out="$(mktemp -d /tmp/tsrt-check-native.XXXXXX)"
  trap 'rm -rf "$out"' RETURN
  # clang warns that -no-pie is unused next to -static; the helper's Makefile is written for either.
  local quiet=()
  [ "$cc" = clang ] && quiet=(-Qunused-arguments)
  /usr/bin/"$cc" "${quiet[@]}" -Os -static -D_GNU_SOURCE $harden_cflags -Wno-unused-parameter -fno-strict-aliasing \
    $harden_ldflags -o "$out/tsrt-executor" "${executor_sources[@]}"
  /usr/bin/"$cc" "${quiet[@]}" -Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
    -fno-asynchronous-unwind-tables -fno-pie -no-pie $(make -s -f native/hardening.mk warn codegen) $harden_ldflags \
    -o "$out/tsrt-init" native/init/tsrt-init.c
  /usr/bin/"$cc" "${quiet[@]}" -O2 -static -D_GNU_SOURCE $harden_cflags -Wno-unused-const-variable -fno-strict-aliasing \
    -Inative/generated $harden_ldflags -o "$out/tsrt-frontdoor" "${frontdoor_sources[@]}"
  local f
  for f in "${addon_c[@]}"; do
    /usr/bin/"$cc" -O3 -fPIC -D_GNU_SOURCE $harden_cflags -Wno-unused-parameter -fno-strict-aliasing -c -o "$out/$(basename "$f").o" "$f"
  done
  for f in "${addon_cc[@]}"; do
    /usr/bin/"$cxx" -O3 -fPIC "${cxx_defines[@]}" $harden_cflags -Wno-unused-parameter -fno-strict-aliasing \
      -Wa,-I"$REPO/native/init" -Wa,-I"$REPO/native/executor" -c -o "$out/$(basename "$f").o" "$f"
  done
  echo "warnings: $cc clean"
}

# The analyzer's findings in our files; those in node-addon-api's headers are not ours to fix.
analyze() {
  local f findings=0 report
  report="$(mktemp /tmp/tsrt-check-native.XXXXXX)"
  trap 'rm -f "$report"' RETURN
  for f in "${executor_sources[@]}" "${addon_c[@]}" "${frontdoor_sources[@]}"; do
    /usr/bin/clang --analyze -D_GNU_SOURCE -Inative/generated -Xanalyzer -analyzer-output=text -o /dev/null "$f" 2>>"$report" || true
  done
  /usr/bin/clang --analyze -ffreestanding -Xanalyzer -analyzer-output=text -o /dev/null native/init/tsrt-init.c 2>>"$report" || true
  for f in "${addon_cc[@]}"; do
    /usr/bin/clang++ --analyze "${cxx_defines[@]}" -Xanalyzer -analyzer-output=text -o /dev/null "$f" 2>>"$report" || true
  done
  while IFS= read -r line; do
    echo "$line"
    findings=$((findings + 1))
  done < <(grep -E '^native/[^:]+:[0-9]+:[0-9]+: (warning|error):' "$report" || true)
  if grep -qE '^native/[^:]+:[0-9]+:[0-9]+: error:' "$report"; then
    echo "analyzer: a file did not compile" >&2
  fi
  echo "analyzer: $findings findings"
  [ "$findings" -eq 0 ]
}

fuzzers() {
  local dir="$1" h
  mkdir -p "$dir"
  local sanitize=(-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -D_GNU_SOURCE)
  for h in plan mountinfo dirent netlink; do
    local extra=()
    [ "$h" = plan ] && extra=(native/executor/decode.c)
    /usr/bin/clang "${sanitize[@]}" -fsanitize=fuzzer -o "$dir/$h-fuzz" "test/security/fixtures/fuzz/$h-fuzz.c" "${extra[@]}"
  done
  /usr/bin/clang "${sanitize[@]}" -o "$dir/copyup-harness" test/security/fixtures/fuzz/copyup-harness.c native/executor/copyup.c
  echo "fuzzers: built in $dir"
}

case "${1:-}" in
  warnings)
    warnings gcc g++
    warnings clang clang++
    ;;
  analyze) analyze ;;
  fuzzers) fuzzers "${2:?usage: hack/check-native.sh fuzzers DIR}" ;;
  *)
    echo "usage: hack/check-native.sh warnings | analyze | fuzzers DIR" >&2
    exit 2
    ;;
esac
