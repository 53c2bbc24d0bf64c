#!/usr/bin/env bash
# Runs the lab: the benchmarks on real igb, then every
# dist/test/lab/*.lab.test.js inside a guest with real igb NICs
# (test/lab/lab.sh), and closes with the suite's totals.
#
#   run.sh        the benchmarks and every suite but the VM migration's
#   run.sh vm     only the VM live-migration suite (a nested QEMU guest, slow)
#
# Needs root (QEMU, apt-get for the first setup). Exit status is the suite's.
# Prints how long each benchmark and suite took.
set -euo pipefail
cd "$(dirname "$0")/../.."
which=${1:-all}
case "$which" in all | vm) ;; *) echo "usage: run.sh [vm]" >&2; exit 2 ;; esac
npm run --silent build
lab=test/lab/lab.sh
bash "$lab" setup
# netdevsim.ko for the guest's kernel (devlink.lab.test.ts); a no-op once built.
bash test/lab/netdevsim.sh
status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# One lab run, timed: NAME TIMEOUT ARGS...
lab_run() {
  local name=$1 timeout=$2 start=$SECONDS
  shift 2
  echo "== lab: $name"
  bash "$lab" run --pfs 2 --timeout "$timeout" -- "$@" | tee -a "$out" || status=$?
  echo "== lab: $name took $((SECONDS - start)) s"
}
# The nested guest booted in 355 s on a loaded 2-core machine (840 s with a verbose console); the suite took 11 min.
VM_SUITE=dist/test/lab/vm-migration.lab.test.js
if [ "$which" = vm ]; then
  lab_run "$VM_SUITE" 1800 node --test --test-concurrency=1 --test-timeout=1200000 --test-force-exit "$VM_SUITE"
else
  if [ "${LAB_BENCH:-1}" = 1 ]; then
    lab_run bench/lab-batch 600 node dist/bench/lab-batch.js
    lab_run bench/lab-cni 900 node dist/bench/lab-cni.js
  fi
  for t in dist/test/lab/*.lab.test.js; do
    [ "$t" = "$VM_SUITE" ] && continue
    # The attach suite alone took 1050 s of a loaded 2-core machine before its four-container test was added.
    lab_run "$t" 1800 node --test --test-concurrency=1 --test-timeout=900000 --test-force-exit "$t"
  done
fi
passed=$(awk '/^# pass /{n+=$3} END{print n+0}' "$out")
failed=$(awk '/^# fail /{n+=$3} END{print n+0}' "$out")
echo "lab: $passed passed, $failed failed"
exit "$status"
