// ResNet (He et al. 2016) with torchvision's structure and names: conv1, bn1, relu, maxpool,
// layer1..layer4 of blocks (conv1, bn1, conv2, bn2[, conv3, bn3], downsample.0/1), avgpool,
// fc. The stride of a Bottleneck sits on its 3x3 convolution (ResNet v1.5).
//
// Variants, all with torchvision's parameter names:
//   resnet18/34/50       torchvision's ImageNet models (1000 classes).
//   resnet18_cifar       3x3 stride-1 stem without max-pool, for 32x32 images.
//   resnet50_gn          the P2P seed's: every norm a GroupNorm(ceil(C / group_channels), C)
//                        (still named bn*), Dropout2d(drop_rate) after the stem and layers 1-3,
//                        Dropout(last_drop_rate) before fc, PyTorch's default initialization.
// torchvision's initialization: convolutions kaiming_normal(fan_out, relu), norm weight 1 and
// bias 0, fc PyTorch's default.
#pragma once

#include <memory>
#include <vector>

#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace ember::nn {

struct ResNetConfig {
  bool bottleneck = false;                 // BasicBlock (18, 34) or Bottleneck (50)
  std::vector<int> blocks = {2, 2, 2, 2};  // per stage
  int64_t num_classes = 1000;
  bool cifar_stem = false;     // 3x3/1 conv, no max-pool
  int64_t group_channels = 0;  // > 0: GroupNorm with ceil(C / group_channels) groups
  double drop_rate = 0;        // Dropout2d after the stem and stages 1-3 (P2P seed)
  double last_drop_rate = 0;   // Dropout before fc (P2P seed)
  bool torchvision_init = true;
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "ResNet"; }

  ResNetConfig config;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<Module> bn1, relu, maxpool, dropout1, avgpool, dropout_fc;
  std::vector<std::shared_ptr<Sequential>> stages;  // layer1..layer4
  std::shared_ptr<Linear> fc;

 private:
  std::shared_ptr<Sequential> make_stage(int64_t& in_planes, int64_t planes, int blocks,
                                         int64_t stride, double drop_rate);
};

// The norm layer a ResNet uses for C channels.
std::shared_ptr<Module> make_resnet_norm(int64_t channels, int64_t group_channels);

}  // namespace ember::nn
