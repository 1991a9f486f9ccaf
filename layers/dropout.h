// Dropout modules; both are the identity in eval mode or with p = 0.
//   Dropout    zeroes single elements with probability p and scales the rest by 1/(1-p).
//   Dropout2d  zeroes whole channels of an [N, C, H, W] (or unbatched [C, H, W]) input: one
//              draw per (sample, channel), broadcast over H x W.
#pragma once

#include "layers/module.h"

namespace ember::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p;
};

class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Dropout2d"; }
  std::string extra_repr() const override;
  double p;
};

}  // namespace ember::nn
