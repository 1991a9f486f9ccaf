// The training loop's parts: top-k counts, the LR schedules, the Trainer's passes and its hooks
// for distributed training, and resuming mid-schedule.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "apps/common/classification_metrics.h"
#include "apps/common/lr_schedule.h"
#include "apps/common/trainer.h"
#include "engine/ember.h"
#include "layers/sgd.h"
#include "temporary_files.h"
#include "test_train_data.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;

namespace {

// The lr of every step of a schedule: the lr the optimizer uses for step i is the one set after
// i calls of scheduler.step().
std::vector<double> lrs_of(const ScheduleOptions& options, int64_t epochs, int64_t steps_per_epoch,
                           double lr = 0.1, double momentum = 0.9) {
  Tensor w = zeros({2}).requires_grad_();
  optim::SGDOptions sgd(lr);
  sgd.momentum = momentum;
  optim::SGD optimizer({w}, sgd);
  const auto scheduler = make_lr_schedule(options, optimizer, epochs, steps_per_epoch);
  std::vector<double> lrs;
  for (int64_t i = 0; i < epochs * steps_per_epoch; ++i) {
    lrs.push_back(optimizer.param_groups()[0].lr);
    scheduler->step();
  }
  return lrs;
}

TrainingData small_cifar_like(size_t train, size_t test, bool augment) {
  TrainingData data;
  data.train = ember::test::graded_images(train, 32, 32, 3, 10, 11);
  data.test = ember::test::graded_images(test, 32, 32, 3, 10, 12);
  data.normalize = {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
  if (augment)
    data.train_transform =
        std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
            std::make_shared<data::RandomCrop>(32, 32, 4),
            std::make_shared<data::RandomHorizontalFlip>()});
  data.description = "graded noise";
  return data;
}

TrainOptions small_options(const std::string& arch, int64_t epochs) {
  TrainOptions o;
  o.program = "test";
  o.arch = arch;
  o.epochs = epochs;
  o.batch_size = 16;
  o.lr = 0.02;
  o.workers = 2;
  o.device = "cpu";
  o.seed = 3;
  return o;
}

// An optimizer wrapper as a distributed one would be: it forwards everything and counts steps.
class CountingOptimizer : public optim::Optimizer {
 public:
  explicit CountingOptimizer(std::shared_ptr<optim::Optimizer> inner) : inner_(std::move(inner)) {}
  std::vector<optim::ParamGroup>& param_groups() override { return inner_->param_groups(); }
  const std::vector<optim::ParamGroup>& param_groups() const override {
    return inner_->param_groups();
  }
  void step() override {
    ++steps;
    inner_->step();
  }
  void zero_grad() override { inner_->zero_grad(); }
  optim::OptimizerStateDict state_dict() const override { return inner_->state_dict(); }
  void load_state_dict(const optim::OptimizerStateDict& state) override {
    inner_->load_state_dict(state);
  }
  std::string name() const override { return inner_->name(); }
  optim::MomentumField momentum_field() const override { return inner_->momentum_field(); }
  int64_t steps = 0;

 private:
  std::shared_ptr<optim::Optimizer> inner_;
};

// Visits the first half of the examples, in order: a stand-in for one rank's share.
class FirstHalfSampler : public data::Sampler {
 public:
  explicit FirstHalfSampler(size_t n) : n_(n / 2) {}
  std::vector<size_t> epoch_indices(int64_t) const override {
    std::vector<size_t> out(n_);
    for (size_t i = 0; i < n_; ++i) out[i] = i;
    return out;
  }
  size_t size() const override { return n_; }

 private:
  size_t n_;
};

}  // namespace

