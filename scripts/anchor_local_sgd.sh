#!/usr/bin/env bash
# The local-SGD seed's one recorded result, reproduced on the CPU (make anchor-local-sgd):
# cifar_cnn, 2 processes over Gloo, 20 epochs, batch 256 per node, lr 0.1, for local_steps
# 1, 2, 4, 8 and 16. The seed measured best top-1 62.72, 61.39, 61.08, 61.70 and 58.05% on 2 GPUs.
#
#   scripts/anchor_local_sgd.sh CIFAR_DATA [OUT_FOLDER] [EPOCHS]
#
# Prints a table of best top-1/top-5, ms per step and wall time per run, and overlays the runs'
# test accuracy in OUT_FOLDER/comparison.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/anchor_local_sgd.sh CIFAR_DATA [OUT_FOLDER] [EPOCHS]}
out=${2:-runs/anchor-local-sgd}
epochs=${3:-20}
mkdir -p "$out"
port=$((23000 + RANDOM % 1000))
runs=()
for steps in 1 2 4 8 16; do
  run="$out/local-steps-$steps"
  start=$(date +%s.%N)
  bin/train_cifar "$data" --dist-url "tcp://127.0.0.1:$port" --dist-backend gloo --nproc 2 \
    --epochs "$epochs" --batch-size 256 --lr 0.1 --local-steps "$steps" -j 2 --out "$run" \
    >"$run.log" 2>&1
  end=$(date +%s.%N)
  echo "$steps $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')" >>"$out/wall.txt"
  runs+=("$run")
  port=$((port + 1))
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
wall = dict(line.split() for line in open(f"{out}/wall.txt"))
print("| local steps | best top-1 | its top-5 | ms per step | wall time |")
print("|---|---|---|---|---|")
for steps in ["1", "2", "4", "8", "16"]:
    s = json.load(open(f"{out}/local-steps-{steps}/summary.json"))
    b = s["best"]
    print(f"| {steps} | {100 * b['top1']:.2f}% (epoch {b['epoch']}) | {100 * b['test_top5']:.2f}% "
          f"| {s['throughput']['ms_per_step']:.1f} | {wall[steps]} s |")
PY
bin/ember_plot "${runs[@]}" -o "$out/comparison.svg" --title "cifar_cnn, 2 processes, local SGD"
