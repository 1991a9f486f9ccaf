// get_distributed_optimizer: names, options and their errors, the seed's form, groups that are
// not the whole world, the "sync" algorithm with and without a DataParallel, and what the
// wrapper forwards to the local optimizer (parameter groups for LR schedulers, state dicts).
#include <doctest/doctest.h>

#include "dist/data_parallel.h"
#include "dist/distributed_optimizer.h"
#include "layers/lr_scheduler.h"
#include "test/dist/training_runs.h"
#include "test/temporary_files.h"  // error_of, contains

namespace ember::dist {
namespace {

using namespace ember::test;

// The error of building an optimizer with `options` on one rank ("" for none).
std::string build_error(const std::string& algorithm, const nlohmann::json& options) {
  auto model = make_mlp({2, 2}, 1);
  std::string error;
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    error = error_of(
        [&] { get_distributed_optimizer(algorithm, make_sgd(*model), comm, {}, options); });
  }));
  return error;
}

TEST_CASE("unknown algorithms and options are errors that list the valid ones") {
  std::string error = build_error("local-sgd", nlohmann::json::object());
  CHECK(contains(error, "unknown algorithm 'local-sgd'"));
  CHECK(contains(error, "sync, local_sgd and hierarchical_local_sgd"));

  error = build_error("local_sgd", {{"local_step", 4}});
  CHECK(contains(error, "unknown option 'local_step'"));
  CHECK(contains(error, "local_steps, initial_steps, initial_step_method, init_step_method"));

  error = build_error("sync", {{"local_steps", 4}});
  CHECK(contains(error, "sync: unknown option 'local_steps'; the options are (none)"));

  error = build_error("hierarchical_local_sgd", {{"group_size", 1}, {"period", 2}});
  CHECK(contains(error, "unknown option 'period'"));
  CHECK(contains(error, "local_sync_freq, global_sync_freq, group_size, groups"));
}

TEST_CASE("bad option values are errors naming the option") {
  CHECK(contains(build_error("local_sgd", {{"local_steps", 0}}),
                 "option local_steps must be at least 1, got 0"));
  CHECK(contains(build_error("local_sgd", {{"initial_steps", "ten"}}),
                 "option initial_steps must be an integer, got \"ten\""));
  CHECK(contains(build_error("local_sgd", {{"local_steps", 2.5}}),
                 "option local_steps must be an integer, got 2.5"));
  const std::string method = build_error("local_sgd", {{"initial_step_method", "rank0"}});
  CHECK(contains(method, "initial_step_method 'rank0'"));
  CHECK(contains(method, "single_process, multiple_processes and gradient_allreduce"));
  CHECK(contains(build_error("local_sgd", {{"buffers", "mean"}}), "broadcast, average and local"));
  CHECK(contains(build_error("local_sgd", {{"initial_step_method", "single_process"},
                                           {"init_step_method", "multiple_processes"}}),
                 "disagree"));
  CHECK(contains(build_error("hierarchical_local_sgd", nlohmann::json::object()),
                 "give group_size (consecutive ranks per group) or groups"));
  CHECK(contains(build_error("hierarchical_local_sgd", {{"groups", {{0}, {0}}}}),
                 "rank 0 is in two groups"));
  CHECK(contains(build_error("local_sgd", nlohmann::json::array()), "must be a JSON object"));
}

TEST_CASE("options default to the seed's and typed options must match the algorithm") {
  const LocalSGDOptions defaults = local_sgd_options(nlohmann::json::object());
  CHECK(defaults.local_steps == 4);
  CHECK(defaults.initial_steps == 0);
  CHECK(defaults.initial_step_method == InitialStepMethod::single_process);
  CHECK(defaults.buffers == BufferSync::Local);
  const LocalSGDOptions seed = local_sgd_options({{"local_steps", "16"},
                                                  {"initial_steps", "100"},
                                                  {"init_step_method", "gradient_allreduce"}});
  CHECK(seed.local_steps == 16);
  CHECK(seed.initial_steps == 100);
  CHECK(seed.initial_step_method == InitialStepMethod::gradient_allreduce);

  auto model = make_mlp({2, 2}, 1);
  std::string error;
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    error = error_of(
        [&] { get_distributed_optimizer("sync", make_sgd(*model), comm, {}, LocalSGDOptions{}); });
  }));
  CHECK(contains(error, "the options given are those of local_sgd, but the algorithm is 'sync'"));
}

