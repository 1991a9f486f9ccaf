// Parameter initialization, as torch.nn.init. Each fills a tensor in place (not recorded by
// autograd) from ember's default generator unless one is given.
//
// fan_in / fan_out of a weight [out, in, k...]: fan_in = in * prod(k), fan_out = out * prod(k).
// The kaiming bounds: gain = sqrt(2 / (1 + a^2)) for leaky_relu (a = 0 is ReLU), then
//   kaiming_uniform: U(-b, b) with b = gain * sqrt(3 / fan)
//   kaiming_normal:  N(0, std^2) with std = gain / sqrt(fan)
// PyTorch's default for Linear and Conv is kaiming_uniform with a = sqrt(5), which works out to
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); their biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
#pragma once

#include <cstdint>
#include <string>

#include "engine/random.h"
#include "engine/tensor.h"

namespace ember::nn::init {

struct Fans {
  int64_t fan_in = 0;
  int64_t fan_out = 0;
};
Fans fans(const Tensor& weight);  // needs at least 2 dims

void uniform_(Tensor t, double low, double high, Generator* generator = nullptr);
void normal_(Tensor t, double mean, double std, Generator* generator = nullptr);
void constant_(Tensor t, double value);
void zeros_(Tensor t);
void ones_(Tensor t);
// mode: "fan_in" or "fan_out"; nonlinearity: "relu" or "leaky_relu" (with a).
void kaiming_uniform_(Tensor t, double a = 0, const std::string& mode = "fan_in",
                      const std::string& nonlinearity = "leaky_relu",
                      Generator* generator = nullptr);
void kaiming_normal_(Tensor t, double a = 0, const std::string& mode = "fan_in",
                     const std::string& nonlinearity = "leaky_relu",
                     Generator* generator = nullptr);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor t, double gain = 1, Generator* generator = nullptr);
// PyTorch's default initialization of a Linear or Conv weight and bias (see above).
void default_weight_(Tensor weight, Generator* generator = nullptr);
void default_bias_(Tensor bias, int64_t fan_in, Generator* generator = nullptr);

}  // namespace ember::nn::init
