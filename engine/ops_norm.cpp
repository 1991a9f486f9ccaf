// Batch, group and layer normalization, with PyTorch's semantics, and their backward rules.
//
// Each normalizes x over the elements that share a statistic (kernels/kernel_table.h,
// NormLayout): batch norm over x[:, c, ...] per channel, group norm over the channels of one
// group of one sample, layer norm over the trailing normalized_shape dims of each row.
// Forward, with M elements per statistic:
//   mean = sum(x) / M,  var = sum((x - mean)^2) / M  (biased),  invstd = 1 / sqrt(var + eps)
//   xhat = (x - mean) * invstd,  y = xhat * weight[c] + bias[c]
// Backward, with g = dy * weight[c]:
//   dbias[c]   = sum of dy over channel c,  dweight[c] = sum of dy * xhat over channel c
//   dx = invstd * (g - mean(g) - xhat * mean(g * xhat))  (means over the statistic's elements)
//        when mean and var are x's own (training batch norm, group norm, layer norm): the two
//        subtracted terms are the paths through mean and var;
//   dx = invstd * g  when they are fixed (batch norm in evaluation mode: running statistics).
// The backward rule itself is not differentiable (no double backward).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

using kernels::NormLayout;
using kernels::NormOver;

namespace {

void* data_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr() : nullptr;
}

class NormBackward : public Node {
 public:
  NormBackward(const char* node_name, const NormLayout& layout, Tensor x, Tensor mean,
               Tensor invstd, Tensor weight, Shape weight_shape, Shape bias_shape,
               bool through_statistics)
      : name_(node_name),
        layout_(layout),
        x_(std::move(x)),
        mean_(std::move(mean)),
        invstd_(std::move(invstd)),
        weight_(std::move(weight)),
        weight_shape_(std::move(weight_shape)),
        bias_shape_(std::move(bias_shape)),
        through_statistics_(through_statistics) {}
  std::string name() const override { return name_; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    const TensorOptions options{x_.dtype(), x_.device()};
    // (an empty input gives zeros: sums over nothing)
    auto make = [&](bool wanted, const Shape& shape) {
      if (!wanted) return Tensor();
      return x_.numel() == 0 ? zeros(shape, options) : empty(shape, options);
    };
    Tensor dx = make(input_needs_grad(0), x_.shape());
    Tensor dweight = make(input_needs_grad(1), {layout_.channels});
    Tensor dbias = make(input_needs_grad(2), {layout_.channels});
    if (x_.numel() > 0 && (dx.defined() || dweight.defined() || dbias.defined()))
      detail::kernels_of(x_).norm_backward(
          x_.dtype(), layout_, x_.data_ptr(), dy.data_ptr(), mean_.data_ptr(), invstd_.data_ptr(),
          data_or_null(weight_), through_statistics_, data_or_null(dx), data_or_null(dweight),
          data_or_null(dbias), detail::stream_of(x_));
    if (dweight.defined()) dweight = dweight.reshape(weight_shape_);
    if (dbias.defined()) dbias = dbias.reshape(bias_shape_);
    return {dx, dweight, dbias};
  }
  void release_saved() override { x_ = mean_ = invstd_ = weight_ = Tensor(); }

 private:
  const char* name_;
  NormLayout layout_;
  Tensor x_;              // contiguous, detached
  Tensor mean_, invstd_;  // one per statistic, detached
  Tensor weight_;         // contiguous, detached; undefined: no affine scale
  Shape weight_shape_, bias_shape_;
  bool through_statistics_;
};

// y = (x - mean) * invstd * weight + bias over `layout`, recording NormBackward for x, weight
// and bias. `input` is x detached and contiguous; mean and invstd hold one value per statistic.
Tensor normalize(const char* node_name, const Tensor& x, const Tensor& input,
                 const NormLayout& layout, const Tensor& mean, const Tensor& invstd,
                 const Tensor& weight, const Tensor& bias, bool through_statistics) {
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  if (y.numel() > 0)
    detail::kernels_of(x).norm_forward(x.dtype(), layout, input.data_ptr(), mean.data_ptr(),
                                       invstd.data_ptr(), data_or_null(w), data_or_null(b),
                                       y.data_ptr(), detail::stream_of(x));
  if (needs_grad({x, weight, bias}))
    connect(
        std::make_shared<NormBackward>(node_name, layout, input, mean, invstd, w,
                                       weight.defined() ? weight.shape() : Shape{},
                                       bias.defined() ? bias.shape() : Shape{}, through_statistics),
        {x, weight, bias}, {&y});
  return y;
}

struct Statistics {
  Tensor mean, invstd, variance;  // variance (biased) only when asked for
};

Statistics compute_statistics(const Tensor& input, const NormLayout& layout, double eps,
                              bool with_variance) {
  const TensorOptions options{input.dtype(), input.device()};
  Statistics s;
  s.mean = empty({layout.statistics()}, options);
  s.invstd = empty({layout.statistics()}, options);
  if (with_variance) s.variance = empty({layout.statistics()}, options);
  if (layout.statistics() > 0)
    detail::kernels_of(input).norm_statistics(
        input.dtype(), layout, input.data_ptr(), s.mean.data_ptr(), s.invstd.data_ptr(),
        s.variance.defined() ? s.variance.data_ptr() : nullptr, eps, detail::stream_of(input));
  return s;
}

void check_input(const char* name, const Tensor& x) {
  detail::check_defined(name, x);
  detail::check_float(name, x);
}

