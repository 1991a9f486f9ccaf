// Local SGD and hierarchical local SGD with ranks as threads: the averaging schedule the spec
// pins, what is averaged (and what is not), the initial phase's methods, resuming mid-round,
// and the bytes communicated.
#include <doctest/doctest.h>

#include <map>

#include "dist/data_parallel.h"
#include "dist/distributed_optimizer.h"
#include "layers/normalization.h"
#include "test/dist/training_runs.h"
#include "test/temporary_files.h"  // contains

namespace ember::dist {
namespace {

using namespace ember::test;
using test::contains;
using Events = std::vector<std::pair<int64_t, SyncEvent>>;

// The events the spec's rule gives, computed here independently of the optimizer.
Events expected_events(int64_t local_steps, int64_t initial_steps, const std::string& method,
                       int64_t steps) {
  Events events;
  for (int64_t t = 1; t <= steps; ++t) {
    if (t <= initial_steps) {
      if (method == "multiple_processes") events.emplace_back(t, SyncEvent::ParameterAverage);
      if (method == "gradient_allreduce") events.emplace_back(t, SyncEvent::GradientAverage);
      if (method == "single_process" && t == initial_steps)
        events.emplace_back(t, SyncEvent::Broadcast);
    } else if (t % local_steps == 0) {
      events.emplace_back(t, SyncEvent::ParameterAverage);
    }
  }
  return events;
}

TEST_CASE("local SGD with one local step equals synchronous SGD") {
  const int world = 2, steps = 6;
  const auto local = train(world, steps, json_builder("local_sgd", {{"local_steps", 1}}));
  const auto sync = train(world, steps, json_builder("sync", nlohmann::json::object()));
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    for (int step = 1; step <= steps; ++step) {
      INFO("step " << step);
      CHECK(max_difference(local[rank].params_after_step[step - 1],
                           sync[0].params_after_step[step - 1]) < 1e-12);
    }
  }
  // Not trivially: the ranks' batches differ, so a step without averaging would split them.
  CHECK(local[0].params_after_step[0] !=
        train(world, 1, json_builder("local_sgd", {{"local_steps", 2}}))[0].params_after_step[0]);
}

TEST_CASE("local SGD averages exactly at the steps of the schedule") {
  struct Case {
    int64_t local_steps, initial_steps;
    std::string method;
  };
  const int world = 2, steps = 13;
  for (const Case& c : {Case{4, 0, "single_process"}, Case{4, 10, "multiple_processes"},
                        Case{3, 5, "single_process"}, Case{4, 6, "gradient_allreduce"},
                        Case{5, 3, "multiple_processes"}}) {
    INFO("local_steps " << c.local_steps << ", initial_steps " << c.initial_steps << ", "
                        << c.method);
    const auto records = train(world, steps,
                               json_builder("local_sgd", {{"local_steps", c.local_steps},
                                                          {"initial_steps", c.initial_steps},
                                                          {"initial_step_method", c.method}}));
    const Events expected = expected_events(c.local_steps, c.initial_steps, c.method, steps);
    int64_t all_reduces = 0;
    for (const auto& [step, event] : expected) all_reduces += event != SyncEvent::Broadcast;
    for (int rank = 0; rank < world; ++rank) {
      INFO("rank " << rank);
      CHECK(records[rank].events == expected);
      const CommStats& stats = records[rank].stats;
      CHECK(stats.operations_by_op.count("all_reduce") == (all_reduces > 0 ? 1u : 0u));
      if (all_reduces > 0) CHECK(stats.operations_by_op.at("all_reduce") == all_reduces);
    }
    // After every parameter average or broadcast all ranks are identical; after a step that
    // only stepped locally they are not.
    for (int64_t step = 1; step <= steps; ++step) {
      INFO("step " << step);
      bool synced = false;
      for (const auto& [t, event] : expected)
        synced |= t == step && event != SyncEvent::GradientAverage;
      const bool gradient_phase = c.method == "gradient_allreduce" && step <= c.initial_steps;
      CHECK(identical_after(records, static_cast<int>(step)) == (synced || gradient_phase));
    }
  }
}

TEST_CASE("groups without allow_data_parallelism are never averaged") {
  const int world = 2, steps = 4;
  // Two layouts: the averaged parameters in one range of flat storage (the body, layer 0), or
  // scattered (the two weights), which goes through a packed buffer: one collective either way.
  for (const bool scattered : {false, true}) {
    INFO((scattered ? "scattered" : "contiguous"));
    std::vector<int64_t> shared_numel(world);  // one slot per rank thread
    auto build = [&](int rank, std::shared_ptr<Communicator> comm,
                     std::shared_ptr<nn::Sequential> model) {
      const auto named = model->named_parameters();  // 0.weight 0.bias 2.weight 2.bias
      optim::ParamGroup shared, own;
      own.flags["allow_data_parallelism"] = 0;
      for (const auto& [name, p] : named) {
        const bool is_shared =
            scattered ? name.find("weight") != std::string::npos : name.rfind("0.", 0) == 0;
        (is_shared ? shared : own).params.push_back(p);
        if (is_shared) shared_numel[rank] += p.numel();
      }
      return get_distributed_optimizer("local_sgd", make_sgd({shared, own}), comm, {},
                                       nlohmann::json{{"local_steps", 2}});
    };
    const auto records = train(world, steps, build);
    const NamedTensors named = make_mlp({6, 8, 3}, 1)->named_parameters();
    for (int step : {2, 4}) {
      INFO("step " << step);
      // Element ranges of each parameter in parameter_values' order.
      int64_t offset = 0;
      for (const auto& [name, p] : named) {
        const bool is_shared =
            scattered ? name.find("weight") != std::string::npos : name.rfind("0.", 0) == 0;
        const auto& a = records[0].params_after_step[step - 1];
        const auto& b = records[1].params_after_step[step - 1];
        const bool same =
            std::equal(a.begin() + offset, a.begin() + offset + p.numel(), b.begin() + offset);
        INFO(name);
        CHECK(same == is_shared);
        offset += p.numel();
      }
    }
    for (int rank = 0; rank < world; ++rank) {
      const CommStats& stats = records[rank].stats;
      CHECK(stats.operations_by_op.at("all_reduce") == 2);  // one per average
      CHECK(stats.payload_bytes_by_op.at("all_reduce") == 2 * shared_numel[rank] * 8);
    }
  }
}

TEST_CASE("single_process warm-up leaves ranks identical with the same momentum") {
  const int world = 3, initial = 3;
  const auto records =
      train(world, initial + 1,
            json_builder("local_sgd", {{"local_steps", 5},
                                       {"initial_steps", initial},
                                       {"initial_step_method", "single_process"}}));
  for (int rank = 1; rank < world; ++rank) {
    INFO("rank " << rank);
    // Before the broadcast only rank 0 trains: the others keep their starting point.
    for (int step = 1; step < initial; ++step)
      CHECK(records[rank].params_after_step[step - 1] == records[rank].initial_params);
    CHECK(records[rank].params_after_step[initial - 1] ==
          records[0].params_after_step[initial - 1]);
    CHECK(records[rank].momentum_after_step[initial - 1] ==
          records[0].momentum_after_step[initial - 1]);
  }
  // Rank 0 trained: its momentum is not zero.
  CHECK(max_difference(records[0].momentum_after_step[initial - 1],
                       std::vector<double>(records[0].momentum_after_step[0].size(), 0.0)) > 0);
  // The first local step (4, no average: 4 % 5 != 0) then takes each rank its own way.
  CHECK(records[1].params_after_step[initial] != records[0].params_after_step[initial]);
}

TEST_CASE("multiple_processes warm-up leaves ranks identical after every step") {
  const int world = 3, initial = 3;
  const auto records =
      train(world, initial,
            json_builder("local_sgd", {{"local_steps", 4},
                                       {"initial_steps", initial},
                                       {"init_step_method", "multiple_processes"}}));
  for (int step = 1; step <= initial; ++step) CHECK(identical_after(records, step));
  CHECK(records[0].params_after_step[0] != records[0].initial_params);
}

TEST_CASE("gradient_allreduce warm-up through a DataParallel then stops all-reducing gradients") {
  const int world = 2, initial = 3, steps = 6;
  std::vector<int64_t> buckets(world);
  auto build = [&](int rank, std::shared_ptr<Communicator> comm,
                   std::shared_ptr<nn::Sequential> model) {
    auto dp = std::make_shared<DataParallel>(model, comm);
    buckets[rank] = static_cast<int64_t>(dp->buckets().size());
    auto optimizer =
        get_distributed_optimizer("local_sgd", make_sgd(*model), comm, {},
                                  nlohmann::json{{"local_steps", 5},
                                                 {"initial_steps", initial},
                                                 {"initial_step_method", "gradient_allreduce"}});
    optimizer->attach_data_parallel(dp);
    return optimizer;
  };
  const auto records = train(world, steps, build);
  // Reference: the same warm-up without a DataParallel (one all-reduce of the gradients).
  const auto plain =
      train(world, steps,
            json_builder("local_sgd", {{"local_steps", 5},
                                       {"initial_steps", initial},
                                       {"initial_step_method", "gradient_allreduce"}}));
  for (int step = 1; step <= initial; ++step) CHECK(identical_after(records, step));
  CHECK_FALSE(identical_after(records, initial + 1));
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    // Bucket all-reduces during the warm-up's backward passes, then one parameter average (5).
    CHECK(records[rank].stats.operations_by_op.at("all_reduce") == buckets[rank] * initial + 1);
    CHECK(max_difference(records[rank].params_after_step[steps - 1],
                         plain[rank].params_after_step[steps - 1]) < 1e-12);
  }
}

