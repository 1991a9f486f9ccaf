// The contract between the engine and its two backends.
//
// Every kernel has one signature, shared by the CPU reference (kernels/cpu/FAMILY.cpp, in
// namespace ember::cpu) and the CUDA version (kernels/cuda/FAMILY.cu, in ember::cuda). Each
// backend fills a KernelTable with pointers to its functions; the engine picks the table of a
// tensor's device and calls through it (engine/runtime.h). That table is the only way the
// engine reaches CUDA code, which is why `make CUDA=0` needs no CUDA toolkit at all.
//
// Kernels are leaves: raw pointers, sizes and a stream in; no Tensor, no autograd, no
// allocation visible to the caller. Unless a comment says otherwise, pointers are to dense
// (contiguous, row-major) buffers of the given dtype, and the CUDA versions run asynchronously
// on `stream` (the CPU ignores it). Arithmetic kernels accept f32 and f64 on the CPU and f32 on
// CUDA; the engine checks dtypes and devices before calling, so kernels may assume them.
//
// Many kernels see their input as a 3-d block [outer, axis, inner]: a contiguous tensor with
// the dimension being reduced/normalized/indexed in the middle. For a tensor of shape
// [2, 5, 3, 4] and dim 1: outer = 2, axis = 5, inner = 12.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include "engine/dtype.h"  // DType

namespace ember::kernels {

using Stream = void*;  // cudaStream_t on CUDA, nullptr on the CPU

// ---- strided iteration ----------------------------------------------------------------------
// Elementwise kernels that read tensors in any layout (broadcast, transposed, sliced) iterate
// over `shape` in row-major order; each operand brings its own element strides over that shape
// (stride 0 along a broadcast dimension). The engine merges dimensions where it can, so ndim is
// usually 1 or 2.
constexpr int kMaxDims = 8;
struct IterShape {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= size[d];
    return n;
  }
};
struct Strides {
  int64_t v[kMaxDims] = {};
};
// Row-major strides of a dense buffer over `shape` (how kernels address their outputs).
inline Strides dense_strides(const IterShape& shape) {
  Strides s;
  int64_t step = 1;
  for (int d = shape.ndim - 1; d >= 0; --d) {
    s.v[d] = step;
    step *= shape.size[d];
  }
  return s;
}

