// Iteration over a strided index space on the CPU: the loop behind copy, binary and where.
//
// The linear index space [0, numel) is cut into chunks that OpenMP threads share; each chunk
// turns its first index into per-operand element offsets once (div/mod over the shape), then
// walks like an odometer, adding strides. A fully dense operand set (the common case after the
// engine merges dimensions) takes a plain loop instead.
#pragma once

#include <algorithm>  // std::min

#include "kernels/kernel_table.h"  // IterShape, Strides

namespace ember::cpu {

constexpr int64_t kParallelGrain = 32768;  // below this many elements, one thread

// body(offsets) for every element; offsets[k] is operand k's element offset.
template <int N, typename Body>
void strided_loop(const kernels::IterShape& shape, const kernels::Strides* const (&strides)[N],
                  Body&& body) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  const int nd = shape.ndim;

  bool dense = nd <= 1;
  for (int k = 0; k < N && dense; ++k) dense = nd == 0 || strides[k]->v[0] == 1;
  if (dense) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      int64_t off[N];
      for (int k = 0; k < N; ++k) off[k] = i;
      body(off);
    }
    return;
  }

  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    int64_t index[kernels::kMaxDims];
    int64_t off[N] = {};
    int64_t rest = begin;
    for (int d = nd - 1; d >= 0; --d) {
      index[d] = rest % shape.size[d];
      rest /= shape.size[d];
      for (int k = 0; k < N; ++k) off[k] += index[d] * strides[k]->v[d];
    }
    for (int64_t i = begin; i < end; ++i) {
      body(off);
      for (int d = nd - 1; d >= 0; --d) {  // odometer step
        ++index[d];
        for (int k = 0; k < N; ++k) off[k] += strides[k]->v[d];
        if (index[d] < shape.size[d]) break;
        for (int k = 0; k < N; ++k) off[k] -= strides[k]->v[d] * shape.size[d];
        index[d] = 0;
      }
    }
  }
}

}  // namespace ember::cpu
