// The small models of the seeds:
//   MNISTNet   the dAD seed's MLP: l1 784->2048, ReLU, mid = [Linear 2048->1024, BatchNorm1d,
//              ReLU, Linear 1024->512, BatchNorm1d, ReLU, Linear 512->256, BatchNorm1d, ReLU],
//              l5 256->10, and log_softmax at the end (its loss is NLL; cross-entropy on
//              log-probabilities gives the same value). 4,368,138 parameters.
//   CifarCNN   the CNN of PyTorch's CIFAR tutorial, the local-SGD seed's model: conv1 3->6 5x5,
//              max-pool 2, conv2 6->16 5x5, max-pool 2, fc1 400->120, fc2 120->84, fc3 84->10.
//              62,006 parameters.
//   MnistCNN   a small CNN for 28x28 grey images (bin/train_mnist, make demo): conv1 1->32 3x3
//              padding 1, ReLU, max-pool 2, conv2 32->64 3x3 padding 1, ReLU, max-pool 2,
//              fc1 3136->128, ReLU, fc2 128->10. 421,642 parameters.
//   Logistics  the P2P seed's multinomial logistic regression: linear 3072->10 on flattened
//              images. 30,730 parameters.
#pragma once

#include <memory>

#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/pooling.h"

namespace ember::nn {

class MNISTNet : public Module {
 public:
  explicit MNISTNet(int64_t num_classes = 10);
  Tensor forward(const Tensor& input) override;  // [N, 1, 28, 28] or [N, 784]
  std::string type_name() const override { return "MNISTNet"; }
  std::shared_ptr<Module> flatten;
  std::shared_ptr<Linear> l1, l5;
  std::shared_ptr<Sequential> mid;
};

class CifarCNN : public Module {
 public:
  explicit CifarCNN(int64_t num_classes = 10);
  Tensor forward(const Tensor& input) override;  // [N, 3, 32, 32]
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<MaxPool2d> pool;
  std::shared_ptr<Linear> fc1, fc2, fc3;
};

class MnistCNN : public Module {
 public:
  explicit MnistCNN(int64_t num_classes = 10);
  Tensor forward(const Tensor& input) override;  // [N, 1, 28, 28]
  std::string type_name() const override { return "MnistCNN"; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<MaxPool2d> pool;
  std::shared_ptr<Linear> fc1, fc2;
};

class Logistics : public Module {
 public:
  Logistics(int64_t in_features = 3072, int64_t num_classes = 10);
  Tensor forward(const Tensor& input) override;  // flattens dims >= 1
  std::string type_name() const override { return "LogisticsModel"; }
  std::shared_ptr<Linear> linear;
};

}  // namespace ember::nn
