// Finite-difference gradient checks (engine/gradcheck.h) of every differentiable op in
// engine/ops.h and of every differentiable view and copy on Tensor, in f64 on the CPU with the
// default GradcheckOptions tolerances.
//
// Inputs are chosen away from the points where an op is not differentiable (0 for abs and
// relu, the bounds of clamp, ties of maximum/minimum/max/topk), so that a central difference
// with eps = 1e-6 never straddles a kink. gradcheck perturbs its inputs in place, so they are
// contiguous leaves; non-contiguous operands are made inside the checked function (a.t(), ...).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "support.h"

using namespace ember;
using ember::test::check_gradients;
using ember::test::f64;
using ember::test::random_leaf;

namespace {

using Inputs = std::vector<Tensor>;

// An f64 leaf with the given values.
Tensor leaf(const std::vector<double>& values, const Shape& shape = {-1}) {
  return f64(values, shape).requires_grad_();
}

// An f64 leaf uniform on [lo, hi) (deterministic for a given seed).
Tensor uniform_leaf(const Shape& shape, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return uniform(shape, lo, hi, DType::F64, &g).requires_grad_();
}

// An f64 leaf with standard-normal values, each moved at least `margin` away from every point
// in `kinks` (a value too close to a kink is pushed to kink +- margin, on its own side).
Tensor leaf_away_from(const Shape& shape, const std::vector<double>& kinks, double margin,
                      uint64_t seed) {
  Generator g(seed);
  std::vector<double> v = normal(shape, 0, 1, DType::F64, &g).to_vector<double>();
  for (double& x : v)
    for (double k : kinks)
      if (std::abs(x - k) < margin) x = x >= k ? k + margin : k - margin;
  return leaf(v, shape);
}

// An i64 index tensor.
Tensor indices(const std::vector<int64_t>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// unary

TEST_CASE("neg and exp match finite differences") {
  Tensor x = random_leaf({3, 4}, 1);
  check_gradients([](const Inputs& in) { return neg(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return -in[0]; }, {x});
  check_gradients([](const Inputs& in) { return ember::exp(in[0]); }, {x});
}

TEST_CASE("log sqrt and rsqrt match finite differences on positive inputs") {
  Tensor x = uniform_leaf({3, 4}, 0.5, 3.0, 2);
  check_gradients([](const Inputs& in) { return ember::log(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return ember::sqrt(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return rsqrt(in[0]); }, {x});
}

TEST_CASE("abs and relu match finite differences away from zero") {
  Tensor x = leaf_away_from({4, 5}, {0.0}, 0.1, 3);
  check_gradients([](const Inputs& in) { return ember::abs(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return relu(in[0]); }, {x});
  // both signs are present, so both branches of each derivative are exercised
  const std::vector<double> v = x.to_vector<double>();
  CHECK(*std::min_element(v.begin(), v.end()) < 0);
  CHECK(*std::max_element(v.begin(), v.end()) > 0);
}

TEST_CASE("gelu matches finite differences") {
  Tensor x = leaf({-3.0, -1.5, -0.7, -0.1, 0.0, 0.2, 0.9, 1.7, 2.5, 4.0}, {2, 5});
  check_gradients([](const Inputs& in) { return gelu(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return gelu(in[0], "none"); }, {x});
}

TEST_CASE("tanh approximated gelu matches finite differences") {
  Tensor x = leaf({-3.0, -1.5, -0.7, -0.1, 0.0, 0.2, 0.9, 1.7, 2.5, 4.0}, {2, 5});
  check_gradients([](const Inputs& in) { return gelu(in[0], "tanh"); }, {x});
}

TEST_CASE("sigmoid and tanh match finite differences") {
  Tensor x = leaf({-6.0, -2.0, -0.5, 0.0, 0.3, 1.0, 2.5, 7.0}, {2, 4});
  check_gradients([](const Inputs& in) { return sigmoid(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return ember::tanh(in[0]); }, {x});
  Tensor r = random_leaf({3, 3}, 4);
  check_gradients([](const Inputs& in) { return sigmoid(in[0]); }, {r});
  check_gradients([](const Inputs& in) { return ember::tanh(in[0]); }, {r});
}

TEST_CASE("pow with integer exponents matches finite differences") {
  Tensor x = random_leaf({3, 4}, 5);  // any sign: x^2 and x^3 are smooth everywhere
  check_gradients([](const Inputs& in) { return ember::pow(in[0], 2.0); }, {x});
  check_gradients([](const Inputs& in) { return ember::pow(in[0], 3.0); }, {x});
}

TEST_CASE("pow with fractional and negative exponents matches finite differences") {
  Tensor x = uniform_leaf({3, 4}, 0.5, 2.5, 6);
  check_gradients([](const Inputs& in) { return ember::pow(in[0], 0.5); }, {x});
  check_gradients([](const Inputs& in) { return ember::pow(in[0], -1.5); }, {x});
}

TEST_CASE("pow with exponent zero has zero gradient") {
  Tensor x = random_leaf({2, 3}, 7);
  check_gradients([](const Inputs& in) { return ember::pow(in[0], 0.0); }, {x});
  x.set_grad(Tensor());  // drop what gradcheck's own backward left in .grad
  ember::sum(ember::pow(x, 0.0)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 0.0));
}

TEST_CASE("clamp matches finite differences inside and outside the bounds") {
  Tensor x = leaf_away_from({4, 5}, {-0.5, 0.5}, 0.05, 8);
  check_gradients([](const Inputs& in) { return clamp(in[0], -0.5, 0.5); }, {x});
  // one-sided
  check_gradients([](const Inputs& in) { return clamp(in[0], -0.5, INFINITY); }, {x});
  check_gradients([](const Inputs& in) { return clamp(in[0], -INFINITY, 0.5); }, {x});
  // the values straddle both bounds, so clamped and passed-through elements are both checked
  const std::vector<double> v = x.to_vector<double>();
  CHECK(std::count_if(v.begin(), v.end(), [](double a) { return a < -0.5; }) > 0);
  CHECK(std::count_if(v.begin(), v.end(), [](double a) { return a > 0.5; }) > 0);
  CHECK(std::count_if(v.begin(), v.end(), [](double a) { return std::abs(a) < 0.5; }) > 0);
}

TEST_CASE("scalar add mul and division match finite differences") {
  Tensor x = uniform_leaf({3, 4}, 0.5, 2.0, 9);  // positive: a scalar divided by x is smooth
  check_gradients([](const Inputs& in) { return add(in[0], 2.5); }, {x});
  check_gradients([](const Inputs& in) { return mul(in[0], -1.75); }, {x});
  check_gradients([](const Inputs& in) { return in[0] + 1.0; }, {x});
  check_gradients([](const Inputs& in) { return 1.0 + in[0]; }, {x});
  check_gradients([](const Inputs& in) { return in[0] - 3.0; }, {x});
  check_gradients([](const Inputs& in) { return 3.0 - in[0]; }, {x});
  check_gradients([](const Inputs& in) { return in[0] * 3.0; }, {x});
  check_gradients([](const Inputs& in) { return 3.0 * in[0]; }, {x});
  check_gradients([](const Inputs& in) { return in[0] / 4.0; }, {x});
  check_gradients([](const Inputs& in) { return 2.0 / in[0]; }, {x});
}

// ---------------------------------------------------------------------------------------------
// binary, broadcasting

TEST_CASE("add and sub match finite differences with broadcasting") {
  Tensor a = random_leaf({3, 1, 4}, 10), b = random_leaf({2, 4}, 11);
  Tensor c = random_leaf({3, 1, 4}, 12), s = random_leaf({}, 13);
  for (auto op : {+[](const Tensor&p, const Tensor&q) { return add(p, q); },
                  +[](const Tensor&p, const Tensor&q) { return sub(p, q); }}) {
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, b});  // both broadcast
    check_gradients([op](const Inputs& in) { return op(in[1], in[0]); }, {a, b});
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, c});  // same shape
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, s});  // 0-d operand
    check_gradients([op](const Inputs& in) { return op(in[1], in[0]); }, {a, s});
    check_gradients([op](const Inputs& in) { return op(in[0], in[0]); }, {a});  // one input twice
  }
}

TEST_CASE("mul matches finite differences with broadcasting") {
  Tensor a = random_leaf({3, 1, 4}, 14), b = random_leaf({2, 4}, 15);
  Tensor c = random_leaf({3, 1, 4}, 16), s = random_leaf({}, 17);
  check_gradients([](const Inputs& in) { return mul(in[0], in[1]); }, {a, b});
  check_gradients([](const Inputs& in) { return mul(in[1], in[0]); }, {a, b});
  check_gradients([](const Inputs& in) { return in[0] * in[1]; }, {a, c});
  check_gradients([](const Inputs& in) { return mul(in[0], in[1]); }, {a, s});
  check_gradients([](const Inputs& in) { return mul(in[1], in[0]); }, {a, s});
  check_gradients([](const Inputs& in) { return mul(in[0], in[0]); }, {a});
}

TEST_CASE("div matches finite differences with broadcasting") {
  Tensor a = random_leaf({3, 1, 4}, 18);
  Tensor b = leaf_away_from({2, 4}, {0.0}, 0.5, 19);  // denominators away from 0
  Tensor c = leaf_away_from({3, 1, 4}, {0.0}, 0.5, 20);
  Tensor s = leaf({1.3}, {});
  check_gradients([](const Inputs& in) { return div(in[0], in[1]); }, {a, b});
  check_gradients([](const Inputs& in) { return div(in[1], in[0]); }, {c, b});
  check_gradients([](const Inputs& in) { return in[0] / in[1]; }, {a, c});
  check_gradients([](const Inputs& in) { return div(in[0], in[1]); }, {a, s});
  check_gradients([](const Inputs& in) { return div(in[1], in[0]); }, {c, s});
}

TEST_CASE("maximum and minimum match finite differences without ties") {
  // normal values: an exact tie between two independent draws does not happen
  Tensor a = random_leaf({3, 1, 4}, 21), b = random_leaf({2, 4}, 22);
  Tensor c = random_leaf({3, 1, 4}, 23), s = leaf({0.123}, {});
  for (auto op : {+[](const Tensor&p, const Tensor&q) { return maximum(p, q); },
                  +[](const Tensor&p, const Tensor&q) { return minimum(p, q); }}) {
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, b});
    check_gradients([op](const Inputs& in) { return op(in[1], in[0]); }, {a, b});
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, c});
    check_gradients([op](const Inputs& in) { return op(in[0], in[1]); }, {a, s});
    check_gradients([op](const Inputs& in) { return op(in[1], in[0]); }, {a, s});
  }
}

