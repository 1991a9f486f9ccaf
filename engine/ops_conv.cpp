// 2-d convolution (torch.nn.functional.conv2d) and its backward rule.
//
// Output size, per spatial axis (in = H or W, k = kH or kW):
//   out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1
// i.e. the number of positions a kernel spanning dilation * (k - 1) + 1 inputs takes in the
// padded input, stepping by stride. An output size below 1 is an error.
//
// The CPU kernel (kernels/cpu/conv.cpp) unfolds each sample with im2col into a matrix
//   col [C_in * kH * kW, H_out * W_out],  col[(c * kH + p) * kW + q, i * W_out + j]
//     = x[c, i * stride_h - pad_h + p * dilation_h, j * stride_w - pad_w + q * dilation_w]
// (0 in the padding), whose rows follow the weight's [C_in / groups, kH, kW] order, so that each
// group's convolution is one matrix product with the weight viewed as [C_out / groups, K]. CUDA
// calls cuDNN (kernels/cuda/conv.cu).
//
// Backward, for y = conv(x, w) + b:
//   dx = the transposed convolution of dy with w  (kernel conv2d_backward_data)
//   dw = x correlated with dy, summed over the batch, and db = sum of dy over N, H_out, W_out
//        (kernel conv2d_backward_filter)
// Each is computed only when its input needs it, and the node keeps only what those need: x
// for dw, w for dx.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

// floor(a / b) for b > 0, also for negative a (C++ division truncates towards zero).
int64_t floor_divide(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

std::string pair_str(const std::array<int64_t, 2>& v) {
  return str_cat("(", v[0], ", ", v[1], ")");
}

class Conv2dBackward : public Node {
 public:
  Conv2dBackward(const kernels::Conv2dShape& shape, Shape input_shape, Shape weight_shape)
      : shape_(shape),
        input_shape_(std::move(input_shape)),
        weight_shape_(std::move(weight_shape)) {}
  std::string name() const override { return "Conv2dBackward"; }

  // x (detached, contiguous) is kept only when w needs a gradient, w only when x does.
  void save(const Tensor& input, const Tensor& weight) {
    if (input_needs_grad(1)) input_ = input;
    if (input_needs_grad(0)) weight_ = weight;
  }

  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    const bool want_dx = input_needs_grad(0), want_dw = input_needs_grad(1),
               want_db = input_needs_grad(2);
    const TensorOptions options(dy.dtype(), dy.device());
    Tensor dx, dw, db;
    if (shape_numel(input_shape_) == 0) {  // no input element: only the bias reaches y
      if (want_dx) dx = zeros(input_shape_, options);
      if (want_dw) dw = zeros(weight_shape_, options);
      if (want_db) db = sum(dy, {0, 2, 3});
      return {dx, dw, db};
    }
    const kernels::KernelTable& kernels = detail::kernels_of(dy);
    const kernels::Stream stream = detail::stream_of(dy);
    if (want_dx) {
      dx = empty(input_shape_, options);
      kernels.conv2d_backward_data(dy.dtype(), shape_, dy.data_ptr(), weight_.data_ptr(),
                                   dx.data_ptr(), allow_tf32(), stream);
    }
    if (want_dw) dw = empty(weight_shape_, options);
    if (want_db) db = empty({shape_.c_out}, options);
    if (want_dw || want_db)
      kernels.conv2d_backward_filter(dy.dtype(), shape_, want_dw ? input_.data_ptr() : nullptr,
                                     dy.data_ptr(), want_dw ? dw.data_ptr() : nullptr,
                                     want_db ? db.data_ptr() : nullptr, allow_tf32(), stream);
    return {dx, dw, db};
  }
  void release_saved() override { input_ = weight_ = Tensor(); }

 private:
  kernels::Conv2dShape shape_;
  Shape input_shape_, weight_shape_;  // input as [N, C_in, H, W]
  Tensor input_, weight_;
};

