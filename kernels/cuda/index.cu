// Indexing kernels on CUDA: index_select (and embedding lookup), index_add (its backward),
// gather and scatter_add (its backward).
//
// A thread per element of the small side (y, or dy for the accumulating kernels), which splits
// its linear index e into (o, j, i) over [outer, n, inner]. Neighbouring threads differ in i,
// so reads and writes along inner stay coalesced. The accumulating kernels use atomicAdd,
// since a repeated index makes several threads add into the same element of dx; the order of
// those additions, and so the last bits of the sums, vary from run to run.
#include <cstdint>

#include "kernels/cuda/launch.cuh"  // grid_size, first_thread_index, EMBER_CUDA_ALL_TYPES
#include "kernels/dispatch.h"       // dispatch

namespace ember::cuda {

namespace {

// Linear index e of [outer, n, inner] as coordinates (o, j, i).
struct Coordinates {
  int64_t o, j, i;
};
__device__ inline Coordinates split_index(int64_t e, int64_t n, int64_t inner) {
  const int64_t row = e / inner;  // o * n + j
  return {row / n, row % n, e - row * inner};
}

// y[o, j, i] = x[o, index[j], i]
template <typename T>
__global__ void index_select_kernel(const T* x, const int64_t* index, T* y, int64_t total,
                                    int64_t axis, int64_t inner, int64_t n_index) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const Coordinates at = split_index(e, n_index, inner);
    y[e] = x[(at.o * axis + index[at.j]) * inner + at.i];
  }
}

// dx[o, index[j], i] += dy[o, j, i]
template <typename T>
__global__ void index_add_kernel(const T* dy, const int64_t* index, T* dx, int64_t total,
                                 int64_t axis, int64_t inner, int64_t n_index) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const Coordinates at = split_index(e, n_index, inner);
    atomicAdd(&dx[(at.o * axis + index[at.j]) * inner + at.i], dy[e]);
  }
}

// y[o, j, i] = x[o, index[o, j, i], i]
template <typename T>
__global__ void gather_kernel(const T* x, const int64_t* index, T* y, int64_t total, int64_t axis,
                              int64_t inner, int64_t n) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const Coordinates at = split_index(e, n, inner);
    y[e] = x[(at.o * axis + index[e]) * inner + at.i];
  }
}

// dx[o, index[o, j, i], i] += dy[o, j, i]
template <typename T>
__global__ void scatter_add_kernel(const T* dy, const int64_t* index, T* dx, int64_t total,
                                   int64_t axis, int64_t inner, int64_t n) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const Coordinates at = split_index(e, n, inner);
    atomicAdd(&dx[(at.o * axis + index[e]) * inner + at.i], dy[e]);
  }
}

}  // namespace

void index_select(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer,
                  int64_t axis, int64_t inner, int64_t n_index, Stream stream) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  dispatch<EMBER_CUDA_ALL_TYPES>(dtype, "index_select", [&](auto tag) {
    using T = typename decltype(tag)::type;
    index_select_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(x), index, static_cast<T*>(y), total, axis, inner, n_index);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void index_add(DType dtype, const void* dy, const int64_t* index, void* dx, int64_t outer,
               int64_t axis, int64_t inner, int64_t n_index, Stream stream) {
  const int64_t total = outer * n_index * inner;
  if (total == 0) return;
  dispatch<float>(dtype, "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    index_add_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(dy), index, static_cast<T*>(dx), total, axis, inner, n_index);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void gather(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer, int64_t axis,
            int64_t inner, int64_t n, Stream stream) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  dispatch<EMBER_CUDA_ALL_TYPES>(dtype, "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gather_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(x), index, static_cast<T*>(y), total, axis, inner, n);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void scatter_add(DType dtype, const void* dy, const int64_t* index, void* dx, int64_t outer,
                 int64_t axis, int64_t inner, int64_t n, Stream stream) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  dispatch<float>(dtype, "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_add_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(dy), index, static_cast<T*>(dx), total, axis, inner, n);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
