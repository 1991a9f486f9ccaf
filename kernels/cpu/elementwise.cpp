// Elementwise kernels on the CPU: unary ops and their derivatives, broadcasting binary ops
// and comparisons, where. The formulas live in kernels/elementwise_math.h, shared with CUDA.
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // strided_loop, kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/elementwise_math.h"  // unary_value, unary_derivative, binary_value

namespace ember::cpu {

void unary(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha, double beta,
           Stream) {
  dispatch<float, double>(dtype, "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = kernels::unary_value(op, in[i], a, b);
  });
}

void unary_backward(UnaryOp op, DType dtype, int64_t n, const void* x, const void* y,
                    const void* dy, void* dx, double alpha, double beta, Stream) {
  dispatch<float, double>(dtype, "unary_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const T* out = static_cast<const T*>(y);
    const T* grad_out = static_cast<const T*>(dy);
    T* grad_in = static_cast<T*>(dx);
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i)
      grad_in[i] = grad_out[i] * kernels::unary_derivative(op, in[i], out ? out[i] : T(0), a, b);
  });
}

void binary(BinaryOp op, DType dtype, const IterShape& shape, const void* a,
            const Strides& a_strides, const void* b, const Strides& b_strides, void* out, Stream) {
  const Strides dense = kernels::dense_strides(shape);  // the output
  const Strides* strides[3] = {&a_strides, &b_strides, &dense};
  if (kernels::is_comparison(op)) {
    dispatch<float, double, int32_t, int64_t, uint8_t>(dtype, "compare", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* pa = static_cast<const T*>(a);
      const T* pb = static_cast<const T*>(b);
      uint8_t* po = static_cast<uint8_t*>(out);
      strided_loop<3>(shape, strides, [&](const int64_t* off) {
        po[off[2]] = kernels::binary_compare(op, pa[off[0]], pb[off[1]]) ? 1 : 0;
      });
    });
    return;
  }
  dispatch<float, double, int32_t, int64_t>(dtype, "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    strided_loop<3>(shape, strides, [&](const int64_t* off) {
      po[off[2]] = kernels::binary_value(op, pa[off[0]], pb[off[1]]);
    });
  });
}

void where(DType dtype, const IterShape& shape, const uint8_t* cond, const Strides& cond_strides,
           const void* a, const Strides& a_strides, const void* b, const Strides& b_strides,
           void* out, Stream) {
  const Strides dense = kernels::dense_strides(shape);  // the output
  const Strides* strides[4] = {&cond_strides, &a_strides, &b_strides, &dense};
  dispatch<float, double, BFloat16, Half, int32_t, int64_t, uint8_t>(dtype, "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    strided_loop<4>(shape, strides, [&](const int64_t* off) {
      po[off[3]] = cond[off[0]] ? pa[off[1]] : pb[off[2]];
    });
  });
}

}  // namespace ember::cpu
