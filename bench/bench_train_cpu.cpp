// bin/bench_train_cpu: how fast the CPU trains the small Fashion-MNIST CNN. Figures, never a
// pass/fail.
//
// The model (mnist_cnn), on [N, 1, 28, 28] f32 images, cross-entropy, SGD with momentum (or Adam):
//   Conv2d(1, 32, 3, padding 1) → ReLU → MaxPool2d(2) → Conv2d(32, 64, 3, padding 1) → ReLU →
//   MaxPool2d(2) → Flatten → Linear(3136, 128) → ReLU → Linear(128, 10)
//
// For each batch size it prints
//   (a) a whole training step split into forward (with the loss), backward and optimizer step
//       (zero_grad included), the median (--fastest: the minimum) over --steps steps after
//       warm-up, as images/s and as the seconds one Fashion-MNIST epoch (60,000 images) would
//       take at that rate;
//   (b) a per-layer breakdown: each layer's forward and backward timed on its own, on the
//       activations the model really feeds it, with a random output gradient. Their total
//       next to the step time shows what the engine adds around the kernels (autograd, hooks,
//       allocation).
// bench/torch_train_cpu.py prints the same figures for PyTorch on the same model.
//
//   bin/bench_train_cpu                           # batches 64, 128, 256; SGD
//   bin/bench_train_cpu --batch 128 --optimizer adam --steps 50
#include <CLI/CLI.hpp>  // command-line flags
#include <omp.h>        // omp_get_max_threads

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>  // std::getenv
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/ember.h"
#include "layers/activation.h"  // ReLU
#include "layers/adam.h"        // Adam
#include "layers/container.h"   // Sequential, Flatten
#include "layers/conv.h"        // Conv2d
#include "layers/linear.h"      // Linear
#include "layers/pooling.h"     // MaxPool2d
#include "layers/sgd.h"         // SGD

using namespace ember;

