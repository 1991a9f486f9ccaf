// 2-d pooling (engine/ops_pool.cpp): values, indices and gradients against PyTorch 1.13 (baked
// in below), finite-difference gradient checks in f64, and the errors.
//
// Inputs come from a closed formula that PyTorch rebuilds exactly (distinct_input), and outputs
// are projected onto fixed weights (projection_weights) before backward, so each gradient is a
// full vector-Jacobian product. The references came from PyTorch 1.13, for each case:
//   x = (((torch.arange(n) * 7919) % 30011).double() / 1000 - 15).reshape(shape)
//   y = the call named in the case (F = torch.nn.functional; max-pooling with
//       return_indices=True), on x.requires_grad_()
//   r = (((torch.arange(y.numel()) * 13) % 17).double() / 4 - 2).reshape(y.shape)
//   (y * r).sum().backward()  # x.grad is input_grad
// printed with 12 significant digits.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;
using ember::test::check_close;
using ember::test::check_equal;
using ember::test::check_gradients;
using ember::test::f64;
using ember::test::random_leaf;

namespace {

using Inputs = std::vector<Tensor>;

// Element i is ((i * 7919) mod 30011) / 1000 - 15: distinct values at least 0.001 apart (30011
// is prime and larger than any tensor here), so no window of a max-pooling holds a tie, not even
// within a finite-difference step.
Tensor distinct_input(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    values[static_cast<size_t>(i)] = static_cast<double>((i * 7919) % 30011) / 1000 - 15;
  return f64(values, shape);
}

Tensor distinct_leaf(const Shape& shape) {
  return distinct_input(shape).requires_grad_();
}

// Element j is ((j * 13) mod 17) / 4 - 2: quarters in [-2, 2], exact in binary.
Tensor projection_weights(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    values[static_cast<size_t>(j)] = static_cast<double>((j * 13) % 17) / 4 - 2;
  return f64(values, shape);
}

// What PyTorch computed for one call on distinct_input(input_shape).
struct TorchReference {
  Shape input_shape;
  Shape output_shape;
  std::vector<double> values;
  std::vector<int64_t> indices;  // max-pooling only
  std::vector<double> input_grad;
};

// For max-pooling, whose indices are compared too.
void check_against_torch(const std::function<ValuesIndices(const Tensor&)>& pool,
                         const TorchReference& expected) {
  Tensor x = distinct_leaf(expected.input_shape);
  const ValuesIndices out = pool(x);
  REQUIRE(out.values.shape() == expected.output_shape);
  check_close(out.values, expected.values, 1e-10, 1e-10);
  if (!expected.indices.empty()) check_equal(out.indices, expected.indices);
  sum(mul(out.values, projection_weights(out.values.shape()))).backward();
  check_close(x.grad(), expected.input_grad, 1e-10, 1e-10);
}

void check_against_torch(const std::function<Tensor(const Tensor&)>& pool,
                         const TorchReference& expected) {
  check_against_torch([&](const Tensor& x) { return ValuesIndices{pool(x), Tensor()}; }, expected);
}

// Finite-difference check of a pooling of the f64 leaf x.
void check_pool_gradients(const Tensor& x, const std::function<Tensor(const Tensor&)>& pool) {
  check_gradients([&](const Inputs& in) { return pool(in[0]); }, {x});
}

// The message of the ember::Error that `f` throws ("" if it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// against PyTorch

TEST_CASE("max_pool2d matches PyTorch values indices and gradients") {
  SUBCASE("kernel 2") {
    // F.max_pool2d(x, 2)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 2, 3};
    expected.values = {10.422, 8.757, 12.087, 7.498,  13.752, 9.163,
                       12.493, 6.239, 14.158, 12.899, 11.234, 14.564};
    expected.indices = {7, 3, 11, 18, 15, 22, 0, 3, 4, 19, 15, 23};
    expected.input_grad = {0,     0, 0, 1.25,  0,    0, 0, -2,  0,     0, 0, 0.25, 0, 0, 0,
                           -1.75, 0, 0, -0.75, 0,    0, 0, 1.5, 0,     0, 0, 0,    0, 0, 0,
                           0.5,   0, 0, -0.5,  -1.5, 0, 0, 0,   0,     0, 0, 0,    0, 0, 0,
                           0.75,  0, 0, 0,     1.75, 0, 0, 0,   -0.25, 0, 0, 0,    0, 0, 0};
    auto pool = [](const Tensor& x) { return max_pool2d_with_indices(x, {2, 2}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("kernel 3 stride 2 padding 1") {
    // F.max_pool2d(x, 3, 2, 1)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 3};
    expected.values = {10.422, 10.422, 12.087, 10.422, 13.752, 13.752, 7.498,  10.828, 9.163,
                       12.493, 7.904,  14.158, 12.899, 12.899, 14.564, 12.899, 12.899, 14.564};
    expected.indices = {7, 7, 11, 7, 15, 15, 18, 26, 22, 0, 7, 4, 19, 19, 23, 19, 19, 23};
    expected.input_grad = {0,     0, 0, 0,   0,     0, 0, -1.5, 0,  0, 0, 0.25, 0, 0, 0,
                           -0.25, 0, 0, 0.5, 0,     0, 0, -1.5, 0,  0, 0, -0.5, 0, 0, 0,
                           1.75,  0, 0, 0,   -0.25, 0, 0, 0.75, 0,  0, 0, 0,    0, 0, 0,
                           0,     0, 0, 0,   -0.25, 0, 0, 0,    -1, 0, 0, 0,    0, 0, 0};
    auto pool = [](const Tensor& x) { return max_pool2d_with_indices(x, {3, 3}, {2, 2}, {1, 1}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("rectangular kernel with dilation") {
    // F.max_pool2d(x, (2, 3), (1, 2), (1, 1), (2, 1))
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 5, 3};
    expected.values = {10.422, 10.422, 12.087, -2.086, 13.752, 13.752, 10.422, 10.422,
                       12.087, 2.909,  13.752, 13.752, 7.498,  1.244,  9.163,  7.904,
                       7.904,  9.569,  12.493, 11.234, 14.158, 12.899, 12.899, 14.564,
                       0.391,  11.234, 11.234, 12.899, 12.899, 14.564};
    expected.indices = {7, 7, 11, 13, 15, 15, 7,  7,  11, 25, 15, 15, 18, 21, 22,
                        7, 7, 11, 0,  15, 4,  19, 19, 23, 25, 15, 15, 19, 19, 23};
    expected.input_grad = {
        0, 0, 0, 0,   0,    0, 0, -0.75, 0, 0,    0, -1.25, 0, -0.75, 0, 0.25, 0,  0, -1.25, 0, 0,
        2, 1, 0, 0,   1.75, 0, 0, 0,     0, 1.25, 0, 0,     0, -0.75, 0, 0,    -1, 0, 0,     0, -2,
        0, 0, 0, 0.5, 0,    0, 0, 0.25,  0, 0,    0, -0.75, 0, -0.5,  0, 0,    0,  0};
    auto pool = [](const Tensor& x) {
      return max_pool2d_with_indices(x, {2, 3}, {1, 2}, {1, 1}, {2, 1});
    };
    check_against_torch(pool, expected);
  }
  SUBCASE("ceil_mode drops a window that starts in the padding") {
    // F.max_pool2d(x, 2, 2, 1, ceil_mode=True)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 4};
    expected.values = {-15,    0.838,  8.757,  -5.416, 2.503,  10.422, 13.752, 12.087,
                       7.498,  10.828, 9.163,  4.574,  12.493, -1.68,  14.158, -7.934,
                       -0.015, 7.904,  11.234, 9.569,  4.98,   12.899, 6.645,  14.564};
    expected.indices = {0, 2, 3, 5, 6, 7, 15, 11, 18, 26, 22, 29,
                        0, 2, 4, 5, 6, 7, 15, 11, 18, 19, 22, 23};
    expected.input_grad = {-2,    0,     1.25, 0.25, 0,   -0.75, -1.75, 1.5, 0, 0,    0,    -0.5,
                           0,     0,     0,    0.5,  0,   0,     -1.5,  0,   0, 0,    0.75, 0,
                           0,     0,     1.75, 0,    0,   -0.25, -1.25, 0,   2, 0,    1,    0,
                           -1,    -2,    0,    0,    0,   0.25,  0,     0,   0, 1.25, 0,    0,
                           -0.75, -1.75, 0,    0,    1.5, 0.5,   0,     0,   0, 0,    0,    0};
    auto pool = [](const Tensor& x) {
      return max_pool2d_with_indices(x, {2, 2}, {2, 2}, {1, 1}, {1, 1}, true);
    };
    check_against_torch(pool, expected);
  }
  SUBCASE("ceil_mode adds a partial window") {
    // F.max_pool2d(x, 3, 2, 0, ceil_mode=True)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 2, 3};
    expected.values = {10.422, 13.752, 12.087, 10.828, 13.752, 9.163,
                       12.493, 14.158, 14.158, 12.899, 11.234, 14.564};
    expected.indices = {7, 15, 11, 26, 15, 22, 0, 4, 4, 19, 15, 23};
    expected.input_grad = {0,    0, 0, 0, 0,    0, 0, -2,  0,     0, 0, 0.25,  0, 0, 0,
                           -0.5, 0, 0, 0, 0,    0, 0, 1.5, 0,     0, 0, -0.75, 0, 0, 0,
                           0.5,  0, 0, 0, -2,   0, 0, 0,   0,     0, 0, 0,     0, 0, 0,
                           0.75, 0, 0, 0, 1.75, 0, 0, 0,   -0.25, 0, 0, 0,     0, 0, 0};
    auto pool = [](const Tensor& x) {
      return max_pool2d_with_indices(x, {3, 3}, {2, 2}, {0, 0}, {1, 1}, true);
    };
    check_against_torch(pool, expected);
  }
}

TEST_CASE("avg_pool2d matches PyTorch values and gradients") {
  SUBCASE("kernel 3 stride 2 padding 1") {
    // F.avg_pool2d(x, 3, 2, 1)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 3};
    expected.values = {-1.01733333333,  -0.276111111111,  0.278888888889, -0.695777777778,
                       -0.836111111111, 1.66366666667,    -1.02188888889, -1.95022222222,
                       -1.39522222222,  1.19811111111,    -1.95477777778, 1.93477777778,
                       0.960111111111,  -0.0195555555556, 2.48022222222,  1.19355555556,
                       -0.294333333333, 0.260666666667};
    expected.input_grad = {-0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.166666666667,
                           0.0277777777778,
                           0.0277777777778,
                           -0.305555555556,
                           -0.361111111111,
                           -0.0555555555556,
                           0.138888888889,
                           0.194444444444,
                           0.194444444444,
                           -0.0833333333333,
                           -0.277777777778,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           -0.0277777777778,
                           -0.277777777778,
                           -0.25,
                           -0.25,
                           0,
                           0,
                           0.0555555555556,
                           0,
                           -0.0555555555556,
                           -0.222222222222,
                           -0.166666666667,
                           -0.166666666667,
                           0.194444444444,
                           0.277777777778,
                           0.0833333333333,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.0277777777778,
                           0.0555555555556,
                           0.361111111111,
                           0.305555555556,
                           0.388888888889,
                           0.0833333333333,
                           0.0833333333333,
                           -0.138888888889,
                           0.0833333333333,
                           0.222222222222,
                           0.333333333333,
                           0.111111111111,
                           0.111111111111,
                           -0.138888888889,
                           -0.0277777777778,
                           0.111111111111,
                           0,
                           -0.111111111111,
                           -0.111111111111,
                           0,
                           -0.111111111111,
                           -0.111111111111,
                           -0.333333333333,
                           -0.222222222222,
                           -0.222222222222};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("without padding in the count") {
    // F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 3};
    expected.values = {
        -2.289,         -0.414166666667, 0.418333333333, -1.04366666667,   -0.836111111111,
        1.66366666667,  -2.29925,        -2.92533333333, -2.09283333333,   2.69575,
        -2.93216666667, 2.90216666667,   1.44016666667,  -0.0195555555556, 2.48022222222,
        2.6855,         -0.4415,         0.391};
    expected.input_grad = {-0.5,
                           -0.291666666667,
                           0.208333333333,
                           0.25,
                           0.0416666666667,
                           0.0416666666667,
                           -0.625,
                           -0.611111111111,
                           0.0138888888889,
                           0.222222222222,
                           0.208333333333,
                           0.208333333333,
                           -0.125,
                           -0.319444444444,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           0,
                           -0.277777777778,
                           -0.277777777778,
                           -0.361111111111,
                           -0.0833333333333,
                           -0.0833333333333,
                           0.125,
                           0.0416666666667,
                           -0.0833333333333,
                           -0.333333333333,
                           -0.25,
                           -0.25,
                           0.4375,
                           0.5625,
                           0.125,
                           0.0833333333333,
                           -0.0416666666667,
                           -0.0416666666667,
                           0.229166666667,
                           0.576388888889,
                           0.347222222222,
                           0.416666666667,
                           0.0694444444444,
                           0.0694444444444,
                           -0.208333333333,
                           0.0138888888889,
                           0.222222222222,
                           0.333333333333,
                           0.111111111111,
                           0.111111111111,
                           -0.208333333333,
                           -0.152777777778,
                           0.0555555555556,
                           -0.166666666667,
                           -0.222222222222,
                           -0.222222222222,
                           0,
                           -0.166666666667,
                           -0.166666666667,
                           -0.5,
                           -0.333333333333,
                           -0.333333333333};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false, false); };
    check_against_torch(pool, expected);
  }
  SUBCASE("ceil_mode clips the last window at the padded border") {
    // F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 4};
    expected.values = {-1.01733333333,  -0.276111111111,  0.278888888889, 1.11183333333,
                       -0.695777777778, -0.836111111111,  1.66366666667,  -0.2105,
                       -1.02188888889,  -1.95022222222,   -1.39522222222, -1.3925,
                       1.19811111111,   -1.95477777778,   1.93477777778,  0.2725,
                       0.960111111111,  -0.0195555555556, 2.48022222222,  3.53233333333,
                       1.19355555556,   -0.294333333333,  0.260666666667, 2.77};
    expected.input_grad = {-0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.166666666667,
                           0.0277777777778,
                           -0.0972222222222,
                           -0.416666666667,
                           -0.111111111111,
                           0.305555555556,
                           0.388888888889,
                           0.0833333333333,
                           -0.125,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.222222222222,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.361111111111,
                           0,
                           0.361111111111,
                           0.5,
                           0.138888888889,
                           0.0138888888889,
                           -0.166666666667,
                           0.0277777777778,
                           0.194444444444,
                           0.277777777778,
                           0.0833333333333,
                           0.0416666666667,
                           -0.138888888889,
                           0.0833333333333,
                           0.222222222222,
                           0.333333333333,
                           0.111111111111,
                           0.111111111111,
                           -0.25,
                           -0.25,
                           0,
                           0.25,
                           0.25,
                           0.291666666667,
                           -0.111111111111,
                           -0.333333333333,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.180555555556,
                           -0.194444444444,
                           -0.611111111111,
                           -0.416666666667,
                           -0.111111111111,
                           0.305555555556,
                           0.430555555556,
                           -0.0833333333333,
                           -0.277777777778,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.25};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true); };
    check_against_torch(pool, expected);
  }
  SUBCASE("ceil_mode without padding in the count") {
    // F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 4};
    expected.values = {-2.289,         -0.414166666667,  0.418333333333, 3.3355,
                       -1.04366666667, -0.836111111111,  1.66366666667,  -0.421,
                       -2.29925,       -2.92533333333,   -2.09283333333, -4.1775,
                       2.69575,        -2.93216666667,   2.90216666667,  0.8175,
                       1.44016666667,  -0.0195555555556, 2.48022222222,  7.06466666667,
                       2.6855,         -0.4415,          0.391,          8.31};
    expected.input_grad = {-0.5,
                           -0.291666666667,
                           0.208333333333,
                           0.25,
                           0.0416666666667,
                           -0.333333333333,
                           -0.791666666667,
                           -0.416666666667,
                           0.375,
                           0.472222222222,
                           0.0972222222222,
                           -0.444444444444,
                           -0.291666666667,
                           -0.125,
                           0.166666666667,
                           0.222222222222,
                           0.0555555555556,
                           -0.111111111111,
                           -0.666666666667,
                           -0.208333333333,
                           0.458333333333,
                           0.638888888889,
                           0.180555555556,
                           -0.111111111111,
                           -0.375,
                           -0.0833333333333,
                           0.291666666667,
                           0.416666666667,
                           0.125,
                           0,
                           -0.3125,
                           0.0208333333333,
                           0.333333333333,
                           0.5,
                           0.166666666667,
                           0.166666666667,
                           -0.479166666667,
                           -0.368055555556,
                           0.111111111111,
                           0.416666666667,
                           0.305555555556,
                           0.388888888889,
                           -0.166666666667,
                           -0.388888888889,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.222222222222,
                           -0.354166666667,
                           -0.868055555556,
                           -0.513888888889,
                           -0.125,
                           0.388888888889,
                           0.722222222222,
                           -0.1875,
                           -0.479166666667,
                           -0.291666666667,
                           -0.0416666666667,
                           0.25,
                           0.5};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true, false); };
    check_against_torch(pool, expected);
  }
  SUBCASE("divisor_override") {
    // F.avg_pool2d(x, 2, padding=1, divisor_override=3)
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 3, 4};
    expected.values = {-5,
                       -2.081,
                       -1.526,
                       -1.80533333333,
                       -2.50066666667,
                       0.833,
                       1.943,
                       3.88866666667,
                       0.829333333333,
                       -2.51066666667,
                       -1.40066666667,
                       -2.785,
                       4.16433333333,
                       -3.75966666667,
                       6.799,
                       -2.64466666667,
                       -4.17933333333,
                       -2.52433333333,
                       -1.41433333333,
                       2.21,
                       -0.849333333333,
                       4.13566666667,
                       -4.758,
                       5.54};
    expected.input_grad = {-0.666666666667,
                           0.416666666667,
                           0.416666666667,
                           0.0833333333333,
                           0.0833333333333,
                           -0.25,
                           -0.583333333333,
                           0.5,
                           0.5,
                           0.166666666667,
                           0.166666666667,
                           -0.166666666667,
                           -0.583333333333,
                           0.5,
                           0.5,
                           0.166666666667,
                           0.166666666667,
                           -0.166666666667,
                           -0.5,
                           0.583333333333,
                           0.583333333333,
                           0.25,
                           0.25,
                           -0.0833333333333,
                           -0.5,
                           0.583333333333,
                           0.583333333333,
                           0.25,
                           0.25,
                           -0.0833333333333,
                           -0.416666666667,
                           0.666666666667,
                           0.666666666667,
                           0.333333333333,
                           0.333333333333,
                           0,
                           -0.333333333333,
                           -0.666666666667,
                           -0.666666666667,
                           0.416666666667,
                           0.416666666667,
                           0.0833333333333,
                           -0.333333333333,
                           -0.666666666667,
                           -0.666666666667,
                           0.416666666667,
                           0.416666666667,
                           0.0833333333333,
                           -0.25,
                           -0.583333333333,
                           -0.583333333333,
                           0.5,
                           0.5,
                           0.166666666667,
                           -0.25,
                           -0.583333333333,
                           -0.583333333333,
                           0.5,
                           0.5,
                           0.166666666667};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {2, 2}, {}, {1, 1}, false, true, 3); };
    check_against_torch(pool, expected);
  }
  SUBCASE("rectangular kernel and stride") {
    // F.avg_pool2d(x, (2, 3), (1, 2))
    TorchReference expected;
    expected.input_shape = {1, 2, 5, 6};
    expected.output_shape = {1, 2, 4, 2};
    expected.values = {-3.33133333333,  -2.49883333333,   -0.833833333333, -0.00133333333333,
                       -3.33816666667,  2.49616666667,    -0.840666666667, -0.00816666666667,
                       -0.8475,         -0.015,           -3.35183333333,  -2.51933333333,
                       -0.854333333333, -0.0218333333333, 1.64316666667,   -2.52616666667};
    expected.input_grad = {-0.333333333333,
                           -0.333333333333,
                           -0.125,
                           0.208333333333,
                           0.208333333333,
                           0,
                           -0.291666666667,
                           -0.291666666667,
                           -0.208333333333,
                           0.0833333333333,
                           0.0833333333333,
                           0,
                           -0.25,
                           -0.25,
                           -0.125,
                           0.125,
                           0.125,
                           0,
                           -0.208333333333,
                           -0.208333333333,
                           -0.0416666666667,
                           0.166666666667,
                           0.166666666667,
                           0,
                           0.0833333333333,
                           0.0833333333333,
                           0,
                           -0.0833333333333,
                           -0.0833333333333,
                           0,
                           -0.25,
                           -0.25,
                           0.0416666666667,
                           0.291666666667,
                           0.291666666667,
                           0,
                           -0.125,
                           -0.125,
                           0.125,
                           0.25,
                           0.25,
                           0,
                           -0.0833333333333,
                           -0.0833333333333,
                           0.208333333333,
                           0.291666666667,
                           0.291666666667,
                           0,
                           -0.0416666666667,
                           -0.0416666666667,
                           0.291666666667,
                           0.333333333333,
                           0.333333333333,
                           0,
                           0.166666666667,
                           0.166666666667,
                           0.166666666667,
                           0,
                           0,
                           0};
    auto pool = [](const Tensor& x) { return avg_pool2d(x, {2, 3}, {1, 2}); };
    check_against_torch(pool, expected);
  }
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch values and gradients") {
  SUBCASE("7x5 to 3x2") {
    // F.adaptive_avg_pool2d(x, (3, 2))
    TorchReference expected;
    expected.input_shape = {1, 2, 7, 5};
    expected.output_shape = {1, 2, 3, 2};
    expected.values = {-0.831555555556, -1.66633333333,   1.66366666667,   -2.50566666667,
                       0.824333333333,  -0.0104444444444, -0.434666666667, -1.26944444444,
                       -1.274,          1.22577777778,    -2.11333333333,  0.386444444444};
    expected.input_grad = {-0.222222222222,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.138888888889,
                           -0.222222222222,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.138888888889,
                           -0.194444444444,
                           -0.194444444444,
                           -0.138888888889,
                           0.0555555555556,
                           0.0555555555556,
                           0.0277777777778,
                           0.0277777777778,
                           -0.0555555555556,
                           -0.0833333333333,
                           -0.0833333333333,
                           -0.166666666667,
                           -0.166666666667,
                           -0.0833333333333,
                           0.0833333333333,
                           0.0833333333333,
                           -0.194444444444,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           -0.194444444444,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           0.0555555555556,
                           0.0555555555556,
                           0,
                           -0.0555555555556,
                           -0.0555555555556,
                           0.0555555555556,
                           0.0555555555556,
                           0,
                           -0.0555555555556,
                           -0.0555555555556,
                           -0.111111111111,
                           -0.111111111111,
                           0.0277777777778,
                           0.138888888889,
                           0.138888888889,
                           -0.166666666667,
                           -0.166666666667,
                           0.0277777777778,
                           0.194444444444,
                           0.194444444444,
                           -0.0833333333333,
                           -0.0833333333333,
                           0.0833333333333,
                           0.166666666667,
                           0.166666666667,
                           0.0833333333333,
                           0.0833333333333,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.0277777777778,
                           0.0833333333333,
                           0.0833333333333,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.0277777777778};
    auto pool = [](const Tensor& x) { return adaptive_avg_pool2d(x, {3, 2}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("5x7 to 2x3") {
    // F.adaptive_avg_pool2d(x, (2, 3))
    TorchReference expected;
    expected.input_shape = {2, 1, 5, 7};
    expected.output_shape = {2, 1, 2, 3};
    expected.values = {-1.66633333333, 0.833444444444,  -3.33588888889, 2.49388888889,
                       -1.67544444444, 0.824333333333,  -1.26944444444, 1.23033333333,
                       0.395555555556, -0.443777777778, 2.056,          1.22122222222};
    expected.input_grad = {-0.222222222222,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.166666666667,
                           0.0277777777778,
                           0.0277777777778,
                           -0.222222222222,
                           -0.222222222222,
                           -0.0833333333333,
                           0.138888888889,
                           0.166666666667,
                           0.0277777777778,
                           0.0277777777778,
                           -0.305555555556,
                           -0.305555555556,
                           -0.361111111111,
                           -0.0555555555556,
                           0.138888888889,
                           0.194444444444,
                           0.194444444444,
                           -0.0833333333333,
                           -0.0833333333333,
                           -0.277777777778,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           -0.0833333333333,
                           -0.0833333333333,
                           -0.277777777778,
                           -0.194444444444,
                           -0.0277777777778,
                           0.166666666667,
                           0.166666666667,
                           0.0555555555556,
                           0.0555555555556,
                           0,
                           -0.0555555555556,
                           -0.222222222222,
                           -0.166666666667,
                           -0.166666666667,
                           0.0555555555556,
                           0.0555555555556,
                           0,
                           -0.0555555555556,
                           -0.222222222222,
                           -0.166666666667,
                           -0.166666666667,
                           0.25,
                           0.25,
                           0.277777777778,
                           0.0277777777778,
                           -0.166666666667,
                           -0.194444444444,
                           -0.194444444444,
                           0.194444444444,
                           0.194444444444,
                           0.277777777778,
                           0.0833333333333,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.0277777777778,
                           0.194444444444,
                           0.194444444444,
                           0.277777777778,
                           0.0833333333333,
                           0.0555555555556,
                           -0.0277777777778,
                           -0.0277777777778};
    auto pool = [](const Tensor& x) { return adaptive_avg_pool2d(x, {2, 3}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("6x4 to 3x2 divides evenly") {
    // F.adaptive_avg_pool2d(x, (3, 2))
    TorchReference expected;
    expected.input_shape = {1, 2, 6, 4};
    expected.output_shape = {1, 2, 3, 2};
    expected.values = {-10.208, 5.63,   -6.878, 8.96,     -3.548, -2.7155,
                       -0.218,  0.6145, 3.112,  -3.55825, 6.442,  -7.731};
    expected.input_grad = {-0.5,    -0.5,    0.3125,  0.3125,  -0.5,    -0.5,    0.3125,  0.3125,
                           0.0625,  0.0625,  -0.1875, -0.1875, 0.0625,  0.0625,  -0.1875, -0.1875,
                           -0.4375, -0.4375, 0.375,   0.375,   -0.4375, -0.4375, 0.375,   0.375,
                           0.125,   0.125,   -0.125,  -0.125,  0.125,   0.125,   -0.125,  -0.125,
                           -0.375,  -0.375,  0.4375,  0.4375,  -0.375,  -0.375,  0.4375,  0.4375,
                           0.1875,  0.1875,  -0.0625, -0.0625, 0.1875,  0.1875,  -0.0625, -0.0625};
    auto pool = [](const Tensor& x) { return adaptive_avg_pool2d(x, {3, 2}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("to 1x1") {
    // F.adaptive_avg_pool2d(x, 1)
    TorchReference expected;
    expected.input_shape = {1, 2, 3, 4};
    expected.output_shape = {1, 2, 1, 1};
    expected.values = {-1.4565, -1.46333333333};
    expected.input_grad = {-0.166666666667, -0.166666666667, -0.166666666667, -0.166666666667,
                           -0.166666666667, -0.166666666667, -0.166666666667, -0.166666666667,
                           -0.166666666667, -0.166666666667, -0.166666666667, -0.166666666667,
                           0.104166666667,  0.104166666667,  0.104166666667,  0.104166666667,
                           0.104166666667,  0.104166666667,  0.104166666667,  0.104166666667,
                           0.104166666667,  0.104166666667,  0.104166666667,  0.104166666667};
    auto pool = [](const Tensor& x) { return adaptive_avg_pool2d(x, {1, 1}); };
    check_against_torch(pool, expected);
  }
  SUBCASE("3x2 to 5x4 repeats inputs") {
    // F.adaptive_avg_pool2d(x, (5, 4))
    TorchReference expected;
    expected.input_shape = {1, 1, 3, 2};
    expected.output_shape = {1, 1, 5, 4};
    expected.values = {-15,    -15,    -7.081,  -7.081,  -7.081, -7.081,  0.838,
                       0.838,  0.838,  0.838,   8.757,   8.757,  -6.2485, -6.2485,
                       1.6705, 1.6705, -13.335, -13.335, -5.416, -5.416};
    expected.input_grad = {-0.875, -0.5, 0.5, 1, -2.625, 2};
    auto pool = [](const Tensor& x) { return adaptive_avg_pool2d(x, {5, 4}); };
    check_against_torch(pool, expected);
  }
}

// torchvision's ResNet stem: nn.MaxPool2d(kernel_size=3, stride=2, padding=1) after the 7x7
// convolution, 112x112 -> 56x56 for a 224x224 image. PyTorch's figures for distinct_input.
TEST_CASE("max_pool2d of the ResNet stem takes 112 to 56 as PyTorch does") {
  Tensor x = distinct_leaf({1, 2, 112, 112});
  const ValuesIndices out = max_pool2d_with_indices(x, {3, 3}, {2, 2}, {1, 1});
  REQUIRE(out.values.shape() == Shape{1, 2, 56, 56});
  Tensor r = projection_weights(out.values.shape());
  CHECK(sum(out.values).item<double>() == doctest::Approx(80616.817).epsilon(1e-12));
  CHECK(sum(mul(out.values, r)).item<double>() == doctest::Approx(-35.0075).epsilon(1e-12));
  // (linear output index, value, index within the plane)
  const std::vector<double> values = out.values.to_vector<double>();
  const std::vector<int64_t> indices = out.indices.to_vector<int64_t>();
  struct Sample {
    size_t at;
    double value;
    int64_t index;
  };
  for (const Sample& s :
       {Sample{0, 9.528, 113}, Sample{55, 10.299, 223}, Sample{3135, 12.101, 12430},
        Sample{3136, 14.537, 0}, Sample{6271, 11.627, 12430}, Sample{1000, 13.974, 4017},
        Sample{4321, 14.349, 4722}}) {
    INFO("output element " << s.at);
    CHECK(values[s.at] == doctest::Approx(s.value).epsilon(1e-12));
    CHECK(indices[s.at] == s.index);
  }

  sum(mul(out.values, r)).backward();
  const Tensor dx = x.grad();
  CHECK(sum(mul(dx, projection_weights(dx.shape()))).item<double>() ==
        doctest::Approx(57.75).epsilon(1e-12));
  CHECK(sum(ember::abs(dx)).item<double>() == doctest::Approx(4849).epsilon(1e-12));
  CHECK(sum(ne(dx, 0.0)).item<int64_t>() == 3591);  // inputs that are some window's maximum
  const std::vector<double> grad = dx.to_vector<double>();
  CHECK(grad[15] == -1.5);
  CHECK(grad[18] == 1.75);
  CHECK(grad[659] == 0.25);
  CHECK(grad[13893] == -0.5);
  CHECK(grad[25084] == 1);
}

TEST_CASE("max_pool2d lets NaN win and takes the first input when all are -inf as PyTorch") {
  // F.max_pool2d(torch.tensor([1, nan, 3, nan, 2, 0, nan, 5.]).reshape(1, 1, 2, 4), 2,
  // return_indices=True): values [nan, nan], indices [1, 6] (the last NaN of a window)
  const ValuesIndices with_nan =
      max_pool2d_with_indices(f64({1, NAN, 3, NAN, 2, 0, NAN, 5}, {1, 1, 2, 4}), {2, 2});
  check_close(with_nan.values, {NAN, NAN});
  check_equal(with_nan.indices, {1, 6});

  // F.max_pool2d(torch.full((1, 1, 2, 3), -inf), 2, 1, 1, return_indices=True): -inf everywhere,
  // and each window's first input as the index
  const ValuesIndices all_minus_infinity =
      max_pool2d_with_indices(full({1, 1, 2, 3}, -INFINITY, DType::F64), {2, 2}, {1, 1}, {1, 1});
  check_close(all_minus_infinity.values, std::vector<double>(12, -INFINITY));
  check_equal(all_minus_infinity.indices, {0, 0, 1, 2, 0, 0, 1, 2, 3, 3, 4, 5});
}

// ---------------------------------------------------------------------------------------------
// finite differences (f64)

TEST_CASE("max_pool2d matches finite differences") {
  Tensor x = distinct_leaf({2, 3, 7, 6});
  SUBCASE("kernel 2") {
    auto pool = [](const Tensor& t) { return max_pool2d(t, {2, 2}); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("overlapping windows with stride and padding") {
    auto pool = [](const Tensor& t) { return max_pool2d(t, {3, 3}, {2, 2}, {1, 1}); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("stride 1 so that inputs win several windows") {
    auto pool = [](const Tensor& t) { return max_pool2d(t, {3, 2}, {1, 1}); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("dilation") {
    auto pool = [](const Tensor& t) { return max_pool2d(t, {2, 3}, {1, 2}, {1, 1}, {2, 2}); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("ceil_mode") {
    auto pool = [](const Tensor& t) { return max_pool2d(t, {3, 3}, {2, 2}, {0, 1}, {1, 1}, true); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("unbatched and non-contiguous input") {
    auto pool = [](const Tensor& t) { return max_pool2d(t.select(0, 1).transpose(1, 2), {2, 2}); };
    check_pool_gradients(x, pool);
  }
}

TEST_CASE("avg_pool2d matches finite differences") {
  Tensor x = random_leaf({2, 3, 7, 6}, 11);
  SUBCASE("padding counted") {
    auto pool = [](const Tensor& t) { return avg_pool2d(t, {3, 3}, {2, 2}, {1, 1}); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("padding not counted") {
    auto pool = [](const Tensor& t) { return avg_pool2d(t, {3, 3}, {2, 2}, {1, 1}, false, false); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("ceil_mode with padding counted") {
    auto pool = [](const Tensor& t) { return avg_pool2d(t, {3, 2}, {2, 2}, {1, 1}, true, true); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("ceil_mode with padding not counted") {
    auto pool = [](const Tensor& t) { return avg_pool2d(t, {3, 2}, {2, 2}, {1, 1}, true, false); };
    check_pool_gradients(x, pool);
  }
  SUBCASE("divisor_override") {
    auto pool = [](const Tensor& t) {
      return avg_pool2d(t, {2, 2}, {1, 1}, {1, 0}, false, true, 7);
    };
    check_pool_gradients(x, pool);
  }
  SUBCASE("unbatched and non-contiguous input") {
    auto pool = [](const Tensor& t) { return avg_pool2d(t.select(0, 0).transpose(1, 2), {2, 3}); };
    check_pool_gradients(x, pool);
  }
}

TEST_CASE("adaptive_avg_pool2d matches finite differences") {
  SUBCASE("sizes that divide") {
    auto pool = [](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 2}); };
    check_pool_gradients(random_leaf({2, 2, 6, 4}, 12), pool);
  }
  SUBCASE("7 to 3 and 5 to 2") {
    auto pool = [](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 2}); };
    check_pool_gradients(random_leaf({2, 2, 7, 5}, 13), pool);
  }
  SUBCASE("output 1x1") {
    auto pool = [](const Tensor& t) { return adaptive_avg_pool2d(t, {1, 1}); };
    check_pool_gradients(random_leaf({2, 3, 5, 4}, 14), pool);
  }
  SUBCASE("output larger than the input") {
    auto pool = [](const Tensor& t) { return adaptive_avg_pool2d(t, {5, 4}); };
    check_pool_gradients(random_leaf({1, 2, 3, 2}, 15), pool);
  }
  SUBCASE("unbatched input") {
    auto pool = [](const Tensor& t) { return adaptive_avg_pool2d(t, {2, 3}); };
    check_pool_gradients(random_leaf({3, 5, 7}, 16), pool);
  }
}

// ---------------------------------------------------------------------------------------------
// shapes, dtypes and errors

TEST_CASE("pooling keeps unbatched inputs unbatched and empty batches empty") {
  Tensor x = distinct_input({3, 5, 6});
  const Tensor batched = x.unsqueeze(0);
  CHECK(max_pool2d(x, {2, 2}).shape() == Shape{3, 2, 3});
  check_close(max_pool2d(x, {2, 2}), max_pool2d(batched, {2, 2}).squeeze(0));
  CHECK(max_pool2d_with_indices(x, {2, 2}).indices.shape() == Shape{3, 2, 3});
  check_close(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}),
              avg_pool2d(batched, {3, 3}, {2, 2}, {1, 1}).squeeze(0));
  check_close(adaptive_avg_pool2d(x, {2, 4}), adaptive_avg_pool2d(batched, {2, 4}).squeeze(0));

  Tensor empty_batch = zeros({0, 2, 8, 8}).requires_grad_();
  Tensor y = max_pool2d(empty_batch, {2, 2});
  CHECK(y.shape() == Shape{0, 2, 4, 4});
  CHECK(avg_pool2d(empty_batch, {3, 3}, {2, 2}, {1, 1}).shape() == Shape{0, 2, 4, 4});
  CHECK(adaptive_avg_pool2d(empty_batch, {1, 1}).shape() == Shape{0, 2, 1, 1});
  sum(y).backward();
  CHECK(empty_batch.grad().shape() == Shape{0, 2, 8, 8});
}

TEST_CASE("pooling in f32 agrees with f64") {
  Tensor x = random_leaf({2, 3, 9, 8}, 17).detach();
  Tensor x32 = x.to(DType::F32);
  const ValuesIndices max64 = max_pool2d_with_indices(x, {3, 3}, {2, 2}, {1, 1});
  const ValuesIndices max32 = max_pool2d_with_indices(x32, {3, 3}, {2, 2}, {1, 1});
  CHECK(max32.values.dtype() == DType::F32);
  check_close(max32.values, max64.values, 1e-6, 1e-6);
  CHECK(max32.indices.to_vector<int64_t>() == max64.indices.to_vector<int64_t>());
  check_close(avg_pool2d(x32, {3, 2}, {2, 1}, {1, 1}, true, false),
              avg_pool2d(x, {3, 2}, {2, 1}, {1, 1}, true, false), 1e-6, 1e-5);
  check_close(adaptive_avg_pool2d(x32, {4, 3}), adaptive_avg_pool2d(x, {4, 3}), 1e-6, 1e-5);
}

TEST_CASE("pooling errors name the op and the numbers") {
  Tensor x = zeros({1, 2, 4, 4});
  CHECK(error_of([&] { max_pool2d(x, {0, 3}); }) == "max_pool2d: kernel [0, 3] must be positive");
  CHECK(error_of([&] {
          max_pool2d(x, {2, 2}, {0, 2});
        }) == "max_pool2d: stride [0, 2] must be positive (or {} for stride = kernel)");
  CHECK(error_of([&] {
          avg_pool2d(x, {2, 2}, {}, {-1, 0});
        }) == "avg_pool2d: padding [-1, 0] must not be negative");
  CHECK(error_of([&] {
          max_pool2d(x, {2, 2}, {}, {}, {1, 0});
        }) == "max_pool2d: dilation [1, 0] must be positive");
  CHECK(error_of([&] {
          max_pool2d(x, {3, 3}, {1, 1}, {2, 1});
        }) == "max_pool2d: padding [2, 1] must be at most half the kernel [3, 3]");
  CHECK(error_of([&] {
          avg_pool2d(x, {2, 2}, {}, {0, 0}, false, true, -2);
        }) == "avg_pool2d: divisor_override -2 must be positive, or 0 for the window's size");
  CHECK(error_of([&] {
          adaptive_avg_pool2d(x, {0, 2});
        }) == "adaptive_avg_pool2d: output_size [0, 2] must be positive");

  const std::string too_small = error_of([&] { max_pool2d(zeros({2, 3, 3}), {2, 4}); });
  CHECK(too_small.find("max_pool2d: input [2, 3, 3] with kernel [2, 4]") == 0);
  CHECK(too_small.find("gives an output of 1 x 0") != std::string::npos);

  CHECK(error_of([&] {
          avg_pool2d(zeros({4, 4}), {2, 2});
        }) == "avg_pool2d: expected a 3-d [C, H, W] or 4-d [N, C, H, W] input, got [4, 4]");
  CHECK(error_of([&] {
          max_pool2d(zeros({1, 0, 4, 4}), {2, 2});
        }) ==
        "max_pool2d: input [1, 0, 4, 4] has an empty channel or spatial dimension; only the "
        "batch may be empty");
  CHECK(error_of([&] {
          adaptive_avg_pool2d(zeros({1, 4, 4}, DType::I64), {1, 1});
        }).find("adaptive_avg_pool2d: expected a floating-point tensor") == 0);
}
