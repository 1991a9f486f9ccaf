// Synchronous data parallel with ranks as threads: equal to one process on the combined batch,
// buckets all-reduced while backward still runs, gradient accumulation under no_sync,
// parameters without gradients, buffer synchronization.
#include <doctest/doctest.h>

#include <algorithm>

#include "dist/data_parallel.h"
#include "dist/model_average.h"
#include "layers/model_registry.h"
#include "layers/normalization.h"
#include "layers/sgd.h"
#include "test/dist/rank_threads.h"
#include "test/temporary_files.h"  // error_of, contains

namespace ember::dist {
namespace {

using namespace ember::test;

Tensor mse(const Tensor& output, const Tensor& target) {
  return nn::mse_loss(output, target);
}

TEST_CASE("data parallel on two ranks equals one process on the combined batch") {
  const int world = 2, steps = 5;
  const int64_t batch = 8, half = batch / 2;
  const std::vector<int64_t> widths = {6, 10, 8, 3};
  std::vector<Tensor> inputs, targets;
  for (int s = 0; s < steps; ++s) {
    inputs.push_back(random_batch({batch, 6}, 100 + s));
    targets.push_back(random_batch({batch, 3}, 200 + s));
  }
  optim::SGDOptions sgd(0.05);
  sgd.momentum = 0.9;
  sgd.weight_decay = 1e-3;

  // One process, the combined batch.
  auto reference = make_mlp(widths, 7);
  optim::SGD reference_sgd(reference->parameters(), sgd);
  for (int s = 0; s < steps; ++s) {
    reference_sgd.zero_grad();
    mse((*reference)(inputs[s]), targets[s]).backward();
    reference_sgd.step();
  }

  // Two ranks, half the batch each; rank 1 starts from other weights, which the broadcast of
  // the DataParallel constructor replaces.
  std::vector<std::shared_ptr<nn::Sequential>> models = {make_mlp(widths, 7), make_mlp(widths, 8)};
  std::vector<size_t> bucket_counts(world);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallelOptions options;
    options.bucket_bytes = 200;  // several buckets
    DataParallel dp(models[rank], comm, options);
    bucket_counts[rank] = dp.buckets().size();
    optim::SGD optimizer(models[rank]->parameters(), sgd);
    for (int s = 0; s < steps; ++s) {
      optimizer.zero_grad();
      mse((*models[rank])(rows(inputs[s], rank * half, half)), rows(targets[s], rank * half, half))
          .backward();
      dp.finish_gradient_sync();
      optimizer.step();
    }
  }));
  CHECK(bucket_counts[0] >= 3);
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    CHECK(max_difference(parameter_values(*models[rank]), parameter_values(*reference)) < 1e-12);
  }
}

TEST_CASE("data parallel trains the registry's cifar_cnn like one process in f32") {
  const int world = 2, steps = 3;
  const int64_t half = 2;
  Generator generator(11);
  std::vector<Tensor> images, labels;
  for (int s = 0; s < steps; ++s) {
    images.push_back(normal({2 * half, 3, 32, 32}, 0, 1, DType::F32, &generator));
    labels.push_back(tensor<int64_t>({s % 10, (s + 3) % 10, (s + 5) % 10, (s + 7) % 10}));
  }
  auto make = [] {
    manual_seed(5);
    return nn::make_model("cifar_cnn");  // flat parameters already
  };
  optim::SGDOptions sgd(0.1);
  sgd.momentum = 0.9;
  auto reference = make();
  optim::SGD reference_sgd(reference->parameters(), sgd);
  for (int s = 0; s < steps; ++s) {
    reference_sgd.zero_grad();
    cross_entropy((*reference)(images[s]), labels[s]).backward();
    reference_sgd.step();
  }
  std::vector<std::shared_ptr<nn::Module>> models = {make(), make()};
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallelOptions options;
    options.bucket_bytes = 16 * 1024;  // several buckets
    DataParallel dp(models[rank], comm, options);
    optim::SGD optimizer(models[rank]->parameters(), sgd);
    for (int s = 0; s < steps; ++s) {
      optimizer.zero_grad();
      cross_entropy((*models[rank])(rows(images[s], rank * half, half)),
                    rows(labels[s], rank * half, half))
          .backward();
      dp.finish_gradient_sync();
      optimizer.step();
    }
  }));
  const std::vector<double> expected = parameter_values(*reference);
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    CHECK(max_difference(parameter_values(*models[rank]), expected) < 1e-5);
    CHECK(parameter_values(*models[rank]) != parameter_values(*make()));  // it did train
  }
}

