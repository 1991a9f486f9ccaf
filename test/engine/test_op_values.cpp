// Forward values of ember's ops against numbers computed by hand (the reasoning is in the
// comments) or, where marked "matches torch", taken from PyTorch 1.13 in float64. Also the
// Philox known-answer test, the statistics of the random generators, and the error messages
// that name the op and the shapes involved.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/philox.h"
#include "support.h"

using namespace ember;
using ember::test::check_close;
using ember::test::check_equal;
using ember::test::f64;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kE = 2.718281828459045;

Tensor i64(const std::vector<int64_t>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}
Tensor i32(const std::vector<int32_t>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}
Tensor u8(const std::vector<uint8_t>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}
Tensor f32(const std::vector<float>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}

// `fn` throws ember::Error and its message contains every one of `parts`.
void check_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  std::string message;
  bool threw = false;
  try {
    fn();
  } catch (const Error& e) {
    threw = true;
    message = e.what();
  }
  REQUIRE_MESSAGE(threw, "expected an ember::Error");
  INFO("message: " << message);
  for (const std::string& p : parts) {
    INFO("looking for: " << p);
    CHECK(message.find(p) != std::string::npos);
  }
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// unary

TEST_CASE("elementary unary ops give hand computed values") {
  Tensor x = f64({-2.0, -0.5, 0.0, 1.0, 4.0});
  check_close(neg(x), {2.0, 0.5, -0.0, -1.0, -4.0});
  check_close(ember::abs(x), {2.0, 0.5, 0.0, 1.0, 4.0});
  check_close(relu(x), {0.0, 0.0, 0.0, 1.0, 4.0});
  check_close(ember::exp(f64({0.0, 1.0, -1.0, std::log(5.0)})), {1.0, kE, 1 / kE, 5.0}, 1e-12,
              1e-12);
  check_close(ember::log(f64({1.0, kE, 0.25, 0.0})), {0.0, 1.0, -2 * std::log(2.0), -INFINITY},
              1e-12, 1e-12);
  check_close(ember::sqrt(f64({0.0, 4.0, 2.25})), {0.0, 2.0, 1.5});
  check_close(rsqrt(f64({4.0, 0.25, 1.0})), {0.5, 2.0, 1.0});
  check_close(ember::tanh(f64({0.0, 1.0, -2.0})),  // matches torch
              {0.0, 0.7615941559557649, -0.9640275800758169}, 1e-12, 1e-12);
  check_close(ember::log(f64({-1.0})), {kNaN});
}

TEST_CASE("pow by scalar gives hand computed values") {
  Tensor x = f64({0.25, 1.0, 4.0});
  check_close(ember::pow(x, 2.0), {0.0625, 1.0, 16.0});
  check_close(ember::pow(f64({-2.0, 3.0}), 3.0), {-8.0, 27.0});
  check_close(ember::pow(x, 0.5), {0.5, 1.0, 2.0});
  check_close(ember::pow(x, -1.5), {8.0, 1.0, 0.125});                   // 4^-1.5 = 1 / 8
  check_close(ember::pow(f64({0.0, -3.0, 5.0}), 0.0), {1.0, 1.0, 1.0});  // as std::pow and torch
}

TEST_CASE("gelu gives the exact and the tanh approximated values") {
  Tensor x = f64({-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0});
  // matches torch.nn.functional.gelu in float64; gelu(1) = Phi(1) = 0.8413447460685429
  check_close(gelu(x),
              {-0.04550026389635842, -0.15865525393145702, -0.15426876936299344, 0.0,
               0.34573123063700656, 0.8413447460685429, 1.9544997361036416},
              1e-12, 1e-12);
  // matches torch gelu(approximate="tanh")
  check_close(gelu(x, "tanh"),
              {-0.04540230591222494, -0.15880800939172324, -0.15428599017485606, 0.0,
               0.34571400982514394, 0.8411919906082768, 1.954597694087775},
              1e-12, 1e-12);
  check_close(gelu(f32({1.0f}), "tanh"), {0.8411919906082768}, 1e-6, 1e-6);
  check_error([] { gelu(f64({1.0}), "erf"); }, {"gelu", "erf"});
}

TEST_CASE("sigmoid gives known values and saturates without overflow") {
  // matches torch.sigmoid
  check_close(
      sigmoid(f64({-2.0, -1.0, 0.0, 1.0, 2.0})),
      {0.11920292202211755, 0.2689414213699951, 0.5, 0.7310585786300049, 0.8807970779778823}, 1e-12,
      1e-12);
  // 1 / (1 + e^30) = 9.357622968839299e-14 (torch): the small side keeps its precision
  check_close(sigmoid(f64({-30.0})), {9.357622968839299e-14}, 0, 1e-10);
  // far out on either side: exactly 0 and 1, never NaN from inf / inf
  for (DType dt : {DType::F64, DType::F32}) {
    INFO("dtype " << dtype_name(dt));
    Tensor big = f64({-1000.0, -800.0, -100.0, 100.0, 800.0, 1000.0}).to(dt);
    const std::vector<double> y = sigmoid(big).to_vector<double>();
    for (double v : y) {
      CHECK_FALSE(std::isnan(v));
      CHECK(v >= 0.0);
      CHECK(v <= 1.0);
    }
    CHECK(y[0] == 0.0);
    CHECK(y[1] == 0.0);
    CHECK(y[2] < 1e-40);
    CHECK(y[3] == 1.0);
    CHECK(y[4] == 1.0);
    CHECK(y[5] == 1.0);
  }
}

TEST_CASE("relu and clamp propagate NaN") {
  Tensor x = f64({kNaN, -1.0, 2.0});
  check_close(relu(x), {kNaN, 0.0, 2.0});
  check_close(clamp(x, -0.5, 0.5), {kNaN, -0.5, 0.5});
  check_close(clamp(x, 0.0, INFINITY), {kNaN, 0.0, 2.0});
  check_close(relu(f32({NAN, -1.0f})), {kNaN, 0.0});
  CHECK(std::isnan(relu(f64({kNaN})).item<double>()));
}

TEST_CASE("clamp limits to the bounds and one sided bounds stay open") {
  Tensor x = f64({-3.0, -0.5, 0.0, 0.7, 5.0});
  check_close(clamp(x, -1.0, 1.0), {-1.0, -0.5, 0.0, 0.7, 1.0});
  check_close(clamp(x, -1.0, INFINITY), {-1.0, -0.5, 0.0, 0.7, 5.0});
  check_close(clamp(x, -INFINITY, 0.5), {-3.0, -0.5, 0.0, 0.5, 0.5});
  check_close(clamp(f64({-INFINITY, INFINITY}), -2.0, 2.0), {-2.0, 2.0});
  check_error([] { clamp(f64({1.0}), kNaN, 1.0); }, {"clamp", "NaN"});
}

TEST_CASE("clamp with lo above hi gives hi everywhere") {
  // min(max(x, lo), hi) with lo > hi is hi for every x, as torch.clamp
  check_close(clamp(f64({-1.0, 0.5, 1.5, 3.0}), 2.0, 1.0), {1.0, 1.0, 1.0, 1.0});
  check_close(clamp(f32({-1.0f, 0.5f, 3.0f}), 2.0, 1.0), {1.0, 1.0, 1.0});
}