TEST_CASE("the seed's form uses the default communicator and string arguments") {
  auto model = make_mlp({2, 2}, 1);
  set_default_communicator(nullptr);
  CHECK(contains(
      error_of([&] { get_distributed_optimizer("local_sgd", make_sgd(*model), 0, 1, {}, {}); }),
      "no default communicator; call dist::set_default_communicator(comm) first"));
  std::string mismatch;
  LocalSGDOptions built;
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    set_default_communicator(comm);
    mismatch =
        error_of([&] { get_distributed_optimizer("local_sgd", make_sgd(*model), 0, 2, {}, {}); });
    auto optimizer = get_distributed_optimizer(
        "local_sgd", make_sgd(*model), 0, 1, {},
        {{"local_steps", "3"}, {"init_step_method", "multiple_processes"}});
    auto local = std::dynamic_pointer_cast<LocalSGDOptimizer>(optimizer);
    if (!local) throw Error("the seed's form did not build a LocalSGDOptimizer");
    built = local->options();
    set_default_communicator(nullptr);
  }));
  CHECK(contains(mismatch,
                 "rank 0 of world_size 2 does not match the default communicator (rank 0 of 1)"));
  CHECK(built.local_steps == 3);
  CHECK(built.initial_step_method == InitialStepMethod::multiple_processes);
}

TEST_CASE("a group that is not the whole world averages only its members") {
  const int world = 3;
  std::vector<int> has_communicator(world);  // not vector<bool>: ranks write at once
  auto build = [&](int rank, std::shared_ptr<Communicator> comm,
                   std::shared_ptr<nn::Sequential> model) {
    auto optimizer = get_distributed_optimizer("local_sgd", make_sgd(*model), comm, {0, 2},
                                               {{"local_steps", 1}});  // as the header shows it
    has_communicator[rank] = optimizer->communicator() != nullptr;
    return optimizer;
  };
  const auto records = train(world, 2, build);
  CHECK(has_communicator == std::vector<int>{1, 0, 1});
  for (int step = 1; step <= 2; ++step) {
    CHECK(records[0].params_after_step[step - 1] == records[2].params_after_step[step - 1]);
    CHECK(records[0].params_after_step[step - 1] != records[1].params_after_step[step - 1]);
  }
  auto model = make_mlp({2, 2}, 1);
  std::string error;
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    error = error_of([&] {
      get_distributed_optimizer("sync", make_sgd(*model), comm, {0, 3}, nlohmann::json::object());
    });
  }));
  CHECK(contains(error, "group: rank 3 is outside the communicator's ranks 0..0"));
}

TEST_CASE("sync averages gradients with or without a DataParallel and keeps replicas equal") {
  const int world = 2, steps = 4;
  const auto plain = train(world, steps, json_builder("sync", nlohmann::json::object()));
  auto with_dp = [](int, std::shared_ptr<Communicator> comm,
                    std::shared_ptr<nn::Sequential> model) {
    DataParallelOptions options;
    options.bucket_bytes = 64;
    auto dp = std::make_shared<DataParallel>(model, comm, options);
    // The form a training program uses: the model and its DataParallel given to the factory.
    return get_distributed_optimizer("sync", make_sgd(*model), comm, {}, nlohmann::json::object(),
                                     model.get(), dp);
  };
  const auto overlapped = train(world, steps, with_dp);
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    CHECK(identical_after(plain, step));
    CHECK(identical_after(overlapped, step));
    CHECK(max_difference(plain[0].params_after_step[step - 1],
                         overlapped[0].params_after_step[step - 1]) < 1e-12);
  }
  // The starting point is broadcast once (by the DataParallel, not again by the optimizer).
  CHECK(overlapped[0].stats_after_build.operations == 1);
  CHECK(plain[0].stats_after_build.operations == 1);
  // Without a DataParallel: one gradient all-reduce per step.
  CHECK(plain[0].stats.operations_by_op.at("all_reduce") == steps);
}

TEST_CASE("the wrapper forwards parameter groups and wraps the local state dict") {
  auto model = make_mlp({3, 2}, 1);
  std::string wrong_steps, plain_state;
  double local_lr = 0;
  bool forwards_local = false;
  optim::OptimizerStateDict saved;
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    auto sgd = make_sgd(*model);
    auto optimizer = get_distributed_optimizer("local_sgd", sgd, comm, {}, LocalSGDOptions{});
    forwards_local = optimizer->local_optimizer() == sgd;
    optim::StepLR schedule(*optimizer, 1, 0.5);
    schedule.step();
    local_lr = sgd->param_groups()[0].lr;
    saved = optimizer->state_dict();
    LocalSGDOptions other;
    other.local_steps = 8;
    auto different = get_distributed_optimizer("local_sgd", make_sgd(*model), comm, {}, other);
    wrong_steps = error_of([&] { different->load_state_dict(saved); });
    plain_state = error_of([&] { different->load_state_dict(sgd->state_dict()); });
  }));
  CHECK(forwards_local);
  CHECK(local_lr == doctest::Approx(0.025));
  CHECK(saved.metadata["distributed"]["algorithm"] == "local_sgd");
  CHECK(saved.metadata["distributed"]["local_steps"] == 4);
  CHECK(saved.metadata["distributed"]["initial_step_method"] == "single_process");
  CHECK(saved.metadata["optimizer"] == "SGD");
  CHECK(contains(wrong_steps, "saved with local_steps 4, this optimizer has local_steps 8"));
  CHECK(contains(plain_state, "no \"distributed\" entry"));
}

}  // namespace
}  // namespace ember::dist
