#!/usr/bin/env bash
# The README's second command: set up (unless --no-setup), then run the whole suite, or the test files and
# directories given. Prints one line per finished test file as the suite goes (its counts and time, the running
# totals) and ends with "N passed, M failed"; exits non-zero on any failure. The full TAP stream is kept in
# .tap/output.tap, tap's own stderr in .tap/stderr.log.
#   bash hack/test.sh [--no-setup] [FILE|DIR...]
# test/unit needs no root (npm run test:unit); everything else creates containers as root and as the
# unprivileged user tsrtuser, so it needs root and a checkout that user can reach.
set -uo pipefail
cd "$(dirname "$0")/.."
fail() { echo "test: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

setup=1
if [ "${1:-}" = "--no-setup" ]; then setup=0; shift; fi
files=("$@")
# The validation suite is named by file: its directory also holds run.mjs, which tap would take for a test.
[ ${#files[@]} -gt 0 ] || files=(test/unit test/e2e test/security test/robustness test/singularity test/engines test/cluster test/oci-validation/validation.test.ts)
unit_only=1
for f in "${files[@]}"; do
  case "$f" in test/unit|test/unit/*) ;; *) unit_only=0 ;; esac
done

if [ $unit_only -eq 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "the suite creates containers as root and as an unprivileged user: run it as root (npm run test:unit runs the unit tests without)"
  # Every directory above the checkout must let others in: the rootless, Singularity and Slurm tests run
  # dist/tsrt and the bundles as tsrtuser. A clone under a 0700 directory (/root) fails them all.
  d=$(pwd -P)
  while [ "$d" != / ]; do
    case "$(stat -c %A "$d")" in
      *[xt]) ;;
      *) fail "the unprivileged tests run $(pwd -P)/dist/tsrt as tsrtuser, who may not enter $d ($(stat -c %A "$d")): clone under a directory others may enter (such as /srv or /opt), or chmod o+x $d" ;;
    esac
    d=$(dirname "$d")
  done
fi
if [ $setup -eq 1 ]; then
  bash hack/setup.sh || fail "set-up failed"
fi
[ -x node_modules/.bin/tap ] || fail "node_modules is missing: npm ci (or run without --no-setup)"
for built in src/spec/validators.gen.js build/Release/tsrt.node native/executor/tsrt-executor; do
  [ -e "$built" ] || fail "$built is missing: npm run build (or run without --no-setup)"
done

unset NODE_EXTRA_CA_CERTS
mkdir -p .tap
count=$(find "${files[@]}" -name '*.test.ts' 2>/dev/null | wc -l)
node_modules/.bin/tap --disable-coverage --allow-empty-coverage -R tap --jobs 2 --timeout 900 "${files[@]}" 2> .tap/stderr.log |
  tee .tap/output.tap | TSRT_TEST_FILES=$count node hack/tap-summary.mjs
statuses=("${PIPESTATUS[@]}")
tap_status=${statuses[0]}
summary_status=${statuses[2]}
if [ "$tap_status" -ne 0 ] && [ "$summary_status" -eq 0 ]; then
  echo "test: tap exited $tap_status (see .tap/stderr.log)" >&2
  tail -20 .tap/stderr.log >&2
  exit "$tap_status"
fi
exit "$summary_status"