// ---- operation codes ------------------------------------------------------------------------
// Unary y = f(x), with up to two scalar parameters (alpha, beta).
enum class UnaryOp : int {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Relu,
  GeluErf,   // x * Phi(x), Phi the normal CDF through erf
  GeluTanh,  // PyTorch's approximate="tanh"
  Sigmoid,
  Tanh,
  PowScalar,  // x ^ alpha
  Clamp,      // min(max(x, alpha), beta); -inf/+inf leave a side open
  AddScalar,  // x + alpha
  MulScalar,  // x * alpha
};
// Binary out = a (op) b. Comparisons (Eq..Ge) write u8 0/1; the rest write the input dtype.
enum class BinaryOp : int { Add, Sub, Mul, Div, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
constexpr bool is_comparison(BinaryOp op) {
  return op >= BinaryOp::Eq;
}
enum class ReduceOp : int { Sum, Mean, Max, Min };
enum class ArgReduceOp : int { Max, Min };

// One operand of a (batched) matrix product, in row-major terms: the matrix as stored has
// leading dimension `ld` (elements between rows); if `transpose`, the stored matrix is the
// transpose of the operand. Batch b starts at ptr + b * batch_stride (0 broadcasts one matrix).
struct GemmOperand {
  const void* ptr = nullptr;
  bool transpose = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// ---- kernel signatures ----------------------------------------------------------------------
// copy.{cpp,cu}: memory
// dst[i] = cast(src[i]) over `shape`, each side with its own strides; any dtype pair.
using CopyFn = void(const IterShape& shape, DType src_dtype, const void* src,
                    const Strides& src_strides, DType dst_dtype, void* dst,
                    const Strides& dst_strides, Stream stream);
// dst[0..n) = value (any dtype; value is converted).
using FillFn = void(DType dtype, void* dst, int64_t n, double value, Stream stream);
// dst[i] = start + i * step (any dtype but the 16-bit floats).
using ArangeFn = void(DType dtype, void* dst, int64_t n, double start, double step, Stream stream);

// elementwise.{cpp,cu}
using UnaryFn = void(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha,
                     double beta, Stream stream);
// dx = dy * f'(x). y = f(x) is passed as well (sigmoid, tanh, exp use it); may be unused.
using UnaryBackwardFn = void(UnaryOp op, DType dtype, int64_t n, const void* x, const void* y,
                             const void* dy, void* dx, double alpha, double beta, Stream stream);
// out (dense over shape) = a (op) b. Arithmetic: f32/f64 and i32/i64; comparisons: any dtype.
using BinaryFn = void(BinaryOp op, DType dtype, const IterShape& shape, const void* a,
                      const Strides& a_strides, const void* b, const Strides& b_strides, void* out,
                      Stream stream);
// out (dense over shape) = cond ? a : b; cond is u8, a/b/out of `dtype` (any dtype).
using WhereFn = void(DType dtype, const IterShape& shape, const uint8_t* cond,
                     const Strides& cond_strides, const void* a, const Strides& a_strides,
                     const void* b, const Strides& b_strides, void* out, Stream stream);

// reduce.{cpp,cu}: x is [outer, axis, inner], outputs are [outer, inner] (topk: [outer, k, inner])
// Sum of integers writes i64 (out_dtype), everything else writes the input dtype. Mean of an
// empty axis is NaN; Max/Min of an empty axis is an error the engine reports before calling.
using ReduceFn = void(ReduceOp op, DType dtype, DType out_dtype, const void* x, void* y,
                      int64_t outer, int64_t axis, int64_t inner, Stream stream);
// Index (i64) of the first maximum/minimum along the axis, and optionally its value (`values`
// may be null). A NaN wins (the first NaN along the axis), as in PyTorch; so do Reduce Max/Min.
using ArgReduceFn = void(ArgReduceOp op, DType dtype, const void* x, void* values, int64_t* indices,
                         int64_t outer, int64_t axis, int64_t inner, Stream stream);
// Variance along the axis: sum((x - mean)^2) / (axis - correction).
using VarianceFn = void(DType dtype, const void* x, void* y, int64_t outer, int64_t axis,
                        int64_t inner, double correction, Stream stream);
// The k largest (or smallest) entries along the axis, sorted, ties broken by lower index.
using TopkFn = void(DType dtype, const void* x, void* values, int64_t* indices, int64_t outer,
                    int64_t axis, int64_t inner, int64_t k, bool largest, Stream stream);

// matmul.{cpp,cu}: for b in [0, batch): C_b (m x n, row-major, leading dim ldc)
//   = alpha * op(A_b) (m x k) * op(B_b) (k x n) + beta * C_b.
// beta = 0 means C is write-only (never read). allow_tf32 lets CUDA use TF32 tensor cores.
using GemmFn = void(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                    const GemmOperand& a, const GemmOperand& b, double beta, void* c, int64_t ldc,
                    int64_t c_batch_stride, bool allow_tf32, Stream stream);

// softmax.{cpp,cu}: x, y are [outer, axis, inner]
using SoftmaxFn = void(DType dtype, const void* x, void* y, int64_t outer, int64_t axis,
                       int64_t inner, bool log, Stream stream);
// From the forward output y: softmax dx = y * (dy - sum(dy * y)); log-softmax
// dx = dy - exp(y) * sum(dy).
using SoftmaxBackwardFn = void(DType dtype, const void* y, const void* dy, void* dx, int64_t outer,
                               int64_t axis, int64_t inner, bool log, Stream stream);
// Fused log-softmax + negative log-likelihood over rows of logits [n, c] with i64 targets [n].
// With label smoothing s the target distribution is (1 - s) * onehot + s / c.
// loss[i] is row i's loss (0 where target == ignore_index); logsumexp[i] is kept for backward.
// The engine validates targets before calling; CUDA writes NaN for a target out of range.
using CrossEntropyFn = void(DType dtype, const void* logits, const int64_t* target, void* loss,
                            void* logsumexp, int64_t n, int64_t c, double label_smoothing,
                            int64_t ignore_index, Stream stream);
// dlogits[i] = (softmax(logits[i]) - target_distribution[i]) * grad_loss[i]; zero rows where
// target == ignore_index.
using CrossEntropyBackwardFn = void(DType dtype, const void* logits, const int64_t* target,
                                    const void* logsumexp, const void* grad_loss, void* grad_logits,
                                    int64_t n, int64_t c, double label_smoothing,
                                    int64_t ignore_index, Stream stream);

// index.{cpp,cu}: indices are i64 and already checked to lie in range.
// y[o, j, i] = x[o, index[j], i];  x is [outer, axis, inner], y is [outer, n_index, inner]
using IndexSelectFn = void(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer,
                           int64_t axis, int64_t inner, int64_t n_index, Stream stream);
// dx[o, index[j], i] += dy[o, j, i]  (dx already holds its starting values; repeats accumulate)
using IndexAddFn = void(DType dtype, const void* dy, const int64_t* index, void* dx, int64_t outer,
                        int64_t axis, int64_t inner, int64_t n_index, Stream stream);
// y[o, j, i] = x[o, index[o, j, i], i];  x is [outer, axis, inner], index and y [outer, n, inner]
using GatherFn = void(DType dtype, const void* x, const int64_t* index, void* y, int64_t outer,
                      int64_t axis, int64_t inner, int64_t n, Stream stream);
// dx[o, index[o, j, i], i] += dy[o, j, i]
using ScatterAddFn = void(DType dtype, const void* dy, const int64_t* index, void* dx,
                          int64_t outer, int64_t axis, int64_t inner, int64_t n, Stream stream);

// random.{cpp,cu}: counter-based Philox4x32-10 (kernels/philox.h). Element i draws from the
// stream of 32-bit words that starts at word `offset` of the generator keyed by `seed`, so the
// numbers depend on (seed, offset, i) alone: the same on the CPU and on CUDA.
using RandomUniformFn = void(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset,
                             double low, double high, Stream stream);
using RandomNormalFn = void(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset,
                            double mean, double std, Stream stream);
// Inverted dropout: mask[i] = (u_i >= p) / (1 - p), y = x * mask, with u_i the uniform numbers
// random_uniform would draw for (seed, offset).
using DropoutFn = void(DType dtype, const void* x, void* y, void* mask, int64_t n, double p,
                       uint64_t seed, uint64_t offset, Stream stream);

// conv.{cpp,cu}: 2-d convolution, NCHW, dense. As in PyTorch it is a cross-correlation:
//   y[n, g*cog + o, i, j] = bias[g*cog + o] + sum over c < cig, p < kh, q < kw of
//       w[g*cog + o, c, p, q] * x[n, g*cig + c, i*stride_h - pad_h + p*dilation_h,
//                                             j*stride_w - pad_w + q*dilation_w]
// with cig = c_in / groups, cog = c_out / groups, and x read as 0 outside [0, h) x [0, w).
// x is [n, c_in, h, w], w is [c_out, c_in / groups, kh, kw], y is [n, c_out, h_out, w_out].
// The engine checks the shape (every size >= 1, groups dividing both channel counts, h_out and
// w_out as in engine/ops_conv.cpp) before calling. allow_tf32 lets CUDA use TF32 tensor cores.
struct Conv2dShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  int64_t h_out = 0, w_out = 0;
};
// y = conv(x, w) (+ bias, [c_out], when not null).
using Conv2dFn = void(DType dtype, const Conv2dShape& shape, const void* x, const void* w,
                      const void* bias, void* y, bool allow_tf32, Stream stream);
// dx = the gradient of x from dy (the transposed convolution of dy with w); dx is write-only.
using Conv2dBackwardDataFn = void(DType dtype, const Conv2dShape& shape, const void* dy,
                                  const void* w, void* dx, bool allow_tf32, Stream stream);
// dw = the gradient of w (x correlated with dy, summed over the batch) and db[o] = the sum of
// dy over n, i, j. Either output may be null (not wanted), not both; both are write-only. x is
// read only for dw (it may be null when dw is).
using Conv2dBackwardFilterFn = void(DType dtype, const Conv2dShape& shape, const void* x,
                                    const void* dy, void* dw, void* db, bool allow_tf32,
                                    Stream stream);

// pool.{cpp,cu}: 2-d pooling of dense NCHW planes
// x (or dx) is [planes, in_h, in_w] with planes = N * C; y, dy and indices are
// [planes, out_h, out_w]. Output (oh, ow) pools the window of input rows
//   oh * stride_h - pad_h + i * dilation_h,   i in [0, kernel_h)
// and the columns given the same way by the _w fields. Positions outside the input are
// padding. The engine has checked the geometry (engine/ops_pool.cpp). Backward kernels write
// all of dx (nothing is accumulated into what it held).
struct Pool2dGeometry {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max-pooling only: average pooling reads 1
};
// y = the window's maximum, padding counting as -inf; indices = where it is, as ih * in_w + iw
// within the plane. The first maximum wins, except that a NaN beats everything (the last NaN
// in the window), as in PyTorch. A window that misses the input altogether (possible only with
// dilation) gives -inf and index -1.
using MaxPool2dFn = void(DType dtype, const Pool2dGeometry& geometry, const void* x, void* y,
                         int64_t* indices, Stream stream);
// dx[plane, p] = sum of dy[plane, o] over the outputs o with indices[plane, o] == p (0 if none).
using MaxPool2dBackwardFn = void(DType dtype, const Pool2dGeometry& geometry, const void* dy,
                                 const int64_t* indices, void* dx, Stream stream);
// y = sum of the window's inputs / divisor, with PyTorch's divisor: divisor_override if not 0;
// else the window clipped to the padded input [-pad, in + pad) (it can overhang it in ceil
// mode) if count_include_pad; else the number of input positions in the window.
using AvgPool2dFn = void(DType dtype, const Pool2dGeometry& geometry, bool count_include_pad,
                         int64_t divisor_override, const void* x, void* y, Stream stream);
// dx[p] = sum over the windows w that hold input position p of dy[w] / divisor(w).
using AvgPool2dBackwardFn = void(DType dtype, const Pool2dGeometry& geometry,
                                 bool count_include_pad, int64_t divisor_override, const void* dy,
                                 void* dx, Stream stream);
// Adaptive average pooling reads only planes, in_h/in_w and out_h/out_w of the geometry: output
// row oh averages input rows [floor(oh * in_h / out_h), ceil((oh + 1) * in_h / out_h)), and
// columns likewise; neighbouring windows may share a row or column. (Its backward's table entry
// is adaptive_avg_backward: a name short enough for the column of EMBER_KERNEL_TABLE.)
using AdaptiveAvgPool2dFn = void(DType dtype, const Pool2dGeometry& geometry, const void* x,
                                 void* y, Stream stream);
using AdaptiveAvgPool2dBackwardFn = void(DType dtype, const Pool2dGeometry& geometry,
                                         const void* dy, void* dx, Stream stream);

// norm.{cpp,cu}: batch, group and layer normalization (section filled by the norm kernels)
// x is [outer, channels, inner]; weight and bias (gamma, beta; each may be null) hold one value
// per channel. Which elements share a mean and variance (a "statistic") is NormLayout::over:
//   Batch: one per channel c, over the outer * inner elements x[:, c, :]: batch norm, x seen as
//          [N, C, H*W]. Statistic s is channel s.
//   Group: one per (o, group), over the (channels / groups) * inner elements of that group's
//          channels in x[o], which lie together in memory: group norm ([N, C, H*W], G groups)
//          and layer norm ([rows, normalized size, 1], 1 group). Statistic s = o * groups + group.
enum class NormOver : int { Batch, Group };
struct NormLayout {
  NormOver over = NormOver::Batch;
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t groups = 1;  // Group only; divides channels
  constexpr int64_t statistics() const {
    return over == NormOver::Batch ? channels : outer * groups;
  }
  constexpr int64_t elements_per_statistic() const {
    return over == NormOver::Batch ? outer * inner : channels / groups * inner;
  }
};
// Per statistic: mean and invstd = 1 / sqrt(var + eps), var the biased variance (divided by
// the element count), accumulated in double; also var itself where `variance` is not null.
using NormStatisticsFn = void(DType dtype, const NormLayout& layout, const void* x, void* mean,
                              void* invstd, void* variance, double eps, Stream stream);
// y = (x - mean[s]) * invstd[s] * weight[c] + bias[c]  (a null weight is 1, a null bias 0)
using NormForwardFn = void(DType dtype, const NormLayout& layout, const void* x, const void* mean,
                           const void* invstd, const void* weight, const void* bias, void* y,
                           Stream stream);
// From dy, with xhat = (x - mean[s]) * invstd[s] and g = dy * weight[c]:
//   dbias[c] = sum of dy, dweight[c] = sum of dy * xhat, both over x[:, c, :];
//   dx = invstd * (g - mean_s(g) - xhat * mean_s(g * xhat)) when mean and invstd are the
//        statistics of x itself (through_statistics: training), means over statistic s;
//   dx = invstd * g when they are fixed (batch norm in evaluation mode).
// Each of dx, dweight, dbias may be null (not wanted).
using NormBackwardFn = void(DType dtype, const NormLayout& layout, const void* x, const void* dy,
                            const void* mean, const void* invstd, const void* weight,
                            bool through_statistics, void* dx, void* dweight, void* dbias,
                            Stream stream);

// optim.{cpp,cu}: fused optimizer updates over dense spans (section filled by the optimizers)
// One call updates n elements of a dense span: a parameter, or several parameters that lie back
// to back in one storage (a flat model), with its gradient and state buffers laid out the same
// way. State buffers are read and written in place. The per-element formulas (PyTorch's, in
// PyTorch's order of operations) are kernels/optim_math.h; layers/sgd.h and layers/adam.h give
// the equations. Scalars arrive in double and are rounded to the dtype once, as PyTorch does
// with a Python float.
struct SgdHyperparameters {
  double lr = 0;
  double momentum = 0;  // 0: no momentum buffer (momentum_buffer may be null)
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
  bool first_step = false;  // the momentum buffer is new: it becomes the gradient, undampened
};
using SgdStepFn = void(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buffer,
                       const SgdHyperparameters& h, Stream stream);
struct AdamHyperparameters {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;  // max_exp_avg_sq is used (null otherwise)
  bool maximize = false;
  bool decoupled_weight_decay = false;  // AdamW: param *= 1 - lr * weight_decay; grad untouched
  int64_t step = 1;                     // this update's number, from 1: the bias corrections
};
using AdamStepFn = void(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg,
                        void* exp_avg_sq, void* max_exp_avg_sq, const AdamHyperparameters& h,
                        Stream stream);

struct KernelTable {
  CopyFn* copy;
  FillFn* fill;
  ArangeFn* arange;
  UnaryFn* unary;
  UnaryBackwardFn* unary_backward;
  BinaryFn* binary;
  WhereFn* where;
  ReduceFn* reduce;
  ArgReduceFn* arg_reduce;
  VarianceFn* variance;
  TopkFn* topk;
  GemmFn* gemm;
  SoftmaxFn* softmax;
  SoftmaxBackwardFn* softmax_backward;
  CrossEntropyFn* cross_entropy;
  CrossEntropyBackwardFn* cross_entropy_backward;
  IndexSelectFn* index_select;
  IndexAddFn* index_add;
  GatherFn* gather;
  ScatterAddFn* scatter_add;
  RandomUniformFn* random_uniform;
  RandomNormalFn* random_normal;
  DropoutFn* dropout;
  // conv
  Conv2dFn* conv2d;
  Conv2dBackwardDataFn* conv2d_backward_data;
  Conv2dBackwardFilterFn* conv2d_backward_filter;

