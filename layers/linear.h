// Linear: y = x W^T + b, W [out_features, in_features], b [out_features], over the last dim of
// x (any leading dims). PyTorch's default initialization (layers/init.h).
#pragma once

#include "layers/module.h"

namespace ember::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;

  Tensor weight;
  Tensor bias;  // undefined without bias
  int64_t in_features, out_features;
};

}  // namespace ember::nn
