// The NCCL backend (dist/nccl_communicator.cpp) on one GPU: a world of size 1, where every
// collective's result is known, and the refusal of two ranks (threads) on the same GPU. Without
// a GPU (or in a CPU-only build) each case prints "[ember] SKIPPED" and returns. Collectives
// between two ranks need two GPUs and are not tested here; the one-GPU-per-rank logic itself is
// tested without a GPU in test_nccl_device_check.cpp.
#include <doctest/doctest.h>

#include <thread>

#include "dist/communicator.h"
#include "support.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::check_close;
using ember::test::contains;
using ember::test::error_of;

namespace {

std::shared_ptr<Communicator> world_of_one() {
  CommunicatorOptions options;
  options.timeout = std::chrono::seconds(30);
  return make_communicator("nccl", std::make_shared<MemoryStore>(), 0, 1, options, Device::cuda(0));
}

Tensor on_gpu(const std::vector<float>& values) {
  return tensor(values, {-1}, Device::cuda(0));
}

}  // namespace

TEST_CASE("nccl all_reduce of one rank keeps the values for every op and dtype") {
  EMBER_REQUIRE_GPU();
  auto comm = world_of_one();
  CHECK(comm->backend() == "nccl");
  CHECK(comm->size() == 1);
  CHECK(comm->rank() == 0);
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max, ReduceOp::Min}) {
    INFO(reduce_op_name(op));
    Tensor x = on_gpu({1.5f, -2, 3});
    comm->all_reduce(x, op)->wait();
    check_close(x, {1.5, -2, 3});
  }
  Tensor d = tensor(std::vector<double>{0.25, 8}, {-1}, Device::cuda(0));
  comm->all_reduce(d)->wait();
  check_close(d, {0.25, 8});
  Tensor i = tensor(std::vector<int64_t>{7, -9}, {-1}, Device::cuda(0));
  comm->all_reduce(i, ReduceOp::Max)->wait();
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{7, -9});
  Tensor j = tensor(std::vector<int32_t>{3}, {-1}, Device::cuda(0));
  comm->all_reduce(j)->wait();
  CHECK(j.to_vector<int32_t>() == std::vector<int32_t>{3});
}

TEST_CASE("nccl broadcast all_gather all_gather_v and reduce_scatter on one rank") {
  EMBER_REQUIRE_GPU();
  auto comm = world_of_one();
  Tensor b = on_gpu({4, 5});
  comm->broadcast(b, 0)->wait();
  check_close(b, {4, 5});

  Tensor out = zeros({3}, TensorOptions(DType::F32, Device::cuda(0)));
  comm->all_gather(on_gpu({1, 2, 3}), out)->wait();
  check_close(out, {1, 2, 3});

  Tensor out_v = zeros({2}, TensorOptions(DType::F32, Device::cuda(0)));
  comm->all_gather_v(on_gpu({6, 7}), out_v, {2})->wait();
  check_close(out_v, {6, 7});

  Tensor scattered = zeros({2}, TensorOptions(DType::F32, Device::cuda(0)));
  comm->reduce_scatter(on_gpu({8, 9}), scattered, ReduceOp::Sum)->wait();
  check_close(scattered, {8, 9});

  WorkHandle barrier = comm->barrier();
  barrier->wait();
  CHECK(barrier->is_completed());
}

TEST_CASE("nccl work orders the compute stream after it and counts payload bytes") {
  EMBER_REQUIRE_GPU();
  auto comm = world_of_one();
  Tensor x = on_gpu({1, 2, 3, 4});
  WorkHandle work = comm->all_reduce(x, ReduceOp::Sum);
  work->wait();        // the compute stream waits; the host does not
  Tensor y = x * 2.0;  // queued after the all-reduce on the compute stream
  check_close(y, {2, 4, 6, 8});
  synchronize(Device::cuda(0));
  CHECK(work->is_completed());
  comm->broadcast(on_gpu({1, 2}), 0)->wait();
  comm->barrier()->wait();
  const CommStats stats = comm->stats();
  CHECK(stats.operations == 3);
  CHECK(stats.payload_bytes == 16 + 8);
  CHECK(stats.payload_bytes_by_op.at("all_reduce") == 16);
  CHECK(stats.operations_by_op.at("barrier") == 1);
  comm->reset_stats();
  CHECK(comm->stats().operations == 0);
}

TEST_CASE("nccl refuses CPU tensors and wrong sizes with messages that say why") {
  EMBER_REQUIRE_GPU();
  auto comm = world_of_one();
  const std::string cpu = error_of([&] { comm->all_reduce(ones({3})); });
  CHECK(contains(cpu, "CPU tensor"));
  CHECK(contains(cpu, "Gloo"));
  const std::string gather = error_of([&] {
    comm->all_gather(on_gpu({1, 2}), zeros({3}, TensorOptions(Device::cuda(0))));
  });
  CHECK(contains(gather, "all_gather"));
  CHECK(contains(error_of([&] { comm->broadcast(on_gpu({1}), 1); }), "root 1"));
  CHECK(contains(error_of([&] { comm->send(on_gpu({1}), 0); }), "itself"));
  const std::string cpu_device = error_of(
      [] { make_communicator("nccl", std::make_shared<MemoryStore>(), 0, 1, {}, Device::cpu()); });
  CHECK(contains(cpu_device, "--dist-backend gloo"));
}

TEST_CASE("nccl new_group of the only rank is a communicator of one") {
  EMBER_REQUIRE_GPU();
  auto comm = world_of_one();
  auto group = comm->new_group({0});
  REQUIRE(group != nullptr);
  CHECK(group->size() == 1);
  CHECK(group->world_ranks() == std::vector<int>{0});
  Tensor x = on_gpu({3, 1});
  group->all_reduce(x, ReduceOp::Max)->wait();
  check_close(x, {3, 1});
  CHECK(contains(error_of([&] { comm->new_group({0, 0}); }), "twice"));
}

TEST_CASE("two nccl ranks on one GPU are both refused before joining") {
  EMBER_REQUIRE_GPU();
  auto store = std::make_shared<MemoryStore>();
  CommunicatorOptions options;
  options.timeout = std::chrono::seconds(10);  // a rank that never came ends the wait
  std::string messages[2];
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      messages[r] =
          error_of([&] { make_communicator("nccl", store, r, 2, options, Device::cuda(0)); });
    });
  for (std::thread& rank : ranks) rank.join();
  for (const std::string& message : messages) {
    INFO(message);
    CHECK(contains(message, "ranks 0 and 1 are on the same GPU"));
    CHECK(contains(message, "NCCL cannot put two ranks on one GPU"));
    CHECK(contains(message, "--dist-backend gloo"));
  }
}
