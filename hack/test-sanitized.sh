#!/usr/bin/env bash
# The sanitized phase of CI (issue 13): builds the sanitized variant (npm run build:sanitize, into
# dist-sanitize/) and runs the suites that start real containers against it: the e2e files for the lifecycle,
# exec, the config fields, hooks, rootless and seccomp (the filter is loaded in the sanitized executor before its
# execveat), and test/security but for the two native checks that never run
# dist/tsrt (their own ASan+UBSan builds are in hack/check-native.sh). Any sanitizer report aborts the executor,
# so a finding fails the test that hit it. Ends with hack/test.sh's "N passed, M failed".
#   bash hack/test-sanitized.sh [FILE...]   (default: the set above)
set -uo pipefail
cd "$(dirname "$0")/.."
echo "sanitized: npm run build:sanitize"
log="$(mktemp /tmp/tsrt-sanitize-build.XXXXXX)"
bash hack/build-sanitize.sh dist-sanitize >"$log" 2>&1 || { tail -30 "$log" >&2; rm -f "$log"; echo "0 passed, 1 failed"; exit 1; }
tail -1 "$log"
rm -f "$log"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(test/e2e/lifecycle.test.ts test/e2e/exec.test.ts test/e2e/fields.test.ts test/e2e/hooks.test.ts test/e2e/rootless.test.ts
    test/e2e/seccomp.test.ts)
  for f in test/security/*.test.ts; do
    case "$f" in test/security/native-fuzz.test.ts|test/security/native-hardening.test.ts) ;; *) files+=("$f") ;; esac
  done
fi
echo "sanitized: ${#files[@]} files against dist-sanitize/tsrt"
TSRT_DIST=dist-sanitize exec bash hack/test.sh --no-setup "${files[@]}"
