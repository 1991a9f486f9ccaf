// Batch, group and layer normalization on the CPU, over x = [outer, channels, inner] grouped
// into statistics as NormLayout says (kernels/kernel_table.h).
//
// Statistics take two passes over each statistic's elements in double: the mean first, then
// the sum of squared deviations from it. The one-pass sum(x^2) - n * mean^2 loses every digit
// when the mean is large next to the spread; two passes never do.
//
// Backward, with xhat = (x - mean) * invstd, g = dy * weight and M elements per statistic:
//   dx = invstd * (g - sum(g) / M - xhat * sum(g * xhat) / M)      (through the statistics)
//   dx = invstd * g                                                  (fixed statistics)
//   dweight[c] = sum(dy * xhat), dbias[c] = sum(dy), over x[:, c, :]
#include <cmath>  // std::sqrt, NAN

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

namespace {

// The statistic that element x[o, c, :] belongs to.
int64_t statistic_of(const NormLayout& layout, int64_t o, int64_t c) {
  if (layout.over == NormOver::Batch) return c;
  return o * layout.groups + c / (layout.channels / layout.groups);
}

// body(offset, channel) for every element of statistic s, in memory order within each run.
template <typename Body>
void for_each_element(const NormLayout& layout, int64_t s, Body&& body) {
  if (layout.over == NormOver::Batch) {
    for (int64_t o = 0; o < layout.outer; ++o) {
      const int64_t start = (o * layout.channels + s) * layout.inner;
      for (int64_t i = 0; i < layout.inner; ++i) body(start + i, s);
    }
  } else {  // the group's channels lie together: one contiguous run
    const int64_t per_group = layout.channels / layout.groups;
    const int64_t first_channel = (s % layout.groups) * per_group;
    int64_t offset = s * layout.elements_per_statistic();
    for (int64_t c = 0; c < per_group; ++c)
      for (int64_t i = 0; i < layout.inner; ++i) body(offset++, first_channel + c);
  }
}

// Runs loops in parallel only when there is enough work in total.
bool worth_threads(const NormLayout& layout) {
  return layout.outer * layout.channels * layout.inner >= kParallelGrain;
}

}  // namespace

void norm_statistics(DType dtype, const NormLayout& layout, const void* x, void* mean, void* invstd,
                     void* variance, double eps, Stream) {
  dispatch<float, double>(dtype, "norm_statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const int64_t statistics = layout.statistics();
    const double count = static_cast<double>(layout.elements_per_statistic());
#pragma omp parallel for schedule(static) if (worth_threads(layout))
    for (int64_t s = 0; s < statistics; ++s) {
      double sum = 0;
      for_each_element(layout, s, [&](int64_t at, int64_t) { sum += in[at]; });
      const double m = count > 0 ? sum / count : NAN;
      double squares = 0;
      for_each_element(layout, s, [&](int64_t at, int64_t) {
        const double d = in[at] - m;
        squares += d * d;
      });
      const double var = count > 0 ? squares / count : NAN;
      static_cast<T*>(mean)[s] = static_cast<T>(m);
      static_cast<T*>(invstd)[s] = static_cast<T>(1.0 / std::sqrt(var + eps));
      if (variance) static_cast<T*>(variance)[s] = static_cast<T>(var);
    }
  });
}

void norm_forward(DType dtype, const NormLayout& layout, const void* x, const void* mean,
                  const void* invstd, const void* weight, const void* bias, void* y, Stream) {
  dispatch<float, double>(dtype, "norm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const T* w = static_cast<const T*>(weight);
    const T* b = static_cast<const T*>(bias);
    T* out = static_cast<T*>(y);
    const int64_t blocks = layout.outer * layout.channels;  // one per x[o, c, :]
#pragma omp parallel for schedule(static) if (worth_threads(layout))
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t o = block / layout.channels, c = block % layout.channels;
      const int64_t s = statistic_of(layout, o, c);
      const double m = static_cast<const T*>(mean)[s];
      const double scale = static_cast<double>(static_cast<const T*>(invstd)[s]) * (w ? w[c] : 1);
      const double shift = b ? b[c] : 0;
      const int64_t start = block * layout.inner;
      for (int64_t i = 0; i < layout.inner; ++i)
        out[start + i] = static_cast<T>((in[start + i] - m) * scale + shift);
    }
  });
}

void norm_backward(DType dtype, const NormLayout& layout, const void* x, const void* dy,
                   const void* mean, const void* invstd, const void* weight,
                   bool through_statistics, void* dx, void* dweight, void* dbias, Stream) {
  dispatch<float, double>(dtype, "norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const T* grad_out = static_cast<const T*>(dy);
    const T* mu = static_cast<const T*>(mean);
    const T* rstd = static_cast<const T*>(invstd);
    const T* w = static_cast<const T*>(weight);
    auto xhat = [&](int64_t at, int64_t s) {
      return (static_cast<double>(in[at]) - mu[s]) * static_cast<double>(rstd[s]);
    };

    if (dweight || dbias) {
#pragma omp parallel for schedule(static) if (worth_threads(layout))
      for (int64_t c = 0; c < layout.channels; ++c) {
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t o = 0; o < layout.outer; ++o) {
          const int64_t s = statistic_of(layout, o, c);
          const int64_t start = (o * layout.channels + c) * layout.inner;
          for (int64_t i = 0; i < layout.inner; ++i) {
            sum_dy += grad_out[start + i];
            sum_dy_xhat += grad_out[start + i] * xhat(start + i, s);
          }
        }
        if (dweight) static_cast<T*>(dweight)[c] = static_cast<T>(sum_dy_xhat);
        if (dbias) static_cast<T*>(dbias)[c] = static_cast<T>(sum_dy);
      }
    }
    if (!dx) return;
    T* grad_in = static_cast<T*>(dx);

    if (!through_statistics) {
      const int64_t blocks = layout.outer * layout.channels;
#pragma omp parallel for schedule(static) if (worth_threads(layout))
      for (int64_t block = 0; block < blocks; ++block) {
        const int64_t o = block / layout.channels, c = block % layout.channels;
        const double scale = static_cast<double>(rstd[statistic_of(layout, o, c)]) * (w ? w[c] : 1);
        const int64_t start = block * layout.inner;
        for (int64_t i = 0; i < layout.inner; ++i)
          grad_in[start + i] = static_cast<T>(grad_out[start + i] * scale);
      }
      return;
    }

    const int64_t statistics = layout.statistics();
    const double count = static_cast<double>(layout.elements_per_statistic());
#pragma omp parallel for schedule(static) if (worth_threads(layout))
    for (int64_t s = 0; s < statistics; ++s) {
      double sum_g = 0, sum_g_xhat = 0;
      for_each_element(layout, s, [&](int64_t at, int64_t c) {
        const double g = grad_out[at] * (w ? static_cast<double>(w[c]) : 1.0);
        sum_g += g;
        sum_g_xhat += g * xhat(at, s);
      });
      const double mean_g = sum_g / count, mean_g_xhat = sum_g_xhat / count;
      const double r = rstd[s];
      for_each_element(layout, s, [&](int64_t at, int64_t c) {
        const double g = grad_out[at] * (w ? static_cast<double>(w[c]) : 1.0);
        grad_in[at] = static_cast<T>(r * (g - mean_g - xhat(at, s) * mean_g_xhat));
      });
    }
  });
}

}  // namespace ember::cpu
