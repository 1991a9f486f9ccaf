// Batch, group and layer normalization on CUDA, with the formulas of kernels/cpu/norm.cpp, over
// x = [outer, channels, inner] grouped into statistics as NormLayout says
// (kernels/kernel_table.h).
//
// Reductions take a block per statistic (or per channel, for dweight and dbias): its threads
// stride over the statistic's elements, keep partial sums in double, and block_reduce
// (axis_reduce.cuh) combines them. The statistics take two passes, the mean and then the
// squared deviations from it, as on the CPU: sum(x^2) - n * mean^2 in one pass would lose
// every digit when the mean is large next to the spread. The second pass re-reads the elements
// a block has just read, mostly from L2.
//
// A group norm or layer norm statistic is a contiguous run, so neighbouring threads read
// neighbouring addresses. A batch norm statistic is the runs x[o, c, :] for every o: coalesced
// when inner (H * W) is at least a warp, strided by the channel count when inner is 1
// ([N, C] input). A batch norm with few channels keeps only that many blocks busy; splitting
// each channel over several blocks would serve it, at the cost of a second kernel.
//
// The backward rule through the statistics needs, per statistic, sum(g) and sum(g * xhat)
// before any dx: the same block computes them and then writes its dx, with no buffer between.
#include <cstdint>

#include "kernels/cuda/axis_reduce.cuh"  // block_reduce, Add, row_block_size
#include "kernels/cuda/launch.cuh"       // as_cuda_stream, grid_size, kMaxBlocks
#include "kernels/dispatch.h"            // dispatch

namespace ember::cuda {

namespace {

// Element k (0 <= k < elements_per_statistic) of statistic s: its offset in x and its channel.
struct Element {
  int64_t offset;
  int64_t channel;
};
__device__ Element element_of(const NormLayout& layout, int64_t s, int64_t k) {
  if (layout.over == NormOver::Batch) {
    const int64_t o = k / layout.inner, i = k - o * layout.inner;
    return {(o * layout.channels + s) * layout.inner + i, s};
  }
  const int64_t per_group = layout.channels / layout.groups;
  return {s * per_group * layout.inner + k, (s % layout.groups) * per_group + k / layout.inner};
}

// The statistic of the elements x[o, c, :].
__device__ int64_t statistic_of(const NormLayout& layout, int64_t o, int64_t c) {
  if (layout.over == NormOver::Batch) return c;
  return o * layout.groups + c / (layout.channels / layout.groups);
}

template <typename T>
__global__ void statistics_kernel(NormLayout layout, const T* x, T* mean, T* invstd, T* variance,
                                  double eps) {
  const int64_t statistics = layout.statistics();
  const int64_t count = layout.elements_per_statistic();
  for (int64_t s = blockIdx.x; s < statistics; s += gridDim.x) {
    double partial = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x)
      partial += static_cast<double>(x[element_of(layout, s, k).offset]);
    const double m = block_reduce(partial, 0.0, Add{}) / static_cast<double>(count);
    double squares = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const double d = static_cast<double>(x[element_of(layout, s, k).offset]) - m;
      squares += d * d;
    }
    const double var = block_reduce(squares, 0.0, Add{}) / static_cast<double>(count);
    if (threadIdx.x == 0) {
      mean[s] = static_cast<T>(m);
      invstd[s] = static_cast<T>(1.0 / ::sqrt(var + eps));
      if (variance) variance[s] = static_cast<T>(var);
    }
  }
}

// y = (x - mean[s]) * invstd[s] * weight[c] + bias[c], a thread per element.
template <typename T>
__global__ void forward_kernel(NormLayout layout, const T* x, const T* mean, const T* invstd,
                               const T* weight, const T* bias, T* y) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  for (int64_t at = first_thread_index(); at < n; at += total_threads()) {
    const int64_t block = at / layout.inner;  // the run x[o, c, :] holding element `at`
    const int64_t c = block % layout.channels, o = block / layout.channels;
    const int64_t s = statistic_of(layout, o, c);
    const T scale = invstd[s] * (weight ? weight[c] : T(1));
    y[at] = (x[at] - mean[s]) * scale + (bias ? bias[c] : T(0));
  }
}

// dweight[c] = sum(dy * xhat), dbias[c] = sum(dy) over x[:, c, :]; a block per channel.
template <typename T>
__global__ void affine_backward_kernel(NormLayout layout, const T* x, const T* dy, const T* mean,
                                       const T* invstd, T* dweight, T* dbias) {
  const int64_t count = layout.outer * layout.inner;
  for (int64_t c = blockIdx.x; c < layout.channels; c += gridDim.x) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const int64_t o = k / layout.inner, i = k - o * layout.inner;
      const int64_t at = (o * layout.channels + c) * layout.inner + i;
      const int64_t s = statistic_of(layout, o, c);
      const double xhat = (static_cast<double>(x[at]) - mean[s]) * static_cast<double>(invstd[s]);
      sum_dy += static_cast<double>(dy[at]);
      sum_dy_xhat += static_cast<double>(dy[at]) * xhat;
    }
    sum_dy = block_reduce(sum_dy, 0.0, Add{});
    sum_dy_xhat = block_reduce(sum_dy_xhat, 0.0, Add{});
    if (threadIdx.x == 0) {
      if (dweight) dweight[c] = static_cast<T>(sum_dy_xhat);
      if (dbias) dbias[c] = static_cast<T>(sum_dy);
    }
  }
}

