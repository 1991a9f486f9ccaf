// 2-d convolution on the CPU: im2col + GEMM (OpenBLAS), and col2im for the input's gradient.
//
// im2col unfolds one sample x_n [c_in, h, w] into a column matrix col [c_in*kh*kw, h_out*w_out]:
//   col[(c*kh + p)*kw + q, i*w_out + j] = x_n[c, i*stride_h - pad_h + p*dilation_h,
//                                              j*stride_w - pad_w + q*dilation_w]   (0 outside)
// Its rows are ordered as a weight's [c_in/groups, kh, kw] is flattened, so group g owns one
// contiguous block of K_g = cig*kh*kw rows, and each (sample, group) is one GEMM:
//   forward          y_n,g [cog, hw]  = W_g [cog, K_g] . col_g [K_g, hw]
//   backward-data    dcol_g [K_g, hw] = W_g^T . dy_n,g,  then col2im adds every entry of dcol
//                                       back onto the element of x_n it was read from
//   backward-filter  dW_g [cog, K_g] += dy_n,g . col_g^T  (summed over the batch)
// A 1x1 convolution with stride 1 and no padding needs no unfolding: col is x_n itself.
//
// Threads: a chunk of samples is unfolded (or folded back) in parallel, each sample into its own
// column buffer, split over (sample, channel); the GEMMs then run one after another, each
// threaded by OpenBLAS. Calling OpenBLAS from inside an OpenMP region would start its own
// threads on top of OpenMP's (the pthreads build does), so the two never nest.
#include <cblas.h>  // cblas_sgemm, cblas_dgemm
#include <omp.h>    // omp_get_max_threads

#include <algorithm>  // std::min, std::fill
#include <memory>     // std::unique_ptr
#include <type_traits>

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

