// Gradient checking by finite differences, as torch.autograd.gradcheck does it.
//
// For a function f of some tensors, autograd's gradient of the scalar L = sum(f(x) * r), with
// r a fixed random tensor, is compared with central differences
//     dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
// for every element i of every input that requires grad. A random r checks the whole
// vector-Jacobian product, not just the gradient of a sum. Run it in f64 (on the CPU): in f32
// the finite differences themselves are too inaccurate to be a reference.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 1234;  // for the projection r
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // over all checked elements
  std::string message;       // the worst element when !ok: input, index, analytic, numeric
};

// `fn` computes one output (any shape) from `inputs`; inputs that require grad are checked.
// Inputs are perturbed in place, so they must be contiguous CPU tensors (f64 for meaningful
// tolerances).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace ember
