// Every CUDA kernel against its CPU reference. Each case computes the same thing on both devices
// from identical inputs and compares the outputs and the gradients at f32 tolerances, with TF32
// off; cuda_compare.h describes the skip marker, EMBER_COMPARE_ON_CPU and EMBER_GPU_REPORT.
#include <doctest/doctest.h>

#include <vector>

#include "cuda_compare.h"

using namespace ember;
using namespace ember::test;

namespace {

Tensor labels(const std::vector<int64_t>& values, Device device) {
  return tensor(values).to(device);
}

CaseBody unary_case(Tensor (*op)(const Tensor&), double lo = 0, double hi = 0) {
  return [=](Device d) {
    Tensor x = input({37, 129}, d, 1, true, lo, hi);
    return with_gradients(op(x), {x});
  };
}

CaseBody binary_case(Tensor (*op)(const Tensor&, const Tensor&), double lo = 0, double hi = 0) {
  return [=](Device d) {
    Tensor a = input({4, 1, 33}, d, 2, true, lo, hi);
    Tensor b = input({5, 33}, d, 3, true, lo, hi);
    return with_gradients(op(a, b), {a, b});
  };
}

Tensor gelu_erf(const Tensor& x) {
  return gelu(x);
}
Tensor gelu_tanh(const Tensor& x) {
  return gelu(x, "tanh");
}

}  // namespace

// ---- memory and copies ----
CUDA_CASE("copy and cast between dtypes", [](Device d) {
  Tensor x = input({8, 65}, d, 4, false);
  std::vector<Tensor> out;
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8})
    out.push_back(mul(x, 20.0).to(t).to(DType::F32));
  return out;
})
CUDA_CASE("strided copy of transposed and sliced views", [](Device d) {
  Tensor x = input({6, 7, 8}, d, 5, false);
  return std::vector<Tensor>{x.permute({2, 0, 1}).contiguous(), x.slice(2, 1, 8, 3).contiguous(),
                             x.select(1, 3).t().contiguous(),
                             x.narrow(0, 2, 3).expand({2, 3, 7, 8}).contiguous()};
})
CUDA_CASE("fill and arange", [](Device d) {
  return std::vector<Tensor>{full({1000}, 3.25, d), arange(-5, 100, 0.5, d),
                             arange(0, 1000, 7, {DType::I64, d}).to(DType::F32)};
})

// ---- unary ----
CUDA_CASE("neg", unary_case(neg))
CUDA_CASE("exp", unary_case(exp))
CUDA_CASE("log", unary_case(log, 0.1, 5))
CUDA_CASE("sqrt", unary_case(sqrt, 0.1, 5))
CUDA_CASE("rsqrt", unary_case(rsqrt, 0.1, 5))
CUDA_CASE("abs", unary_case(abs))
CUDA_CASE("relu", unary_case(relu))
CUDA_CASE("gelu", unary_case(gelu_erf))
CUDA_CASE("gelu tanh", unary_case(gelu_tanh))
CUDA_CASE("sigmoid", unary_case(sigmoid))
CUDA_CASE("tanh", unary_case(tanh))
CUDA_CASE("pow by scalar", [](Device d) {
  Tensor x = input({300}, d, 6, true, 0.1, 3);
  return with_gradients(add(pow(x, 2.5), pow(x, -1.5)), {x});
})
CUDA_CASE("clamp", [](Device d) {
  Tensor x = input({300}, d, 7);
  return with_gradients(clamp(x, -0.5, 0.7), {x});
})
CUDA_CASE("scalar add mul and division", [](Device d) {
  Tensor x = input({300}, d, 8, true, 0.5, 2);
  return with_gradients(add(mul(x, 3.0), 1.5) + 2.0 / x + x / 3.0, {x});
})

