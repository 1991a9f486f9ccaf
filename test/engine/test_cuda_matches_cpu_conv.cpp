// conv2d on CUDA (cuDNN) against the CPU reference (im2col + OpenBLAS): the output and the
// gradients of input, weight and bias, for plain, strided, dilated, grouped, depthwise, 1x1 and
// ResNet-sized convolutions, with TF32 off. Same conventions as test_cuda_matches_cpu.cpp: skipped
// without a GPU, run CPU against CPU with EMBER_COMPARE_ON_CPU=1, one JSON line per case in
// EMBER_GPU_REPORT.
//
// Tolerance: an element of a convolution or of its gradients is a sum of up to thousands of
// products (a weight gradient sums over N * H_out * W_out), and two f32 summation orders differ
// by an amount that grows with the size of those sums, not with the element itself. So each
// result is compared as |cuda - cpu| <= atol + rtol * max|cpu| over that result, and the relative
// error reported is the largest |cuda - cpu| / max|cpu|.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;

namespace {

// A leaf on `device` with standard-normal values times `scale`, made on the CPU.
Tensor input(const Shape& shape, Device device, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  return mul(normal(shape, 0, 1, DType::F32, &g), scale).to(device).requires_grad_();
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

struct Conv2dCase {
  Shape input, weight;
  bool bias = true;
  Conv2dOptions options;
};

// conv2d's output and the gradients of its inputs after backpropagating a fixed random
// projection of the output.
std::vector<Tensor> run_case(const Conv2dCase& c, Device device) {
  // Weights scaled by 1/sqrt(fan-in), as initializers do, so outputs stay near unit size.
  const double fan_in = static_cast<double>(c.weight[1] * c.weight[2] * c.weight[3]);
  Tensor x = input(c.input, device, 1);
  Tensor w = input(c.weight, device, 2, 1.0 / std::sqrt(fan_in));
  Tensor b = c.bias ? input({c.weight[0]}, device, 3) : Tensor();
  Tensor y = conv2d(x, w, b, c.options);
  Generator g(99);
  Tensor projection = normal(y.shape(), 0, 1, DType::F32, &g).to(device);
  sum(mul(y, projection)).backward();
  std::vector<Tensor> results = {y, x.grad(), w.grad()};
  if (c.bias) results.push_back(b.grad());
  return results;
}

// Runs the case on the CPU and on CUDA (or the CPU again, with EMBER_COMPARE_ON_CPU=1) and
// compares output and gradients.
void compare_conv2d(const std::string& op, const Conv2dCase& c, double atol = 1e-5,
                    double rtol = 1e-4) {
  const char* on_cpu = std::getenv("EMBER_COMPARE_ON_CPU");
  const bool self_check = on_cpu && std::string(on_cpu) == "1";
  if (!self_check) EMBER_REQUIRE_GPU();
  const Device device = self_check ? Device::cpu() : Device::cuda(0);
  set_allow_tf32(false);
  const std::vector<Tensor> expected = run_case(c, Device::cpu());
  const std::vector<Tensor> actual = run_case(c, device);
  REQUIRE(expected.size() == actual.size());
  const char* names[] = {"output", "input grad", "weight grad", "bias grad"};
  bool pass = true;
  double max_abs = 0, max_rel = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    INFO(op << ": " << names[k]);
    REQUIRE(actual[k].defined());
    REQUIRE(actual[k].device() == device);
    REQUIRE(actual[k].shape() == expected[k].shape());
    const std::vector<double> a = actual[k].to_vector<double>(),
                              e = expected[k].to_vector<double>();
    double scale = 0;
    for (double v : e) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < a.size(); ++i) {
      const double diff = std::abs(a[i] - e[i]);  // NaN fails the comparison below
      max_abs = std::max(max_abs, diff);
      if (scale > 0) max_rel = std::max(max_rel, diff / scale);
      if (!(diff <= atol + rtol * scale)) {
        if (pass)
          INFO("first mismatch in " << names[k] << " at element " << i << ": cuda " << a[i]
                                    << " vs cpu " << e[i]);
        pass = false;
      }
    }
  }
  report(op, pass, max_abs, max_rel, atol, rtol);
  CHECK_MESSAGE(pass, op << ": max abs error " << max_abs << ", max error relative to the largest "
                         << "element " << max_rel);
}

Conv2dOptions options(std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                      std::array<int64_t, 2> dilation, int64_t groups = 1) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  o.groups = groups;
  return o;
}

}  // namespace

#define CONV_CASE(name, ...)                \
  TEST_CASE("cuda matches cpu for " name) { \
    compare_conv2d(name, __VA_ARGS__);      \
  }

CONV_CASE("conv2d 3x3 with bias",
          {{2, 3, 9, 9}, {8, 3, 3, 3}, true, options({1, 1}, {1, 1}, {1, 1})})
CONV_CASE("conv2d strided padded dilated non-square",
          {{2, 4, 11, 10}, {6, 4, 3, 2}, true, options({2, 1}, {1, 2}, {2, 1})})
CONV_CASE("conv2d groups 3 without bias",
          {{2, 6, 8, 8}, {9, 2, 3, 3}, false, options({1, 1}, {1, 1}, {1, 1}, 3)})
CONV_CASE("conv2d depthwise stride 2",
          {{2, 16, 10, 10}, {16, 1, 3, 3}, true, options({2, 2}, {1, 1}, {1, 1}, 16)})
CONV_CASE("conv2d 1x1", {{4, 32, 7, 7}, {16, 32, 1, 1}, true, {}})
CONV_CASE("conv2d 7x7 stride 2 stem",
          {{2, 3, 32, 32}, {16, 3, 7, 7}, false, options({2, 2}, {3, 3}, {1, 1})})
CONV_CASE("conv2d resnet 3x3 64 channels",
          {{8, 64, 32, 32}, {64, 64, 3, 3}, false, options({1, 1}, {1, 1}, {1, 1})})
CONV_CASE("conv2d unbatched", {{5, 12, 12}, {7, 5, 3, 3}, true, options({1, 2}, {0, 1}, {1, 1})})

// A second identical step (after the first one's tensors are freed) takes its algorithms from
// the cache and its workspace from the caching allocator: nothing new is asked of the device,
// and the forward output is the same.
TEST_CASE("cuda conv2d reuses cached algorithms and workspace") {
  EMBER_REQUIRE_GPU();
  set_allow_tf32(false);
  const Device device = Device::cuda(0);
  const Conv2dCase c{{4, 64, 16, 16}, {64, 64, 3, 3}, true, options({1, 1}, {1, 1}, {1, 1})};
  const std::vector<float> first = run_case(c, device)[0].to_vector<float>();
  synchronize(device);
  const int64_t allocations = memory_stats(device).device_allocations;
  const std::vector<float> second = run_case(c, device)[0].to_vector<float>();
  synchronize(device);
  CHECK(memory_stats(device).device_allocations == allocations);
  CHECK(first == second);
}
