// Softmax, log-softmax and fused cross-entropy on CUDA, with the formulas of
// kernels/cpu/softmax.cpp:
//   softmax(x)_j = exp(x_j - m) / sum_i exp(x_i - m),  m = max_i x_i (exp never overflows)
//   log-softmax(x)_j = x_j - lse,  lse = m + log(sum_i exp(x_i - m))
//   cross-entropy (smoothing s, c classes, target t)
//     = (1 - s) * (lse - x_t) + s * (lse - mean_j x_j)
//
// Each row takes three sweeps (max, sum of exponentials, output), with a block per row when
// the row is contiguous (see axis_reduce.cuh); cross-entropy rows ([n, c] logits) always are.
// Exponentials are computed in float, sums accumulate in double like the CPU's, and the
// subtraction x_j - lse is done in double: where x_j is close to lse a float lse would
// lose most of the digits of the difference.
#include <cstdint>

#include "kernels/cuda/axis_reduce.cuh"  // AxisSchedule, launch_along_axis, row_block_size
#include "kernels/cuda/launch.cuh"       // as_cuda_stream, kMaxBlocks
#include "kernels/dispatch.h"            // dispatch

namespace ember::cuda {

namespace {

// max for finding m. A NaN may be dropped here, but it turns the row's sum into NaN, so the
// whole row comes out NaN, as on the CPU.
struct Larger {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

template <typename T, bool kBlockPerRow>
__global__ void softmax_kernel(const T* x, T* y, int64_t outer, int64_t axis, int64_t inner,
                               bool log) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const int64_t start = row_start(row, axis, inner);
    const T* in = x + start;
    T* out = y + start;
    T partial_max = lowest_value<T>();
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
      partial_max = Larger{}(partial_max, in[j * inner]);
    const T max = Schedule::combine(partial_max, lowest_value<T>(), Larger{});
    double partial_sum = 0;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
      partial_sum += kernels::m_exp(in[j * inner] - max);
    const double sum = Schedule::combine(partial_sum, 0.0, Add{});
    if (log) {
      const double log_sum_exp = static_cast<double>(max) + ::log(sum);
      for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
        out[j * inner] = static_cast<T>(static_cast<double>(in[j * inner]) - log_sum_exp);
    } else {
      const T inverse_sum = static_cast<T>(1.0 / sum);
      for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
        out[j * inner] = kernels::m_exp(in[j * inner] - max) * inverse_sum;
    }
  }
}

// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
template <typename T, bool kBlockPerRow>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t outer, int64_t axis,
                                        int64_t inner, bool log) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const int64_t start = row_start(row, axis, inner);
    const T* out = y + start;
    const T* grad_out = dy + start;
    T* grad_in = dx + start;
    double partial = 0;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step()) {
      const int64_t at = j * inner;
      partial += static_cast<double>(log ? grad_out[at] : grad_out[at] * out[at]);
    }
    const double dot = Schedule::combine(partial, 0.0, Add{});
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step()) {
      const int64_t at = j * inner;
      const double g = grad_out[at];
      grad_in[at] = log ? static_cast<T>(g - static_cast<double>(kernels::m_exp(out[at])) * dot)
                        : static_cast<T>(static_cast<double>(out[at]) * (g - dot));
    }
  }
}

// A block per row of logits [n, c]; loss and logsumexp are [n].
template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* target, T* loss, T* logsumexp,
                                     int64_t n, int64_t c, double label_smoothing,
                                     int64_t ignore_index) {
  using Schedule = AxisSchedule<true>;
  for (int64_t row = Schedule::first_row(); row < n; row += Schedule::row_step()) {
    const T* x = logits + row * c;
    T partial_max = lowest_value<T>();
    for (int64_t j = Schedule::first_element(); j < c; j += Schedule::element_step())
      partial_max = Larger{}(partial_max, x[j]);
    const T max = Schedule::combine(partial_max, lowest_value<T>(), Larger{});
    double partial_sum = 0, partial_total = 0;  // sum of exp(x_j - m), sum of x_j
    for (int64_t j = Schedule::first_element(); j < c; j += Schedule::element_step()) {
      partial_sum += kernels::m_exp(x[j] - max);
      partial_total += x[j];
    }
    const double sum = Schedule::combine(partial_sum, 0.0, Add{});
    const double total = Schedule::combine(partial_total, 0.0, Add{});
    if (!Schedule::writes_row()) continue;
    const double lse = static_cast<double>(max) + ::log(sum);
    logsumexp[row] = static_cast<T>(lse);
    const int64_t t = target[row];
    double row_loss = 0;
    if (t != ignore_index) {
      if (t < 0 || t >= c)
        row_loss = ::nan("");  // an invalid target poisons the loss
      else
        row_loss = (1 - label_smoothing) * (lse - x[t]) +
                   label_smoothing * (lse - total / static_cast<double>(c));
    }
    loss[row] = static_cast<T>(row_loss);
  }
}

