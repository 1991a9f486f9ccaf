// The per-element updates of SGD and Adam/AdamW, written once for both backends:
// kernels/cpu/optim.cpp and kernels/cuda/optim.cu loop over these.
//
// They follow PyTorch 1.13's single-tensor code (torch/optim/sgd.py, adam.py, adamw.py) step by
// step, in its order of operations, so that f64 results agree with PyTorch to the last bits and
// f32 results to rounding. Each scalar is rounded to T once on the host (make_*_scalars), as
// PyTorch rounds a Python float when a tensor op takes it: `1 - dampening` and `lr / (1 -
// beta1^t)` are computed in double first.
#pragma once

#include <math.h>  // sqrt, sqrtf, pow (host and, under nvcc, device)

#include "engine/host_device.h"    // EMBER_HOST_DEVICE
#include "kernels/kernel_table.h"  // SgdHyperparameters, AdamHyperparameters

namespace ember::kernels {

template <typename T>
struct SgdScalars {
  T neg_lr;
  T momentum;
  T one_minus_dampening;
  T weight_decay;
  bool use_momentum, use_weight_decay, nesterov, maximize, first_step;
};

template <typename T>
SgdScalars<T> make_sgd_scalars(const SgdHyperparameters& h) {
  return {static_cast<T>(-h.lr),
          static_cast<T>(h.momentum),
          static_cast<T>(1.0 - h.dampening),
          static_cast<T>(h.weight_decay),
          h.momentum != 0,
          h.weight_decay != 0,
          h.nesterov,
          h.maximize,
          h.first_step};
}

// One element of SGD; `buffer` is the momentum buffer's element (unused without momentum).
template <typename T>
EMBER_HOST_DEVICE inline void sgd_update(T& param, T grad, T& buffer, const SgdScalars<T>& s) {
  T d = s.maximize ? -grad : grad;
  if (s.use_weight_decay) d = d + s.weight_decay * param;
  if (s.use_momentum) {
    buffer = s.first_step ? d : buffer * s.momentum + s.one_minus_dampening * d;
    d = s.nesterov ? d + s.momentum * buffer : buffer;
  }
  param = param + s.neg_lr * d;
}

template <typename T>
struct AdamScalars {
  T beta1, one_minus_beta1;
  T beta2, one_minus_beta2;
  T weight_decay;           // Adam: added to the gradient
  T decay_factor;           // AdamW: 1 - lr * weight_decay
  T neg_step_size;          // -lr / (1 - beta1^t)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  T eps;
  bool coupled_weight_decay, decoupled_weight_decay, amsgrad, maximize;
};

template <typename T>
AdamScalars<T> make_adam_scalars(const AdamHyperparameters& h) {
  const double t = static_cast<double>(h.step);
  const double bias_correction1 = 1.0 - pow(h.beta1, t);
  const double bias_correction2 = 1.0 - pow(h.beta2, t);
  AdamScalars<T> s;
  s.beta1 = static_cast<T>(h.beta1);
  s.one_minus_beta1 = static_cast<T>(1.0 - h.beta1);
  s.beta2 = static_cast<T>(h.beta2);
  s.one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
  s.weight_decay = static_cast<T>(h.weight_decay);
  s.decay_factor = static_cast<T>(1.0 - h.lr * h.weight_decay);
  s.neg_step_size = static_cast<T>(-(h.lr / bias_correction1));
  s.bias_correction2_sqrt = static_cast<T>(sqrt(bias_correction2));
  s.eps = static_cast<T>(h.eps);
  s.coupled_weight_decay = !h.decoupled_weight_decay && h.weight_decay != 0;
  s.decoupled_weight_decay = h.decoupled_weight_decay;
  s.amsgrad = h.amsgrad;
  s.maximize = h.maximize;
  return s;
}

EMBER_HOST_DEVICE inline float optim_sqrt(float x) {
  return sqrtf(x);
}
EMBER_HOST_DEVICE inline double optim_sqrt(double x) {
  return sqrt(x);
}

// One element of Adam/AdamW; `max_exp_avg_sq` is unused without amsgrad.
template <typename T>
EMBER_HOST_DEVICE inline void adam_update(T& param, T grad, T& exp_avg, T& exp_avg_sq,
                                          T& max_exp_avg_sq, const AdamScalars<T>& s) {
  T g = s.maximize ? -grad : grad;
  if (s.coupled_weight_decay) g = g + s.weight_decay * param;
  if (s.decoupled_weight_decay) param = param * s.decay_factor;
  exp_avg = exp_avg * s.beta1 + s.one_minus_beta1 * g;
  exp_avg_sq = exp_avg_sq * s.beta2 + s.one_minus_beta2 * g * g;
  T second_moment = exp_avg_sq;
  if (s.amsgrad) {
    // torch.maximum: a NaN on either side wins
    const bool keep = max_exp_avg_sq != max_exp_avg_sq || max_exp_avg_sq >= exp_avg_sq;
    if (!keep) max_exp_avg_sq = exp_avg_sq;
    second_moment = max_exp_avg_sq;
  }
  const T denom = optim_sqrt(second_moment) / s.bias_correction2_sqrt + s.eps;
  param = param + s.neg_step_size * exp_avg / denom;
}

}  // namespace ember::kernels
