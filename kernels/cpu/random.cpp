// Random numbers on the CPU from the counter-based Philox generator (kernels/philox.h). Each
// element computes its own words, so the results equal CUDA's bit for bit (uniform) or to the
// last bits of sin/cos/log (normal).
#include <cmath>  // std::log, std::cos, std::sin, std::sqrt

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/philox.h"            // philox_word, word_to_uniform

namespace ember::cpu {

void random_uniform(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset, double low,
                    double high, Stream) {
  dispatch<float, double>(dtype, "random_uniform", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out);
    const T lo = static_cast<T>(low), span = static_cast<T>(high - low);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i)
      o[i] = lo + span * static_cast<T>(
                             kernels::word_to_uniform(kernels::philox_word(seed, offset + i)));
  });
}

// Box-Muller: element pair (2p, 2p + 1) turns words (offset + 2p, offset + 2p + 1) into
// r cos(theta) and r sin(theta), r = sqrt(-2 log u1), theta = 2 pi u2.
void random_normal(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                   double std, Stream) {
  dispatch<float, double>(dtype, "random_normal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t pair = static_cast<uint64_t>(i / 2);
      const float u1 =
          kernels::word_to_uniform_open0(kernels::philox_word(seed, offset + 2 * pair));
      const float u2 = kernels::word_to_uniform(kernels::philox_word(seed, offset + 2 * pair + 1));
      const float radius = sqrtf(-2.0f * logf(u1));
      const float theta = 6.2831853071795865f * u2;
      const float z = (i % 2 == 0) ? radius * cosf(theta) : radius * sinf(theta);
      o[i] = static_cast<T>(mean + std * static_cast<double>(z));
    }
  });
}

void dropout(DType dtype, const void* x, void* y, void* mask, int64_t n, double p, uint64_t seed,
             uint64_t offset, Stream) {
  dispatch<float, double>(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    T* m = static_cast<T*>(mask);
    const T keep_scale = static_cast<T>(p < 1 ? 1.0 / (1.0 - p) : 0.0);  // p = 1 drops all
    const float threshold = static_cast<float>(p);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const float u = kernels::word_to_uniform(kernels::philox_word(seed, offset + i));
      m[i] = u >= threshold ? keep_scale : T(0);
      out[i] = in[i] * m[i];
    }
  });
}

}  // namespace ember::cpu
