// The training loop shared by bin/train_cifar, bin/train_imagenet and bin/train_mnist: image
// classification with a registered model, cross-entropy, an optimizer and an LR schedule.
//
//   Trainer trainer(options, data);   // model, optimizer, schedule, loaders (and --resume)
//   trainer.fit();                    // epochs until options.epochs, with the run's files
//
// One epoch: the training loader (RandomSampler: a new order each epoch) gives batches; each
// step is forward, cross_entropy, backward, optimizer step, schedule step, and adds to the
// running loss and top-1 that the progress line shows. Then the model is evaluated (eval mode,
// no gradients, SequentialSampler) on the validation hold-out (--val-size) and the test set,
// and the run folder gets its files (apps/common/run_log.h): a row of epochs.csv, the plots,
// summary.json and the checkpoints checkpoint_last.safetensors and, when the epoch is the best
// so far, checkpoint_best.safetensors. "Best" is judged on the validation set when there is one,
// else on the test set (as the seed programs do).
//
// Resuming is exact: everything a step depends on is either saved in the checkpoint (weights,
// BatchNorm statistics, optimizer state, schedule position, the default generator that dropout
// draws from, counters, the rows of epochs.csv) or a function of (seed, epoch): the order of
// the training examples (RandomSampler(n, seed)) and their augmentations (the DataLoader's
// SampleRandom(seed, epoch, index)). So on the CPU, with the same thread count, a run stopped
// after epoch k and resumed computes the same bits as a run that never stopped.
//
// Distributed training slots in through TrainerHooks: a wrapper around the optimizer (it is
// only ever used as an optim::Optimizer), each process's share of the training set (any
// data::Sampler), and whether this process writes the run's files.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/common/lr_schedule.h"  // ScheduleOptions
#include "apps/common/progress.h"     // Progress
#include "apps/common/run_log.h"      // EpochRecord
#include "datasets/data_loader.h"     // DataLoader
#include "datasets/dataset.h"         // Dataset
#include "datasets/sampler.h"         // Sampler
#include "datasets/transforms.h"      // Transform, Normalize
#include "engine/device.h"            // Device
#include "layers/lr_scheduler.h"      // LRScheduler
#include "layers/module.h"            // Module
#include "layers/optimizer.h"         // Optimizer

