// ResNet blocks and networks (see resnet.h).
#include "layers/resnet.h"

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/normalization.h"
#include "layers/pooling.h"

namespace ember::nn {

std::shared_ptr<Module> make_resnet_norm(int64_t channels, int64_t group_channels) {
  if (group_channels > 0)
    return make<GroupNorm>((channels + group_channels - 1) / group_channels, channels);
  return make<BatchNorm2d>(channels);
}

namespace {

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return make<Conv2d>(in, out, 3, stride, 1, /*bias=*/false);
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return make<Conv2d>(in, out, 1, stride, 0, /*bias=*/false);
}

// Two 3x3 convolutions; out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<Sequential> downsample,
             int64_t group_channels) {
    conv1 = register_module("conv1", conv3x3(in, planes, stride));
    bn1 = register_module("bn1", make_resnet_norm(planes, group_channels));
    relu = register_module("relu", make<ReLU>());
    conv2 = register_module("conv2", conv3x3(planes, planes, 1));
    bn2 = register_module("bn2", make_resnet_norm(planes, group_channels));
    if (downsample) this->downsample = register_module("downsample", downsample);
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = (*relu)((*bn1)((*conv1)(x)));
    out = (*bn2)((*conv2)(out));
    return (*relu)(out + (downsample ? (*downsample)(x) : x));
  }
  std::string type_name() const override { return "BasicBlock"; }
  std::shared_ptr<Module> conv1, bn1, relu, conv2, bn2;
  std::shared_ptr<Sequential> downsample;
};

// 1x1 reduce, 3x3 (with the stride), 1x1 expand by 4.
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<Sequential> downsample,
             int64_t group_channels) {
    conv1 = register_module("conv1", conv1x1(in, planes, 1));
    bn1 = register_module("bn1", make_resnet_norm(planes, group_channels));
    conv2 = register_module("conv2", conv3x3(planes, planes, stride));
    bn2 = register_module("bn2", make_resnet_norm(planes, group_channels));
    conv3 = register_module("conv3", conv1x1(planes, planes * kExpansion, 1));
    bn3 = register_module("bn3", make_resnet_norm(planes * kExpansion, group_channels));
    relu = register_module("relu", make<ReLU>());
    if (downsample) this->downsample = register_module("downsample", downsample);
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = (*relu)((*bn1)((*conv1)(x)));
    out = (*relu)((*bn2)((*conv2)(out)));
    out = (*bn3)((*conv3)(out));
    return (*relu)(out + (downsample ? (*downsample)(x) : x));
  }
  std::string type_name() const override { return "Bottleneck"; }
  std::shared_ptr<Module> conv1, bn1, conv2, bn2, conv3, bn3, relu;
  std::shared_ptr<Sequential> downsample;
};

}  // namespace

ResNet::ResNet(const ResNetConfig& cfg) : config(cfg) {
  EMBER_CHECK(cfg.blocks.size() == 4, "ResNet: expected 4 stages, got ", cfg.blocks.size());
  EMBER_CHECK(cfg.num_classes > 0, "ResNet: num_classes must be positive, got ", cfg.num_classes);
  int64_t in_planes = 64;
  conv1 = register_module("conv1", cfg.cifar_stem ? make<Conv2d>(3, 64, 3, 1, 1, false)
                                                  : make<Conv2d>(3, 64, 7, 2, 3, false));
  bn1 = register_module("bn1", make_resnet_norm(64, cfg.group_channels));
  relu = register_module("relu", make<ReLU>());
  if (cfg.cifar_stem)
    maxpool = register_module("maxpool", make<Identity>());
  else
    maxpool = register_module("maxpool", make<MaxPool2d>(3, 2, 1));
  if (cfg.drop_rate > 0) dropout1 = register_module("dropout1", make<Dropout2d>(cfg.drop_rate));
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    auto stage = make_stage(in_planes, planes[s], cfg.blocks[s], s == 0 ? 1 : 2,
                            s < 3 ? cfg.drop_rate : 0.0);
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  avgpool = register_module("avgpool", make<AdaptiveAvgPool2d>(1, 1));
  if (cfg.last_drop_rate > 0)
    dropout_fc = register_module("dropout_fc", make<Dropout>(cfg.last_drop_rate));
  fc = register_module("fc", make<Linear>(in_planes, cfg.num_classes));

  if (cfg.torchvision_init) {
    for (auto& [name, m] : named_modules()) {
      if (auto* conv = dynamic_cast<Conv2d*>(m)) {
        init::kaiming_normal_(conv->weight, 0, "fan_out", "relu");
      } else if (auto* bn = dynamic_cast<BatchNorm*>(m)) {
        init::ones_(bn->weight);
        init::zeros_(bn->bias);
      } else if (auto* gn = dynamic_cast<GroupNorm*>(m)) {
        init::ones_(gn->weight);
        init::zeros_(gn->bias);
      }
    }
  }
}

std::shared_ptr<Sequential> ResNet::make_stage(int64_t& in_planes, int64_t planes, int blocks,
                                               int64_t stride, double drop_rate) {
  const int64_t expansion = config.bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  auto stage = make<Sequential>();
  for (int b = 0; b < blocks; ++b) {
    const int64_t block_stride = b == 0 ? stride : 1;
    std::shared_ptr<Sequential> downsample;
    if (b == 0 && (stride != 1 || in_planes != planes * expansion)) {
      downsample = make<Sequential>(std::vector<std::shared_ptr<Module>>{
          conv1x1(in_planes, planes * expansion, stride),
          make_resnet_norm(planes * expansion, config.group_channels)});
    }
    if (config.bottleneck)
      stage->push_back(
          make<Bottleneck>(in_planes, planes, block_stride, downsample, config.group_channels));
    else
      stage->push_back(
          make<BasicBlock>(in_planes, planes, block_stride, downsample, config.group_channels));
    in_planes = planes * expansion;
  }
  if (drop_rate > 0) stage->push_back(make<Dropout2d>(drop_rate));
  return stage;
}

Tensor ResNet::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() == 4 && input.size(1) == 3, "ResNet: input ", shape_str(input.shape()),
              " must be images [N, 3, H, W]");
  Tensor x = (*maxpool)((*relu)((*bn1)((*conv1)(input))));
  if (dropout1) x = (*dropout1)(x);
  for (auto& stage : stages) x = (*stage)(x);
  x = (*avgpool)(x).flatten(1);
  if (dropout_fc) x = (*dropout_fc)(x);
  return (*fc)(x);
}

}  // namespace ember::nn
