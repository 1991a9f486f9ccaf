// Adam and AdamW, PyTorch's (torch.optim.Adam and AdamW, 1.13), for a parameter p with gradient
// g at update t (counted per parameter, from 1), learning rate lr, betas b1, b2, weight decay wd:
//
//   g = -g                                  if maximize
//   g = g + wd * p                          Adam, if wd != 0 (L2 penalty in the gradient)
//   p = p * (1 - lr * wd)                   AdamW (decoupled weight decay)
//   m = b1 * m + (1 - b1) * g
//   v = b2 * v + (1 - b2) * g * g
//   v_max = max(v_max, v)                   if amsgrad; then v_max replaces v below
//   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// State per parameter: step (t), exp_avg (m), exp_avg_sq (v), max_exp_avg_sq (v_max, amsgrad).
// Adam's weight_decay defaults to 0, AdamW's to 1e-2.
#pragma once

#include <string>
#include <vector>

#include "layers/fused_optimizer.h"

namespace ember::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;

  // A group of `params` with these hyper-parameters (for optimizers with several groups).
  ParamGroup group(std::vector<Tensor> params) const;
};

struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 1e-2; }
};

class Adam : public FusedOptimizer {
 public:
  explicit Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  explicit Adam(std::vector<ParamGroup> groups);

  std::string name() const override { return decoupled_weight_decay_ ? "AdamW" : "Adam"; }
  MomentumField momentum_field() const override { return MomentumField::Beta1; }

 protected:
  Adam(std::vector<ParamGroup> groups, bool decoupled_weight_decay);

  void check_group(const ParamGroup& group, size_t index) const override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  std::vector<std::string> all_state_names() const override {
    return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  }
  nlohmann::json hyperparameters(const ParamGroup& group) const override;
  void set_hyperparameters(const nlohmann::json& values, ParamGroup& group) const override;
  void update(const ParamGroup& group, const Span& span) override;

 private:
  bool decoupled_weight_decay_;
};

// Adam with decoupled weight decay (Loshchilov and Hutter): the same state and kernel as Adam.
class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  explicit AdamW(std::vector<ParamGroup> groups);
};

}  // namespace ember::optim
