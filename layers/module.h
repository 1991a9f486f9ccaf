// Module: the building block of models, as torch.nn.Module.
//
// A module owns parameters (leaf tensors that require grad), buffers (state that is saved but
// not trained: BatchNorm's running statistics) and child modules, each under a name. Names join
// with dots into the keys PyTorch's state_dict uses ("layer1.0.conv1.weight",
// "bn1.running_mean", "bn1.num_batches_tracked"), so weights move between ember and PyTorch
// unchanged.
//
// Calling a module (module(x)) runs forward() between its hooks:
//   forward pre-hooks   see the input before forward;
//   forward hooks       see the input and the output (the activations);
//   backward hooks      see, during backward, grad_output = dL/d output (the deltas) and
//                       grad_input = dL/d input (undefined when the input needs no gradient).
// Backward hooks work as PyTorch's full backward hooks: the input passes through an identity
// node whose gradient is grad_input, and the output's tensor hook records grad_output. Hooks
// capture the module by reference: a module must outlive the graphs it built.
//
// Parameters may be gathered into one flat buffer per dtype and device (flatten_parameters,
// layers/flat_parameters.h): each parameter then is a view of it, and so is its gradient.
// Models from the registry come flattened; to() keeps them so.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "engine/safetensors.h"      // NamedTensors
#include "layers/flat_parameters.h"  // ParameterLayout

namespace ember::nn {

class Module;

using ember::NamedTensors;  // engine/safetensors.h

using ForwardPreHook = std::function<void(Module& module, const Tensor& input)>;
using ForwardHook = std::function<void(Module& module, const Tensor& input, const Tensor& output)>;
// grad_input is undefined when the module's input does not require a gradient (raw data).
using BackwardHook =
    std::function<void(Module& module, const Tensor& grad_input, const Tensor& grad_output)>;
// Fires once a parameter's gradient is final for this backward pass.
using GradReadyHook = std::function<void(const std::string& name, const Tensor& parameter)>;

// What load_state_dict found (strict loading throws instead of returning a non-empty list).
struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module {
 public:
  Module() = default;
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. Call the module (operator()) rather than forward() so hooks run.
  virtual Tensor forward(const Tensor& input) = 0;
  Tensor operator()(const Tensor& input);

  // PyTorch's class name ("Conv2d") and the arguments printed beside it ("3, 64, ...").
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return ""; }
  // The module tree as PyTorch prints it.
  std::string str() const;

  // ---- what the module holds (registration order, as PyTorch) ----
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // This module (name "") and every descendant, depth first, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t num_parameters() const;
  // The parameter or buffer of that dotted name; an error lists a few of the known names.
  Tensor find(const std::string& name) const;

  // ---- state ----
  // Parameters and persistent buffers under their dotted names (detached handles to the live
  // values, not copies).
  NamedTensors state_dict() const;
  // Copies values into the existing tensors (never rebinds them), converting dtype and device.
  // strict: every key must match both ways; shape mismatches are always an error. The error
  // lists every missing and unexpected key and every mismatched shape.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);

  // ---- mode, device, gradients ----
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves parameters and buffers (and converts floating ones to `dtype` when given), keeping
  // their identity; a flattened model is flattened again on the new device.
  void to(Device device, std::optional<DType> dtype = std::nullopt);
  void to(DType dtype);
  // Zeroes gradients in place (one fill of the flat gradient buffer when flattened).
  void zero_grad();

  // ---- flat storage (layers/flat_parameters.h) ----
  // Gathers all parameters into one flat buffer per dtype and device, each parameter a view
  // in registration order, and gives each a gradient that is a view of a flat gradient
  // buffer. group_of assigns each parameter a group number (default 0).
  const ParameterLayout& flatten_parameters(
      const std::function<int(const std::string& name, const Tensor& parameter)>& group_of =
          nullptr);
  // The layout, or null before flatten_parameters.
  const ParameterLayout* parameter_layout() const { return layout_.get(); }

  // ---- hooks; each returns an id for remove_hook ----
  int register_forward_pre_hook(ForwardPreHook hook);
  int register_forward_hook(ForwardHook hook);
  int register_backward_hook(BackwardHook hook);
  // On every parameter of this module and its descendants.
  int register_grad_ready_hook(GradReadyHook hook);
  void remove_hook(int id);

 protected:
  // For constructors of concrete modules.
  Tensor& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  void add_child(const std::string& name, std::shared_ptr<Module> module);

  bool training_ = true;

 private:
  struct Buffer {
    std::string name;
    Tensor value;
    bool persistent;
  };
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;

  std::vector<std::pair<int, ForwardPreHook>> forward_pre_hooks_;
  std::vector<std::pair<int, ForwardHook>> forward_hooks_;
  std::vector<std::pair<int, BackwardHook>> backward_hooks_;
  // A module-level grad-ready hook is one post-accumulate hook per parameter.
  std::map<int, std::vector<std::pair<Tensor, int>>> grad_ready_hooks_;

  std::unique_ptr<ParameterLayout> layout_;
  std::function<int(const std::string&, const Tensor&)> layout_groups_;

  void collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const;
  void collect_buffers(const std::string& prefix, bool recurse, bool persistent_only,
                       NamedTensors& out) const;
  void collect_modules(const std::string& prefix,
                       std::vector<std::pair<std::string, Module*>>& out);
  void print(std::string& out, int indent) const;
};

// Builds a module held by shared_ptr, the way modules are always held:
//   auto fc = nn::make<nn::Linear>(784, 10);
template <typename M, typename... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace ember::nn
