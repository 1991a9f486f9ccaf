// mse_loss and l2_penalty (see loss.h): compositions of engine ops, so autograd derives them.
#include "layers/loss.h"

#include "engine/error.h"

namespace ember::nn {

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  EMBER_CHECK(input.shape() == target.shape(), "mse_loss: input ", shape_str(input.shape()),
              " and target ", shape_str(target.shape()), " must have the same shape");
  const Tensor diff = sub(input, target);
  const Tensor squared = mul(diff, diff);
  switch (reduction) {
    case Reduction::None:
      return squared;
    case Reduction::Sum:
      return sum(squared);
    case Reduction::Mean:
      return mean(squared);
  }
  return squared;
}

Tensor l2_penalty(const std::vector<Tensor>& parameters, double lambda) {
  EMBER_CHECK(!parameters.empty(), "l2_penalty: no parameters given");
  Tensor total;
  for (const Tensor& w : parameters) {
    const Tensor term = sum(mul(w, w));
    total = total.defined() ? add(total, term) : term;
  }
  return mul(total, lambda / 2);
}

}  // namespace ember::nn
