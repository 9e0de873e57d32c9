#!/usr/bin/env bash
# The test command: installs what the tests need (Fashion-MNIST, Mesa's software Vulkan
# driver, a single-node Slurm cluster, TensorBoard's reader), checks formatting, lints and
# docs, then builds every backend (CPU, CUDA, wgpu) and runs every test: the CPU
# backend's, the GPU-path set on wgpu through lavapipe (fusion on and off), a suite on the
# Slurm cluster, the TensorBoard logs read back by TensorBoard. CUDA is compiled, not run
# (CI has no GPU; scripts/gpu-check.sh runs the same GPU-path set on a GPU machine). CI
# runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for tool in rustfmt clippy-driver; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing: rustup component add rustfmt clippy" >&2; exit 1; }
done

# Software Vulkan (lavapipe) for the GPU-path tests; where it cannot be installed they say
# so and check nothing, instead of failing.
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || bash scripts/lavapipe.sh; then
    export M2M_REQUIRE_GPU="wgpu,wgpu_unfused"
    # wgpu's Vulkan loader asks for one (and warns without it); nothing is kept there.
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
else
    echo "test.sh: Mesa's lavapipe could not be installed: the wgpu GPU-path tests will be skipped" >&2
fi

# The project's formatting (rustfmt.toml) and lints (allowed ones: [workspace.lints] in
# Cargo.toml), on the default build and on the one with every backend.
GPU_FEATURES="m2m-burn-plugin/cuda,m2m-burn-plugin/wgpu,m2m-tests/cuda,m2m-tests/wgpu"
cargo fmt --all --check
# No non-test function over 80 lines but the one the script allows (and says why).
python3 scripts/long-functions.py
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo clippy --release --locked --workspace --all-targets --features "$GPU_FEATURES" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --release --locked --workspace --no-deps
echo "test.sh: formatting, lints and docs checked after ${SECONDS} s"
cargo test --release --locked --workspace --features "$GPU_FEATURES" --no-run
echo "test.sh: every backend built after ${SECONDS} s"
# A real single-node Slurm cluster (Debian's slurm-wlm and munge) for tests/slurm.rs;
# where it cannot be installed or started, that test says so and checks nothing.
SLURM_DIR="$(mktemp -d)"
if slurm_env="$(bash scripts/slurm-local.sh start "$SLURM_DIR")"; then
    eval "$slurm_env"
    export M2M_REQUIRE_SLURM=1
    trap 'bash scripts/slurm-local.sh stop "$SLURM_DIR" >/dev/null 2>&1 || true' EXIT
    echo "test.sh: local Slurm cluster up after ${SECONDS} s"
else
    echo "test.sh: no local Slurm cluster (see the line above): the Slurm test will be skipped" >&2
fi
# TensorBoard's own reader (the tensorboard package from PyPI, in a virtualenv) for the
# tests of the TensorBoard logs; where it cannot be installed, those tests say so.
if tb_python="$(bash scripts/tensorboard-venv.sh)"; then
    export M2M_TENSORBOARD_PYTHON="$tb_python" M2M_REQUIRE_TENSORBOARD=1
else
    echo "test.sh: no TensorBoard reader (see the line above): the TensorBoard read-back checks will be skipped" >&2
fi
# The full-disk tests mount a small tmpfs on a checkpoint folder, which needs root (CI
# runs as root); elsewhere they say so and skip.
if [ "$(id -u)" -eq 0 ]; then
    export M2M_REQUIRE_TMPFS=1
fi
# Every test binary runs even after one fails (--no-fail-fast), so one failure does not
# hide the state of the others; the script fails at the end if any did.
status=0
cargo test --release --locked --workspace --features "$GPU_FEATURES" --no-fail-fast || status=$?
# The binaries that compare seeded runs bit for bit (forks, suites, resume, start_from, the
# hook, seeded initialisation) once more on 8 test threads: threads that seed, load and
# build networks at the same time is how a draw outside m2m_core::seed::with_seed shows.
SEEDED_TESTS=(fork suite end_to_end start_from hook seeding suite_prefix suite_interrupt)
cargo test --release --locked --workspace --features "$GPU_FEATURES" --no-fail-fast \
    "${SEEDED_TESTS[@]/#/--test=}" -- --test-threads 8 || status=$?
if [ "$status" -ne 0 ]; then
    echo "test.sh: some tests failed (see above) after ${SECONDS} s" >&2
    exit "$status"
fi
echo "test.sh: tests passed after ${SECONDS} s"
