// conv2d on the CPU: finite-difference gradient checks (f64) for every kind of geometry the op
// accepts, forward values and gradients against PyTorch 1.13, the batch split the kernel makes
// between threads, and the error messages for arguments that do not fit.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;
using ember::test::check_close;
using ember::test::check_gradients;
using ember::test::random_leaf;

namespace {

using Inputs = std::vector<Tensor>;

// Gradient check of conv2d with every given operand a leaf: x [N, C, H, W], w, and (if
// bias_size > 0) a bias.
void check_conv_gradients(const Shape& x_shape, const Shape& w_shape, bool with_bias,
                          const Conv2dOptions& options) {
  Tensor x = random_leaf(x_shape, 1), w = random_leaf(w_shape, 2);
  Inputs inputs = {x, w};
  if (with_bias) inputs.push_back(random_leaf({w_shape[0]}, 3));
  check_gradients(
      [options](const Inputs& in) {
        return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), options);
      },
      inputs);
}

Conv2dOptions options(std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                      std::array<int64_t, 2> dilation, int64_t groups = 1) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  o.groups = groups;
  return o;
}

// f64 values ((i * multiplier) % modulus - shift) / scale for i = 0, 1, ... in row-major order:
// exact binary fractions, made the same way by test/engine/conv_reference.py, which asked
// PyTorch for the reference values below.
Tensor pattern(const Shape& shape, int64_t multiplier, int64_t modulus, double shift,
               double scale) {
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] =
        (static_cast<double>((static_cast<int64_t>(i) * multiplier) % modulus) - shift) / scale;
  return tensor(values, shape);
}

struct Reference {
  std::vector<double> output, input_grad, weight_grad, bias_grad;
};