  // pool
  MaxPool2dFn* max_pool2d;
  MaxPool2dBackwardFn* max_pool2d_backward;
  AvgPool2dFn* avg_pool2d;
  AvgPool2dBackwardFn* avg_pool2d_backward;
  AdaptiveAvgPool2dFn* adaptive_avg_pool2d;
  AdaptiveAvgPool2dBackwardFn* adaptive_avg_backward;

  // norm
  NormStatisticsFn* norm_statistics;
  NormForwardFn* norm_forward;
  NormBackwardFn* norm_backward;

  // optim
  SgdStepFn* sgd_step;
  AdamStepFn* adam_step;
};

// A backend's KernelTable from the functions of its namespace (named as the entries are):
//   static const KernelTable table = EMBER_KERNEL_TABLE(ember::cpu);
#define EMBER_KERNEL_TABLE(ns)                             \
  [] {                                                     \
    ::ember::kernels::KernelTable t{};                     \
    t.copy = ns::copy;                                     \
    t.fill = ns::fill;                                     \
    t.arange = ns::arange;                                 \
    t.unary = ns::unary;                                   \
    t.unary_backward = ns::unary_backward;                 \
    t.binary = ns::binary;                                 \
    t.where = ns::where;                                   \
    t.reduce = ns::reduce;                                 \
    t.arg_reduce = ns::arg_reduce;                         \
    t.variance = ns::variance;                             \
    t.topk = ns::topk;                                     \
    t.gemm = ns::gemm;                                     \
    t.softmax = ns::softmax;                               \
    t.softmax_backward = ns::softmax_backward;             \
    t.cross_entropy = ns::cross_entropy;                   \
    t.cross_entropy_backward = ns::cross_entropy_backward; \
    t.index_select = ns::index_select;                     \
    t.index_add = ns::index_add;                           \
    t.gather = ns::gather;                                 \
    t.scatter_add = ns::scatter_add;                       \
    t.random_uniform = ns::random_uniform;                 \
    t.random_normal = ns::random_normal;                   \
    t.dropout = ns::dropout;                               \
    /* conv */                                             \
    t.conv2d = ns::conv2d;                                 \
    t.conv2d_backward_data = ns::conv2d_backward_data;     \
    t.conv2d_backward_filter = ns::conv2d_backward_filter; \
                                                           \
    /* pool */                                             \
    t.max_pool2d = ns::max_pool2d;                         \
    t.max_pool2d_backward = ns::max_pool2d_backward;       \
    t.avg_pool2d = ns::avg_pool2d;                         \
    t.avg_pool2d_backward = ns::avg_pool2d_backward;       \
    t.adaptive_avg_pool2d = ns::adaptive_avg_pool2d;       \
    t.adaptive_avg_backward = ns::adaptive_avg_backward;   \
                                                           \
    /* norm */                                             \
    t.norm_statistics = ns::norm_statistics;               \
    t.norm_forward = ns::norm_forward;                     \
    t.norm_backward = ns::norm_backward;                   \
                                                           \
    /* optim */                                            \
    t.sgd_step = ns::sgd_step;                             \
    t.adam_step = ns::adam_step;                           \
                                                           \
    return t;                                              \
  }()

// ---- the device runtime: memory, copies, streams --------------------------------------------
struct MemoryStats {
  int64_t current_bytes = 0;       // bytes held by live tensors
  int64_t peak_bytes = 0;          // the most current_bytes has been since the last reset
  int64_t reserved_bytes = 0;      // bytes obtained from the device (live + cached)
  int64_t device_allocations = 0;  // real allocations from the device (cudaMalloc calls)
  int64_t device_frees = 0;        // real frees back to the device
};

struct DeviceProperties {
  char name[256] = {};
  int compute_capability = 0;  // 90 for Hopper
  int multiprocessors = 0;
  int clock_khz = 0;  // the multiprocessors' maximum clock
  int64_t total_memory = 0;
  double peak_bandwidth_gbs = 0;  // from the memory clock and bus width, when the device says
};

enum class CopyKind : int { HostToDevice, DeviceToHost, DeviceToDevice };

struct DeviceRuntime {
  // Number of usable devices; 0 (never an error) when there is no GPU or driver.
  int (*device_count)();
  // Why device_count() is 0, for the one-line note programs print ("" when devices exist).
  const char* (*unavailable_reason)();
  void (*set_device)(int device);
  DeviceProperties (*properties)(int device);
  // Memory from the device's caching allocator; deallocate returns it to the cache.
  void* (*allocate)(int device, size_t bytes);
  void (*deallocate)(int device, void* ptr);
  MemoryStats (*memory_stats)(int device);
  void (*reset_peak)(int device);
  void (*empty_cache)(int device);  // give cached blocks back to the device
  // Copies of raw bytes on the device's stream; to or from the host they complete before
  // returning (the host memory may be pageable).
  void (*copy_bytes)(int device, CopyKind kind, void* dst, const void* src, size_t bytes);
  Stream (*stream)(int device);  // the device's default stream
  void (*synchronize)(int device);