// An optional per-channel (or per-normalized-element) tensor: same dtype and device as x.
void check_companion(const char* name, const Tensor& x, const Tensor& t) {
  if (!t.defined()) return;
  detail::check_same_device(name, x, t);
  detail::check_same_dtype(name, x, t);
}

// `role` (weight, bias, running_mean, running_var) holds one value per channel of x: in any
// shape for batch norm, as a vector [C] for group norm (PyTorch's rules).
void check_per_channel(const char* name, const Tensor& x, const Tensor& t, const char* role,
                       bool vector = false) {
  if (!t.defined()) return;
  check_companion(name, x, t);
  EMBER_CHECK(t.numel() == x.shape()[1] && (!vector || t.dim() == 1), name, ": ", role, " ",
              shape_str(t.shape()), " should contain ", x.shape()[1],
              vector ? " elements in one dim, " : " elements, ", "one per channel of input ",
              shape_str(x.shape()), " (dim 1)");
}

// The layout of input [N, C, *]: per channel (Batch) or per (sample, group) (Group).
NormLayout channel_layout(const Tensor& x, NormOver over, int64_t groups) {
  NormLayout layout;
  layout.over = over;
  layout.outer = x.shape()[0];
  layout.channels = x.shape()[1];
  for (int64_t d = 2; d < x.dim(); ++d) layout.inner *= x.shape()[d];
  layout.groups = groups;
  return layout;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  const char* name = "batch_norm";
  check_input(name, input);
  EMBER_CHECK(input.dim() >= 2, name, ": input must be [N, C, *] (at least 2-d), got ",
              shape_str(input.shape()));
  check_per_channel(name, input, weight, "weight");
  check_per_channel(name, input, bias, "bias");
  check_per_channel(name, input, running_mean, "running_mean");
  check_per_channel(name, input, running_var, "running_var");
  const NormLayout layout = channel_layout(input, NormOver::Batch, 1);
  Tensor x = input.detach().contiguous();

  if (!training) {
    EMBER_CHECK(running_mean.defined() && running_var.defined(), name,
                ": evaluation mode (training = false) normalizes with running_mean and "
                "running_var; both must be given");
    Statistics fixed;
    {
      NoGrad no_grad;
      fixed.mean = running_mean.detach().reshape({layout.channels}).clone();
      fixed.invstd = rsqrt(add(running_var.detach().reshape({layout.channels}), eps));
    }
    return normalize("BatchNormBackward", input, x, layout, fixed.mean, fixed.invstd, weight, bias,
                     false);
  }

  const int64_t count = layout.elements_per_statistic();
  EMBER_CHECK(count != 1, name,
              ": expected more than 1 value per channel when training, got input ",
              shape_str(input.shape()));
  Statistics batch = compute_statistics(x, layout, eps, running_var.defined());
  if (count > 0) {  // an empty batch leaves the running statistics alone, as in PyTorch
    NoGrad no_grad;
    if (running_mean.defined()) {
      Tensor updated = running_mean;  // the same storage, through a handle we may update
      updated.mul_(1 - momentum).add_(batch.mean.reshape(updated.shape()), momentum);
    }
    if (running_var.defined()) {
      const double unbiased = static_cast<double>(count) / static_cast<double>(count - 1);
      Tensor updated = running_var;
      updated.mul_(1 - momentum).add_(batch.variance.reshape(updated.shape()), momentum * unbiased);
    }
  }
  return normalize("BatchNormBackward", input, x, layout, batch.mean, batch.invstd, weight, bias,
                   true);
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* name = "group_norm";
  check_input(name, input);
  EMBER_CHECK(input.dim() >= 2, name, ": input must be [N, C, *] (at least 2-d), got ",
              shape_str(input.shape()));
  const int64_t channels = input.shape()[1];
  EMBER_CHECK(num_groups > 0 && channels % num_groups == 0, name, ": the ", channels,
              " channels of input ", shape_str(input.shape()),
              " cannot be split into num_groups = ", num_groups,
              " equal groups; num_groups must divide the channel count");
  check_per_channel(name, input, weight, "weight", true);
  check_per_channel(name, input, bias, "bias", true);
  const NormLayout layout = channel_layout(input, NormOver::Group, num_groups);
  Tensor x = input.detach().contiguous();
  Statistics s = compute_statistics(x, layout, eps, false);
  return normalize("GroupNormBackward", input, x, layout, s.mean, s.invstd, weight, bias, true);
}

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* name = "layer_norm";
  check_input(name, input);
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  EMBER_CHECK(k > 0, name, ": normalized_shape is empty; it must name at least one trailing dim");
  bool matches = input.dim() >= k;
  for (int64_t d = 0; d < k && matches; ++d)
    matches = input.shape()[input.dim() - k + d] == normalized_shape[d];
  EMBER_CHECK(matches, name, ": normalized_shape ", shape_str(normalized_shape),
              " must equal the trailing dims of input, got input ", shape_str(input.shape()));
  for (const auto& [t, role] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    check_companion(name, input, *t);
    EMBER_CHECK(t->shape() == normalized_shape, name, ": ", role, " ", shape_str(t->shape()),
                " must have normalized_shape ", shape_str(normalized_shape));
  }
  // rows of the normalized size: [rows, size, 1], one group
  NormLayout layout;
  layout.over = NormOver::Group;
  layout.channels = shape_numel(normalized_shape);
  for (int64_t d = 0; d < input.dim() - k; ++d) layout.outer *= input.shape()[d];
  Tensor x = input.detach().contiguous();
  Statistics s = compute_statistics(x, layout, eps, false);
  return normalize("LayerNormBackward", input, x, layout, s.mean, s.invstd, weight, bias, true);
}

}  // namespace ember
