// Fused optimizer updates on the CPU: one pass over a dense span per call, f32 and f64. The
// per-element formulas are kernels/optim_math.h, shared with CUDA.
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/optim_math.h"        // sgd_update, adam_update

namespace ember::cpu {

void sgd_step(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buffer,
              const SgdHyperparameters& h, Stream) {
  dispatch<float, double>(dtype, "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const kernels::SgdScalars<T> s = kernels::make_sgd_scalars<T>(h);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* buffer = static_cast<T*>(momentum_buffer);
    T unused = 0;  // stands in for the buffer when there is no momentum
#pragma omp parallel for schedule(static) if (n >= kParallelGrain) firstprivate(unused)
    for (int64_t i = 0; i < n; ++i) kernels::sgd_update(p[i], g[i], buffer ? buffer[i] : unused, s);
  });
}

void adam_step(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg,
               void* exp_avg_sq, void* max_exp_avg_sq, const AdamHyperparameters& h, Stream) {
  dispatch<float, double>(dtype, "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const kernels::AdamScalars<T> s = kernels::make_adam_scalars<T>(h);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(exp_avg);
    T* v = static_cast<T*>(exp_avg_sq);
    T* v_max = static_cast<T*>(max_exp_avg_sq);
    T unused = 0;  // stands in for max_exp_avg_sq without amsgrad
#pragma omp parallel for schedule(static) if (n >= kParallelGrain) firstprivate(unused)
    for (int64_t i = 0; i < n; ++i)
      kernels::adam_update(p[i], g[i], m[i], v[i], v_max ? v_max[i] : unused, s);
  });
}

}  // namespace ember::cpu
