// Softmax, log-softmax and fused cross-entropy on the CPU.
//
// softmax(x)_j = exp(x_j - m) / sum_i exp(x_i - m), with m = max_i x_i so that exp never
// overflows; log-softmax(x)_j = x_j - m - log(sum_i exp(x_i - m)) = x_j - logsumexp(x).
// Cross-entropy with label smoothing s over c classes, target t:
//   loss = (1 - s) * (lse - x_t) + s * (lse - mean_j x_j)     [lse = logsumexp(x)]
// which is -sum_j q_j log softmax(x)_j for q = (1 - s) onehot(t) + s / c.
#include <cmath>  // std::exp, std::log

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

void softmax(DType dtype, const void* x, void* y, int64_t outer, int64_t axis, int64_t inner,
             bool log, Stream) {
  dispatch<float, double>(dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t base = (r / inner) * axis * inner + r % inner;
      const T* in = static_cast<const T*>(x) + base;
      T* out = static_cast<T*>(y) + base;
      T max = in[0];
      for (int64_t j = 1; j < axis; ++j) max = in[j * inner] > max ? in[j * inner] : max;
      double sum = 0;
      for (int64_t j = 0; j < axis; ++j) sum += std::exp(static_cast<double>(in[j * inner] - max));
      if (log) {
        const double lse = static_cast<double>(max) + std::log(sum);
        for (int64_t j = 0; j < axis; ++j) out[j * inner] = static_cast<T>(in[j * inner] - lse);
      } else {
        for (int64_t j = 0; j < axis; ++j)
          out[j * inner] = static_cast<T>(std::exp(static_cast<double>(in[j * inner] - max)) / sum);
      }
    }
  });
}

void softmax_backward(DType dtype, const void* y, const void* dy, void* dx, int64_t outer,
                      int64_t axis, int64_t inner, bool log, Stream) {
  dispatch<float, double>(dtype, "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t base = (r / inner) * axis * inner + r % inner;
      const T* out = static_cast<const T*>(y) + base;
      const T* g = static_cast<const T*>(dy) + base;
      T* gin = static_cast<T*>(dx) + base;
      double dot = 0;  // softmax: sum(dy * y); log-softmax: sum(dy)
      for (int64_t j = 0; j < axis; ++j) dot += log ? g[j * inner] : g[j * inner] * out[j * inner];
      for (int64_t j = 0; j < axis; ++j) {
        const int64_t at = j * inner;
        gin[at] = log ? static_cast<T>(g[at] - std::exp(static_cast<double>(out[at])) * dot)
                      : static_cast<T>(out[at] * (g[at] - dot));
      }
    }
  });
}

void cross_entropy(DType dtype, const void* logits, const int64_t* target, void* loss,
                   void* logsumexp, int64_t n, int64_t c, double label_smoothing,
                   int64_t ignore_index, Stream) {
  dispatch<float, double>(dtype, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
#pragma omp parallel for schedule(static) if (n * c >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T* x = static_cast<const T*>(logits) + i * c;
      double max = x[0], total = 0, sum = 0;
      for (int64_t j = 1; j < c; ++j) max = x[j] > max ? x[j] : max;
      for (int64_t j = 0; j < c; ++j) {
        sum += std::exp(x[j] - max);
        total += x[j];
      }
      const double lse = max + std::log(sum);
      static_cast<T*>(logsumexp)[i] = static_cast<T>(lse);
      const int64_t t = target[i];
      double row_loss = 0;
      if (t != ignore_index) {
        // (the engine has checked the targets; never throw inside an OpenMP loop)
        if (t < 0 || t >= c)
          row_loss = std::nan("");
        else
          row_loss = (1 - label_smoothing) * (lse - x[t]) +
                     label_smoothing * (lse - total / static_cast<double>(c));
      }
      static_cast<T*>(loss)[i] = static_cast<T>(row_loss);
    }
  });
}

void cross_entropy_backward(DType dtype, const void* logits, const int64_t* target,
                            const void* logsumexp, const void* grad_loss, void* grad_logits,
                            int64_t n, int64_t c, double label_smoothing, int64_t ignore_index,
                            Stream) {
  dispatch<float, double>(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
#pragma omp parallel for schedule(static) if (n * c >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T* x = static_cast<const T*>(logits) + i * c;
      T* g = static_cast<T*>(grad_logits) + i * c;
      const int64_t t = target[i];
      if (t == ignore_index) {
        for (int64_t j = 0; j < c; ++j) g[j] = T(0);
        continue;
      }
      const double lse = static_cast<const T*>(logsumexp)[i];
      const double scale = static_cast<const T*>(grad_loss)[i];
      const double smooth = label_smoothing / static_cast<double>(c);
      for (int64_t j = 0; j < c; ++j) {
        const double q = (j == t ? 1 - label_smoothing : 0) + smooth;
        g[j] = static_cast<T>((std::exp(x[j] - lse) - q) * scale);
      }
    }
  });
}

}  // namespace ember::cpu