// conv2d of the pattern inputs against PyTorch: the output, and the gradients of
// sum(output * r) with r = pattern(output shape, 3, 7, 3, 4).
void check_against_torch(const Shape& x_shape, const Shape& w_shape, bool with_bias,
                         const Conv2dOptions& o, const Shape& out_shape, const Reference& ref) {
  Tensor x = pattern(x_shape, 7, 13, 6, 8).requires_grad_();
  Tensor w = pattern(w_shape, 5, 11, 5, 16).requires_grad_();
  Tensor b = with_bias ? pattern({w_shape[0]}, 1, 4, 1.5, 4).requires_grad_() : Tensor();
  Tensor y = conv2d(x, w, b, o);
  CHECK(y.shape() == out_shape);
  check_close(y, ref.output, 1e-12, 1e-12);
  sum(mul(y, pattern(out_shape, 3, 7, 3, 4))).backward();
  check_close(x.grad(), ref.input_grad, 1e-12, 1e-12);
  check_close(w.grad(), ref.weight_grad, 1e-12, 1e-12);
  if (with_bias) check_close(b.grad(), ref.bias_grad, 1e-12, 1e-12);
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

// PyTorch 1.13 (float64) for the cases below, printed by test/engine/conv_reference.py: the
// output and the gradients of the inputs.
// grouped: x [2, 4, 5, 4], w [4, 2, 3, 2], bias [4]; output [2, 4, 3, 6]
const std::vector<double> kGroupedOutput = {
    -0.625,     -0.3671875, -0.4609375, -0.359375,  -0.6328125, -0.1796875, -0.2265625, -0.5390625,
    0.078125,   -0.703125,  -0.484375,  -0.34375,   -0.2890625, -0.625,     -0.359375,  -0.015625,
    -0.34375,   -0.2734375, -0.375,     -0.0390625, -0.5625,    0.03125,    0.0390625,  -0.2109375,
    -0.2890625, 0.0234375,  -0.2265625, -0.0234375, 0.2109375,  -0.40625,   -0.1171875, -0.375,
    0.0625,     -0.6328125, -0.1015625, -0.03125,   0.1171875,  -0.15625,   0.1640625,  -0.3828125,
    0.2734375,  0.0,        0.2421875,  0.40625,    0.3125,     0.078125,   0.390625,   -0.0078125,
    -0.125,     0.1328125,  0.0390625,  0.140625,   -0.1328125, 0.3203125,  0.4453125,  0.2578125,
    0.46875,    0.0078125,  0.328125,   0.0546875,  0.4609375,  0.2421875,  0.6484375,  0.59375,
    0.4140625,  0.578125,   0.125,      0.4609375,  -0.0625,    0.53125,    0.5390625,  0.2890625,
    -0.2109375, -0.4609375, -0.5625,    -0.359375,  -0.5390625, -0.0859375, -0.0390625, -0.65625,
    -0.265625,  -0.640625,  -0.40625,   -0.7734375, -0.3515625, -0.28125,   -0.3828125, -0.2421875,
    -0.3046875, -0.234375,  -0.3125,    0.0234375,  -0.0859375, 0.0,        -0.0546875, -0.3046875,
    -0.375,     0.140625,   0.078125,   -0.4296875, 0.09375,    -0.421875,  -0.0234375, -0.3828125,
    0.09375,    -0.1953125, -0.1640625, -0.09375,   0.078125,   -0.1953125, 0.1875,     0.1484375,
    0.3359375,  -0.0390625, 0.1640625,  0.328125,   0.5546875,  0.1171875,  0.1015625,  0.109375,
    0.2890625,  0.0390625,  -0.0625,    0.140625,   -0.0390625, 0.4140625,  0.4765625,  0.2890625,
    0.4609375,  0.0,        0.2890625,  0.5234375,  0.53125,    0.3125,     0.3359375,  0.5859375,
    0.5390625,  0.5,        0.1875,     0.5234375,  0.4140625,  0.5,        0.4453125,  0.1953125};
const std::vector<double> kGroupedInputGrad = {
    0.390625,  -0.15625,  0.171875,  -0.375,    0.265625,  -0.140625, 0.0,       -0.40625,
    -0.046875, 0.390625,  -0.15625,  0.171875,  0.453125,  0.265625,  -0.140625, 0.0,
    -0.046875, -0.046875, 0.390625,  -0.15625,  0.25,      0.125,     -0.109375, -0.234375,
    0.21875,   0.515625,  -0.171875, -0.203125, 0.046875,  0.25,      0.125,     -0.109375,
    0.03125,   0.21875,   0.515625,  -0.171875, -0.046875, 0.046875,  0.25,      0.125,
    -0.0625,   0.078125,  -0.328125, 0.03125,   0.421875,  -0.171875, -0.109375, -0.375,
    0.34375,   -0.0625,   0.078125,  -0.328125, 0.25,      0.421875,  -0.171875, -0.109375,
    -0.015625, 0.34375,   -0.0625,   0.078125,  0.21875,   -0.203125, -0.1875,   -0.0625,
    0.046875,  0.34375,   0.09375,   -0.15625,  0.203125,  0.21875,   -0.203125, -0.1875,
    -0.140625, 0.046875,  0.34375,   0.09375,   0.078125,  0.203125,  0.21875,   -0.203125,
    0.171875,  -0.375,    0.0625,    -0.046875, 0.0,       -0.40625,  -0.046875, -0.125,
    -0.15625,  0.171875,  -0.375,    0.0625,    -0.140625, 0.0,       -0.40625,  -0.046875,
    0.390625,  -0.15625,  0.171875,  -0.375,    -0.109375, -0.234375, -0.03125,  -0.046875,
    -0.171875, -0.203125, -0.34375,  -0.046875, 0.125,     -0.109375, -0.234375, -0.03125,
    0.515625,  -0.171875, -0.203125, -0.34375,  0.25,      0.125,     -0.109375, -0.234375,
    -0.328125, 0.03125,   -0.046875, -0.015625, -0.109375, -0.375,    0.015625,  -0.03125,
    0.078125,  -0.328125, 0.03125,   -0.046875, -0.171875, -0.109375, -0.375,    0.015625,
    -0.0625,   0.078125,  -0.328125, 0.03125,   -0.1875,   -0.0625,   -0.046875, 0.078125,
    0.09375,   -0.15625,  -0.078125, -0.109375, -0.203125, -0.1875,   -0.0625,   -0.046875,
    0.34375,   0.09375,   -0.15625,  -0.078125, 0.21875,   -0.203125, -0.1875,   -0.0625};
const std::vector<double> kGroupedWeightGrad = {
    2.125,   0.65625, 0.15625, -1.09375, -3.375,   -1.5625, 0.03125, 1.0625,   3.34375,  2.0625,
    0.71875, -1.3125, 1.5625,  2.5,      2.0,      1.40625, 0.65625, -1.90625, -0.71875, -0.78125,
    0.875,   3.09375, 1.0625,  1.0,      2.375,    1.375,   1.09375, -0.4375,  -3.25,    -2.0625,
    0.375,   0.8125,  3.125,   2.6875,   0.375,    -0.5,    0.65625, 2.28125,  1.96875,  1.75,
    1.375,   -1.375,  -1.375,  -0.5,     -0.15625, 2.6875,  0.8125,  0.8125};
const std::vector<double> kGroupedBiasGrad = {0.25, -0.25, 1.0, -1.25};
// unbatched: x [3, 6, 6], w [2, 3, 3, 3], no bias; output [2, 3, 3]
const std::vector<double> kUnbatchedOutput = {
    -0.359375,  -0.2421875, -0.1171875, 0.4375,   0.2421875, -0.2421875,
    -0.1328125, -0.328125,  -0.203125,  0.40625,  0.2109375, -0.1484375,
    -0.3671875, -0.1796875, 0.09375,    0.234375, 0.546875,  0.3125};
const std::vector<double> kUnbatchedInputGrad = {
    -0.375,    0.109375, 0.0625,    0.0,       0.0625,    -0.0625,  0.046875,  0.046875,  0.046875,
    0.265625,  -0.28125, 0.234375,  0.0625,    0.0,       0.0625,   -0.109375, 0.0625,    0.015625,
    0.046875,  0.046875, 0.046875,  -0.0625,   0.046875,  -0.25,    0.0625,    0.109375,  -0.375,
    0.109375,  0.0625,   -0.015625, -0.046875, -0.34375,  0.140625, 0.21875,   0.0,       -0.078125,
    -0.375,    0.09375,  0.046875,  0.0625,    0.140625,  0.015625, 0.0,       -0.3125,   0.078125,
    0.125,     -0.28125, 0.234375,  0.015625,  0.0,       0.109375, -0.140625, -0.015625, -0.0625,
    0.015625,  0.234375, 0.09375,   0.234375,  -0.046875, 0.171875, 0.078125,  0.125,     -0.375,
    0.09375,   0.046875, -0.03125,  -0.03125,  -0.328125, 0.140625, -0.3125,   -0.015625, 0.078125,
    0.140625,  0.078125, 0.03125,   0.125,     -0.296875, 0.09375,  -0.046875, -0.328125, 0.109375,
    0.15625,   -0.28125, 0.234375,  0.140625,  0.0,       -0.1875,  -0.171875, 0.25,      -0.140625,
    -0.015625, 0.25,     0.140625,  0.1875,    -0.140625, 0.078125, -0.078125, 0.140625,  0.140625,
    0.078125,  0.03125,  -0.046875, -0.015625, -0.3125,   0.140625, -0.328125, -0.03125,  0.0625};
const std::vector<double> kUnbatchedWeightGrad = {
    0.21875, -0.25,   -0.09375, 0.125,    0.875,    0.21875,  0.125,   0.1875,   -0.0625,
    -0.25,   0.09375, -0.15625, -1.09375, 0.8125,   -1.46875, 0.125,   0.125,    0.28125,
    0.5,     0.03125, 0.1875,   0.125,    -0.0625,  0.09375,  0.125,   0.875,    0.21875,
    -0.5625, 0.4375,  -0.8125,  0.34375,  -1.21875, 0.84375,  0.4375,  -1.03125, 1.03125,
    0.25,    -0.6875, 0.5,      -0.3125,  0.3125,   1.15625,  -0.625,  0.90625,  -1.09375,
    -0.5625, 0.625,   -0.625,   -0.5625,  1.03125,  -0.96875, 0.34375, -1.21875, 0.84375};

}  // namespace

