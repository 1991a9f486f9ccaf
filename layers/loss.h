// Losses beyond the fused ones of the engine (cross_entropy with label smoothing and nll_loss
// live in engine/ops.h, beside log_softmax):
//   mse_loss(x, y)              mean (or sum, or none) of (x - y)^2, as torch.nn.MSELoss;
//   l2_penalty(parameters, λ)   λ/2 · Σ ||w||², the term the P2P seed adds to its loss, so
//                               that its gradient is λ·w.
#pragma once

#include <vector>

#include "engine/ops.h"

namespace ember::nn {

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l2_penalty(const std::vector<Tensor>& parameters, double lambda);

}  // namespace ember::nn
