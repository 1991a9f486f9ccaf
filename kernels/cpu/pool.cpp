// 2-d max, average and adaptive average pooling on the CPU, over dense [planes, H, W] buffers
// (the layout and window geometry are in kernels/kernel_table.h, the window arithmetic in
// kernels/pool_window.h).
//
// OpenMP splits the planes; one thread walks a plane's outputs in row-major order. The backward
// kernels scatter each output's gradient into the inputs it read, which cannot race within a
// plane and always adds in the same order (the CUDA kernels gather in that order too).
#include <algorithm>  // std::min
#include <cstdint>
#include <limits>  // std::numeric_limits
#include <vector>

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/elementwise_math.h"  // is_nan
#include "kernels/pool_window.h"       // taps_inside, average_window, adaptive_window

namespace ember::cpu {

namespace {

// Whether a loop over `planes` planes doing about `work_per_plane` steps each is worth threads.
bool worth_threads(int64_t planes, int64_t work_per_plane) {
  return planes > 1 && planes * work_per_plane >= kParallelGrain;
}

// One output row of a 2x2, stride-2 max pool whose windows all lie inside the input: out[ow]
// and where[ow] from input rows `top` and `bottom` (`top_index`: top's index in the plane).
//
// The plain loop (max_pool2d's) compares and branches per tap; on real data which way a
// comparison goes is a coin toss, and mispredicted branches were most of its time. Here every
// choice is a select between two values, and the tap chosen is kept as a number of the same
// type T (0..3), so the loop over columns holds only T and the compiler vectorizes it. The
// indices follow from the tap numbers in a second loop. The rule is max_pool2d's: the first
// maximum wins, a NaN beats everything, the last NaN wins among NaNs.
template <typename T>
void max_pool_2x2_row(const T* top, const T* bottom, int64_t top_index, int64_t in_w, int64_t out_w,
                      T* out, int64_t* where) {
  constexpr int64_t kBlock = 64;  // columns per pass (the tap numbers stay on the stack)
  T tap[kBlock];
  for (int64_t first = 0; first < out_w; first += kBlock) {
    const int64_t count = std::min(kBlock, out_w - first);
    for (int64_t c = 0; c < count; ++c) {
      const int64_t left = 2 * (first + c);
      T best = top[left], chosen = T(0);
      auto consider = [&](T v, T number) {
        const bool take = (v > best) | kernels::is_nan(v);
        best = take ? v : best;
        chosen = take ? number : chosen;
      };
      consider(top[left + 1], T(1));
      consider(bottom[left], T(2));
      consider(bottom[left + 1], T(3));
      out[first + c] = best;
      tap[c] = chosen;
    }
    for (int64_t c = 0; c < count; ++c) {
      const int64_t number = static_cast<int64_t>(tap[c]);  // 0 1 / 2 3 over the window
      where[first + c] = top_index + 2 * (first + c) + (number >> 1) * in_w + (number & 1);
    }
  }
}

}  // namespace

void max_pool2d(DType dtype, const Pool2dGeometry& g, const void* x, void* y, int64_t* indices,
                Stream) {
  dispatch<float, double>(dtype, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    // The common 2x2 pool with stride 2 whose windows all lie inside the input
    // (max_pool_2x2_row).
    const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 &&
                            g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 && g.dilation_h == 1 &&
                            g.dilation_w == 1 && 2 * g.out_h <= g.in_h && 2 * g.out_w <= g.in_w;
    // Otherwise: the taps inside the input of each output column are the same for every row
    // and plane, so worked out (with their divisions) once.
    std::vector<IndexRange> column_taps(static_cast<size_t>(g.out_w));
    for (int64_t ow = 0; ow < g.out_w; ++ow)
      column_taps[static_cast<size_t>(ow)] =
          taps_inside(ow * g.stride_w - g.pad_w, g.kernel_w, g.dilation_w, g.in_w);
#pragma omp parallel for schedule( \
    static) if (worth_threads(g.planes, out_plane * g.kernel_h * g.kernel_w))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* in = static_cast<const T*>(x) + plane * in_plane;
      T* out = static_cast<T*>(y) + plane * out_plane;
      int64_t* where = indices + plane * out_plane;
      if (two_by_two) {
        for (int64_t oh = 0; oh < g.out_h; ++oh)
          max_pool_2x2_row(in + 2 * oh * g.in_w, in + (2 * oh + 1) * g.in_w, 2 * oh * g.in_w,
                           g.in_w, g.out_w, out + oh * g.out_w, where + oh * g.out_w);
        continue;
      }
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t h0 = oh * g.stride_h - g.pad_h;
        const IndexRange rows = taps_inside(h0, g.kernel_h, g.dilation_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t w0 = ow * g.stride_w - g.pad_w;
          const IndexRange cols = column_taps[static_cast<size_t>(ow)];
          // The first input read starts as the maximum (PyTorch's choice when all are -inf);
          // after it, a larger value or any NaN takes over.
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
          out[oh * g.out_w + ow] = best;
          where[oh * g.out_w + ow] = best_index;
        }
      }
    }
  });
}

