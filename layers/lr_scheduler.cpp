// The LR schedulers (the formulas are in the header).
#include "layers/lr_scheduler.h"

#include <algorithm>  // sort, upper_bound
#include <cmath>      // cos, pow, floor
#include <utility>    // move

#include "engine/error.h"  // EMBER_CHECK

namespace ember::optim {

namespace {

constexpr double kPi = 3.14159265358979323846;

// How many of the sorted `milestones` are <= epoch (Python's bisect_right).
int64_t count_reached(const std::vector<int64_t>& milestones, int64_t epoch) {
  return std::upper_bound(milestones.begin(), milestones.end(), epoch) - milestones.begin();
}

}  // namespace

// ---- the base -------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer, int64_t last_epoch)
    : optimizer_(optimizer), last_epoch_(last_epoch) {
  std::vector<ParamGroup>& groups = optimizer_.param_groups();
  EMBER_CHECK(!groups.empty(), "LR scheduler: the optimizer has no parameter groups");
  for (size_t i = 0; i < groups.size(); ++i) {
    ParamGroup& group = groups[i];
    if (last_epoch == -1) {
      if (!group.initial_lr) group.initial_lr = group.lr;
    } else {
      EMBER_CHECK(group.initial_lr.has_value(), "LR scheduler: parameter group ", i,
                  " has no initial_lr; resuming a schedule (last_epoch = ", last_epoch,
                  ") needs the optimizer's state dict loaded first");
    }
    base_lrs_.push_back(*group.initial_lr);
  }
}

void LRScheduler::step() {
  step_to(last_epoch_ + 1);
}

void LRScheduler::step_to(int64_t epoch) {
  last_epoch_ = epoch;
  apply(compute_lrs());
}

void LRScheduler::apply(const std::vector<double>& lrs) {
  std::vector<ParamGroup>& groups = optimizer_.param_groups();
  EMBER_CHECK(lrs.size() == groups.size(), name(), ": the optimizer has ", groups.size(),
              " parameter groups, the schedule was made for ", lrs.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i].lr = lrs[i];
  last_lr_ = lrs;
}

nlohmann::json LRScheduler::state_dict() const {
  return {{"scheduler", name()},
          {"last_epoch", last_epoch_},
          {"base_lrs", base_lrs_},
          {"last_lr", last_lr_},
          {"options", options()}};
}

void LRScheduler::load_state_dict(const nlohmann::json& state) {
  const std::string what = name() + ".load_state_dict";
  EMBER_CHECK(state.is_object() && state.contains("scheduler") && state["scheduler"].is_string(),
              what, ": not a scheduler state (it needs \"scheduler\")");
  const std::string saved = state["scheduler"].get<std::string>();
  EMBER_CHECK(saved == name(), what, ": the state was saved by ", saved, ", not by ", name());
  EMBER_CHECK(state.contains("last_epoch") && state["last_epoch"].is_number_integer(), what,
              ": the state has no integer \"last_epoch\"");
  const size_t groups = optimizer_.param_groups().size();
  for (const char* key : {"base_lrs", "last_lr"})
    EMBER_CHECK(state.contains(key) && state[key].is_array() && state[key].size() == groups, what,
                ": \"", key, "\" must list one lr per parameter group (", groups, ")");
  set_options(state.value("options", nlohmann::json::object()));
  last_epoch_ = state["last_epoch"].get<int64_t>();
  base_lrs_ = state["base_lrs"].get<std::vector<double>>();
  last_lr_ = state["last_lr"].get<std::vector<double>>();
}

// ---- StepLR ---------------------------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
  initialize();
}

std::vector<double> StepLR::compute_lrs() {
  std::vector<double> lrs;
  const double exponent = static_cast<double>(last_epoch_ / step_size_);
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, exponent));
  return lrs;
}

nlohmann::json StepLR::options() const {
  return {{"step_size", step_size_}, {"gamma", gamma_}};
}

void StepLR::set_options(const nlohmann::json& values) {
  step_size_ = values.value("step_size", step_size_);
  gamma_ = values.value("gamma", gamma_);
}