TEST_CASE("hierarchical local SGD keeps groups identical at their periods") {
  const int world = 4, steps = 8;
  const auto records =
      train(world, steps,
            json_builder("hierarchical_local_sgd",
                         {{"group_size", 2}, {"local_sync_freq", 2}, {"global_sync_freq", 2}}));
  auto same = [&](int a, int b, int step) {
    return records[a].params_after_step[step - 1] == records[b].params_after_step[step - 1];
  };
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    const bool group_sync = step % 2 == 0;
    const bool global_sync = step % 4 == 0;
    CHECK(same(0, 1, step) == group_sync);
    CHECK(same(2, 3, step) == group_sync);
    CHECK(same(0, 2, step) == global_sync);
  }
  for (int rank = 0; rank < world; ++rank) {
    // The global averages (4, 8) on the world's communicator, one collective each; the group
    // averages (2, 6) ran on the group communicators, whose statistics are their own.
    CHECK(records[rank].stats.operations_by_op.at("all_reduce") == 2);
  }
}

TEST_CASE("a run resumed mid-round averages at the same steps and ends the same") {
  const int world = 2, stop = 7, steps = 14;
  const nlohmann::json options = {
      {"local_steps", 4}, {"initial_steps", 3}, {"initial_step_method", "multiple_processes"}};
  const auto whole = train(world, steps, json_builder("local_sgd", options));

  auto models = make_models(world);
  const auto first = train(world, 1, stop, models, json_builder("local_sgd", options));
  // A new process: fresh models (other weights) and optimizers, then the checkpoint.
  std::vector<NamedTensors> saved_models(world);
  for (int r = 0; r < world; ++r)
    for (const auto& [name, t] : models[r]->state_dict())
      saved_models[r].emplace_back(name, t.detach().clone());
  auto resumed_models = make_models(world);
  auto resume = [&](int rank, std::shared_ptr<Communicator> comm,
                    std::shared_ptr<nn::Sequential> model) {
    auto optimizer = get_distributed_optimizer("local_sgd", make_sgd(*model), comm, {}, options);
    model->load_state_dict(saved_models[rank]);
    optimizer->load_state_dict(first[rank].state_dict);
    return optimizer;
  };
  const auto second = train(world, stop + 1, steps, resumed_models, resume);
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    Events joined = first[rank].events;
    joined.insert(joined.end(), second[rank].events.begin(), second[rank].events.end());
    CHECK(joined == whole[rank].events);
    CHECK(second[rank].params_after_step.back() == whole[rank].params_after_step.back());
    CHECK(first[rank].state_dict.metadata["distributed"]["step"] == stop);
  }
  CHECK(whole[0].params_after_step.back() != whole[1].params_after_step.back());  // mid-round
}

