// The CUDA runtime on a real GPU: the caching allocator under a training step, memory
// statistics, out-of-memory errors, host-device copies, the TF32 switch. Skipped visibly
// without a GPU (the allocator's logic itself is tested on the CPU in test_memory.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;

namespace {
// One step of a two-layer network with plain SGD: the allocation pattern of training.
void training_step(Tensor& w1, Tensor& w2, const Tensor& x, const Tensor& y) {
  Tensor loss = cross_entropy(matmul(relu(matmul(x, w1)), w2), y);
  loss.backward();
  NoGrad no_grad;
  for (Tensor* w : {&w1, &w2}) {
    w->add_(w->grad(), -0.1);
    w->grad().zero_();
  }
}
}  // namespace

TEST_CASE("cuda training step allocates nothing new after the first") {
  EMBER_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  manual_seed(1);
  Tensor w1 = randn({64, 128}, gpu).requires_grad_();
  Tensor w2 = randn({128, 10}, gpu).requires_grad_();
  Tensor x = randn({32, 64}, gpu);
  Tensor y = tensor(std::vector<int64_t>(32, 3)).to(gpu);
  training_step(w1, w2, x, y);
  training_step(w1, w2, x, y);
  synchronize(gpu);
  const int64_t allocations = memory_stats(gpu).device_allocations;
  for (int i = 0; i < 5; ++i) training_step(w1, w2, x, y);
  synchronize(gpu);
  CHECK(memory_stats(gpu).device_allocations == allocations);
}

TEST_CASE("cuda memory statistics count live and peak bytes") {
  EMBER_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const int64_t before = memory_stats(gpu).current_bytes;
  reset_peak_memory(gpu);
  {
    Tensor a = empty({1 << 20}, gpu);  // 4 MiB
    CHECK(memory_stats(gpu).current_bytes - before == 4 << 20);
  }
  CHECK(memory_stats(gpu).current_bytes == before);
  CHECK(memory_stats(gpu).peak_bytes - before == 4 << 20);
  CHECK(memory_stats(gpu).reserved_bytes >= memory_stats(gpu).current_bytes);
  empty_cache(gpu);
  CHECK(memory_stats(gpu).reserved_bytes == memory_stats(gpu).current_bytes);
}

TEST_CASE("cuda out of memory names the request and the bytes in use") {
  EMBER_REQUIRE_GPU();
  try {
    empty({int64_t(1) << 48}, Device::cuda(0));  // 1 PiB of floats
    FAIL("expected OutOfMemoryError");
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    CHECK(message.find("cuda:0") != std::string::npos);
    CHECK(message.find(std::to_string(int64_t(1) << 50)) != std::string::npos);
    CHECK(message.find("peak") != std::string::npos);
  }
  CHECK(sum(ones({10}, Device::cuda(0))).item<float>() == 10.0f);  // still usable
}

TEST_CASE("cuda copies round-trip every dtype") {
  EMBER_REQUIRE_GPU();
  Tensor source = arange(0, 200, 1, DType::F32);
  for (DType dt : {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8}) {
    INFO(dtype_name(dt));
    Tensor host = source.to(dt);
    Tensor back = host.to(Device::cuda(0)).cpu();
    CHECK(back.dtype() == dt);
    CHECK(back.to_vector<double>() == host.to_vector<double>());
  }
  // A non-contiguous view leaves the GPU with its own values, in row-major order.
  Tensor m = arange(0, 6, 1, Device::cuda(0)).view({2, 3}).t();
  CHECK(m.cpu().to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("cuda tf32 is off unless asked for") {
  EMBER_REQUIRE_GPU();
  CHECK_FALSE(allow_tf32());
  manual_seed(2);
  Tensor a = randn({512, 4096}), b = randn({4096, 256});
  const Tensor expected = matmul(a, b);
  auto error_on_gpu = [&](bool tf32) {
    set_allow_tf32(tf32);
    Tensor got = matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).cpu();
    set_allow_tf32(false);
    return max(abs(sub(got, expected))).item<double>() / max(abs(expected)).item<double>();
  };
  const double fp32 = error_on_gpu(false), tf32 = error_on_gpu(true);
  MESSAGE("relative error of a 512x4096x256 product: fp32 " << fp32 << ", tf32 " << tf32);
  CHECK(fp32 < 1e-5);
  CHECK(tf32 >= fp32);
}

TEST_CASE("cuda device that does not exist is named in the error") {
  EMBER_REQUIRE_GPU();
  const int count = cuda_device_count();
  try {
    zeros({1}, Device::cuda(count));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cuda:" + std::to_string(count)) != std::string::npos);
  }
}
