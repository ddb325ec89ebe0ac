#!/usr/bin/env bash
# One prepared GPU check, under 5 minutes on one GPU: the correctness pass first (the CUDA-graph
# and bf16 tests of tests/test_accelerate.py and the training-loop tests, on the GPU), then the
# speed table of benchmarks/gpu_speed.py (aekit eager / CUDA graphs / bf16 against plain eager,
# fused-Adam and graph-captured loops; AE, VAE, AAE; batch 128 and 1024). Its table goes into
# docs/benchmarks.md with the card and the torch version it prints.
#
# usage: benchmarks/gpu.sh [OUT_DIR]      (default benchmarks/results/gpu)
#   needs Fashion-MNIST where aekit finds it ($AEKIT_DATA/fashion-mnist or
#   /usr/share/datasets/fashion-mnist) and a Python with torch, scikit-learn, safetensors,
#   matplotlib and pytest (aekit itself is taken from src/).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    | tee -a "$out/gpu.txt"
echo "== correctness: tests on the GPU" | tee "$out/correctness.txt"
timeout 150 "$python" -m pytest tests/test_accelerate.py tests/test_training.py -q -x \
    -p no:benchmark -p no:cacheprovider 2>&1 | tail -25 | tee -a "$out/correctness.txt"
echo "== speed" | tee "$out/speed.txt"
timeout 240 "$python" benchmarks/gpu_speed.py --epochs 2 --json "$out/gpu_speed.json" 2>&1 \
    | tee -a "$out/speed.txt"
