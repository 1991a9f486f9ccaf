// Pooling modules (see pooling.h): thin wrappers of the ops in engine/ops_pool.cpp.
#include "layers/pooling.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace ember::nn {

namespace {
std::array<int64_t, 2> square(int64_t v) {
  return {v, v};
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                     bool ceil_mode)
    : kernel_size(kernel),
      stride(stride > 0 ? stride : kernel),
      padding(padding),
      dilation(dilation),
      ceil_mode(ceil_mode) {}

Tensor MaxPool2d::forward(const Tensor& input) {
  return max_pool2d(input, square(kernel_size), square(stride), square(padding), square(dilation),
                    ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return str_cat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding,
                 ", dilation=", dilation, ", ceil_mode=", ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                     bool count_include_pad)
    : kernel_size(kernel),
      stride(stride > 0 ? stride : kernel),
      padding(padding),
      ceil_mode(ceil_mode),
      count_include_pad(count_include_pad) {}

Tensor AvgPool2d::forward(const Tensor& input) {
  return avg_pool2d(input, square(kernel_size), square(stride), square(padding), ceil_mode,
                    count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return str_cat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return adaptive_avg_pool2d(input, output_size);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return str_cat("output_size=(", output_size[0], ", ", output_size[1], ")");
}

}  // namespace ember::nn
