// Hierarchical local SGD: group averages and global averages (see hierarchical_local_sgd.h).
#include "dist/hierarchical_local_sgd.h"

#include <utility>

#include "dist/data_parallel.h"  // DataParallel
#include "dist/model_average.h"  // all_reduce_together, broadcast_together
#include "engine/error.h"        // EMBER_CHECK

namespace ember::dist {

namespace {

// The groups as a checked partition of 0 .. size-1.
std::vector<std::vector<int>> make_groups(const HierarchicalLocalSGDOptions& options, int size) {
  const std::string what = "hierarchical_local_sgd";
  std::vector<std::vector<int>> groups = options.groups;
  if (groups.empty()) {
    EMBER_CHECK(options.group_size >= 1, what,
                ": give group_size (consecutive ranks per group) or groups (lists of ranks); "
                "group_size is ",
                options.group_size);
    for (int first = 0; first < size; first += options.group_size) {
      groups.emplace_back();
      for (int r = first; r < size && r < first + options.group_size; ++r)
        groups.back().push_back(r);
    }
  } else {
    EMBER_CHECK(options.group_size == 0, what, ": give group_size or groups, not both");
  }
  std::vector<int> seen(size, 0);
  for (const std::vector<int>& group : groups) {
    EMBER_CHECK(!group.empty(), what, ": groups: a group is empty");
    for (int r : group) {
      EMBER_CHECK(r >= 0 && r < size, what, ": groups: rank ", r, " is outside 0..", size - 1);
      EMBER_CHECK(++seen[r] == 1, what, ": groups: rank ", r, " is in two groups");
    }
  }
  for (int r = 0; r < size; ++r)
    EMBER_CHECK(seen[r] == 1, what, ": groups: rank ", r, " is in no group");
  return groups;
}

}  // namespace

HierarchicalLocalSGDOptimizer::HierarchicalLocalSGDOptimizer(
    std::shared_ptr<optim::Optimizer> local_optimizer, std::shared_ptr<Communicator> communicator,
    HierarchicalLocalSGDOptions options)
    : OptimizerWrapper(std::move(local_optimizer), std::move(communicator)),
      options_(std::move(options)) {
  EMBER_CHECK(options_.local_sync_freq >= 1,
              "hierarchical_local_sgd: local_sync_freq must be at least 1, got ",
              options_.local_sync_freq);
  EMBER_CHECK(options_.global_sync_freq >= 1,
              "hierarchical_local_sgd: global_sync_freq must be at least 1, got ",
              options_.global_sync_freq);
  if (!comm_) return;
  groups_ = make_groups(options_, comm_->size());
  // new_group is collective: every rank creates every group, in the same order.
  for (const std::vector<int>& group : groups_) {
    std::shared_ptr<Communicator> sub = comm_->new_group(group);
    if (sub) group_comm_ = std::move(sub);
  }
  if (comm_->size() > 1 && options_.broadcast_initial_parameters)
    broadcast_together(data_parallel_parameters(), *comm_, 0);
}

void HierarchicalLocalSGDOptimizer::attach_data_parallel(
    std::shared_ptr<DataParallel> data_parallel) {
  OptimizerWrapper::attach_data_parallel(std::move(data_parallel));
  if (data_parallel_) data_parallel_->set_gradient_sync(false);
}

void HierarchicalLocalSGDOptimizer::average_over(Communicator& comm) {
  if (comm.size() == 1) return;
  all_reduce_together(data_parallel_parameters(), comm, ReduceOp::Average);
  if (options_.buffers == BufferSync::Local) return;
  nn::Module* model = model_;
  EMBER_CHECK(model != nullptr, algorithm(), ": buffers '", buffer_sync_name(options_.buffers),
              "' needs the model: call attach_model(model) on the distributed optimizer");
  sync_model_buffers(*model, comm, options_.buffers);
}

void HierarchicalLocalSGDOptimizer::step() {
  local_->step();
  const int64_t t = ++step_;
  if (!comm_ || t % options_.local_sync_freq != 0) return;
  const int64_t sync = t / options_.local_sync_freq;
  if (sync % options_.global_sync_freq == 0) {
    average_over(*comm_);
    ++global_averages_;
  } else {
    average_over(*group_comm_);
    ++group_averages_;
  }
}

nlohmann::json HierarchicalLocalSGDOptimizer::distributed_state() const {
  return {{"step", step_},
          {"local_sync_freq", options_.local_sync_freq},
          {"global_sync_freq", options_.global_sync_freq},
          {"groups", groups_}};
}

void HierarchicalLocalSGDOptimizer::check_distributed_state(const nlohmann::json& state) const {
  const std::string what = "hierarchical_local_sgd.load_state_dict";
  EMBER_CHECK(state.contains("step") && state["step"].is_number_integer() &&
                  state["step"].get<int64_t>() >= 0,
              what, ": the state has no step counter (a non-negative integer \"step\")");
  for (const auto& [key, mine] :
       {std::pair<const char*, int64_t>{"local_sync_freq", options_.local_sync_freq},
        {"global_sync_freq", options_.global_sync_freq}}) {
    EMBER_CHECK(state.contains(key) && state[key].is_number_integer(), what,
                ": the state has no integer \"", key, "\"");
    const int64_t saved = state[key].get<int64_t>();
    EMBER_CHECK(saved == mine, what, ": the state was saved with ", key, " ", saved,
                ", this optimizer has ", key, " ", mine);
  }
  EMBER_CHECK(!state.contains("groups") || state["groups"] == nlohmann::json(groups_), what,
              ": the state was saved with the groups ",
              state.value("groups", nlohmann::json()).dump(), ", this optimizer has ",
              nlohmann::json(groups_).dump());
}

void HierarchicalLocalSGDOptimizer::set_distributed_state(const nlohmann::json& state) {
  step_ = state["step"].get<int64_t>();
}

}  // namespace ember::dist