  // -- asynchronous copies to the device (the DataLoader's): pinned memory, streams, events --
  // A copy can run on a stream of its own while the default stream computes, if its host memory
  // is pinned (page-locked: the copy engine reads it directly). An event marks a point in a
  // stream's queue; another stream can be made to wait for it without the host waiting. On the
  // CPU memory is plain, copies happen at once, streams and events are nullptr, and every event
  // is done.
  using Event = void*;  // cudaEvent_t on CUDA, nullptr on the CPU
  // Pinned host memory (cudaHostAlloc), freed with free_pinned; nullptr for 0 bytes.
  void* (*allocate_pinned)(int device, size_t bytes);
  void (*free_pinned)(int device, void* ptr);
  // A new stream that never waits for the default stream implicitly (non-blocking).
  Stream (*create_stream)(int device);
  // Work already queued on the stream still runs. Destroy functions never throw.
  void (*destroy_stream)(int device, Stream stream);
  // Queues a copy from pinned host memory to device memory on `stream` and returns at once:
  // `src` must stay unchanged until an event recorded after the copy is done.
  void (*copy_to_device_async)(int device, void* dst, const void* src, size_t bytes, Stream stream);
  Event (*create_event)(int device);
  void (*destroy_event)(int device, Event event);
  // The event is done once the work queued on `stream` so far has completed.
  void (*record_event)(int device, Event event, Stream stream);
  // Work queued on `stream` from now on starts after `event` is done; the host does not wait.
  void (*stream_wait_event)(int device, Stream stream, Event event);
  bool (*event_done)(int device, Event event);         // never recorded: true
  void (*synchronize_event)(int device, Event event);  // the host waits until it is done
};

// A backend's DeviceRuntime from the functions of its namespace, like EMBER_KERNEL_TABLE.
#define EMBER_DEVICE_RUNTIME(ns)                       \
  [] {                                                 \
    ::ember::kernels::DeviceRuntime r{};               \
    r.device_count = ns::device_count;                 \
    r.unavailable_reason = ns::unavailable_reason;     \
    r.set_device = ns::set_device;                     \
    r.properties = ns::properties;                     \
    r.allocate = ns::allocate;                         \
    r.deallocate = ns::deallocate;                     \
    r.memory_stats = ns::memory_stats;                 \
    r.reset_peak = ns::reset_peak;                     \
    r.empty_cache = ns::empty_cache;                   \
    r.copy_bytes = ns::copy_bytes;                     \
    r.stream = ns::stream;                             \
    r.synchronize = ns::synchronize;                   \
    r.allocate_pinned = ns::allocate_pinned;           \
    r.free_pinned = ns::free_pinned;                   \
    r.create_stream = ns::create_stream;               \
    r.destroy_stream = ns::destroy_stream;             \
    r.copy_to_device_async = ns::copy_to_device_async; \
    r.create_event = ns::create_event;                 \
    r.destroy_event = ns::destroy_event;               \
    r.record_event = ns::record_event;                 \
    r.stream_wait_event = ns::stream_wait_event;       \
    r.event_done = ns::event_done;                     \
    r.synchronize_event = ns::synchronize_event;       \
    return r;                                          \
  }()

}  // namespace ember::kernels
