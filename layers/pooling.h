// Pooling layers over [N, C, H, W] (or unbatched [C, H, W]), as torch.nn; no parameters. The
// ops and their output-size rules are engine/ops_pool.cpp.
#pragma once

#include <array>

#include "layers/module.h"

namespace ember::nn {

class MaxPool2d : public Module {
 public:
  // stride 0 means stride = kernel_size, as PyTorch's default.
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                     int64_t dilation = 1, bool ceil_mode = false);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

// Averages over windows [floor(i H / out), ceil((i + 1) H / out)) to a fixed output size.
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : output_size{out_h, out_w} {}
  explicit AdaptiveAvgPool2d(int64_t out) : output_size{out, out} {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  std::array<int64_t, 2> output_size;
};

}  // namespace ember::nn
