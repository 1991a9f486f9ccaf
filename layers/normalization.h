// Normalization layers, as torch.nn (names weight, bias, running_mean, running_var,
// num_batches_tracked; weight 1 and bias 0 at start). The ops are engine/ops_norm.cpp.
//
// BatchNorm1d/2d keep PyTorch's conventions: in training they normalize with the batch mean
// and the biased variance, and update running_mean/var (the unbiased variance) with
//   running = (1 - momentum) * running + momentum * batch;
// momentum = nullopt (PyTorch's momentum=None) makes it the cumulative average, momentum
// 1 / num_batches_tracked. num_batches_tracked (i64) counts training batches. In eval they
// use the running statistics (or the batch's, if track_running_stats is off).
#pragma once

#include <optional>
#include <vector>

#include "layers/module.h"

namespace ember::nn {

struct BatchNormConfig {
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Tensor weight, bias;                                    // [C], undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking
  int64_t num_features;
  BatchNormConfig config;

 protected:
  BatchNorm(int64_t num_features, const BatchNormConfig& config, int expected_dims_low,
            int expected_dims_high);
  int dims_low_, dims_high_;
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormConfig& config = {})
      : BatchNorm(num_features, config, 2, 3) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormConfig& config = {})
      : BatchNorm(num_features, config, 4, 4) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};

// Statistics per sample over each group of C / num_groups channels; affine per channel.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  Tensor weight, bias;
  int64_t num_groups, num_channels;
  double eps;
};

// Statistics over the trailing normalized_shape dims of each sample.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::vector<int64_t> normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true);
  explicit LayerNorm(int64_t dim, double eps = 1e-5) : LayerNorm(std::vector<int64_t>{dim}, eps) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  Tensor weight, bias;
  std::vector<int64_t> normalized_shape;
  double eps;
};

}  // namespace ember::nn
