// 2-d max, average and adaptive average pooling on CUDA, with the window arithmetic of the CPU
// reference (kernels/pool_window.h) over the same dense [planes, H, W] buffers.
//
// Forward: a thread per output element reads its window in the CPU's order, so float sums come
// out as the CPU's. Backward: a thread per input element gathers the gradients of the outputs
// whose windows read it (pool_window.h gives those ranges), adding them in the order the CPU's
// scatter does. No atomics, even for overlapping windows: the gradients are deterministic and
// agree with the CPU's. A max-pooling output passes its gradient to the input its saved index
// names; the others in its window get none.
#include <cstdint>
#include <limits>  // std::numeric_limits

#include "kernels/cuda/launch.cuh"     // grid_size, first_thread_index, as_cuda_stream
#include "kernels/dispatch.h"          // dispatch
#include "kernels/elementwise_math.h"  // is_nan
#include "kernels/pool_window.h"       // taps_inside, outputs_spanning, average_window, ...

namespace ember::cuda {

namespace {

// Coordinates of element e of a dense [planes, height, width] buffer.
struct PlanePosition {
  int64_t plane, h, w;
};
__device__ inline PlanePosition position_of(int64_t e, int64_t height, int64_t width) {
  const int64_t row = e / width;  // plane * height + h
  return {row / height, row % height, e - row * width};
}

template <typename T>
__global__ void max_pool2d_kernel(Pool2dGeometry g, const T* x, T* y, int64_t* indices,
                                  int64_t total) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition out = position_of(e, g.out_h, g.out_w);
    const T* in = x + out.plane * g.in_h * g.in_w;
    const int64_t h0 = out.h * g.stride_h - g.pad_h, w0 = out.w * g.stride_w - g.pad_w;
    const IndexRange rows = taps_inside(h0, g.kernel_h, g.dilation_h, g.in_h);
    const IndexRange cols = taps_inside(w0, g.kernel_w, g.dilation_w, g.in_w);
    // As on the CPU: the first input read starts as the maximum; a larger value or a NaN wins.
    T best = -std::numeric_limits<T>::infinity();
    int64_t best_index = -1;
    for (int64_t i = rows.begin; i < rows.end; ++i) {
      const int64_t ih = h0 + i * g.dilation_h;
      for (int64_t j = cols.begin; j < cols.end; ++j) {
        const int64_t at = ih * g.in_w + w0 + j * g.dilation_w;
        const T v = in[at];
        if (best_index < 0 || v > best || kernels::is_nan(v)) {
          best = v;
          best_index = at;
        }
      }
    }
    y[e] = best;
    indices[e] = best_index;
  }
}

// dx at input p = sum of dy over the outputs spanning p whose saved index is p.
template <typename T>
__global__ void max_pool2d_backward_kernel(Pool2dGeometry g, const T* dy, const int64_t* indices,
                                           T* dx, int64_t total) {
  const int64_t out_plane = g.out_h * g.out_w;
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition in = position_of(e, g.in_h, g.in_w);
    const int64_t p = in.h * g.in_w + in.w;
    const T* grad_out = dy + in.plane * out_plane;
    const int64_t* where = indices + in.plane * out_plane;
    const IndexRange rows =
        outputs_spanning(in.h, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h, g.out_h);
    const IndexRange cols =
        outputs_spanning(in.w, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w, g.out_w);
    T sum = T(0);
    for (int64_t oh = rows.begin; oh < rows.end; ++oh)
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
        const int64_t o = oh * g.out_w + ow;
        if (where[o] == p) sum += grad_out[o];
      }
    dx[e] = sum;
  }
}

template <typename T>
__global__ void avg_pool2d_kernel(Pool2dGeometry g, bool count_include_pad,
                                  int64_t divisor_override, const T* x, T* y, int64_t total) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition out = position_of(e, g.out_h, g.out_w);
    const T* in = x + out.plane * g.in_h * g.in_w;
    const AverageWindow rows = average_window(out.h, g.kernel_h, g.stride_h, g.pad_h, g.in_h);
    const AverageWindow cols = average_window(out.w, g.kernel_w, g.stride_w, g.pad_w, g.in_w);
    const int64_t divisor = average_divisor(rows, cols, count_include_pad, divisor_override);
    T sum = T(0);
    for (int64_t ih = rows.inputs.begin; ih < rows.inputs.end; ++ih)
      for (int64_t iw = cols.inputs.begin; iw < cols.inputs.end; ++iw) sum += in[ih * g.in_w + iw];
    y[e] = divisor == 0 ? T(0) : sum / static_cast<T>(divisor);
  }
}

