// The NCCL backend's one-GPU-per-rank check (dist/nccl_device_check.h), which runs before any
// rank joins NCCL: plain logic, tested without a GPU.
#include <doctest/doctest.h>

#include "dist/nccl_device_check.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::contains;
using ember::test::error_of;

TEST_CASE("ranks on distinct GPUs pass the nccl device check") {
  const std::vector<GpuIdentity> gpus = {{"node-a", "0000:01:00.0"},
                                         {"node-a", "0000:02:00.0"},
                                         {"node-b", "0000:01:00.0"},  // same bus, other host
                                         {"node-b", "0000:02:00.0"}};
  CHECK(shared_gpu_message(gpus) == "");
  CHECK(shared_gpu_message({}) == "");
  CHECK(shared_gpu_message({{"solo", "0000:01:00.0"}}) == "");
}

TEST_CASE("two ranks on one GPU are named with the advice to use gloo") {
  const std::vector<GpuIdentity> gpus = {{"node-a", "0000:3B:00.0"},
                                         {"node-a", "0000:5e:00.0"},
                                         {"node-a", "0000:3b:00.0"}};  // rank 0's GPU, lower case
  const std::string message = shared_gpu_message(gpus);
  INFO(message);
  CHECK(contains(message, "ranks 0 and 2 are on the same GPU"));
  CHECK(contains(message, "host node-a"));
  CHECK(contains(message, "0000:3b:00.0"));
  CHECK(contains(message, "NCCL cannot put two ranks on one GPU"));
  CHECK(contains(message, "--dist-backend gloo"));
  CHECK_FALSE(contains(message, "5e:00.0"));  // rank 1 has a GPU of its own
}

TEST_CASE("every shared GPU is listed and world ranks name the ranks") {
  const std::vector<GpuIdentity> gpus = {{"h", "0000:01:00.0"},
                                         {"h", "0000:02:00.0"},
                                         {"h", "0000:01:00.0"},
                                         {"h", "0000:02:00.0"},
                                         {"h", "0000:01:00.0"}};
  const std::string message = shared_gpu_message(gpus, {10, 11, 12, 13, 14});
  INFO(message);
  CHECK(contains(message, "ranks 10, 12 and 14 are on the same GPU"));
  CHECK(contains(message, "ranks 11 and 13 are on the same GPU"));
  CHECK(contains(error_of([&] { shared_gpu_message(gpus, {0, 1}); }), "5 GPU identities for 2"));
}

TEST_CASE("a GPU identity survives the store and a bad value names its key") {
  const GpuIdentity gpu{"gpu-node-7.cluster", "0000:af:00.0"};
  const GpuIdentity back = decode_gpu_identity("nccl/0/gpu/3", encode_gpu_identity(gpu));
  CHECK(back.host == gpu.host);
  CHECK(back.bus_id == gpu.bus_id);
  const std::string message = error_of([] { decode_gpu_identity("nccl/0/gpu/3", "garbage"); });
  CHECK(contains(message, "nccl/0/gpu/3"));
  CHECK(contains(message, "garbage"));
  CHECK(contains(error_of([] { decode_gpu_identity("k", "host\n"); }), "not a GPU identity"));
}