TEST_CASE("scalar add mul and division give exact values") {
  Tensor x = f64({1.0, -2.0, 0.5});
  check_close(add(x, 1.5), {2.5, -0.5, 2.0});
  check_close(mul(x, -2.0), {-2.0, 4.0, -1.0});
  check_close(x + 1.0, {2.0, -1.0, 1.5});
  check_close(1.0 + x, {2.0, -1.0, 1.5});
  check_close(x - 1.0, {0.0, -3.0, -0.5});
  check_close(1.0 - x, {0.0, 3.0, 0.5});
  check_close(x * 4.0, {4.0, -8.0, 2.0});
  check_close(4.0 * x, {4.0, -8.0, 2.0});
  check_close(x / 4.0, {0.25, -0.5, 0.125});
  check_close(4.0 / x, {4.0, -2.0, 8.0});
  // exact division, not multiplication by a rounded reciprocal: 3 / 3 is exactly 1 and
  // 0.3 / 0.1 is the correctly rounded quotient
  CHECK((f64({3.0}) / 3.0).item<double>() == 1.0);
  CHECK((f64({0.3}) / 0.1).item<double>() == 0.3 / 0.1);
  CHECK((f32({0.3f}) / 0.1).item<float>() == 0.3f / 0.1f);
  check_close(1.0 / f64({0.0, -0.0}), {INFINITY, -INFINITY});
}

// ---------------------------------------------------------------------------------------------
// binary

TEST_CASE("binary ops broadcast like numpy") {
  Tensor a = f64({1.0, 2.0, 3.0}, {3, 1});
  Tensor b = f64({10.0, 20.0}, {1, 2});
  Tensor s = f64({2.0}, {});
  Tensor sum_ab = add(a, b);
  CHECK(sum_ab.shape() == Shape{3, 2});
  check_close(sum_ab, {11, 21, 12, 22, 13, 23});
  check_close(sub(a, b), {-9, -19, -8, -18, -7, -17});
  check_close(mul(a, b), {10, 20, 20, 40, 30, 60});
  check_close(div(b, a), {10, 20, 5, 10, 10.0 / 3, 20.0 / 3});
  check_close(a - s, {-1, 0, 1});
  CHECK((a - s).shape() == Shape{3, 1});
  check_close(s * b, {20, 40});
  // [3, 1, 4] with [2, 4] -> [3, 2, 4]
  Tensor c = arange(12, DType::F64).reshape({3, 1, 4});
  Tensor d = arange(8, DType::F64).reshape({2, 4});
  Tensor e = add(c, d);
  CHECK(e.shape() == Shape{3, 2, 4});
  const std::vector<double> ev = e.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k) CHECK(ev[(i * 2 + j) * 4 + k] == (i * 4 + k) + (j * 4 + k));
  // a transposed operand is read through its strides
  Tensor m = arange(6, DType::F64).reshape({2, 3});
  check_close(add(m.t(), f64({100.0, 200.0})), {100, 203, 101, 204, 102, 205});
}

TEST_CASE("maximum and minimum propagate NaN from either side") {
  Tensor a = f64({kNaN, 1.0, 5.0, kNaN});
  Tensor b = f64({1.0, kNaN, 3.0, kNaN});
  check_close(maximum(a, b), {kNaN, kNaN, 5.0, kNaN});
  check_close(minimum(a, b), {kNaN, kNaN, 3.0, kNaN});
  check_close(maximum(f64({-1.0, 2.0}), f64({0.0})), {0.0, 2.0});
  check_close(minimum(f64({-1.0, 2.0}), f64({0.0})), {-1.0, 0.0});
}

TEST_CASE("comparisons give u8 masks") {
  Tensor a = f64({1.0, 2.0, 3.0, kNaN});
  Tensor b = f64({2.0, 2.0, 2.0, kNaN});
  CHECK(eq(a, b).dtype() == DType::U8);
  check_equal(eq(a, b), {0, 1, 0, 0});
  check_equal(ne(a, b), {1, 0, 1, 1});  // NaN != NaN
  check_equal(lt(a, b), {1, 0, 0, 0});
  check_equal(le(a, b), {1, 1, 0, 0});
  check_equal(gt(a, b), {0, 0, 1, 0});
  check_equal(ge(a, b), {0, 1, 1, 0});
  check_equal(eq(a, 2.0), {0, 1, 0, 0});
  check_equal(ne(a, 2.0), {1, 0, 1, 1});
  check_equal(lt(a, 2.0), {1, 0, 0, 0});
  check_equal(le(a, 2.0), {1, 1, 0, 0});
  check_equal(gt(a, 2.0), {0, 0, 1, 0});
  check_equal(ge(a, 2.0), {0, 1, 1, 0});
  // broadcasting, and integer operands
  Tensor col = i64({1, 3}, {2, 1});
  Tensor row = i64({0, 1, 2, 3}, {1, 4});
  Tensor m = lt(row, col);
  CHECK(m.shape() == Shape{2, 4});
  check_equal(m, {1, 0, 0, 0, 1, 1, 1, 0});
  check_equal(ge(i32({5, -5}), 0.0), {1, 0});
}

// An integer tensor against a fractional or out-of-range scalar: casting the scalar to the
// tensor's dtype would truncate or wrap it (lt(i64 {0, 1, 2}, 1.5) would give {1, 0, 0}).
TEST_CASE("comparisons of integer tensors with a fractional scalar compare exactly") {
  Tensor a = i64({0, 1, 2});
  check_equal(lt(a, 1.5), {1, 1, 0});  // torch: [True, True, False]
  check_equal(le(a, 1.5), {1, 1, 0});
  check_equal(gt(a, 1.5), {0, 0, 1});
  check_equal(ge(a, 1.5), {0, 0, 1});
  check_equal(eq(a, 1.5), {0, 0, 0});  // torch: all False
  check_equal(ne(a, 1.5), {1, 1, 1});
  check_equal(gt(a, -0.5), {1, 1, 1});                 // torch: all True
  check_equal(ge(i32({1}), 1e10), {0});                // torch: False (the cast to i32 overflows)
  check_equal(lt(u8({0, 1, 200}), 300.0), {1, 1, 1});  // torch with a float scalar: all True
  check_equal(gt(u8({0, 1, 200}), -1.0), {1, 1, 1});
}

TEST_CASE("where selects with a broadcast condition") {
  Tensor cond = u8({1, 0, 1}, {1, 3});
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({-1, -2}, {2, 1});
  Tensor y = where(cond, a, b);
  CHECK(y.shape() == Shape{2, 3});
  check_close(y, {1, -1, 3, 4, -2, 6});
  // the condition from a comparison, and a 0-d branch
  Tensor x = f64({-2.0, 0.5, 3.0, -0.1});
  check_close(where(gt(x, 0.0), x, f64({0.0}, {})), {0.0, 0.5, 3.0, 0.0});
  check_equal(where(u8({0, 1}), i64({7, 8}), i64({-7, -8})), {-7, 8});
  check_error([&] { where(gt(x, 0.0).to(DType::I64), x, x); }, {"where", "u8"});
}

