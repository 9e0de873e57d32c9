#!/usr/bin/env bash
# The test command: installs what the tests need, checks formatting, lints and docs,
# checks that the CUDA feature compiles (no GPU needed), then runs every test on the CPU
# backend. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for tool in rustfmt clippy-driver; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing: rustup component add rustfmt clippy" >&2; exit 1; }
done
# The project's formatting (rustfmt.toml) and lints (allowed ones: [workspace.lints] in Cargo.toml).
cargo fmt --all --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --release --locked --workspace --no-deps
echo "test.sh: formatting, lints and docs checked after ${SECONDS} s"
cargo build --release --locked -p m2m-burn-plugin --features cuda
echo "test.sh: the cuda feature built after ${SECONDS} s"
cargo test --release --locked --workspace
echo "test.sh: tests passed after ${SECONDS} s"
