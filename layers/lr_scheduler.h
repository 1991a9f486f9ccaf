// Learning-rate schedulers with PyTorch's values (torch.optim.lr_scheduler, 1.13).
//
// A scheduler sets the lr of every parameter group of an optimizer once per step() (per epoch or
// per iteration, as the caller decides), exactly as PyTorch's: constructing one already applies
// epoch 0, and each step() moves to the next epoch. Call optimizer.step() before
// scheduler.step().
//
// PyTorch computes most schedules recursively from the group's current lr; ember uses the closed
// forms PyTorch also has (_get_closed_form_lr), which give the same values (up to rounding in
// the last bits) and do not drift. The schedules, for epoch e and base lr b (the group's
// initial_lr):
//   StepLR             b * gamma^floor(e / step_size)
//   MultiStepLR        b * gamma^(number of milestones <= e)
//   CosineAnnealingLR  eta_min + (b - eta_min) * (1 + cos(pi * e / T_max)) / 2
//   LinearLR           b * (start + (end - start) * min(e, total_iters) / total_iters)
//   OneCycleLR         warm-up from max_lr / div_factor to max_lr over pct_start of the steps,
//                      then annealing to initial / final_div_factor (cosine or linear); momentum
//                      (SGD's momentum or Adam's beta1) moves the opposite way
//   SequentialLR       one scheduler after another, switching at milestones (warm-up, then ...)
//
// Each scheduler's state dict is a JSON object (last_epoch, base_lrs, last_lr and its options);
// the optimizer's state dict holds the current lrs themselves.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/optimizer.h"  // Optimizer, ParamGroup

namespace ember::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Moves to the next epoch and sets each group's lr.
  virtual void step();
  // Moves to `epoch` and sets the lrs there (PyTorch's deprecated step(epoch)).
  virtual void step_to(int64_t epoch);

  // The lr of each group set by the last step (PyTorch's get_last_lr()).
  const std::vector<double>& last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return optimizer_; }
  virtual std::string name() const = 0;

  virtual nlohmann::json state_dict() const;
  // Restores what state_dict saved (a state of another kind or group count is an error). It does
  // not touch the optimizer: load the optimizer's state too, it holds the current lrs.
  virtual void load_state_dict(const nlohmann::json& state);

 protected:
  // last_epoch = -1 starts a schedule: each group's initial_lr is set to its lr where not set
  // yet. Another value resumes one, which needs initial_lr in every group (from the
  // optimizer's state dict). Derived constructors end with initialize().
  LRScheduler(Optimizer& optimizer, int64_t last_epoch);
  // PyTorch's initial step: moves to epoch last_epoch + 1 (0 for a new schedule).
  void initialize() { step(); }

  // Each group's lr at epoch last_epoch_ (may also set other hyper-parameters: OneCycleLR).
  virtual std::vector<double> compute_lrs() = 0;
  // The scheduler's own settings in the state dict, and reading them back.
  virtual nlohmann::json options() const { return nlohmann::json::object(); }
  virtual void set_options(const nlohmann::json&) {}
  // Writes lrs into the groups and last_lr.
  void apply(const std::vector<double>& lrs);
  // One epoch back without touching the lrs (SequentialLR undoing an initial step).
  static void rewind(LRScheduler& scheduler) { --scheduler.last_epoch_; }

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  std::vector<double> last_lr_;
};

// lr = base * gamma^floor(epoch / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = -1);
  std::string name() const override { return "StepLR"; }

 protected:
  std::vector<double> compute_lrs() override;
  nlohmann::json options() const override;
  void set_options(const nlohmann::json& values) override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = base * gamma^(number of milestones <= epoch); a milestone listed twice counts twice.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1,
              int64_t last_epoch = -1);
  std::string name() const override { return "MultiStepLR"; }

 protected:
  std::vector<double> compute_lrs() override;
  nlohmann::json options() const override;
  void set_options(const nlohmann::json& values) override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (rising again after T_max,
// as PyTorch's).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0,
                    int64_t last_epoch = -1);
  std::string name() const override { return "CosineAnnealingLR"; }

 protected:
  std::vector<double> compute_lrs() override;
  nlohmann::json options() const override;
  void set_options(const nlohmann::json& values) override;

 private:
  int64_t T_max_;
  double eta_min_;
};

// Linear warm-up (or decay): the factor goes from start_factor at epoch 0 to end_factor at
// total_iters and stays there. start_factor must be > 0 (PyTorch's recursive form divides by it).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int64_t total_iters = 5, int64_t last_epoch = -1);
  std::string name() const override { return "LinearLR"; }

 protected:
  std::vector<double> compute_lrs() override;
  nlohmann::json options() const override;
  void set_options(const nlohmann::json& values) override;

 private:
  double start_factor_;
  double end_factor_;
  int64_t total_iters_;
};

struct OneCycleOptions {
  int64_t total_steps = 0;              // required: how many times step() will be called
  double pct_start = 0.3;               // the fraction of the steps spent rising to max_lr
  std::string anneal_strategy = "cos";  // "cos" or "linear"
  bool cycle_momentum = true;           // SGD's momentum or Adam's beta1, inversely to the lr
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25;         // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;  // final lr = initial lr / final_div_factor
  bool three_phase = false;       // rise, fall back to the initial lr, then anneal to the final
};

// The 1cycle policy (Smith and Topin), stepped once per batch. The initial lr of each group
// becomes max_lr / div_factor (overriding the group's initial_lr, as PyTorch does).
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, const OneCycleOptions& options,
             int64_t last_epoch = -1);
  // One max_lr per group.
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, const OneCycleOptions& options,
             int64_t last_epoch = -1);
  std::string name() const override { return "OneCycleLR"; }

 protected:
  std::vector<double> compute_lrs() override;
  nlohmann::json options() const override;
  void set_options(const nlohmann::json& values) override;

 private:
  enum class Level { Initial, Max, Min };  // of the lr; momentum uses Max (max) and Min (base)
  struct Phase {
    double end_step;  // the last step of the phase (not always an integer)
    Level start_lr, end_lr;
    Level start_momentum, end_momentum;
  };
  void check_and_make_phases();
  double anneal(double start, double end, double pct) const;

  std::vector<double> max_lrs_;
  OneCycleOptions options_;
  std::vector<Phase> phases_;
};

// Runs schedulers one after another: schedulers[0] until milestones[0], then schedulers[1]
// (restarted at its epoch 0) until milestones[1], and so on; a linear warm-up followed by cosine
// annealing is SequentialLR(opt, {warmup, cosine}, {warmup_epochs}). All schedulers must drive
// `optimizer`; construct them first (each applies its epoch 0), then this, which resets the lrs
// and starts schedulers[0] again, as PyTorch's SequentialLR does.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones, int64_t last_epoch = -1);
  std::string name() const override { return "SequentialLR"; }
  void step() override;
  void step_to(int64_t epoch) override;
  nlohmann::json state_dict() const override;
  void load_state_dict(const nlohmann::json& state) override;

 protected:
  std::vector<double> compute_lrs() override { return last_lr_; }  // unused: steps delegate

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace ember::optim
