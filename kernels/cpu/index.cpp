// Indexing kernels on the CPU: index_select (and embedding lookup), index_add (its backward),
// gather and scatter_add (its backward). Accumulating kernels split the work by (outer, inner)
// position and walk the indexed axis sequentially inside one thread, so repeated indices never
// race.
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

#define EMBER_INDEX_TYPES float, double, BFloat16, Half, int32_t, int64_t, uint8_t

void index_select(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer,
                  int64_t axis, int64_t inner, int64_t n_index, Stream) {
  dispatch<EMBER_INDEX_TYPES>(dtype, "index_select", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_index * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n_index; ++j) {
        const T* src = in + (o * axis + index[j]) * inner;
        T* dst = out + (o * n_index + j) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = src[i];
      }
  });
}

void index_add(DType dtype, const void* dy, const int64_t* index, void* dx, int64_t outer,
               int64_t axis, int64_t inner, int64_t n_index, Stream) {
  dispatch<float, double>(dtype, "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(dy);
    T* acc = static_cast<T*>(dx);
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_index * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i)
        for (int64_t j = 0; j < n_index; ++j)
          acc[(o * axis + index[j]) * inner + i] += g[(o * n_index + j) * inner + i];
  });
}

void gather(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer, int64_t axis,
            int64_t inner, int64_t n, Stream) {
  dispatch<EMBER_INDEX_TYPES>(dtype, "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    const int64_t total = outer * n * inner;
#pragma omp parallel for schedule(static) if (total >= kParallelGrain)
    for (int64_t e = 0; e < total; ++e) {
      const int64_t i = e % inner, o = e / (n * inner);
      out[e] = in[(o * axis + index[e]) * inner + i];
    }
  });
}

void scatter_add(DType dtype, const void* dy, const int64_t* index, void* dx, int64_t outer,
                 int64_t axis, int64_t inner, int64_t n, Stream) {
  dispatch<float, double>(dtype, "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(dy);
    T* acc = static_cast<T*>(dx);
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t e = (o * n + j) * inner + i;
          acc[(o * axis + index[e]) * inner + i] += g[e];
        }
  });
}

}  // namespace ember::cpu
