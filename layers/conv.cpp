// Conv2d module (see conv.h).
#include "layers/conv.h"

#include "engine/error.h"
#include "layers/init.h"

namespace ember::nn {

Conv2d::Conv2d(int64_t in, int64_t out, const Conv2dConfig& cfg)
    : in_channels(in), out_channels(out), config(cfg) {
  EMBER_CHECK(in > 0 && out > 0 && cfg.groups > 0, "Conv2d: in_channels (", in, "), out_channels (",
              out, ") and groups (", cfg.groups, ") must be positive");
  EMBER_CHECK(in % cfg.groups == 0 && out % cfg.groups == 0, "Conv2d: in_channels (", in,
              ") and out_channels (", out, ") must be divisible by groups (", cfg.groups, ")");
  weight = register_parameter(
      "weight", empty({out, in / cfg.groups, cfg.kernel_size[0], cfg.kernel_size[1]}));
  init::default_weight_(weight);
  if (cfg.bias) {
    bias = register_parameter("bias", empty({out}));
    init::default_bias_(bias, init::fans(weight).fan_in);
  }
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel_size, int64_t stride, int64_t padding,
               bool bias, int64_t groups, int64_t dilation)
    : Conv2d(in, out,
             Conv2dConfig{{kernel_size, kernel_size},
                          {stride, stride},
                          {padding, padding},
                          {dilation, dilation},
                          groups,
                          bias}) {}

Tensor Conv2d::forward(const Tensor& input) {
  Conv2dOptions options;
  options.stride = config.stride;
  options.padding = config.padding;
  options.dilation = config.dilation;
  options.groups = config.groups;
  return conv2d(input, weight, bias, options);
}

std::string Conv2d::extra_repr() const {
  auto pair = [](const std::array<int64_t, 2>& p) { return str_cat("(", p[0], ", ", p[1], ")"); };
  std::string s =
      str_cat(in_channels, ", ", out_channels, ", kernel_size=", pair(config.kernel_size),
              ", stride=", pair(config.stride));
  if (config.padding != std::array<int64_t, 2>{0, 0}) s += ", padding=" + pair(config.padding);
  if (config.dilation != std::array<int64_t, 2>{1, 1}) s += ", dilation=" + pair(config.dilation);
  if (config.groups != 1) s += str_cat(", groups=", config.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

}  // namespace ember::nn