// dlogits = (softmax(logits) - q) * grad_loss, q = (1 - s) onehot(t) + s / c; elementwise
// once lse is known, so no reduction: a block per row only to read the row's scalars once.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* target,
                                              const T* logsumexp, const T* grad_loss,
                                              T* grad_logits, int64_t n, int64_t c,
                                              double label_smoothing, int64_t ignore_index) {
  using Schedule = AxisSchedule<true>;
  for (int64_t row = Schedule::first_row(); row < n; row += Schedule::row_step()) {
    const T* x = logits + row * c;
    T* g = grad_logits + row * c;
    const int64_t t = target[row];
    if (t == ignore_index) {
      for (int64_t j = Schedule::first_element(); j < c; j += Schedule::element_step()) g[j] = T(0);
      continue;
    }
    const double lse = logsumexp[row];
    const double scale = grad_loss[row];
    const double smooth = label_smoothing / static_cast<double>(c);
    for (int64_t j = Schedule::first_element(); j < c; j += Schedule::element_step()) {
      const double q = (j == t ? 1 - label_smoothing : 0) + smooth;
      const double probability = kernels::m_exp(static_cast<T>(static_cast<double>(x[j]) - lse));
      g[j] = static_cast<T>((probability - q) * scale);
    }
  }
}

}  // namespace

void softmax(DType dtype, const void* x, void* y, int64_t outer, int64_t axis, int64_t inner,
             bool log, Stream stream) {
  dispatch<float>(dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_along_axis(softmax_kernel<T, true>, softmax_kernel<T, false>, outer, axis, inner,
                      as_cuda_stream(stream), static_cast<const T*>(x), static_cast<T*>(y), outer,
                      axis, inner, log);
  });
}

void softmax_backward(DType dtype, const void* y, const void* dy, void* dx, int64_t outer,
                      int64_t axis, int64_t inner, bool log, Stream stream) {
  dispatch<float>(dtype, "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_along_axis(softmax_backward_kernel<T, true>, softmax_backward_kernel<T, false>, outer,
                      axis, inner, as_cuda_stream(stream), static_cast<const T*>(y),
                      static_cast<const T*>(dy), static_cast<T*>(dx), outer, axis, inner, log);
  });
}

void cross_entropy(DType dtype, const void* logits, const int64_t* target, void* loss,
                   void* logsumexp, int64_t n, int64_t c, double label_smoothing,
                   int64_t ignore_index, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned int blocks = static_cast<unsigned int>(std::min(n, kMaxBlocks));
    cross_entropy_kernel<<<blocks, row_block_size(c), 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(logits), target, static_cast<T*>(loss), static_cast<T*>(logsumexp), n,
        c, label_smoothing, ignore_index);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(DType dtype, const void* logits, const int64_t* target,
                            const void* logsumexp, const void* grad_loss, void* grad_logits,
                            int64_t n, int64_t c, double label_smoothing, int64_t ignore_index,
                            Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned int blocks = static_cast<unsigned int>(std::min(n, kMaxBlocks));
    cross_entropy_backward_kernel<<<blocks, row_block_size(c), 0, as_cuda_stream(stream)>>>(
        static_cast<const T*>(logits), target, static_cast<const T*>(logsumexp),
        static_cast<const T*>(grad_loss), static_cast<T*>(grad_logits), n, c, label_smoothing,
        ignore_index);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