namespace ember::app {

// How a run is set up: what the programs' flags say.
struct TrainOptions {
  std::string program = "train";  // names the program in messages and summaries
  std::string arch;               // a registered model (layers/model_registry.h)
  int64_t epochs = 90;            // the total: a resumed run trains until this epoch
  int64_t batch_size = 256;
  std::string optimizer = "sgd";  // sgd, adam, adamw
  double lr = 0.1;
  double momentum = 0.9;  // SGD's momentum; Adam's beta1 stays 0.9
  double weight_decay = 1e-4;
  bool nesterov = false;
  ScheduleOptions schedule;
  int print_freq = 10;  // a progress line every N steps when not on a terminal
  int workers = 4;      // DataLoader threads
  uint64_t seed = 0;    // initialization, data order, augmentations, the validation hold-out
  std::string device = "auto";  // cpu, cuda, cuda:N, auto
  size_t val_size = 0;          // training examples held out for validation
  int64_t start_epoch = 0;      // the epoch to start at (0-based), without a checkpoint
  std::string resume;           // a checkpoint to continue from
  std::string pretrained;       // a weights file to start from
  std::string out;              // the run folder; "" = the checkpoint's folder when resuming,
                                // else runs/<arch>-<date>
  nlohmann::json arguments = nlohmann::json::object();  // the flags, for summary.json
};

// The data of a run. The transforms may be null (no augmentation, no resizing).
struct TrainingData {
  std::shared_ptr<const data::Dataset> train, test;
  std::shared_ptr<const data::Transform> train_transform, eval_transform;
  data::Normalize normalize;
  std::string description;  // "CIFAR-10 (binary batches) in data/cifar-10-batches-bin"
};

// What this process has communicated so far (cumulative; see dist/communicator.h).
struct CommunicationTotals {
  double payload_bytes = 0;
  double operations = 0;
  double seconds = 0;
};

// What distributed training changes; the defaults train in one process.
struct TrainerHooks {
  // Wraps the optimizer built from the options (e.g. to average gradients or models across
  // processes); the trainer then uses only the wrapper. The model is given too: synchronous data
  // parallel hooks its gradients.
  std::function<std::shared_ptr<optim::Optimizer>(std::shared_ptr<nn::Module> model,
                                                  std::shared_ptr<optim::Optimizer>)>
      wrap_optimizer;
  // The training examples this process visits each epoch; default RandomSampler(n, seed).
  std::function<std::shared_ptr<const data::Sampler>(size_t n, uint64_t seed)> train_sampler;
  // The model that evaluation measures instead of this process's replica: e.g. the average of
  // all replicas in a scratch copy, which leaves the replica (and the algorithm) untouched. When
  // set, the replica's own test accuracy is measured too and averaged over the processes with
  // mean_over_processes (the rank_mean_test_acc column).
  std::function<nn::Module&(nn::Module& replica)> evaluation_model;
  std::function<double(double)> mean_over_processes;
  // This process's communication so far (the bytes_per_step and comm_ms_per_step columns).
  std::function<CommunicationTotals()> communication_totals;
  // The run folder and its files (one process of several writes them).
  bool write_outputs = true;
  // Written as summary.json's "distributed" object and described in the header.
  nlohmann::json distributed = nullptr;
};

// Averages over a pass through a data set; NaN where nothing was measured.
struct PassResult {
  double loss = NAN;
  double top1 = NAN;  // fractions in [0, 1]
  double top5 = NAN;
  int64_t samples = 0;
  int64_t steps = 0;
  double seconds = 0;
  // Training passes of a distributed run: what this process communicated during the pass.
  double payload_bytes = 0, communication_seconds = 0;
};

enum class EvalSet { Validation, Test };

class Trainer {
 public:
  // Builds the model (seeded with options.seed), moves it to the device, builds the optimizer
  // (through hooks.wrap_optimizer), the LR schedule and the loaders, holds out the validation
  // set, loads --pretrained weights, and restores --resume's checkpoint (whose seed then wins
  // over options.seed). Progress and messages go to `console`.
  Trainer(TrainOptions options, TrainingData data, std::FILE* console = stdout,
          TrainerHooks hooks = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains the remaining epochs, writing the run's files after each; then prints where they
  // are. Returns every epoch's record (those of the resumed run's past included).
  const std::vector<EpochRecord>& fit();

  // One epoch of training (the next one): running loss and top-1 (train mode, as the progress
  // line shows them; no top-5).
  PassResult train_epoch();
  // Loss, top-1 and top-5 of the model in eval mode (hooks.evaluation_model's, when set); an
  // absent validation set gives NaNs.
  PassResult evaluate(EvalSet set);
  // The same for a given model.
  PassResult evaluate(nn::Module& model, EvalSet set);
  // A checkpoint of where the run stands (fit() writes checkpoint_last and checkpoint_best).
  void save_checkpoint(const std::string& path) const;

  nn::Module& model() { return *model_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  optim::LRScheduler& scheduler() { return *scheduler_; }
  Device device() const { return device_; }
  const TrainOptions& options() const { return options_; }
  int64_t epoch() const { return epoch_; }  // epochs completed
  int64_t global_step() const { return global_step_; }
  const std::string& run_folder() const { return folder_; }
  // The data sets as trained and evaluated on (after the hold-out).
  const data::Dataset& train_set() const { return *train_set_; }
  const data::Dataset* validation_set() const { return val_set_.get(); }
  const data::Dataset& test_set() const { return *data_.test; }
  const std::vector<EpochRecord>& records() const { return records_; }

 private:
  void resume_from(const std::string& path);
  void write_outputs();
  nlohmann::json summary() const;
  std::string header() const;

  TrainOptions options_;
  TrainingData data_;
  std::FILE* console_;
  TrainerHooks hooks_;
  Device device_;

  std::shared_ptr<const data::Dataset> train_set_, val_set_;
  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<optim::LRScheduler> scheduler_;
  std::unique_ptr<data::DataLoader> train_loader_, val_loader_, test_loader_;
  std::unique_ptr<Progress> progress_;

  std::string folder_;
  int64_t epoch_ = 0;  // epochs completed
  int64_t global_step_ = 0;
  std::vector<EpochRecord> records_;
  // The best epoch so far, on the validation set when there is one, else on the test set.
  int64_t best_epoch_ = 0;
  double best_top1_ = -1, best_top5_ = NAN;
  // Throughput of this process's epochs (a resumed run counts its own).
  double train_seconds_ = 0;
  int64_t train_images_ = 0, train_steps_ = 0;
  // Communication during this process's training epochs (hooks.communication_totals).
  CommunicationTotals train_communication_;
};

}  // namespace ember::app