namespace {

constexpr double kEpochImages = 60000;  // Fashion-MNIST's training set

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The figure printed for a set of timings: their median, or with --fastest their minimum (on a
// machine that other work keeps busy, the median measures that work as much as ember).
bool report_fastest = false;
double typical(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return report_fastest ? v.front() : v[v.size() / 2];
}

// Typical seconds of `repeat` runs of body, after `warmup` untimed ones; setup (untimed) runs
// before each.
double typical_seconds(
    int warmup, int repeat, const std::function<void()>& body,
    const std::function<void()>& setup = [] {}) {
  std::vector<double> times;
  for (int i = 0; i < warmup + repeat; ++i) {
    setup();
    const auto start = std::chrono::steady_clock::now();
    body();
    if (i >= warmup) times.push_back(seconds_since(start));
  }
  return typical(times);
}

// The layers of mnist_cnn, each under the name the breakdown prints.
std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> mnist_cnn_layers() {
  return {
      {"conv1 1->32 3x3", nn::make<nn::Conv2d>(1, 32, 3, 1, 1)},
      {"relu1", nn::make<nn::ReLU>()},
      {"pool1 2x2", nn::make<nn::MaxPool2d>(2)},
      {"conv2 32->64 3x3", nn::make<nn::Conv2d>(32, 64, 3, 1, 1)},
      {"relu2", nn::make<nn::ReLU>()},
      {"pool2 2x2", nn::make<nn::MaxPool2d>(2)},
      {"flatten", nn::make<nn::Flatten>()},
      {"fc1 3136->128", nn::make<nn::Linear>(3136, 128)},
      {"relu3", nn::make<nn::ReLU>()},
      {"fc2 128->10", nn::make<nn::Linear>(128, 10)},
  };
}

struct StepTimes {
  double forward = 0, backward = 0, optimizer = 0;
  double total() const { return forward + backward + optimizer; }
};

void print_rate(const char* what, double seconds, int64_t batch) {
  const double images_per_s = static_cast<double>(batch) / seconds;
  std::printf("  %-28s %9.2f ms  %9.0f images/s  %7.1f s/epoch\n", what, seconds * 1e3,
              images_per_s, kEpochImages / images_per_s);
}

void bench_batch(int64_t batch, const std::string& optimizer_name, int warmup, int steps,
                 bool per_layer) {
  manual_seed(0);
  auto layers = mnist_cnn_layers();
  auto model = std::make_shared<nn::Sequential>();
  for (auto& [name, layer] : layers) model->push_back(layer);
  model->flatten_parameters();  // as the registry's models come
  std::unique_ptr<optim::Optimizer> optimizer;
  if (optimizer_name == "adam") {
    optimizer = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{});
  } else {
    optim::SGDOptions options(0.01);
    options.momentum = 0.9;
    optimizer = std::make_unique<optim::SGD>(model->parameters(), options);
  }

  const Tensor images = randn({batch, 1, 28, 28});
  std::vector<int64_t> label_values(static_cast<size_t>(batch));
  for (size_t i = 0; i < label_values.size(); ++i) label_values[i] = static_cast<int64_t>(i % 10);
  const Tensor labels = tensor(label_values);  // 0..9 in turn

  // (a) whole steps
  std::vector<StepTimes> times;
  for (int i = 0; i < warmup + steps; ++i) {
    StepTimes t;
    auto start = std::chrono::steady_clock::now();
    Tensor loss = cross_entropy((*model)(images), labels);
    t.forward = seconds_since(start);
    start = std::chrono::steady_clock::now();
    loss.backward();
    t.backward = seconds_since(start);
    start = std::chrono::steady_clock::now();
    optimizer->step();
    optimizer->zero_grad();
    t.optimizer = seconds_since(start);
    if (i >= warmup) times.push_back(t);
  }
  auto typical_of = [&](double StepTimes::*field) {
    std::vector<double> v;
    for (const StepTimes& t : times) v.push_back(t.*field);
    return typical(v);
  };
  std::vector<double> totals;
  for (const StepTimes& t : times) totals.push_back(t.total());
  const double step = typical(totals);
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("batch %lld (%s, %d threads, OMP_WAIT_POLICY=%s, %s)\n",
              static_cast<long long>(batch), optimizer_name.c_str(), omp_get_max_threads(),
              wait_policy ? wait_policy : "(unset)", report_fastest ? "fastest" : "median");
  std::printf("  %-28s %9.2f ms\n", "forward + loss", typical_of(&StepTimes::forward) * 1e3);
  std::printf("  %-28s %9.2f ms\n", "backward", typical_of(&StepTimes::backward) * 1e3);
  std::printf("  %-28s %9.2f ms\n", "optimizer step + zero_grad",
              typical_of(&StepTimes::optimizer) * 1e3);
  print_rate("training step", step, batch);
  if (!per_layer) return;

  // (b) per layer: forward, then backward from a random output gradient, on the activations
  // the model feeds that layer. The first layer's input needs no gradient (raw images), so its
  // backward computes only the weight's; every later layer also computes its input's.
  std::printf("  %-28s %9s %9s\n", "per layer (ms)", "forward", "backward");
  Tensor activation = images;
  double forward_total = 0, backward_total = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    nn::Module& layer = *layers[i].second;
    Tensor input = activation.detach();
    if (i > 0) input.requires_grad_();
    Tensor output;
    const double forward = typical_seconds(warmup, steps, [&] { output = layer(input); });
    const Tensor grad = randn(output.shape());
    Tensor y;
    const double backward = typical_seconds(
        warmup, steps, [&] { y.backward(grad); },
        [&] {
          y = layer(input);
          if (i > 0) input.set_grad(Tensor());  // a fresh input gradient, not a sum of all runs
        });
    std::printf("  %-28s %9.3f %9.3f\n", layers[i].first.c_str(), forward * 1e3, backward * 1e3);
    forward_total += forward;
    backward_total += backward;
    activation = output;
  }
  {
    Tensor logits = activation.detach().requires_grad_();
    Tensor loss;
    const double forward =
        typical_seconds(warmup, steps, [&] { loss = cross_entropy(logits, labels); });
    const double backward = typical_seconds(
        warmup, steps, [&] { loss.backward(); },
        [&] {
          loss = cross_entropy(logits, labels);
          logits.set_grad(Tensor());
        });
    std::printf("  %-28s %9.3f %9.3f\n", "cross-entropy", forward * 1e3, backward * 1e3);
    forward_total += forward;
    backward_total += backward;
  }
  const double optimizer_time = typical_seconds(warmup, steps, [&] { optimizer->step(); });
  const double zero_time = typical_seconds(warmup, steps, [&] { optimizer->zero_grad(); });
  std::printf("  %-28s %9.3f\n", "optimizer step", optimizer_time * 1e3);
  std::printf("  %-28s %9.3f\n", "zero_grad", zero_time * 1e3);
  std::printf("  %-28s %9.3f %9.3f   (sum %.2f ms of a %.2f ms step)\n", "layers total",
              forward_total * 1e3, backward_total * 1e3,
              (forward_total + backward_total + optimizer_time + zero_time) * 1e3, step * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Times a training step of the small Fashion-MNIST CNN on the CPU");
  std::vector<int64_t> batches{64, 128, 256};
  std::string optimizer = "sgd";
  int warmup = 3, steps = 20;
  app.add_option("--batch", batches, "batch sizes")->delimiter(',');
  app.add_option("--optimizer", optimizer, "sgd (momentum 0.9) or adam")
      ->check(CLI::IsMember({"sgd", "adam"}));
  app.add_option("--warmup", warmup, "untimed runs first")->check(CLI::NonNegativeNumber);
  bool per_layer = true;
  app.add_flag("!--no-layers", per_layer, "only the whole steps, not the per-layer breakdown");
  app.add_flag("--fastest", report_fastest,
               "print the fastest run instead of the median (for a busy machine)");
  app.add_option("--steps", steps, "timed runs (their median is printed)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    for (int64_t batch : batches) bench_batch(batch, optimizer, warmup, steps, per_layer);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_train_cpu: %s\n", e.what());
    return 1;
  }
  return 0;
}
