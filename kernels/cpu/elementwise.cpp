// Elementwise kernels on the CPU: unary ops and their derivatives, broadcasting binary ops
// and comparisons, where. The formulas live in kernels/elementwise_math.h, shared with CUDA.
//
// The op is a run-time value, and the formulas switch on it. Inside the loop that switch costs
// an indirect jump per element and, worse, stops the compiler from vectorizing: ReLU ran at
// 10 ns per element, most of it mispredicted branches. So the loops are instantiated once per
// op (with_constant_op below): with the op a compile-time constant the switch folds away and
// each loop becomes straight-line, vectorized code (ReLU's select included).
#include <type_traits>  // std::integral_constant

#include "engine/error.h"              // Error, str_cat
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // strided_loop, kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/elementwise_math.h"  // unary_value, unary_derivative, binary_value

namespace ember::cpu {

namespace {

// body(std::integral_constant<Op, op>{}) for the run-time `op`: the body is compiled once for
// every value of Op from 0 to count - 1.
template <typename Op, int count, int candidate = 0, typename Body>
void with_constant_op(Op op, Body&& body) {
  if constexpr (candidate < count) {
    if (static_cast<int>(op) == candidate)
      body(std::integral_constant<Op, static_cast<Op>(candidate)>{});
    else
      with_constant_op<Op, count, candidate + 1>(op, body);
  } else {
    throw Error(str_cat("CPU elementwise kernel: op ", static_cast<int>(op),
                        " is not compiled in (kUnaryOps, kBinaryOps)"));
  }
}
// How many ops each enum of kernels/kernel_table.h has: its last op + 1.
constexpr int kUnaryOps = static_cast<int>(UnaryOp::MulScalar) + 1;
constexpr int kBinaryOps = static_cast<int>(BinaryOp::Ge) + 1;

// The loops, as plain functions of plain pointers: a loop inside the lambdas reads its pointers
// through captured references, which also kept the compiler from vectorizing it.
template <UnaryOp op, typename T>
void unary_loop(int64_t n, const T* x, T* y, T alpha, T beta) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = kernels::unary_value(op, x[i], alpha, beta);
}

// y may be null (ops whose derivative does not use it): tested once, not per element.
template <UnaryOp op, bool has_y, typename T>
void unary_backward_loop(int64_t n, const T* x, const T* y, const T* dy, T* dx, T alpha, T beta) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    // (in two statements: written as one expression, ReLU's loop was not vectorized)
    const T derivative = kernels::unary_derivative(op, x[i], has_y ? y[i] : T(0), alpha, beta);
    dx[i] = dy[i] * derivative;
  }
}

}  // namespace

void unary(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha, double beta,
           Stream) {
  dispatch<float, double>(dtype, "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_constant_op<UnaryOp, kUnaryOps>(op, [&](auto constant) {
      unary_loop<constant.value>(n, static_cast<const T*>(x), static_cast<T*>(y),
                                 static_cast<T>(alpha), static_cast<T>(beta));
    });
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
    with_constant_op<UnaryOp, kUnaryOps>(op, [&](auto constant) {
      if (out)
        unary_backward_loop<constant.value, true>(n, in, out, grad_out, grad_in, a, b);
      else
        unary_backward_loop<constant.value, false>(n, in, out, grad_out, grad_in, a, b);
    });
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
    with_constant_op<BinaryOp, kBinaryOps>(op, [&](auto constant) {
      if constexpr (!kernels::is_comparison(constant.value))
        strided_loop<3>(shape, strides, [&](const int64_t* off) {
          po[off[2]] = kernels::binary_value(constant.value, pa[off[0]], pb[off[1]]);
        });
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
