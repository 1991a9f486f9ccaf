#!/usr/bin/env bash
# make gpu-check: on a machine with a GPU, build ember with CUDA for that GPU, run every test
# (the CUDA-against-CPU comparisons included), run the kernel benchmarks, and write
# reports/gpu-check.md and reports/gpu-check.json (device, commit, test summary, each CUDA op's
# largest error against the CPU, benchmark figures, the input pipeline's figures). Exits
# non-zero if a test failed.
#
# Works on a normal Debian machine (packages from scripts/setup.sh) and on a GPU machine that
# has only CUDA and PyTorch, when .deps/debs was carried along (docs/gpu.md).
set -uo pipefail
cd "$(dirname "$0")/.."

if ! nvidia-smi --query-gpu=name --format=csv,noheader >/dev/null 2>&1; then
  echo "gpu-check: no GPU answers nvidia-smi; this target needs one (make test runs everywhere)" >&2
  exit 1
fi

setup=1
if [[ -d .deps/debs ]]; then
  source scripts/gpu_env.sh
  setup=0
fi

mkdir -p reports
rm -f reports/gpu-ops.jsonl
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '. ')
jobs=$(nproc)
commit=${EMBER_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}

start=$(date +%s)
if ! make build CUDA=1 CUDA_ARCH="$arch" JOBS="$jobs" SETUP="$setup" \
     EXTRA_CMAKE_FLAGS="${EMBER_CMAKE_FLAGS:-}" 2>&1 | tee reports/build.log; then
  echo "gpu-check: build failed (reports/build.log)" >&2
  exit 1
fi
build_seconds=$(( $(date +%s) - start ))

start=$(date +%s)
(cd build/cuda && EMBER_GPU_REPORT="$PWD/../../reports/gpu-ops.jsonl" \
   ctest --output-on-failure -j "$jobs") 2>&1 | tee reports/ctest.log
test_status=${PIPESTATUS[0]}
test_seconds=$(( $(date +%s) - start ))

bin/ember_info 2>&1 | tee reports/ember_info.log
bin/bench_kernels --json reports/bench.json 2>&1 | tee reports/bench.log
# The input pipeline, and the share of a ResNet-18 step spent waiting for data; on the real
# CIFAR-10 when its JPEG copy was carried along (EMBER_CIFAR10=<folder or archive>).
loader_flags=(--device cuda)
[[ -n "${EMBER_CIFAR10:-}" ]] && loader_flags+=(--cifar "$EMBER_CIFAR10")
bin/bench_loader "${loader_flags[@]}" 2>&1 | tee reports/bench_loader.log

# Distributed on one GPU: NCCL with one rank, and two ranks sharing the GPU through Gloo (NCCL
# refuses two ranks on one GPU), one short epoch each of the seed's cifar_cnn on generated data
# (step time and bytes per step in reports/dist-*/summary.json).
dist_data=$(mktemp -d)
python3 - "$dist_data" <<'PY'
import os, random, sys
random.seed(0)
folder = sys.argv[1]
for name, n in [(f"data_batch_{i}.bin", 1000) for i in range(1, 6)] + [("test_batch.bin", 1000)]:
    with open(os.path.join(folder, name), "wb") as f:
        for k in range(n):
            f.write(bytes([k % 10]) + random.randbytes(3072))
PY
port=$((23600 + RANDOM % 300))
# NCCL: train_cifar starts one process per visible GPU itself.
bin/train_cifar "$dist_data" --dist-url "tcp://127.0.0.1:$port" --dist-backend nccl \
  --epochs 1 -b 256 --local-steps 4 --records-per-batch 1000 -j 2 --out reports/dist-nccl 2>&1 |
  tail -n 8 | tee reports/dist-nccl.log
# Gloo: two ranks started by bin/launch, both on cuda:0.
bin/launch --nproc 2 --master-port $((port + 1)) -- bin/train_cifar "$dist_data" \
  --dist-backend gloo --epochs 1 -b 256 --local-steps 4 --records-per-batch 1000 -j 2 \
  --out reports/dist-gloo 2>&1 | tail -n 8 | tee reports/dist-gloo.log
rm -rf "$dist_data"

python3 scripts/gpu_report.py --commit "$commit" --arch "$arch" \
  --build-seconds "$build_seconds" --test-seconds "$test_seconds" --test-status "$test_status"
exit "$test_status"