TEST_CASE("count_correct counts top-1 and top-k hits") {
  // Sample 0: label 1 is the largest. Sample 1: label 0 is the 2nd largest. Sample 2: label 5
  // is the smallest of six (outside the top 5). Sample 3: label 2 is the 4th largest.
  const Tensor logits = tensor(std::vector<float>{0.1f, 0.9f, 0.3f, 0.2f, 0.5f, 0.0f,  //
                                                  0.8f, 0.1f, 0.9f, 0.2f, 0.3f, 0.4f,  //
                                                  0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f,  //
                                                  0.6f, 0.5f, 0.4f, 0.1f, 0.3f, 0.7f},
                               {4, 6});
  const Tensor labels = tensor(std::vector<int64_t>{1, 0, 5, 2}, {4});
  const TopKCounts five = count_correct(logits, labels, 5);
  CHECK(five.samples == 4);
  CHECK(five.top1 == 1);
  CHECK(five.topk == 3);
  const TopKCounts two = count_correct(logits, labels, 2);
  CHECK(two.topk == 2);
  // With fewer classes than k every label counts.
  const TopKCounts three =
      count_correct(logits.narrow(1, 0, 3), tensor(std::vector<int64_t>{2, 2, 2, 2}, {4}));
  CHECK(three.topk == 4);
  CHECK(three.top1 == 1);  // sample 1
  CHECK(contains(error_of([&] { count_correct(logits, labels.narrow(0, 0, 3)); }),
                 "must be [N, C] and [N]"));
}

