// FusedOptimizer: what SGD, Adam and AdamW share. It keeps the per-parameter state, finds the
// spans that one kernel launch can update, and reads and writes the state dict.
//
// A model's parameters usually live in one flat storage per dtype and device, each parameter a
// view into it, and so do their gradients. A step therefore looks, within each group, for maximal
// runs of parameters that have a gradient and lie back to back (each starting where the previous
// one ends, in one storage), whose gradients do the same, and whose state buffers do the same;
// each run is one span and gets ONE kernel launch (kernels/kernel_table.h, optim section). State
// buffers are allocated the same way: one flat buffer per run of adjacent parameters, with a view
// per parameter, so that a flat model's group is one span from its first step on. Parameters that
// lie anywhere else get one launch each; one that is not dense is updated through a dense copy.
// Both paths run the same per-element code, so they give identical bits.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/tensor.h"
#include "layers/optimizer.h"

namespace ember::optim {

class FusedOptimizer : public Optimizer {
 public:
  std::vector<ParamGroup>& param_groups() override { return groups_; }
  const std::vector<ParamGroup>& param_groups() const override { return groups_; }
  void step() override;
  OptimizerStateDict state_dict() const override;
  void load_state_dict(const OptimizerStateDict& state) override;

  // Adds a group (checked like the constructor's) whose parameters get fresh state.
  void add_param_group(ParamGroup group);

  // The kernel launches of the last step(): one per span. A flat model has one per group.
  int64_t last_step_launches() const { return last_step_launches_; }
  // A parameter's state buffer ("momentum_buffer", "exp_avg", ...): undefined until the
  // parameter's first update. The tensor is the live buffer, not a copy.
  Tensor state_buffer(const Tensor& param, const std::string& name) const;
  // How many updates a parameter has had (PyTorch's state["step"]).
  int64_t state_step(const Tensor& param) const;

 protected:
  explicit FusedOptimizer(std::vector<ParamGroup> groups);
  // Checks the groups: not empty, leaf tensors, none in two groups, valid hyper-parameters
  // (check_group). Derived constructors call it last: it needs their check_group.
  void check_groups() const;
  // A field of a saved group (set_hyperparameters); an error names it when missing or mistyped.
  double read_number(const nlohmann::json& values, const char* key) const;
  bool read_bool(const nlohmann::json& values, const char* key) const;

  // A dense span: `n` elements of parameters that lie back to back, their gradients and each
  // state buffer (in the order state_names gave), all of one dtype on one device.
  struct Span {
    DType dtype;
    Device device;
    int64_t n = 0;
    void* param = nullptr;
    const void* grad = nullptr;
    std::vector<void*> state;
    int64_t step = 0;    // the update this is, from 1
    bool fresh = false;  // the state buffers were created for this update
  };

  // Throws ember::Error naming the optimizer, the group and the bad value.
  virtual void check_group(const ParamGroup& group, size_t index) const = 0;
  // The state buffers a parameter of `group` needs, in the order Span::state lists them.
  virtual std::vector<std::string> state_names(const ParamGroup& group) const = 0;
  // Every state buffer this optimizer may keep (what load_state_dict accepts).
  virtual std::vector<std::string> all_state_names() const = 0;
  // Whether parameters with different step counts must not share a span (the bias corrections).
  virtual bool step_count_matters() const { return true; }
  // The hyper-parameters the state dict records for a group, and reading them back.
  virtual nlohmann::json hyperparameters(const ParamGroup& group) const = 0;
  virtual void set_hyperparameters(const nlohmann::json& values, ParamGroup& group) const = 0;
  // One kernel launch for the span.
  virtual void update(const ParamGroup& group, const Span& span) = 0;

 private:
  struct ParamState {
    // The parameter itself, held as PyTorch's state dict holds its keys: while the state lives,
    // no other tensor can take the parameter's address and inherit its state.
    std::shared_ptr<TensorImpl> param;
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
    bool fresh = false;
  };
  using StateMap = std::unordered_map<const TensorImpl*, ParamState>;
  static ParamState& state_of(StateMap& state, const Tensor& param);

  // Creates the missing buffers `name` of `params` (one group's, in order): zeros, one flat
  // buffer per run of parameters that lie back to back.
  static void allocate_state(const std::vector<Tensor>& params, const std::string& name,
                             StateMap& state);
  void update_group(const ParamGroup& group, size_t index);

  std::vector<ParamGroup> groups_;
  StateMap state_;
  int64_t last_step_launches_ = 0;
};

}  // namespace ember::optim
