// Every layer against PyTorch: the golden files of test/golden (see its README) hold PyTorch's
// float64 outputs and gradients for layers filled by a closed-form rule that golden.h repeats,
// so ember must agree to rounding (1e-9 of the tensor's scale) on the CPU. With a GPU the same
// cases run on CUDA in f32 and must agree to f32 precision.
#include <doctest/doctest.h>

#include <cmath>

#include "golden.h"
#include "layer_cases.h"
#include "support.h"

using namespace ember;

namespace {

// |actual - expected| <= tolerance * (|expected| + max |expected|), element by element.
void check_matches(const std::string& what, const Tensor& actual, const Tensor& expected,
                   double tolerance) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double scale = 0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double excess = std::abs(a[i] - e[i]) - tolerance * (std::abs(e[i]) + scale);
    if (i == 0 || excess > worst) worst = excess, worst_at = i;
  }
  INFO("worst element " << worst_at << ": ember " << a[worst_at] << ", PyTorch " << e[worst_at]);
  CHECK(worst <= 0);
}

// Runs one layer case on `device` in `dtype` and compares it with the golden file.
void run_layer_case(const std::string& name, Device device, DType dtype, double tolerance) {
  INFO("layer case " << name);
  const SafetensorsFile golden = load_safetensors(golden::path("layers/" + name + ".safetensors"));
  const Tensor expected_input = golden.at("input");
  const Shape input_shape = expected_input.shape();

  Tensor x = golden::input(input_shape);
  check_matches("the fill of input", x, expected_input, 0);  // bit for bit
  x = x.to(device, dtype).requires_grad_();

  Tensor out;
  std::shared_ptr<nn::Module> module;
  if (name == "log_softmax") {
    out = log_softmax(x, 1);
  } else if (name == "cross_entropy") {
    out = cross_entropy(x, tensor(golden::targets(input_shape[0], input_shape[1])).to(device));
  } else {
    module = golden::layer_cases().at(name)();
    module->to(DType::F64);
    golden::fill_module(*module);
    module->to(device, dtype);
    out = (*module)(x);
  }
  const Tensor projection = golden::filled("projection", out.shape(), true).to(device, dtype);
  sum(mul(out, projection)).backward();

  check_matches("output", out, golden.at("output"), tolerance);
  check_matches("input_grad", x.grad(), golden.at("input_grad"), tolerance);
  if (!module) return;
  for (const auto& [pname, p] : module->named_parameters())
    check_matches("grad." + pname, p.grad(), golden.at("grad." + pname), tolerance);
  if (golden.contains("output_eval")) {
    for (const auto& [bname, b] : module->named_buffers()) {
      if (b.dtype() == DType::I64)
        CHECK(b.item<int64_t>() == golden.at("buffer." + bname).item<int64_t>());
      else
        check_matches("buffer." + bname, b, golden.at("buffer." + bname), tolerance);
    }
    module->eval();
    NoGrad no_grad;
    check_matches("output_eval", (*module)(x), golden.at("output_eval"), tolerance);
  }
}

std::vector<std::string> all_case_names() {
  std::vector<std::string> names = {"log_softmax", "cross_entropy"};
  for (const auto& [name, factory] : golden::layer_cases()) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("the golden fill matches PyTorch's bit for bit") {
  const SafetensorsFile check = load_safetensors(golden::path("fill_check.safetensors"));
  for (const std::string name : {"weight", "bias", "l1.weight", "bn1.running_var"}) {
    INFO(name);
    const std::vector<double> expected = check.at("value." + name).to_vector<double>();
    const Tensor filled = golden::filled(name, name == "weight"      ? Shape{4, 5}
                                               : name == "bias"      ? Shape{4}
                                               : name == "l1.weight" ? Shape{2048, 784}
                                                                     : Shape{64});
    const std::vector<double> got = filled.to_vector<double>();
    for (size_t i = 0; i < expected.size(); ++i) CHECK(got[i] == expected[i]);
  }
  for (const std::string name : {"input", "weight", "l1.weight"})
    CHECK(static_cast<int64_t>(golden::fnv1a64(name)) ==
          check.at("fnv1a64." + name).item<int64_t>());
  const std::vector<int64_t> splitmix = check.at("splitmix64.0_1_2").to_vector<int64_t>();
  for (uint64_t i = 0; i < 3; ++i)
    CHECK(static_cast<int64_t>(golden::splitmix64(i)) == splitmix[i]);
  CHECK(golden::targets(16, 10) == check.at("target.10").to_vector<int64_t>());
  CHECK(golden::sample_indices("weight", 20, 8) ==
        check.at("sample_index.weight").to_vector<int64_t>());
}

TEST_CASE("every layer matches PyTorch in f64 on the cpu") {
  for (const std::string& name : all_case_names())
    run_layer_case(name, Device::cpu(), DType::F64, 1e-9);
}

TEST_CASE("every layer matches PyTorch in f32 on cuda") {
  EMBER_REQUIRE_GPU();
  for (const std::string& name : all_case_names())
    run_layer_case(name, Device::cuda(0), DType::F32, 2e-5);
}
