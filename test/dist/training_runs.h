// Short training runs of a distributed optimizer with ranks as threads, recording what each
// rank did: the sync events, its parameters after every step, its communicator's statistics.
// Rank r trains on its own batches (seeded by rank and step) and starts from its own weights
// (seed 7 + r), so replicas differ unless the algorithm makes them equal.
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "dist/distributed_optimizer.h"
#include "layers/sgd.h"
#include "test/dist/rank_threads.h"

namespace ember::test {

struct RankRecord {
  std::vector<std::pair<int64_t, dist::SyncEvent>> events;  // local SGD only
  std::vector<std::vector<double>> params_after_step;       // [step - 1]
  std::vector<double> initial_params;                       // once the optimizer was built
  dist::CommStats stats_after_build, stats;
  std::vector<std::vector<double>> momentum_after_step;  // zeros for a parameter without one
  optim::OptimizerStateDict state_dict;                  // after the last step
};

// SGD with momentum, Nesterov and weight decay: the update local SGD must keep linear.
inline std::shared_ptr<optim::SGD> make_sgd(const std::vector<optim::ParamGroup>& groups) {
  std::vector<optim::ParamGroup> g = groups;
  for (optim::ParamGroup& group : g) {
    group.lr = 0.05;
    group.momentum = 0.9;
    group.nesterov = true;
    group.weight_decay = 1e-3;
  }
  return std::make_shared<optim::SGD>(g);
}

inline std::shared_ptr<optim::SGD> make_sgd(const nn::Module& model) {
  optim::ParamGroup group;
  group.params = model.parameters();
  return make_sgd(std::vector<optim::ParamGroup>{group});
}

using Builder = std::function<std::shared_ptr<dist::OptimizerWrapper>(
    int rank, std::shared_ptr<dist::Communicator> comm, std::shared_ptr<nn::Sequential> model)>;

inline Tensor input_of(int rank, int step) {
  return random_batch({4, 6}, 1000 * rank + step);
}
inline Tensor target_of(int rank, int step) {
  return random_batch({4, 3}, 5000 + 1000 * rank + step);
}

// Steps first_step .. last_step (counting from 1) on each rank; models[rank] is trained in
// place (make_models gives fresh ones).
inline std::vector<RankRecord> train(int world, int first_step, int last_step,
                                     const std::vector<std::shared_ptr<nn::Sequential>>& models,
                                     const Builder& build) {
  std::vector<RankRecord> records(world);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<dist::Communicator> comm) {
    RankRecord& record = records[rank];
    std::shared_ptr<dist::OptimizerWrapper> optimizer = build(rank, comm, models[rank]);
    record.stats_after_build = comm->stats();
    record.initial_params = parameter_values(*models[rank]);
    if (auto local = std::dynamic_pointer_cast<dist::LocalSGDOptimizer>(optimizer))
      local->set_sync_observer([&record](int64_t step, dist::SyncEvent event) {
        record.events.emplace_back(step, event);
      });
    for (int step = first_step; step <= last_step; ++step) {
      optimizer->zero_grad();
      nn::mse_loss((*models[rank])(input_of(rank, step)), target_of(rank, step)).backward();
      optimizer->step();
      record.params_after_step.push_back(parameter_values(*models[rank]));
      auto& sgd = dynamic_cast<optim::SGD&>(*optimizer->local_optimizer());
      std::vector<double> momentum;
      for (const Tensor& p : models[rank]->parameters()) {
        const Tensor buffer = sgd.state_buffer(p, "momentum_buffer");
        const std::vector<double> v =
            buffer.defined() ? buffer.to_vector<double>() : std::vector<double>(p.numel(), 0.0);
        momentum.insert(momentum.end(), v.begin(), v.end());
      }
      record.momentum_after_step.push_back(momentum);
    }
    record.stats = comm->stats();
    record.state_dict = optimizer->state_dict();
  }));
  return records;
}

inline std::vector<std::shared_ptr<nn::Sequential>> make_models(int world) {
  std::vector<std::shared_ptr<nn::Sequential>> models;
  for (int r = 0; r < world; ++r) models.push_back(make_mlp({6, 8, 3}, 7 + r));
  return models;
}

inline std::vector<RankRecord> train(int world, int steps, const Builder& build) {
  return train(world, 1, steps, make_models(world), build);
}

// A builder for get_distributed_optimizer's JSON form.
inline Builder json_builder(const std::string& algorithm, const nlohmann::json& options) {
  return [=](int, std::shared_ptr<dist::Communicator> comm, std::shared_ptr<nn::Sequential> model) {
    return dist::get_distributed_optimizer(algorithm, make_sgd(*model), comm, {}, options);
  };
}

// Whether every rank holds the same parameters after `step`.
inline bool identical_after(const std::vector<RankRecord>& records, int step) {
  for (const RankRecord& r : records)
    if (r.params_after_step[step - 1] != records[0].params_after_step[step - 1]) return false;
  return true;
}

}  // namespace ember::test
