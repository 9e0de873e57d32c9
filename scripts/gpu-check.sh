#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (driver + NVRTC) and no network.
#
#   bash scripts/gpu-check.sh [--quick-suite]
#   (env: SEEDS="0 1 2", RECIPES="erm drs m2m", BENCH_MODELS="small-cnn resnet32" ("" skips),
#    DEADLINE=500 seconds after which no further run starts)
#
# Uses the x86-64 binaries in .device/ (m2m and m2m-bench built with
# `cargo build --release --features cuda --bin m2m --bin m2m-bench`, stripped, optionally
# xz-compressed), or builds them when cargo is available. Data: $M2M_DATA, else .device/data (Fashion-MNIST IDX files).
# Compares CUDA with the CPU backend (logits, loss, input gradient, one SGD step; relative
# error must stay under 1e-3), prints throughput of ERM and M2m iterations on CUDA; with --quick-suite it also trains
# ERM, DRS and M2m on Fashion-MNIST-LT rho 100 (quick recipes, seeds 0-2) on CUDA.
# Results go to $OUT (or ./gpu-check-out): bench.txt and runs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
# Binaries: .device/{m2m,m2m-bench}[.xz] (xz keeps them under the device tool's 64 MiB),
# else a local cargo build.
BIN=/tmp/m2m-bin
mkdir -p "$BIN"
for b in m2m m2m-bench; do
    if [ -f ".device/$b.xz" ]; then
        python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" ".device/$b.xz" "$BIN/$b"
    elif [ -f ".device/$b" ]; then
        cp ".device/$b" "$BIN/$b"
    fi
    chmod +x "$BIN/$b" 2>/dev/null
done
if [ ! -x "$BIN/m2m" ]; then
    cargo build --release --features cuda --bin m2m --bin m2m-bench || exit 1
    BIN="${CARGO_TARGET_DIR:-target}/release"
fi
export M2M_DATA="${M2M_DATA:-$PWD/.device/data}"
log() { echo "== $*" | tee -a "$OUT/bench.txt"; }

log "$(date -u) $(uname -m)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/bench.txt"
ls /usr/local/cuda*/lib64/libnvrtc.so* 2>/dev/null | head -3 | tee -a "$OUT/bench.txt"

log "CUDA vs CPU parity (same weights and inputs)"
for model in small-cnn resnet32; do
    timeout 300 "$BIN/m2m-bench" compare $model 64 1 28 2>&1 | tee -a "$OUT/bench.txt"
done

log "throughput (CUDA)"
for model in ${BENCH_MODELS-small-cnn resnet32}; do
    M2M_BENCH_BACKEND=cuda timeout 300 "$BIN/m2m-bench" $model 128 1 28 5 2>&1 | tee -a "$OUT/bench.txt"
done

if [ "${1:-}" = "--quick-suite" ]; then
    RUNS=/tmp/m2m-gpu-runs
    rm -rf "$RUNS"
    # Stop starting runs after DEADLINE seconds (the device tool allows 600 per command).
    DEADLINE="${DEADLINE:-500}"
    for seed in ${SEEDS:-0 1 2}; do
        for recipe in ${RECIPES:-erm drs m2m}; do
            if [ "$SECONDS" -gt "$DEADLINE" ]; then log "deadline reached, skipping $recipe seed $seed"; continue; fi
            log "$recipe seed $seed"
            start=$(date +%s)
            timeout $(( DEADLINE + 60 - SECONDS )) "$BIN/m2m" train "recipes/$recipe-fmnist-lt100-quick.ron" --backend cuda --no-dashboard \
                --set "seed=$seed" --set "name=\"$recipe-s$seed\"" --set "output_dir=\"$RUNS\"" 2>>"$OUT/train.log" | tee -a "$OUT/bench.txt"
            echo "wall $(( $(date +%s) - start )) s" | tee -a "$OUT/bench.txt"
            tar -czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude='*.mpk' --exclude='burn' . 2>/dev/null
        done
    done
fi
log "done $(date -u)"
