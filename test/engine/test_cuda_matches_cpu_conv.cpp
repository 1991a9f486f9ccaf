// conv2d on CUDA (cuDNN) against the CPU reference (im2col + OpenBLAS): the output and the
// gradients of input, weight and bias, for plain, strided, dilated, grouped, depthwise, 1x1 and
// ResNet-sized convolutions, with TF32 off. Same conventions as test_cuda_matches_cpu.cpp
// (cuda_compare.h): skipped without a GPU, run CPU against CPU with EMBER_COMPARE_ON_CPU=1, one
// JSON line per case in EMBER_GPU_REPORT.
//
// Tolerance: an element of a convolution or of its gradients is a sum of up to thousands of
// products (a weight gradient sums over N * H_out * W_out), and two f32 summation orders differ
// by an amount that grows with the size of those sums, not with the element itself. So each
// result is compared as |cuda - cpu| <= atol + rtol * max|cpu| over that result, and the relative
// error reported is the largest |cuda - cpu| / max|cpu|.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_compare.h"

using namespace ember;
using namespace ember::test;

namespace {

struct Conv2dCase {
  Shape input, weight;
  bool bias = true;
  Conv2dOptions options;
};

// conv2d's output and the gradients of its inputs after backpropagating a fixed random
// projection of the output.
std::vector<Tensor> run_case(const Conv2dCase& c, Device device) {
  // Weights scaled by 1/sqrt(fan-in), as initializers do, so outputs stay near unit size; the
  // scaling is done on the CPU, before the copy, so both devices start from the same values.
  const double fan_in = static_cast<double>(c.weight[1] * c.weight[2] * c.weight[3]);
  Tensor x = input(c.input, device, 1);
  Tensor w = mul(input(c.weight, Device::cpu(), 2, false), 1.0 / std::sqrt(fan_in))
                 .to(device)
                 .requires_grad_();
  Tensor b = c.bias ? input({c.weight[0]}, device, 3) : Tensor();
  return with_gradients(conv2d(x, w, b, c.options),
                        c.bias ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w});
}

// Runs the case on the CPU and on CUDA and compares output and gradients, each result relative
// to its largest element (see the tolerance note above); a NaN fails.
void compare_conv2d(const std::string& op, const Conv2dCase& c) {
  Comparison how;
  how.relative_to_largest = true;
  how.nonfinite_match = false;
  how.names = {"output", "input grad", "weight grad", "bias grad"};
  const CaseBody run = [&](Device d) { return run_case(c, d); };
  compare_on_cuda(op, run, how);
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
