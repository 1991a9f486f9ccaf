// The CUDA normalization kernels (kernels/cuda/norm.cu) against their CPU reference, in the
// manner of test_cuda_matches_cpu.cpp: each case computes the same thing on both devices from
// identical inputs and compares outputs, gradients and updated running statistics at f32
// tolerances. Without a GPU each case prints the skip marker; with EMBER_COMPARE_ON_CPU=1 the
// "CUDA" side runs on the CPU (ctest test cuda_cases_on_cpu); with EMBER_GPU_REPORT=FILE each
// case appends its JSON line to FILE.
//
// The shapes reach each path of the kernels: batch statistics over runs of at least a warp
// ([N, C, H, W]) and over single elements a channel count apart ([N, C]), and group and layer
// norm rows longer and shorter than a warp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;

namespace {

// A leaf on `device` with values from a seeded normal (or uniform in [lo, hi)), made on the CPU.
Tensor input(const Shape& shape, Device device, uint64_t seed, bool requires_grad = true,
             double lo = 0, double hi = 0) {
  Generator g(seed);
  Tensor cpu =
      lo < hi ? uniform(shape, lo, hi, DType::F32, &g) : normal(shape, 0, 1, DType::F32, &g);
  Tensor t = cpu.to(device);
  if (requires_grad) t.requires_grad_();
  return t;
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

// Batch norm in training mode with affine parameters and running statistics (starting at 0
// and 1), two steps with momentum 0.1: the second step's output and gradients, then the
// running statistics.
std::vector<Tensor> batch_norm_training(const Shape& shape, Device d, double offset) {
  const int64_t channels = shape[1];
  Tensor w = input({channels}, d, 3), b = input({channels}, d, 4);
  Tensor running_mean = zeros({channels}, d), running_var = ones({channels}, d);
  batch_norm(add(input(shape, d, 1, false), offset), running_mean, running_var, w, b, true, 0.1);
  Tensor x = input(shape, d, 2, true, offset - 1, offset + 2);
  std::vector<Tensor> out =
      with_gradients(batch_norm(x, running_mean, running_var, w, b, true, 0.1), {x, w, b});
  out.push_back(running_mean);
  out.push_back(running_var);
  return out;
}

}  // namespace

#define CUDA_CASE(name, ...)                \
  TEST_CASE("cuda matches cpu for " name) { \
    compare_on_cuda(name, __VA_ARGS__);     \
  }

// ---- batch norm ----
CUDA_CASE("batch_norm training on 4-d input", [](Device d) {
  return batch_norm_training({8, 16, 5, 7}, d, 0);
})
CUDA_CASE("batch_norm training on 2-d input", [](Device d) {
  return batch_norm_training({64, 40}, d, 0);
})
// A mean far from zero next to the spread: a one-pass variance would lose it.
CUDA_CASE("batch_norm training far from zero", [](Device d) {
  return batch_norm_training({16, 6, 40}, d, 300);
})
CUDA_CASE("batch_norm training without affine", [](Device d) {
  Tensor x = input({5, 9, 11}, d, 5);
  return with_gradients(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), {x});
})
CUDA_CASE("batch_norm evaluation", [](Device d) {
  Tensor x = input({6, 12, 3, 9}, d, 6), w = input({12}, d, 7), b = input({12}, d, 8);
  Tensor running_mean = input({12}, d, 9, false);
  Tensor running_var = input({12}, d, 10, false, 0.2, 3);
  return with_gradients(batch_norm(x, running_mean, running_var, w, b, false), {x, w, b});
})

// ---- group norm ----
CUDA_CASE("group_norm", [](Device d) {
  Tensor x = input({4, 32, 6, 6}, d, 11), w = input({32}, d, 12), b = input({32}, d, 13);
  return with_gradients(group_norm(x, 8, w, b), {x, w, b});
})
CUDA_CASE("group_norm with one group and with a group per channel", [](Device d) {
  Tensor x = input({3, 12, 10}, d, 14), w = input({12}, d, 15), b = input({12}, d, 16);
  return with_gradients(add(group_norm(x, 1, w, b), mul(group_norm(x, 12), 0.5)), {x, w, b});
})

// ---- layer norm ----
CUDA_CASE("layer_norm", [](Device d) {
  Tensor x = input({13, 768}, d, 17), w = input({768}, d, 18), b = input({768}, d, 19);
  return with_gradients(layer_norm(x, {768}, w, b), {x, w, b});
})
CUDA_CASE("layer_norm over two dims of short rows", [](Device d) {
  Tensor x = input({50, 3, 7}, d, 20), w = input({3, 7}, d, 21);
  return with_gradients(layer_norm(x, {3, 7}, w), {x, w});
})
