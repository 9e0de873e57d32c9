#!/usr/bin/env bash
# The main job: ERM on long-tailed Fashion-MNIST (rho 100) on the CPU backend with the
# quick schedule. Extra arguments go to `m2m train` (e.g. --set seed=1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --release --locked --bin m2m -- train recipes/erm-fmnist-lt100-quick.ron "$@"
