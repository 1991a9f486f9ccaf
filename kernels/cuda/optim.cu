// Fused optimizer updates on CUDA: one kernel launch per dense span, f32. A flat model's
// parameters, gradients and state lie back to back, so one launch updates a whole parameter group
// (the multi-tensor update of PyTorch's foreach/fused optimizers without a list of pointers).
// The per-element formulas are kernels/optim_math.h, the very functions the CPU calls.
//
// The kernels are grid-stride loops with plain loads: a span may start at any element of a flat
// buffer, so 16-byte vector loads would need an aligned head and tail for no gain worth the code
// in a kernel bound by memory traffic (SGD with momentum moves 5 values per element, Adam 7-9).
#include "kernels/cuda/launch.cuh"  // grid_size, kBlockSize, first_thread_index
#include "kernels/dispatch.h"       // dispatch
#include "kernels/optim_math.h"     // sgd_update, adam_update

namespace ember::cuda {

namespace {

template <typename T>
__global__ void sgd_kernel(int64_t n, T* param, const T* grad, T* momentum_buffer,
                           kernels::SgdScalars<T> s) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads()) {
    T unused = 0;
    kernels::sgd_update(param[i], grad[i], momentum_buffer ? momentum_buffer[i] : unused, s);
  }
}

template <typename T>
__global__ void adam_kernel(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                            T* max_exp_avg_sq, kernels::AdamScalars<T> s) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads()) {
    T unused = 0;
    kernels::adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i],
                         max_exp_avg_sq ? max_exp_avg_sq[i] : unused, s);
  }
}

}  // namespace

void sgd_step(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buffer,
              const SgdHyperparameters& h, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    sgd_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(momentum_buffer),
        kernels::make_sgd_scalars<T>(h));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void adam_step(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg,
               void* exp_avg_sq, void* max_exp_avg_sq, const AdamHyperparameters& h,
               Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adam_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
        static_cast<T*>(exp_avg_sq), static_cast<T*>(max_exp_avg_sq),
        kernels::make_adam_scalars<T>(h));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
