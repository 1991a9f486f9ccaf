// What every CUDA kernel file shares: the dtypes CUDA kernels are compiled for, the stream
// conversion, and the launch geometry.
//
// Launch strategy: kernels use grid-stride loops. A grid of at most kMaxBlocks blocks sweeps
// any number of elements (64-bit indices), each thread stepping by the total thread count, so
// a launch never fails for size and huge tensors need no special case:
//
//   for (int64_t i = first_thread_index(); i < n; i += total_threads()) ...
#pragma once

#include <cuda_runtime.h>

#include <algorithm>  // std::min, std::max
#include <cstdint>

#include "engine/dtype.h"               // Half, BFloat16
#include "kernels/cuda/check.h"         // EMBER_CUDA_CHECK_LAUNCH
#include "kernels/cuda/cuda_kernels.h"  // declarations, using namespace kernels

namespace ember::cuda {

// Every dtype but f64: f64 tensors never live on CUDA (see engine/dtype.h).
#define EMBER_CUDA_ALL_TYPES float, BFloat16, Half, int32_t, int64_t, uint8_t

constexpr int kBlockSize = 256;        // threads per block of elementwise kernels
constexpr int64_t kMaxBlocks = 65535;  // grid cap: ~60 waves of resident blocks on an H100
constexpr int kWarpSize = 32;

inline cudaStream_t as_cuda_stream(Stream stream) {
  return static_cast<cudaStream_t>(stream);
}

// Blocks for `work_items` threads' worth of work, at least 1 and at most kMaxBlocks.
inline unsigned int grid_size(int64_t work_items, int block_size = kBlockSize) {
  const int64_t blocks = (work_items + block_size - 1) / block_size;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(blocks, kMaxBlocks)));
}

__device__ inline int64_t first_thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t total_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace ember::cuda
