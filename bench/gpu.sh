#!/usr/bin/env bash
# The model benchmark on an NVIDIA GPU machine: builds the tfjs-node-gpu backend (TensorFlow 2.20,
# CUDA 12.5 and cuDNN 9.3 from PyPI's nvidia-* wheels; about 2.1 GB to download, 3.1 GB on disk)
# and measures it against wasm and the PyTorch CPU peer, as `retool bench model` does on a CPU.
# Needs: the NVIDIA driver (libcuda.so.1 and /dev/nvidia*), g++, make, Python 3. Run from a clone:
#   bash bench/gpu.sh [OUT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bench.json}

# npm ci detects the GPU by itself; RETOOL_GPU=1 says so outright, and fails loudly below if not.
RETOOL_GPU=1 npm ci --no-audit --no-fund
node bin/retool.js model backend --backend node-gpu --json
device=$(node bin/retool.js model backend --backend node-gpu --json | node -e 'process.stdin.on("data", d => console.log(JSON.parse(d).device))')
if [ "$device" != gpu ]; then
  echo "bench/gpu.sh: tfjs-node-gpu loaded but TensorFlow sees no GPU (device: $device); check the driver with nvidia-smi" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
node bin/retool.js bench model --backend node-gpu,wasm --native-threads "$(nproc)" --presets tiny,small,smollm2-135m --steps 10 --json > "$out"
echo "bench/gpu.sh: wrote $out"
