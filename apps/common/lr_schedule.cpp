// The programs' LR schedules (see lr_schedule.h).
#include "apps/common/lr_schedule.h"

#include <algorithm>

#include "engine/error.h"

namespace ember::app {

namespace {

// A schedule that keeps every group's lr: LinearLR with both factors 1.
std::shared_ptr<optim::LRScheduler> constant(optim::Optimizer& optimizer) {
  return std::make_shared<optim::LinearLR>(optimizer, 1.0, 1.0, 1);
}

}  // namespace

const std::vector<std::string>& schedule_kinds() {
  static const std::vector<std::string> kinds = {"step", "multistep", "cosine", "onecycle",
                                                 "constant"};
  return kinds;
}

std::shared_ptr<optim::LRScheduler> make_lr_schedule(const ScheduleOptions& options,
                                                     optim::Optimizer& optimizer, int64_t epochs,
                                                     int64_t steps_per_epoch) {
  EMBER_CHECK(std::count(schedule_kinds().begin(), schedule_kinds().end(), options.kind) == 1,
              "--schedule ", options.kind, ": unknown; the schedules are step, multistep, cosine, ",
              "onecycle and constant");
  EMBER_CHECK(epochs >= 1 && steps_per_epoch >= 1, "make_lr_schedule: ", epochs, " epochs of ",
              steps_per_epoch, " steps");
  EMBER_CHECK(options.warmup_epochs >= 0 && options.warmup_epochs < epochs, "--warmup-epochs ",
              options.warmup_epochs, " must lie in [0, --epochs ", epochs, ")");
  const int64_t total_steps = epochs * steps_per_epoch;
  const int64_t warmup_steps = options.warmup_epochs * steps_per_epoch;

  if (options.kind == "onecycle") {
    optim::OneCycleOptions one_cycle;
    one_cycle.total_steps = total_steps;
    if (options.warmup_epochs > 0)
      one_cycle.pct_start = static_cast<double>(options.warmup_epochs) / epochs;
    // SGD without momentum has no momentum to cycle (PyTorch refuses it).
    one_cycle.cycle_momentum = optimizer.momentum_field() == optim::MomentumField::Beta1 ||
                               (optimizer.momentum_field() == optim::MomentumField::Momentum &&
                                optimizer.param_groups().at(0).momentum > 0);
    return std::make_shared<optim::OneCycleLR>(optimizer, optimizer.param_groups().at(0).lr,
                                               one_cycle);
  }

  std::shared_ptr<optim::LRScheduler> main;
  if (options.kind == "step") {
    EMBER_CHECK(options.step_size >= 1, "--lr-step-size ", options.step_size,
                " must be at least 1");
    main = std::make_shared<optim::StepLR>(optimizer, options.step_size * steps_per_epoch,
                                           options.gamma);
  } else if (options.kind == "multistep") {
    EMBER_CHECK(!options.milestones.empty(), "--schedule multistep needs --milestones (epochs)");
    std::vector<int64_t> steps;
    for (int64_t epoch : options.milestones) {
      EMBER_CHECK(epoch >= 1, "--milestones ", epoch, " must be an epoch of at least 1");
      // Milestones count epochs from the start of the run, the warm-up included.
      steps.push_back(std::max<int64_t>(0, epoch - options.warmup_epochs) * steps_per_epoch);
    }
    main = std::make_shared<optim::MultiStepLR>(optimizer, steps, options.gamma);
  } else if (options.kind == "cosine") {
    main = std::make_shared<optim::CosineAnnealingLR>(optimizer, total_steps - warmup_steps);
  } else {
    main = constant(optimizer);
  }
  if (warmup_steps == 0) return main;
  auto warmup = std::make_shared<optim::LinearLR>(optimizer, 0.01, 1.0, warmup_steps);
  return std::make_shared<optim::SequentialLR>(
      optimizer, std::vector<std::shared_ptr<optim::LRScheduler>>{warmup, main},
      std::vector<int64_t>{warmup_steps});
}

std::string describe_schedule(const ScheduleOptions& options) {
  std::string text = options.kind;
  if (options.kind == "step")
    text += str_cat(" (x", options.gamma, " every ", options.step_size, " epochs)");
  if (options.kind == "multistep") {
    text += str_cat(" (x", options.gamma, " at epochs");
    for (int64_t epoch : options.milestones) text += str_cat(" ", epoch);
    text += ")";
  }
  if (options.warmup_epochs > 0)
    text += str_cat(options.kind == "onecycle" ? ", rising for " : " after ", options.warmup_epochs,
                    " warm-up epoch", options.warmup_epochs > 1 ? "s" : "");
  return text;
}

}  // namespace ember::app