// ---- MultiStepLR ----------------------------------------------------------------------------

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma,
                         int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initialize();
}

std::vector<double> MultiStepLR::compute_lrs() {
  std::vector<double> lrs;
  const double exponent = static_cast<double>(count_reached(milestones_, last_epoch_));
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, exponent));
  return lrs;
}

nlohmann::json MultiStepLR::options() const {
  return {{"milestones", milestones_}, {"gamma", gamma_}};
}

void MultiStepLR::set_options(const nlohmann::json& values) {
  milestones_ = values.value("milestones", milestones_);
  std::sort(milestones_.begin(), milestones_.end());
  gamma_ = values.value("gamma", gamma_);
}

// ---- CosineAnnealingLR ----------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min,
                                     int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), T_max_(T_max), eta_min_(eta_min) {
  EMBER_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", T_max);
  initialize();
}

std::vector<double> CosineAnnealingLR::compute_lrs() {
  std::vector<double> lrs;
  const double cosine = std::cos(kPi * static_cast<double>(last_epoch_) / T_max_);
  for (double base : base_lrs_) lrs.push_back(eta_min_ + (base - eta_min_) * (1 + cosine) / 2);
  return lrs;
}

nlohmann::json CosineAnnealingLR::options() const {
  return {{"T_max", T_max_}, {"eta_min", eta_min_}};
}

void CosineAnnealingLR::set_options(const nlohmann::json& values) {
  T_max_ = values.value("T_max", T_max_);
  eta_min_ = values.value("eta_min", eta_min_);
}

// ---- LinearLR -------------------------------------------------------------------------------

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor,
                   int64_t total_iters, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  EMBER_CHECK(start_factor > 0 && start_factor <= 1,
              "LinearLR: start_factor must be in (0, 1], got ", start_factor);
  EMBER_CHECK(end_factor >= 0 && end_factor <= 1, "LinearLR: end_factor must be in [0, 1], got ",
              end_factor);
  EMBER_CHECK(total_iters > 0, "LinearLR: total_iters must be positive, got ", total_iters);
  initialize();
}

std::vector<double> LinearLR::compute_lrs() {
  std::vector<double> lrs;
  const double progress = static_cast<double>(std::min(total_iters_, last_epoch_)) / total_iters_;
  for (double base : base_lrs_)
    lrs.push_back(base * (start_factor_ + (end_factor_ - start_factor_) * progress));
  return lrs;
}

nlohmann::json LinearLR::options() const {
  return {
      {"start_factor", start_factor_}, {"end_factor", end_factor_}, {"total_iters", total_iters_}};
}

void LinearLR::set_options(const nlohmann::json& values) {
  start_factor_ = values.value("start_factor", start_factor_);
  end_factor_ = values.value("end_factor", end_factor_);
  total_iters_ = values.value("total_iters", total_iters_);
}

// ---- OneCycleLR -----------------------------------------------------------------------------

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, const OneCycleOptions& options,
                       int64_t last_epoch)
    : OneCycleLR(optimizer, std::vector<double>(optimizer.param_groups().size(), max_lr), options,
                 last_epoch) {}

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs,
                       const OneCycleOptions& options, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), max_lrs_(std::move(max_lrs)), options_(options) {
  std::vector<ParamGroup>& groups = optimizer_.param_groups();
  EMBER_CHECK(max_lrs_.size() == groups.size(), "OneCycleLR: expected ", groups.size(),
              " values for max_lr (one per parameter group), got ", max_lrs_.size());
  check_and_make_phases();
  // The schedule starts at max_lr / div_factor, whatever the groups' lr was.
  base_lrs_.clear();
  for (size_t i = 0; i < groups.size(); ++i) {
    if (last_epoch == -1) groups[i].initial_lr = max_lrs_[i] / options_.div_factor;
    base_lrs_.push_back(*groups[i].initial_lr);
  }
  if (options_.cycle_momentum) {
    const MomentumField field = optimizer_.momentum_field();
    EMBER_CHECK(field != MomentumField::None, "OneCycleLR: ", optimizer_.name(),
                " has no momentum to cycle; pass cycle_momentum = false");
    if (last_epoch == -1)
      for (ParamGroup& group : groups)
        (field == MomentumField::Beta1 ? group.beta1 : group.momentum) = options_.max_momentum;
  }
  initialize();
}

