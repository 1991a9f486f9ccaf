// Comparing CUDA with the CPU: a case computes the same thing on both devices from identical
// inputs (made on the CPU, then copied) and compares the outputs and the gradients at f32
// tolerances, with TF32 off. Without a GPU each case prints the skip marker and ctest lists it as
// skipped, by name.
//
// With EMBER_COMPARE_ON_CPU=1 the "CUDA" side runs on the CPU too: CI uses it (ctest tests
// cuda_cases_on_cpu and cuda_optimizer_cases_on_cpu) to run every case body, so a broken case is
// found without a GPU.
//
// With EMBER_GPU_REPORT=FILE set (make gpu-check sets it), each case appends one JSON line
// with its errors to FILE; scripts/gpu_report.py turns those lines into the report.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

namespace ember::test {

// A leaf on `device` with values from a seeded normal (or uniform in [lo, hi)), made on the CPU.
inline Tensor input(const Shape& shape, Device device, uint64_t seed, bool requires_grad = true,
                    double lo = 0, double hi = 0) {
  Generator g(seed);
  Tensor cpu =
      lo < hi ? uniform(shape, lo, hi, DType::F32, &g) : normal(shape, 0, 1, DType::F32, &g);
  Tensor t = cpu.to(device);
  if (requires_grad) t.requires_grad_();
  return t;
}

// Backpropagates a fixed random projection of `out` and returns out plus the inputs' grads.
inline std::vector<Tensor> with_gradients(const Tensor& out, const std::vector<Tensor>& inputs) {
  Generator g(99);
  Tensor projection = normal(out.shape(), 0, 1, DType::F32, &g).to(out.device());
  sum(mul(out, projection)).backward();
  std::vector<Tensor> results = {out};
  for (const Tensor& x : inputs) results.push_back(x.grad());
  return results;
}

// Appends one JSON line with a case's result and errors to $EMBER_GPU_REPORT, if it is set.
inline void report(const std::string& op, bool pass, double max_abs, double max_rel, double atol,
                   double rtol) {
  const char* path = std::getenv("EMBER_GPU_REPORT");
  if (!path || !*path) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f,
                 "{\"op\": \"%s\", \"pass\": %s, \"max_abs_error\": %.3e, \"max_rel_error\": "
                 "%.3e, \"atol\": %.1e, \"rtol\": %.1e}\n",
                 op.c_str(), pass ? "true" : "false", max_abs, max_rel, atol, rtol);
    std::fclose(f);
  }
}

// How the CUDA results are compared with the CPU's.
struct Comparison {
  double atol = 1e-5;
  double rtol = 1e-4;
  // false: each element within atol + rtol * |cpu| of the CPU's; the relative error reported is
  // the largest |cuda - cpu| / |cpu| over elements larger than atol.
  // true: each element within atol + rtol * max|cpu| over its result; the relative error reported
  // is the largest |cuda - cpu| / max|cpu|. For results whose elements are long sums, where two
  // summation orders differ with the size of the sums, not of the element.
  bool relative_to_largest = false;
  // Whether NaN on both sides, and the same infinity on both sides, match; if not, they fail.
  bool nonfinite_match = true;
  // What each result is, for failure messages; "result k" where none is given.
  std::vector<std::string> names;
};

// One computation on `device`: returns the tensors to compare.
using CaseBody = std::function<std::vector<Tensor>(Device)>;

// Runs `body` on the CPU and on CUDA (or on the CPU again, with EMBER_COMPARE_ON_CPU=1) and
// compares every returned tensor.
inline void compare_on_cuda(const std::string& op, const CaseBody& body, const Comparison& how) {
  const char* on_cpu = std::getenv("EMBER_COMPARE_ON_CPU");
  const bool self_check = on_cpu && std::string(on_cpu) == "1";
  if (!self_check) EMBER_REQUIRE_GPU();
  const Device device = self_check ? Device::cpu() : Device::cuda(0);
  set_allow_tf32(false);
  const std::vector<Tensor> expected = body(Device::cpu());
  const std::vector<Tensor> actual = body(device);
  REQUIRE(expected.size() == actual.size());
  bool pass = true;
  double max_abs = 0, max_rel = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    const std::string what = k < how.names.size() ? how.names[k] : "result " + std::to_string(k);
    INFO(op << ": " << what);
    REQUIRE(actual[k].defined());
    REQUIRE(actual[k].device() == device);
    REQUIRE(actual[k].shape() == expected[k].shape());
    REQUIRE(actual[k].dtype() == expected[k].dtype());
    const std::vector<double> a = actual[k].to_vector<double>(),
                              e = expected[k].to_vector<double>();
    double largest = 0;
    if (how.relative_to_largest)
      for (double v : e) largest = std::max(largest, std::abs(v));
    for (size_t i = 0; i < a.size(); ++i) {
      if (how.nonfinite_match && std::isnan(a[i]) && std::isnan(e[i])) continue;
      const double diff = std::abs(a[i] - e[i]);
      const double scale = how.relative_to_largest ? largest : std::abs(e[i]);
      const bool close = diff <= how.atol + how.rtol * scale ||
                         (how.nonfinite_match && std::isinf(e[i]) && a[i] == e[i]);
      max_abs = std::max(max_abs, diff);
      if (how.relative_to_largest ? scale > 0 : scale > how.atol)
        max_rel = std::max(max_rel, diff / scale);
      if (!close) {
        if (pass)
          INFO("first mismatch in " << what << " at element " << i << ": cuda " << a[i]
                                    << " vs cpu " << e[i]);
        pass = false;
      }
    }
  }
  report(op, pass, max_abs, max_rel, how.atol, how.rtol);
  CHECK_MESSAGE(pass,
                op << ": max abs error " << max_abs
                   << (how.relative_to_largest ? ", max error relative to the largest element "
                                               : ", max rel error ")
                   << max_rel);
}

inline void compare_on_cuda(const std::string& op, const CaseBody& body, double atol = 1e-5,
                            double rtol = 1e-4) {
  Comparison how;
  how.atol = atol;
  how.rtol = rtol;
  compare_on_cuda(op, body, how);
}

}  // namespace ember::test

// A test case "cuda matches cpu for NAME": compare_on_cuda(NAME, body[, atol, rtol]).
#define CUDA_CASE(name, ...)                           \
  TEST_CASE("cuda matches cpu for " name) {            \
    ::ember::test::compare_on_cuda(name, __VA_ARGS__); \
  }
