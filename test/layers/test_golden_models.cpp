// Every registered model against PyTorch (test/golden): parameter names, order and shapes
// exactly; then, filled by the golden rule and run in f64 on the CPU, the output, loss,
// gradient norms and samples, BatchNorm running statistics after the step, and the eval-mode
// output must agree with PyTorch's to rounding. On a GPU the same runs in f32 on CUDA.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "golden.h"
#include "layers/model_registry.h"
#include "support.h"

using namespace ember;

namespace {

// Within tolerance * (|expected| + scale) for every element.
void check_near(const std::string& what, const std::vector<double>& actual,
                const std::vector<double>& expected, double scale, double tolerance) {
  INFO(what);
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("element " << i << ": ember " << actual[i] << ", PyTorch " << expected[i]);
    CHECK(std::abs(actual[i] - expected[i]) <= tolerance * (std::abs(expected[i]) + scale));
  }
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

void run_model_case(const std::string& name, Device device, DType dtype, double tolerance) {
  INFO("model " << name);
  const SafetensorsFile golden = load_safetensors(golden::path("models/" + name + ".safetensors"));
  const nlohmann::json names = nlohmann::json::parse(golden.metadata.at("parameter_names"));
  const Shape input_shape = nlohmann::json::parse(golden.metadata.at("input_shape"));

  auto model = nn::make_model(name);
  // Names, order and shapes exactly as PyTorch's state_dict (parameters).
  const nn::NamedTensors params = model->named_parameters();
  REQUIRE(params.size() == names.size());
  for (size_t i = 0; i < params.size(); ++i) {
    CHECK(params[i].first == names[i][0].get<std::string>());
    CHECK(params[i].second.shape() == names[i][1].get<Shape>());
  }
  model->to(DType::F64);
  golden::fill_module(*model);
  model->to(device, dtype);

  const Tensor x = golden::input(input_shape).to(device, dtype);
  const std::vector<int64_t> target = golden::targets(input_shape[0], golden.at("output").size(1));
  CHECK(target == golden.at("target").to_vector<int64_t>());
  const Tensor out = (*model)(x);
  const Tensor loss = cross_entropy(out, tensor(target).to(device));
  loss.backward();

  const std::vector<double> expected_out = golden.at("output").to_vector<double>();
  check_near("output", out.to_vector<double>(), expected_out, max_abs(expected_out), tolerance);
  check_near("loss", {loss.item<double>()}, {golden.at("loss").item<double>()}, 0, tolerance);

  double grad_scale = 0;
  for (const auto& [pname, p] : params)
    grad_scale = std::max(grad_scale, golden.at("grad_norm." + pname).item<double>());
  for (const auto& [pname, p] : params) {
    const Tensor g = p.grad().to(Device::cpu(), DType::F64).flatten();
    const double norm = std::sqrt(sum(mul(g, g)).item<double>());
    check_near("grad_norm." + pname, {norm}, {golden.at("grad_norm." + pname).item<double>()},
               grad_scale, tolerance);
    const std::vector<double> values = g.to_vector<double>();
    std::vector<double> sample;
    for (int64_t i : golden::sample_indices(pname, g.numel(), 8)) sample.push_back(values[i]);
    check_near("grad_sample." + pname, sample,
               golden.at("grad_sample." + pname).to_vector<double>(), grad_scale, tolerance);
  }
  for (const auto& [bname, b] : model->named_buffers()) {
    if (b.dtype() == DType::I64) {
      CHECK(b.item<int64_t>() == golden.at("buffer." + bname).item<int64_t>());
      continue;
    }
    const std::vector<double> values = b.to_vector<double>();
    double total = 0;
    for (double v : values) total += v;
    const double expected_sum = golden.at("buffer_sum." + bname).item<double>();
    check_near("buffer_sum." + bname, {total}, {expected_sum}, std::abs(expected_sum) + 1,
               tolerance);
    std::vector<double> sample;
    for (int64_t i : golden::sample_indices(bname, b.numel(), 4)) sample.push_back(values[i]);
    const std::vector<double> expected = golden.at("buffer_sample." + bname).to_vector<double>();
    check_near("buffer_sample." + bname, sample, expected, max_abs(expected), tolerance);
  }

  model->eval();
  NoGrad no_grad;
  const std::vector<double> expected_eval = golden.at("output_eval").to_vector<double>();
  check_near("output_eval", (*model)(x).to_vector<double>(), expected_eval, max_abs(expected_eval),
             tolerance);
}

const char* const kModels[] = {"cifar_cnn",      "logistics",   "resnet20", "resnet56",
                               "resnet18_cifar", "resnet50_gn", "mnistnet", "mnist_cnn",
                               "vit_linformer",  "resnet18",    "resnet34", "resnet50"};

}  // namespace

TEST_CASE("every registered model has a golden file") {
  for (const std::string& name : nn::model_names()) {
    bool found = false;
    for (const char* m : kModels) found = found || name == m;
    INFO(name);
    CHECK(found);
  }
}

TEST_CASE("every model matches PyTorch in f64 on the cpu") {
  for (const char* name : kModels) run_model_case(name, Device::cpu(), DType::F64, 1e-9);
}

TEST_CASE("every model matches PyTorch in f32 on cuda") {
  EMBER_REQUIRE_GPU();
  for (const char* name : kModels) run_model_case(name, Device::cuda(0), DType::F32, 1e-3);
}