TEST_CASE("data parallel buckets cover the gradient buffer from its end") {
  auto model = make_mlp({5, 7, 4}, 1);  // weights 35, 7, 28, 4 elements
  require_no_errors(run_ranks(1, [&](int, std::shared_ptr<Communicator> comm) {
    DataParallelOptions options;
    options.bucket_bytes = 30 * 8;  // a bucket closes once it holds 30 f64 values
    DataParallel dp(model, comm, options);
    const auto& buckets = dp.buckets();
    // From the end: [fc2.bias fc2.weight] = 32 values, then [fc1.bias fc1.weight] = 42.
    REQUIRE(buckets.size() == 2);
    CHECK(buckets[0].offset == 42);
    CHECK(buckets[0].numel == 32);
    CHECK(buckets[0].slots == std::vector<int>{3, 2});
    CHECK(buckets[1].offset == 0);
    CHECK(buckets[1].numel == 42);
  }));
}

TEST_CASE("the first gradient bucket is all-reduced before backward ends") {
  const int world = 2;
  const std::vector<int64_t> widths = {64, 64, 64, 64, 64, 8};
  std::vector<std::shared_ptr<nn::Sequential>> models = {make_mlp(widths, 3), make_mlp(widths, 3)};
  const Tensor input = random_batch({32, 64}, 1), target = random_batch({32, 8}, 2);
  using Clock = std::chrono::steady_clock;
  std::vector<std::vector<DataParallel::TraceEvent>> traces(world);
  std::vector<Clock::time_point> backward_returned(world);
  std::vector<int> bucket_count(world);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallelOptions options;
    options.bucket_bytes = 64 * 64 * 8;  // one layer per bucket
    DataParallel dp(models[rank], comm, options);
    bucket_count[rank] = static_cast<int>(dp.buckets().size());
    models[rank]->zero_grad();
    mse((*models[rank])(input), target).backward();
    backward_returned[rank] = Clock::now();
    dp.finish_gradient_sync();
    traces[rank] = dp.trace();
  }));
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    const auto& trace = traces[rank];
    std::vector<int> started;
    Clock::time_point first_start = Clock::time_point::max(), gradients_ready{};
    for (const auto& event : trace) {
      if (event.kind == DataParallel::TraceEvent::BucketStarted) {
        started.push_back(event.bucket);
        first_start = std::min(first_start, event.time);
      }
      if (event.kind == DataParallel::TraceEvent::GradientsReady) gradients_ready = event.time;
    }
    std::vector<int> in_order(bucket_count[rank]);
    for (int b = 0; b < bucket_count[rank]; ++b) in_order[b] = b;
    CHECK(bucket_count[rank] >= 4);
    CHECK(started == in_order);  // every bucket once, in bucket order
    CHECK(first_start < gradients_ready);
    CHECK(first_start < backward_returned[rank]);
    CHECK(trace.back().kind == DataParallel::TraceEvent::SyncFinished);
  }
}

TEST_CASE("no_sync accumulates locally and the next synced backward reduces the sum") {
  const int world = 2;
  const std::vector<int64_t> widths = {4, 6, 2};
  // Rank r's micro-batches: (2r, 2r + 1).
  std::vector<Tensor> inputs, targets;
  for (int m = 0; m < 2 * world; ++m) {
    inputs.push_back(random_batch({3, 4}, 10 + m));
    targets.push_back(random_batch({3, 2}, 20 + m));
  }
  // Expected gradient: the sum over all micro-batches, divided by the ranks.
  auto reference = make_mlp(widths, 5);
  reference->zero_grad();
  for (int m = 0; m < 2 * world; ++m) mse((*reference)(inputs[m]), targets[m]).backward();
  std::vector<double> expected;
  for (const Tensor& p : reference->parameters())
    for (double g : p.grad().to_vector<double>()) expected.push_back(g / world);

  std::vector<std::shared_ptr<nn::Sequential>> models = {make_mlp(widths, 5), make_mlp(widths, 5)};
  std::vector<std::vector<double>> grads(world);
  std::vector<int64_t> operations_under_no_sync(world);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallel dp(models[rank], comm);
    models[rank]->zero_grad();
    const int64_t before = comm->stats().operations;
    {
      auto guard = dp.no_sync();
      mse((*models[rank])(inputs[2 * rank]), targets[2 * rank]).backward();
    }
    operations_under_no_sync[rank] = comm->stats().operations - before;
    mse((*models[rank])(inputs[2 * rank + 1]), targets[2 * rank + 1]).backward();
    dp.finish_gradient_sync();
    for (const Tensor& p : models[rank]->parameters())
      for (double g : p.grad().to_vector<double>()) grads[rank].push_back(g);
  }));
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    CHECK(operations_under_no_sync[rank] == 0);
    CHECK(max_difference(grads[rank], expected) < 1e-12);
  }
}

