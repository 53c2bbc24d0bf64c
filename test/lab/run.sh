#!/usr/bin/env bash
# Runs the lab: the benchmarks on real igb, then every
# dist/test/lab/*.lab.test.js inside a guest with real igb NICs
# (test/lab/lab.sh), and closes with the suite's totals.
# Needs root (QEMU, apt-get for the first setup). Exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent build
lab=test/lab/lab.sh
bash "$lab" setup
status=0
if [ "${LAB_BENCH:-1}" = 1 ]; then
  echo "== lab: bench/lab-batch"
  bash "$lab" run --pfs 1 --timeout 600 -- node dist/bench/lab-batch.js || status=$?
  echo "== lab: bench/lab-cni"
  bash "$lab" run --pfs 1 --timeout 900 -- node dist/bench/lab-cni.js || status=$?
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in dist/test/lab/*.lab.test.js; do
  echo "== lab: $t"
  # The attach suite alone took 1050 s of a loaded 2-core machine before its four-container test was added.
  bash "$lab" run --pfs 2 --timeout 1800 -- node --test --test-concurrency=1 "$t" | tee -a "$out" || status=$?
done
passed=$(awk '/^# pass /{n+=$3} END{print n+0}' "$out")
failed=$(awk '/^# fail /{n+=$3} END{print n+0}' "$out")
echo "lab: $passed passed, $failed failed"
exit "$status"
