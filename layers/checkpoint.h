// Weights files and training checkpoints, both safetensors files (engine/safetensors.h).
//
// A weights file is a model's state_dict and nothing else: every parameter and persistent
// buffer under PyTorch's name ("layer1.0.conv1.weight", "bn1.num_batches_tracked" as I64), the
// tensors `torch.save(model.state_dict())` would hold. PyTorch loads it with
//   model.load_state_dict({k: torch.from_numpy(v) for k, v in safetensors_io.read(p)[0].items()})
// (or safetensors.torch.load_file), and ember loads PyTorch's the same way.
//
// A checkpoint is everything a training run needs to go on as if it had never stopped:
//   tensors       model.<state_dict name>, optimizer.state.<index>.<buffer>
//   __metadata__  format     "ember-checkpoint" (what tells the two kinds of file apart)
//                 version    "1"
//                 arch       the model's registry name, when the saver gave one
//                 optimizer  the optimizer's state dict metadata (JSON: kind, groups, lrs, steps)
//                 scheduler  the LR scheduler's state dict (JSON)
//                 rng        {"seed": ..., "offset": ...} of the default generator (JSON)
//                 counters   {"epoch": ..., "global_step": ..., "best_accuracy": ...} (JSON)
//                 plus any entries of the saver's own (strings)
// Saving is atomic: a crash or an error during a save leaves the previous file intact.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "layers/lr_scheduler.h"  // LRScheduler
#include "layers/module.h"        // Module, LoadResult
#include "layers/optimizer.h"     // Optimizer

namespace ember::nn {

// ---- weights files ----

// Writes the model's state_dict to `path` (tensors copied to the CPU, dtypes kept).
void save_weights(const std::string& path, const Module& model);

// Loads a weights file into the model (values copied into its tensors, converted to their dtype
// and device). Keys may carry a leading "module." (nn.DataParallel) or "model." (a wrapper's
// attribute), or both: such a prefix is dropped when EVERY key of the file has it and no key of
// the model does, so no name can be read two ways. strict: the keys must match both ways; shapes
// must always match. Errors name the file and list every missing or unexpected key and every shape
// mismatch; a checkpoint given here is an error that says so.
LoadResult load_weights(Module& model, const std::string& path, bool strict = true);

// ---- checkpoints ----

// Where a training run stands.
struct TrainingCounters {
  int64_t epoch = 0;        // epochs completed
  int64_t global_step = 0;  // optimizer steps taken
  double best_accuracy = 0;
  std::map<std::string, double> other;  // any further counters, by name
};

// What a checkpoint holds besides the tensors, as load_checkpoint read it.
struct Checkpoint {
  std::string path;
  int version = 0;
  std::string arch;  // "" when the saver named no model
  TrainingCounters counters;
  // The saver's own metadata entries (without the reserved keys above, "arch" included).
  std::map<std::string, std::string> metadata;
  bool has_optimizer = false;  // optimizer state is in the file
  bool has_scheduler = false;  // scheduler state is in the file
  uint64_t rng_seed = 0;       // the default generator's state when saved
  uint64_t rng_offset = 0;
};

// The version this ember writes, and the newest it reads.
constexpr int kCheckpointVersion = 1;

// Writes a checkpoint of the model, the optimizer and scheduler (either may be null), the
// default generator's state and the counters. `metadata` adds entries of the caller's own; its
// "arch" entry names the model (e.g. {{"arch", "resnet18"}}); the other reserved keys (format,
// version, optimizer, scheduler, rng, counters) are an error.
void save_checkpoint(const std::string& path, const Module& model,
                     const optim::Optimizer* optimizer, const optim::LRScheduler* scheduler,
                     const TrainingCounters& counters = {},
                     const std::map<std::string, std::string>& metadata = {});

// Restores a checkpoint: the model's tensors (strictly: every key and shape must match), the
// optimizer's and scheduler's states when given (a checkpoint without them is then an error; an
// optimizer or scheduler in the file that is not asked for is ignored), and the default
// generator's seed and offset, so the resumed run draws the numbers the saving run would have
// drawn next. Construct the scheduler before loading, as for a new run. The kinds of optimizer
// and scheduler are checked before anything changes; errors name the file. A weights file given
// here is an error that says so.
Checkpoint load_checkpoint(const std::string& path, Module& model, optim::Optimizer* optimizer,
                           optim::LRScheduler* scheduler);

// ---- either kind ----

enum class WeightsSource { WeightsFile, Checkpoint };

// Loads only the model's tensors from a weights file or from a checkpoint (its model part; the
// optimizer, scheduler and generator are left alone), whichever `path` is, and says which. For
// programs that take both (bin/ember_infer --weights).
WeightsSource load_weights_or_checkpoint(Module& model, const std::string& path,
                                         bool strict = true);

}  // namespace ember::nn