// ---- binary and selection ----
CUDA_CASE("add", binary_case(add))
CUDA_CASE("sub", binary_case(sub))
CUDA_CASE("mul", binary_case(mul))
CUDA_CASE("div", binary_case(div, 0.5, 2))
CUDA_CASE("maximum", binary_case(maximum))
CUDA_CASE("minimum", binary_case(minimum))
CUDA_CASE("comparisons", [](Device d) {
  Tensor a = input({3, 1, 40}, d, 9, false), b = input({5, 40}, d, 10, false);
  Tensor ai = mul(a, 3.0).to(DType::I64), bi = mul(b, 3.0).to(DType::I64);
  return std::vector<Tensor>{eq(ai, bi), ne(ai, bi), lt(a, b),  le(ai, bi),
                             gt(a, b),   ge(a, b),   gt(a, 0.0)};
})
CUDA_CASE("integer arithmetic", [](Device d) {
  Tensor a = mul(input({100}, d, 11, false), 50.0).to(DType::I64);
  Tensor b = mul(input({100}, d, 12, false), 50.0).to(DType::I32);
  return std::vector<Tensor>{add(a, a), sub(a, add(a, a)), mul(b, b), minimum(b, mul(b, b))};
})
CUDA_CASE("where", [](Device d) {
  Tensor a = input({4, 30}, d, 13), b = input({30}, d, 14);
  Tensor cond = gt(input({4, 1}, d, 15, false), 0.0);
  return with_gradients(where(cond, a, b), {a, b});
})
// Bit-identical (tolerance 0): the same Philox words give the same mask on both devices.
CUDA_CASE(
    "dropout draws the same mask",
    [](Device d) {
      Tensor x = input({1000}, d, 16);
      Generator g(17);
      return with_gradients(dropout(x, 0.3, true, &g), {x});
    },
    0, 0)

// ---- random numbers ----
CUDA_CASE(
    "uniform numbers are identical",
    [](Device d) {
      Generator g(18);
      return std::vector<Tensor>{uniform({10001}, -2, 3, d, &g), uniform({7}, 0, 1, d, &g)};
    },
    0, 0)
CUDA_CASE("normal numbers agree", [](Device d) {
  Generator g(19);
  return std::vector<Tensor>{normal({10001}, 1, 2, d, &g)};
})

// ---- reductions ----
CUDA_CASE("sum and mean over dims", [](Device d) {
  Tensor x = input({7, 33, 65}, d, 20);
  Tensor over_middle = mul(sum(x, {1}), mean(x, {1}));  // [7, 65]: a middle axis
  Tensor over_outer = sum(x, {0, 2});                   // [33]: non-adjacent dims
  std::vector<Tensor> out =
      with_gradients(sum(over_middle) + sum(mul(over_outer, over_outer)), {x});
  out.push_back(over_outer);
  out.push_back(mean(x, {-1}, true));
  return out;
})
CUDA_CASE("sum of a long axis", [](Device d) {
  Tensor x = input({1 << 20}, d, 21);
  return with_gradients(sum(x), {x});
})
CUDA_CASE("integer sum", [](Device d) {
  Tensor x = mul(input({3, 1000}, d, 22, false), 10.0).to(DType::I32);
  return std::vector<Tensor>{sum(x, {1}), sum(gt(x, 0.0))};
})
CUDA_CASE("max and min along a dim", [](Device d) {
  Tensor x = input({9, 130, 5}, d, 23);
  ValuesIndices a = max(x, 1), b = min(x, -1, true);
  std::vector<Tensor> out = with_gradients(sum(a.values) + sum(b.values), {x});
  out.push_back(a.indices);
  out.push_back(b.indices);
  out.push_back(argmax(x, 0));
  out.push_back(argmin(x.reshape({-1}), 0));
  return out;
})
CUDA_CASE("var", [](Device d) {
  Tensor x = input({6, 257}, d, 24);
  return with_gradients(sum(var(x, {1})) + sum(var(x, {0}, 0)), {x});
})
CUDA_CASE("topk", [](Device d) {
  Tensor x = input({11, 300}, d, 25);
  ValuesIndices a = topk(x, 5), b = topk(x, 3, 0, false);
  std::vector<Tensor> out =
      with_gradients(sum(a.values, {1}) + sum(b.values, {0}).narrow(0, 0, 11), {x});
  out.push_back(a.indices);
  out.push_back(b.indices);
  return out;
})

