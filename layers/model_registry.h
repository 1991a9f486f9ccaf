// Models by name, for the programs (-a/--arch) and tests:
//   auto model = nn::make_model("resnet18_cifar");
// Every model comes with PyTorch's parameter names and default initialization, and with its
// parameters already in flat storage (Module::flatten_parameters). An unknown name is an error
// that lists the known ones.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace ember::nn {

struct ModelInfo {
  std::string name;
  std::string description;
  Shape input_shape;    // one sample: [C, H, W] (or [features])
  int64_t num_classes;  // the default
  std::string family;   // "cifar", "mnist", "imagenet", "dogsvscats": which data it expects
};

struct ModelOptions {
  int64_t num_classes = 0;      // 0: the model's default
  double drop_rate = 0;         // resnet50_gn: Dropout2d after the stem and stages 1-3
  double last_drop_rate = 0;    // resnet50_gn: Dropout before fc
  int64_t group_channels = 32;  // resnet50_gn: channels per GroupNorm group
};

const std::vector<ModelInfo>& registered_models();
// The names of the models of one family ("" for all), in registry order.
std::vector<std::string> model_names(const std::string& family = "");
const ModelInfo& model_info(const std::string& name);
std::shared_ptr<Module> make_model(const std::string& name, const ModelOptions& options = {});

}  // namespace ember::nn
