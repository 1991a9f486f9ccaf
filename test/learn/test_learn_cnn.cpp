// Real learning through the training programs' own loop (apps/common/trainer.h): mnist_cnn,
// trained by the Trainer on a fixed 15,000-image subset of Fashion-MNIST for 2 epochs (SGD with
// Nesterov momentum and the 1cycle schedule, seed 0), must go from chance (below 20% on the test
// set) to at least 85% on the full 10,000-image test set: about a minute on 2 CPU cores.
//
// Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, installed by
// scripts/setup.sh) or the folder EMBER_FASHION_MNIST names; skipped, visibly, without either.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>  // getenv
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "apps/common/trainer.h"
#include "datasets/idx.h"
#include "engine/ember.h"
#include "support.h"

using namespace ember;

namespace {

std::string data_folder() {
  const char* folder = std::getenv("EMBER_FASHION_MNIST");
  return folder && *folder ? std::string(folder) : "/usr/share/datasets/fashion-mnist";
}

}  // namespace

TEST_CASE("the trainer teaches mnist_cnn fashion-mnist from a subset") {
  if (!data::has_mnist_files(data_folder(), data::MnistKind::FashionMnist)) {
    std::printf(
        "[ember] SKIPPED: no Fashion-MNIST in %s (scripts/setup.sh installs it, or set "
        "EMBER_FASHION_MNIST)\n",
        data_folder().c_str());
    return;
  }
  const data::TrainTest sets = data::load_mnist(data_folder(), data::MnistKind::FashionMnist);
  REQUIRE(sets.train->size() == 60000);
  REQUIRE(sets.test->size() == 10000);

  // The first 15,000 training images (the published order is already mixed across classes).
  std::vector<size_t> subset(15000);
  std::iota(subset.begin(), subset.end(), size_t{0});
  app::TrainingData data;
  data.train = std::make_shared<data::Subset>(sets.train, subset);
  data.test = sets.test;
  data.normalize = {{0.2860f}, {0.3530f}};
  data.description = "Fashion-MNIST, the first 15,000 training images";

  app::TrainOptions options;
  options.program = "test_learn_cnn";
  options.arch = "mnist_cnn";
  options.epochs = 2;
  options.batch_size = 128;
  options.lr = 0.1;
  options.momentum = 0.9;
  options.nesterov = true;
  options.weight_decay = 5e-4;
  options.schedule.kind = "onecycle";
  options.workers = 1;
  options.print_freq = 40;
  options.device = "cpu";
  options.seed = 0;
  app::TrainerHooks hooks;
  hooks.write_outputs = false;
  app::Trainer trainer(options, data, stdout, hooks);

  const app::PassResult untrained = trainer.evaluate(app::EvalSet::Test);
  MESSAGE("untrained: test top-1 " << untrained.top1);
  CHECK(untrained.samples == 10000);
  CHECK(untrained.top1 < 0.2);

  const auto start = std::chrono::steady_clock::now();
  const std::vector<app::EpochRecord>& records = trainer.fit();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(records.size() == 2);
  MESSAGE("trained for 2 epochs in " << seconds << " s: test top-1 " << records[1].test_acc
                                     << ", top-5 " << records[1].test_acc5 << ", train loss "
                                     << records[1].train_loss);
  CHECK(records[1].test_acc >= 0.85);
  CHECK(records[1].train_loss < records[0].train_loss);
}
