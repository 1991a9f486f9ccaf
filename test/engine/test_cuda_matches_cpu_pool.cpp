// The CUDA pooling kernels (kernels/cuda/pool.cu) against their CPU reference, forward and
// gradients, in the way of test_cuda_matches_cpu.cpp: identical inputs made on the CPU, outputs
// compared at f32 tolerances, a skip marker without a GPU, CPU against CPU with
// EMBER_COMPARE_ON_CPU=1, and one JSON line per case in EMBER_GPU_REPORT (cuda_compare.h).
//
// Both backends read each window in the same order and the CUDA backward adds gradients in the
// order the CPU does, so the results should agree to the last bit; the tolerances are the usual
// ones all the same.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <vector>

#include "cuda_compare.h"

using namespace ember;
using namespace ember::test;

namespace {

// A leaf on `device` with small whole numbers (many ties within each window) and a NaN at every
// `nan_every`-th element, made on the CPU.
Tensor input_with_ties(const Shape& shape, Device device, uint64_t seed, int64_t nan_every) {
  Generator g(seed);
  std::vector<float> values =
      mul(normal(shape, 0, 1, DType::F32, &g), 2.0).to(DType::I64).to_vector<float>();
  for (size_t i = 0; i < values.size(); i += static_cast<size_t>(nan_every)) values[i] = NAN;
  return tensor(values, shape).to(device).requires_grad_();
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
