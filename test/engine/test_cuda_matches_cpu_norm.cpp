// The CUDA normalization kernels (kernels/cuda/norm.cu) against their CPU reference, in the
// manner of test_cuda_matches_cpu.cpp: each case computes the same thing on both devices from
// identical inputs and compares outputs, gradients and updated running statistics at f32
// tolerances. Skipping, EMBER_COMPARE_ON_CPU and EMBER_GPU_REPORT as cuda_compare.h describes.
//
// The shapes reach each path of the kernels: batch statistics over runs of at least a warp
// ([N, C, H, W]) and over single elements a channel count apart ([N, C]), and group and layer
// norm rows longer and shorter than a warp.
#include <doctest/doctest.h>

#include <vector>

#include "cuda_compare.h"

using namespace ember;
using namespace ember::test;

namespace {

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
