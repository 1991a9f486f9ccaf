// The machinery of kernels that work along one axis of x = [outer, axis, inner]: reductions,
// softmax, top-k. A "row" is one (outer, inner) position: `axis` elements, `inner` apart.
//
// Two schedules, picked by launch_along_axis:
//   inner == 1 (rows contiguous, e.g. the last dimension) and at least a warp's worth of
//     elements per row: a block per row. Its threads read elements threadIdx.x,
//     threadIdx.x + blockDim.x, ... (neighbouring threads, neighbouring addresses), each keeps
//     a partial result, and block_reduce combines the partials.
//   otherwise: a thread per row, walking the whole axis alone. With inner > 1, neighbouring
//     threads hold neighbouring inner positions, so their loads are coalesced too; with short
//     contiguous rows, a warp's rows lie side by side and share cache lines.
// A kernel written against AxisSchedule<kBlockPerRow> serves both: in the thread-per-row
// schedule each "partial" is already the row's result and combine() returns it unchanged.
//
// block_reduce is a tree in two levels: __shfl_down_sync halves the values of a warp five times
// (lane 0 ends with the warp's result), the warps' results meet in shared memory, and the first
// warp reduces those the same way. Every thread gets the result back.
#pragma once

#include <cstdint>
#include <cstring>  // memcpy (bit copies for shuffles)
#include <limits>
#include <type_traits>

#include "kernels/cuda/launch.cuh"     // kWarpSize, kMaxBlocks, grid_size
#include "kernels/elementwise_math.h"  // is_nan

namespace ember::cuda {

// A value with its position along the axis, for arg-max/arg-min and top-k.
template <typename T>
struct ValueIndex {  // no member initializers: it must be allowed in __shared__ memory
  T value;
  int64_t index;
};

// Lane i receives the value of lane i + delta. __shfl_down_sync moves 32 or 64 bits; smaller
// types (uint8_t) travel inside 32 bits.
template <typename T>
__device__ T shuffle_down(T value, int delta) {
  static_assert(sizeof(T) <= 8, "shuffle_down moves at most 64 bits");
  if constexpr (sizeof(T) <= 4) {
    unsigned int bits = 0;
    memcpy(&bits, &value, sizeof(T));
    bits = __shfl_down_sync(0xffffffffu, bits, delta);
    memcpy(&value, &bits, sizeof(T));
  } else {
    unsigned long long bits = 0;
    memcpy(&bits, &value, sizeof(T));
    bits = __shfl_down_sync(0xffffffffu, bits, delta);
    memcpy(&value, &bits, sizeof(T));
  }
  return value;
}
template <typename T>
__device__ ValueIndex<T> shuffle_down(ValueIndex<T> pair, int delta) {
  return {shuffle_down(pair.value, delta), shuffle_down(pair.index, delta)};
}

// Lane 0 ends with combine() over the warp's 32 values.
template <typename T, typename Combine>
__device__ T warp_reduce(T value, Combine combine) {
#pragma unroll
  for (int delta = kWarpSize / 2; delta > 0; delta /= 2)
    value = combine(value, shuffle_down(value, delta));
  return value;
}

// combine() over the values of all threads of the block, returned to every thread. Every
// thread of the block must call it (it synchronizes); blockDim.x is a multiple of 32, at most
// 1024. `identity` is what lanes with nothing to contribute hold (0 for a sum).
template <typename T, typename Combine>
__device__ T block_reduce(T value, T identity, Combine combine) {
  __shared__ T warp_results[kWarpSize];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  value = warp_reduce(value, combine);
  if (lane == 0) warp_results[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = warp_reduce(lane < warps ? warp_results[lane] : identity, combine);
    if (lane == 0) warp_results[0] = value;
  }
  __syncthreads();
  const T result = warp_results[0];
  __syncthreads();  // everyone has read it before a following call overwrites warp_results
  return result;
}

struct Add {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

// Offset of element 0 of `row` (an (outer, inner) position) in x = [outer, axis, inner].
__device__ inline int64_t row_start(int64_t row, int64_t axis, int64_t inner) {
  return (row / inner) * axis * inner + row % inner;
}

// Who handles which row and which of its elements; see the top of this file.
template <bool kBlockPerRow>
struct AxisSchedule {
  __device__ static int64_t first_row() {
    return kBlockPerRow ? static_cast<int64_t>(blockIdx.x) : first_thread_index();
  }
  __device__ static int64_t row_step() {
    return kBlockPerRow ? static_cast<int64_t>(gridDim.x) : total_threads();
  }
  __device__ static int64_t first_element() { return kBlockPerRow ? threadIdx.x : 0; }
  __device__ static int64_t element_step() { return kBlockPerRow ? blockDim.x : 1; }
  // The one thread that writes a row's result.
  __device__ static bool writes_row() { return !kBlockPerRow || threadIdx.x == 0; }
  // The row's result from this thread's partial result, in every thread of the row.
  template <typename T, typename Combine>
  __device__ static T combine(T partial, T identity, Combine operation) {
    if constexpr (kBlockPerRow)
      return block_reduce(partial, identity, operation);
    else
      return partial;
  }
};

// Threads per block for a block per row of `axis` elements: a multiple of the warp size, no
// more than kBlockSize, and no more than the row needs (short rows get one warp).
inline int row_block_size(int64_t axis) {
  const int64_t warps = (axis + kWarpSize - 1) / kWarpSize;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(warps, kBlockSize / kWarpSize)) *
                          kWarpSize);
}

// Launches kernel<true> (a block per row) for contiguous rows of at least a warp's length,
// else kernel<false> (a thread per row), over the outer * inner rows; the two are passed as
// the two instantiations, e.g.
//   launch_along_axis(sum_kernel<T, true>, sum_kernel<T, false>, outer, axis, inner, stream, ...)
template <typename... Parameters, typename... Arguments>
void launch_along_axis(void (*block_per_row)(Parameters...), void (*thread_per_row)(Parameters...),
                       int64_t outer, int64_t axis, int64_t inner, cudaStream_t stream,
                       Arguments... arguments) {
  const int64_t rows = outer * inner;
  if (rows == 0) return;
  if (inner == 1 && axis >= kWarpSize) {
    const unsigned int blocks = static_cast<unsigned int>(std::min(rows, kMaxBlocks));
    block_per_row<<<blocks, row_block_size(axis), 0, stream>>>(arguments...);
  } else {
    thread_per_row<<<grid_size(rows), kBlockSize, 0, stream>>>(arguments...);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

// The extreme values of a type, as identities of max and min: infinities for floats.
template <typename T>
__host__ __device__ constexpr T lowest_value() {
  if constexpr (std::is_floating_point_v<T>)
    return -std::numeric_limits<T>::infinity();
  else
    return std::numeric_limits<T>::lowest();
}
template <typename T>
__host__ __device__ constexpr T highest_value() {
  if constexpr (std::is_floating_point_v<T>)
    return std::numeric_limits<T>::infinity();
  else
    return std::numeric_limits<T>::max();
}

}  // namespace ember::cuda
