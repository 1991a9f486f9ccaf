// The CUDA pooling kernels (kernels/cuda/pool.cu) against their CPU reference, forward and
// gradients, in the way of test_cuda_matches_cpu.cpp: identical inputs made on the CPU, outputs
// compared at f32 tolerances, a skip marker without a GPU, CPU against CPU with
// EMBER_COMPARE_ON_CPU=1, and one JSON line per case in EMBER_GPU_REPORT. The helpers below are
// that file's, repeated so that each file stands alone.
//
// Both backends read each window in the same order and the CUDA backward adds gradients in the
// order the CPU does, so the results should agree to the last bit; the tolerances are the usual
// ones all the same.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;

namespace {

// A leaf on `device` with standard-normal values from a seeded generator, made on the CPU.
Tensor input(const Shape& shape, Device device, uint64_t seed) {
  Generator g(seed);
  return normal(shape, 0, 1, DType::F32, &g).to(device).requires_grad_();
}

// A leaf on `device` with small whole numbers (many ties within each window) and a NaN at every
// `nan_every`-th element, made on the CPU.
Tensor input_with_ties(const Shape& shape, Device device, uint64_t seed, int64_t nan_every) {
  Generator g(seed);
  std::vector<float> values =
      mul(normal(shape, 0, 1, DType::F32, &g), 2.0).to(DType::I64).to_vector<float>();
  for (size_t i = 0; i < values.size(); i += static_cast<size_t>(nan_every)) values[i] = NAN;
  return tensor(values, shape).to(device).requires_grad_();
}

// Backpropagates a fixed random projection of `out` and returns out plus the inputs' grads.
std::vector<Tensor> with_gradients(const Tensor& out, const std::vector<Tensor>& inputs) {
  Generator g(99);
  Tensor projection = normal(out.shape(), 0, 1, DType::F32, &g).to(out.device());
  sum(mul(out, projection)).backward();
  std::vector<Tensor> results = {out};
  for (const Tensor& x : inputs) results.push_back(x.grad());
  return results;
}

void report(const std::string& op, bool pass, double max_abs, double max_rel, double atol,
            double rtol) {
  const char* path = std::getenv("EMBER_GPU_REPORT");
  if (!path || !*path) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f,
                 "{\"op\": \"%s\", \"pass\": %s, \"max_abs_error\": %.3e, \"max_rel_error\": "
                 "%.3e, \"atol\": %.1e, \"rtol\": %.1e}\n",
                 op.c_str(), pass ? "true" : "false", max_abs, max_rel, atol, rtol);
    std::fclose(f);
  }
}

// Runs `body` on the CPU and on CUDA and compares every returned tensor.
void compare_on_cuda(const std::string& op, const std::function<std::vector<Tensor>(Device)>& body,
                     double atol = 1e-5, double rtol = 1e-4) {
  const char* on_cpu = std::getenv("EMBER_COMPARE_ON_CPU");
  const bool self_check = on_cpu && std::string(on_cpu) == "1";
  if (!self_check) EMBER_REQUIRE_GPU();
  const Device device = self_check ? Device::cpu() : Device::cuda(0);
  set_allow_tf32(false);
  const std::vector<Tensor> expected = body(Device::cpu());
  const std::vector<Tensor> actual = body(device);
  REQUIRE(expected.size() == actual.size());
  bool pass = true;
  double max_abs = 0, max_rel = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    INFO(op << ": result " << k);
    REQUIRE(actual[k].device() == device);
    REQUIRE(actual[k].shape() == expected[k].shape());
    REQUIRE(actual[k].dtype() == expected[k].dtype());
    const std::vector<double> a = actual[k].to_vector<double>(),
                              e = expected[k].to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(a[i]) && std::isnan(e[i])) continue;
      const double diff = std::abs(a[i] - e[i]);
      const bool close = diff <= atol + rtol * std::abs(e[i]) || (std::isinf(e[i]) && a[i] == e[i]);
      max_abs = std::max(max_abs, diff);
      if (std::abs(e[i]) > atol) max_rel = std::max(max_rel, diff / std::abs(e[i]));
      if (!close) {
        if (pass)
          INFO("first mismatch at element " << i << ": cuda " << a[i] << " vs cpu " << e[i]);
        pass = false;
      }
    }
  }
  report(op, pass, max_abs, max_rel, atol, rtol);
  CHECK_MESSAGE(pass, op << ": max abs error " << max_abs << ", max rel error " << max_rel);
}

