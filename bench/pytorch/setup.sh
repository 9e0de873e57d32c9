#!/usr/bin/env bash
# Creates (once) the virtual environment for bench/pytorch/m2m_bench.py and installs
# requirements.txt into it. Idempotent: rerunning only checks what is there.
#
#   bench/pytorch/setup.sh            # venv at ${M2M_PY_VENV:-$HOME/.cache/m2m/pyenv}
#   M2M_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bench/pytorch/setup.sh
#
# Why not `pip install --no-deps torch`: the PyPI Linux x86-64 wheel is the CUDA build,
# and libtorch.so itself links libcudart, cublas, cudnn, nccl, ... so `import torch`
# fails without the nvidia-* wheels, even on a machine without a GPU (tried: 2.15.0 with
# --no-deps dies on libcudart.so.13). So the plain PyPI install pulls them (~5 GB in the
# venv). Where PyTorch's own CPU-only index is reachable, set M2M_TORCH_INDEX_URL to it:
# torch 2.15.0+cpu is then installed first and satisfies `torch==2.15.0` below.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
venv=${M2M_PY_VENV:-$HOME/.cache/m2m/pyenv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv with $($python --version)"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
if [ -n "${M2M_TORCH_INDEX_URL:-}" ]; then
    "$venv/bin/pip" install --index-url "$M2M_TORCH_INDEX_URL" "$(grep '^torch==' "$here/requirements.txt")"
fi
"$venv/bin/pip" install -r "$here/requirements.txt"
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
echo "run: $venv/bin/python $here/m2m_bench.py [resnet32|small-cnn] [batch] [channels] [size] [iterations]"
