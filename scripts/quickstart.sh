#!/usr/bin/env bash
# The main job: the quickstart suite (ERM, DRS, DRW, LDAM-DRW, M2m) on long-tailed
# Fashion-MNIST (rho 100) on the CPU backend, 1-6 minutes on 2 cores (README), ending in
# the comparison table (runs/suites/quickstart/report.md). Extra arguments go to
# `m2m suite` (e.g. --dry-run). Running it again skips finished cells.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --release --locked --bin m2m -- suite recipes/suites/quickstart.ron "$@"
