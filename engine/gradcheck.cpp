#include "engine/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"  // NoGrad
#include "engine/ops.h"       // sum, mul
#include "engine/random.h"    // Generator, normal

namespace ember {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (const Tensor& x : inputs)
    EMBER_CHECK(x.device().is_cpu() && x.is_contiguous(),
                "gradcheck: inputs must be contiguous CPU tensors");

  // Analytic: one backward of L = sum(f(x) * r).
  Tensor output = fn(inputs);
  Generator generator(options.seed);
  const Tensor projection =
      normal(output.shape(), 0, 1, {output.dtype(), output.device()}, &generator);
  for (const Tensor& x : inputs)
    if (x.requires_grad()) x.impl_ptr()->autograd->grad = Tensor();
  sum(mul(output, projection)).backward();

  auto loss_value = [&]() {
    NoGrad no_grad;
    return sum(mul(fn(inputs), projection)).to(DType::F64).item<double>();
  };

  GradcheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    EMBER_CHECK(x.dtype() == DType::F64 || x.dtype() == DType::F32, "gradcheck: input ", k, " is ",
                dtype_name(x.dtype()), ", expected f64");
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto read = [&]() {
        return x.dtype() == DType::F64 ? x.data<double>()[i] : double(x.data<float>()[i]);
      };
      auto write = [&](double v) {
        if (x.dtype() == DType::F64)
          x.data<double>()[i] = v;
        else
          x.data<float>()[i] = static_cast<float>(v);
      };
      const double original = read();
      write(original + options.eps);
      const double plus = loss_value();
      write(original - options.eps);
      const double minus = loss_value();
      write(original);
      const double numeric = (plus - minus) / (2 * options.eps);
      const double error = std::abs(analytic[i] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, error);
      if (result.ok && error > options.atol + options.rtol * std::abs(numeric)) {
        result.ok = false;
        std::ostringstream out;
        out << "input " << k << " " << shape_str(x.shape()) << ", element " << i << ": analytic "
            << analytic[i] << " vs numeric " << numeric << " (|diff| " << error << ")";
        result.message = out.str();
      }
    }
  }
  return result;
}

}  // namespace ember
