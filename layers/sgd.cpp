// SGD: hyper-parameter checks and the kernel call (the equations are in the header).
#include "layers/sgd.h"

#include <utility>  // move

#include "engine/error.h"    // EMBER_CHECK
#include "engine/runtime.h"  // kernels_for, stream_for

namespace ember::optim {

ParamGroup SGDOptions::group(std::vector<Tensor> params) const {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = lr;
  g.momentum = momentum;
  g.dampening = dampening;
  g.weight_decay = weight_decay;
  g.nesterov = nesterov;
  g.maximize = maximize;
  return g;
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{options.group(std::move(params))}) {}

SGD::SGD(std::vector<ParamGroup> groups) : FusedOptimizer(std::move(groups)) {
  check_groups();
}

void SGD::check_group(const ParamGroup& g, size_t index) const {
  EMBER_CHECK(g.lr >= 0, "SGD: invalid learning rate ", g.lr, " in group ", index,
              " (it must be >= 0)");
  EMBER_CHECK(g.momentum >= 0, "SGD: invalid momentum ", g.momentum, " in group ", index,
              " (it must be >= 0)");
  EMBER_CHECK(g.weight_decay >= 0, "SGD: invalid weight_decay ", g.weight_decay, " in group ",
              index, " (it must be >= 0)");
  EMBER_CHECK(!g.nesterov || (g.momentum > 0 && g.dampening == 0),
              "SGD: Nesterov momentum requires a momentum and zero dampening (group ", index,
              " has momentum ", g.momentum, " and dampening ", g.dampening, ")");
}

std::vector<std::string> SGD::state_names(const ParamGroup& group) const {
  if (group.momentum == 0) return {};
  return {"momentum_buffer"};
}

nlohmann::json SGD::hyperparameters(const ParamGroup& g) const {
  return {{"lr", g.lr},
          {"momentum", g.momentum},
          {"dampening", g.dampening},
          {"weight_decay", g.weight_decay},
          {"nesterov", g.nesterov},
          {"maximize", g.maximize}};
}

void SGD::set_hyperparameters(const nlohmann::json& values, ParamGroup& g) const {
  g.lr = read_number(values, "lr");
  g.momentum = read_number(values, "momentum");
  g.dampening = read_number(values, "dampening");
  g.weight_decay = read_number(values, "weight_decay");
  g.nesterov = read_bool(values, "nesterov");
  g.maximize = read_bool(values, "maximize");
}

void SGD::update(const ParamGroup& g, const Span& span) {
  kernels::SgdHyperparameters h;
  h.lr = g.lr;
  h.momentum = g.momentum;
  h.dampening = g.dampening;
  h.weight_decay = g.weight_decay;
  h.nesterov = g.nesterov;
  h.maximize = g.maximize;
  h.first_step = span.fresh;
  void* buffer = span.state.empty() ? nullptr : span.state[0];
  kernels_for(span.device)
      .sgd_step(span.dtype, span.n, span.param, span.grad, buffer, h, stream_for(span.device));
}

}  // namespace ember::optim