// Two heads on one body; forward uses head b only when asked, so b may get no gradient.
struct TwoHeads : nn::Module {
  TwoHeads() {
    body = register_module("body", nn::make<nn::Linear>(3, 4));
    a = register_module("a", nn::make<nn::Linear>(4, 2));
    b = register_module("b", nn::make<nn::Linear>(4, 2));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*body)(x);
    return use_b ? (*a)(h) + (*b)(h) : (*a)(h);
  }
  std::string type_name() const override { return "TwoHeads"; }
  std::shared_ptr<nn::Linear> body, a, b;
  bool use_b = false;
};

TEST_CASE("parameters without a gradient neither hang nor corrupt the reduction") {
  const int world = 2;
  std::vector<std::shared_ptr<TwoHeads>> models;
  for (int r = 0; r < world; ++r) {
    manual_seed(4);
    models.push_back(std::make_shared<TwoHeads>());
    models.back()->to(DType::F64);
    models.back()->flatten_parameters();
  }
  models[0]->use_b = true;  // rank 0 uses head b, rank 1 does not
  const Tensor input = random_batch({5, 3}, 1), target = random_batch({5, 2}, 2);
  // Each rank's own gradients, without communication.
  std::vector<std::map<std::string, std::vector<double>>> local(world), reduced(world);
  for (int r = 0; r < world; ++r) {
    models[r]->zero_grad();
    mse((*models[r])(input), target).backward();
    for (const auto& [name, p] : models[r]->named_parameters())
      local[r][name] = p.grad().to_vector<double>();
  }
  CHECK(local[1]["b.weight"] == std::vector<double>(8, 0.0));
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallelOptions options;
    options.bucket_bytes = 8;  // one parameter per bucket
    DataParallel dp(models[rank], comm, options);
    for (int step = 0; step < 2; ++step) {  // the second step starts clean
      models[rank]->zero_grad();
      mse((*models[rank])(input), target).backward();
      dp.finish_gradient_sync();
    }
    for (const auto& [name, p] : models[rank]->named_parameters())
      reduced[rank][name] = p.grad().to_vector<double>();
  }));
  for (const auto& [name, values] : local[0]) {
    INFO(name);
    std::vector<double> mean(values.size());
    for (size_t i = 0; i < values.size(); ++i) mean[i] = (values[i] + local[1][name][i]) / 2;
    CHECK(max_difference(reduced[0][name], mean) < 1e-15);
    CHECK(max_difference(reduced[1][name], mean) < 1e-15);
  }
}

TEST_CASE("batchnorm buffers are broadcast averaged or kept local") {
  const int world = 2;
  for (BufferSync mode : {BufferSync::Broadcast, BufferSync::Average, BufferSync::Local}) {
    INFO(buffer_sync_name(mode));
    std::vector<std::shared_ptr<nn::Sequential>> models;
    for (int r = 0; r < world; ++r) {
      auto model = nn::make<nn::Sequential>();
      model->push_back(nn::make<nn::Linear>(3, 4));
      model->push_back(nn::make<nn::BatchNorm1d>(4));
      model->find("1.running_mean").fill_(r + 1.0);  // rank 0: 1, rank 1: 2
      models.push_back(model);
    }
    std::vector<std::vector<double>> means(world);
    require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
      DataParallelOptions options;
      options.buffers = mode;
      DataParallel dp(models[rank], comm, options);  // syncs the buffers once
      means[rank] = models[rank]->find("1.running_mean").to_vector<double>();
    }));
    const double expected_0 = mode == BufferSync::Local     ? 1.0
                              : mode == BufferSync::Average ? 1.5
                                                            : 1.0;
    const double expected_1 = mode == BufferSync::Local ? 2.0 : expected_0;
    CHECK(means[0] == std::vector<double>(4, expected_0));
    CHECK(means[1] == std::vector<double>(4, expected_1));
  }
  const std::string error = error_of([] { parse_buffer_sync("mean", "--bn-sync"); });
  CHECK(contains(error, "--bn-sync 'mean'"));
  CHECK(contains(error, "broadcast, average and local"));
}

