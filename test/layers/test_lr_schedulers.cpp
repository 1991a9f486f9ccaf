// Every LR scheduler against PyTorch 1.13 (lr_scheduler_references.h, made by
// make_pytorch_references.py): each group's lr, and the momentum or beta1 OneCycleLR cycles, at
// epochs 0 to 20-30; resuming from state dicts; errors.
//
// The optimizers match the script's: SGD with momentum 0.9 and two groups (lr 0.1 and 0.02), or
// Adam with the same two groups.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/adam.h"
#include "layers/lr_scheduler.h"
#include "layers/sgd.h"
#include "lr_scheduler_references.h"
#include "support.h"

using namespace ember;
using namespace ember::optim;
namespace pytorch = ember::test::pytorch;

namespace {

using Rows = std::vector<std::vector<double>>;
using MakeOptimizer = std::function<std::unique_ptr<FusedOptimizer>()>;
using MakeScheduler = std::function<std::shared_ptr<LRScheduler>(Optimizer&)>;

std::vector<Tensor> two_params() {
  Tensor a = zeros({2, 3}, DType::F64), b = zeros({4}, DType::F64);
  a.requires_grad_();
  b.requires_grad_();
  return {a, b};
}

std::unique_ptr<FusedOptimizer> sgd_two_groups() {
  const std::vector<Tensor> p = two_params();
  SGDOptions first(0.1), second(0.02);
  first.momentum = second.momentum = 0.9;
  return std::make_unique<SGD>(std::vector<ParamGroup>{first.group({p[0]}), second.group({p[1]})});
}

std::unique_ptr<FusedOptimizer> adam_two_groups() {
  const std::vector<Tensor> p = two_params();
  AdamOptions first, second;
  first.lr = 0.1;
  second.lr = 0.02;
  return std::make_unique<Adam>(std::vector<ParamGroup>{first.group({p[0]}), second.group({p[1]})});
}

// Each group's lr, then (when asked) each group's momentum or beta1.
std::vector<double> observed(const Optimizer& opt, const LRScheduler& scheduler,
                             MomentumField momentum) {
  std::vector<double> row = scheduler.last_lr();
  const std::vector<ParamGroup>& groups = opt.param_groups();
  REQUIRE(row.size() == groups.size());
  for (size_t i = 0; i < groups.size(); ++i) CHECK(groups[i].lr == row[i]);
  for (const ParamGroup& g : groups) {
    if (momentum == MomentumField::Momentum) row.push_back(g.momentum);
    if (momentum == MomentumField::Beta1) row.push_back(g.beta1);
  }
  return row;
}

// The schedule against PyTorch's at every epoch; then the same schedule stopped after epoch 7,
// saved (through JSON text), loaded into a fresh optimizer and scheduler and continued: the same
// bits as without the break.
void check_schedule(const MakeOptimizer& make_optimizer, const MakeScheduler& make_scheduler,
                    const Rows& expected, MomentumField momentum = MomentumField::None) {
  auto opt = make_optimizer();
  auto scheduler = make_scheduler(*opt);
  Rows uninterrupted;
  for (size_t epoch = 0; epoch < expected.size(); ++epoch) {
    if (epoch > 0) {
      opt->step();  // no gradients: nothing moves, as in the PyTorch run
      scheduler->step();
    }
    INFO("epoch " << epoch);
    CHECK(scheduler->last_epoch() == static_cast<int64_t>(epoch));
    const std::vector<double> row = observed(*opt, *scheduler, momentum);
    REQUIRE(row.size() == expected[epoch].size());
    for (size_t i = 0; i < row.size(); ++i) {
      INFO("column " << i << ": ember " << row[i] << ", PyTorch " << expected[epoch][i]);
      CHECK(std::abs(row[i] - expected[epoch][i]) <= 1e-15 + 1e-12 * std::abs(expected[epoch][i]));
    }
    uninterrupted.push_back(row);
  }

  const size_t stop = 7;
  auto first = make_optimizer();
  auto first_scheduler = make_scheduler(*first);
  for (size_t epoch = 1; epoch <= stop; ++epoch) {
    first->step();
    first_scheduler->step();
  }
  OptimizerStateDict optimizer_state = first->state_dict();
  optimizer_state.metadata = nlohmann::json::parse(optimizer_state.metadata.dump());
  const nlohmann::json scheduler_state =
      nlohmann::json::parse(first_scheduler->state_dict().dump());

  auto second = make_optimizer();
  auto second_scheduler = make_scheduler(*second);
  second->load_state_dict(optimizer_state);
  second_scheduler->load_state_dict(scheduler_state);
  CHECK(second_scheduler->last_epoch() == static_cast<int64_t>(stop));
  for (size_t epoch = stop + 1; epoch < expected.size(); ++epoch) {
    second->step();
    second_scheduler->step();
    INFO("resumed, epoch " << epoch);
    CHECK(observed(*second, *second_scheduler, momentum) == uninterrupted[epoch]);
  }
}

template <typename Scheduler, typename... Args>
MakeScheduler make(Args... args) {
  return [=](Optimizer& opt) { return std::make_shared<Scheduler>(opt, args...); };
}

// `body` must throw ember::Error whose message contains `fragment`.
void check_error(const std::function<void()>& body, const std::string& fragment) {
  try {
    body();
    FAIL("no error; expected one containing \"" << fragment << "\"");
  } catch (const Error& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("step lr matches pytorch") {
  check_schedule(sgd_two_groups, make<StepLR>(int64_t{3}, 0.5), pytorch::step_lr);
}

TEST_CASE("multi step lr matches pytorch with a repeated milestone") {
  check_schedule(sgd_two_groups, make<MultiStepLR>(std::vector<int64_t>{2, 5, 5, 11}, 0.3),
                 pytorch::multi_step_lr);
}

TEST_CASE("cosine annealing lr matches pytorch past t max") {
  check_schedule(sgd_two_groups, make<CosineAnnealingLR>(int64_t{10}, 0.001),
                 pytorch::cosine_annealing_lr);
}

TEST_CASE("linear lr warm up matches pytorch") {
  check_schedule(sgd_two_groups, make<LinearLR>(0.1, 1.0, int64_t{8}), pytorch::linear_lr_warmup);
}

TEST_CASE("linear lr decay matches pytorch") {
  check_schedule(sgd_two_groups, make<LinearLR>(1.0, 0.2, int64_t{6}), pytorch::linear_lr_decay);
}

TEST_CASE("one cycle lr matches pytorch and cycles sgd momentum") {
  OneCycleOptions o;
  o.total_steps = 25;
  check_schedule(sgd_two_groups, make<OneCycleLR>(1.0, o), pytorch::one_cycle_lr_sgd,
                 MomentumField::Momentum);
}

TEST_CASE("one cycle lr in three linear phases matches pytorch and cycles adam beta1") {
  OneCycleOptions o;
  o.total_steps = 30;
  o.pct_start = 0.25;
  o.anneal_strategy = "linear";
  o.three_phase = true;
  check_schedule(adam_two_groups, make<OneCycleLR>(std::vector<double>{0.5, 0.1}, o),
                 pytorch::one_cycle_lr_adam_three_phase_linear, MomentumField::Beta1);
}

TEST_CASE("linear warm up then cosine annealing matches pytorch") {
  MakeScheduler warmup_then_cosine = [](Optimizer& opt) {
    auto warmup = std::make_shared<LinearLR>(opt, 0.1, 1.0, 5);
    auto cosine = std::make_shared<CosineAnnealingLR>(opt, 20);
    return std::make_shared<SequentialLR>(
        opt, std::vector<std::shared_ptr<LRScheduler>>{warmup, cosine}, std::vector<int64_t>{5});
  };
  check_schedule(sgd_two_groups, warmup_then_cosine, pytorch::warmup_then_cosine);
}

TEST_CASE("linear warm up then multi step matches pytorch") {
  MakeScheduler warmup_then_steps = [](Optimizer& opt) {
    auto warmup = std::make_shared<LinearLR>(opt, 0.25, 1.0, 3);
    auto steps = std::make_shared<MultiStepLR>(opt, std::vector<int64_t>{5, 10}, 0.1);
    return std::make_shared<SequentialLR>(
        opt, std::vector<std::shared_ptr<LRScheduler>>{warmup, steps}, std::vector<int64_t>{3});
  };
  check_schedule(sgd_two_groups, warmup_then_steps, pytorch::warmup_then_multi_step);
}

TEST_CASE("a scheduler records the initial lr once and jumps to an epoch in closed form") {
  auto opt = sgd_two_groups();
  StepLR first(*opt, 3, 0.5);
  CHECK(opt->param_groups()[0].initial_lr == 0.1);
  CHECK(opt->param_groups()[1].initial_lr == 0.02);
  first.step_to(7);
  CHECK(first.last_epoch() == 7);
  CHECK(opt->param_groups()[0].lr == doctest::Approx(0.1 * 0.25).epsilon(1e-15));
  // A second scheduler starts from the initial lr, not from the lr the first one left.
  CosineAnnealingLR second(*opt, 10);
  CHECK(second.base_lrs() == std::vector<double>{0.1, 0.02});
  CHECK(opt->param_groups()[0].lr == 0.1);
}

TEST_CASE("resuming a schedule needs the initial lr") {
  auto opt = sgd_two_groups();
  check_error([&] { StepLR(*opt, 3, 0.5, 4); }, "parameter group 0 has no initial_lr");
  for (ParamGroup& g : opt->param_groups()) g.initial_lr = g.lr;
  StepLR resumed(*opt, 3, 0.5, 4);
  CHECK(resumed.last_epoch() == 5);  // PyTorch's initial step moves past the given epoch
  CHECK(opt->param_groups()[0].lr == doctest::Approx(0.05).epsilon(1e-15));
}

TEST_CASE("one cycle lr refuses to step past its total steps") {
  auto opt = sgd_two_groups();
  OneCycleOptions o;
  o.total_steps = 4;
  OneCycleLR scheduler(*opt, 1.0, o);
  for (int i = 0; i < 4; ++i) scheduler.step();  // epoch 4 = total_steps is still allowed
  check_error([&] { scheduler.step(); },
              "tried to step 6 times; the specified number of total "
              "steps is 4");
}

TEST_CASE("invalid scheduler settings are errors") {
  auto opt = sgd_two_groups();
  check_error([&] { StepLR(*opt, 0); }, "StepLR: step_size must be positive");
  check_error([&] { CosineAnnealingLR(*opt, 0); }, "T_max must be positive");
  check_error([&] { LinearLR(*opt, 0.0); }, "start_factor must be in (0, 1]");
  check_error([&] { LinearLR(*opt, 0.5, 1.5); }, "end_factor must be in [0, 1]");
  check_error([&] { LinearLR(*opt, 0.5, 1.0, 0); }, "total_iters must be positive");
  OneCycleOptions o;
  check_error([&] { OneCycleLR(*opt, 1.0, o); }, "total_steps must be positive");
  o.total_steps = 10;
  o.pct_start = 1.5;
  check_error([&] { OneCycleLR(*opt, 1.0, o); }, "pct_start must be between 0 and 1");
  o.pct_start = 0.3;
  o.anneal_strategy = "exp";
  check_error([&] { OneCycleLR(*opt, 1.0, o); }, "anneal_strategy must be");
  o.anneal_strategy = "cos";
  check_error([&] { OneCycleLR(*opt, std::vector<double>{1.0}, o); },
              "expected 2 values for max_lr");

  auto warmup = std::make_shared<LinearLR>(*opt);
  auto cosine = std::make_shared<CosineAnnealingLR>(*opt, 10);
  check_error(
      [&] {
        SequentialLR(*opt, {warmup, cosine}, {});
      },
      "expected one milestone fewer than schedulers");
  auto other = sgd_two_groups();
  auto foreign = std::make_shared<StepLR>(*other, 2);
  check_error(
      [&] {
        SequentialLR(*opt, {warmup, foreign}, {3});
      },
      "scheduler 1 (StepLR) drives another optimizer");

  StepLR step(*opt, 2);
  check_error([&] { step.load_state_dict(cosine->state_dict()); },
              "the state was saved by CosineAnnealingLR, not by StepLR");
  nlohmann::json wrong_groups = step.state_dict();
  wrong_groups["base_lrs"] = {0.1};
  check_error([&] { step.load_state_dict(wrong_groups); }, "one lr per parameter group (2)");
}