// dx at input p = sum of dy / divisor over the outputs whose windows hold p (with no dilation,
// spanning p is holding it).
template <typename T>
__global__ void avg_pool2d_backward_kernel(Pool2dGeometry g, bool count_include_pad,
                                           int64_t divisor_override, const T* dy, T* dx,
                                           int64_t total) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition in = position_of(e, g.in_h, g.in_w);
    const T* grad_out = dy + in.plane * g.out_h * g.out_w;
    const IndexRange rows = outputs_spanning(in.h, g.kernel_h, g.stride_h, g.pad_h, 1, g.out_h);
    const IndexRange cols = outputs_spanning(in.w, g.kernel_w, g.stride_w, g.pad_w, 1, g.out_w);
    T sum = T(0);
    for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
      const AverageWindow row_window = average_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.in_h);
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
        const AverageWindow col_window =
            average_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.in_w);
        const int64_t divisor =
            average_divisor(row_window, col_window, count_include_pad, divisor_override);
        if (divisor != 0) sum += grad_out[oh * g.out_w + ow] / static_cast<T>(divisor);
      }
    }
    dx[e] = sum;
  }
}

template <typename T>
__global__ void adaptive_avg_pool2d_kernel(Pool2dGeometry g, const T* x, T* y, int64_t total) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition out = position_of(e, g.out_h, g.out_w);
    const T* in = x + out.plane * g.in_h * g.in_w;
    const IndexRange rows = adaptive_window(out.h, g.out_h, g.in_h);
    const IndexRange cols = adaptive_window(out.w, g.out_w, g.in_w);
    T sum = T(0);
    for (int64_t ih = rows.begin; ih < rows.end; ++ih)
      for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.in_w + iw];
    const int64_t count = (rows.end - rows.begin) * (cols.end - cols.begin);
    y[e] = sum / static_cast<T>(count);
  }
}

// dx at input p = sum of dy / window size over the outputs whose windows hold p: the inverse
// adaptive ranges (adaptive_window with inputs and outputs swapped).
template <typename T>
__global__ void adaptive_avg_backward_kernel(Pool2dGeometry g, const T* dy, T* dx, int64_t total) {
  for (int64_t e = first_thread_index(); e < total; e += total_threads()) {
    const PlanePosition in = position_of(e, g.in_h, g.in_w);
    const T* grad_out = dy + in.plane * g.out_h * g.out_w;
    const IndexRange rows = adaptive_window(in.h, g.in_h, g.out_h);
    const IndexRange cols = adaptive_window(in.w, g.in_w, g.out_w);
    T sum = T(0);
    for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
      const IndexRange row_window = adaptive_window(oh, g.out_h, g.in_h);
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
        const IndexRange col_window = adaptive_window(ow, g.out_w, g.in_w);
        const int64_t count =
            (row_window.end - row_window.begin) * (col_window.end - col_window.begin);
        sum += grad_out[oh * g.out_w + ow] / static_cast<T>(count);
      }
    }
    dx[e] = sum;
  }
}

}  // namespace

void max_pool2d(DType dtype, const Pool2dGeometry& g, const void* x, void* y, int64_t* indices,
                Stream stream) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch<float>(dtype, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool2d_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, static_cast<const T*>(x), static_cast<T*>(y), indices, total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward(DType dtype, const Pool2dGeometry& g, const void* dy,
                         const int64_t* indices, void* dx, Stream stream) {
  const int64_t total = g.planes * g.in_h * g.in_w;
  if (total == 0) return;
  dispatch<float>(dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool2d_backward_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, static_cast<const T*>(dy), indices, static_cast<T*>(dx), total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d(DType dtype, const Pool2dGeometry& g, bool count_include_pad,
                int64_t divisor_override, const void* x, void* y, Stream stream) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch<float>(dtype, "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool2d_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, count_include_pad, divisor_override, static_cast<const T*>(x), static_cast<T*>(y),
        total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward(DType dtype, const Pool2dGeometry& g, bool count_include_pad,
                         int64_t divisor_override, const void* dy, void* dx, Stream stream) {
  const int64_t total = g.planes * g.in_h * g.in_w;
  if (total == 0) return;
  dispatch<float>(dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool2d_backward_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, count_include_pad, divisor_override, static_cast<const T*>(dy), static_cast<T*>(dx),
        total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d(DType dtype, const Pool2dGeometry& g, const void* x, void* y,
                         Stream stream) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch<float>(dtype, "adaptive_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adaptive_avg_pool2d_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, static_cast<const T*>(x), static_cast<T*>(y), total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_backward(DType dtype, const Pool2dGeometry& g, const void* dy, void* dx,
                           Stream stream) {
  const int64_t total = g.planes * g.in_h * g.in_w;
  if (total == 0) return;
  dispatch<float>(dtype, "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adaptive_avg_backward_kernel<<<grid_size(total), kBlockSize, 0, as_cuda_stream(stream)>>>(
        g, static_cast<const T*>(dy), static_cast<T*>(dx), total);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