TEST_CASE("the step schedule moves at epoch boundaries") {
  ScheduleOptions step;
  step.step_size = 2;
  step.gamma = 0.1;
  const std::vector<double> lrs = lrs_of(step, 5, 3);
  for (size_t i = 0; i < lrs.size(); ++i) {
    const double expected = 0.1 * std::pow(0.1, static_cast<double>(i / 3 / 2));
    INFO("step " << i);
    CHECK(lrs[i] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("multistep counts milestones as epochs of the whole run") {
  ScheduleOptions multi;
  multi.kind = "multistep";
  multi.milestones = {2, 4};
  multi.warmup_epochs = 1;
  const std::vector<double> lrs = lrs_of(multi, 5, 4);
  // Warm-up over epoch 0 from lr / 100, then 0.1 until epoch 2, 0.01 until 4, 0.001.
  CHECK(lrs[0] == doctest::Approx(0.001));
  CHECK(lrs[2] == doctest::Approx(0.1 * (0.01 + 0.99 * 2 / 4)));
  CHECK(lrs[4] == doctest::Approx(0.1));
  CHECK(lrs[7] == doctest::Approx(0.1));
  CHECK(lrs[8] == doctest::Approx(0.01));
  CHECK(lrs[15] == doctest::Approx(0.01));
  CHECK(lrs[16] == doctest::Approx(0.001));
}

TEST_CASE("cosine anneals per step after the warm-up") {
  ScheduleOptions cosine;
  cosine.kind = "cosine";
  cosine.warmup_epochs = 1;
  const std::vector<double> lrs = lrs_of(cosine, 4, 5);
  CHECK(lrs[0] == doctest::Approx(0.001));
  const double pi = std::acos(-1.0);
  for (size_t i = 5; i < lrs.size(); ++i) {
    INFO("step " << i);
    CHECK(lrs[i] == doctest::Approx(0.05 * (1 + std::cos(pi * (i - 5) / 15.0))));
  }
}

TEST_CASE("onecycle peaks at lr and ends far below it") {
  ScheduleOptions one;
  one.kind = "onecycle";
  const std::vector<double> lrs = lrs_of(one, 2, 10, 0.4);
  CHECK(lrs[0] == doctest::Approx(0.4 / 25));
  // PyTorch's phases: the rise ends at step pct_start * total - 1 = 5.
  CHECK(lrs[5] == doctest::Approx(0.4));
  CHECK(lrs.back() < 0.01);
  // The same without momentum (SGD without it has none to cycle).
  CHECK(lrs_of(one, 2, 10, 0.4, 0.0)[5] == doctest::Approx(0.4));
  ScheduleOptions constant;
  constant.kind = "constant";
  for (double lr : lrs_of(constant, 2, 3)) CHECK(lr == 0.1);
}

TEST_CASE("schedule options are checked") {
  ScheduleOptions multi;
  multi.kind = "multistep";
  CHECK(contains(error_of([&] { lrs_of(multi, 3, 2); }), "--milestones"));
  ScheduleOptions warm;
  warm.warmup_epochs = 3;
  CHECK(contains(error_of([&] { lrs_of(warm, 3, 2); }), "--warmup-epochs 3"));
  ScheduleOptions unknown;
  unknown.kind = "linear";
  CHECK(contains(error_of([&] { lrs_of(unknown, 3, 2); }), "--schedule linear: unknown"));
}

TEST_CASE("the trainer evaluates and trains through the hooks") {
  TrainerHooks hooks;
  std::shared_ptr<CountingOptimizer> counting;
  hooks.wrap_optimizer = [&](std::shared_ptr<nn::Module>, std::shared_ptr<optim::Optimizer> inner) {
    counting = std::make_shared<CountingOptimizer>(inner);
    return counting;
  };
  hooks.train_sampler = [](size_t n, uint64_t) { return std::make_shared<FirstHalfSampler>(n); };
  hooks.write_outputs = false;
  std::FILE* console = std::tmpfile();
  Trainer trainer(small_options("cifar_cnn", 2), small_cifar_like(64, 24, false), console, hooks);
  CHECK(&trainer.optimizer() == counting.get());

  const PassResult before = trainer.evaluate(EvalSet::Test);
  CHECK(before.samples == 24);
  CHECK(before.steps == 2);  // 16 + 8
  CHECK(std::isfinite(before.loss));
  CHECK(before.top5 >= before.top1);
  CHECK(std::isnan(trainer.evaluate(EvalSet::Validation).loss));  // no --val-size
  CHECK(trainer.model().is_training());                           // evaluation puts the mode back

  const Tensor first = trainer.model().parameters()[0].clone();
  const PassResult pass = trainer.train_epoch();
  CHECK(pass.samples == 32);  // the sampler's half
  CHECK(pass.steps == 2);
  CHECK(counting->steps == 2);
  CHECK(trainer.global_step() == 2);
  CHECK(trainer.epoch() == 1);
  CHECK(std::isfinite(pass.loss));
  CHECK(sum(ne(first, trainer.model().parameters()[0])).item<int64_t>() > 0);

  trainer.fit();  // the second epoch, without files
  CHECK(trainer.epoch() == 2);
  CHECK(trainer.records().size() == 1);
  CHECK(trainer.run_folder().empty());
  std::fclose(console);
}

TEST_CASE("the trainer holds out a seeded validation set") {
  TrainOptions options = small_options("logistics", 1);
  options.val_size = 10;
  TrainerHooks hooks;
  hooks.write_outputs = false;
  std::FILE* console = std::tmpfile();
  Trainer trainer(options, small_cifar_like(50, 10, false), console, hooks);
  REQUIRE(trainer.validation_set() != nullptr);
  CHECK(trainer.validation_set()->size() == 10);
  CHECK(trainer.train_set().size() == 40);
  CHECK(trainer.evaluate(EvalSet::Validation).samples == 10);
  std::fclose(console);
  options.val_size = 50;
  CHECK(
      contains(error_of([&] { Trainer(options, small_cifar_like(50, 10, false)); }), "--val-size"));
}

TEST_CASE("a checkpoint taken mid-schedule resumes bit for bit") {
  TemporaryDirectory dir;
  TrainOptions options = small_options("cifar_cnn", 3);
  options.schedule.kind = "cosine";
  options.schedule.warmup_epochs = 1;
  options.out = dir.file("whole");
  std::FILE* console = std::tmpfile();
  Trainer whole(options, small_cifar_like(64, 16, true), console);
  whole.fit();
  REQUIRE(whole.records().size() == 3);

  // Two epochs, a checkpoint, and a new trainer (new model, optimizer, schedule, loaders) from it.
  options.out = dir.file("part");
  Trainer part(options, small_cifar_like(64, 16, true), console);
  part.train_epoch();
  part.train_epoch();
  const std::string checkpoint = dir.file("part.safetensors");
  part.save_checkpoint(checkpoint);
  options.resume = checkpoint;
  options.seed = 99;  // the checkpoint's seed wins
  Trainer resumed(options, small_cifar_like(64, 16, true), console);
  CHECK(resumed.epoch() == 2);
  CHECK(resumed.global_step() == 8);
  CHECK(resumed.options().seed == 3);
  resumed.fit();
  REQUIRE(resumed.records().size() == 1);
  CHECK(resumed.records()[0].epoch == 3);
  CHECK(resumed.records()[0].train_loss == whole.records()[2].train_loss);
  CHECK(resumed.records()[0].test_loss == whole.records()[2].test_loss);
  const std::vector<Tensor> a = whole.model().parameters(), b = resumed.model().parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector<float>() == b[i].to_vector<float>());
  CHECK(resumed.optimizer().param_groups()[0].lr == whole.optimizer().param_groups()[0].lr);
  std::fclose(console);
}
