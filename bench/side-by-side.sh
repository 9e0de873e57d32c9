#!/usr/bin/env bash
# burn (m2m-bench, CPU backend by default) against its PyTorch twin (bench/pytorch/m2m_bench.py) on
# the same workload, alternated A B A B so that drift in the machine's load shows.
#
#   bench/side-by-side.sh [model] [batch] [channels] [size] [iterations]
#
# With no arguments: resnet32 128 1 28 5, then resnet32 128 3 32 5. Arguments go to both
# programs unchanged. Threads: RAYON_NUM_THREADS limits both (the PyTorch script reads it
# too; M2M_BENCH_THREADS overrides it there); unset, each uses its default (all cores).
# Needs the venv from bench/pytorch/setup.sh (M2M_PY_VENV, as there).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/m2m/target}
# M2M_BENCH_BIN and M2M_PYTHON name the two programs elsewhere (scripts/gpu-check.sh:
# carried binaries, the GPU machine's own PyTorch). With M2M_BENCH_BACKEND=cuda and
# M2M_BENCH_DEVICE=cuda both run on the GPU.
bin=${M2M_BENCH_BIN:-$target/release/m2m-bench}
python=${M2M_PYTHON:-${M2M_PY_VENV:-$HOME/.cache/m2m/pyenv}/bin/python}

if [ ! -x "$bin" ]; then
    echo "no $bin; building it:"
    echo "  (cd $root && CARGO_TARGET_DIR=$target cargo build --release --locked -p m2m-burn-plugin --bin m2m-bench)"
    (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release --locked -p m2m-burn-plugin --bin m2m-bench)
fi
if [ ! -x "$python" ]; then
    echo "no $python: run bench/pytorch/setup.sh (or set M2M_PY_VENV)" >&2
    exit 1
fi

# The seconds after "$2" in the output $1 (e.g. "train step 0.123 s").
seconds() { sed -n "s/.*$2 \([0-9.]*\) s.*/\1/p" <<<"$1" | head -n 1; }

compare() {
    local round label out key value
    local -A t=() # t[label:key:round] = seconds
    echo "== $*"
    for round in 1 2; do
        for label in burn pytorch; do
            if [ "$label" = burn ]; then
                out=$("$bin" "$@")
            else
                out=$("$python" "$root/bench/pytorch/m2m_bench.py" "$@")
            fi
            echo "$out" | sed "s/^/[round $round] /"
            for key in "train step" "M2m iteration" "eval forward"; do
                value=$(seconds "$out" "$key")
                if [ -z "$value" ]; then
                    echo "could not read the $key time of $label" >&2
                    exit 1
                fi
                t[$label:$key:$round]=$value
            done
        done
    done
    # burn / pytorch per round (above 1: burn is slower), and of the sums of both rounds.
    for key in "train step" "M2m iteration" "eval forward"; do
        awk -v k="$key" -v b1="${t[burn:$key:1]}" -v p1="${t[pytorch:$key:1]}" \
            -v b2="${t[burn:$key:2]}" -v p2="${t[pytorch:$key:2]}" 'BEGIN {
                printf "burn/pytorch %s: round 1 %.2f (%s s / %s s), round 2 %.2f (%s s / %s s), both %.2f\n",
                    k, (p1 > 0 ? b1 / p1 : 0), b1, p1, (p2 > 0 ? b2 / p2 : 0), b2, p2,
                    (p1 + p2 > 0 ? (b1 + b2) / (p1 + p2) : 0)
            }'
    done
}

if [ $# -gt 0 ]; then
    compare "$@"
else
    compare resnet32 128 1 28 5
    compare resnet32 128 3 32 5
fi
