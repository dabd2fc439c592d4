#!/usr/bin/env bash
# A rehearsal of a fresh machine: clones this checkout's HEAD into an empty directory with nothing beside it, runs
# the README's two commands there (bash hack/demo.sh, then bash hack/test.sh) and reports each one's result and
# time, with the load average before and after (the suite shares the machine's cores). Uncommitted changes are
# not part of HEAD, so they are not rehearsed.
#   bash hack/rehearse.sh [--keep]     (as root; --keep leaves the clone in place, and the logs stay after a failure)
# The clone lives in a new /tmp/tsrt-rehearse-XXXXXX, made enterable by others (mktemp makes it 0700) as a clone
# under /srv or /opt would be: the suite runs part of itself as the unprivileged user tsrtuser. The logs go to
# a directory of their own, so the clone has nothing beside it.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1
[ "$(id -u)" -eq 0 ] || { echo "rehearse: the README's commands run as root (apt, containers)" >&2; exit 1; }

head=$(git -C "$here" rev-parse HEAD)
[ -z "$(git -C "$here" status --porcelain --untracked-files=no)" ] ||
  echo "rehearse: the checkout has uncommitted changes; only HEAD $(git -C "$here" rev-parse --short HEAD) is rehearsed" >&2
dir=$(mktemp -d /tmp/tsrt-rehearse-XXXXXX)
logs=$(mktemp -d /tmp/tsrt-rehearse-logs-XXXXXX)
chmod 755 "$dir"
git clone --quiet --no-hardlinks "$here" "$dir/tsrt" && git -C "$dir/tsrt" checkout --quiet --detach "$head" ||
  { echo "rehearse: cloning $here failed" >&2; exit 1; }
echo "rehearse: HEAD $(git -C "$dir/tsrt" log -1 --format='%h %s' | cut -c1-100)"
echo "rehearse: cloned into $dir/tsrt, alone in $dir; logs in $logs"

load() { cut -d' ' -f1-3 /proc/loadavg; }
clock() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
# step NAME LINE COMMAND...: runs it in the clone, its output in $logs/NAME.log; prints result, time, load, and
# the last line of the output that matches the ERE LINE (what says how it went).
step() {
  local name=$1 line=$2 before start rc took
  shift 2
  before=$(load)
  start=$(date +%s)
  (cd "$dir/tsrt" && "$@") > "$logs/$name.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  echo "rehearse: $* -> exit $rc in $(clock "$took") (load $before before, $(load) after): $(grep -E "$line" "$logs/$name.log" | tail -1)"
  return $rc
}

step demo 'hello from a tsrt container' bash hack/demo.sh
demo=$?
step test '^[0-9]+ passed, [0-9]+ failed' bash hack/test.sh
suite=$?

if [ $keep -eq 0 ]; then
  # Never rm -rf through a mount a failed test left in the clone.
  if grep -q " $dir/" /proc/self/mountinfo; then
    echo "rehearse: mounts are left under $dir: not removing it" >&2
  else
    rm -rf "$dir"
  fi
  if [ $demo -eq 0 ] && [ $suite -eq 0 ]; then rm -rf "$logs"; else echo "rehearse: the logs stay in $logs"; fi
fi
[ $demo -eq 0 ] && [ $suite -eq 0 ]
