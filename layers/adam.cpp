// Adam and AdamW: hyper-parameter checks and the kernel call (the equations are in the header).
#include "layers/adam.h"

#include <utility>  // move

#include "engine/error.h"    // EMBER_CHECK
#include "engine/runtime.h"  // kernels_for, stream_for

namespace ember::optim {

ParamGroup AdamOptions::group(std::vector<Tensor> params) const {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = lr;
  g.beta1 = beta1;
  g.beta2 = beta2;
  g.eps = eps;
  g.weight_decay = weight_decay;
  g.amsgrad = amsgrad;
  g.maximize = maximize;
  return g;
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{options.group(std::move(params))}, false) {}

Adam::Adam(std::vector<ParamGroup> groups) : Adam(std::move(groups), false) {}

Adam::Adam(std::vector<ParamGroup> groups, bool decoupled_weight_decay)
    : FusedOptimizer(std::move(groups)), decoupled_weight_decay_(decoupled_weight_decay) {
  check_groups();
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(std::vector<ParamGroup>{options.group(std::move(params))}, true) {}

AdamW::AdamW(std::vector<ParamGroup> groups) : Adam(std::move(groups), true) {}

void Adam::check_group(const ParamGroup& g, size_t index) const {
  const std::string who = name();
  EMBER_CHECK(g.lr >= 0, who, ": invalid learning rate ", g.lr, " in group ", index,
              " (it must be >= 0)");
  EMBER_CHECK(g.eps >= 0, who, ": invalid eps ", g.eps, " in group ", index, " (it must be >= 0)");
  EMBER_CHECK(g.beta1 >= 0 && g.beta1 < 1, who, ": invalid beta1 ", g.beta1, " in group ", index,
              " (it must be in [0, 1))");
  EMBER_CHECK(g.beta2 >= 0 && g.beta2 < 1, who, ": invalid beta2 ", g.beta2, " in group ", index,
              " (it must be in [0, 1))");
  EMBER_CHECK(g.weight_decay >= 0, who, ": invalid weight_decay ", g.weight_decay, " in group ",
              index, " (it must be >= 0)");
}

std::vector<std::string> Adam::state_names(const ParamGroup& group) const {
  if (group.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

nlohmann::json Adam::hyperparameters(const ParamGroup& g) const {
  return {{"lr", g.lr},           {"betas", {g.beta1, g.beta2}},
          {"eps", g.eps},         {"weight_decay", g.weight_decay},
          {"amsgrad", g.amsgrad}, {"maximize", g.maximize}};
}

void Adam::set_hyperparameters(const nlohmann::json& values, ParamGroup& g) const {
  g.lr = read_number(values, "lr");
  EMBER_CHECK(values.contains("betas") && values["betas"].is_array() &&
                  values["betas"].size() == 2 && values["betas"][0].is_number() &&
                  values["betas"][1].is_number(),
              name(), ".load_state_dict: a parameter group of the state has no \"betas\" pair");
  g.beta1 = values["betas"][0].get<double>();
  g.beta2 = values["betas"][1].get<double>();
  g.eps = read_number(values, "eps");
  g.weight_decay = read_number(values, "weight_decay");
  g.amsgrad = read_bool(values, "amsgrad");
  g.maximize = read_bool(values, "maximize");
}

void Adam::update(const ParamGroup& g, const Span& span) {
  kernels::AdamHyperparameters h;
  h.lr = g.lr;
  h.beta1 = g.beta1;
  h.beta2 = g.beta2;
  h.eps = g.eps;
  h.weight_decay = g.weight_decay;
  h.amsgrad = g.amsgrad;
  h.maximize = g.maximize;
  h.decoupled_weight_decay = decoupled_weight_decay_;
  h.step = span.step;
  void* max_exp_avg_sq = g.amsgrad ? span.state[2] : nullptr;
  kernels_for(span.device)
      .adam_step(span.dtype, span.n, span.param, span.grad, span.state[0], span.state[1],
                 max_exp_avg_sq, h, stream_for(span.device));
}

}  // namespace ember::optim