// dx = invstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight; a block per statistic.
template <typename T>
__global__ void input_backward_kernel(NormLayout layout, const T* x, const T* dy, const T* mean,
                                      const T* invstd, const T* weight, T* dx) {
  const int64_t statistics = layout.statistics();
  const int64_t count = layout.elements_per_statistic();
  for (int64_t s = blockIdx.x; s < statistics; s += gridDim.x) {
    const double m = mean[s], r = invstd[s];
    double sum_g = 0, sum_g_xhat = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const Element e = element_of(layout, s, k);
      const double g = static_cast<double>(dy[e.offset]) *
                       (weight ? static_cast<double>(weight[e.channel]) : 1.0);
      sum_g += g;
      sum_g_xhat += g * (static_cast<double>(x[e.offset]) - m) * r;
    }
    const double mean_g = block_reduce(sum_g, 0.0, Add{}) / static_cast<double>(count);
    const double mean_g_xhat = block_reduce(sum_g_xhat, 0.0, Add{}) / static_cast<double>(count);
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const Element e = element_of(layout, s, k);
      const double g = static_cast<double>(dy[e.offset]) *
                       (weight ? static_cast<double>(weight[e.channel]) : 1.0);
      const double xhat = (static_cast<double>(x[e.offset]) - m) * r;
      dx[e.offset] = static_cast<T>(r * (g - mean_g - xhat * mean_g_xhat));
    }
  }
}

// dx = invstd * dy * weight with statistics that do not depend on x; a thread per element.
template <typename T>
__global__ void input_backward_fixed_kernel(NormLayout layout, const T* dy, const T* invstd,
                                            const T* weight, T* dx) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  for (int64_t at = first_thread_index(); at < n; at += total_threads()) {
    const int64_t block = at / layout.inner;
    const int64_t c = block % layout.channels, o = block / layout.channels;
    dx[at] = dy[at] * invstd[statistic_of(layout, o, c)] * (weight ? weight[c] : T(1));
  }
}

// Blocks for a block per statistic (or per channel), at most kMaxBlocks: blocks stride on.
unsigned int blocks_for(int64_t items) {
  return static_cast<unsigned int>(std::min(items, kMaxBlocks));
}

}  // namespace

void norm_statistics(DType dtype, const NormLayout& layout, const void* x, void* mean, void* invstd,
                     void* variance, double eps, Stream stream) {
  const int64_t statistics = layout.statistics();
  if (statistics == 0) return;
  dispatch<float>(dtype, "norm_statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    statistics_kernel<<<blocks_for(statistics), row_block_size(layout.elements_per_statistic()), 0,
                        as_cuda_stream(stream)>>>(layout, static_cast<const T*>(x),
                                                  static_cast<T*>(mean), static_cast<T*>(invstd),
                                                  static_cast<T*>(variance), eps);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void norm_forward(DType dtype, const NormLayout& layout, const void* x, const void* mean,
                  const void* invstd, const void* weight, const void* bias, void* y,
                  Stream stream) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  if (n == 0) return;
  dispatch<float>(dtype, "norm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        layout, static_cast<const T*>(x), static_cast<const T*>(mean),
        static_cast<const T*>(invstd), static_cast<const T*>(weight), static_cast<const T*>(bias),
        static_cast<T*>(y));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void norm_backward(DType dtype, const NormLayout& layout, const void* x, const void* dy,
                   const void* mean, const void* invstd, const void* weight,
                   bool through_statistics, void* dx, void* dweight, void* dbias, Stream stream) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  if (n == 0) return;  // the engine fills zeros for an empty input
  dispatch<float>(dtype, "norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const cudaStream_t s = as_cuda_stream(stream);
    const T* in = static_cast<const T*>(x);
    const T* grad_out = static_cast<const T*>(dy);
    const T* mu = static_cast<const T*>(mean);
    const T* rstd = static_cast<const T*>(invstd);
    const T* w = static_cast<const T*>(weight);
    if (dweight || dbias) {
      affine_backward_kernel<<<blocks_for(layout.channels),
                               row_block_size(layout.outer * layout.inner), 0, s>>>(
          layout, in, grad_out, mu, rstd, static_cast<T*>(dweight), static_cast<T*>(dbias));
      EMBER_CUDA_CHECK_LAUNCH();
    }
    if (!dx) return;
    if (through_statistics) {
      input_backward_kernel<<<blocks_for(layout.statistics()),
                              row_block_size(layout.elements_per_statistic()), 0, s>>>(
          layout, in, grad_out, mu, rstd, w, static_cast<T*>(dx));
    } else {
      input_backward_fixed_kernel<<<grid_size(n), kBlockSize, 0, s>>>(layout, grad_out, rstd, w,
                                                                      static_cast<T*>(dx));
    }
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
