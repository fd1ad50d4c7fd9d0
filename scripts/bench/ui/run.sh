#!/bin/sh
# Operator console benchmark (issue 18): time to first render of the machines view with N machines in
# Chromium, and the size of the shipped bundle.
#   scripts/bench/ui/run.sh [N]        default 10000; needs `npm run build` first and /usr/lib/chromium
# Not part of CI. Figures: docs/ui.md.
cd "$(dirname "$0")/../../.." || exit 1
UL_BENCH_N="${1:-10000}" exec npx vitest run --config scripts/bench/ui/vitest.config.mts
