// Elementwise kernels on CUDA: unary ops and their derivatives, broadcasting binary ops and
// comparisons, where.
//
// The per-element formulas are kernels/elementwise_math.h, the very functions the CPU calls, so
// both backends compute the same thing. The op code stays a runtime argument: the switch inside
// unary_value takes the same branch in every thread, which costs next to nothing in a kernel
// that waits on memory anyway.
#include "kernels/cuda/launch.cuh"               // grid_size, EMBER_CUDA_ALL_TYPES
#include "kernels/cuda/strided_elementwise.cuh"  // launch_strided_elementwise
#include "kernels/dispatch.h"                    // dispatch
#include "kernels/elementwise_math.h"            // unary_value, unary_derivative, binary_value

namespace ember::cuda {

namespace {

template <typename T>
__global__ void unary_kernel(UnaryOp op, int64_t n, const T* x, T* y, T alpha, T beta) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads())
    y[i] = kernels::unary_value(op, x[i], alpha, beta);
}

// y (the forward output) may be null for ops whose derivative does not use it.
template <typename T>
__global__ void unary_backward_kernel(UnaryOp op, int64_t n, const T* x, const T* y, const T* dy,
                                      T* dx, T alpha, T beta) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads())
    dx[i] = dy[i] * kernels::unary_derivative(op, x[i], y ? y[i] : T(0), alpha, beta);
}

// Operands: a, b, out (offset[0], offset[1], offset[2]).
template <typename T>
struct BinaryElement {
  BinaryOp op;
  const T* a;
  const T* b;
  T* out;
  __device__ void operator()(const int64_t (&offset)[3]) const {
    out[offset[2]] = kernels::binary_value(op, a[offset[0]], b[offset[1]]);
  }
};

template <typename T>
struct CompareElement {
  BinaryOp op;
  const T* a;
  const T* b;
  uint8_t* out;
  __device__ void operator()(const int64_t (&offset)[3]) const {
    out[offset[2]] = kernels::binary_compare(op, a[offset[0]], b[offset[1]]) ? 1 : 0;
  }
};

// Operands: cond, a, b, out.
template <typename T>
struct WhereElement {
  const uint8_t* cond;
  const T* a;
  const T* b;
  T* out;
  __device__ void operator()(const int64_t (&offset)[4]) const {
    out[offset[3]] = cond[offset[0]] ? a[offset[1]] : b[offset[2]];
  }
};

}  // namespace

void unary(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha, double beta,
           Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        op, n, static_cast<const T*>(x), static_cast<T*>(y), static_cast<T>(alpha),
        static_cast<T>(beta));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void unary_backward(UnaryOp op, DType dtype, int64_t n, const void* x, const void* y,
                    const void* dy, void* dx, double alpha, double beta, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "unary_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_backward_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        op, n, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(dy),
        static_cast<T*>(dx), static_cast<T>(alpha), static_cast<T>(beta));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void binary(BinaryOp op, DType dtype, const IterShape& shape, const void* a,
            const Strides& a_strides, const void* b, const Strides& b_strides, void* out,
            Stream stream) {
  const Strides dense = kernels::dense_strides(shape);  // the output
  const Strides* strides[3] = {&a_strides, &b_strides, &dense};
  if (kernels::is_comparison(op)) {
    dispatch<float, int32_t, int64_t, uint8_t>(dtype, "compare", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const CompareElement<T> element{op, static_cast<const T*>(a), static_cast<const T*>(b),
                                      static_cast<uint8_t*>(out)};
      launch_strided_elementwise<3>(shape, strides, element, as_cuda_stream(stream));
    });
    return;
  }
  dispatch<float, int32_t, int64_t>(dtype, "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const BinaryElement<T> element{op, static_cast<const T*>(a), static_cast<const T*>(b),
                                   static_cast<T*>(out)};
    launch_strided_elementwise<3>(shape, strides, element, as_cuda_stream(stream));
  });
}

void where(DType dtype, const IterShape& shape, const uint8_t* cond, const Strides& cond_strides,
           const void* a, const Strides& a_strides, const void* b, const Strides& b_strides,
           void* out, Stream stream) {
  const Strides dense = kernels::dense_strides(shape);  // the output
  const Strides* strides[4] = {&cond_strides, &a_strides, &b_strides, &dense};
  dispatch<EMBER_CUDA_ALL_TYPES>(dtype, "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const WhereElement<T> element{cond, static_cast<const T*>(a), static_cast<const T*>(b),
                                  static_cast<T*>(out)};
    launch_strided_elementwise<4>(shape, strides, element, as_cuda_stream(stream));
  });
}

}  // namespace ember::cuda
