#!/usr/bin/env bash
# The stress loop for reproducibility: runs the test binaries that compare seeded runs bit
# for bit (forks, suites, resume, start_from, the hook, seeded initialisation) RUNS times
# each with 1 test thread, cargo's default and 8, and prints a table of failures. A draw
# from burn's generator outside m2m_core::seed::with_seed fails some of these runs when
# threads overlap (more often with more threads than cores).
#
# Usage: bash scripts/stress-seeded.sh [RUNS] [LOG_DIR]     (defaults: 20, a temporary folder)
# Needs what scripts/test.sh sets up (Fashion-MNIST; the binaries are built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
RUNS="${1:-20}"
LOGS="${2:-$(mktemp -d)}"
mkdir -p "$LOGS"
SEEDED_TESTS=(fork suite end_to_end start_from hook seeding suite_prefix suite_interrupt)
# The binaries as cargo built them (names and paths from cargo's JSON messages), with the
# features of scripts/test.sh, so that after it nothing is built again.
GPU_FEATURES="m2m-burn-plugin/cuda,m2m-burn-plugin/wgpu,m2m-tests/cuda,m2m-tests/wgpu"
mapfile -t BINARIES < <(
    cargo test --release --locked --workspace --features "$GPU_FEATURES" --no-run --message-format=json \
        "${SEEDED_TESTS[@]/#/--test=}" |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"] + " " + m["executable"])'
)
[ "${#BINARIES[@]}" -eq "${#SEEDED_TESTS[@]}" ] || { echo "stress-seeded.sh: expected ${#SEEDED_TESTS[@]} binaries, found ${#BINARIES[@]}" >&2; exit 1; }
echo "| binary | threads | runs | failed | seconds per run |"
echo "|---|---|---|---|---|"
failed_total=0
for entry in "${BINARIES[@]}"; do
    name="${entry%% *}" exe="${entry#* }"
    for threads in 1 default 8; do
        args=()
        [ "$threads" != default ] && args=(--test-threads "$threads")
        failed=0 start=$SECONDS
        for run in $(seq 1 "$RUNS"); do
            log="$LOGS/$name-$threads-$run.log"
            # Test binaries run from their package's folder, as cargo runs them.
            pkg_dir=tests
            case "$name" in suite_prefix | suite_interrupt) pkg_dir=m2m-burn-plugin ;; esac
            if ! (cd "$pkg_dir" && "$exe" "${args[@]}") >"$log" 2>&1; then
                failed=$((failed + 1))
                echo "stress-seeded.sh: $name, threads $threads, run $run failed: $log" >&2
            else
                rm -f "$log"
            fi
        done
        failed_total=$((failed_total + failed))
        echo "| $name | $threads | $RUNS | $failed | $(((SECONDS - start) / RUNS)) |"
    done
done
[ "$failed_total" -eq 0 ] || exit 1
