# Sourced by the scripts that start daemons: bounded waits that grow with the machine's load. The suite shares
# 2 cores with other work, and a daemon that is up in 10 s on an idle machine can take a minute under load.

# wait_scale: the load per core, rounded up, from 1 to 4 (test/helpers.ts waitScale() is the same rule).
wait_scale() {
  awk -v n="$(nproc)" '{ s = int($1 / n + 0.999); print (s < 1 ? 1 : (s > 4 ? 4 : s)) }' /proc/loadavg
}

# wait_for SECONDS CMD...: retries CMD until it succeeds, for SECONDS on an idle machine (times wait_scale).
wait_for() {
  local deadline=$(( $(date +%s) + $1 * $(wait_scale) )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