TEST_CASE("maximum and minimum split the gradient on ties") {
  // Not a finite-difference check (a tie is a kink): PyTorch's rule, half to each side.
  Tensor a = leaf({1.0, 2.0, 3.0}), b = leaf({1.0, 5.0, 0.0});
  ember::sum(maximum(a, b)).backward();
  test::check_close(a.grad(), {0.5, 0.0, 1.0});
  test::check_close(b.grad(), {0.5, 1.0, 0.0});
  Tensor c = leaf({1.0, 2.0, 3.0}), d = leaf({1.0, 5.0, 0.0});
  ember::sum(minimum(c, d)).backward();
  test::check_close(c.grad(), {0.5, 1.0, 0.0});
  test::check_close(d.grad(), {0.5, 0.0, 1.0});
}

TEST_CASE("where sends gradients to both branches") {
  Tensor cond = tensor(std::vector<uint8_t>{1, 0, 0, 1, 1}, {1, 5});  // broadcast over rows
  Tensor a = random_leaf({3, 5}, 24), b = random_leaf({3, 1}, 25);    // b broadcast too
  check_gradients([cond](const Inputs& in) { return where(cond, in[0], in[1]); }, {a, b});
  check_gradients([cond](const Inputs& in) { return where(cond, in[1], in[0]); }, {a, b});
  // both branches really receive a non-zero gradient
  a.set_grad(Tensor());  // drop what gradcheck's own backward left in .grad
  b.set_grad(Tensor());
  ember::sum(where(cond, a, b)).backward();
  test::check_close(a.grad(), {1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1});
  test::check_close(b.grad(), {2, 2, 2});
}

