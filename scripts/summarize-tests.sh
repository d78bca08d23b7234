#!/usr/bin/env bash
# summarize-tests.sh: pass `go test -v` output through, then print how many
# tests passed, failed and were skipped — with every skip's reason — so a
# skipped real-component test can never go unnoticed. Exits non-zero when a
# test failed or the input reports FAIL.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
tee "$log"
pass=$(grep -c -- '^--- PASS\|^    --- PASS' "$log" || true)
fail=$(grep -c -- '^--- FAIL\|^    --- FAIL' "$log" || true)
skip=$(grep -c -- '^--- SKIP\|^    --- SKIP' "$log" || true)
echo
if [ "$skip" -gt 0 ]; then
  echo "skipped tests and why:"
  grep -A2 -- '--- SKIP' "$log" | sed 's/^/  /'
fi
echo "integration: $pass passed, $fail failed, $skip skipped"
if [ "$fail" -gt 0 ] || grep -q '^FAIL' "$log"; then
  exit 1
fi
