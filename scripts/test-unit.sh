#!/usr/bin/env bash
# Runs vitest, then prints one plain "N passed, N failed" line; fails if either step does.
set -u
results=build/test-results.json
mkdir -p build && rm -f "$results"
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
status=$?
node scripts/test-summary.js "$results" || status=1
exit "$status"
