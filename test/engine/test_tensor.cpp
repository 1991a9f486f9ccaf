// Tensors: creation, dtypes and conversions, views and broadcasting, copies, reading values
// back, devices and the errors that name what went wrong.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support.h"
#include "temporary_files.h"  // error_of, contains

using namespace ember;
using ember::test::check_close;
using ember::test::contains;
using ember::test::error_of;
using ember::test::f64;

TEST_CASE("creation ops fill shape dtype and values") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == DType::F32);
  CHECK(z.device() == Device::cpu());
  CHECK(z.strides() == Shape{3, 1});
  check_close(z, std::vector<double>(6, 0.0));
  check_close(ones({2}, DType::F64), {1, 1});
  check_close(full({3}, -2.5, DType::F64), {-2.5, -2.5, -2.5});
  check_close(arange(5, DType::I64), {0, 1, 2, 3, 4});
  check_close(arange(1, 2, 0.25, DType::F64), {1, 1.25, 1.5, 1.75});
  check_close(arange(3, 0, -1, DType::I32), {3, 2, 1});
  CHECK(arange(0, DType::F32).numel() == 0);
  Tensor s = scalar_tensor(4, DType::I64);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item<int64_t>() == 4);
  Tensor t = tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, -1});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(zeros_like(t).shape() == t.shape());
  CHECK(full_like(t, 7).to_vector<float>() == std::vector<float>(6, 7.0f));
  CHECK(empty({0, 4}).numel() == 0);
}

TEST_CASE("every dtype converts to every other") {
  const std::vector<DType> all = {DType::F32, DType::F64, DType::BF16, DType::F16,
                                  DType::I32, DType::I64, DType::U8};
  Tensor source = f64({0, 1, 2, 3, 100, 255});
  for (DType a : all)
    for (DType b : all) {
      INFO(dtype_name(a), " -> ", dtype_name(b));
      Tensor converted = source.to(a).to(b);
      CHECK(converted.dtype() == b);
      check_close(converted, {0, 1, 2, 3, 100, 255});  // all exactly representable
    }
}

TEST_CASE("float to integer conversion truncates toward zero and u8 wraps") {
  check_close(f64({1.9, -1.9, 0.5}).to(DType::I32), {1, -1, 0});
  check_close(f64({256, 257, -1}).to(DType::U8), {0, 1, 255});
}

