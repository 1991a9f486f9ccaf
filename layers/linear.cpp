// Linear layer (see linear.h). The backward comes from the ops: dx = dy W, dW = dy^T x,
// db = sum of dy over the leading dims.
#include "layers/linear.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/init.h"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, "Linear: in_features (", in, ") and out_features (", out,
              ") must be positive");
  weight = register_parameter("weight", empty({out, in}));
  init::default_weight_(weight);
  if (with_bias) {
    bias = register_parameter("bias", empty({out}));
    init::default_bias_(bias, in);
  }
}

Tensor Linear::forward(const Tensor& input) {
  EMBER_CHECK(input.dim() >= 1 && input.size(-1) == in_features, "Linear(", in_features, ", ",
              out_features, "): input ", shape_str(input.shape()), " must end in ", in_features,
              " features");
  Tensor y = matmul(input, weight.t());
  return bias.defined() ? y + bias : y;
}

std::string Linear::extra_repr() const {
  return str_cat("in_features=", in_features, ", out_features=", out_features,
                 ", bias=", bias.defined() ? "True" : "False");
}

}  // namespace ember::nn