TEST_CASE("integer add sub and mul stay integer") {
  Tensor a = i64({5, -3, 1LL << 40});
  Tensor b = i64({2, 7, 3});
  CHECK(add(a, b).dtype() == DType::I64);
  check_equal(add(a, b), {7, 4, (1LL << 40) + 3});
  check_equal(sub(a, b), {3, -10, (1LL << 40) - 3});
  check_equal(mul(a, b), {10, -21, 3 * (1LL << 40)});
  Tensor c = i32({100000, -2}, {2, 1});
  Tensor d = i32({3, 4}, {1, 2});
  CHECK(mul(c, d).dtype() == DType::I32);
  check_equal(mul(c, d), {300000, 400000, -6, -8});
  check_equal(sub(c, d), {99997, 99996, -5, -6});
  check_equal(maximum(i64({1, 9}), i64({4, 2})), {4, 9});
  // integer division has no integer result: ember refuses it rather than truncating
  check_error([&] { div(a, b); }, {"div", "i64"});
}

TEST_CASE("sum of u8 and i32 is i64 without overflow") {
  Tensor x = u8({200, 200, 255, 1});
  Tensor s = ember::sum(x);
  CHECK(s.dtype() == DType::I64);
  CHECK(s.item<int64_t>() == 656);
  Tensor m = u8({250, 250, 250, 10, 20, 30}, {2, 3});
  check_equal(ember::sum(m, {1}), {750, 60});
  check_equal(ember::sum(m, {0}), {260, 270, 280});
  Tensor big = i32({2000000000, 2000000000});
  CHECK(ember::sum(big).dtype() == DType::I64);
  CHECK(ember::sum(big).item<int64_t>() == 4000000000LL);
  CHECK(ember::sum(i64({-5, 3})).item<int64_t>() == -2);
}

// ---------------------------------------------------------------------------------------------
// reductions

TEST_CASE("sum and mean over dims give hand computed values") {
  // x[i][j][k] = (i*12 + j*4 + k)^2 mod 7
  Tensor x = f64({0, 1, 4, 2, 2, 4, 1, 0, 1, 4, 2, 2,  //
                  4, 1, 0, 1, 4, 2, 2, 4, 1, 0, 1, 4},
                 {2, 3, 4});
  CHECK(ember::sum(x).item<double>() == 47.0);
  CHECK(ember::sum(x).shape() == Shape{});
  check_close(mean(x), {47.0 / 24});
  // over dim -1 (rows of 4)
  check_close(ember::sum(x, {-1}), {7, 7, 9, 6, 12, 6});
  check_close(mean(x, {-1}), {1.75, 1.75, 2.25, 1.5, 3.0, 1.5});  // matches torch
  // over non-adjacent dims 0 and 2
  Tensor s02 = ember::sum(x, {0, 2});
  CHECK(s02.shape() == Shape{3});
  check_close(s02, {13, 19, 15});  // matches torch
  CHECK(ember::sum(x, {2, 0}, true).shape() == Shape{1, 3, 1});
  check_close(ember::sum(x, {-3, -1}, true), {13, 19, 15});
  check_close(mean(x, {0, 2}), {13.0 / 8, 19.0 / 8, 15.0 / 8});
  // over dim 0 and over dims 0 and 1 (adjacent)
  check_close(ember::sum(x, {0}), {4, 2, 4, 3, 6, 6, 3, 4, 2, 4, 3, 6});
  check_close(ember::sum(x, {0, 1}, true), {12, 12, 10, 13});
  CHECK(ember::sum(x, {0, 1}, true).shape() == Shape{1, 1, 4});
  // of a transposed view: [k][j][i] summed over k gives [j][i]
  check_close(ember::sum(x.transpose(0, 2), {0}), {7, 6, 7, 12, 9, 6});
  // of a 0-d tensor: itself
  CHECK(ember::sum(f64({2.5}, {})).item<double>() == 2.5);
  check_error([&] { ember::sum(x, {1, -2}); }, {"sum", "twice"});
  check_error([&] { ember::sum(x, {3}); }, {"sum", "dim 3"});
}

TEST_CASE("var with Bessel correction and without") {
  Tensor x = f64({1, 2, 3, 4});
  check_close(var(x), {5.0 / 3}, 1e-12, 1e-12);      // squares 2.25 + 0.25 + 0.25 + 2.25 = 5, / 3
  check_close(var(x, {}, 0), {1.25}, 1e-12, 1e-12);  // 5 / 4
  check_close(var(x, {0}, 1, true), {5.0 / 3});
  CHECK(var(x, {0}, 1, true).shape() == Shape{1});
  Tensor m = f64({1, 2, 3, 4, 2, 4, 6, 9}, {2, 4});
  check_close(var(m, {1}), {1.6666666666666667, 8.916666666666666}, 1e-12, 1e-12);  // torch
  check_close(var(m, {0}), {0.5, 2.0, 4.5, 12.5});                                  // (a - b)^2 / 2
  // over non-adjacent dims (matches torch.var(x, (0, 2)) with correction 1 and 0)
  Tensor y = f64({0, 1, 4, 2, 2, 4, 1, 0, 1, 4, 2, 2,  //
                  4, 1, 0, 1, 4, 2, 2, 4, 1, 0, 1, 4},
                 {2, 3, 4});
  check_close(var(y, {0, 2}), {2.5535714285714293, 2.2678571428571423, 2.1250000000000004}, 1e-12,
              1e-12);
  check_close(var(y, {0, 2}, 0), {2.2343750000000004, 1.9843749999999996, 1.8593750000000002},
              1e-12, 1e-12);
  check_close(var(f32({1, 2, 3, 4})), {5.0 / 3}, 1e-6, 1e-6);
  // a single element with correction 1 has no variance: NaN, as torch
  check_close(var(f64({3.0})), {kNaN});
}

TEST_CASE("max and argmax return the first index on ties") {
  Tensor x = f64({1, 5, 5, 2,  //
                  7, 7, 7, 7,  //
                  0, -1, 3, 3},
                 {3, 4});
  ValuesIndices r = ember::max(x, 1);
  check_close(r.values, {5, 7, 3});
  check_equal(r.indices, {1, 0, 2});
  CHECK(r.indices.dtype() == DType::I64);
  check_equal(argmax(x, 1), {1, 0, 2});
  check_equal(argmax(x, -1, true), {1, 0, 2});
  CHECK(argmax(x, -1, true).shape() == Shape{3, 1});
  ValuesIndices c = ember::min(x, 0);
  check_close(c.values, {0, -1, 3, 2});
  check_equal(c.indices, {2, 2, 2, 0});
  check_equal(argmin(f64({4, 1, 1, 1}), 0), {1});
  check_equal(argmax(f64({2, 9, 1, 9}), 0), {1});
  // along dim 0 with ties
  check_equal(argmax(f64({3, 1, 3, 2}, {2, 2}), 0), {0, 1});
  CHECK(ember::max(x).item<double>() == 7.0);
  CHECK(ember::min(x).item<double>() == -1.0);
  check_equal(argmax(i64({4, 8, 8}), 0), {1});
}

