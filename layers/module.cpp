// The Module base class (see module.h).
#include "layers/module.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <sstream>

#include "engine/autograd.h"  // NoGrad, grad_mode_enabled
#include "engine/error.h"
#include "layers/flat_parameters.h"

namespace ember::nn {

namespace {

int next_module_hook_id() {
  static std::atomic<int> counter{0};
  return ++counter;
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

void check_name(const char* what, const std::string& name) {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos, "register_", what, ": name '",
              name, "' must be non-empty and contain no '.'");
}

// A few names, for error messages: "a, b, c, ... (12 in all)".
std::string some_names(const NamedTensors& named) {
  std::string out;
  for (size_t i = 0; i < named.size() && i < 8; ++i) out += (i ? ", " : "") + named[i].first;
  if (named.size() > 8) out += str_cat(", ... (", named.size(), " in all)");
  return out.empty() ? "none" : out;
}

}  // namespace

Module::~Module() = default;

// ---- calling ----

Tensor Module::operator()(const Tensor& input) {
  for (auto& [id, hook] : forward_pre_hooks_) hook(*this, input);

  // Backward hooks: route the input through an identity node (a view) so that the gradient
  // reaching it is grad_input; the output's hook records grad_output first.
  const bool backward_hooks = !backward_hooks_.empty() && grad_mode_enabled();
  const bool input_tracked = backward_hooks && input.defined() && input.requires_grad();
  const Tensor x = input_tracked ? input.view(input.shape()) : input;

  Tensor output = forward(x);

  for (auto& [id, hook] : forward_hooks_) hook(*this, input, output);

  if (backward_hooks && output.defined() && output.requires_grad()) {
    auto grad_output = std::make_shared<Tensor>();
    auto fire = [this](const Tensor& grad_in, const Tensor& grad_out) {
      for (auto& [id, hook] : backward_hooks_) hook(*this, grad_in, grad_out);
    };
    output.register_hook([grad_output, input_tracked, fire](const Tensor& g) {
      *grad_output = g;
      if (!input_tracked) fire(Tensor(), g);
      return std::optional<Tensor>();
    });
    if (input_tracked) {
      x.register_hook([grad_output, fire](const Tensor& g) {
        fire(g, *grad_output);
        return std::optional<Tensor>();
      });
    }
  }
  return output;
}

// ---- registration ----

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  check_name("parameter", name);
  EMBER_CHECK(value.defined(), "register_parameter: '", name, "' is undefined");
  if (!value.requires_grad()) value.requires_grad_(true);
  parameters_.emplace_back(name, std::move(value));
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  check_name("buffer", name);
  buffers_.push_back({name, std::move(value), persistent});
  return buffers_.back().value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name("module", name);
  EMBER_CHECK(module != nullptr, "register_module: '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

// ---- traversal ----

void Module::collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const {
  for (const auto& [name, p] : parameters_) out.emplace_back(join(prefix, name), p);
  if (!recurse) return;
  for (const auto& [name, child] : children_)
    child->collect_parameters(join(prefix, name), true, out);
}

void Module::collect_buffers(const std::string& prefix, bool recurse, bool persistent_only,
                             NamedTensors& out) const {
  for (const Buffer& b : buffers_)
    if (b.value.defined() && (b.persistent || !persistent_only))
      out.emplace_back(join(prefix, b.name), b.value);
  if (!recurse) return;
  for (const auto& [name, child] : children_)
    child->collect_buffers(join(prefix, name), true, persistent_only, out);
}

void Module::collect_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, Module*>>& out) {
  out.emplace_back(prefix, this);
  for (auto& [name, child] : children_) child->collect_modules(join(prefix, name), out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors all;
  collect_parameters("", recurse, all);
  // A parameter shared by two modules (tied weights) is listed once, as in PyTorch.
  NamedTensors unique;
  std::set<const TensorImpl*> seen;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl_ptr().get()).second) unique.push_back(std::move(entry));
  return unique;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect_buffers("", recurse, false, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  collect_modules("", out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

Tensor Module::find(const std::string& name) const {
  NamedTensors all;
  collect_parameters("", true, all);
  collect_buffers("", true, false, all);
  for (const auto& [n, t] : all)
    if (n == name) return t;
  throw Error(str_cat(type_name(), ": no parameter or buffer named '", name,
                      "'; known: ", some_names(all)));
}

// ---- state ----

NamedTensors Module::state_dict() const {
  // PyTorch's order: each module's parameters, then its buffers, then its children.
  NamedTensors out;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [name, p] : m.parameters_) out.emplace_back(join(prefix, name), p.detach());
    for (const Buffer& b : m.buffers_)
      if (b.persistent && b.value.defined())
        out.emplace_back(join(prefix, b.name), b.value.detach());
    for (const auto& [name, child] : m.children_) visit(*child, join(prefix, name));
  };
  visit(*this, "");
  return out;
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : state) {
    EMBER_CHECK(given.emplace(name, t).second, "load_state_dict: key '", name,
                "' appears twice in the state to load");
  }
  const NamedTensors own = state_dict();
  LoadResult result;
  std::vector<std::string> mismatches;
  std::set<std::string> own_names;
  for (const auto& [name, target] : own) {
    own_names.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      result.missing_keys.push_back(name);
    } else if (it->second.shape() != target.shape()) {
      mismatches.push_back(str_cat(
          "size mismatch for ", name, ": copying a tensor of shape ", shape_str(it->second.shape()),
          ", the shape in the current model is ", shape_str(target.shape())));
    }
  }
  for (const auto& [name, t] : given)
    if (!own_names.count(name)) result.unexpected_keys.push_back(name);

  const bool key_errors =
      strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (key_errors || !mismatches.empty()) {
    std::ostringstream msg;
    msg << "load_state_dict: error(s) loading the state of " << type_name() << ":";
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg << "\n  " << what << " (" << keys.size() << "): ";
      for (size_t i = 0; i < keys.size(); ++i) msg << (i ? ", " : "") << keys[i];
    };
    if (strict) {
      list("missing keys", result.missing_keys);
      list("unexpected keys", result.unexpected_keys);
    }
    for (const std::string& m : mismatches) msg << "\n  " << m;
    throw Error(msg.str());
  }

  // Copy into the live tensors: handles held elsewhere (optimizers, flat buffers) stay valid.
  NoGrad no_grad;
  for (const auto& [name, target] : own) {
    auto it = given.find(name);
    if (it != given.end()) Tensor(target).copy_(it->second);
  }
  return result;
}

