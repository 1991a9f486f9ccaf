// FusedOptimizer: state, spans and the state dict (see the header for the layout argument).
#include "layers/fused_optimizer.h"

#include <algorithm>  // find
#include <cctype>     // isdigit
#include <set>
#include <utility>  // move

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"     // EMBER_CHECK, str_cat

namespace ember::optim {

namespace {

const char* kStatePrefix = "state.";

// "state.<index>.<buffer>" -> (index, buffer); false when the name has another form.
bool parse_state_name(const std::string& key, int64_t& index, std::string& buffer) {
  const size_t prefix = std::char_traits<char>::length(kStatePrefix);
  if (key.compare(0, prefix, kStatePrefix) != 0) return false;
  const size_t dot = key.find('.', prefix);
  if (dot == std::string::npos || dot == prefix || dot + 1 == key.size()) return false;
  for (size_t i = prefix; i < dot; ++i)
    if (!std::isdigit(static_cast<unsigned char>(key[i]))) return false;
  index = std::stoll(key.substr(prefix, dot - prefix));
  buffer = key.substr(dot + 1);
  return true;
}

}  // namespace

// ---- groups ---------------------------------------------------------------------------------

FusedOptimizer::FusedOptimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {}

void FusedOptimizer::check_groups() const {
  size_t total = 0;
  std::set<const TensorImpl*> seen;
  for (size_t i = 0; i < groups_.size(); ++i) {
    const ParamGroup& group = groups_[i];
    for (size_t k = 0; k < group.params.size(); ++k) {
      const Tensor& p = group.params[k];
      EMBER_CHECK(p.defined(), name(), ": parameter ", k, " of group ", i, " is undefined");
      EMBER_CHECK(p.is_leaf(), name(), ": parameter ", k, " of group ", i,
                  " is not a leaf tensor (it was computed by an op); optimize the leaf it came "
                  "from, or detach() it");
      EMBER_CHECK(seen.insert(p.impl_ptr().get()).second, name(), ": parameter ", k, " of group ",
                  i, " appears twice among the optimizer's parameters");
    }
    total += group.params.size();
    check_group(group, i);
  }
  EMBER_CHECK(total > 0, name(), ": got an empty parameter list");
}

void FusedOptimizer::add_param_group(ParamGroup group) {
  groups_.push_back(std::move(group));
  try {
    check_groups();
  } catch (...) {
    groups_.pop_back();
    throw;
  }
}

double FusedOptimizer::read_number(const nlohmann::json& values, const char* key) const {
  EMBER_CHECK(values.contains(key) && values[key].is_number(), name(),
              ".load_state_dict: a parameter group of the state has no number \"", key, "\"");
  return values[key].get<double>();
}

bool FusedOptimizer::read_bool(const nlohmann::json& values, const char* key) const {
  EMBER_CHECK(values.contains(key) && values[key].is_boolean(), name(),
              ".load_state_dict: a parameter group of the state has no true/false \"", key, "\"");
  return values[key].get<bool>();
}

// ---- state ----------------------------------------------------------------------------------

Tensor FusedOptimizer::state_buffer(const Tensor& param, const std::string& name) const {
  const auto it = state_.find(param.impl_ptr().get());
  if (it == state_.end()) return Tensor();
  const auto buffer = it->second.buffers.find(name);
  return buffer == it->second.buffers.end() ? Tensor() : buffer->second;
}

int64_t FusedOptimizer::state_step(const Tensor& param) const {
  const auto it = state_.find(param.impl_ptr().get());
  return it == state_.end() ? 0 : it->second.step;
}

FusedOptimizer::ParamState& FusedOptimizer::state_of(StateMap& state, const Tensor& param) {
  ParamState& s = state[param.impl_ptr().get()];
  if (!s.param) s.param = param.impl_ptr();
  return s;
}

void FusedOptimizer::allocate_state(const std::vector<Tensor>& params, const std::string& name,
                                    StateMap& state) {
  auto has = [&](const Tensor& p) {
    const auto it = state.find(p.impl_ptr().get());
    return it != state.end() && it->second.buffers.count(name) > 0;
  };
  size_t begin = 0;
  while (begin < params.size()) {
    if (has(params[begin])) {
      ++begin;
      continue;
    }
    size_t end = begin + 1;
    int64_t total = params[begin].numel();
    while (end < params.size() && !has(params[end]) &&
           directly_follows(params[end - 1], params[end]))
      total += params[end++].numel();
    const Tensor& first = params[begin];
    Tensor flat = zeros({total}, TensorOptions(first.dtype(), first.device()));
    int64_t offset = 0;
    for (size_t k = begin; k < end; ++k) {
      const int64_t n = params[k].numel();
      ParamState& s = state_of(state, params[k]);
      s.buffers[name] = flat.narrow(0, offset, n).view(params[k].shape());
      s.fresh = true;
      offset += n;
    }
    begin = end;
  }
}

// ---- step -----------------------------------------------------------------------------------

void FusedOptimizer::step() {
  NoGrad no_grad;  // the dense copies below must not be recorded
  // Every group is checked before any is updated: an error leaves the parameters untouched.
  for (size_t i = 0; i < groups_.size(); ++i) check_group(groups_[i], i);
  last_step_launches_ = 0;
  for (size_t i = 0; i < groups_.size(); ++i) update_group(groups_[i], i);
}

void FusedOptimizer::update_group(const ParamGroup& group, size_t index) {
  std::vector<Tensor> active;  // the parameters with a gradient, in order
  for (size_t k = 0; k < group.params.size(); ++k) {
    const Tensor& p = group.params[k];
    const Tensor grad = p.grad();
    if (!grad.defined()) continue;
    EMBER_CHECK(is_compute_float(p.dtype()) && (p.device().is_cpu() || p.dtype() == DType::F32),
                name(), ": parameter ", k, " of group ", index, " is ", dtype_name(p.dtype()),
                " on ", p.device().str(),
                "; optimizers update f32 parameters (and f64 on the CPU)");
    EMBER_CHECK(
        grad.shape() == p.shape() && grad.dtype() == p.dtype() && grad.device() == p.device(),
        name(), ": the gradient of parameter ", k, " of group ", index,
        " does not match the parameter (", shape_str(grad.shape()), " ", dtype_name(grad.dtype()),
        " on ", grad.device().str(), ")");
    active.push_back(p);
  }
  const std::vector<std::string> names = state_names(group);
  for (const std::string& name : names) allocate_state(active, name, state_);
  for (const Tensor& p : active) ++state_of(state_, p).step;

  auto joinable = [&](const Tensor& a, const Tensor& b) {
    const ParamState& sa = state_of(state_, a);
    const ParamState& sb = state_of(state_, b);
    if (!directly_follows(a, b) || !directly_follows(a.grad(), b.grad())) return false;
    if (sa.fresh != sb.fresh || (step_count_matters() && sa.step != sb.step)) return false;
    for (const std::string& name : names)
      if (!directly_follows(sa.buffers.at(name), sb.buffers.at(name))) return false;
    return true;
  };

  size_t begin = 0;
  while (begin < active.size()) {
    const Tensor& first = active[begin];
    const ParamState& s = state_of(state_, first);
    Span span;
    span.dtype = first.dtype();
    span.device = first.device();
    span.step = s.step;
    span.fresh = s.fresh;
    for (const std::string& name : names) span.state.push_back(s.buffers.at(name).data_ptr());
    size_t end = begin + 1;
    span.n = first.numel();
    if (first.is_contiguous() && first.grad().is_contiguous()) {
      while (end < active.size() && joinable(active[end - 1], active[end]))
        span.n += active[end++].numel();
      span.param = first.data_ptr();
      span.grad = first.grad().data_ptr();
      if (span.n > 0) {
        update(group, span);
        ++last_step_launches_;
      }
    } else {
      // Not dense: update a dense copy and write it back (state buffers are always dense).
      Tensor param = first.detach().contiguous();
      Tensor grad = first.grad().detach().contiguous();
      span.param = param.data_ptr();
      span.grad = grad.data_ptr();
      if (span.n > 0) {
        update(group, span);
        ++last_step_launches_;
      }
      if (!first.is_contiguous()) first.detach().copy_(param);
    }
    begin = end;
  }
  for (const Tensor& p : active) state_of(state_, p).fresh = false;
}

// ---- state dict -----------------------------------------------------------------------------

OptimizerStateDict FusedOptimizer::state_dict() const {
  OptimizerStateDict dict;
  nlohmann::json groups = nlohmann::json::array();
  nlohmann::json state = nlohmann::json::object();
  int64_t index = 0;
  for (const ParamGroup& group : groups_) {
    nlohmann::json entry = hyperparameters(group);
    if (group.initial_lr) entry["initial_lr"] = *group.initial_lr;
    entry["flags"] = group.flags;
    nlohmann::json ids = nlohmann::json::array();
    for (const Tensor& p : group.params) {
      ids.push_back(index);
      const auto it = state_.find(p.impl_ptr().get());
      if (it != state_.end()) {
        const std::string id = std::to_string(index);
        state[id] = {{"step", it->second.step}};
        for (const auto& [buffer_name, buffer] : it->second.buffers)
          dict.tensors[kStatePrefix + id + "." + buffer_name] = buffer.detach().clone();
      }
      ++index;
    }
    entry["params"] = ids;
    groups.push_back(entry);
  }
  dict.metadata = {{"optimizer", name()}, {"param_groups", groups}, {"state", state}};
  return dict;
}

void FusedOptimizer::load_state_dict(const OptimizerStateDict& dict) {
  const std::string what = name() + ".load_state_dict";
  const nlohmann::json& meta = dict.metadata;
  EMBER_CHECK(meta.is_object() && meta.contains("optimizer") && meta["optimizer"].is_string() &&
                  meta.contains("param_groups") && meta["param_groups"].is_array(),
              what,
              ": the metadata is not an optimizer state (it needs \"optimizer\" and "
              "\"param_groups\")");
  const std::string saved_kind = meta["optimizer"].get<std::string>();
  EMBER_CHECK(saved_kind == name(), what, ": the state was saved by ", saved_kind, ", not by ",
              name());
  const nlohmann::json& saved_groups = meta["param_groups"];
  EMBER_CHECK(saved_groups.size() == groups_.size(), what, ": the state has ", saved_groups.size(),
              " parameter group(s), this optimizer has ", groups_.size());

  // Saved parameter index -> this optimizer's parameter, matched by position in each group.
  std::map<int64_t, Tensor> params_by_index;
  std::vector<ParamGroup> groups = groups_;  // hyper-parameters read into copies first
  for (size_t i = 0; i < groups.size(); ++i) {
    const nlohmann::json& saved = saved_groups[i];
    EMBER_CHECK(saved.is_object() && saved.contains("params") && saved["params"].is_array(), what,
                ": parameter group ", i, " of the state has no \"params\" list");
    EMBER_CHECK(saved["params"].size() == groups[i].params.size(), what, ": parameter group ", i,
                " of the state has ", saved["params"].size(),
                " parameter(s), this optimizer's has ", groups[i].params.size());
    for (size_t k = 0; k < groups[i].params.size(); ++k) {
      const nlohmann::json& id = saved["params"][k];
      EMBER_CHECK(id.is_number_integer(), what, ": parameter group ", i,
                  " of the state lists a parameter index that is not an integer");
      EMBER_CHECK(params_by_index.emplace(id.get<int64_t>(), groups[i].params[k]).second, what,
                  ": parameter index ", id.get<int64_t>(), " appears twice in the state");
    }
    set_hyperparameters(saved, groups[i]);
    if (saved.contains("initial_lr")) groups[i].initial_lr = saved["initial_lr"].get<double>();
    if (saved.contains("flags"))
      groups[i].flags = saved["flags"].get<std::map<std::string, double>>();
    check_group(groups[i], i);
  }

  std::map<int64_t, int64_t> steps;
  if (meta.contains("state")) {
    EMBER_CHECK(meta["state"].is_object(), what, ": \"state\" is not an object");
    for (const auto& [key, entry] : meta["state"].items()) {
      int64_t index = -1;
      std::string unused;
      EMBER_CHECK(parse_state_name(kStatePrefix + key + ".x", index, unused) &&
                      params_by_index.count(index),
                  what, ": the state names parameter \"", key, "\", which no group lists");
      EMBER_CHECK(entry.is_object() && entry.contains("step") &&
                      entry["step"].is_number_integer() && entry["step"].get<int64_t>() >= 0,
                  what, ": parameter ", key, " has no step count (a non-negative integer)");
      steps[index] = entry["step"].get<int64_t>();
    }
  }

  const std::vector<std::string> known = all_state_names();
  std::map<int64_t, std::map<std::string, Tensor>> buffers;  // index -> name -> saved tensor
  for (const auto& [key, tensor] : dict.tensors) {
    int64_t index = -1;
    std::string buffer;
    EMBER_CHECK(parse_state_name(key, index, buffer), what, ": tensor \"", key,
                "\" is not named state.<parameter index>.<buffer>");
    EMBER_CHECK(std::find(known.begin(), known.end(), buffer) != known.end(), what, ": tensor \"",
                key, "\": ", name(), " keeps no state called \"", buffer, "\"");
    const auto param = params_by_index.find(index);
    EMBER_CHECK(param != params_by_index.end(), what, ": tensor \"", key, "\" is for parameter ",
                index, ", which no group lists");
    EMBER_CHECK(tensor.defined() && tensor.shape() == param->second.shape(), what, ": tensor \"",
                key, "\" has shape ", tensor.defined() ? shape_str(tensor.shape()) : "(undefined)",
                ", parameter ", index, " has shape ", shape_str(param->second.shape()));
    EMBER_CHECK(steps.count(index), what, ": tensor \"", key, "\" has no step count for parameter ",
                index, " in the metadata's \"state\"");
    buffers[index][buffer] = tensor;
  }

  // Everything checked: replace the hyper-parameters and the state. The buffers are laid out as
  // step() lays them out (one flat buffer per run of adjacent parameters), then filled.
  NoGrad no_grad;
  StateMap state;
  for (size_t i = 0; i < groups.size(); ++i) {
    const nlohmann::json& ids = saved_groups[i]["params"];
    for (const std::string& buffer : known) {
      std::vector<Tensor> holders;
      for (size_t k = 0; k < ids.size(); ++k) {
        const auto saved = buffers.find(ids[k].get<int64_t>());
        if (saved != buffers.end() && saved->second.count(buffer))
          holders.push_back(groups[i].params[k]);
      }
      allocate_state(holders, buffer, state);
    }
    for (size_t k = 0; k < ids.size(); ++k) {
      const int64_t index = ids[k].get<int64_t>();
      if (!steps.count(index)) continue;
      ParamState& s = state_of(state, groups[i].params[k]);
      s.step = steps[index];
      s.fresh = false;
      if (buffers.count(index))
        for (const auto& [buffer, saved] : buffers[index]) s.buffers.at(buffer).copy_(saved);
    }
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    std::vector<Tensor> params = std::move(groups_[i].params);
    groups_[i] = std::move(groups[i]);
    groups_[i].params = std::move(params);
  }
  state_ = std::move(state);
}

}  // namespace ember::optim