TEST_CASE("NaN wins max and argmax") {
  Tensor x = f64({1, kNaN, 9, kNaN,  //
                  kNaN, 2, 3, 4},
                 {2, 4});
  ValuesIndices r = ember::max(x, 1);
  check_close(r.values, {kNaN, kNaN});
  check_equal(r.indices, {1, 0});  // the first NaN
  check_equal(argmax(x, 1), {1, 0});
  check_equal(argmin(x, 1), {1, 0});
  CHECK(std::isnan(ember::max(x).item<double>()));
  CHECK(std::isnan(ember::min(f64({1, 2, kNaN})).item<double>()));
}

TEST_CASE("topk orders values and breaks ties by the lower index") {
  Tensor x = f64({1, 3, 2, 3, 1});
  ValuesIndices big = topk(x, 3);
  check_close(big.values, {3, 3, 2});
  check_equal(big.indices, {1, 3, 2});
  ValuesIndices small = topk(x, 3, -1, false);
  check_close(small.values, {1, 1, 2});
  check_equal(small.indices, {0, 4, 2});  // ember documents: lower index first on ties
  ValuesIndices one = topk(x, 1);
  check_equal(one.indices, {1});
  // along dim 0 of a matrix
  Tensor m = f64({5, 0,  //
                  2, 8,  //
                  5, 4},
                 {3, 2});
  ValuesIndices r = topk(m, 2, 0);
  CHECK(r.values.shape() == Shape{2, 2});
  check_close(r.values, {5, 8, 5, 4});
  check_equal(r.indices, {0, 1, 2, 2});
  // NaN counts as the largest value, as in torch
  ValuesIndices n = topk(f64({1, kNaN, 3}), 2);
  check_close(n.values, {kNaN, 3});
  check_equal(n.indices, {1, 2});
  check_error([&] { topk(x, 6); }, {"topk", "k = 6"});
}

TEST_CASE("sum_to sums broadcast dims back") {
  Tensor x = arange(24, DType::F64).reshape({2, 3, 4});
  Tensor s = sum_to(x, {3, 1});
  CHECK(s.shape() == Shape{3, 1});
  // row j: sum over i, k of i*12 + j*4 + k = 2*(0+1+2+3) + 4*12 + 8*4j = 60 + 32j
  check_close(s, {60, 92, 124});
  // column k: sum over i, j of i*12 + j*4 + k = 12*3 + 4*(0+1+2)*2 + 6k = 60 + 6k
  check_close(sum_to(x, {4}), {60, 66, 72, 78});
  CHECK(sum_to(x, {}).item<double>() == 276.0);
  check_error([&] { sum_to(x, {2, 4}); }, {"sum_to", "[2, 3, 4]", "[2, 4]"});
}

// ---------------------------------------------------------------------------------------------
// matmul

TEST_CASE("matmul gives an exact small product") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 2});
  // [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12]
  check_close(c, {58, 64, 139, 154});
  check_close(matmul(a.to(DType::F32), b.to(DType::F32)), {58, 64, 139, 154});
  // transposed operands: a^T b^T = (b a)^T, with b a = [[39, 54, 69], [49, 68, 87], [59, 82, 105]]
  check_close(matmul(a.t(), b.t()), {39, 49, 59, 54, 68, 82, 69, 87, 105});
  // vectors
  Tensor u = f64({1, 2, 3}), v = f64({4, 5, 6});
  Tensor dot = matmul(u, v);
  CHECK(dot.shape() == Shape{});
  CHECK(dot.item<double>() == 32.0);
  Tensor ua = matmul(f64({1, -1}), a);  // [2] x [2, 3] -> [3]
  CHECK(ua.shape() == Shape{3});
  check_close(ua, {-3, -3, -3});
  Tensor av = matmul(a, u);  // [2, 3] x [3] -> [2]
  CHECK(av.shape() == Shape{2});
  check_close(av, {14, 32});
  // a strided vector (every other element)
  check_close(matmul(a, f64({1, 0, 2, 0, 3, 0}).slice(0, 0, 6, 2)), {14, 32});
}

TEST_CASE("batched matmul broadcasts batch dims") {
  Tensor a = arange(24, DType::F64).reshape({2, 1, 3, 4});
  Tensor b = mul(arange(40, DType::F64), 0.5).reshape({5, 4, 2});
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 5, 3, 2});
  // against a naive loop
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(),
                            cv = c.to_vector<double>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j)
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 2; ++s) {
          double expected = 0;
          for (int k = 0; k < 4; ++k) expected += av[(i * 3 + r) * 4 + k] * bv[(j * 4 + k) * 2 + s];
          CHECK(cv[((i * 5 + j) * 3 + r) * 2 + s] == expected);
        }
  CHECK(matmul(zeros({2, 3, 4, 5}), zeros({5, 6})).shape() == Shape{2, 3, 4, 6});
  CHECK(matmul(zeros({7, 1, 4, 5}), zeros({3, 5, 2})).shape() == Shape{7, 3, 4, 2});
  CHECK(matmul(zeros({2, 3, 4, 5}), zeros({5})).shape() == Shape{2, 3, 4});
  CHECK(matmul(zeros({4}), zeros({2, 3, 4, 5})).shape() == Shape{2, 3, 5});
}

TEST_CASE("matmul of permuted batches matches a naive loop") {
  // batch dims that do not step uniformly, and a transposed matrix inside each batch
  Tensor a = arange(24, DType::F64).reshape({3, 2, 4}).permute({1, 0, 2});          // [2, 3, 4]
  Tensor b = add(arange(40, DType::F64), -7.0).reshape({2, 5, 4}).transpose(1, 2);  // [2, 4, 5]
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 3, 5});
  const std::vector<double> av = a.contiguous().to_vector<double>();
  const std::vector<double> bv = b.contiguous().to_vector<double>();
  const std::vector<double> cv = c.to_vector<double>();
  for (int n = 0; n < 2; ++n)
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 5; ++s) {
        double expected = 0;
        for (int k = 0; k < 4; ++k) expected += av[(n * 3 + r) * 4 + k] * bv[(n * 4 + k) * 5 + s];
        CHECK(cv[(n * 3 + r) * 5 + s] == expected);
      }
}

