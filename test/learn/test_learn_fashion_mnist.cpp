// Real learning on real data: a two-layer perceptron built from the engine's ops alone
// (matmul, relu, cross_entropy, autograd, an SGD step under NoGrad) trains on Fashion-MNIST
// (Debian's dataset-fashion-mnist, installed by scripts/setup.sh) and must reach 82% test
// accuracy in two epochs. Published figures for such a network are 85-88%.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>  // getenv
#include <string>
#include <vector>

#include "datasets/idx.h"
#include "layers/activation.h"
#include "layers/container.h"
#include "layers/linear.h"
#include "layers/normalization.h"
#include "layers/sgd.h"
#include "support.h"

using namespace ember;

namespace {

// Debian's folder, or EMBER_FASHION_MNIST (set by scripts/gpu_env.sh where the data set was
// carried to a machine without the package).
std::string data_folder() {
  const char* folder = std::getenv("EMBER_FASHION_MNIST");
  return folder && *folder ? std::string(folder) : "/usr/share/datasets/fashion-mnist";
}

struct Split {
  Tensor images;  // [n, 784] f32 in [0, 1]
  Tensor labels;  // [n] i64
};

// One set of the data set (datasets/idx.h checks the files), as tensors on `device`.
Split to_tensors(const data::Dataset& set, int64_t n, Device device) {
  const auto& images = dynamic_cast<const data::InMemoryImageDataset&>(set);
  REQUIRE(static_cast<int64_t>(images.size()) == n);
  REQUIRE(images.image_bytes() == 784);
  Tensor pixels = tensor(images.pixels(), {n, 784}).to(DType::F32) / 255.0;
  return {pixels.to(device), tensor(images.labels(), {n}).to(device)};
}

// The training set (60,000) and the test set (10,000).
std::pair<Split, Split> load(Device device) {
  const data::TrainTest data = data::load_mnist(data_folder(), data::MnistKind::FashionMnist);
  return {to_tensors(*data.train, 60000, device), to_tensors(*data.test, 10000, device)};
}

double accuracy(const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                const Split& data) {
  NoGrad no_grad;
  Tensor logits = matmul(relu(matmul(data.images, w1) + b1), w2) + b2;
  const int64_t correct = sum(eq(argmax(logits, 1), data.labels)).item<int64_t>();
  return static_cast<double>(correct) / static_cast<double>(data.labels.numel());
}

// Two epochs of minibatch SGD over the training set in its stored order (already mixed across
// classes); returns the test accuracy.
double train_and_test(Device device) {
  const auto [train, test] = load(device);
  manual_seed(0);
  // PyTorch's default Linear init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound1 = 1.0 / std::sqrt(784.0), bound2 = 1.0 / std::sqrt(128.0);
  Tensor w1 = uniform({784, 128}, -bound1, bound1, device).requires_grad_();
  Tensor b1 = uniform({128}, -bound1, bound1, device).requires_grad_();
  Tensor w2 = uniform({128, 10}, -bound2, bound2, device).requires_grad_();
  Tensor b2 = uniform({10}, -bound2, bound2, device).requires_grad_();
  const int64_t batch = 64;
  const double learning_rate = 0.1;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int64_t start = 0; start + batch <= 60000; start += batch) {
      Tensor x = train.images.narrow(0, start, batch);
      Tensor y = train.labels.narrow(0, start, batch);
      Tensor loss = cross_entropy(matmul(relu(matmul(x, w1) + b1), w2) + b2, y);
      loss.backward();
      NoGrad no_grad;
      for (Tensor* p : {&w1, &b1, &w2, &b2}) {
        p->add_(p->grad(), -learning_rate);
        p->grad().zero_();
      }
    }
    MESSAGE(device.str() << " epoch " << epoch + 1 << ": test accuracy "
                         << accuracy(w1, b1, w2, b2, test));
  }
  return accuracy(w1, b1, w2, b2, test);
}

// The same task through the layers: a Sequential of Linear, BatchNorm1d and ReLU modules in
// flat storage, trained by the fused SGD with momentum (one update kernel per step).
double train_modules_and_test(Device device) {
  const auto [train, test] = load(device);
  manual_seed(0);
  nn::Sequential model(std::vector<std::shared_ptr<nn::Module>>{
      nn::make<nn::Linear>(784, 128), nn::make<nn::BatchNorm1d>(128), nn::make<nn::ReLU>(),
      nn::make<nn::Linear>(128, 10)});
  model.flatten_parameters();
  model.to(device);
  optim::SGDOptions options(0.05);
  options.momentum = 0.9;
  optim::SGD sgd(model.parameters(), options);
  const int64_t batch = 64;
  for (int64_t start = 0; start + batch <= 60000; start += batch) {
    sgd.zero_grad();
    cross_entropy(model(train.images.narrow(0, start, batch)), train.labels.narrow(0, start, batch))
        .backward();
    sgd.step();
    if (start == 0) CHECK(sgd.last_step_launches() == 1);
  }
  model.eval();
  NoGrad no_grad;
  const int64_t correct = sum(eq(argmax(model(test.images), 1), test.labels)).item<int64_t>();
  return static_cast<double>(correct) / 10000.0;
}

}  // namespace

TEST_CASE("a perceptron of modules with fused SGD learns Fashion-MNIST in one epoch") {
  const double acc = train_modules_and_test(Device::cpu());
  MESSAGE("modules on the cpu: test accuracy " << acc);
  CHECK(acc >= 0.83);
}

TEST_CASE("a perceptron of modules with fused SGD learns Fashion-MNIST on CUDA") {
  EMBER_REQUIRE_GPU();
  CHECK(train_modules_and_test(Device::cuda(0)) >= 0.83);
}

TEST_CASE("a two-layer perceptron learns Fashion-MNIST on the CPU") {
  CHECK(train_and_test(Device::cpu()) >= 0.82);
}

TEST_CASE("a two-layer perceptron learns Fashion-MNIST on CUDA") {
  EMBER_REQUIRE_GPU();
  CHECK(train_and_test(Device::cuda(0)) >= 0.82);
}
