// Every layer against PyTorch: the golden files of test/golden (see its README) hold PyTorch's
// float64 outputs and gradients for layers filled by a closed-form rule that golden.h repeats,
// so ember must agree to rounding (1e-9 of the tensor's scale) on the CPU. With a GPU the same
// cases run on CUDA in f32 and must agree to f32 precision.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>

#include "golden.h"
#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/normalization.h"
#include "layers/pooling.h"
#include "layers/vit.h"
#include "support.h"

using namespace ember;

namespace {

std::string golden_path(const std::string& relative) {
  return std::string(EMBER_GOLDEN_DIR) + "/" + relative;
}

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

using Factory = std::function<std::shared_ptr<nn::Module>()>;

// The modules of the layer cases, built as make_golden.py builds them.
const std::map<std::string, Factory>& layer_cases() {
  using namespace nn;
  static const std::map<std::string, Factory> cases = {
      {"linear", [] { return make<Linear>(5, 4); }},
      {"linear_nobias", [] { return make<Linear>(5, 4, false); }},
      {"linear_3d", [] { return make<Linear>(5, 4); }},
      {"conv2d_basic", [] { return make<Conv2d>(3, 4, 3); }},
      {"conv2d_stride_pad", [] { return make<Conv2d>(3, 4, 3, 2, 1); }},
      {"conv2d_dilation_groups", [] { return make<Conv2d>(4, 6, 3, 1, 2, true, 2, 2); }},
      {"conv2d_depthwise_nobias", [] { return make<Conv2d>(4, 4, 3, 1, 1, false, 4); }},
      {"conv2d_rect",
       [] {
         Conv2dConfig c;
         c.kernel_size = {3, 1};
         c.stride = {2, 1};
         c.padding = {1, 0};
         return make<Conv2d>(2, 3, c);
       }},
      {"conv2d_1x1_stride2_nobias", [] { return make<Conv2d>(4, 6, 1, 2, 0, false); }},
      {"conv2d_7x7_stem", [] { return make<Conv2d>(3, 4, 7, 2, 3, false); }},
      {"batchnorm1d", [] { return make<BatchNorm1d>(5); }},
      {"batchnorm1d_seq", [] { return make<BatchNorm1d>(3); }},
      {"batchnorm2d", [] { return make<BatchNorm2d>(3); }},
      {"batchnorm2d_noaffine",
       [] {
         BatchNormConfig c;
         c.affine = false;
         return make<BatchNorm2d>(3, c);
       }},
      {"groupnorm", [] { return make<GroupNorm>(2, 6); }},
      {"groupnorm_single", [] { return make<GroupNorm>(1, 4); }},
      {"groupnorm_1x1", [] { return make<GroupNorm>(2, 8); }},
      {"layernorm", [] { return make<LayerNorm>(8); }},
      {"layernorm_2d",
       [] {
         return make<LayerNorm>(std::vector<int64_t>{4, 5});
       }},
      {"layernorm_noaffine", [] { return make<LayerNorm>(std::vector<int64_t>{8}, 1e-5, false); }},
      {"maxpool", [] { return make<MaxPool2d>(3, 2, 1); }},
      {"maxpool_ceil", [] { return make<MaxPool2d>(2, 0, 0, 1, true); }},
      {"avgpool", [] { return make<AvgPool2d>(3, 2, 1); }},
      {"avgpool_exclude_pad", [] { return make<AvgPool2d>(3, 2, 1, false, false); }},
      {"adaptive_avgpool", [] { return make<AdaptiveAvgPool2d>(3, 2); }},
      {"adaptive_avgpool_1", [] { return make<AdaptiveAvgPool2d>(1); }},
      {"relu", [] { return make<ReLU>(); }},
      {"gelu", [] { return make<GELU>(); }},
      {"gelu_tanh", [] { return make<GELU>("tanh"); }},
      {"mha", [] { return make<MultiheadSelfAttention>(16, 4); }},
      {"linformer_attention", [] { return make<LinformerSelfAttention>(16, 5, 3, 4); }},
      {"patch_embedding", [] { return make<PatchEmbedding>(3, 4, 8); }},
      {"flatten", [] { return make<Flatten>(); }},
  };
  return cases;
}

// Runs one layer case on `device` in `dtype` and compares it with the golden file.
void run_layer_case(const std::string& name, Device device, DType dtype, double tolerance) {
  INFO("layer case " << name);
  const SafetensorsFile golden = load_safetensors(golden_path("layers/" + name + ".safetensors"));
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
    module = layer_cases().at(name)();
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
  for (const auto& [name, factory] : layer_cases()) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("the golden fill matches PyTorch's bit for bit") {
  const SafetensorsFile check = load_safetensors(golden_path("fill_check.safetensors"));
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
