#!/usr/bin/env bash
# Downloads the Debian packages ember links against into .deps/debs (git-ignored), for a GPU
# machine that has CUDA and PyTorch but none of these packages and no network. The folder
# travels with the checkout; there, `make gpu-check` unpacks it with `dpkg -x` into
# .deps/root (scripts/gpu_env.sh). About 46 MB, 30 of them Fashion-MNIST. See docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libopenblas0-pthread libopenblas-pthread-dev libgfortran5  # CPU matrix products
  doctest-dev                                                # tests
  libcli11-dev nlohmann-json3-dev                            # flags, JSON (headers)
  zlib1g-dev                                                 # gzip (headers)
  libstb-dev                                                 # JPEG/PNG decoding (headers)
  libgloo0 libgloo-dev libhiredis0.14 libibverbs1            # Gloo (CPU collectives) and
  libnl-3-200 libnl-route-3-200                              #   what libgloo.so links
  libzmq5 libzmq3-dev cppzmq-dev libsodium23 libpgm-5.3-0    # ZeroMQ (the rendezvous store)
  libnorm1                                                   #   and what libzmq.so links
  dataset-fashion-mnist                                      # the learning test's data (30 MB)
)

mkdir -p .deps/debs
cd .deps/debs
rm -f ./*.deb
# apt-get download works without root; the index must be current.
apt-get download "${packages[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
count=$(ls ./*.deb 2>/dev/null | wc -l)
if [[ $count -ne ${#packages[@]} ]]; then
  echo "fetch_gpu_deps: expected ${#packages[@]} packages, got $count (run apt-get update?)" >&2
  exit 1
fi
echo "fetch_gpu_deps: $count packages, $(du -sh . | cut -f1) in .deps/debs"