namespace {

// The column buffers of one chunk of samples stay below this size (one sample at least).
constexpr int64_t kMaxColumnBytes = int64_t(256) << 20;

// Sizes derived from a Conv2dShape.
struct Geometry {
  explicit Geometry(const Conv2dShape& s)
      : cig(s.c_in / s.groups),
        cog(s.c_out / s.groups),
        hw(s.h_out * s.w_out),
        k_group(cig * s.kh * s.kw),
        k_all(s.c_in * s.kh * s.kw),
        in_sample(s.c_in * s.h * s.w),
        out_sample(s.c_out * hw),
        pointwise(s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
                  s.pad_w == 0) {}
  int64_t cig, cog;    // channels per group, in and out
  int64_t hw;          // output pixels per channel
  int64_t k_group;     // rows of one group's column block (the GEMM's inner dimension)
  int64_t k_all;       // rows of a whole column matrix
  int64_t in_sample;   // elements of one sample of x
  int64_t out_sample;  // elements of one sample of y
  bool pointwise;      // x_n is already its own column matrix
};

// How many samples are unfolded at once: one per thread, within kMaxColumnBytes.
int64_t samples_per_chunk(const Conv2dShape& s, const Geometry& g, size_t element_size) {
  const int64_t per_sample = g.k_all * g.hw * static_cast<int64_t>(element_size);
  const int64_t by_memory =
      std::max<int64_t>(1, kMaxColumnBytes / std::max<int64_t>(per_sample, 1));
  return std::min<int64_t>({s.n, static_cast<int64_t>(omp_get_max_threads()), by_memory});
}

// The outputs j in [0, count) whose input index j*stride + offset lies in [0, size).
struct Span {
  int64_t begin, end;
};
Span valid_outputs(int64_t offset, int64_t stride, int64_t size, int64_t count) {
  const int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last_input = size - 1 - offset;  // j*stride must not exceed this
  const int64_t end = last_input < 0 ? 0 : std::min(count, last_input / stride + 1);
  return {std::min(begin, end), end};
}

// The column rows of one input channel c (kh*kw rows of hw each) from x_n[c]; or, when `fold`,
// the reverse: those rows added onto x_n[c] (which the caller has zeroed).
template <typename T, bool fold>
void unfold_channel(const Conv2dShape& s, int64_t hw, const T* x_channel, T* rows, T* dx_channel) {
  for (int64_t p = 0; p < s.kh; ++p) {
    for (int64_t q = 0; q < s.kw; ++q) {
      T* row = rows + (p * s.kw + q) * hw;
      const int64_t row_offset = p * s.dilation_h - s.pad_h;
      const int64_t col_offset = q * s.dilation_w - s.pad_w;
      const Span cols = valid_outputs(col_offset, s.stride_w, s.w, s.w_out);
      for (int64_t i = 0; i < s.h_out; ++i) {
        T* out = row + i * s.w_out;
        const int64_t input_row = i * s.stride_h + row_offset;
        const bool row_inside = input_row >= 0 && input_row < s.h;
        const int64_t base = input_row * s.w + col_offset;  // input index of output j = 0
        if constexpr (fold) {
          if (!row_inside) continue;
          for (int64_t j = cols.begin; j < cols.end; ++j)
            dx_channel[base + j * s.stride_w] += out[j];
        } else {
          if (!row_inside) {
            std::fill(out, out + s.w_out, T(0));
            continue;
          }
          std::fill(out, out + cols.begin, T(0));
          for (int64_t j = cols.begin; j < cols.end; ++j) out[j] = x_channel[base + j * s.stride_w];
          std::fill(out + cols.end, out + s.w_out, T(0));
        }
      }
    }
  }
}

// im2col of `count` consecutive samples of x into `columns` (one column matrix each).
template <typename T>
void im2col(const Conv2dShape& s, const Geometry& g, const T* x, int64_t count, T* columns) {
  const int64_t channel_in = s.h * s.w, channel_rows = s.kh * s.kw * g.hw;
#pragma omp parallel for collapse(2) schedule(static) if (count * g.k_all * g.hw >= kParallelGrain)
  for (int64_t b = 0; b < count; ++b)
    for (int64_t c = 0; c < s.c_in; ++c)
      unfold_channel<T, false>(s, g.hw, x + b * g.in_sample + c * channel_in,
                               columns + b * g.k_all * g.hw + c * channel_rows, nullptr);
}

// col2im: dx of `count` consecutive samples from their column gradients (dx is overwritten).
// Each (sample, channel) writes only its own channel of dx, so they run in parallel.
template <typename T>
void col2im(const Conv2dShape& s, const Geometry& g, T* columns, int64_t count, T* dx) {
  const int64_t channel_in = s.h * s.w, channel_rows = s.kh * s.kw * g.hw;
#pragma omp parallel for collapse(2) schedule(static) if (count * g.k_all * g.hw >= kParallelGrain)
  for (int64_t b = 0; b < count; ++b) {
    for (int64_t c = 0; c < s.c_in; ++c) {
      T* dx_channel = dx + b * g.in_sample + c * channel_in;
      std::fill(dx_channel, dx_channel + channel_in, T(0));
      unfold_channel<T, true>(s, g.hw, nullptr, columns + b * g.k_all * g.hw + c * channel_rows,
                              dx_channel);
    }
  }
}

// C (m x n, ld ldc) = op(A) (m x k) . op(B) (k x n) + beta * C, row-major, through OpenBLAS.
template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// Column buffers for one chunk of samples (none for a pointwise convolution). Not zeroed:
// im2col writes every element.
template <typename T>
std::unique_ptr<T[]> column_buffer(const Geometry& g, int64_t chunk) {
  if (g.pointwise) return nullptr;
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(chunk * g.k_all * g.hw)]);
}

}  // namespace

void conv2d(DType dtype, const Conv2dShape& s, const void* x_ptr, const void* w_ptr,
            const void* bias_ptr, void* y_ptr, bool /*allow_tf32: CUDA only*/, Stream) {
  dispatch<float, double>(dtype, "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_ptr);
    const T* w = static_cast<const T*>(w_ptr);
    const T* bias = static_cast<const T*>(bias_ptr);
    T* y = static_cast<T*>(y_ptr);
    const Geometry g(s);
    // With a bias, y starts as the bias and the GEMMs add onto it.
    if (bias) {
#pragma omp parallel for schedule(static) if (s.n * g.out_sample >= kParallelGrain)
      for (int64_t row = 0; row < s.n * s.c_out; ++row)
        std::fill(y + row * g.hw, y + (row + 1) * g.hw, bias[row % s.c_out]);
    }
    const T beta = bias ? T(1) : T(0);
    const int64_t chunk = samples_per_chunk(s, g, sizeof(T));
    std::unique_ptr<T[]> columns = column_buffer<T>(g, chunk);
    for (int64_t first = 0; first < s.n; first += chunk) {
      const int64_t count = std::min(chunk, s.n - first);
      if (!g.pointwise) im2col(s, g, x + first * g.in_sample, count, columns.get());
      for (int64_t b = 0; b < count; ++b) {
        const int64_t n = first + b;
        const T* col = g.pointwise ? x + n * g.in_sample : columns.get() + b * g.k_all * g.hw;
        for (int64_t group = 0; group < s.groups; ++group)
          gemm<T>(false, false, g.cog, g.hw, g.k_group, w + group * g.cog * g.k_group, g.k_group,
                  col + group * g.k_group * g.hw, g.hw, beta,
                  y + n * g.out_sample + group * g.cog * g.hw, g.hw);
      }
    }
  });
}

