#!/usr/bin/env bash
# Installs the Debian packages ember builds against. Idempotent and silent when nothing is
# missing, so `make` can run it every time. As root (or with CI=true, through sudo when not
# root) it installs what is missing; otherwise it prints the exact command to run and stops.
#
# The CUDA toolkit is not a Debian package here: it is expected under /usr/local/cuda for the
# default build, and not needed at all for `make CUDA=0`.
set -euo pipefail

packages=(
  # build tools
  cmake make g++ pkg-config clang-format python3
  # tests
  doctest-dev
  # CPU matrix products
  libopenblas-dev
  # command-line parsing and JSON (header-only)
  libcli11-dev nlohmann-json3-dev
  # compression (gzipped idx files, checkpoints)
  zlib1g-dev
  # images (JPEG/PNG data sets)
  libstb-dev
  # distributed: Gloo collectives on the CPU, ZeroMQ messages
  libgloo-dev libzmq3-dev cppzmq-dev
  # a real data set for learning tests
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif [[ "${CI:-}" == "true" ]]; then
  sudo=(sudo)
else
  echo "ember needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo ${install[*]}" >&2
  exit 1
fi

echo "scripts/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" "${install[@]}" -qq >/dev/null
