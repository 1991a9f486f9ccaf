# ember's front door. CMake does the real build (CMakeLists.txt); this file picks the
# configuration, runs the dependency check, and names the everyday commands:
#
#   make                 build everything (programs land in bin/)
#   make test            build, then run the test suite through ctest
#   make CUDA=0 test     the same without any CUDA toolkit (CPU-only ember)
#   make demo            set-up, build, Fashion-MNIST, then a small CNN trained to 90% test
#                        accuracy (scripts/demo.sh), each stage timed
#   make gpu-check       on a machine with a GPU: every test including CUDA ones, plus a report
#   make bench           build and run the kernel and input-pipeline benchmarks (figures, never
#                        a pass/fail)
#   make sanitize        CPU-only build under AddressSanitizer + UBSan, unit and multi-process tests
#   make anchor-local-sgd CIFAR=DIR   the local-SGD seed's result on the CPU: cifar_cnn, 2
#                        processes, 20 epochs, local steps 1..16 (long: not part of CI)
#   make format          clang-format every source file in place (format-check: CI's check)
#   make clean           remove build/ and bin/
#
# Variables: CUDA=0|1 (default 1), CUDA_ARCH=90 (default: the local GPU's, else 90),
# BUILD_TYPE=Release|Debug|RelWithDebInfo, JOBS=N (default: all cores), LABELS=regex (ctest -L),
# SETUP=0 (skip the dependency check).

CUDA ?= 1
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
LABELS ?=
# SETUP=0 skips scripts/setup.sh (a machine whose dependencies come from elsewhere)
SETUP ?= 1

ifeq ($(CUDA),0)
  BUILD_DIR := build/cpu
  CMAKE_FLAGS := -DEMBER_CUDA=OFF
else
  BUILD_DIR := build/cuda
  # The local GPU's compute capability ("9.0" -> 90), or 90 (Hopper) when no GPU answers.
  CUDA_ARCH ?= $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '. ')
  ifeq ($(strip $(CUDA_ARCH)),)
    override CUDA_ARCH := 90
  endif
  CMAKE_FLAGS := -DEMBER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCH)
endif

GENERATOR := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)
SOURCES = $(shell git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' 2>/dev/null)

.PHONY: all build setup configure test demo gpu-check bench sanitize format format-check clean \
	anchor-local-sgd

all: build

setup:
	@if [ "$(SETUP)" != 0 ]; then bash scripts/setup.sh; fi

# Re-running cmake on an existing tree is cheap and picks up a changed CUDA_ARCH or BUILD_TYPE.
# A tree made by another generator (Ninja vs Unix Makefiles) is started afresh.
configure: setup
	@if [ -f $(BUILD_DIR)/CMakeCache.txt ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=$(if $(GENERATOR),Ninja,Unix Makefiles)$$" $(BUILD_DIR)/CMakeCache.txt; then rm -rf $(BUILD_DIR); fi
	@cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) $(EXTRA_CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@echo "ember built ($(if $(filter 0,$(CUDA)),CPU-only,CUDA arch $(CUDA_ARCH)), $(BUILD_TYPE)): programs in bin/, tests in $(BUILD_DIR)"

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(if $(LABELS),-L '$(LABELS)',)

# Its own tree (build/asan), CPU-only: the CUDA libraries have leaks of their own on their
# no-GPU error paths, which LeakSanitizer would report.
sanitize: setup
	@cmake -S . -B build/asan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_CUDA=OFF \
	  -DEMBER_SANITIZE=ON >/dev/null
	@cmake --build build/asan -j $(JOBS)
	@cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|mp'

# CUDA is the script's to choose (a toolkit present or not) unless given to make.
demo:
	@CUDA=$(if $(filter command line environment,$(origin CUDA)),$(CUDA),) JOBS=$(JOBS) \
	  SETUP=$(SETUP) bash scripts/demo.sh

gpu-check:
	@bash scripts/gpu_check.sh

bench: build
	@bin/bench_kernels
	@bin/bench_loader

format:
	@clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo "format: clean"

clean:
	rm -rf build bin

# The seed's recorded local-SGD result, on this machine's CPU (bench/local_sgd.sh, 20 epochs).
anchor-local-sgd: build
	@bash bench/local_sgd.sh $(CIFAR) $(if $(OUT),$(OUT),runs/anchor-local-sgd) 20
