// One rank of the training cases of test/mp/test_collectives_processes.cpp, started by bin/launch
// with 2 processes: the distributed optimizers of test/dist (there with ranks as threads) as real
// processes over Gloo, on the small f64 models and batches of test/dist/training_runs.h.
//
//   training_ranks data_parallel   DataParallel + "sync" on half a batch each; every rank checks
//                                  its parameters against one process on the combined batch,
//                                  which it computes itself
//   training_ranks local_sgd_1     local SGD with local_steps 1, then "sync" in the same
//                                  processes on the same batches: equal after every step
//
// Prints "MODE ok: ..." and exits 0 on success; otherwise 1, with "training_ranks: rank R: what
// differed" on stderr.
//
// The doctest header that training_runs.h brings is used without a test runner: only helpers
// that make no doctest assertion are called, and DOCTEST_CONFIG_DISABLE keeps doctest from
// registering anything.
#define DOCTEST_CONFIG_DISABLE

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "dist/distributed_optimizer.h"
#include "dist/gloo_communicator.h"
#include "dist/rendezvous.h"
#include "dist/training_runs.h"  // make_mlp, make_sgd, random_batch, rows, input_of, ...

using namespace ember;
using namespace ember::dist;
using namespace ember::test;

namespace {

constexpr double kTolerance = 1e-12;

double largest_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw Error(str_cat(a.size(), " parameter values against ", b.size()));
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// Throws unless every rank of `comm` holds `values` (their max and min over the ranks equal it).
void expect_same_on_every_rank(Communicator& comm, const std::vector<double>& values,
                               const std::string& what) {
  Tensor high = tensor(values), low = tensor(values);
  comm.all_reduce(high, ReduceOp::Max)->wait();
  comm.all_reduce(low, ReduceOp::Min)->wait();
  if (high.to_vector<double>() != values || low.to_vector<double>() != values)
    throw Error(what + ": the ranks' parameters differ");
}

// Two ranks, half of every batch each, from different initial weights (rank 1's are replaced by
// the DataParallel's broadcast), against one process on the whole batch from rank 0's weights.
void data_parallel(Communicator& world, std::shared_ptr<Communicator> comm) {
  const int steps = 5;
  const int64_t batch = 8, half = batch / world.size();
  const std::vector<int64_t> widths = {6, 10, 8, 3};
  auto batch_input = [](int step) { return random_batch({batch, 6}, 100 + step); };
  auto batch_target = [](int step) { return random_batch({batch, 3}, 200 + step); };

  auto reference = make_mlp(widths, 7);
  auto reference_sgd = make_sgd(*reference);
  for (int step = 1; step <= steps; ++step) {
    reference_sgd->zero_grad();
    nn::mse_loss((*reference)(batch_input(step)), batch_target(step)).backward();
    reference_sgd->step();
  }

  auto model = make_mlp(widths, 7 + world.rank());
  const std::vector<double> initial = parameter_values(*make_mlp(widths, 7));
  DataParallelOptions dp_options;
  dp_options.bucket_bytes = 200;  // several buckets
  auto dp = std::make_shared<DataParallel>(model, comm, dp_options);
  auto optimizer = get_distributed_optimizer("sync", make_sgd(*model), comm, {},
                                             nlohmann::json::object(), model.get(), dp);
  const int64_t begin = world.rank() * half;
  for (int step = 1; step <= steps; ++step) {
    optimizer->zero_grad();
    nn::mse_loss((*model)(rows(batch_input(step), begin, half)),
                 rows(batch_target(step), begin, half))
        .backward();
    optimizer->step();
  }
  const std::vector<double> trained = parameter_values(*model);
  const double difference = largest_difference(trained, parameter_values(*reference));
  if (!(difference < kTolerance))
    throw Error(str_cat("differs from one process on the combined batch by ", difference));
  if (largest_difference(trained, initial) < 1e-6) throw Error("the parameters did not move");
  expect_same_on_every_rank(world, trained, "data_parallel");
  std::printf("data_parallel ok: %d steps, %zu buckets, max difference %.3g\n", steps,
              dp->buckets().size(), difference);
}

// The parameters after every step of `steps`, training this rank's model (seed 7 + rank) on
// its own batches (input_of, target_of) through `algorithm`.
std::vector<std::vector<double>> train_steps(const std::string& algorithm,
                                             const nlohmann::json& options,
                                             std::shared_ptr<Communicator> comm, int steps) {
  auto model = make_mlp({6, 8, 3}, 7 + comm->rank());
  auto optimizer = get_distributed_optimizer(algorithm, make_sgd(*model), comm, {}, options);
  std::vector<std::vector<double>> after_step;
  for (int step = 1; step <= steps; ++step) {
    optimizer->zero_grad();
    nn::mse_loss((*model)(input_of(comm->rank(), step)), target_of(comm->rank(), step)).backward();
    optimizer->step();
    after_step.push_back(parameter_values(*model));
  }
  return after_step;
}

void local_sgd_1(Communicator& world, std::shared_ptr<Communicator> comm) {
  const int steps = 6;
  const auto local = train_steps("local_sgd", {{"local_steps", 1}}, comm, steps);
  const auto sync = train_steps("sync", nlohmann::json::object(), comm, steps);
  double worst = 0;
  for (int step = 1; step <= steps; ++step) {
    const double difference = largest_difference(local[step - 1], sync[step - 1]);
    if (!(difference < kTolerance))
      throw Error(str_cat("step ", step, ": local SGD differs from sync by ", difference));
    worst = std::max(worst, difference);
    expect_same_on_every_rank(world, local[step - 1], str_cat("step ", step));
  }
  // Not trivially: the ranks' batches differ, so one step without averaging would split them.
  const auto unaveraged = train_steps("local_sgd", {{"local_steps", 2}}, comm, 1);
  if (largest_difference(unaveraged[0], local[0]) < 1e-9)
    throw Error("a step without averaging gives the same parameters");
  std::printf("local_sgd_1 ok: %d steps, max difference %.3g\n", steps, worst);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  if (mode != "data_parallel" && mode != "local_sgd_1") {
    std::fprintf(stderr, "usage: training_ranks data_parallel|local_sgd_1\n");
    return 2;
  }
  int rank = -1;
  try {
    Rendezvous r = rendezvous("env://", -1, -1, std::chrono::seconds(20));
    rank = r.rank;
    CommunicatorOptions options;
    options.timeout = std::chrono::seconds(20);
    auto comm = make_gloo_communicator(r.store, r.rank, r.world_size, options);
    // The algorithms under test get a group of every rank of their own, so the checks on the
    // world communicator never mix with their collectives.
    std::vector<int> everyone;
    for (int i = 0; i < r.world_size; ++i) everyone.push_back(i);
    auto training = comm->new_group(everyone);
    if (mode == "data_parallel")
      data_parallel(*comm, training);
    else
      local_sgd_1(*comm, training);
    std::fflush(stdout);
    // Rank 0 hosts the store: nobody leaves before every rank is done with it.
    comm->barrier()->wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "training_ranks: rank %d: %s: %s\n", rank, mode.c_str(), e.what());
    return 1;
  }
  return 0;
}
