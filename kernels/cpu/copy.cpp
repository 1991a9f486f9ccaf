// Memory kernels on the CPU: strided copy with dtype conversion, fill, arange.
#include <cstring>  // memcpy

#include "kernels/cast.h"              // cast_value
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // strided_loop
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

#define EMBER_ALL_TYPES float, double, BFloat16, Half, int32_t, int64_t, uint8_t

void copy(const IterShape& shape, DType src_dtype, const void* src, const Strides& src_strides,
          DType dst_dtype, void* dst, const Strides& dst_strides, Stream) {
  dispatch<EMBER_ALL_TYPES>(src_dtype, "copy", [&](auto src_tag) {
    using S = typename decltype(src_tag)::type;
    dispatch<EMBER_ALL_TYPES>(dst_dtype, "copy", [&](auto dst_tag) {
      using D = typename decltype(dst_tag)::type;
      const S* s = static_cast<const S*>(src);
      D* d = static_cast<D*>(dst);
      const Strides* strides[2] = {&src_strides, &dst_strides};
      strided_loop<2>(shape, strides,
                      [&](const int64_t* off) { d[off[1]] = kernels::cast_value<D>(s[off[0]]); });
    });
  });
}

void fill(DType dtype, void* dst, int64_t n, double value, Stream) {
  dispatch<EMBER_ALL_TYPES>(dtype, "fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = kernels::cast_value<T>(value);
    T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] = v;
  });
}

void arange(DType dtype, void* dst, int64_t n, double start, double step, Stream) {
  dispatch<float, double, int32_t, int64_t, uint8_t>(dtype, "arange", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* d = static_cast<T*>(dst);
    for (int64_t i = 0; i < n; ++i)
      d[i] = kernels::cast_value<T>(start + static_cast<double>(i) * step);
  });
}

}  // namespace ember::cpu