// ---------------------------------------------------------------------------------------------
// gradients against finite differences

TEST_CASE("conv2d gradients match finite differences for a plain 3x3 convolution") {
  check_conv_gradients({2, 3, 5, 5}, {4, 3, 3, 3}, true, {});
}

TEST_CASE("conv2d gradients match finite differences with stride 2 and padding 1") {
  check_conv_gradients({2, 3, 6, 5}, {4, 3, 3, 3}, true, options({2, 2}, {1, 1}, {1, 1}));
}

TEST_CASE("conv2d gradients match finite differences with dilation 2") {
  check_conv_gradients({2, 2, 7, 7}, {3, 2, 3, 3}, true, options({1, 1}, {0, 0}, {2, 2}));
  check_conv_gradients({1, 2, 6, 7}, {3, 2, 2, 3}, true, options({1, 2}, {2, 1}, {2, 2}));
}

TEST_CASE("conv2d gradients match finite differences with groups 2") {
  check_conv_gradients({2, 4, 5, 5}, {6, 2, 3, 3}, true, options({1, 1}, {1, 1}, {1, 1}, 2));
}

TEST_CASE("conv2d gradients match finite differences for depthwise convolutions") {
  // groups = channels, one filter per channel, then two per channel (a channel multiplier)
  check_conv_gradients({2, 3, 5, 5}, {3, 1, 3, 3}, true, options({1, 1}, {1, 1}, {1, 1}, 3));
  check_conv_gradients({2, 3, 5, 6}, {6, 1, 3, 3}, true, options({2, 1}, {1, 0}, {1, 1}, 3));
}