// ---------------------------------------------------------------------------------------------
// reductions

TEST_CASE("sum matches finite differences over every kind of dims") {
  Tensor x = random_leaf({2, 3, 4, 5}, 26);
  check_gradients([](const Inputs& in) { return ember::sum(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {1}); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {1}, true); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {0, 2}); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {3, 1}, true); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {-1}); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {-3, -1}, true); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {1, 2}); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {0, 1, 2, 3}, true); }, {x});
  Tensor s = random_leaf({}, 27);
  check_gradients([](const Inputs& in) { return ember::sum(in[0]); }, {s});
}

TEST_CASE("mean matches finite differences over every kind of dims") {
  Tensor x = random_leaf({2, 3, 4, 5}, 28);
  check_gradients([](const Inputs& in) { return mean(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {2}); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {2}, true); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {0, 3}); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {0, 2}, true); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {-2}); }, {x});
  check_gradients([](const Inputs& in) { return mean(in[0], {-1, -4}, true); }, {x});
}

TEST_CASE("var matches finite differences") {
  Tensor x = random_leaf({3, 4, 5}, 29);
  check_gradients([](const Inputs& in) { return var(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {}, 0); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {1}); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {1}, 0); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {-1}, 1, true); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {0, 2}); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {0, 2}, 0, true); }, {x});
  check_gradients([](const Inputs& in) { return var(in[0], {0, 1}, 1); }, {x});
}

TEST_CASE("max and min along a dim match finite differences") {
  Tensor x = random_leaf({3, 4, 5}, 30);  // continuous values: no ties
  for (int64_t dim : {0, 1, 2, -1}) {
    for (bool keepdim : {false, true}) {
      INFO("dim " << dim << " keepdim " << keepdim);
      check_gradients(
          [dim, keepdim](const Inputs& in) { return ember::max(in[0], dim, keepdim).values; }, {x});
      check_gradients(
          [dim, keepdim](const Inputs& in) { return ember::min(in[0], dim, keepdim).values; }, {x});
    }
  }
}