TEST_CASE("matmul with k equal to zero gives zeros") {
  Tensor c = matmul(ones({3, 0}), ones({0, 2}));
  CHECK(c.shape() == Shape{3, 2});
  CHECK(c.to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(matmul(ones({0}), ones({0})).item<float>() == 0.0f);
  CHECK(matmul(ones({2, 0}, DType::F64), ones({0, 0}, DType::F64)).shape() == Shape{2, 0});
}

// ---------------------------------------------------------------------------------------------
// softmax and losses

TEST_CASE("softmax gives known values and rows that sum to one") {
  // matches torch.softmax([1, 2, 3])
  check_close(softmax(f64({1, 2, 3}), 0),
              {0.09003057317038045, 0.2447284710547976, 0.6652409557748218}, 1e-12, 1e-12);
  // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6
  check_close(softmax(f64({0, std::log(2.0), std::log(3.0)}), -1), {1.0 / 6, 2.0 / 6, 3.0 / 6},
              1e-12, 1e-12);
  // large inputs: [1000, 1001] -> [1 / (1 + e), e / (1 + e)] without overflow
  for (DType dt : {DType::F64, DType::F32}) {
    INFO("dtype " << dtype_name(dt));
    Tensor big = f64({1000, 1001, -1000, 1000}, {2, 2}).to(dt);
    Tensor y = softmax(big, 1);
    const double tol = dt == DType::F64 ? 1e-12 : 1e-6;
    check_close(y, {1 / (1 + kE), kE / (1 + kE), 0.0, 1.0}, tol, tol);
    check_close(ember::sum(y, {1}), {1.0, 1.0}, tol, tol);
  }
  // along dim 0 and along a middle dim: the sums over that dim are 1
  Generator g(3);
  Tensor x = mul(normal({2, 3, 4}, 0, 1, DType::F64, &g), 5.0);
  for (int64_t dim : {0, 1, 2}) {
    INFO("dim " << dim);
    check_close(ember::sum(softmax(x, dim), {dim}), std::vector<double>(24 / x.size(dim), 1.0),
                1e-12, 1e-12);
  }
  // dim 1 of [2, 3]: each column of the middle dim is normalized on its own
  Tensor m = f64({0, 0, 0, 0, std::log(3.0), 0}, {2, 3});
  check_close(softmax(m, 0), {0.5, 0.25, 0.5, 0.5, 0.75, 0.5}, 1e-12, 1e-12);
}

TEST_CASE("log_softmax gives known values and is stable for large inputs") {
  // matches torch.log_softmax([1, 2, 3])
  check_close(log_softmax(f64({1, 2, 3}), 0),
              {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804}, 1e-12, 1e-12);
  check_close(log_softmax(f64({0, 0}), 0), {-std::log(2.0), -std::log(2.0)}, 1e-12, 1e-12);
  // matches torch: log_softmax([1000, 1001])
  check_close(log_softmax(f64({1000, 1001}), 0), {-1.3132616875182228, -0.31326168751822286}, 1e-12,
              1e-12);
  check_close(log_softmax(f32({1000, 1001}), 0), {-1.3132616875182228, -0.31326168751822286}, 1e-5,
              1e-5);
  // log_softmax = log(softmax) where both are representable
  Generator g(4);
  Tensor x = normal({3, 5}, 0, 2, DType::F64, &g);
  check_close(log_softmax(x, 1), ember::log(softmax(x, 1)).to_vector<double>(), 1e-12, 1e-12);
  check_close(log_softmax(x, 0), ember::log(softmax(x, 0)).to_vector<double>(), 1e-12, 1e-12);
}

TEST_CASE("cross_entropy gives known values") {
  // logits [[0, 0]], target 0: -log(1/2) = ln 2
  check_close(cross_entropy(f64({0, 0}, {1, 2}), i64({0})), {std::log(2.0)}, 1e-12, 1e-12);
  // label smoothing cannot change a uniform prediction's loss: still ln 2 (torch agrees)
  CrossEntropyOptions smooth;
  smooth.label_smoothing = 0.2;
  check_close(cross_entropy(f64({0, 0}, {1, 2}), i64({0}), smooth), {std::log(2.0)}, 1e-12, 1e-12);

  Tensor logits = f64({1.0, 2.0, 0.5,   //
                       0.0, -1.0, 3.0,  //
                       2.0, 2.0, -2.0},
                      {3, 3});
  Tensor target = i64({0, 2, 1});
  CrossEntropyOptions none;
  none.reduction = Reduction::None;
  // matches torch F.cross_entropy(..., reduction="none")
  const std::vector<double> rows = {1.464368784107945, 0.06588390375742911, 0.7022633214390952};
  Tensor per_row = cross_entropy(logits, target, none);
  CHECK(per_row.shape() == Shape{3});
  check_close(per_row, rows, 1e-12, 1e-12);
  check_close(cross_entropy(logits, target), {(rows[0] + rows[1] + rows[2]) / 3}, 1e-12, 1e-12);
  CrossEntropyOptions summed;
  summed.reduction = Reduction::Sum;
  check_close(cross_entropy(logits, target, summed), {rows[0] + rows[1] + rows[2]}, 1e-12, 1e-12);
  // row 1 by hand: lse = log(1 + e^-1 + e^3), loss = lse - 3
  CHECK(per_row.to_vector<double>()[1] ==
        doctest::Approx(std::log(1 + std::exp(-1.0) + std::exp(3.0)) - 3).epsilon(1e-12));
  // large logits do not overflow
  check_close(cross_entropy(f32({1000, 1001}, {1, 2}), i64({1})), {0.31326168751822286}, 1e-5,
              1e-5);
}

TEST_CASE("cross_entropy with label smoothing matches torch") {
  Tensor logits = f64({1.0, 2.0, 0.5,  //
                       0.0, -1.0, 3.0},
                      {2, 3});
  Tensor target = i64({0, 2});
  CrossEntropyOptions o;
  o.label_smoothing = 0.2;
  o.reduction = Reduction::None;
  // matches torch F.cross_entropy(logits, target, label_smoothing=0.2, reduction="none")
  check_close(cross_entropy(logits, target, o), {1.4310354507746117, 0.5325505704240958}, 1e-12,
              1e-12);
  o.reduction = Reduction::Mean;
  check_close(cross_entropy(logits, target, o), {0.9817930105993538}, 1e-12, 1e-12);  // torch
}

TEST_CASE("cross_entropy ignores targets equal to ignore_index") {
  Tensor logits = f64({1.0, 2.0, 0.5,   //
                       0.0, -1.0, 3.0,  //
                       2.0, 2.0, -2.0},
                      {3, 3});
  Tensor target = i64({0, 2, -100});
  // matches torch: the mean divides by the 2 rows that count
  check_close(cross_entropy(logits, target), {0.765126343932687}, 1e-12, 1e-12);
  CrossEntropyOptions summed;
  summed.reduction = Reduction::Sum;
  check_close(cross_entropy(logits, target, summed), {1.530252687865374}, 1e-12, 1e-12);
  CrossEntropyOptions none;
  none.reduction = Reduction::None;
  check_close(cross_entropy(logits, target, none), {1.464368784107945, 0.06588390375742911, 0.0},
              1e-12, 1e-12);
  // with label smoothing 0.2, the ignored row still counts for nothing (torch: 0.98179...)
  CrossEntropyOptions smooth;
  smooth.label_smoothing = 0.2;
  check_close(cross_entropy(logits, target, smooth), {0.9817930105993538}, 1e-12, 1e-12);
  // a custom ignore_index
  CrossEntropyOptions custom;
  custom.ignore_index = 1;
  check_close(cross_entropy(logits, i64({0, 2, 1}), custom), {0.765126343932687}, 1e-12, 1e-12);
  // every target ignored: the mean is 0 / 0 = NaN, as torch
  check_close(cross_entropy(logits, i64({-100, -100, -100})), {kNaN});
}

TEST_CASE("nll_loss picks the negative log probability of the target") {
  Tensor lp = f64({-0.1, -2.0, -3.0,  //
                   -1.5, -0.5, -4.0},
                  {2, 3});
  check_close(nll_loss(lp, i64({0, 1}), Reduction::None), {0.1, 0.5});
  check_close(nll_loss(lp, i64({0, 1})), {0.3});
  check_close(nll_loss(lp, i64({2, 0}), Reduction::Sum), {4.5});
  check_close(nll_loss(lp, i64({2, -100}), Reduction::None), {3.0, 0.0});
  check_close(nll_loss(lp, i64({2, -100})), {3.0});  // mean over the one counted row
  check_close(nll_loss(lp, i64({2, 0}), Reduction::Mean, 0), {3.0});
  // composed with log_softmax it equals cross_entropy (torch: 0.7441720031014897)
  Tensor logits = f64({1.0, 2.0, 0.5, 0.0, -1.0, 3.0, 2.0, 2.0, -2.0}, {3, 3});
  check_close(nll_loss(log_softmax(logits, 1), i64({0, 2, 1})), {0.7441720031014897}, 1e-12, 1e-12);
}

// ---------------------------------------------------------------------------------------------
// indexing, joining, splitting

TEST_CASE("index_select and embedding pick rows and columns") {
  Tensor x = arange(12, DType::F64).reshape({3, 4});
  Tensor rows = index_select(x, 0, i64({2, 0, 2}));
  CHECK(rows.shape() == Shape{3, 4});
  check_close(rows, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor cols = index_select(x, 1, i64({3, 3, 1}));
  CHECK(cols.shape() == Shape{3, 3});
  check_close(cols, {3, 3, 1, 7, 7, 5, 11, 11, 9});
  check_close(index_select(x, -1, i64({0})), {0, 4, 8});
  CHECK(index_select(x, 0, i64({}, {0})).shape() == Shape{0, 4});
  // of a non-contiguous tensor, and integer data
  check_close(index_select(x.t(), 0, i64({1})), {1, 5, 9});
  check_equal(index_select(i64({10, 20, 30}), 0, i64({2, 2, 0})), {30, 30, 10});

  Tensor weight = f64({0, 0, 1, 1, 2, 2, 3, 3, 4, 4}, {5, 2});
  Tensor e = embedding(weight, i64({4, 1, 4, 0, 3, 3}, {2, 3}));
  CHECK(e.shape() == Shape{2, 3, 2});
  check_close(e, {4, 4, 1, 1, 4, 4, 0, 0, 3, 3, 3, 3});
  CHECK(embedding(weight, i64({2}, {})).shape() == Shape{2});
}

TEST_CASE("gather picks along a dim") {
  Tensor x = f64({1, 2, 3,  //
                  4, 5, 6},
                 {2, 3});
  // dim 1: out[i][j] = x[i][index[i][j]]
  Tensor g1 = gather(x, 1, i64({2, 0, 0, 1, 1, 2, 0, 1}, {2, 4}));
  CHECK(g1.shape() == Shape{2, 4});
  check_close(g1, {3, 1, 1, 2, 5, 6, 4, 5});
  // dim 0: out[i][j] = x[index[i][j]][j]
  Tensor g0 = gather(x, 0, i64({1, 0, 1}, {1, 3}));
  CHECK(g0.shape() == Shape{1, 3});
  check_close(g0, {4, 2, 6});
  check_close(gather(x, 0, i64({1, 1, 1, 0, 0, 0, 1, 0, 1}, {3, 3})), {4, 5, 6, 1, 2, 3, 4, 2, 6});
  check_close(gather(x, -1, i64({1, 1}, {2, 1})), {2, 5});
  // 3-d, middle dim
  Tensor y = arange(24, DType::F64).reshape({2, 3, 4});
  check_close(gather(y, 1, i64({2, 0, 1, 2, 0, 0, 0, 0}, {2, 1, 4})),
              {8, 1, 6, 11, 12, 13, 14, 15});
}

TEST_CASE("cat and stack join tensors") {
  Tensor a = f64({1, 2, 3, 4}, {2, 2});
  Tensor b = f64({5, 6}, {2, 1});
  Tensor c = f64({7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor ab = cat({a, b, c}, 1);
  CHECK(ab.shape() == Shape{2, 6});
  check_close(ab, {1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12});
  Tensor rows = cat({a, f64({9, 9}, {1, 2})}, 0);
  CHECK(rows.shape() == Shape{3, 2});
  check_close(rows, {1, 2, 3, 4, 9, 9});
  check_close(cat({a.t(), a}, -1), {1, 3, 1, 2, 2, 4, 3, 4});  // a non-contiguous input
  check_close(cat({a}, 0), {1, 2, 3, 4});

  Tensor p = f64({1, 2, 3}), q = f64({4, 5, 6});
  Tensor s0 = stack({p, q}, 0);
  CHECK(s0.shape() == Shape{2, 3});
  check_close(s0, {1, 2, 3, 4, 5, 6});
  Tensor s1 = stack({p, q}, 1);
  CHECK(s1.shape() == Shape{3, 2});
  check_close(s1, {1, 4, 2, 5, 3, 6});
  Tensor s2 = stack({a, a * 10.0}, 2);
  CHECK(s2.shape() == Shape{2, 2, 2});
  check_close(s2, {1, 10, 2, 20, 3, 30, 4, 40});
  CHECK(stack({p, q}, -1).shape() == Shape{3, 2});
  check_error([&] { cat({a, c}, 0); }, {"cat", "[2, 3]", "[2, 2]"});
  check_error([&] { stack({p, a}, 0); }, {"stack", "[2, 2]", "[3]"});
}

TEST_CASE("split and chunk give views of the right sizes") {
  Tensor x = arange(14, DType::F64).reshape({7, 2});
  std::vector<Tensor> s = split(x, 3);
  REQUIRE(s.size() == 3);
  CHECK(s[0].shape() == Shape{3, 2});
  CHECK(s[1].shape() == Shape{3, 2});
  CHECK(s[2].shape() == Shape{1, 2});
  check_close(s[1], {6, 7, 8, 9, 10, 11});
  check_close(s[2], {12, 13});
  CHECK(s[1].storage() == x.storage());  // a view

  std::vector<Tensor> sizes = split(x, {1, 4, 2}, 0);
  REQUIRE(sizes.size() == 3);
  check_close(sizes[0], {0, 1});
  CHECK(sizes[1].shape() == Shape{4, 2});
  check_close(sizes[2], {10, 11, 12, 13});
  std::vector<Tensor> cols = split(x, 1, 1);
  REQUIRE(cols.size() == 2);
  check_close(cols[1], {1, 3, 5, 7, 9, 11, 13});

  // chunk: pieces of ceil(7 / 3) = 3 rows -> 3, 3, 1 (as torch.chunk)
  std::vector<Tensor> c = chunk(x, 3);
  REQUIRE(c.size() == 3);
  CHECK(c[0].shape() == Shape{3, 2});
  CHECK(c[2].shape() == Shape{1, 2});
  // 6 rows in 4 chunks: pieces of 2 -> only 3 chunks (as torch.chunk)
  std::vector<Tensor> c6 = chunk(arange(6, DType::F64), 4);
  REQUIRE(c6.size() == 3);
  check_close(c6[2], {4, 5});
  std::vector<Tensor> c2 = chunk(x, 2, -1);
  REQUIRE(c2.size() == 2);
  check_close(c2[0], {0, 2, 4, 6, 8, 10, 12});
  check_error([&] { split(x, {3, 3}, 0); }, {"split", "6", "7"});
}

TEST_CASE("views read the right elements") {
  Tensor x = arange(24, DType::F64).reshape({2, 3, 4});
  check_close(x.transpose(0, 2).reshape({4, 6}), {0, 12, 4, 16, 8,  20, 1, 13, 5, 17, 9,  21,
                                                  2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23});
  check_close(x.permute({1, 2, 0}).select(0, 1), {4, 16, 5, 17, 6, 18, 7, 19});
  check_close(x.slice(2, 0, 4, 2).select(0, 1), {12, 14, 16, 18, 20, 22});
  check_close(x.slice(1, 1, 100, 2), {4, 5, 6, 7, 16, 17, 18, 19});
  check_close(x.narrow(2, 1, 2).select(1, -1), {9, 10, 21, 22});
  check_close(x.select(2, 3).flatten(), {3, 7, 11, 15, 19, 23});
  Tensor e = f64({1, 2}, {2, 1}).expand({2, 3});
  check_close(e, {1, 1, 1, 2, 2, 2});
  CHECK(e.stride(1) == 0);
  check_close(e.t().contiguous(), {1, 2, 1, 2, 1, 2});
  CHECK(x.view({6, 4}).storage() == x.storage());
  CHECK(x.unsqueeze(1).shape() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).squeeze(-1).shape() == Shape{2, 3, 4});
  check_error([&] { x.transpose(0, 1).view({6, 4}); }, {"view", "reshape"});
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST_CASE("dropout zeroes about p of the elements and scales the rest") {
  for (double p : {0.1, 0.3, 0.5, 0.9}) {
    INFO("p " << p);
    Generator g(11);
    Tensor y = dropout(ones({100000}), p, true, &g);
    const std::vector<float> v = y.to_vector<float>();
    int64_t zeros_seen = 0;
    bool scaled = true;
    for (float e : v) {
      if (e == 0.0f)
        ++zeros_seen;
      else
        scaled = scaled && e == static_cast<float>(1.0 / (1.0 - p));
    }
    CHECK(scaled);
    CHECK(std::abs(static_cast<double>(zeros_seen) / 100000.0 - p) < 0.01);
  }
  // f64, with values other than one
  Generator g(12);
  Tensor x = add(arange(1000, DType::F64), 1.0);
  const std::vector<double> xv = x.to_vector<double>();
  const std::vector<double> yv = dropout(x, 0.25, true, &g).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i)
    CHECK((yv[i] == 0.0 || yv[i] == doctest::Approx(xv[i] / 0.75).epsilon(1e-15)));
}

TEST_CASE("dropout is the identity when not training and all zeros when p is one") {
  Tensor x = f64({1, -2, 3, kNaN});
  check_close(dropout(x, 0.5, false), {1, -2, 3, kNaN});
  check_close(dropout(x, 0.0, true), {1, -2, 3, kNaN});
  check_close(dropout(f64({1, -2, 3, 4}), 1.0, true), {0, 0, 0, 0});
  check_close(dropout(ones({1000}), 1.0, true), std::vector<double>(1000, 0.0));
  check_error([] { dropout(ones({2}), 1.5); }, {"dropout", "1.5"});
  check_error([] { dropout(ones({2}), -0.1); }, {"dropout"});
}

TEST_CASE("dropout draws the same mask for the same generator seed") {
  Generator g1(99), g2(99), g3(100);
  Tensor x = ones({1000});
  const std::vector<float> a = dropout(x, 0.5, true, &g1).to_vector<float>();
  const std::vector<float> b = dropout(x, 0.5, true, &g2).to_vector<float>();
  const std::vector<float> c = dropout(x, 0.5, true, &g3).to_vector<float>();
  CHECK(a == b);
  CHECK(a != c);
  // the next draw of the same generator is a different mask
  CHECK(dropout(x, 0.5, true, &g1).to_vector<float>() != a);
  // the mask is the generator's uniform stream: dropped exactly where rand < p
  Generator g4(99), g5(99);
  const std::vector<float> u = rand({1000}, DType::F32, &g4).to_vector<float>();
  const std::vector<float> m = dropout(x, 0.5, true, &g5).to_vector<float>();
  for (size_t i = 0; i < u.size(); ++i) CHECK((m[i] == 0.0f) == (u[i] < 0.5f));
}

// ---------------------------------------------------------------------------------------------
// random numbers

TEST_CASE("philox4x32-10 matches the known answers") {
  // Random123's known-answer vectors (kat_vectors: philox4x32 10)
  kernels::Philox4 zero = kernels::philox4x32_10({{0u, 0u, 0u, 0u}}, 0u, 0u);
  CHECK(zero.x[0] == 0x6627e8d5u);
  CHECK(zero.x[1] == 0xe169c58du);
  CHECK(zero.x[2] == 0xbc57ac4cu);
  CHECK(zero.x[3] == 0x9b00dbd8u);
  kernels::Philox4 all_ones = kernels::philox4x32_10(
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  CHECK(all_ones.x[0] == 0x408f276du);
  CHECK(all_ones.x[1] == 0x41c83b0eu);
  CHECK(all_ones.x[2] == 0xa20bc7c6u);
  CHECK(all_ones.x[3] == 0x6d5451fdu);
  kernels::Philox4 pi = kernels::philox4x32_10(
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  CHECK(pi.x[0] == 0xd16cfe09u);
  CHECK(pi.x[1] == 0x94fdccebu);
  CHECK(pi.x[2] == 0x5001e420u);
  CHECK(pi.x[3] == 0x24126ea1u);
  // the word stream: word w is lane w % 4 of block w / 4, keyed by the 64-bit seed
  CHECK(kernels::philox_word(0, 2) == 0xbc57ac4cu);
  CHECK(kernels::philox_word(0xffffffffffffffffULL, 0) ==
        kernels::philox4x32_10({{0u, 0u, 0u, 0u}}, 0xffffffffu, 0xffffffffu).x[0]);
  const kernels::Philox4 block5 = kernels::philox4x32_10({{5u, 0u, 0u, 0u}}, 7u, 1u);
  CHECK(kernels::philox_word((1ULL << 32) | 7u, 23) == block5.x[3]);
}

TEST_CASE("rand reads the generator word stream") {
  Generator g(42);
  const std::vector<float> v = rand({9}, DType::F32, &g).to_vector<float>();
  for (uint64_t i = 0; i < 9; ++i)
    CHECK(v[i] == kernels::word_to_uniform(kernels::philox_word(42, i)));
  // 9 words were reserved, rounded up to whole blocks: the next request starts at word 12
  CHECK(g.offset() == 12);
  const std::vector<float> w = rand({2}, DType::F32, &g).to_vector<float>();
  CHECK(w[0] == kernels::word_to_uniform(kernels::philox_word(42, 12)));
  // the top 24 bits of a word: 0xffffffff maps just below 1
  CHECK(kernels::word_to_uniform(0xffffffffu) < 1.0f);
  CHECK(kernels::word_to_uniform(0xffffffffu) == 1.0f - 1.0f / 16777216.0f);
  CHECK(kernels::word_to_uniform(0u) == 0.0f);
}

TEST_CASE("rand is uniform on zero to one") {
  Generator g(5);
  const std::vector<double> v = rand({100000}, DType::F64, &g).to_vector<double>();
  double lo = 1, hi = 0;
  for (double x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(lo < 0.001);
  CHECK(hi > 0.999);
  // the mean's standard error is 0.289 / sqrt(1e5) = 0.0009
  CHECK(std::abs(mean_of(v) - 0.5) < 0.005);
  CHECK(std::abs(std_of(v) - std::sqrt(1.0 / 12)) < 0.005);
  // uniform(low, high)
  const std::vector<double> u = uniform({100000}, -3, 5, DType::F64, &g).to_vector<double>();
  for (double x : u) CHECK_MESSAGE((x >= -3 && x < 5), x);
  CHECK(std::abs(mean_of(u) - 1.0) < 0.04);
}

TEST_CASE("randn has mean zero and standard deviation one") {
  Generator g(6);
  const std::vector<double> v = randn({100000}, DType::F64, &g).to_vector<double>();
  // standard errors: mean 1 / sqrt(1e5) = 0.0032; std about 1 / sqrt(2e5) = 0.0022
  CHECK(std::abs(mean_of(v)) < 0.015);
  CHECK(std::abs(std_of(v) - 1.0) < 0.01);
  for (double x : v) CHECK(std::isfinite(x));
  // about 68.3% within one standard deviation
  int64_t within = 0;
  for (double x : v) within += std::abs(x) < 1.0;
  CHECK(std::abs(static_cast<double>(within) / 1e5 - 0.6827) < 0.01);
  // normal(mean, std), odd count (the last Box-Muller pair is cut)
  const std::vector<double> n = normal({100001}, 3, 2, DType::F32, &g).to_vector<double>();
  CHECK(std::abs(mean_of(n) - 3.0) < 0.03);
  CHECK(std::abs(std_of(n) - 2.0) < 0.02);
}

TEST_CASE("rand is equal in f32 and f64 for the same seed") {
  Generator g1(77), g2(77);
  const std::vector<double> a = rand({4097}, DType::F32, &g1).to_vector<double>();
  const std::vector<double> b = rand({4097}, DType::F64, &g2).to_vector<double>();
  CHECK(a == b);
  // every value is a multiple of 2^-24
  for (double x : b) CHECK(x * 16777216.0 == std::floor(x * 16777216.0));
  // randn too, to the float rounding of the shared computation
  Generator g3(78), g4(78);
  const std::vector<double> c = randn({1001}, DType::F32, &g3).to_vector<double>();
  const std::vector<double> d = randn({1001}, DType::F64, &g4).to_vector<double>();
  REQUIRE(c.size() == d.size());
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == doctest::Approx(d[i]).epsilon(1e-6));
}

TEST_CASE("manual_seed makes draws reproducible and consecutive draws differ") {
  manual_seed(1234);
  const std::vector<float> a = rand({100}).to_vector<float>();
  const std::vector<float> a2 = rand({100}).to_vector<float>();
  const std::vector<float> n = randn({100}).to_vector<float>();
  CHECK(a != a2);  // two consecutive draws differ
  manual_seed(1234);
  CHECK(rand({100}).to_vector<float>() == a);
  CHECK(rand({100}).to_vector<float>() == a2);
  CHECK(randn({100}).to_vector<float>() == n);
  manual_seed(1235);
  CHECK(rand({100}).to_vector<float>() != a);
  // a Generator: seed and offset are its whole state
  Generator g(9);
  const std::vector<float> first = rand({10}, DType::F32, &g).to_vector<float>();
  const uint64_t saved = g.offset();
  const std::vector<float> second = rand({10}, DType::F32, &g).to_vector<float>();
  CHECK(first != second);
  g.set_offset(saved);
  CHECK(rand({10}, DType::F32, &g).to_vector<float>() == second);
  g.manual_seed(9);
  CHECK(g.offset() == 0);
  CHECK(rand({10}, DType::F32, &g).to_vector<float>() == first);
  CHECK(g.seed() == 9);
}

// ---------------------------------------------------------------------------------------------
// errors that name the op and the shapes

TEST_CASE("add of shapes that do not broadcast names the op and both shapes") {
  check_error([] { add(zeros({2, 3}), zeros({4})); }, {"add", "[2, 3]", "[4]"});
  check_error([] { mul(zeros({2, 3}), zeros({3, 2})); }, {"mul", "[2, 3]", "[3, 2]"});
  check_error([] { maximum(zeros({5}), zeros({2})); }, {"maximum", "[5]", "[2]"});
  check_error([] { lt(zeros({5}), zeros({2})); }, {"lt", "[5]", "[2]"});
  check_error([] { where(u8({1, 0, 1}), zeros({2}), zeros({2})); }, {"where", "[3]", "[2]"});
}

TEST_CASE("binary ops with different dtypes name the dtypes") {
  check_error([] { add(zeros({2}), zeros({2}, DType::F64)); }, {"add", "f32", "f64"});
  check_error([] { add(u8({1}), u8({1})); }, {"add", "u8"});
  check_error([] { ember::exp(i64({1})); }, {"exp", "i64"});
}

TEST_CASE("matmul of mismatched shapes names both shapes") {
  check_error([] { matmul(zeros({2, 3}), zeros({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"});
  check_error([] { matmul(zeros({3}), zeros({4})); }, {"matmul", "3 columns vs 4 rows"});
  check_error([] { matmul(zeros({2, 2, 3}), zeros({3, 3, 2})); }, {"matmul", "[2]", "[3]"});
  check_error([] { matmul(zeros({}), zeros({3})); }, {"matmul", "0-d"});
}

TEST_CASE("cross_entropy with a target out of range names the target value") {
  Tensor logits = zeros({2, 3}, DType::F64);
  check_error([&] { cross_entropy(logits, i64({0, 3})); }, {"cross_entropy", "target 3", "[0, 3)"});
  check_error([&] { cross_entropy(logits, i64({-2, 0})); }, {"cross_entropy", "target -2"});
  check_error([&] { nll_loss(logits, i64({7, 0})); }, {"nll_loss", "target 7"});
  check_error([&] { cross_entropy(logits, i64({0, 1, 2})); }, {"cross_entropy", "[3]"});
  check_error([&] { cross_entropy(logits, i32({0, 1})); }, {"cross_entropy", "i64", "i32"});
  check_error(
      [&] {
        cross_entropy(zeros({2, 3, 4}), i64({0, 1}));
      },
      {"cross_entropy", "[2, 3, 4]"});
}

TEST_CASE("index_select with an index out of range names it") {
  Tensor x = zeros({3, 4});
  check_error([&] { index_select(x, 0, i64({0, 3})); }, {"index_select", "[0, 3)", "found 3"});
  check_error([&] { index_select(x, 1, i64({-1})); }, {"index_select", "[0, 4)", "found -1"});
  check_error([&] { embedding(x, i64({5})); }, {"index_select", "found 5"});
  check_error([&] { index_select(x, 0, i64({0, 1}, {1, 2})); }, {"index_select", "[1, 2]"});
  check_error([&] { index_select(x, 2, i64({0})); }, {"index_select", "dim 2"});
}

TEST_CASE("gather with a mismatched index shape names both shapes") {
  Tensor x = zeros({3, 4});
  check_error([&] { gather(x, 1, i64({0, 0, 0, 0}, {4, 1})); }, {"gather", "[4, 1]", "[3, 4]"});
  check_error([&] { gather(x, 1, i64({0, 0, 0})); }, {"gather", "[3]", "[3, 4]"});
  check_error([&] { gather(x, 1, i64({0, 4, 0}, {3, 1})); }, {"gather", "found 4"});
}
