// Iteration over a strided index space on the GPU: the launch behind copy, binary and where
// (the CUDA twin of kernels/cpu/strided_loop.h).
//
// Thread i handles linear index i of `shape` (row-major) and turns it into one element offset
// per operand by peeling off coordinates from the last dimension, starting with rest = i:
//   coordinate = rest % size[d];  rest = rest / size[d];  offset[k] += coordinate * stride_k[d]
// Dimension 0 takes whatever is left, so an ndim-d shape costs d - 1 divisions. Integer
// division is slow on a GPU and 64-bit division slower still, so when numel fits in 32 bits the
// coordinates are computed in 32-bit arithmetic (offsets stay 64-bit). When every operand is
// dense (ndim <= 1, unit strides: the engine merges dimensions, so this is the common case)
// all offsets are simply i.
//
// An operation is a functor with `__device__ void operator()(const int64_t (&offset)[N])`, e.g.
// out[offset[2]] = a[offset[0]] + b[offset[1]]. (Functors rather than lambdas: __device__
// lambdas would need nvcc's --extended-lambda.)
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/cuda/launch.cuh"  // grid_size, first_thread_index, as_cuda_stream

namespace ember::cuda {

// The strides of N operands, bundled so that they travel by value as a kernel parameter.
template <int N>
struct OperandStrides {
  Strides of[N];
};

template <int N, typename Operation>
__global__ void dense_elementwise_kernel(int64_t n, Operation operation) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads()) {
    int64_t offset[N];
#pragma unroll
    for (int k = 0; k < N; ++k) offset[k] = i;
    operation(offset);
  }
}

// Index is uint32_t or uint64_t: the type the coordinate divisions are done in.
template <int N, typename Index, typename Operation>
__global__ void strided_elementwise_kernel(IterShape shape, int64_t n, OperandStrides<N> strides,
                                           Operation operation) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads()) {
    int64_t offset[N] = {};
    Index rest = static_cast<Index>(i);
    // Unrolled over all kMaxDims so that every index into `shape` and `strides` is a constant:
    // a loop bounded by ndim would index them with a variable, which puts the parameters on
    // the stack (local memory) instead of reading them from the constant bank.
#pragma unroll
    for (int d = kMaxDims - 1; d > 0; --d) {
      if (d >= shape.ndim) continue;
      const Index size = static_cast<Index>(shape.size[d]);
      const Index quotient = rest / size;
      const int64_t coordinate = static_cast<int64_t>(rest - quotient * size);
      rest = quotient;
#pragma unroll
      for (int k = 0; k < N; ++k) offset[k] += coordinate * strides.of[k].v[d];
    }
#pragma unroll
    for (int k = 0; k < N; ++k) offset[k] += static_cast<int64_t>(rest) * strides.of[k].v[0];
    operation(offset);
  }
}

// Runs operation(offsets) for every index of `shape`; strides[k] are operand k's strides.
template <int N, typename Operation>
void launch_strided_elementwise(const IterShape& shape, const Strides* const (&strides)[N],
                                const Operation& operation, cudaStream_t stream) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  bool dense = shape.ndim <= 1;
  for (int k = 0; k < N && dense; ++k) dense = shape.ndim == 0 || strides[k]->v[0] == 1;
  if (dense) {
    dense_elementwise_kernel<N><<<grid_size(n), kBlockSize, 0, stream>>>(n, operation);
    EMBER_CUDA_CHECK_LAUNCH();
    return;
  }
  OperandStrides<N> bundled;
  for (int k = 0; k < N; ++k) bundled.of[k] = *strides[k];
  if (n <= std::numeric_limits<uint32_t>::max())
    strided_elementwise_kernel<N, uint32_t>
        <<<grid_size(n), kBlockSize, 0, stream>>>(shape, n, bundled, operation);
  else
    strided_elementwise_kernel<N, uint64_t>
        <<<grid_size(n), kBlockSize, 0, stream>>>(shape, n, bundled, operation);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
