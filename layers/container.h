// Structural modules: Sequential and ModuleList (children named "0", "1", ... as in
// PyTorch), Identity and Flatten.
#pragma once

#include <memory>
#include <vector>

#include "layers/module.h"

namespace ember::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  // Appends a module under the next index.
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const { return *modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Holds modules under "0", "1", ... without calling them (torch.nn.ModuleList): for models
// whose forward visits children in its own way.
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;  // an error: a list is not callable
  std::string type_name() const override { return "ModuleList"; }
  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const { return *modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
  std::string type_name() const override { return "Identity"; }
};

// Flattens dims start_dim..end_dim into one (default: all but the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override { return input.flatten(start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

}  // namespace ember::nn
