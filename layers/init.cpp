// Parameter initialization (see init.h).
#include "layers/init.h"

#include <cmath>

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"

namespace ember::nn::init {

Fans fans(const Tensor& weight) {
  EMBER_CHECK(weight.dim() >= 2, "init: fan in and fan out need a weight of at least 2 dims, got ",
              shape_str(weight.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) receptive *= weight.size(d);
  return {weight.size(1) * receptive, weight.size(0) * receptive};
}

void uniform_(Tensor t, double low, double high, Generator* generator) {
  NoGrad no_grad;
  t.copy_(uniform(t.shape(), low, high, {t.dtype(), t.device()}, generator));
}

void normal_(Tensor t, double mean, double std, Generator* generator) {
  NoGrad no_grad;
  t.copy_(normal(t.shape(), mean, std, {t.dtype(), t.device()}, generator));
}

void constant_(Tensor t, double value) {
  NoGrad no_grad;
  t.fill_(value);
}
void zeros_(Tensor t) {
  constant_(std::move(t), 0);
}
void ones_(Tensor t) {
  constant_(std::move(t), 1);
}

namespace {
double kaiming_std(const Tensor& t, double a, const std::string& mode,
                   const std::string& nonlinearity) {
  EMBER_CHECK(mode == "fan_in" || mode == "fan_out", "kaiming init: mode '", mode,
              "' is neither fan_in nor fan_out");
  double gain = 0;
  if (nonlinearity == "relu")
    gain = std::sqrt(2.0);
  else if (nonlinearity == "leaky_relu")
    gain = std::sqrt(2.0 / (1 + a * a));
  else
    throw Error(
        str_cat("kaiming init: nonlinearity '", nonlinearity, "' is not one of relu, leaky_relu"));
  const Fans f = fans(t);
  return gain / std::sqrt(static_cast<double>(mode == "fan_in" ? f.fan_in : f.fan_out));
}
}  // namespace

void kaiming_uniform_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity,
                      Generator* generator) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  uniform_(std::move(t), -bound, bound, generator);
}

void kaiming_normal_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity,
                     Generator* generator) {
  const double std = kaiming_std(t, a, mode, nonlinearity);
  normal_(std::move(t), 0, std, generator);
}

void xavier_uniform_(Tensor t, double gain, Generator* generator) {
  const Fans f = fans(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  uniform_(std::move(t), -bound, bound, generator);
}

void default_weight_(Tensor weight, Generator* generator) {
  kaiming_uniform_(std::move(weight), std::sqrt(5.0), "fan_in", "leaky_relu", generator);
}

void default_bias_(Tensor bias, int64_t fan_in, Generator* generator) {
  const double bound = fan_in > 0 ? 1 / std::sqrt(static_cast<double>(fan_in)) : 0;
  uniform_(std::move(bias), -bound, bound, generator);
}

}  // namespace ember::nn::init
