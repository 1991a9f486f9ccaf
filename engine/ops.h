// The differentiable ops. Each runs on the CPU and on CUDA through the same kernel table and
// records its backward rule when gradients are needed. Grouped as their files are:
//   ops_elementwise.cpp  unary math, broadcasting binary ops, comparisons, where, clamp, dropout
//   ops_reduce.cpp       sum, mean, max/min, argmax/argmin, var, topk, sum_to
//   ops_matmul.cpp       matmul (1-d, 2-d, batched with broadcasting)
//   ops_softmax.cpp      softmax, log_softmax, cross_entropy, nll_loss
//   ops_index.cpp        index_select, embedding, gather, cat, stack, split, chunk
// Views, dtype/device copies and creation live on Tensor (engine/tensor.h).
//
// Binary ops broadcast (numpy rules) and require equal dtypes and devices; the error names the
// op and both operands. Arithmetic on bf16/f16 arrives with mixed precision: convert to f32.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember {

class Generator;

// ---- unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
// approximate: "none" (x * Phi(x), through erf) or "tanh", as PyTorch's GELU.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
// min(max(x, lo), hi); pass -INFINITY / INFINITY to leave a side open.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor add(const Tensor& x, double value);   // x + value
Tensor mul(const Tensor& x, double factor);  // x * factor

// ---- binary, broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties split the gradient, as PyTorch
Tensor minimum(const Tensor& a, const Tensor& b);

// ---- comparisons (u8 results, not differentiable) and selection ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
// cond ? a : b, elementwise with broadcasting; cond is u8.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p);
// the identity when !training or p == 0. The mask comes from the Philox generator.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* generator = nullptr);

// ---- reductions ----
// Over `dims` (all dims when empty). Sums of integer tensors are i64.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, double correction = 1,
           bool keepdim = false);
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // i64
};
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // of all elements
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// The k largest (or smallest) along dim, sorted; ties keep the lower index first.
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
// Sums a broadcast gradient back to `shape` (the adjoint of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- matrix products ----
// torch.matmul semantics: 1-d x 1-d is a dot product, 2-d x 2-d a matrix product, a 1-d operand
// gains (then loses) a unit dimension, and leading batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax and losses ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

enum class Reduction { None, Mean, Sum };
struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;
  int64_t ignore_index = -100;  // targets equal to this add no loss and no gradient
};
// Fused log-softmax + negative log-likelihood: logits [n, c], target i64 [n] of class indices.
// Mean divides by the number of targets that are not ignore_index.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const CrossEntropyOptions& options = {});
// Negative log-likelihood of log-probabilities [n, c] at i64 targets [n].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target,
                Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);

// ---- indexing, joining, splitting ----
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: 1-d i64
// Rows of `weight` [num, dim] at i64 `indices` of any shape: result indices.shape + [dim].
Tensor embedding(const Tensor& weight, const Tensor& indices);
// out[...][j][...] = x[...][index[...][j][...]][...] along dim; index (i64) has x's number of
// dims and x's sizes outside dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Pieces of `split_size` along dim (the last may be smaller); views of x.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// ---- convolution (ops_conv.cpp) ----
// As torch.nn.functional.conv2d: input [N, C_in, H, W] (or unbatched [C_in, H, W]), weight
// [C_out, C_in / groups, kH, kW], bias [C_out] or undefined (none). Each output size is
// (in + 2 * padding - dilation * (k - 1) - 1) / stride + 1, rounded down; {height, width} pairs.
struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& options = {});

// ---- pooling (ops_pool.cpp) ----
// 2-d pooling of [N, C, H, W] or unbatched [C, H, W] inputs, with torch.nn.functional's
// arguments, defaults and output sizes. Pairs are {height, width}; a stride of {} (zeros) means
// stride = kernel. Padding may be at most half the kernel.
//
// Max over each window; padding counts as -inf and a NaN in a window wins.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::array<int64_t, 2> stride = {}, std::array<int64_t, 2> padding = {},
                  std::array<int64_t, 2> dilation = {1, 1}, bool ceil_mode = false);
// The same, with where each maximum is (i64, as h * W + w within its [H, W] plane), as
// return_indices=True gives in PyTorch.
ValuesIndices max_pool2d_with_indices(const Tensor& x, std::array<int64_t, 2> kernel,
                                      std::array<int64_t, 2> stride = {},
                                      std::array<int64_t, 2> padding = {},
                                      std::array<int64_t, 2> dilation = {1, 1},
                                      bool ceil_mode = false);
// Mean over each window, divided by divisor_override if it is not 0; else by the window's size
// counting padding (count_include_pad) or only the inputs it covers.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::array<int64_t, 2> stride = {}, std::array<int64_t, 2> padding = {},
                  bool ceil_mode = false, bool count_include_pad = true,
                  int64_t divisor_override = 0);
// Mean over output_size windows that cover the input: output row i averages input rows
// [floor(i * H / out_h), ceil((i + 1) * H / out_h)), and columns likewise.
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// ---- normalization (ops_norm.cpp) ----
// As torch.nn.functional's. An undefined Tensor() stands for None: no running statistics, no
// affine weight (scale 1) or bias (shift 0). Variances are biased (divided by the count) and
// eps is added under the square root: y = (x - mean) / sqrt(var + eps) * weight + bias.

// input [N, C, *] (e.g. [N, C], [N, C, L], [N, C, H, W]), statistics per channel. running_mean,
// running_var, weight and bias hold C values each.
// training: normalizes with the batch's mean and variance over N and *, and updates the running
//   statistics that are given, in place and unseen by autograd:
//     running_mean = (1 - momentum) * running_mean + momentum * batch_mean
//     running_var  = (1 - momentum) * running_var  + momentum * batch_var * n / (n - 1)
//   (the unbiased variance; n = N * prod(*), which must be more than 1). PyTorch's
//   momentum = None, a cumulative average, is the caller's to do: pass momentum =
//   1 / num_batches_tracked, as the module does.
// !training: normalizes with running_mean and running_var, which must both be given.
// Gradients flow to input, weight and bias in both modes (in evaluation mode none goes through
// the statistics, which are constants there).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
// input [N, C, *]; the C channels form num_groups groups of consecutive channels (num_groups
// must divide C), each sample's group normalized on its own; weight and bias hold C values.
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// Normalizes over the trailing dims normalized_shape (which must equal input's trailing sizes);
// weight and bias have shape normalized_shape.
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

// ---- operators ----
inline Tensor operator-(const Tensor& x) {
  return neg(x);
}
inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator+(const Tensor& a, double b) {
  return add(a, b);
}
inline Tensor operator+(double a, const Tensor& b) {
  return add(b, a);
}
inline Tensor operator-(const Tensor& a, double b) {
  return add(a, -b);
}
inline Tensor operator-(double a, const Tensor& b) {
  return add(neg(b), a);
}
inline Tensor operator*(const Tensor& a, double b) {
  return mul(a, b);
}
inline Tensor operator*(double a, const Tensor& b) {
  return mul(b, a);
}
Tensor operator/(const Tensor& a, double b);  // exact division, like PyTorch
Tensor operator/(double a, const Tensor& b);

}  // namespace ember