void conv2d_backward_data(DType dtype, const Conv2dShape& s, const void* dy_ptr, const void* w_ptr,
                          void* dx_ptr, bool /*allow_tf32*/, Stream) {
  dispatch<float, double>(dtype, "conv2d_backward_data", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = static_cast<const T*>(dy_ptr);
    const T* w = static_cast<const T*>(w_ptr);
    T* dx = static_cast<T*>(dx_ptr);
    const Geometry g(s);
    const int64_t chunk = samples_per_chunk(s, g, sizeof(T));
    std::unique_ptr<T[]> columns = column_buffer<T>(g, chunk);
    for (int64_t first = 0; first < s.n; first += chunk) {
      const int64_t count = std::min(chunk, s.n - first);
      for (int64_t b = 0; b < count; ++b) {
        const int64_t n = first + b;
        // A pointwise convolution's column gradient is dx_n itself.
        T* dcol = g.pointwise ? dx + n * g.in_sample : columns.get() + b * g.k_all * g.hw;
        for (int64_t group = 0; group < s.groups; ++group)
          gemm<T>(true, false, g.k_group, g.hw, g.cog, w + group * g.cog * g.k_group, g.k_group,
                  dy + n * g.out_sample + group * g.cog * g.hw, g.hw, T(0),
                  dcol + group * g.k_group * g.hw, g.hw);
      }
      if (!g.pointwise) col2im(s, g, columns.get(), count, dx + first * g.in_sample);
    }
  });
}

void conv2d_backward_filter(DType dtype, const Conv2dShape& s, const void* x_ptr,
                            const void* dy_ptr, void* dw_ptr, void* db_ptr, bool /*allow_tf32*/,
                            Stream) {
  dispatch<float, double>(dtype, "conv2d_backward_filter", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_ptr);
    const T* dy = static_cast<const T*>(dy_ptr);
    T* dw = static_cast<T*>(dw_ptr);
    T* db = static_cast<T*>(db_ptr);
    const Geometry g(s);
    if (dw) {
      const int64_t chunk = samples_per_chunk(s, g, sizeof(T));
      std::unique_ptr<T[]> columns = column_buffer<T>(g, chunk);
      for (int64_t first = 0; first < s.n; first += chunk) {
        const int64_t count = std::min(chunk, s.n - first);
        if (!g.pointwise) im2col(s, g, x + first * g.in_sample, count, columns.get());
        for (int64_t b = 0; b < count; ++b) {
          const int64_t n = first + b;
          const T* col = g.pointwise ? x + n * g.in_sample : columns.get() + b * g.k_all * g.hw;
          const T beta = n == 0 ? T(0) : T(1);  // the first sample overwrites, the rest add
          for (int64_t group = 0; group < s.groups; ++group)
            gemm<T>(false, true, g.cog, g.k_group, g.hw,
                    dy + n * g.out_sample + group * g.cog * g.hw, g.hw,
                    col + group * g.k_group * g.hw, g.hw, beta, dw + group * g.cog * g.k_group,
                    g.k_group);
        }
      }
    }
    if (db) {
#pragma omp parallel for schedule(static) if (s.n * g.out_sample >= kParallelGrain)
      for (int64_t o = 0; o < s.c_out; ++o) {
        double total = 0;
        for (int64_t n = 0; n < s.n; ++n) {
          const T* plane = dy + n * g.out_sample + o * g.hw;
          for (int64_t i = 0; i < g.hw; ++i) total += plane[i];
        }
        db[o] = static_cast<T>(total);
      }
    }
  });
}

}  // namespace ember::cpu