TEST_CASE("max and min of all elements match finite differences") {
  Tensor x = random_leaf({3, 4}, 31);
  check_gradients([](const Inputs& in) { return ember::max(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return ember::min(in[0]); }, {x});
  Tensor t = random_leaf({4, 3}, 32);  // of a non-contiguous view
  check_gradients([](const Inputs& in) { return ember::max(in[0].t()); }, {t});
}

TEST_CASE("topk matches finite differences") {
  Tensor x = random_leaf({3, 6}, 33);
  for (bool largest : {true, false}) {
    for (int64_t k : {1, 3}) {
      INFO("largest " << largest << " k " << k);
      check_gradients([k, largest](const Inputs& in) { return topk(in[0], k, -1, largest).values; },
                      {x});
      check_gradients([k, largest](const Inputs& in) { return topk(in[0], k, 0, largest).values; },
                      {x});
    }
  }
}

TEST_CASE("sum_to matches finite differences") {
  Tensor x = random_leaf({2, 3, 4}, 34);
  check_gradients([](const Inputs& in) { return sum_to(in[0], {3, 1}); }, {x});
  check_gradients([](const Inputs& in) { return sum_to(in[0], {1, 4}); }, {x});
  check_gradients([](const Inputs& in) { return sum_to(in[0], {2, 1, 4}); }, {x});
  check_gradients([](const Inputs& in) { return sum_to(in[0], {4}); }, {x});
  check_gradients([](const Inputs& in) { return sum_to(in[0], {}); }, {x});
  check_gradients([](const Inputs& in) { return sum_to(in[0], {2, 3, 4}); }, {x});
}

// ---------------------------------------------------------------------------------------------
// matmul

TEST_CASE("matmul of matrices and vectors matches finite differences") {
  Tensor a = random_leaf({3, 4}, 35), b = random_leaf({4, 5}, 36);
  Tensor u = random_leaf({4}, 37), v = random_leaf({4}, 38), w = random_leaf({3}, 39);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, b});  // 2-d x 2-d
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {u, v});  // dot
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {u, b});  // 1-d x 2-d
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, u});  // 2-d x 1-d
  check_gradients([](const Inputs& in) { return matmul(in[1], in[0]); }, {a, w});  // [3] x [3, 4]
}

TEST_CASE("batched matmul matches finite differences") {
  Tensor a = random_leaf({2, 3, 4, 5}, 40), b = random_leaf({5, 6}, 41);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, b});
  Tensor c = random_leaf({2, 3, 5, 2}, 42);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, c});  // same batch
  Tensor u = random_leaf({5}, 43);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, u});  // batch x 1-d
  Tensor v = random_leaf({4}, 44);
  check_gradients([](const Inputs& in) { return matmul(in[1], in[0]); }, {a, v});  // 1-d x batch
}

TEST_CASE("matmul with broadcast batch dims matches finite differences") {
  Tensor a = random_leaf({2, 1, 3, 4}, 45), b = random_leaf({5, 4, 2}, 46);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {a, b});
  Tensor c = random_leaf({1, 4, 3}, 47), d = random_leaf({3, 3, 2}, 48);
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]); }, {c, d});
  check_gradients(
      [](const Inputs& in) { return matmul(in[1].transpose(-1, -2), in[0].transpose(-1, -2)); },
      {c, d});
}

TEST_CASE("matmul of transposed operands matches finite differences") {
  Tensor a = random_leaf({4, 3}, 49), b = random_leaf({5, 4}, 50), c = random_leaf({4, 5}, 51);
  check_gradients([](const Inputs& in) { return matmul(in[0].t(), in[1].t()); }, {a, b});
  check_gradients([](const Inputs& in) { return matmul(in[0].t(), in[1]); }, {a, c});
  check_gradients([](const Inputs& in) { return matmul(in[1].t(), in[0]); }, {a, c});
  // a batch of transposed matrices, and operands that need a copy (every other column)
  Tensor d = random_leaf({2, 4, 3}, 52), e = random_leaf({2, 5, 4}, 53);
  check_gradients(
      [](const Inputs& in) { return matmul(in[0].transpose(1, 2), in[1].transpose(1, 2)); },
      {d, e});
  Tensor f = random_leaf({3, 8}, 54), g = random_leaf({4, 6}, 55);
  check_gradients(
      [](const Inputs& in) { return matmul(in[0].slice(1, 0, 8, 2), in[1].slice(1, 1, 6, 2)); },
      {f, g});
  // a permuted batch: batch dims that do not step uniformly
  Tensor h = random_leaf({3, 2, 4, 5}, 56), k = random_leaf({2, 3, 5, 2}, 57);
  check_gradients(
      [](const Inputs& in) {
        return matmul(in[0].permute({1, 0, 2, 3}), in[1]);
      },
      {h, k});
}

TEST_CASE("matmul with an empty inner dimension gives zeros") {
  Tensor a = zeros({3, 0}, DType::F64).requires_grad_(),
         b = zeros({0, 2}, DType::F64).requires_grad_();
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{3, 2});
  test::check_close(c, std::vector<double>(6, 0.0));
  Tensor bc = matmul(zeros({2, 3, 0}), zeros({0, 4}));
  CHECK(bc.shape() == Shape{2, 3, 4});
  CHECK(bc.to_vector<float>() == std::vector<float>(24, 0.0f));
  // backward gives empty gradients of the operands' shapes
  ember::sum(c).backward();
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(a.grad().shape() == Shape{3, 0});
  CHECK(b.grad().shape() == Shape{0, 2});
}

// ---------------------------------------------------------------------------------------------
// softmax and losses