void max_pool2d_backward(DType dtype, const Pool2dGeometry& g, const void* dy,
                         const int64_t* indices, void* dx, Stream) {
  dispatch<float, double>(dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule(static) if (worth_threads(g.planes, in_plane + out_plane))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* grad_out = static_cast<const T*>(dy) + plane * out_plane;
      const int64_t* where = indices + plane * out_plane;
      T* grad_in = static_cast<T*>(dx) + plane * in_plane;
      for (int64_t p = 0; p < in_plane; ++p) grad_in[p] = T(0);
      for (int64_t o = 0; o < out_plane; ++o)
        if (where[o] >= 0 && where[o] < in_plane) grad_in[where[o]] += grad_out[o];
    }
  });
}

void avg_pool2d(DType dtype, const Pool2dGeometry& g, bool count_include_pad,
                int64_t divisor_override, const void* x, void* y, Stream) {
  dispatch<float, double>(dtype, "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule( \
    static) if (worth_threads(g.planes, out_plane * g.kernel_h * g.kernel_w))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* in = static_cast<const T*>(x) + plane * in_plane;
      T* out = static_cast<T*>(y) + plane * out_plane;
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const AverageWindow rows = average_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const AverageWindow cols = average_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.in_w);
          const int64_t divisor = average_divisor(rows, cols, count_include_pad, divisor_override);
          T sum = T(0);
          for (int64_t ih = rows.inputs.begin; ih < rows.inputs.end; ++ih)
            for (int64_t iw = cols.inputs.begin; iw < cols.inputs.end; ++iw)
              sum += in[ih * g.in_w + iw];
          out[oh * g.out_w + ow] = divisor == 0 ? T(0) : sum / static_cast<T>(divisor);
        }
      }
    }
  });
}

void avg_pool2d_backward(DType dtype, const Pool2dGeometry& g, bool count_include_pad,
                         int64_t divisor_override, const void* dy, void* dx, Stream) {
  dispatch<float, double>(dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule( \
    static) if (worth_threads(g.planes, out_plane * g.kernel_h * g.kernel_w))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* grad_out = static_cast<const T*>(dy) + plane * out_plane;
      T* grad_in = static_cast<T*>(dx) + plane * in_plane;
      for (int64_t p = 0; p < in_plane; ++p) grad_in[p] = T(0);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const AverageWindow rows = average_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const AverageWindow cols = average_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.in_w);
          const int64_t divisor = average_divisor(rows, cols, count_include_pad, divisor_override);
          if (divisor == 0) continue;
          const T share = grad_out[oh * g.out_w + ow] / static_cast<T>(divisor);
          for (int64_t ih = rows.inputs.begin; ih < rows.inputs.end; ++ih)
            for (int64_t iw = cols.inputs.begin; iw < cols.inputs.end; ++iw)
              grad_in[ih * g.in_w + iw] += share;
        }
      }
    }
  });
}

void adaptive_avg_pool2d(DType dtype, const Pool2dGeometry& g, const void* x, void* y, Stream) {
  dispatch<float, double>(dtype, "adaptive_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule(static) if (worth_threads(g.planes, in_plane + out_plane))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* in = static_cast<const T*>(x) + plane * in_plane;
      T* out = static_cast<T*>(y) + plane * out_plane;
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const IndexRange rows = adaptive_window(oh, g.out_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const IndexRange cols = adaptive_window(ow, g.out_w, g.in_w);
          T sum = T(0);
          for (int64_t ih = rows.begin; ih < rows.end; ++ih)
            for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.in_w + iw];
          const int64_t count = (rows.end - rows.begin) * (cols.end - cols.begin);
          out[oh * g.out_w + ow] = sum / static_cast<T>(count);
        }
      }
    }
  });
}

void adaptive_avg_backward(DType dtype, const Pool2dGeometry& g, const void* dy, void* dx, Stream) {
  dispatch<float, double>(dtype, "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule(static) if (worth_threads(g.planes, in_plane + out_plane))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const T* grad_out = static_cast<const T*>(dy) + plane * out_plane;
      T* grad_in = static_cast<T*>(dx) + plane * in_plane;
      for (int64_t p = 0; p < in_plane; ++p) grad_in[p] = T(0);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const IndexRange rows = adaptive_window(oh, g.out_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const IndexRange cols = adaptive_window(ow, g.out_w, g.in_w);
          const int64_t count = (rows.end - rows.begin) * (cols.end - cols.begin);
          const T share = grad_out[oh * g.out_w + ow] / static_cast<T>(count);
          for (int64_t ih = rows.begin; ih < rows.end; ++ih)
            for (int64_t iw = cols.begin; iw < cols.end; ++iw) grad_in[ih * g.in_w + iw] += share;
        }
      }
    }
  });
}

}  // namespace ember::cpu
