#!/usr/bin/env bash
# Runs the lab suite: every dist/test/lab/*.lab.test.js inside a guest with
# real igb NICs (test/lab/lab.sh), then the batch benchmark there.
# Needs root (QEMU, apt-get for the first setup). Exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent build
lab=test/lab/lab.sh
bash "$lab" setup
status=0
for t in dist/test/lab/*.lab.test.js; do
  echo "== lab: $t"
  bash "$lab" run --pfs 2 --timeout 900 -- node --test --test-concurrency=1 "$t" || status=$?
done
if [ "${LAB_BENCH:-1}" = 1 ]; then
  echo "== lab: bench/lab-batch"
  bash "$lab" run --pfs 1 --timeout 600 -- node dist/bench/lab-batch.js || status=$?
  echo "== lab: bench/lab-cni"
  bash "$lab" run --pfs 1 --timeout 900 -- node dist/bench/lab-cni.js || status=$?
fi
exit "$status"