TEST_CASE("softmax matches finite differences along every dim") {
  Tensor x = random_leaf({2, 3, 4}, 58);
  for (int64_t dim : {0, 1, 2, -1}) {
    INFO("dim " << dim);
    check_gradients([dim](const Inputs& in) { return softmax(in[0], dim); }, {x});
  }
}

TEST_CASE("log_softmax matches finite differences along every dim") {
  Tensor x = random_leaf({2, 3, 4}, 59);
  for (int64_t dim : {0, 1, 2, -1}) {
    INFO("dim " << dim);
    check_gradients([dim](const Inputs& in) { return log_softmax(in[0], dim); }, {x});
  }
}

TEST_CASE("cross_entropy matches finite differences for every reduction") {
  Tensor logits = random_leaf({4, 5}, 60);
  Tensor target = indices({1, 0, 4, 1});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    CrossEntropyOptions o;
    o.reduction = r;
    check_gradients([target, o](const Inputs& in) { return cross_entropy(in[0], target, o); },
                    {logits});
  }
}

TEST_CASE("cross_entropy with label smoothing matches finite differences") {
  Tensor logits = random_leaf({4, 5}, 61);
  Tensor target = indices({3, 3, 0, 2});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    CrossEntropyOptions o;
    o.reduction = r;
    o.label_smoothing = 0.1;
    check_gradients([target, o](const Inputs& in) { return cross_entropy(in[0], target, o); },
                    {logits});
  }
}

TEST_CASE("cross_entropy with ignored targets matches finite differences") {
  Tensor logits = random_leaf({5, 3}, 62);
  Tensor target = indices({2, -100, 0, 1, -100});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    CrossEntropyOptions o;
    o.reduction = r;
    check_gradients([target, o](const Inputs& in) { return cross_entropy(in[0], target, o); },
                    {logits});
    o.label_smoothing = 0.1;
    check_gradients([target, o](const Inputs& in) { return cross_entropy(in[0], target, o); },
                    {logits});
  }
  // a custom ignore_index
  check_gradients(
      [target = indices({2, 1, 0, 1, 1})](const Inputs& in) {
        CrossEntropyOptions opt;
        opt.ignore_index = 1;
        return cross_entropy(in[0], target, opt);
      },
      {logits});
  // the ignored rows get exactly zero gradient
  logits.set_grad(Tensor());  // drop what gradcheck's own backward left in .grad
  cross_entropy(logits, target).backward();
  const std::vector<double> g = logits.grad().to_vector<double>();
  for (int j = 0; j < 3; ++j) {
    CHECK(g[1 * 3 + j] == 0.0);
    CHECK(g[4 * 3 + j] == 0.0);
  }
}

TEST_CASE("nll_loss of log_softmax matches finite differences") {
  Tensor x = random_leaf({4, 6}, 63);
  Tensor target = indices({5, 0, 2, 2});
  Tensor ignoring = indices({5, -100, 2, -100});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    check_gradients(
        [target, r](const Inputs& in) { return nll_loss(log_softmax(in[0], 1), target, r); }, {x});
    check_gradients(
        [ignoring, r](const Inputs& in) { return nll_loss(log_softmax(in[0], 1), ignoring, r); },
        {x});
  }
  // nll_loss on its own (of arbitrary inputs)
  check_gradients([target](const Inputs& in) { return nll_loss(in[0], target); }, {x});
  check_gradients(
      [ignoring](const Inputs& in) { return nll_loss(in[0], ignoring, Reduction::Sum); }, {x});
  check_gradients(
      [](const Inputs& in) {
        return nll_loss(in[0], indices({1, 3, 3, 0}), Reduction::Mean, 3);
      },
      {x});
}

// ---------------------------------------------------------------------------------------------
// indexing, joining, splitting

TEST_CASE("index_select with repeated indices matches finite differences") {
  Tensor x = random_leaf({4, 5}, 64);
  check_gradients(
      [](const Inputs& in) {
        return index_select(in[0], 0, indices({3, 0, 3, 3, 1}));
      },
      {x});
  check_gradients(
      [](const Inputs& in) {
        return index_select(in[0], 1, indices({4, 4, 0, 2}));
      },
      {x});
  check_gradients([](const Inputs& in) { return index_select(in[0], -1, indices({1})); }, {x});
  Tensor y = random_leaf({2, 3, 4}, 65);
  check_gradients([](const Inputs& in) { return index_select(in[0], 1, indices({2, 0, 2})); }, {y});
}

TEST_CASE("embedding with repeated indices matches finite differences") {
  Tensor weight = random_leaf({5, 3}, 66);
  Tensor idx = indices({4, 1, 4, 0, 1, 1}, {2, 3});
  check_gradients([idx](const Inputs& in) { return embedding(in[0], idx); }, {weight});
  // every repeat adds into the same row
  weight.set_grad(Tensor());  // drop what gradcheck's own backward left in .grad
  ember::sum(embedding(weight, idx)).backward();
  test::check_close(weight.grad(), {1, 1, 1, 3, 3, 3, 0, 0, 0, 0, 0, 0, 2, 2, 2});
}

