// The CIFAR ResNets of He et al. 2016 (section 4.2): a 3x3 conv to 16 channels, three stages
// of n BasicBlocks with 16, 32, 64 channels (stride 1, 2, 2), global average pooling and a
// Linear to the classes; depth 6n + 2 (resnet20: n = 3, resnet56: n = 9).
// Shortcuts are "option A": identity, or, where the shape changes, the input subsampled by 2
// and zero-padded with planes/4 channels on each side, so they hold no parameters.
// Names and initialization (kaiming_normal on Conv and Linear weights) follow the widely used
// PyTorch version: conv1, bn1, layer1..3.{i}.conv1/bn1/conv2/bn2, linear.
#pragma once

#include <memory>
#include <vector>

#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace ember::nn {

class CifarResNet : public Module {
 public:
  CifarResNet(int blocks_per_stage, int64_t num_classes = 10);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "ResNet"; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<Module> bn1;
  std::vector<std::shared_ptr<Sequential>> stages;
  std::shared_ptr<Linear> linear;
};

}  // namespace ember::nn
