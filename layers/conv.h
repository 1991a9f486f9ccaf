// Conv2d: 2-d convolution over [N, C_in, H, W] (or unbatched [C_in, H, W]) with a weight
// [C_out, C_in / groups, kH, kW], as torch.nn.Conv2d (names weight, bias; PyTorch's default
// initialization). The op and its kernels (im2col + GEMM on the CPU, cuDNN on CUDA) are
// engine/ops_conv.cpp.
#pragma once

#include <array>

#include "engine/ops.h"
#include "layers/module.h"

namespace ember::nn {

struct Conv2dConfig {
  std::array<int64_t, 2> kernel_size{3, 3};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, const Conv2dConfig& config);
  // Square kernel, stride, padding: Conv2d(3, 64, 3, 1, 1, false) reads like PyTorch.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, bool bias = true, int64_t groups = 1, int64_t dilation = 1);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;

  Tensor weight;
  Tensor bias;  // undefined without bias
  int64_t in_channels, out_channels;
  Conv2dConfig config;
};

}  // namespace ember::nn