TEST_CASE("data parallel broadcasts the buffers before every training forward") {
  const int world = 2;
  std::vector<std::shared_ptr<nn::Sequential>> models;
  for (int r = 0; r < world; ++r) {
    auto model = nn::make<nn::Sequential>();
    model->push_back(nn::make<nn::BatchNorm1d>(2));
    models.push_back(model);
  }
  std::vector<std::vector<double>> before_forward(world);
  // Broadcasts (one per buffer dtype) by a training forward alone, after an explicit
  // sync_buffers, and by an evaluation forward.
  std::vector<int64_t> automatic(world), explicit_first(world), evaluation(world);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    DataParallel dp(*models[rank], comm);  // the model held elsewhere
    const Tensor mean = models[rank]->find("0.running_mean");
    Tensor(mean).fill_(10.0 * (rank + 1));
    // A forward pre-hook added after DataParallel's sees the buffers after its broadcast.
    const int hook = models[rank]->register_forward_pre_hook(
        [&before_forward, mean, rank](nn::Module&, const Tensor&) {
          before_forward[rank] = mean.to_vector<double>();
        });
    const Tensor x = random_batch({4, 2}, rank).to(DType::F32);
    auto broadcasts = [&] { return comm->stats().operations_by_op["broadcast"]; };
    int64_t before = broadcasts();
    (*models[rank])(x);
    automatic[rank] = broadcasts() - before;
    models[rank]->remove_hook(hook);
    before = broadcasts();
    dp.sync_buffers();
    (*models[rank])(x);
    explicit_first[rank] = broadcasts() - before;
    models[rank]->eval();
    before = broadcasts();
    (*models[rank])(x);
    evaluation[rank] = broadcasts() - before;
  }));
  CHECK(before_forward[0] == std::vector<double>{10, 10});
  CHECK(before_forward[1] == std::vector<double>{10, 10});
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    CHECK(automatic[rank] == 2);  // f32 statistics and the i64 num_batches_tracked
    CHECK(explicit_first[rank] == 2);
    CHECK(evaluation[rank] == 0);
  }
}

TEST_CASE("average_model_into averages replicas without touching them") {
  const int world = 3;
  std::vector<std::shared_ptr<nn::Sequential>> sources, scratches;
  for (int r = 0; r < world; ++r) {
    sources.push_back(make_mlp({3, 2}, 10 + r));
    scratches.push_back(make_mlp({3, 2}, 99));
  }
  std::vector<std::vector<double>> before(world), after(world), averaged(world);
  std::vector<int64_t> operations(world);
  for (int r = 0; r < world; ++r) before[r] = parameter_values(*sources[r]);
  require_no_errors(run_ranks(world, [&](int rank, std::shared_ptr<Communicator> comm) {
    average_model_into(*sources[rank], *scratches[rank], *comm);
    operations[rank] = comm->stats().operations;
    after[rank] = parameter_values(*sources[rank]);
    averaged[rank] = parameter_values(*scratches[rank]);
  }));
  std::vector<double> mean(before[0].size(), 0.0);
  for (int r = 0; r < world; ++r)
    for (size_t i = 0; i < mean.size(); ++i) mean[i] += before[r][i] / world;
  for (int rank = 0; rank < world; ++rank) {
    INFO("rank " << rank);
    CHECK(after[rank] == before[rank]);
    CHECK(max_difference(averaged[rank], mean) < 1e-15);
    CHECK(operations[rank] == 1);
  }
}

}  // namespace
}  // namespace ember::dist
