#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (driver + NVRTC) and no network: one
# prepared script for a short GPU lease (issue #12).
#
#   bash scripts/gpu-check.sh [--quick-suite]
#   (env: STAGES="gpu-path parity warmup side-by-side epoch" (any subset, in this order),
#    SHAPES="1 28,3 32", SEEDS="0 1 2", RECIPES="erm drs m2m",
#    DEADLINE=540 seconds after which no further stage starts)
#
# Stages:
#   gpu-path      the GPU-path test set of CI (tests/tests/gpu_path.rs: ResNet-32 and the
#                 small CNN forward and backward, BatchNorm over several steps, every loss,
#                 SGD, M2m on a batch, checkpoints across backends, burn-train with
#                 hook::fusion_safe resuming bit for bit) on CUDA, against the CPU
#                 backend; then burn's guide with the M2m hook, burn-train's file
#                 checkpointer and fusion, killed after its second epoch and resumed
#                 (m2m-burn-plugin/tests/guide.rs); the same set CI runs on wgpu through
#                 lavapipe.
#   parity        CUDA against the CPU backend, same weights and inputs (logits, loss,
#                 input gradient, eval logits, one SGD step; relative error under 1e-3).
#   warmup        m2m-bench on CUDA twice, first with an empty CubeCL cache (NVRTC
#                 compilation and autotuning), then with the cache it filled: the cost of
#                 warm-up, apart from the steady-state medians. The cache is kept in
#                 $OUT/cubecl-cache.tar.gz to carry to the next machine
#                 (M2M_CUBECL_CACHE, docs/benchmarks.md).
#   side-by-side  m2m-bench on CUDA and its PyTorch twin on the same GPU, alternated
#                 A B A B, each after its warm-up (bench/side-by-side.sh), per shape.
#   epoch         `m2m train` end to end on CUDA, ResNet-32 on Fashion-MNIST-LT rho 100:
#                 two ERM epochs (data, training, evaluation of validation and test; the
#                 first includes warm-up), then one M2m epoch translating through the
#                 ERM model.
# With --quick-suite it then trains ERM, DRS and M2m (quick recipes, seeds 0-2) on CUDA.
#
# Binaries: .device/{m2m,m2m-bench,gpu_path,guide}[.xz], x86-64, built here with
#   cargo build --release --features cuda --bin m2m --bin m2m-bench
#   cargo test --release -p m2m-tests --features cuda --test gpu_path --no-run   (copy
#     the test binary it names to .device/gpu_path)
#   cargo test --release -p m2m-burn-plugin --features cuda --test guide --no-run   (to
#     .device/guide)
# then stripped and xz-compressed (the device tool carries at most 64 MiB; git ignores
# .device, so name it in the tool's `carry`), or built on
# the spot when cargo is there. Data: $M2M_DATA, else .device/data (Fashion-MNIST IDX).
# PyTorch: python3 on the GPU machine (M2M_PYTHON to name another).
# Results go to $OUT (or ./gpu-check-out): bench.txt, train.log, runs.tar.gz,
# cubecl-cache.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
BIN=/tmp/m2m-bin
mkdir -p "$BIN"
for b in m2m m2m-bench gpu_path guide; do
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
for t in "m2m-tests gpu_path" "m2m-burn-plugin guide"; do
    set -- $t
    if [ ! -x "$BIN/$2" ] && command -v cargo >/dev/null; then
        built=$(cargo test --release -p "$1" --features cuda --test "$2" --no-run --message-format=json 2>/dev/null \
            | python3 -c "import json,sys; print([m['executable'] for m in map(json.loads, sys.stdin) if m.get('executable')][-1])")
        [ -n "$built" ] && cp "$built" "$BIN/$2"
    fi
done
export M2M_DATA="${M2M_DATA:-$PWD/.device/data}"
export M2M_CUBECL_CACHE=/tmp/m2m-cubecl-cache
STAGES="${STAGES:-gpu-path parity warmup side-by-side epoch}"
DEADLINE="${DEADLINE:-540}"
log() { echo "== $*" | tee -a "$OUT/bench.txt"; }
wants() { [[ " $STAGES " == *" $1 "* ]]; }
in_time() {
    if [ "$SECONDS" -gt "$DEADLINE" ]; then log "deadline ($DEADLINE s) reached: skipping $1"; return 1; fi
}

log "$(date -u) $(uname -m)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/bench.txt"
ls /usr/local/cuda*/lib64/libnvrtc.so* 2>/dev/null | head -3 | tee -a "$OUT/bench.txt"

