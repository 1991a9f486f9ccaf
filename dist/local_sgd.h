// (Post-)local SGD (Lin, Stich, Patel, Jaggi, "Don't Use Large Mini-Batches, Use Local SGD",
// ICLR 2020): every rank steps its replica on its own batches and the replicas' parameters are
// averaged only every `local_steps` steps, which communicates local_steps times less than
// synchronous SGD.
//
// The schedule (the seed's rule), with t = 1, 2, ... counting optimizer steps on every rank:
//   t <= initial_steps, by initial_step_method:
//     multiple_processes  every rank steps, then the parameters are averaged (with equal
//                         replicas: mini-batch SGD over world_size x batch);
//     single_process      only rank 0 steps (the others skip the update but still consume their
//                         batches, keeping their data order); after step t = initial_steps rank
//                         0's parameters AND optimizer state are broadcast. (The seed broadcast
//                         the parameters only, leaving the other ranks with empty momentum
//                         buffers that then diverge; ember sends the momentum too.)
//     gradient_allreduce  synchronous data parallel: gradients averaged before every step
//                         (through an attached DataParallel, overlapping backward, else one
//                         all-reduce of the flat gradients). The fastest warm-up; not the
//                         default, to keep the seed's behaviour.
//   t > initial_steps: every rank steps; parameters are averaged after step t iff
//     t % local_steps == 0 (the global counter, as the seed: with initial_steps = 10 and
//     local_steps = 4 the averages come after steps 12, 16, 20, ..., not 14, 18, ... as
//     PyTorch's PostLocalSGD, which counts from the end of the warm-up).
//
// What is averaged: the parameters of the groups with allow_data_parallelism (never momentum,
// never a group that opted out), with ONE collective on the flat parameter storage
// (dist/model_average.h); buffers (BatchNorm statistics) by the `buffers` option, default local
// as every reference implementation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dist/buffer_sync.h"        // BufferSync
#include "dist/optimizer_wrapper.h"  // OptimizerWrapper

namespace ember::dist {

enum class InitialStepMethod { single_process, multiple_processes, gradient_allreduce };
// An unknown name is an error that lists the three, naming `what` (the flag or key).
InitialStepMethod parse_initial_step_method(const std::string& name,
                                            const std::string& what = "initial_step_method");
std::string initial_step_method_name(InitialStepMethod method);

// The defaults are those of the seed's get_distributed_optimizer.
struct LocalSGDOptions {
  int64_t local_steps = 4;
  int64_t initial_steps = 0;
  InitialStepMethod initial_step_method = InitialStepMethod::single_process;
  BufferSync buffers = BufferSync::Local;
  // Broadcast rank 0's parameters when the optimizer is built, so the replicas start equal
  // whatever seeds the ranks used.
  bool broadcast_initial_parameters = true;
};

// What happened after a step: told to the sync observer (logs and tests).
enum class SyncEvent { ParameterAverage, Broadcast, GradientAverage };

class LocalSGDOptimizer : public OptimizerWrapper {
 public:
  // Every rank of `communicator` builds it (it may broadcast). A null communicator (a rank
  // outside the group) makes an optimizer that only steps locally.
  LocalSGDOptimizer(std::shared_ptr<optim::Optimizer> local_optimizer,
                    std::shared_ptr<Communicator> communicator, LocalSGDOptions options = {});

  void step() override;
  std::string algorithm() const override { return "local_sgd"; }
  // The DataParallel averages gradients (during backward) only in a gradient_allreduce
  // warm-up; it is switched off for every other step.
  void attach_data_parallel(std::shared_ptr<DataParallel> data_parallel) override;

  const LocalSGDOptions& options() const { return options_; }
  int64_t step_count() const { return step_; }  // t of the last step
  // Called after each step that communicated, with t and what was done.
  void set_sync_observer(std::function<void(int64_t step, SyncEvent event)> observer) {
    observer_ = std::move(observer);
  }

 protected:
  nlohmann::json distributed_state() const override;
  void check_distributed_state(const nlohmann::json& state) const override;
  void set_distributed_state(const nlohmann::json& state) override;

 private:
  bool in_gradient_allreduce_phase(int64_t t) const;
  void average_parameters();
  void broadcast_from_rank0();
  void notify(SyncEvent event);

  LocalSGDOptions options_;
  int64_t step_ = 0;
  std::function<void(int64_t, SyncEvent)> observer_;
};

// Broadcasts `root`'s optimizer state (momentum buffers, step counts, hyper-parameters) to
// every rank of `comm`, except the state of the parameters in groups without
// allow_data_parallelism. A rank whose optimizer has not stepped yet gets the state as if it
// had taken root's steps. Three collectives (the description's length, the description, the
// tensors packed in one buffer per dtype).
void broadcast_optimizer_state(optim::Optimizer& optimizer, Communicator& comm, int root);

}  // namespace ember::dist
