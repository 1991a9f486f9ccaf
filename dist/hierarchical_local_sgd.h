// Hierarchical local SGD: ranks form groups (e.g. the GPUs of one machine, whose links are
// fast); replicas are averaged inside their group every `local_sync_freq` steps and over all
// ranks every `global_sync_freq` group averages:
//
//   t = 1, 2, ...:  step; if t % local_sync_freq == 0 (the g-th sync, g = t / local_sync_freq):
//                     g % global_sync_freq == 0 ? average over all ranks : average in the group
//
// A global average replaces that step's group average (it leaves the groups identical too).
// What is averaged, and how, is as in local SGD (dist/local_sgd.h): the parameters of the
// groups with allow_data_parallelism, one collective on the flat storage.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/buffer_sync.h"        // BufferSync
#include "dist/optimizer_wrapper.h"  // OptimizerWrapper

namespace ember::dist {

struct HierarchicalLocalSGDOptions {
  int64_t local_sync_freq = 4;   // steps between averages inside a group
  int64_t global_sync_freq = 4;  // group averages between averages over all ranks
  // The groups, as ranks of the communicator: either `group_size` consecutive ranks per group
  // (the last group may be smaller), or an explicit partition in `groups`.
  int group_size = 0;
  std::vector<std::vector<int>> groups;
  BufferSync buffers = BufferSync::Local;
  bool broadcast_initial_parameters = true;  // rank 0's, when built
};

class HierarchicalLocalSGDOptimizer : public OptimizerWrapper {
 public:
  // Every rank of `communicator` builds it (it creates the group communicators).
  HierarchicalLocalSGDOptimizer(std::shared_ptr<optim::Optimizer> local_optimizer,
                                std::shared_ptr<Communicator> communicator,
                                HierarchicalLocalSGDOptions options);

  void step() override;
  std::string algorithm() const override { return "hierarchical_local_sgd"; }
  // Gradients are never averaged here: an attached DataParallel is switched off.
  void attach_data_parallel(std::shared_ptr<DataParallel> data_parallel) override;

  const HierarchicalLocalSGDOptions& options() const { return options_; }
  int64_t step_count() const { return step_; }
  // The groups (ranks of the communicator) and this rank's group communicator.
  const std::vector<std::vector<int>>& groups() const { return groups_; }
  const std::shared_ptr<Communicator>& group_communicator() const { return group_comm_; }
  // How many group and global averages this rank has taken part in.
  int64_t group_averages() const { return group_averages_; }
  int64_t global_averages() const { return global_averages_; }

 protected:
  nlohmann::json distributed_state() const override;
  void check_distributed_state(const nlohmann::json& state) const override;
  void set_distributed_state(const nlohmann::json& state) override;

 private:
  void average_over(Communicator& comm);

  HierarchicalLocalSGDOptions options_;
  std::vector<std::vector<int>> groups_;
  std::shared_ptr<Communicator> group_comm_;
  int64_t step_ = 0;
  int64_t group_averages_ = 0;
  int64_t global_averages_ = 0;
};

}  // namespace ember::dist