TEST_CASE("local SGD sends the model's bytes once per average and nothing else") {
  const int world = 2, steps = 12;
  const auto records = train(world, steps, json_builder("local_sgd", {{"local_steps", 4}}));
  const int64_t model_bytes = make_mlp({6, 8, 3}, 1)->num_parameters() * 8;  // f64
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    const CommStats& built = records[rank].stats_after_build;
    CHECK(built.operations == 1);  // rank 0's starting point
    CHECK(built.payload_bytes == model_bytes);
    const CommStats& stats = records[rank].stats;
    const int64_t averages = steps / 4;
    CHECK(stats.operations - built.operations == averages);
    CHECK(stats.payload_bytes - built.payload_bytes == averages * model_bytes);
    CHECK(stats.payload_bytes_by_op.at("all_reduce") == averages * model_bytes);
  }
}

TEST_CASE("local SGD treats batchnorm buffers as its buffers option says") {
  const int world = 2, steps = 2;
  auto make_bn_models = [] {
    std::vector<std::shared_ptr<nn::Sequential>> models;
    for (int r = 0; r < world; ++r) {
      manual_seed(3);
      auto model = nn::make<nn::Sequential>();
      model->push_back(nn::make<nn::Linear>(6, 5));
      model->push_back(nn::make<nn::BatchNorm1d>(5));
      model->push_back(nn::make<nn::Linear>(5, 3));
      model->to(DType::F64);
      model->flatten_parameters();
      models.push_back(model);
    }
    return models;
  };
  for (const std::string buffers : {"local", "average", "broadcast"}) {
    INFO(buffers);
    auto models = make_bn_models();
    auto build = [&](int, std::shared_ptr<Communicator> comm,
                     std::shared_ptr<nn::Sequential> model) {
      auto optimizer =
          get_distributed_optimizer("local_sgd", make_sgd(*model), comm, {},
                                    nlohmann::json{{"local_steps", 2}, {"buffers", buffers}});
      optimizer->attach_model(model);
      return optimizer;
    };
    train(world, 1, steps, models, build);
    const Tensor mean0 = models[0]->find("1.running_mean"),
                 mean1 = models[1]->find("1.running_mean");
    CHECK((mean0.to_vector<double>() == mean1.to_vector<double>()) == (buffers != "local"));
  }
  // Without the model, a buffer option other than local cannot work: an error, not a silent
  // skip.
  auto models = make_bn_models();
  std::vector<std::string> errors =
      run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
        auto optimizer =
            get_distributed_optimizer("local_sgd", make_sgd(*models[rank]), comm, {},
                                      nlohmann::json{{"local_steps", 1}, {"buffers", "average"}});
        optimizer->zero_grad();
        nn::mse_loss((*models[rank])(input_of(rank, 1)), target_of(rank, 1)).backward();
        optimizer->step();
      });
  for (const std::string& error : errors)
    CHECK(contains(error, "buffers 'average' needs the model"));
}

}  // namespace
}  // namespace ember::dist
