// The optimizer interface: parameter groups with their hyper-parameters, step, zero_grad and a
// state dict that a checkpoint stores as a safetensors file.
//
// As in PyTorch, an optimizer holds parameter groups; each group has its own hyper-parameters
// (lr, momentum, ...) and free-form flags, and whoever adjusts them (LR schedulers, the
// distributed wrappers) writes into param_groups() between steps. SGD, Adam and AdamW
// (layers/sgd.h, layers/adam.h) implement it on top of FusedOptimizer (layers/fused_optimizer.h);
// wrappers such as local SGD implement it around another optimizer.
#pragma once

#include <nlohmann/json.hpp>  // the state dict's metadata

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"  // Tensor

namespace ember::optim {

// One group of parameters and the hyper-parameters they are updated with. An optimizer reads the
// fields it knows and ignores the others:
//   SGD:         lr, momentum, dampening, nesterov, weight_decay, maximize
//   Adam, AdamW: lr, beta1, beta2 (PyTorch's betas), eps, weight_decay, amsgrad, maximize
// The option structs of each optimizer (SGDOptions::group, AdamOptions::group) make groups with
// that optimizer's defaults.
struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;
  double weight_decay = 0;
  bool maximize = false;
  // The lr the first LR scheduler found (PyTorch's group["initial_lr"]); later schedulers start
  // from it too.
  std::optional<double> initial_lr;
  // Free-form flags read by other parts of ember, e.g. the distributed wrappers: a group with
  // allow_data_parallelism = 0 is never averaged across processes (a per-site head).
  std::map<std::string, double> flags = {{"allow_data_parallelism", 1.0}};

  // flags["allow_data_parallelism"] != 0 (true when absent).
  bool allow_data_parallelism() const;
  // flags[name], or `fallback` when absent.
  double flag(const std::string& name, double fallback = 0) const;
};

// An optimizer's state as a checkpoint stores it: tensors by name plus a JSON object.
//   tensors:  "state.<parameter index>.<buffer>", e.g. "state.3.momentum_buffer", where the index
//             counts parameters across groups in order, as in PyTorch's state_dict
//   metadata: {"optimizer": "SGD", "param_groups": [{"lr": 0.1, ..., "flags": {...},
//             "params": [0, 1, 2]}, ...], "state": {"3": {"step": 12}, ...}}
// The tensors are copies: the dict stays as it was when the optimizer steps on.
struct OptimizerStateDict {
  std::map<std::string, Tensor> tensors;
  nlohmann::json metadata;
};

// Whether `next` starts in `prev`'s storage exactly where `prev` ends, both dense and of one
// dtype: then the two can be updated as one span (how a flat model's parameters, gradients and
// optimizer state lie).
bool directly_follows(const Tensor& prev, const Tensor& next);

// Which hyper-parameter plays the role of momentum (what OneCycleLR cycles).
enum class MomentumField { None, Momentum, Beta1 };

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::vector<ParamGroup>& param_groups() = 0;
  virtual const std::vector<ParamGroup>& param_groups() const = 0;
  // One update of every parameter that has a gradient; parameters whose grad is undefined are
  // skipped (their state does not advance), as in PyTorch.
  virtual void step() = 0;
  // Zeroes every defined gradient in place. Gradients stay the same tensors (views of a flat
  // gradient buffer stay views): they are never reset to undefined.
  virtual void zero_grad();
  virtual OptimizerStateDict state_dict() const = 0;
  // Checks the dict against this optimizer (kind, groups, parameter counts, shapes) before it
  // changes anything; throws ember::Error naming the mismatch.
  virtual void load_state_dict(const OptimizerStateDict& state) = 0;
  virtual std::string name() const = 0;  // "SGD", "Adam", ...
  virtual MomentumField momentum_field() const { return MomentumField::None; }

 protected:
  Optimizer() = default;
};

}  // namespace ember::optim
