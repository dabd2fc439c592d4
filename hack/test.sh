#!/usr/bin/env bash
# The README's second command: set up (unless --no-setup), then run the whole suite. Ends with
# "N passed, M failed"; exits non-zero on any failure. The raw TAP stream is kept in .tap/output.tap.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--no-setup" ]; then
  bash hack/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
else
  shift
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test: the suite creates containers as root and as an unprivileged user: run it as root" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
unset NODE_EXTRA_CA_CERTS
mkdir -p .tap
files=("$@")
# The validation suite is named by file: its directory also holds run.mjs, which tap would take for a test.
[ ${#files[@]} -gt 0 ] || files=(test/unit test/e2e test/security test/robustness test/singularity test/engines test/cluster test/oci-validation/validation.test.ts)
node_modules/.bin/tap --disable-coverage --allow-empty-coverage -R tap --jobs 2 --timeout 900 "${files[@]}" \
  > .tap/output.tap 2> .tap/stderr.log
tap_status=$?
node hack/tap-summary.mjs < .tap/output.tap
summary_status=$?
if [ $tap_status -ne 0 ] && [ $summary_status -eq 0 ]; then
  echo "test: tap exited $tap_status (see .tap/stderr.log)" >&2
  tail -20 .tap/stderr.log >&2
  exit $tap_status
fi
exit $summary_status
