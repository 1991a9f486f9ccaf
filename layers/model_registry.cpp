// The model registry (see model_registry.h).
#include "layers/model_registry.h"

#include <functional>

#include "engine/error.h"
#include "layers/cifar_resnet.h"
#include "layers/resnet.h"
#include "layers/small_models.h"
#include "layers/vit.h"

namespace ember::nn {

namespace {

struct Entry {
  ModelInfo info;
  std::function<std::shared_ptr<Module>(int64_t classes, const ModelOptions&)> build;
};

std::shared_ptr<Module> torchvision_resnet(bool bottleneck, std::vector<int> blocks,
                                           int64_t classes, bool cifar_stem) {
  ResNetConfig c;
  c.bottleneck = bottleneck;
  c.blocks = std::move(blocks);
  c.num_classes = classes;
  c.cifar_stem = cifar_stem;
  return make<ResNet>(c);
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {{"cifar_cnn",
        "the CNN of PyTorch's CIFAR tutorial (local-SGD seed), 62,006 parameters",
        {3, 32, 32},
        10,
        "cifar"},
       [](int64_t k, const ModelOptions&) { return make<CifarCNN>(k); }},
      {{"logistics",
        "multinomial logistic regression 3072 -> 10 (P2P seed)",
        {3, 32, 32},
        10,
        "cifar"},
       [](int64_t k, const ModelOptions&) { return make<Logistics>(3072, k); }},
      {{"resnet20", "He et al.'s CIFAR ResNet-20, option A shortcuts", {3, 32, 32}, 10, "cifar"},
       [](int64_t k, const ModelOptions&) { return make<CifarResNet>(3, k); }},
      {{"resnet56", "He et al.'s CIFAR ResNet-56, option A shortcuts", {3, 32, 32}, 10, "cifar"},
       [](int64_t k, const ModelOptions&) { return make<CifarResNet>(9, k); }},
      {{"resnet18_cifar", "ResNet-18 with a 3x3 stem and no max-pool", {3, 32, 32}, 10, "cifar"},
       [](int64_t k, const ModelOptions&) {
         return torchvision_resnet(false, {2, 2, 2, 2}, k, true);
       }},
      {{"resnet50_gn", "ResNet-50 with GroupNorm and dropout (P2P seed)", {3, 32, 32}, 10, "cifar"},
       [](int64_t k, const ModelOptions& o) {
         ResNetConfig c;
         c.bottleneck = true;
         c.blocks = {3, 4, 6, 3};
         c.num_classes = k;
         c.group_channels = o.group_channels;
         c.drop_rate = o.drop_rate;
         c.last_drop_rate = o.last_drop_rate;
         c.torchvision_init = false;  // the seed keeps PyTorch's defaults
         return std::shared_ptr<Module>(make<ResNet>(c));
       }},
      {{"mnistnet",
        "the dAD seed's MLP with BatchNorm, 4,368,138 parameters",
        {1, 28, 28},
        10,
        "mnist"},
       [](int64_t k, const ModelOptions&) { return make<MNISTNet>(k); }},
      {{"mnist_cnn",
        "a small CNN (two 3x3 convolutions, two linear layers), 421,642 parameters",
        {1, 28, 28},
        10,
        "mnist"},
       [](int64_t k, const ModelOptions&) { return make<MnistCNN>(k); }},
      {{"vit_linformer",
        "ViT with Linformer attention (dAD seed), 224x224 images",
        {3, 224, 224},
        2,
        "dogsvscats"},
       [](int64_t k, const ModelOptions&) {
         ViTConfig c;
         c.num_classes = k;
         return make<ViT>(c);
       }},
      {{"resnet18", "torchvision ResNet-18", {3, 224, 224}, 1000, "imagenet"},
       [](int64_t k, const ModelOptions&) {
         return torchvision_resnet(false, {2, 2, 2, 2}, k, false);
       }},
      {{"resnet34", "torchvision ResNet-34", {3, 224, 224}, 1000, "imagenet"},
       [](int64_t k, const ModelOptions&) {
         return torchvision_resnet(false, {3, 4, 6, 3}, k, false);
       }},
      {{"resnet50", "torchvision ResNet-50", {3, 224, 224}, 1000, "imagenet"},
       [](int64_t k, const ModelOptions&) {
         return torchvision_resnet(true, {3, 4, 6, 3}, k, false);
       }},
  };
  return table;
}

const Entry& find_entry(const std::string& name) {
  for (const Entry& e : entries())
    if (e.info.name == name) return e;
  std::string known;
  for (const Entry& e : entries()) known += (known.empty() ? "" : ", ") + e.info.name;
  throw Error(str_cat("unknown model '", name, "'; the registered models are: ", known));
}

}  // namespace

const std::vector<ModelInfo>& registered_models() {
  static const std::vector<ModelInfo> infos = [] {
    std::vector<ModelInfo> out;
    for (const Entry& e : entries()) out.push_back(e.info);
    return out;
  }();
  return infos;
}

std::vector<std::string> model_names(const std::string& family) {
  std::vector<std::string> out;
  for (const Entry& e : entries())
    if (family.empty() || e.info.family == family) out.push_back(e.info.name);
  return out;
}

const ModelInfo& model_info(const std::string& name) {
  return find_entry(name).info;
}

std::shared_ptr<Module> make_model(const std::string& name, const ModelOptions& options) {
  const Entry& e = find_entry(name);
  EMBER_CHECK(options.num_classes >= 0, "make_model(", name, "): num_classes must be positive");
  std::shared_ptr<Module> model =
      e.build(options.num_classes > 0 ? options.num_classes : e.info.num_classes, options);
  model->flatten_parameters();
  return model;
}

}  // namespace ember::nn
