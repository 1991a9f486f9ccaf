// 2-d pooling (max, average, adaptive average) with PyTorch's semantics, and its backward rules.
//
// Output sizes, per spatial axis, for an input of size `in`, kernel k, stride s, padding p and
// dilation d (average pooling has d = 1):
//   out = floor((in + 2p - d(k - 1) - 1) / s) + 1
//   ceil_mode: ceil instead of floor, then one less if the last window would start at or past
//              in + p, i.e. if (out - 1) s >= in + p: every window starts inside the input or
//              its left padding, never in the right padding alone.
//   adaptive:  out is given; window i covers [floor(i in / out), ceil((i + 1) in / out)).
// PyTorch also requires p <= k / 2 and out >= 1; so does ember, with errors that say which.
//
// Backward:
//   max:      dx[j] = sum of dy[o] over the outputs o whose maximum was input j (indices saved)
//   average:  dx[j] = sum of dy[o] / divisor(o) over the windows o that hold input j
//   adaptive: dx[j] = sum of dy[o] / |window o| over the windows o that hold input j
//
// Kernels see a [N, C, H, W] input as N * C dense planes (kernels/kernel_table.h); an unbatched
// [C, H, W] input is pooled as a batch of one.
#include <array>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

using Pair = std::array<int64_t, 2>;
using kernels::Pool2dGeometry;

std::string pair_str(const Pair& p) {
  return str_cat("[", p[0], ", ", p[1], "]");
}

// x as a contiguous [N, C, H, W] tensor, after checking what every pooling op requires.
Tensor batched_input(const char* op, const Tensor& x) {
  detail::check_defined(op, x);
  detail::check_float(op, x);
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, op,
              ": expected a 3-d [C, H, W] or 4-d [N, C, H, W] input, got ", shape_str(x.shape()));
  const Tensor batched = x.dim() == 3 ? x.unsqueeze(0) : x;
  for (int d = 1; d < 4; ++d)
    EMBER_CHECK(batched.shape()[d] > 0, op, ": input ", shape_str(x.shape()),
                " has an empty channel or spatial dimension; only the batch may be empty");
  return batched;
}

// The geometry's planes and input sizes from a [N, C, H, W] shape.
Pool2dGeometry planes_of(const Shape& shape) {
  Pool2dGeometry g;
  g.planes = shape[0] * shape[1];
  g.in_h = shape[2];
  g.in_w = shape[3];
  return g;
}

// floor(a / b) for b > 0 (C++ division truncates toward zero).
int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation,
                    bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  int64_t out = floor_div(span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Checks a max or average pooling window and computes the output size.
Pool2dGeometry window_geometry(const char* op, const Tensor& batched, const Shape& shown_shape,
                               Pair kernel, Pair stride, Pair padding, Pair dilation,
                               bool ceil_mode) {
  EMBER_CHECK(kernel[0] > 0 && kernel[1] > 0, op, ": kernel ", pair_str(kernel),
              " must be positive");
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  EMBER_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride ", pair_str(stride),
              " must be positive (or {} for stride = kernel)");
  EMBER_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding ", pair_str(padding),
              " must not be negative");
  EMBER_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation ", pair_str(dilation),
              " must be positive");
  EMBER_CHECK(padding[0] <= kernel[0] / 2 && padding[1] <= kernel[1] / 2, op, ": padding ",
              pair_str(padding), " must be at most half the kernel ", pair_str(kernel));
  Pool2dGeometry g = planes_of(batched.shape());
  g.kernel_h = kernel[0];
  g.kernel_w = kernel[1];
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  g.pad_h = padding[0];
  g.pad_w = padding[1];
  g.dilation_h = dilation[0];
  g.dilation_w = dilation[1];
  g.out_h = pooled_size(g.in_h, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h, ceil_mode);
  g.out_w = pooled_size(g.in_w, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w, ceil_mode);
  EMBER_CHECK(g.out_h > 0 && g.out_w > 0, op, ": input ", shape_str(shown_shape), " with kernel ",
              pair_str(kernel), ", stride ", pair_str(stride), ", padding ", pair_str(padding),
              ", dilation ", pair_str(dilation), " gives an output of ", g.out_h, " x ", g.out_w,
              "; each spatial size must be at least 1: the input is smaller than one window");
  return g;
}

Shape output_shape(const Tensor& batched, const Pool2dGeometry& g) {
  return {batched.shape()[0], batched.shape()[1], g.out_h, g.out_w};
}

// Back to [C, H, W] when the input was unbatched.
Tensor like_input(const Tensor& y, const Tensor& x) {
  return x.dim() == 3 ? y.squeeze(0) : y;
}