TEST_CASE("gather with repeated indices matches finite differences") {
  Tensor x = random_leaf({3, 4}, 67);
  // dim 0: index [2, 4], entries are rows of x
  check_gradients(
      [](const Inputs& in) {
        return gather(in[0], 0, indices({2, 2, 0, 1, 2, 0, 0, 1}, {2, 4}));
      },
      {x});
  // dim 1: index [3, 5], entries are columns of x
  check_gradients(
      [](const Inputs& in) {
        return gather(in[0], 1, indices({3, 3, 0, 1, 3, 0, 0, 0, 2, 2, 1, 2, 1, 2, 1}, {3, 5}));
      },
      {x});
  Tensor y = random_leaf({2, 3, 4}, 68);
  check_gradients(
      [](const Inputs& in) {
        return gather(in[0], -1, indices({0, 3, 3, 1, 1, 1, 2, 0, 0, 3, 2, 2}, {2, 3, 2}));
      },
      {y});
}

TEST_CASE("cat matches finite differences") {
  Tensor a = random_leaf({2, 3}, 69), b = random_leaf({2, 1}, 70), c = random_leaf({2, 4}, 71);
  check_gradients([](const Inputs& in) { return cat({in[0], in[1], in[2]}, 1); }, {a, b, c});
  check_gradients([](const Inputs& in) { return cat({in[0], in[1], in[2]}, -1); }, {a, b, c});
  // one input that does not require grad
  Tensor fixed = f64({1, 2, 3, 4}, {2, 2});
  check_gradients([](const Inputs& in) { return cat({in[0], in[1], in[2]}, 1); }, {a, fixed, c});
  // along dim 0, with the same tensor twice
  Tensor d = random_leaf({3, 3}, 72);
  check_gradients([](const Inputs& in) { return cat({in[0], in[1], in[0]}, 0); }, {a, d});
}

TEST_CASE("stack matches finite differences") {
  Tensor a = random_leaf({2, 3}, 73), b = random_leaf({2, 3}, 74), c = random_leaf({2, 3}, 75);
  check_gradients([](const Inputs& in) { return stack({in[0], in[1], in[2]}, 0); }, {a, b, c});
  check_gradients([](const Inputs& in) { return stack({in[0], in[1], in[2]}, 2); }, {a, b, c});
  check_gradients([](const Inputs& in) { return stack({in[0], in[1]}, -1); }, {a, b});
  check_gradients([](const Inputs& in) { return stack({in[0], in[1]}, 1); }, {a, b});
}

TEST_CASE("split and chunk match finite differences") {
  Tensor x = random_leaf({7, 3}, 76);
  // every piece used, each with its own weight, so a piece whose gradient lands in the wrong
  // place is caught
  auto weighted = [](const std::vector<Tensor>& pieces) {
    Tensor total = mul(ember::sum(pieces[0] * pieces[0]), 1.0);
    for (size_t i = 1; i < pieces.size(); ++i)
      total = add(total, mul(ember::sum(pieces[i] * pieces[i]), static_cast<double>(i + 1)));
    return total;
  };
  check_gradients([weighted](const Inputs& in) { return weighted(split(in[0], 3, 0)); }, {x});
  check_gradients(
      [weighted](const Inputs& in) {
        return weighted(split(in[0], {2, 4, 1}, 0));
      },
      {x});
  check_gradients([weighted](const Inputs& in) { return weighted(split(in[0], 2, 1)); }, {x});
  check_gradients([weighted](const Inputs& in) { return weighted(chunk(in[0], 3, 0)); }, {x});
  check_gradients([weighted](const Inputs& in) { return weighted(chunk(in[0], 2, -1)); }, {x});
  // pieces used as a tensor output (not reduced)
  check_gradients(
      [](const Inputs& in) {
        std::vector<Tensor> p = chunk(in[0], 3, 0);  // 3, 3, 1 rows
        return cat({mul(p[2], 3.0), p[0], mul(p[1], -2.0)}, 0);
      },
      {x});
}

// ---------------------------------------------------------------------------------------------
// views and copies

TEST_CASE("reshape view and flatten match finite differences") {
  Tensor x = random_leaf({2, 3, 4}, 77);
  check_gradients([](const Inputs& in) { return in[0].reshape({6, 4}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].reshape({4, -1}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].view({2, 12}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].flatten(); }, {x});
  check_gradients([](const Inputs& in) { return in[0].flatten(1); }, {x});
  check_gradients([](const Inputs& in) { return in[0].flatten(0, 1); }, {x});
  // of a non-contiguous tensor: reshape has to copy, and the copy must keep the element order
  check_gradients([](const Inputs& in) { return in[0].transpose(0, 2).reshape({4, 6}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].permute({1, 0, 2}).flatten(); }, {x});
}

