// MNISTNet, CifarCNN, MnistCNN and Logistics (see small_models.h).
#include "layers/small_models.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/normalization.h"

namespace ember::nn {

MNISTNet::MNISTNet(int64_t num_classes) {
  flatten = register_module("flatten", make<Flatten>(1));
  l1 = register_module("l1", make<Linear>(784, 2048));
  mid = register_module("mid", make<Sequential>(std::vector<std::shared_ptr<Module>>{
                                   make<Linear>(2048, 1024), make<BatchNorm1d>(1024), make<ReLU>(),
                                   make<Linear>(1024, 512), make<BatchNorm1d>(512), make<ReLU>(),
                                   make<Linear>(512, 256), make<BatchNorm1d>(256), make<ReLU>()}));
  l5 = register_module("l5", make<Linear>(256, num_classes));
}

Tensor MNISTNet::forward(const Tensor& input) {
  const Tensor x = (*flatten)(input);
  EMBER_CHECK(x.dim() == 2 && x.size(1) == 784, "MNISTNet: input ", shape_str(input.shape()),
              " must be [N, 1, 28, 28] or [N, 784]");
  return log_softmax((*l5)((*mid)(relu((*l1)(x)))), 1);
}

CifarCNN::CifarCNN(int64_t num_classes) {
  conv1 = register_module("conv1", make<Conv2d>(3, 6, 5));
  pool = register_module("pool", make<MaxPool2d>(2, 2));
  conv2 = register_module("conv2", make<Conv2d>(6, 16, 5));
  fc1 = register_module("fc1", make<Linear>(16 * 5 * 5, 120));
  fc2 = register_module("fc2", make<Linear>(120, 84));
  fc3 = register_module("fc3", make<Linear>(84, num_classes));
}

Tensor CifarCNN::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() == 4 && input.size(1) == 3 && input.size(2) == 32 && input.size(3) == 32,
              "cifar_cnn: input ", shape_str(input.shape()), " must be [N, 3, 32, 32]");
  Tensor x = (*pool)(relu((*conv1)(input)));
  x = (*pool)(relu((*conv2)(x))).flatten(1);
  return (*fc3)(relu((*fc2)(relu((*fc1)(x)))));
}

MnistCNN::MnistCNN(int64_t num_classes) {
  conv1 = register_module("conv1", make<Conv2d>(1, 32, 3, 1, 1));
  pool = register_module("pool", make<MaxPool2d>(2, 2));
  conv2 = register_module("conv2", make<Conv2d>(32, 64, 3, 1, 1));
  fc1 = register_module("fc1", make<Linear>(64 * 7 * 7, 128));
  fc2 = register_module("fc2", make<Linear>(128, num_classes));
}

Tensor MnistCNN::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() == 4 && input.size(1) == 1 && input.size(2) == 28 && input.size(3) == 28,
              "mnist_cnn: input ", shape_str(input.shape()), " must be [N, 1, 28, 28]");
  Tensor x = (*pool)(relu((*conv1)(input)));
  x = (*pool)(relu((*conv2)(x))).flatten(1);
  return (*fc2)(relu((*fc1)(x)));
}

Logistics::Logistics(int64_t in_features, int64_t num_classes) {
  linear = register_module("linear", make<Linear>(in_features, num_classes));
}

Tensor Logistics::forward(const Tensor& input) {
  return (*linear)(input.dim() > 2 ? input.flatten(1) : input);
}

}  // namespace ember::nn
