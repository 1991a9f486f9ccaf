// Every layer's backward against central finite differences in f64 on the CPU: the gradients
// of the input and of every parameter, for each layer case of the golden files (the same
// modules and input shapes), plus the losses of layers/loss.h.
#include <doctest/doctest.h>

#include "golden.h"
#include "layer_cases.h"
#include "layers/loss.h"
#include "support.h"

using namespace ember;
using namespace ember::test;

TEST_CASE("every layer passes an f64 gradient check for its input and parameters") {
  for (const auto& [name, factory] : golden::layer_cases()) {
    INFO("layer case " << name);
    const SafetensorsFile golden_file =
        load_safetensors(golden::path("layers/" + name + ".safetensors"));
    auto module = factory();
    module->to(DType::F64);
    golden::fill_module(*module);
    std::vector<Tensor> inputs = {random_leaf(golden_file.at("input").shape(), 17)};
    for (const Tensor& p : module->parameters()) inputs.push_back(p);
    // The module reads its parameters itself; gradcheck perturbs them in place.
    check_gradients([&](const std::vector<Tensor>& in) { return (*module)(in[0]); }, inputs);
  }
}

TEST_CASE("batch norm in eval mode passes an f64 gradient check") {
  nn::BatchNorm2d bn(3);
  bn.to(DType::F64);
  golden::fill_module(bn);
  bn.eval();
  check_gradients([&](const std::vector<Tensor>& in) { return bn(in[0]); },
                  {random_leaf({2, 3, 4, 4}, 5), bn.weight, bn.bias});
}

TEST_CASE("mse loss matches hand values and finite differences") {
  const Tensor x = f64({1, 2, 3, 4}, {2, 2}), y = f64({0, 2, 5, 1}, {2, 2});
  check_close(nn::mse_loss(x, y), {(1 + 0 + 4 + 9) / 4.0});
  check_close(nn::mse_loss(x, y, Reduction::Sum), {14.0});
  check_close(nn::mse_loss(x, y, Reduction::None), {1, 0, 4, 9});
  check_gradients([](const std::vector<Tensor>& in) { return nn::mse_loss(in[0], in[1]); },
                  {random_leaf({3, 4}, 1), random_leaf({3, 4}, 2)});
  CHECK_THROWS_WITH_AS(nn::mse_loss(x, f64({1, 2})), doctest::Contains("same shape"), Error);
}

TEST_CASE("the l2 penalty is lambda over two times the squared norm with gradient lambda w") {
  const Tensor a = random_leaf({3, 2}, 3), b = random_leaf({4}, 4);
  const Tensor penalty = nn::l2_penalty({a, b}, 0.01);
  const double expected = 0.005 * (sum(mul(a, a)).item<double>() + sum(mul(b, b)).item<double>());
  CHECK(penalty.item<double>() == doctest::Approx(expected).epsilon(1e-12));
  penalty.backward();
  check_close(a.grad(), mul(a.detach(), 0.01), 1e-15, 1e-12);
  check_close(b.grad(), mul(b.detach(), 0.01), 1e-15, 1e-12);
}
