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
// Threads (kernels/cpu/blas.h says why OpenBLAS itself runs single-threaded): with a sample
// for every thread, threads take whole samples, each unfolding one sample into its own column
// buffer and multiplying it at once, while it is still in cache; the filter gradient is summed
// per thread and the threads' sums are added in thread order. With fewer samples than threads
// (inference on one image), samples go one after another, the unfolding split over channels
// and each GEMM over blocks of its output.
#include <omp.h>  // omp_get_max_threads, omp_get_thread_num

#include <algorithm>  // std::min, std::clamp, std::fill, std::copy
#include <vector>

#include "kernels/cpu/blas.h"          // gemm_on_this_thread, gemm_on_all_threads
#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch

namespace ember::cpu {

namespace {

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

// Whether the threads take whole samples each: not when there are fewer samples than threads,
// unless the whole convolution is too little work to be worth waking the other threads (then
// "all threads" is one).
bool whole_samples_per_thread(const Conv2dShape& s, const Geometry& g) {
  const int64_t work = s.n * g.out_sample * g.k_group;  // multiply-adds of one pass
  return s.n >= omp_get_max_threads() || work < kParallelGemmWork;
}
int sample_threads(const Conv2dShape& s, const Geometry& g) {
  const int64_t work = s.n * g.out_sample * g.k_group;
  return work < kParallelGemmWork ? 1 : omp_get_max_threads();
}

// A buffer of at least `count` elements owned by the calling thread and kept between calls, so
// that a training step allocates (and first-touches) no column buffers after its first step.
// `slot` tells apart the buffers one thread needs at once.
template <typename T, int slot>
T* thread_buffer(int64_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < static_cast<size_t>(count)) buffer.resize(static_cast<size_t>(count));
  return buffer.data();
}

// v[0] + ... + v[count - 1] in double. Eight running sums, added up at the end, rather than
// one: with one, each addition waits for the one before (the bias gradient of a convolution
// took milliseconds that way); eight independent ones keep the adders busy and vectorize.
template <typename T>
double sum_in_double(const T* v, int64_t count) {
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    for (int64_t lane = 0; lane < kLanes; ++lane) lanes[lane] += static_cast<double>(v[i + lane]);
  double total = 0;
  for (int64_t lane = 0; lane < kLanes; ++lane) total += lanes[lane];
  for (; i < count; ++i) total += static_cast<double>(v[i]);
  return total;
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

// One row of the column matrix (tap p, q of one channel) when the convolution has stride 1 and
// keeps the width (w_out == w, as a 3x3 with padding 1 does). Output pixel k = i*w + j then
// reads input element k + shift, shift = row_offset*w + col_offset: the row is the channel
// shifted by `shift`. So one long copy fills it (zeros where k + shift leaves the channel: the
// rows above or below), and only the pixels whose column fell off the left or right edge, and
// wrapped into the next input row, are zeroed afterwards. This replaces h_out copies of w
// elements each, whose calls cost more than the copying. When `fold`, the reverse: the row is
// added onto dx_channel (the row is a scratch buffer: its wrapped pixels are zeroed first).
template <typename T, bool fold>
void unfold_shifted_row(const Conv2dShape& s, int64_t hw, int64_t row_offset, int64_t col_offset,
                        const T* x_channel, T* row, T* dx_channel) {
  const int64_t shift = row_offset * s.w + col_offset;
  const int64_t begin = std::clamp<int64_t>(-shift, 0, hw);
  const int64_t end = std::clamp<int64_t>(s.h * s.w - shift, begin, hw);
  const Span cols = valid_outputs(col_offset, 1, s.w, s.w_out);
  // Column by column: a few pixels per row, which a row-by-row loop would zero with a call to
  // memset each.
  auto zero_wrapped_pixels = [&] {
    for (int64_t j = 0; j < cols.begin; ++j)
      for (int64_t i = 0; i < s.h_out; ++i) row[i * s.w_out + j] = T(0);
    for (int64_t j = cols.end; j < s.w_out; ++j)
      for (int64_t i = 0; i < s.h_out; ++i) row[i * s.w_out + j] = T(0);
  };
  if constexpr (fold) {
    zero_wrapped_pixels();
    for (int64_t k = begin; k < end; ++k) dx_channel[k + shift] += row[k];
  } else {
    std::fill(row, row + begin, T(0));
    std::copy(x_channel + shift + begin, x_channel + shift + end, row + begin);
    std::fill(row + end, row + hw, T(0));
    zero_wrapped_pixels();
  }
}

// The column rows of one input channel c (kh*kw rows of hw each) from x_n[c]; or, when `fold`,
// the reverse: those rows added onto x_n[c] (which the caller has zeroed).
template <typename T, bool fold>
void unfold_channel(const Conv2dShape& s, int64_t hw, const T* x_channel, T* rows, T* dx_channel) {
  const bool shifted_rows = s.stride_h == 1 && s.stride_w == 1 && s.w_out == s.w;
  for (int64_t p = 0; p < s.kh; ++p) {
    for (int64_t q = 0; q < s.kw; ++q) {
      T* row = rows + (p * s.kw + q) * hw;
      const int64_t row_offset = p * s.dilation_h - s.pad_h;
      const int64_t col_offset = q * s.dilation_w - s.pad_w;
      if (shifted_rows) {
        unfold_shifted_row<T, fold>(s, hw, row_offset, col_offset, x_channel, row, dx_channel);
        continue;
      }
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

// im2col of one sample x_n into `col`; its channels split over the threads when `parallel`.
template <typename T>
void im2col(const Conv2dShape& s, const Geometry& g, const T* x_n, T* col, bool parallel) {
  const int64_t channel_in = s.h * s.w, channel_rows = s.kh * s.kw * g.hw;
#pragma omp parallel for schedule(static) if (parallel && g.k_all * g.hw >= kParallelGrain)
  for (int64_t c = 0; c < s.c_in; ++c)
    unfold_channel<T, false>(s, g.hw, x_n + c * channel_in, col + c * channel_rows, nullptr);
}

// col2im: dx_n (overwritten) from one sample's column gradient; its channels split over the
// threads when `parallel` (each channel writes only its own part of dx_n).
template <typename T>
void col2im(const Conv2dShape& s, const Geometry& g, T* col, T* dx_n, bool parallel) {
  const int64_t channel_in = s.h * s.w, channel_rows = s.kh * s.kw * g.hw;
#pragma omp parallel for schedule(static) if (parallel && g.k_all * g.hw >= kParallelGrain)
  for (int64_t c = 0; c < s.c_in; ++c) {
    T* dx_channel = dx_n + c * channel_in;
    std::fill(dx_channel, dx_channel + channel_in, T(0));
    unfold_channel<T, true>(s, g.hw, nullptr, col + c * channel_rows, dx_channel);
  }
}

// The product each thread runs: on its own thread (threads share out samples), or split over all
// of them (samples go one after another).
template <typename T>
using Product = void (*)(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,
                         int64_t, T, T*, int64_t);

// y_n = W col_n (+ bias) for one sample; `product` is the GEMM to run.
template <typename T>
void forward_sample(const Conv2dShape& s, const Geometry& g, const T* x_n, const T* w,
                    const T* bias, T* y_n, bool parallel, Product<T> product) {
  const T* col = x_n;
  if (!g.pointwise) {
    T* buffer = thread_buffer<T, 0>(g.k_all * g.hw);
    im2col(s, g, x_n, buffer, parallel);
    col = buffer;
  }
  // With a bias, y_n starts as the bias and the GEMMs add onto it.
  if (bias)
    for (int64_t o = 0; o < s.c_out; ++o) std::fill(y_n + o * g.hw, y_n + (o + 1) * g.hw, bias[o]);
  for (int64_t group = 0; group < s.groups; ++group)
    product(false, false, g.cog, g.hw, g.k_group, T(1), w + group * g.cog * g.k_group, g.k_group,
            col + group * g.k_group * g.hw, g.hw, bias ? T(1) : T(0), y_n + group * g.cog * g.hw,
            g.hw);
}

// dx_n = col2im(W^T dy_n) for one sample.
template <typename T>
void backward_data_sample(const Conv2dShape& s, const Geometry& g, const T* dy_n, const T* w,
                          T* dx_n, bool parallel, Product<T> product) {
  // A pointwise convolution's column gradient is dx_n itself.
  T* dcol = g.pointwise ? dx_n : thread_buffer<T, 0>(g.k_all * g.hw);
  for (int64_t group = 0; group < s.groups; ++group)
    product(true, false, g.k_group, g.hw, g.cog, T(1), w + group * g.cog * g.k_group, g.k_group,
            dy_n + group * g.cog * g.hw, g.hw, T(0), dcol + group * g.k_group * g.hw, g.hw);
  if (!g.pointwise) col2im(s, g, dcol, dx_n, parallel);
}

// dw (+)= dy_n col_n^T for one sample: `accumulate` false overwrites dw.
template <typename T>
void backward_filter_sample(const Conv2dShape& s, const Geometry& g, const T* x_n, const T* dy_n,
                            T* dw, bool accumulate, bool parallel, Product<T> product) {
  const T* col = x_n;
  if (!g.pointwise) {
    T* buffer = thread_buffer<T, 0>(g.k_all * g.hw);
    im2col(s, g, x_n, buffer, parallel);
    col = buffer;
  }
  for (int64_t group = 0; group < s.groups; ++group)
    product(false, true, g.cog, g.k_group, g.hw, T(1), dy_n + group * g.cog * g.hw, g.hw,
            col + group * g.k_group * g.hw, g.hw, accumulate ? T(1) : T(0),
            dw + group * g.cog * g.k_group, g.k_group);
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
    const int threads = sample_threads(s, g);
    if (whole_samples_per_thread(s, g)) {  // whole samples per thread
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t n = 0; n < s.n; ++n)
        forward_sample<T>(s, g, x + n * g.in_sample, w, bias, y + n * g.out_sample, false,
                          gemm_on_this_thread<T>);
    } else {
      for (int64_t n = 0; n < s.n; ++n)
        forward_sample<T>(s, g, x + n * g.in_sample, w, bias, y + n * g.out_sample, true,
                          gemm_on_all_threads<T>);
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
    const int threads = sample_threads(s, g);
    if (whole_samples_per_thread(s, g)) {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t n = 0; n < s.n; ++n)
        backward_data_sample<T>(s, g, dy + n * g.out_sample, w, dx + n * g.in_sample, false,
                                gemm_on_this_thread<T>);
    } else {
      for (int64_t n = 0; n < s.n; ++n)
        backward_data_sample<T>(s, g, dy + n * g.out_sample, w, dx + n * g.in_sample, true,
                                gemm_on_all_threads<T>);
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
    const int64_t w_size = s.c_out * g.k_group;
    if (dw && s.n == 0) std::fill(dw, dw + w_size, T(0));
    const int threads = sample_threads(s, g);
    const bool whole_samples = dw && s.n > 0 && whole_samples_per_thread(s, g);
    if (whole_samples) {
      // Thread t sums samples [n t / threads, n (t + 1) / threads) into its own buffer (thread
      // 0 into dw itself); the buffers are then added onto dw in thread order, so the result
      // depends on the thread count but not on timing. The bias gradient is summed the same
      // way, per thread and in double, from each dy_n while the GEMM has it in cache (a pass
      // of its own read all of dy again from memory).
      std::vector<const T*> sums(static_cast<size_t>(threads), nullptr);
      std::vector<double> bias_sums(db ? static_cast<size_t>(threads * s.c_out) : 0, 0.0);
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        const int64_t begin = s.n * t / team, end = s.n * (t + 1) / team;
        T* sum = t == 0 ? dw : thread_buffer<T, 1>(w_size);
        for (int64_t n = begin; n < end; ++n) {
          const T* dy_n = dy + n * g.out_sample;
          backward_filter_sample<T>(s, g, x + n * g.in_sample, dy_n, sum, n > begin, false,
                                    gemm_on_this_thread<T>);
          if (db)
            for (int64_t o = 0; o < s.c_out; ++o)
              bias_sums[static_cast<size_t>(t * s.c_out + o)] +=
                  sum_in_double(dy_n + o * g.hw, g.hw);
        }
        if (t > 0 && end > begin) sums[static_cast<size_t>(t)] = sum;
      }
      for (const T* sum : sums)
        if (sum)
          for (int64_t i = 0; i < w_size; ++i) dw[i] += sum[i];
      for (int64_t o = 0; db && o < s.c_out; ++o) {
        double total = 0;
        for (int t = 0; t < threads; ++t) total += bias_sums[static_cast<size_t>(t * s.c_out + o)];
        db[o] = static_cast<T>(total);
      }
      return;
    }
    if (dw) {
      for (int64_t n = 0; n < s.n; ++n)
        backward_filter_sample<T>(s, g, x + n * g.in_sample, dy + n * g.out_sample, dw, n > 0, true,
                                  gemm_on_all_threads<T>);
    }
    if (db) {
#pragma omp parallel for schedule(static) if (s.n * g.out_sample >= kParallelGrain)
      for (int64_t o = 0; o < s.c_out; ++o) {
        double total = 0;
        for (int64_t n = 0; n < s.n; ++n)
          total += sum_in_double(dy + n * g.out_sample + o * g.hw, g.hw);
        db[o] = static_cast<T>(total);
      }
    }
  });
}

}  // namespace ember::cpu
