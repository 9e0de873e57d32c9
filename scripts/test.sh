#!/usr/bin/env bash
# The test command: installs what the tests need, checks that the CUDA feature compiles
# (no GPU needed), then runs every test on the CPU backend. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked -p m2m-burn-plugin --features cuda
echo "test.sh: the cuda feature built after ${SECONDS} s"
cargo test --release --locked --workspace
echo "test.sh: tests passed after ${SECONDS} s"
