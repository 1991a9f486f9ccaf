// Helpers shared by ember's tests: value comparisons with readable failure messages, f64 test
// tensors, and the GPU skip marker.
//
// A test that needs a GPU calls EMBER_REQUIRE_GPU() first. Without a GPU it prints
// "[ember] SKIPPED: ..." and returns; ctest's SKIP_REGULAR_EXPRESSION (CMakeLists.txt) turns
// that line into a visible "skipped" for that test, by name.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/ember.h"

namespace ember::test {

inline Tensor f64(const std::vector<double>& values, const Shape& shape = {-1}) {
  return tensor(values, shape);
}

// Every element of `actual` within atol + rtol * |expected| of `expected`; NaN equals NaN.
inline void check_close(const Tensor& actual, const std::vector<double>& expected,
                        double atol = 1e-6, double rtol = 1e-6) {
  const std::vector<double> got = actual.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(expected[i]);
    const bool same_inf = std::isinf(got[i]) && got[i] == expected[i];
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    CHECK((both_nan || same_inf ||
           std::abs(got[i] - expected[i]) <= atol + rtol * std::abs(expected[i])));
  }
}

inline void check_close(const Tensor& actual, const Tensor& expected, double atol = 1e-6,
                        double rtol = 1e-6) {
  CHECK(actual.shape() == expected.shape());
  check_close(actual, expected.to_vector<double>(), atol, rtol);
}

inline void check_equal(const Tensor& actual, const std::vector<int64_t>& expected) {
  CHECK(actual.to_vector<int64_t>() == expected);
}

// Runs ember's gradient check and reports the worst element on failure.
inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                            const std::vector<Tensor>& inputs, GradcheckOptions options = {}) {
  const GradcheckResult r = gradcheck(fn, inputs, options);
  INFO(r.message);
  CHECK(r.ok);
}

// An f64 leaf with standard-normal values (deterministic for a given seed).
inline Tensor random_leaf(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return normal(shape, 0, 1, DType::F64, &g).requires_grad_();
}

inline bool gpu_or_skip() {
  if (cuda_available()) return true;
  std::printf("[ember] SKIPPED: no GPU (%s)\n", cuda_unavailable_reason().c_str());
  return false;
}

}  // namespace ember::test

#define EMBER_REQUIRE_GPU() \
  if (!::ember::test::gpu_or_skip()) return
