#!/usr/bin/env bash
# Sourced by scripts/gpu_check.sh on a GPU machine without ember's Debian packages: unpacks
# .deps/debs (made by scripts/fetch_gpu_deps.sh) into .deps/root and exports what CMake and
# the dynamic loader need to find them, plus the CUDA libraries, which there may live in
# PyTorch's pip wheels (site-packages/nvidia/...) rather than in the toolkit.
#
# Exports: EMBER_CMAKE_FLAGS (extra -D flags for cmake), LD_LIBRARY_PATH, and
# EMBER_FASHION_MNIST (the learning test's data folder) when the data set was carried.

ember_root=$(pwd)
if [[ -d .deps/debs ]]; then
  rm -rf .deps/root
  mkdir -p .deps/root
  for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps/root; done
  prefix="$ember_root/.deps/root/usr"
  EMBER_CMAKE_FLAGS="-DCMAKE_PREFIX_PATH=$prefix"
  # libgloo.so lies in usr/lib, the others in usr/lib/x86_64-linux-gnu
  LD_LIBRARY_PATH="$prefix/lib/x86_64-linux-gnu/openblas-pthread:$prefix/lib/x86_64-linux-gnu:$prefix/lib:${LD_LIBRARY_PATH:-}"
  [[ -d "$prefix/share/datasets/fashion-mnist" ]] && export EMBER_FASHION_MNIST="$prefix/share/datasets/fashion-mnist"
fi

# nvcc: the PATH's, else the usual toolkit folder.
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# CUDA libraries from pip wheels: every folder under site-packages/nvidia that holds a
# lib*.so.* becomes a search prefix for CMake and a loader path.
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
if [[ -n "$site" ]]; then
  hints=""
  while IFS= read -r libdir; do
    hints="${hints:+$hints;}$(dirname "$libdir")"
    LD_LIBRARY_PATH="$libdir:${LD_LIBRARY_PATH:-}"
  done < <(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u)
  [[ -n "$hints" ]] && EMBER_CMAKE_FLAGS="${EMBER_CMAKE_FLAGS:-} -DEMBER_CUDA_HINTS=$hints"
fi
export LD_LIBRARY_PATH EMBER_CMAKE_FLAGS