if wants gpu-path && in_time gpu-path; then
    log "GPU-path test set on CUDA (tests/tests/gpu_path.rs, as CI runs it on wgpu)"
    if [ -x "$BIN/gpu_path" ]; then
        M2M_REQUIRE_GPU=cuda timeout 300 "$BIN/gpu_path" cuda:: --test-threads 1 2>&1 | tee -a "$OUT/bench.txt"
    else
        log "no gpu_path test binary (.device/gpu_path): skipped"
    fi
    log "burn's guide with the M2m hook, the file checkpointer and fusion on CUDA, killed and resumed"
    if [ -x "$BIN/guide" ]; then
        M2M_REQUIRE_GPU=cuda timeout 300 "$BIN/guide" --exact the_guide_with_m2m_is_killed_and_resumes_on_fused_cuda \
            --test-threads 1 2>&1 | tee -a "$OUT/bench.txt"
    else
        log "no guide test binary (.device/guide): skipped"
    fi
fi

if wants parity && in_time parity; then
    log "CUDA vs CPU parity (same weights and inputs)"
    for model in small-cnn resnet32; do
        timeout 300 "$BIN/m2m-bench" compare $model 64 1 28 2>&1 | tee -a "$OUT/bench.txt"
    done
fi

if wants warmup && in_time warmup; then
    rm -rf "$M2M_CUBECL_CACHE"
    for cache in empty filled; do
        log "warm-up, CubeCL cache $cache: M2M_BENCH_BACKEND=cuda m2m-bench resnet32 128 1 28 3"
        start=$(date +%s%N)
        M2M_BENCH_BACKEND=cuda timeout 300 "$BIN/m2m-bench" resnet32 128 1 28 3 2>&1 | tee -a "$OUT/bench.txt"
        echo "process wall $((($(date +%s%N) - start) / 1000000)) ms" | tee -a "$OUT/bench.txt"
    done
    du -sh "$M2M_CUBECL_CACHE" 2>&1 | tee -a "$OUT/bench.txt"
    tar -czf "$OUT/cubecl-cache.tar.gz" -C "$M2M_CUBECL_CACHE" . 2>/dev/null
fi

if wants side-by-side; then
    IFS=',' read -ra shapes <<<"${SHAPES:-1 28,3 32}"
    for shape in "${shapes[@]}"; do
        in_time "side-by-side $shape" || continue
        log "side by side on this GPU: resnet32 128 $shape 5"
        # shellcheck disable=SC2086
        M2M_BENCH_BACKEND=cuda M2M_BENCH_DEVICE=cuda M2M_BENCH_BIN="$BIN/m2m-bench" M2M_PYTHON="${M2M_PYTHON:-python3}" \
            timeout 300 bash bench/side-by-side.sh resnet32 128 $shape 5 2>&1 | tee -a "$OUT/bench.txt"
    done
fi

RUNS=/tmp/m2m-gpu-runs
# Seconds per epoch and what each epoch reached, from a run's metrics.csv.
epochs() { cut -d, -f1,5,6,7,10,14,22-25 "$1/metrics.csv" 2>/dev/null | tee -a "$OUT/bench.txt"; }
train() { # name, then m2m train arguments
    local name=$1
    shift
    local start
    start=$(date +%s)
    timeout $((DEADLINE + 50 - SECONDS)) "$BIN/m2m" train "$@" --backend cuda --no-dashboard \
        --set "name=\"$name\"" --set "output_dir=\"$RUNS\"" 2>>"$OUT/train.log" | tail -n 3 | tee -a "$OUT/bench.txt"
    echo "wall $(($(date +%s) - start)) s" | tee -a "$OUT/bench.txt"
    epochs "$RUNS/$name"
    tar -czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude='*.mpk' --exclude='burn' . 2>/dev/null
}

if wants epoch; then
    rm -rf "$RUNS"
    if in_time "ERM epochs"; then
        log "m2m train: ResNet-32 ERM on Fashion-MNIST-LT rho 100, 2 epochs (epoch 0 includes warm-up)"
        train erm-epochs recipes/erm-fmnist-lt100-resnet32.ron --set schedule.epochs=2 --set schedule.warmup_epochs=1 \
            --set 'schedule.milestones=[]'
    fi
    if [ -f "$RUNS/erm-epochs/model-best-val.mpk" ] && in_time "M2m epoch"; then
        log "m2m train: ResNet-32 M2m on Fashion-MNIST-LT rho 100, 1 epoch, g = the ERM run's model"
        train m2m-epoch recipes/m2m-fmnist-lt100-resnet32.ron --set schedule.epochs=1 --set schedule.warmup_epochs=0 \
            --set 'schedule.milestones=[]' --set m2m.from_epoch=0 --set "m2m.g=Checkpoint(\"$RUNS/erm-epochs/model-best-val\")"
    fi
fi

if [ "${1:-}" = "--quick-suite" ]; then
    for seed in ${SEEDS:-0 1 2}; do
        for recipe in ${RECIPES:-erm drs m2m}; do
            in_time "$recipe seed $seed" || continue
            log "$recipe seed $seed"
            train "$recipe-s$seed" "recipes/$recipe-fmnist-lt100-quick.ron" --set "seed=$seed"
        done
    done
fi
log "done $(date -u)"