// ---- matrix products ----
CUDA_CASE("matmul", [](Device d) {
  Tensor a = input({67, 129}, d, 26), b = input({129, 35}, d, 27);
  return with_gradients(matmul(a, b), {a, b});
})
CUDA_CASE("matmul of transposed operands", [](Device d) {
  Tensor a = input({129, 67}, d, 28), b = input({35, 129}, d, 29);
  return with_gradients(matmul(a.t(), b.t()), {a, b});
})
CUDA_CASE("batched matmul with broadcasting", [](Device d) {
  Tensor a = input({3, 1, 17, 40}, d, 30), b = input({4, 40, 9}, d, 31);
  return with_gradients(matmul(a, b), {a, b});
})
CUDA_CASE("matrix-vector and dot products", [](Device d) {
  Tensor m = input({20, 30}, d, 32), v = input({30}, d, 33), w = input({20}, d, 34);
  return with_gradients(matmul(w, matmul(m, v)).reshape({1}) + matmul(v, v), {m, v, w});
})

// ---- softmax and losses ----
CUDA_CASE("softmax", [](Device d) {
  Tensor x = input({13, 1000}, d, 35);
  return with_gradients(softmax(x, -1), {x});
})
CUDA_CASE("softmax along a middle dim", [](Device d) {
  Tensor x = input({4, 50, 6}, d, 36);
  return with_gradients(softmax(x, 1), {x});
})
CUDA_CASE("log_softmax", [](Device d) {
  Tensor x = input({13, 1000}, d, 37);
  return with_gradients(log_softmax(x, 1) + log_softmax(x, 0) * 0.5, {x});
})
CUDA_CASE("cross_entropy", [](Device d) {
  Tensor logits = input({6, 10}, d, 38);
  Tensor target = labels({3, 0, 9, 1, -100, 5}, d);
  Tensor a = cross_entropy(logits, target);
  Tensor b = cross_entropy(logits, target, {Reduction::None, 0.1, -100});
  return with_gradients(a + sum(b) * 0.3, {logits});
})
CUDA_CASE("nll_loss", [](Device d) {
  Tensor logits = input({6, 10}, d, 39);
  return with_gradients(nll_loss(log_softmax(logits, 1), labels({3, 0, 9, 1, 2, 5}, d)), {logits});
})

// ---- indexing, joining ----
CUDA_CASE("index_select and embedding", [](Device d) {
  Tensor w = input({50, 16}, d, 40), x = input({4, 9, 3}, d, 41);
  Tensor rows = labels({3, 3, 8, 0, 7}, d);
  Tensor looked_up = embedding(w, labels({1, 2, 1, 1, 49, 9}, d).reshape({2, 3}));  // [2, 3, 16]
  return with_gradients(sum(mul(looked_up, looked_up)) + sum(index_select(x, 1, rows)), {w, x});
})
CUDA_CASE("gather", [](Device d) {
  Tensor x = input({5, 8}, d, 42);
  Tensor index = labels({0, 7, 7, 1, 2, 2, 3, 3, 4, 4, 0, 0, 5, 6, 1}, d).reshape({5, 3});
  return with_gradients(gather(x, 1, index), {x});
})
CUDA_CASE("cat stack and split", [](Device d) {
  Tensor a = input({3, 4}, d, 43), b = input({3, 2}, d, 44);
  std::vector<Tensor> pieces = split(cat({a, b, a}, 1), 3, 1);
  return with_gradients(stack({pieces[0], pieces[2]}, 1), {a, b});
})
