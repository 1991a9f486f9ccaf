// The learning-rate schedules the training programs offer (--schedule), built from
// layers/lr_scheduler.h and stepped once per optimizer step, with epochs converted to steps:
//
//   step       lr × gamma every step_size epochs (PyTorch's ImageNet example: 0.1 every 30)
//   multistep  lr × gamma at each epoch of `milestones`
//   cosine     cosine annealing from lr to 0 over the run (after the warm-up)
//   onecycle   the 1cycle policy with max_lr = lr (warm-up share: warmup_epochs / epochs, else
//              30%); SGD's momentum (Adam's beta1) cycles between 0.85 and 0.95
//   constant   lr throughout
//
// Stepping per step changes nothing for step and multistep (their lr moves exactly at epoch
// boundaries, as PyTorch's per-epoch StepLR) and makes cosine and the warm-up move smoothly,
// which matters in runs of a few epochs. A linear warm-up (warmup_epochs > 0, all schedules but
// onecycle) rises from lr / 100 to lr and is followed by the schedule (PyTorch's SequentialLR of
// LinearLR and the schedule): step's periods and cosine's span start after the warm-up;
// milestones are epochs of the whole run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/lr_scheduler.h"  // LRScheduler
#include "layers/optimizer.h"     // Optimizer

namespace ember::app {

struct ScheduleOptions {
  std::string kind = "step";        // step, multistep, cosine, onecycle, constant
  int64_t step_size = 30;           // epochs, for step
  double gamma = 0.1;               // step and multistep
  std::vector<int64_t> milestones;  // epochs, for multistep
  int64_t warmup_epochs = 0;
};

// The schedule names, for --schedule's choices and help.
const std::vector<std::string>& schedule_kinds();

// A scheduler for a run of `epochs` epochs of `steps_per_epoch` optimizer steps; call its
// step() after each optimizer.step(). Invalid options are errors naming the flag.
std::shared_ptr<optim::LRScheduler> make_lr_schedule(const ScheduleOptions& options,
                                                     optim::Optimizer& optimizer, int64_t epochs,
                                                     int64_t steps_per_epoch);

// "step (×0.1 every 30 epochs)", "cosine after 2 warm-up epochs": for logs.
std::string describe_schedule(const ScheduleOptions& options);

}  // namespace ember::app