TEST_CASE("transpose and permute match finite differences") {
  Tensor x = random_leaf({2, 3, 4}, 78);
  check_gradients([](const Inputs& in) { return in[0].transpose(0, 2); }, {x});
  check_gradients([](const Inputs& in) { return in[0].transpose(-1, 1); }, {x});
  check_gradients([](const Inputs& in) { return in[0].permute({2, 0, 1}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].permute({1, 2, 0}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].permute({-1, 0, 1}).transpose(0, 1); }, {x});
  Tensor m = random_leaf({3, 5}, 79);
  check_gradients([](const Inputs& in) { return in[0].t(); }, {m});
}

TEST_CASE("narrow slice and select match finite differences") {
  Tensor x = random_leaf({4, 5, 3}, 80);
  check_gradients([](const Inputs& in) { return in[0].narrow(1, 1, 3); }, {x});
  check_gradients([](const Inputs& in) { return in[0].narrow(-1, -2, 2); }, {x});
  check_gradients([](const Inputs& in) { return in[0].slice(1, 0, 5, 2); }, {x});
  check_gradients([](const Inputs& in) { return in[0].slice(0, 1, 100, 2); }, {x});
  check_gradients([](const Inputs& in) { return in[0].slice(2, -2, 3, 1); }, {x});
  check_gradients([](const Inputs& in) { return in[0].select(0, 2); }, {x});
  check_gradients([](const Inputs& in) { return in[0].select(1, -1); }, {x});
  check_gradients([](const Inputs& in) { return in[0].slice(1, 1, 5, 2).select(2, 0); }, {x});
  // two overlapping views of one input: gradients add
  check_gradients(
      [](const Inputs& in) { return add(in[0].narrow(0, 0, 3), in[0].narrow(0, 1, 3)); }, {x});
}

TEST_CASE("expand squeeze and unsqueeze match finite differences") {
  Tensor x = random_leaf({3, 1, 4}, 81);
  check_gradients([](const Inputs& in) { return in[0].expand({3, 5, 4}); }, {x});
  check_gradients([](const Inputs& in) { return in[0].expand({2, 3, -1, 4}); }, {x});
  check_gradients(
      [](const Inputs& in) {
        return in[0].expand_as(zeros({2, 3, 2, 4}, DType::F64));
      },
      {x});
  check_gradients([](const Inputs& in) { return in[0].squeeze(1); }, {x});
  check_gradients([](const Inputs& in) { return in[0].squeeze(-2).unsqueeze(0); }, {x});
  check_gradients([](const Inputs& in) { return in[0].unsqueeze(3); }, {x});
  check_gradients([](const Inputs& in) { return in[0].unsqueeze(-1).expand({3, 1, 4, 2}); }, {x});
  Tensor s = random_leaf({}, 82);
  check_gradients([](const Inputs& in) { return in[0].expand({2, 3}); }, {s});
}

