// CIFAR ResNet-20/56 (see cifar_resnet.h).
#include "layers/cifar_resnet.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/init.h"
#include "layers/normalization.h"

namespace ember::nn {

namespace {

// Option A shortcut: x[:, :, ::2, ::2] with `pad` zero channels before and after.
Tensor option_a_shortcut(const Tensor& x, int64_t pad) {
  const Tensor sub = x.slice(2, 0, x.size(2), 2).slice(3, 0, x.size(3), 2);
  Shape zeros_shape = sub.shape();
  zeros_shape[1] = pad;
  const Tensor padding = zeros(zeros_shape, {x.dtype(), x.device()});
  return cat({padding, sub, padding}, 1);
}

class CifarBasicBlock : public Module {
 public:
  CifarBasicBlock(int64_t in, int64_t planes, int64_t stride) {
    conv1 = register_module("conv1", make<Conv2d>(in, planes, 3, stride, 1, false));
    bn1 = register_module("bn1", make<BatchNorm2d>(planes));
    conv2 = register_module("conv2", make<Conv2d>(planes, planes, 3, 1, 1, false));
    bn2 = register_module("bn2", make<BatchNorm2d>(planes));
    if (stride != 1 || in != planes) pad_ = planes / 4;
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = relu((*bn1)((*conv1)(x)));
    out = (*bn2)((*conv2)(out));
    return relu(out + (pad_ > 0 ? option_a_shortcut(x, pad_) : x));
  }
  std::string type_name() const override { return "BasicBlock"; }
  std::shared_ptr<Module> conv1, bn1, conv2, bn2;

 private:
  int64_t pad_ = 0;  // > 0: the shortcut subsamples and pads
};

}  // namespace

CifarResNet::CifarResNet(int n, int64_t num_classes) {
  EMBER_CHECK(n > 0 && num_classes > 0, "CifarResNet: blocks per stage (", n, ") and num_classes (",
              num_classes, ") must be positive");
  conv1 = register_module("conv1", make<Conv2d>(3, 16, 3, 1, 1, false));
  bn1 = register_module("bn1", make<BatchNorm2d>(16));
  int64_t in = 16;
  const int64_t planes[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    auto stage = make<Sequential>();
    for (int b = 0; b < n; ++b) {
      stage->push_back(make<CifarBasicBlock>(in, planes[s], b == 0 && s > 0 ? 2 : 1));
      in = planes[s];
    }
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  linear = register_module("linear", make<Linear>(64, num_classes));
  for (auto& [name, m] : named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(m)) init::kaiming_normal_(conv->weight);
    if (auto* fc = dynamic_cast<Linear*>(m)) init::kaiming_normal_(fc->weight);
  }
}

Tensor CifarResNet::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() == 4 && input.size(1) == 3, "CifarResNet: input ",
              shape_str(input.shape()), " must be images [N, 3, H, W]");
  Tensor x = relu((*bn1)((*conv1)(input)));
  for (auto& stage : stages) x = (*stage)(x);
  return (*linear)(mean(x, {2, 3}));
}

}  // namespace ember::nn
