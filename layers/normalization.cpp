// BatchNorm, GroupNorm and LayerNorm modules (see normalization.h).
#include "layers/normalization.h"

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"
#include "engine/ops.h"

namespace ember::nn {

// ---- BatchNorm ----

BatchNorm::BatchNorm(int64_t num_features, const BatchNormConfig& cfg, int low, int high)
    : num_features(num_features), config(cfg), dims_low_(low), dims_high_(high) {
  EMBER_CHECK(num_features > 0, "BatchNorm: num_features must be positive, got ", num_features);
  if (cfg.affine) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
  if (cfg.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::I64));
  }
}

Tensor BatchNorm::forward(const Tensor& input) {
  EMBER_CHECK(
      input.dim() >= dims_low_ && input.dim() <= dims_high_, type_name(), ": input ",
      shape_str(input.shape()), " has ", input.dim(), " dims, expected ",
      dims_low_ == dims_high_ ? str_cat(dims_low_) : str_cat(dims_low_, " or ", dims_high_));
  EMBER_CHECK(input.size(1) == num_features, type_name(), "(", num_features, "): input ",
              shape_str(input.shape()), " has ", input.size(1), " channels");
  // Batch statistics in training, and in eval when no running statistics are kept.
  const bool use_batch_stats = is_training() || !config.track_running_stats;
  double momentum = config.momentum.value_or(0.0);
  if (is_training() && config.track_running_stats) {
    NoGrad no_grad;
    num_batches_tracked.add_(ones_like(num_batches_tracked));
    if (!config.momentum) momentum = 1.0 / num_batches_tracked.item<double>();
  }
  return batch_norm(input, running_mean, running_var, weight, bias, use_batch_stats, momentum,
                    config.eps);
}

std::string BatchNorm::extra_repr() const {
  return str_cat(num_features, ", eps=", config.eps,
                 ", momentum=", config.momentum ? str_cat(*config.momentum) : std::string("None"),
                 ", affine=", config.affine ? "True" : "False",
                 ", track_running_stats=", config.track_running_stats ? "True" : "False");
}

// ---- GroupNorm ----

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps) {
  EMBER_CHECK(groups > 0 && channels > 0 && channels % groups == 0, "GroupNorm: num_channels (",
              channels, ") must be a positive multiple of num_groups (", groups, ")");
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() >= 2 && input.size(1) == num_channels, "GroupNorm(", num_groups, ", ",
              num_channels, "): input ", shape_str(input.shape()), " must be [N, ", num_channels,
              ", ...]");
  return group_norm(input, num_groups, weight, bias, eps);
}

std::string GroupNorm::extra_repr() const {
  return str_cat(num_groups, ", ", num_channels, ", eps=", eps,
                 ", affine=", weight.defined() ? "True" : "False");
}

// ---- LayerNorm ----

LayerNorm::LayerNorm(std::vector<int64_t> shape, double eps, bool affine)
    : normalized_shape(std::move(shape)), eps(eps) {
  EMBER_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape is empty");
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& input) {
  return layer_norm(input, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return str_cat("(", shape_str(normalized_shape), "), eps=", eps,
                 ", elementwise_affine=", weight.defined() ? "True" : "False");
}

}  // namespace ember::nn
