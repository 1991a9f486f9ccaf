// Sequential and Flatten (see container.h).
#include "layers/container.h"

#include <string>

#include "engine/error.h"

namespace ember::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  add_child(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (auto& m : modules_) x = (*m)(x);
  return x;
}

void ModuleList::push_back(std::shared_ptr<Module> module) {
  add_child(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor ModuleList::forward(const Tensor&) {
  throw Error("ModuleList: a module list is not callable; call its elements");
}

std::string Flatten::extra_repr() const {
  return str_cat("start_dim=", start_dim, ", end_dim=", end_dim);
}

}  // namespace ember::nn