TEST_CASE("conv2d gradients match finite differences without a bias") {
  check_conv_gradients({2, 3, 5, 5}, {4, 3, 3, 3}, false, options({1, 1}, {1, 1}, {1, 1}));
}

TEST_CASE("conv2d gradients match finite differences for 1x1 convolutions") {
  // stride 1 without padding takes the kernel's no-unfolding path; the others unfold
  check_conv_gradients({2, 4, 3, 3}, {5, 4, 1, 1}, true, {});
  check_conv_gradients({2, 4, 4, 3}, {6, 2, 1, 1}, true, options({1, 1}, {0, 0}, {1, 1}, 2));
  check_conv_gradients({2, 4, 5, 5}, {5, 4, 1, 1}, true, options({2, 2}, {1, 0}, {1, 1}));
}

TEST_CASE("conv2d gradients match finite differences for non-square kernels and strides") {
  check_conv_gradients({2, 2, 7, 6}, {3, 2, 3, 2}, true, options({2, 1}, {1, 0}, {1, 2}));
  check_conv_gradients({1, 3, 5, 8}, {2, 3, 1, 4}, true, options({1, 3}, {0, 2}, {1, 1}));
}

TEST_CASE("conv2d gradients match finite differences when padding is wider than the kernel") {
  // whole output rows and columns see only padding
  check_conv_gradients({1, 2, 3, 4}, {2, 2, 2, 2}, true, options({2, 1}, {3, 2}, {1, 1}));
}

