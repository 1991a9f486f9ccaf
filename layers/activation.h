// Activation modules: thin wrappers of the ops, so they can sit in a Sequential and carry hooks.
#pragma once

#include <string>

#include "engine/ops.h"
#include "layers/module.h"

namespace ember::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return relu(input); }
  std::string type_name() const override { return "ReLU"; }
};

// approximate: "none" (exact, through erf) or "tanh", as torch.nn.GELU.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none") : approximate(std::move(approximate)) {}
  Tensor forward(const Tensor& input) override { return gelu(input, approximate); }
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override {
    return approximate == "none" ? "" : "approximate='" + approximate + "'";
  }
  std::string approximate;
};

}  // namespace ember::nn