void OneCycleLR::check_and_make_phases() {
  const OneCycleOptions& o = options_;
  EMBER_CHECK(o.total_steps > 0, "OneCycleLR: total_steps must be positive, got ", o.total_steps);
  EMBER_CHECK(o.pct_start >= 0 && o.pct_start <= 1,
              "OneCycleLR: pct_start must be between 0 and 1, got ", o.pct_start);
  EMBER_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
              "OneCycleLR: anneal_strategy must be \"cos\" or \"linear\", got \"",
              o.anneal_strategy, "\"");
  const double total = static_cast<double>(o.total_steps);
  const double rise_end = o.pct_start * total - 1;
  if (o.three_phase) {
    phases_ = {{rise_end, Level::Initial, Level::Max, Level::Max, Level::Min},
               {2 * o.pct_start * total - 2, Level::Max, Level::Initial, Level::Min, Level::Max},
               {total - 1, Level::Initial, Level::Min, Level::Max, Level::Max}};
  } else {
    phases_ = {{rise_end, Level::Initial, Level::Max, Level::Max, Level::Min},
               {total - 1, Level::Max, Level::Min, Level::Min, Level::Max}};
  }
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy == "linear") return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1);
}

std::vector<double> OneCycleLR::compute_lrs() {
  const int64_t step = last_epoch_;
  EMBER_CHECK(step <= options_.total_steps, "OneCycleLR: tried to step ", step + 1,
              " times; the specified number of total steps is ", options_.total_steps);
  std::vector<ParamGroup>& groups = optimizer_.param_groups();
  const MomentumField field =
      options_.cycle_momentum ? optimizer_.momentum_field() : MomentumField::None;
  std::vector<double> lrs;
  for (size_t i = 0; i < groups.size(); ++i) {
    const double initial = base_lrs_[i];
    const double lr_at[] = {initial, max_lrs_[i], initial / options_.final_div_factor};
    const double momentum_at[] = {0, options_.max_momentum, options_.base_momentum};
    double start_step = 0;
    for (size_t k = 0; k < phases_.size(); ++k) {
      const Phase& phase = phases_[k];
      if (step <= phase.end_step || k + 1 == phases_.size()) {
        const double pct = (step - start_step) / (phase.end_step - start_step);
        lrs.push_back(anneal(lr_at[static_cast<int>(phase.start_lr)],
                             lr_at[static_cast<int>(phase.end_lr)], pct));
        if (field != MomentumField::None) {
          const double momentum = anneal(momentum_at[static_cast<int>(phase.start_momentum)],
                                         momentum_at[static_cast<int>(phase.end_momentum)], pct);
          (field == MomentumField::Beta1 ? groups[i].beta1 : groups[i].momentum) = momentum;
        }
        break;
      }
      start_step = phase.end_step;
    }
  }
  return lrs;
}

nlohmann::json OneCycleLR::options() const {
  const OneCycleOptions& o = options_;
  return {{"max_lrs", max_lrs_},
          {"total_steps", o.total_steps},
          {"pct_start", o.pct_start},
          {"anneal_strategy", o.anneal_strategy},
          {"cycle_momentum", o.cycle_momentum},
          {"base_momentum", o.base_momentum},
          {"max_momentum", o.max_momentum},
          {"div_factor", o.div_factor},
          {"final_div_factor", o.final_div_factor},
          {"three_phase", o.three_phase}};
}