TEST_CASE("conv2d gradients match finite differences for an unbatched input") {
  check_gradients(
      [](const Inputs& in) {
        return conv2d(in[0], in[1], in[2], options({1, 2}, {1, 1}, {1, 1}));
      },
      {random_leaf({3, 5, 6}, 4), random_leaf({2, 3, 3, 3}, 5), random_leaf({2}, 6)});
}

TEST_CASE("conv2d computes only the gradients its inputs need") {
  Tensor x = random_leaf({2, 3, 5, 5}, 7), w = random_leaf({4, 3, 3, 3}, 8);
  Tensor b = random_leaf({4}, 9);
  Tensor x_fixed = x.detach(), w_fixed = w.detach(), b_fixed = b.detach();

  sum(conv2d(x_fixed, w, b_fixed)).backward();  // the weight alone
  CHECK(w.grad().defined());
  CHECK(!x_fixed.grad().defined());

  sum(conv2d(x, w_fixed, b_fixed)).backward();  // the input alone
  CHECK(x.grad().defined());

  sum(conv2d(x_fixed, w_fixed, b)).backward();  // the bias alone: 2 samples x 3 x 3 outputs
  check_close(b.grad(), {18, 18, 18, 18}, 1e-12, 0);
}

// ---------------------------------------------------------------------------------------------
// values

TEST_CASE("conv2d matches torch for a grouped strided dilated padded convolution") {
  // torch.nn.functional.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
  Reference ref;
  ref.output = kGroupedOutput;
  ref.input_grad = kGroupedInputGrad;
  ref.weight_grad = kGroupedWeightGrad;
  ref.bias_grad = kGroupedBiasGrad;
  check_against_torch({2, 4, 5, 4}, {4, 2, 3, 2}, true, options({2, 1}, {1, 2}, {1, 2}, 2),
                      {2, 4, 3, 6}, ref);
}

TEST_CASE("conv2d matches torch for an unbatched input without bias") {
  // torch.nn.functional.conv2d(x, w, None, stride=2, padding=1) with x of shape [3, 6, 6]
  Reference ref;
  ref.output = kUnbatchedOutput;
  ref.input_grad = kUnbatchedInputGrad;
  ref.weight_grad = kUnbatchedWeightGrad;
  check_against_torch({3, 6, 6}, {2, 3, 3, 3}, false, options({2, 2}, {1, 1}, {1, 1}), {2, 3, 3},
                      ref);
}

TEST_CASE("conv2d of a batch equals conv2d of each sample") {
  // 7 samples: more than one chunk of samples per thread, and a last chunk that is not full
  Tensor x = random_leaf({7, 4, 6, 5}, 10), w = random_leaf({6, 2, 3, 3}, 11);
  Tensor b = random_leaf({6}, 12);
  const Conv2dOptions o = options({1, 2}, {1, 1}, {2, 1}, 2);
  Tensor batched = conv2d(x, w, b, o);
  std::vector<Tensor> samples;
  for (int64_t n = 0; n < 7; ++n) samples.push_back(conv2d(x.select(0, n), w, b, o));
  check_close(batched, stack(samples), 1e-12, 1e-12);
}

TEST_CASE("conv2d in f32 agrees with f64") {
  Tensor x = random_leaf({3, 4, 7, 7}, 13), w = random_leaf({8, 4, 3, 3}, 14);
  Tensor b = random_leaf({8}, 15);
  const Conv2dOptions o = options({2, 2}, {1, 1}, {1, 1});
  Tensor x32 = x.detach().to(DType::F32).requires_grad_();
  Tensor w32 = w.detach().to(DType::F32).requires_grad_();
  Tensor b32 = b.detach().to(DType::F32).requires_grad_();
  Tensor y64 = conv2d(x, w, b, o), y32 = conv2d(x32, w32, b32, o);
  CHECK(y32.dtype() == DType::F32);
  check_close(y32, y64.to_vector<double>(), 1e-5, 1e-5);
  sum(mul(y64, y64)).backward();
  sum(mul(y32, y32)).backward();
  check_close(x32.grad(), x.grad().to_vector<double>(), 1e-4, 1e-5);
  check_close(w32.grad(), w.grad().to_vector<double>(), 1e-4, 1e-5);
  check_close(b32.grad(), b.grad().to_vector<double>(), 1e-4, 1e-5);
}