// ---- mode, device, gradients ----

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

void Module::to(Device device, std::optional<DType> dtype) {
  NoGrad no_grad;
  auto move = [&](Tensor& t) {
    if (!t.defined()) return;
    const DType target = dtype && is_floating(t.dtype()) ? *dtype : t.dtype();
    if (t.device() == device && t.dtype() == target) return;
    t.set_data(t.detach().to(device).to(target));
  };
  std::function<void(Module&)> visit = [&](Module& m) {
    for (auto& [name, p] : m.parameters_) move(p);
    for (Buffer& b : m.buffers_) move(b.value);
    for (auto& [name, child] : m.children_) visit(*child);
  };
  visit(*this);
  if (layout_) flatten_parameters(layout_groups_);
}

void Module::to(DType dtype) {
  const NamedTensors params = named_parameters();
  to(params.empty() ? Device::cpu() : params.front().second.device(), dtype);
}

void Module::zero_grad() {
  NoGrad no_grad;
  if (layout_) {
    for (const FlatBuffer& b : layout_->buffers()) Tensor(b.grads).zero_();
    return;
  }
  for (auto& [name, p] : named_parameters()) {
    Tensor g = p.grad();
    if (g.defined()) g.zero_();
  }
}

const ParameterLayout& Module::flatten_parameters(
    const std::function<int(const std::string&, const Tensor&)>& group_of) {
  const NamedTensors params = named_parameters();
  std::vector<int> groups;
  for (const auto& [name, p] : params) groups.push_back(group_of ? group_of(name, p) : 0);
  layout_ = std::make_unique<ParameterLayout>(flatten(params, groups));
  layout_groups_ = group_of;
  return *layout_;
}

// ---- hooks ----

int Module::register_forward_pre_hook(ForwardPreHook hook) {
  const int id = next_module_hook_id();
  forward_pre_hooks_.emplace_back(id, std::move(hook));
  return id;
}

int Module::register_forward_hook(ForwardHook hook) {
  const int id = next_module_hook_id();
  forward_hooks_.emplace_back(id, std::move(hook));
  return id;
}

int Module::register_backward_hook(BackwardHook hook) {
  const int id = next_module_hook_id();
  backward_hooks_.emplace_back(id, std::move(hook));
  return id;
}

int Module::register_grad_ready_hook(GradReadyHook hook) {
  const int id = next_module_hook_id();
  auto shared = std::make_shared<GradReadyHook>(std::move(hook));
  std::vector<std::pair<Tensor, int>> installed;
  for (const auto& [name, p] : named_parameters()) {
    const int tensor_hook = p.register_post_accumulate_grad_hook(
        [shared, name = name](const Tensor& leaf) { (*shared)(name, leaf); });
    installed.emplace_back(p, tensor_hook);
  }
  grad_ready_hooks_[id] = std::move(installed);
  return id;
}

void Module::remove_hook(int id) {
  auto drop = [id](auto& hooks) {
    hooks.erase(std::remove_if(hooks.begin(), hooks.end(),
                               [id](const auto& entry) { return entry.first == id; }),
                hooks.end());
  };
  drop(forward_pre_hooks_);
  drop(forward_hooks_);
  drop(backward_hooks_);
  auto it = grad_ready_hooks_.find(id);
  if (it != grad_ready_hooks_.end()) {
    for (auto& [tensor, tensor_hook] : it->second) tensor.remove_hook(tensor_hook);
    grad_ready_hooks_.erase(it);
  }
}

// ---- printing ----

void Module::print(std::string& out, int indent) const {
  out += type_name() + "(" + extra_repr();
  if (!children_.empty()) {
    out += "\n";
    for (const auto& [name, child] : children_) {
      out += std::string(indent + 2, ' ') + "(" + name + "): ";
      child->print(out, indent + 2);
      out += "\n";
    }
    out += std::string(indent, ' ');
  }
  out += ")";
}

std::string Module::str() const {
  std::string out;
  print(out, 0);
  return out;
}

}  // namespace ember::nn