void OneCycleLR::set_options(const nlohmann::json& values) {
  OneCycleOptions o = options_;
  std::vector<double> max_lrs = values.value("max_lrs", max_lrs_);
  EMBER_CHECK(max_lrs.size() == max_lrs_.size(),
              "OneCycleLR.load_state_dict: \"max_lrs\" must list one lr per parameter group (",
              max_lrs_.size(), ")");
  o.total_steps = values.value("total_steps", o.total_steps);
  o.pct_start = values.value("pct_start", o.pct_start);
  o.anneal_strategy = values.value("anneal_strategy", o.anneal_strategy);
  o.cycle_momentum = values.value("cycle_momentum", o.cycle_momentum);
  o.base_momentum = values.value("base_momentum", o.base_momentum);
  o.max_momentum = values.value("max_momentum", o.max_momentum);
  o.div_factor = values.value("div_factor", o.div_factor);
  o.final_div_factor = values.value("final_div_factor", o.final_div_factor);
  o.three_phase = values.value("three_phase", o.three_phase);
  options_ = o;
  max_lrs_ = std::move(max_lrs);
  check_and_make_phases();
}

// ---- SequentialLR ---------------------------------------------------------------------------

SequentialLR::SequentialLR(Optimizer& optimizer,
                           std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch),
      schedulers_(std::move(schedulers)),
      milestones_(std::move(milestones)) {
  EMBER_CHECK(!schedulers_.empty(), "SequentialLR: no schedulers given");
  for (size_t i = 0; i < schedulers_.size(); ++i) {
    EMBER_CHECK(schedulers_[i] != nullptr, "SequentialLR: scheduler ", i, " is null");
    EMBER_CHECK(&schedulers_[i]->optimizer() == &optimizer_, "SequentialLR: scheduler ", i, " (",
                schedulers_[i]->name(), ") drives another optimizer than the one given");
  }
  EMBER_CHECK(milestones_.size() + 1 == schedulers_.size(),
              "SequentialLR: expected one milestone fewer than schedulers, got ",
              schedulers_.size(), " schedulers and ", milestones_.size(), " milestones");
  EMBER_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()),
              "SequentialLR: milestones must be in increasing order");
  // As PyTorch: back to the initial lrs, undo each scheduler's initial step, and start the
  // first one again.
  last_epoch_ = last_epoch + 1;
  for (ParamGroup& group : optimizer_.param_groups()) group.lr = *group.initial_lr;
  for (auto& scheduler : schedulers_) rewind(*scheduler);
  schedulers_[0]->step();
  last_lr_ = schedulers_[0]->last_lr();
}

void SequentialLR::step() {
  ++last_epoch_;
  const int64_t index = count_reached(milestones_, last_epoch_);
  LRScheduler& scheduler = *schedulers_[index];
  if (index > 0 && milestones_[index - 1] == last_epoch_)
    scheduler.step_to(0);  // the next scheduler starts at its epoch 0
  else
    scheduler.step();
  last_lr_ = scheduler.last_lr();
}

void SequentialLR::step_to(int64_t epoch) {
  last_epoch_ = epoch;
  const int64_t index = count_reached(milestones_, epoch);
  LRScheduler& scheduler = *schedulers_[index];
  scheduler.step_to(index > 0 ? epoch - milestones_[index - 1] : epoch);
  last_lr_ = scheduler.last_lr();
}

nlohmann::json SequentialLR::state_dict() const {
  nlohmann::json state = LRScheduler::state_dict();
  state["options"] = {{"milestones", milestones_}};
  nlohmann::json schedulers = nlohmann::json::array();
  for (const auto& scheduler : schedulers_) schedulers.push_back(scheduler->state_dict());
  state["schedulers"] = schedulers;
  return state;
}

void SequentialLR::load_state_dict(const nlohmann::json& state) {
  LRScheduler::load_state_dict(state);
  EMBER_CHECK(state.contains("schedulers") && state["schedulers"].is_array() &&
                  state["schedulers"].size() == schedulers_.size(),
              "SequentialLR.load_state_dict: the state must hold ", schedulers_.size(),
              " scheduler states");
  for (size_t i = 0; i < schedulers_.size(); ++i)
    schedulers_[i]->load_state_dict(state["schedulers"][i]);
  milestones_ = state["options"].value("milestones", milestones_);
}

}  // namespace ember::optim
