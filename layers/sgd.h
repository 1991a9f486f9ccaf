// Stochastic gradient descent with momentum, PyTorch's SGD (torch.optim.SGD, 1.13), for a
// parameter p with gradient g, learning rate lr, momentum mu, dampening tau, weight decay wd:
//
//   g = -g                        if maximize
//   g = g + wd * p                if wd != 0
//   if mu != 0:
//     b = g                       on the first update (the buffer starts as the gradient,
//                                 without dampening)
//     b = mu * b + (1 - tau) * g  afterwards
//     g = g + mu * b              if nesterov
//     g = b                       otherwise
//   p = p - lr * g
//
// Nesterov needs mu > 0 and tau = 0. State per parameter: momentum_buffer (when mu != 0).
#pragma once

#include <string>
#include <vector>

#include "layers/fused_optimizer.h"

namespace ember::optim {

struct SGDOptions {
  explicit SGDOptions(double lr) : lr(lr) {}
  double lr;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;

  // A group of `params` with these hyper-parameters (for optimizers with several groups).
  ParamGroup group(std::vector<Tensor> params) const;
};

class SGD : public FusedOptimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  explicit SGD(std::vector<ParamGroup> groups);

  std::string name() const override { return "SGD"; }
  MomentumField momentum_field() const override { return MomentumField::Momentum; }

 protected:
  void check_group(const ParamGroup& group, size_t index) const override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  std::vector<std::string> all_state_names() const override { return {"momentum_buffer"}; }
  bool step_count_matters() const override { return false; }
  nlohmann::json hyperparameters(const ParamGroup& group) const override;
  void set_hyperparameters(const nlohmann::json& values, ParamGroup& group) const override;
  void update(const ParamGroup& group, const Span& span) override;
};

}  // namespace ember::optim