// Values, indices (as f32-comparable i64) and the input's gradient of one max-pooling.
std::vector<Tensor> max_pool_results(const Tensor& x, std::array<int64_t, 2> kernel,
                                     std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                     std::array<int64_t, 2> dilation, bool ceil_mode) {
  const ValuesIndices out =
      max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode);
  std::vector<Tensor> results = with_gradients(out.values, {x});
  results.push_back(out.indices);
  return results;
}

}  // namespace

#define CUDA_CASE(name, ...)                \
  TEST_CASE("cuda matches cpu for " name) { \
    compare_on_cuda(name, __VA_ARGS__);     \
  }

// ---- max-pooling ----
CUDA_CASE("max_pool2d of the ResNet stem", [](Device d) {
  return max_pool_results(input({2, 8, 112, 112}, d, 101), {3, 3}, {2, 2}, {1, 1}, {1, 1}, false);
})
CUDA_CASE("max_pool2d with non-overlapping windows", [](Device d) {
  return max_pool_results(input({4, 6, 32, 30}, d, 102), {2, 2}, {}, {}, {1, 1}, false);
})
CUDA_CASE("max_pool2d with stride 1", [](Device d) {
  return max_pool_results(input({2, 4, 20, 19}, d, 103), {3, 3}, {1, 1}, {1, 1}, {1, 1}, false);
})
CUDA_CASE("max_pool2d with dilation and ceil_mode", [](Device d) {
  return max_pool_results(input({3, 5, 17, 13}, d, 104), {3, 2}, {2, 3}, {1, 1}, {2, 1}, true);
})
CUDA_CASE("max_pool2d with ties and NaN", [](Device d) {
  return max_pool_results(input_with_ties({2, 3, 15, 16}, d, 105, 37), {3, 3}, {2, 2}, {1, 1},
                          {1, 1}, true);
})
CUDA_CASE("max_pool2d of an unbatched input", [](Device d) {
  return max_pool_results(input({7, 12, 11}, d, 106), {2, 3}, {1, 2}, {1, 1}, {1, 1}, false);
})

// ---- average pooling ----
CUDA_CASE("avg_pool2d with padding counted", [](Device d) {
  Tensor x = input({2, 8, 33, 31}, d, 111);
  return with_gradients(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}), {x});
})
CUDA_CASE("avg_pool2d in ceil_mode with and without padding counted", [](Device d) {
  Tensor x = input({3, 4, 18, 21}, d, 112);
  Tensor counted = avg_pool2d(x, {3, 4}, {2, 3}, {1, 2}, true, true);
  Tensor not_counted = avg_pool2d(x, {3, 4}, {2, 3}, {1, 2}, true, false);
  return with_gradients(cat({counted, not_counted}, 1), {x});
})
CUDA_CASE("avg_pool2d with divisor_override", [](Device d) {
  Tensor x = input({2, 5, 16, 16}, d, 113);
  return with_gradients(avg_pool2d(x, {2, 2}, {1, 1}, {1, 0}, false, true, 3), {x});
})
CUDA_CASE("avg_pool2d with non-overlapping windows", [](Device d) {
  Tensor x = input({4, 6, 32, 32}, d, 114);
  return with_gradients(avg_pool2d(x, {4, 4}), {x});
})

// ---- adaptive average pooling ----
CUDA_CASE("adaptive_avg_pool2d to sizes that do not divide", [](Device d) {
  Tensor x = input({4, 16, 7, 13}, d, 121);
  return with_gradients(adaptive_avg_pool2d(x, {3, 5}), {x});
})
CUDA_CASE("adaptive_avg_pool2d to 1x1", [](Device d) {
  Tensor x = input({8, 64, 7, 7}, d, 122);
  return with_gradients(adaptive_avg_pool2d(x, {1, 1}), {x});
})
CUDA_CASE("adaptive_avg_pool2d to a larger size", [](Device d) {
  Tensor x = input({2, 3, 5, 4}, d, 123);
  return with_gradients(adaptive_avg_pool2d(x, {9, 7}), {x});
})
CUDA_CASE("adaptive_avg_pool2d of an unbatched input", [](Device d) {
  Tensor x = input({6, 14, 14}, d, 124);
  return with_gradients(adaptive_avg_pool2d(x, {4, 4}), {x});
})
