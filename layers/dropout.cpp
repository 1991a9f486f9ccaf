// Dropout and Dropout2d (see dropout.h).
#include "layers/dropout.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace ember::nn {

namespace {
void check_probability(const char* module, double p) {
  EMBER_CHECK(p >= 0 && p <= 1, module, ": dropout probability has to be between 0 and 1, got ", p);
}
}  // namespace

Dropout::Dropout(double p) : p(p) {
  check_probability("Dropout", p);
}

Tensor Dropout::forward(const Tensor& input) {
  return dropout(input, p, is_training());
}

std::string Dropout::extra_repr() const {
  return str_cat("p=", p, ", inplace=False");
}

Dropout2d::Dropout2d(double p) : p(p) {
  check_probability("Dropout2d", p);
}

Tensor Dropout2d::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() == 3 || input.dim() == 4, "Dropout2d: input ", shape_str(input.shape()),
              " must be [N, C, H, W] or [C, H, W]");
  if (!is_training() || p == 0) return input;
  // The channel mask is inverted dropout applied to ones: 0 or 1/(1-p) per channel.
  Shape mask_shape = input.shape();
  for (size_t d = mask_shape.size() - 2; d < mask_shape.size(); ++d) mask_shape[d] = 1;
  const Tensor mask = dropout(ones(mask_shape, {input.dtype(), input.device()}), p, true);
  return input * mask;
}

std::string Dropout2d::extra_repr() const {
  return str_cat("p=", p, ", inplace=False");
}

}  // namespace ember::nn