TEST_CASE("half and bfloat16 round to nearest even with the IEEE bit patterns") {
  CHECK(float_to_f16_bits(1.0f) == 0x3c00);
  CHECK(float_to_f16_bits(-2.0f) == 0xc000);
  CHECK(float_to_f16_bits(65504.0f) == 0x7bff);            // largest half
  CHECK(float_to_f16_bits(65520.0f) == 0x7c00);            // rounds up to infinity
  CHECK(float_to_f16_bits(5.9604645e-8f) == 0x0001);       // smallest subnormal
  CHECK(float_to_f16_bits(2.9802322e-8f) == 0x0000);       // half of it: tie rounds to even (0)
  CHECK(float_to_f16_bits(1.0f + 1.0f / 2048) == 0x3c00);  // tie between 1 and 1+2^-10: even
  CHECK(float_to_f16_bits(1.0f + 3.0f / 2048) == 0x3c02);  // tie: rounds up to even
  CHECK(std::isnan(f16_bits_to_float(float_to_f16_bits(std::nanf("")))));
  CHECK(f16_bits_to_float(0x0001) == 5.9604645e-8f);
  CHECK(f16_bits_to_float(0x7bff) == 65504.0f);
  CHECK(std::isinf(f16_bits_to_float(0xfc00)));

  CHECK(float_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(float_to_bf16_bits(-1.0f) == 0xbf80);
  CHECK(float_to_bf16_bits(1.0f + 1.0f / 256) == 0x3f80);  // tie: even
  CHECK(float_to_bf16_bits(1.0f + 3.0f / 256) == 0x3f82);  // tie: up to even
  CHECK(bf16_bits_to_float(0x4049) == 3.140625f);
  CHECK(std::isnan(bf16_bits_to_float(float_to_bf16_bits(std::nanf("")))));
}

TEST_CASE("dtype and device names parse and errors name the text") {
  CHECK(dtype_from_name("float32") == DType::F32);
  CHECK(dtype_from_name("bf16") == DType::BF16);
  CHECK(contains(error_of([] { dtype_from_name("float7"); }), "float7"));
  CHECK(Device::parse("cuda:3") == Device::cuda(3));
  CHECK(Device::parse("cpu").is_cpu());
  CHECK(Device::parse("cuda").index == 0);
  CHECK(contains(error_of([] { Device::parse("gpu0"); }), "gpu0"));
  CHECK(contains(error_of([] { Device::parse("cuda:x"); }), "cuda:x"));
}

TEST_CASE("reshape and view share storage and keep values in row-major order") {
  Tensor x = arange(6, DType::F64);
  Tensor v = x.view({2, 3});
  CHECK(v.storage() == x.storage());
  CHECK(v.strides() == Shape{3, 1});
  check_close(v.select(1, 2), {2, 5});
  Tensor r = x.reshape({3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.storage() == x.storage());
  CHECK(x.reshape({1, 6, 1}).flatten().shape() == Shape{6});
  CHECK(v.flatten(0, 1).shape() == Shape{6});
}

TEST_CASE("transpose and permute swap strides without copying") {
  Tensor x = arange(24, DType::F64).view({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(p.storage() == x.storage());
  CHECK_FALSE(p.is_contiguous());
  // p[i][j][k] = x[j][k][i] = 12 j + 4 k + i
  check_close(p.select(0, 1).select(0, 1), {13, 17, 21});
  Tensor t = x.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  check_close(arange(6, DType::F64).view({2, 3}).t(), {0, 3, 1, 4, 2, 5});
}

TEST_CASE("a transposed tensor cannot be viewed but can be reshaped") {
  Tensor t = arange(6, DType::F64).view({2, 3}).t();
  const std::string message = error_of([&] { t.view({6}); });
  CHECK(contains(message, "view"));
  CHECK(contains(message, "reshape"));
  Tensor r = t.reshape({6});
  CHECK(r.storage() != t.storage());  // a copy
  check_close(r, {0, 3, 1, 4, 2, 5});
}

TEST_CASE("narrow slice and select address sub-blocks") {
  Tensor x = arange(12, DType::F64).view({3, 4});
  Tensor n = x.narrow(1, 1, 2);
  CHECK(n.shape() == Shape{3, 2});
  CHECK(n.offset() == 1);
  check_close(n, {1, 2, 5, 6, 9, 10});
  check_close(x.slice(1, 0, 4, 2), {0, 2, 4, 6, 8, 10});
  check_close(x.slice(0, -2, 100), {4, 5, 6, 7, 8, 9, 10, 11});
  check_close(x.select(0, -1), {8, 9, 10, 11});
  CHECK(contains(error_of([&] { x.narrow(1, 3, 2); }), "narrow"));
  CHECK(contains(error_of([&] { x.select(0, 3); }), "select"));
}

TEST_CASE("expand broadcasts with stride zero") {
  Tensor x = f64({1, 2, 3}, {3, 1});
  Tensor e = x.expand({2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.storage() == x.storage());
  check_close(e.select(0, 1).select(0, 2), {3, 3, 3, 3});
  CHECK(x.expand({-1, 5}).shape() == Shape{3, 5});
  CHECK(contains(error_of([&] { x.expand({4, 4}); }), "expand"));
}

TEST_CASE("squeeze and unsqueeze add and remove unit dims") {
  Tensor x = zeros({2, 1, 3});
  CHECK(x.squeeze(1).shape() == Shape{2, 3});
  CHECK(x.squeeze(0).shape() == Shape{2, 1, 3});  // not size 1: unchanged
  CHECK(x.unsqueeze(0).shape() == Shape{1, 2, 1, 3});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 1, 3, 1});
}

TEST_CASE("broadcasting shapes follow numpy rules and errors name op and shapes") {
  CHECK(broadcast_shapes({3, 1, 4}, {2, 4}, "add") == Shape{3, 2, 4});
  CHECK(broadcast_shapes({}, {5}, "add") == Shape{5});
  const std::string message = error_of([] { broadcast_shapes({2, 3}, {4}, "add"); });
  CHECK(contains(message, "add"));
  CHECK(contains(message, "[2, 3]"));
  CHECK(contains(message, "[4]"));
  check_close(add(f64({1, 2}, {2, 1}), f64({10, 20, 30})), {11, 21, 31, 12, 22, 32});
}

TEST_CASE("contiguous copies only when needed and clone always copies") {
  Tensor x = arange(6, DType::F64).view({2, 3});
  CHECK(x.contiguous().is_same(x));
  Tensor t = x.t().contiguous();
  CHECK(t.is_contiguous());
  CHECK(t.storage() != x.storage());
  check_close(t, {0, 3, 1, 4, 2, 5});
  Tensor c = x.clone();
  CHECK(c.storage() != x.storage());
  check_close(c, x);
}

TEST_CASE("copy_ broadcasts converts dtype and writes through views") {
  Tensor x = zeros({2, 3}, DType::F64);
  x.narrow(1, 1, 2).copy_(tensor(std::vector<int32_t>{7, 8}));
  check_close(x, {0, 7, 8, 0, 7, 8});
  x.t().select(0, 0).fill_(-1);  // column 0 through a transposed view
  check_close(x, {-1, 7, 8, -1, 7, 8});
  x.zero_();
  check_close(x, std::vector<double>(6, 0.0));
  CHECK(contains(error_of([&] { x.copy_(zeros({4})); }), "copy"));
}

TEST_CASE("item and to_vector read values back and check the element count") {
  Tensor x = f64({1.5, 2.5, 3.5});
  CHECK(x.select(0, 1).item<double>() == 2.5);
  CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  CHECK(x.t().to_vector<float>() == std::vector<float>{1.5f, 2.5f, 3.5f});
  CHECK(contains(error_of([&] { x.item<double>(); }), "item"));
}

TEST_CASE("data returns a typed pointer and checks the dtype") {
  Tensor x = f64({1, 2, 3});
  CHECK(x.data<double>()[2] == 3.0);
  CHECK(contains(error_of([&] { x.data<float>(); }), "f64"));
}

TEST_CASE("tensors print their values and metadata") {
  const std::string text = f64({1, 2}).str();
  CHECK(contains(text, "1, 2"));
  CHECK(contains(text, "shape=[2]"));
  CHECK(contains(text, "dtype=f64"));
  CHECK(contains(text, "device=cpu"));
  CHECK(contains(arange(100, DType::I64).str(), "..."));
}

TEST_CASE("ops refuse mixed dtypes and devices with messages naming both") {
  std::string message = error_of([] { add(ones({2}, DType::F32), ones({2}, DType::F64)); });
  CHECK(contains(message, "add"));
  CHECK(contains(message, "f32"));
  CHECK(contains(message, "f64"));
  message = error_of([] { relu(ones({2}, DType::I64)); });
  CHECK(contains(message, "relu"));
  CHECK(contains(message, "i64"));
  message = error_of([] { exp(ones({2}, DType::BF16)); });
  CHECK(contains(message, "bf16"));
  CHECK(contains(message, "F32"));
}

TEST_CASE("asking for a CUDA device without a usable GPU says why") {
  if (cuda_available()) return;  // the error path exists only without a GPU
  const std::string message = error_of([] { zeros({2}, Device::cuda()); });
  CHECK(contains(message, "cuda:0"));
  CHECK(contains(message, cuda_compiled() ? "no usable GPU" : "without CUDA"));
  CHECK(best_available_device() == Device::cpu());
  CHECK(resolve_device("auto") == Device::cpu());
  CHECK(contains(error_of([] { resolve_device("cuda:1"); }), "cuda:1"));
}

TEST_CASE("f64 tensors stay on the CPU") {
  if (!cuda_available()) {
    // Without a GPU the device check comes first; the f64 rule is checked on GPU machines.
    CHECK_THROWS_AS(zeros({2}, {DType::F64, Device::cuda()}), Error);
    return;
  }
  const std::string message = error_of([] { ones({2}, DType::F64).to(Device::cuda()); });
  CHECK(contains(message, "f64"));
  CHECK(contains(message, "CPU"));
}