class MaxPool2dBackward : public Node {
 public:
  MaxPool2dBackward(const Pool2dGeometry& geometry, Shape input_shape, Tensor indices)
      : geometry_(geometry), input_shape_(std::move(input_shape)), indices_(std::move(indices)) {}
  std::string name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = empty(input_shape_, {dy.dtype(), dy.device()});
    if (dx.numel() > 0)
      detail::kernels_of(dy).max_pool2d_backward(dy.dtype(), geometry_, dy.data_ptr(),
                                                 indices_.data<int64_t>(), dx.data_ptr(),
                                                 detail::stream_of(dy));
    return {dx};
  }
  void release_saved() override { indices_ = Tensor(); }

 private:
  Pool2dGeometry geometry_;
  Shape input_shape_;  // [N, C, H, W]
  Tensor indices_;     // [N, C, out_h, out_w], contiguous
};

class AvgPool2dBackward : public Node {
 public:
  AvgPool2dBackward(const Pool2dGeometry& geometry, Shape input_shape, bool count_include_pad,
                    int64_t divisor_override)
      : geometry_(geometry),
        input_shape_(std::move(input_shape)),
        count_include_pad_(count_include_pad),
        divisor_override_(divisor_override) {}
  std::string name() const override { return "AvgPool2dBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = empty(input_shape_, {dy.dtype(), dy.device()});
    if (dx.numel() > 0)
      detail::kernels_of(dy).avg_pool2d_backward(dy.dtype(), geometry_, count_include_pad_,
                                                 divisor_override_, dy.data_ptr(), dx.data_ptr(),
                                                 detail::stream_of(dy));
    return {dx};
  }

 private:
  Pool2dGeometry geometry_;
  Shape input_shape_;
  bool count_include_pad_;
  int64_t divisor_override_;
};

class AdaptiveAvgPool2dBackward : public Node {
 public:
  AdaptiveAvgPool2dBackward(const Pool2dGeometry& geometry, Shape input_shape)
      : geometry_(geometry), input_shape_(std::move(input_shape)) {}
  std::string name() const override { return "AdaptiveAvgPool2dBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = empty(input_shape_, {dy.dtype(), dy.device()});
    if (dx.numel() > 0)
      detail::kernels_of(dy).adaptive_avg_backward(dy.dtype(), geometry_, dy.data_ptr(),
                                                   dx.data_ptr(), detail::stream_of(dy));
    return {dx};
  }

 private:
  Pool2dGeometry geometry_;
  Shape input_shape_;
};

}  // namespace

ValuesIndices max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride, Pair padding,
                                      Pair dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  const Tensor batched = batched_input(op, x);
  const Pool2dGeometry g =
      window_geometry(op, batched, x.shape(), kernel, stride, padding, dilation, ceil_mode);
  const Tensor input = batched.detach().contiguous();
  Tensor y = empty(output_shape(batched, g), {x.dtype(), x.device()});
  Tensor indices = empty(y.shape(), {DType::I64, x.device()});
  if (y.numel() > 0)
    detail::kernels_of(x).max_pool2d(x.dtype(), g, input.data_ptr(), y.data_ptr(),
                                     indices.data<int64_t>(), detail::stream_of(x));
  if (needs_grad({batched}))
    connect(std::make_shared<MaxPool2dBackward>(g, batched.shape(), indices), {batched}, {&y});
  return {like_input(y, x), like_input(indices, x)};
}

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                  bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).values;
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode,
                  bool count_include_pad, int64_t divisor_override) {
  const char* op = "avg_pool2d";
  const Tensor batched = batched_input(op, x);
  EMBER_CHECK(divisor_override >= 0, op, ": divisor_override ", divisor_override,
              " must be positive, or 0 for the window's size");
  const Pool2dGeometry g =
      window_geometry(op, batched, x.shape(), kernel, stride, padding, {1, 1}, ceil_mode);
  const Tensor input = batched.detach().contiguous();
  Tensor y = empty(output_shape(batched, g), {x.dtype(), x.device()});
  if (y.numel() > 0)
    detail::kernels_of(x).avg_pool2d(x.dtype(), g, count_include_pad, divisor_override,
                                     input.data_ptr(), y.data_ptr(), detail::stream_of(x));
  if (needs_grad({batched}))
    connect(std::make_shared<AvgPool2dBackward>(g, batched.shape(), count_include_pad,
                                                divisor_override),
            {batched}, {&y});
  return like_input(y, x);
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  const char* op = "adaptive_avg_pool2d";
  const Tensor batched = batched_input(op, x);
  EMBER_CHECK(output_size[0] > 0 && output_size[1] > 0, op, ": output_size ", pair_str(output_size),
              " must be positive");
  Pool2dGeometry g = planes_of(batched.shape());
  g.out_h = output_size[0];
  g.out_w = output_size[1];
  const Tensor input = batched.detach().contiguous();
  Tensor y = empty(output_shape(batched, g), {x.dtype(), x.device()});
  if (y.numel() > 0)
    detail::kernels_of(x).adaptive_avg_pool2d(x.dtype(), g, input.data_ptr(), y.data_ptr(),
                                              detail::stream_of(x));
  if (needs_grad({batched}))
    connect(std::make_shared<AdaptiveAvgPool2dBackward>(g, batched.shape()), {batched}, {&y});
  return like_input(y, x);
}

}  // namespace ember