TEST_CASE("conv2d of an empty batch is empty and gives zero weight gradients") {
  Tensor x = zeros({0, 3, 5, 5}, DType::F64).requires_grad_();
  Tensor w = random_leaf({4, 3, 3, 3}, 16), b = random_leaf({4}, 17);
  Tensor y = conv2d(x, w, b, options({1, 1}, {1, 1}, {1, 1}));
  CHECK(y.shape() == Shape{0, 4, 5, 5});
  sum(y).backward();
  CHECK(x.grad().shape() == Shape{0, 3, 5, 5});
  check_close(w.grad(), std::vector<double>(108, 0.0), 0, 0);
  check_close(b.grad(), {0, 0, 0, 0}, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// errors

TEST_CASE("conv2d errors name the op and what does not fit") {
  Tensor x = zeros({2, 4, 5, 5}), w = zeros({6, 2, 3, 3});
  check_error([&] { conv2d(zeros({4, 5}), w); }, {"conv2d", "[N, C, H, W]", "[4, 5]"});
  check_error([&] { conv2d(x, zeros({6, 2, 3})); }, {"conv2d", "weight", "[6, 2, 3]"});
  check_error([&] { conv2d(x, w); },
              {"conv2d", "input [2, 4, 5, 5] has 4 channels", "weight [6, 2, 3, 3]", "expects 2"});
  Conv2dOptions three_groups;
  three_groups.groups = 3;
  check_error(
      [&] {
        conv2d(zeros({2, 6, 5, 5}), zeros({4, 2, 3, 3}), Tensor(), three_groups);
      },
      {"conv2d", "groups = 3", "does not divide the output channels", "4"});
  check_error(
      [&] {
        conv2d(zeros({2, 4, 5, 5}), zeros({6, 2, 3, 3}), Tensor(), three_groups);
      },
      {"conv2d", "groups = 3", "does not divide the input channels", "4"});
  check_error(
      [&] {
        conv2d(zeros({1, 2, 2, 5}), zeros({3, 2, 3, 3}));
      },
      {"conv2d", "output size 0 x 3 is not positive", "input 2 x 5", "kernel 3 x 3"});
  check_error(
      [&] {
        conv2d(zeros({1, 2, 4, 4}), zeros({3, 2, 3, 3}), Tensor(), options({1, 1}, {0, 0}, {2, 2}));
      },
      {"conv2d", "output size 0 x 0", "dilation (2, 2)"});
  Conv2dOptions groups_2;
  groups_2.groups = 2;
  check_error([&] { conv2d(x, w, zeros({4}), groups_2); }, {"conv2d", "bias", "[6]", "[4]"});
  check_error([&] { conv2d(x, w.to(DType::F64), Tensor(), groups_2); },
              {"conv2d", "dtypes differ", "f64"});
  check_error([&] { conv2d(x.to(DType::I64), w, Tensor(), groups_2); }, {"conv2d", "i64"});
  check_error(
      [&] {
        conv2d(x, w, Tensor(), options({0, 1}, {0, 0}, {1, 1}, 2));
      },
      {"conv2d", "stride", "(0, 1)"});
  check_error(
      [&] {
        conv2d(x, w, Tensor(), options({1, 1}, {-1, 0}, {1, 1}, 2));
      },
      {"conv2d", "padding", "(-1, 0)"});
  check_error(
      [&] {
        conv2d(x, w, Tensor(), options({1, 1}, {0, 0}, {1, 0}, 2));
      },
      {"conv2d", "dilation", "(1, 0)"});
}
