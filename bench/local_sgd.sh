#!/usr/bin/env bash
# Synchronous data parallel against local SGD with local_steps 1, 2, 4, 8 and 16: the local-SGD
# seed's set-up on the CPU (cifar_cnn, 2 processes over Gloo, batch 256 per node, lr 0.1).
#
#   bench/local_sgd.sh CIFAR_DATA [OUT_FOLDER] [EPOCHS]
#
# With EPOCHS 1 (the default) it is a benchmark of communication: payload bytes and
# communication time per step next to the step time. With EPOCHS 20 (make anchor-local-sgd) it
# reproduces the seed's one recorded result: best top-1 62.72, 61.39, 61.08, 61.70 and 58.05% for
# local steps 1, 2, 4, 8 and 16 on 2 GPUs. Prints a table and overlays the runs' test accuracy
# in OUT_FOLDER/comparison.svg. Figures, never a pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/local_sgd.sh CIFAR_DATA [OUT_FOLDER] [EPOCHS]}
out=${2:-runs/bench-local-sgd}
epochs=${3:-1}
mkdir -p "$out"
port=$((23000 + RANDOM % 1000))
runs=()
rm -f "$out/wall.txt"
for steps in sync 1 2 4 8 16; do
  run="$out/local-steps-$steps"
  algorithm=(--local-steps "$steps")
  [[ $steps == sync ]] && algorithm=(--no-local-sgd)
  start=$(date +%s.%N)
  bin/train_cifar "$data" --dist-url "tcp://127.0.0.1:$port" --dist-backend gloo --nproc 2 \
    --epochs "$epochs" --batch-size 256 --lr 0.1 "${algorithm[@]}" -j 2 --out "$run" \
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
print("| algorithm | best top-1 | its top-5 | ms per step | payload bytes per step "
      "| communication ms per step | wall time |")
print("|---|---|---|---|---|---|---|")
for steps in ["sync", "1", "2", "4", "8", "16"]:
    s = json.load(open(f"{out}/local-steps-{steps}/summary.json"))
    b, c = s["best"], s["communication"]
    name = "data parallel" if steps == "sync" else f"local SGD, {steps} local steps"
    print(f"| {name} | {100 * b['top1']:.2f}% (epoch {b['epoch']}) | {100 * b['test_top5']:.2f}% "
          f"| {s['throughput']['ms_per_step']:.1f} | {c['payload_bytes_per_step']:,.0f} "
          f"| {c['comm_ms_per_step']:.2f} | {wall[steps]} s |")
PY
bin/ember_plot "${runs[@]}" -o "$out/comparison.svg" --title "cifar_cnn, 2 processes, local SGD"