TEST_CASE("contiguous and clone match finite differences") {
  Tensor x = random_leaf({3, 4}, 83);
  check_gradients([](const Inputs& in) { return in[0].contiguous(); }, {x});
  check_gradients([](const Inputs& in) { return in[0].t().contiguous(); }, {x});
  check_gradients([](const Inputs& in) { return in[0].clone(); }, {x});
  check_gradients([](const Inputs& in) { return in[0].slice(1, 0, 4, 2).clone(); }, {x});
  check_gradients([](const Inputs& in) { return mul(in[0].clone(), in[0]); }, {x});
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST_CASE("dropout with a fixed mask matches finite differences") {
  Tensor x = random_leaf({6, 7}, 84);
  auto fn = [](const Inputs& in) {
    Generator g(2024);  // a fresh generator per evaluation: every call draws the same mask
    return dropout(in[0], 0.3, true, &g);
  };
  check_gradients(fn, {x});
  // the gradient is the mask itself: 0 or 1 / (1 - p), both present
  x.set_grad(Tensor());  // drop what gradcheck's own backward left in .grad
  ember::sum(fn({x})).backward();
  int dropped = 0, kept = 0;
  for (double g : x.grad().to_vector<double>()) {
    if (g == 0)
      ++dropped;
    else {
      ++kept;
      CHECK(g == doctest::Approx(1 / 0.7));
    }
  }
  CHECK(dropped > 0);
  CHECK(kept > 0);
}

TEST_CASE("dropout in eval mode passes the gradient through") {
  Tensor x = random_leaf({3, 4}, 85);
  check_gradients([](const Inputs& in) { return dropout(in[0], 0.5, false); }, {x});
  check_gradients([](const Inputs& in) { return dropout(in[0], 0.0, true); }, {x});
}

// ---------------------------------------------------------------------------------------------
// non-contiguous incoming gradients: each op's output is transposed before it is returned, so
// its backward receives a transposed (strided) gradient

TEST_CASE("backward rules accept non-contiguous incoming gradients") {
  Tensor x = random_leaf({3, 4}, 93);
  Tensor p = uniform_leaf({3, 4}, 0.5, 2.0, 94);
  Tensor b = random_leaf({4, 5}, 95);
  Tensor y = random_leaf({2, 3, 4}, 96);
  check_gradients([](const Inputs& in) { return ember::exp(in[0]).t(); }, {x});
  check_gradients([](const Inputs& in) { return ember::log(in[0]).t(); }, {p});
  check_gradients([](const Inputs& in) { return mul(in[0], in[1]).t(); }, {x, p});
  check_gradients([](const Inputs& in) { return div(in[0], in[1]).t(); }, {x, p});
  check_gradients([](const Inputs& in) { return maximum(in[0], in[1]).t(); }, {x, p});
  check_gradients([](const Inputs& in) { return matmul(in[0], in[1]).t(); }, {x, b});
  check_gradients([](const Inputs& in) { return softmax(in[0], 1).t(); }, {x});
  check_gradients([](const Inputs& in) { return log_softmax(in[0], 0).t(); }, {x});
  check_gradients([](const Inputs& in) { return ember::sum(in[0], {1}).transpose(0, 1); }, {y});
  check_gradients([](const Inputs& in) { return var(in[0], {1}).transpose(0, 1); }, {y});
  check_gradients([](const Inputs& in) { return ember::max(in[0], 1).values.t(); }, {y});
  check_gradients([](const Inputs& in) { return topk(in[0], 2, 1).values.transpose(1, 2); }, {y});
  check_gradients(
      [](const Inputs& in) {
        return index_select(in[0], 1, indices({3, 0, 3})).t();
      },
      {x});
  check_gradients(
      [](const Inputs& in) {
        return gather(in[0], 1, indices({1, 1, 0, 3, 2, 2}, {3, 2})).t();
      },
      {x});
  check_gradients([](const Inputs& in) { return cat({in[0], in[1]}, 0).t(); }, {x, p});
  check_gradients(
      [](const Inputs& in) {
        Generator g(5);
        return dropout(in[0], 0.4, true, &g).t();
      },
      {x});
  Tensor cond = tensor(std::vector<uint8_t>{1, 0, 1, 0}, {4});
  check_gradients([cond](const Inputs& in) { return where(cond, in[0], in[1]).t(); }, {x, p});
}

// ---------------------------------------------------------------------------------------------
// compositions

TEST_CASE("a small network of ops matches finite differences") {
  // linear -> gelu -> linear -> log_softmax -> nll, plus a norm-like term: the ops compose
  Tensor x = random_leaf({4, 5}, 86), w1 = random_leaf({5, 6}, 87), b1 = random_leaf({6}, 88);
  Tensor w2 = random_leaf({6, 3}, 89);
  Tensor target = indices({0, 2, 1, 2});
  check_gradients(
      [target](const Inputs& in) {
        Tensor h = gelu(add(matmul(in[0], in[1]), in[2]));
        Tensor centered = sub(h, mean(h, {-1}, true));
        Tensor normed = div(centered, ember::sqrt(add(var(h, {-1}, 0, true), 1e-5)));
        Tensor logits = matmul(normed, in[3]);
        return add(cross_entropy(logits, target), mul(ember::sum(mul(in[3], in[3])), 0.01));
      },
      {x, w1, b1, w2});
}

// ---------------------------------------------------------------------------------------------
// the checker itself

namespace {

// y = x, but its backward returns `factor` times the true gradient.
class ScaledIdentityBackward : public Node {
 public:
  explicit ScaledIdentityBackward(double factor) : factor_(factor) {}
  std::string name() const override { return "ScaledIdentityBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {mul(g[0], factor_)}; }

 private:
  double factor_;
};

Tensor identity_with_scaled_gradient(const Tensor& x, double factor) {
  Tensor out = x.detach().clone();
  if (needs_grad({x})) connect(std::make_shared<ScaledIdentityBackward>(factor), {x}, {&out});
  return out;
}

}  // namespace

TEST_CASE("gradcheck rejects a wrong gradient") {
  Tensor x = random_leaf({3, 4}, 90);
  // the custom node with the true gradient passes: the harness is sound
  const GradcheckResult right = gradcheck(
      [](const Inputs& in) { return ember::exp(identity_with_scaled_gradient(in[0], 1.0)); }, {x});
  INFO(right.message);
  CHECK(right.ok);
  // twice the true gradient fails, with a message naming the input and element
  const GradcheckResult wrong = gradcheck(
      [](const Inputs& in) { return ember::exp(identity_with_scaled_gradient(in[0], 2.0)); }, {x});
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.max_abs_error > 1e-3);
  CHECK(wrong.message.find("input 0") != std::string::npos);
  CHECK(wrong.message.find("[3, 4]") != std::string::npos);
  // a gradient off by a tiny relative amount (1e-3) is still caught
  const GradcheckResult slightly =
      gradcheck([](const Inputs& in) { return identity_with_scaled_gradient(in[0], 1.001); }, {x});
  CHECK_FALSE(slightly.ok);
}

TEST_CASE("gradcheck rejects a gradient that misses one of two inputs") {
  // the second input's path drops its gradient (detach), the first is right
  Tensor a = random_leaf({2, 3}, 91), b = random_leaf({2, 3}, 92);
  const GradcheckResult r =
      gradcheck([](const Inputs& in) { return add(mul(in[0], in[1].detach()), in[1]); }, {a, b});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("input 1") != std::string::npos);
}