// The kernel's shape from checked arguments; throws with the op's name when they do not fit.
kernels::Conv2dShape conv2d_shape(const char* name, const Shape& x, const Shape& w,
                                  const Conv2dOptions& o) {
  EMBER_CHECK(o.stride[0] >= 1 && o.stride[1] >= 1, name, ": stride must be at least 1, got ",
              pair_str(o.stride));
  EMBER_CHECK(o.padding[0] >= 0 && o.padding[1] >= 0, name, ": padding must not be negative, got ",
              pair_str(o.padding));
  EMBER_CHECK(o.dilation[0] >= 1 && o.dilation[1] >= 1, name, ": dilation must be at least 1, got ",
              pair_str(o.dilation));
  EMBER_CHECK(o.groups >= 1, name, ": groups must be at least 1, got ", o.groups);
  EMBER_CHECK(w[0] >= 1 && w[1] >= 1 && w[2] >= 1 && w[3] >= 1, name, ": weight ", shape_str(w),
              " has an empty dimension");
  EMBER_CHECK(w[0] % o.groups == 0, name, ": groups = ", o.groups,
              " does not divide the output channels (weight ", shape_str(w), " has ", w[0], ")");
  EMBER_CHECK(x[1] % o.groups == 0, name, ": groups = ", o.groups,
              " does not divide the input channels (input ", shape_str(x), " has ", x[1], ")");
  EMBER_CHECK(w[1] * o.groups == x[1], name, ": input ", shape_str(x), " has ", x[1],
              " channels, but weight ", shape_str(w), " with groups = ", o.groups, " expects ",
              w[1] * o.groups, " (weight.shape[1] * groups)");

  kernels::Conv2dShape s;
  s.n = x[0];
  s.c_in = x[1];
  s.h = x[2];
  s.w = x[3];
  s.c_out = w[0];
  s.kh = w[2];
  s.kw = w[3];
  s.stride_h = o.stride[0];
  s.stride_w = o.stride[1];
  s.pad_h = o.padding[0];
  s.pad_w = o.padding[1];
  s.dilation_h = o.dilation[0];
  s.dilation_w = o.dilation[1];
  s.groups = o.groups;
  s.h_out = floor_divide(s.h + 2 * s.pad_h - s.dilation_h * (s.kh - 1) - 1, s.stride_h) + 1;
  s.w_out = floor_divide(s.w + 2 * s.pad_w - s.dilation_w * (s.kw - 1) - 1, s.stride_w) + 1;
  EMBER_CHECK(s.h_out >= 1 && s.w_out >= 1, name, ": output size ", s.h_out, " x ", s.w_out,
              " is not positive (input ", s.h, " x ", s.w, ", kernel ", s.kh, " x ", s.kw,
              ", padding ", pair_str(o.padding), ", dilation ", pair_str(o.dilation), ", stride ",
              pair_str(o.stride),
              "); each size is (in + 2 * padding - dilation * (k - 1) - 1) / "
              "stride + 1");
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options) {
  const char* name = "conv2d";
  detail::check_defined(name, input);
  detail::check_defined(name, weight);
  detail::check_float(name, input);
  detail::check_same_device(name, input, weight);
  detail::check_same_dtype(name, input, weight);
  EMBER_CHECK(input.dim() == 3 || input.dim() == 4, name,
              ": input must be [N, C, H, W] or unbatched [C, H, W], got ",
              shape_str(input.shape()));
  EMBER_CHECK(weight.dim() == 4, name, ": weight must be [C_out, C_in / groups, kH, kW], got ",
              shape_str(weight.shape()));
  const bool unbatched = input.dim() == 3;
  const Tensor batched = unbatched ? input.unsqueeze(0) : input;
  const kernels::Conv2dShape s = conv2d_shape(name, batched.shape(), weight.shape(), options);
  if (bias.defined()) {
    detail::check_same_device(name, input, bias);
    detail::check_same_dtype(name, input, bias);
    EMBER_CHECK(bias.dim() == 1 && bias.shape()[0] == s.c_out, name, ": bias must be [C_out] = [",
                s.c_out, "], got ", shape_str(bias.shape()));
  }

  Tensor x = batched.detach().contiguous();
  Tensor w = weight.detach().contiguous();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y;
  if (x.numel() > 0) {
    y = empty({s.n, s.c_out, s.h_out, s.w_out}, {x.dtype(), x.device()});
    detail::kernels_of(x).conv2d(x.dtype(), s, x.data_ptr(), w.data_ptr(),
                                 b.defined() ? b.data_ptr() : nullptr, y.data_ptr(), allow_tf32(),
                                 detail::stream_of(x));
  } else {  // an empty batch, or an empty image that padding alone gives outputs
    y = zeros({s.n, s.c_out, s.h_out, s.w_out}, {x.dtype(), x.device()});
    if (b.defined()) y = add(y, b.view({1, s.c_out, 1, 1}));
  }
  if (needs_grad({batched, weight, bias})) {
    auto node = std::make_shared<Conv2dBackward>(s, x.shape(), w.shape());
    connect(node, {batched, weight, bias}, {&y});
    node->save(x, w);
  }
  return unbatched ? y.squeeze(0) : y;
}

}  // namespace ember
