// The autograd engine: gradient accumulation, NoGrad, detach, graph lifetime, and the hooks
// the distributed algorithms are built on (order, replacement, leaf-final).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support.h"

using namespace ember;
using ember::test::check_close;
using ember::test::f64;

TEST_CASE("backward applies the chain rule through a small graph") {
  // y = sum((a * b + a)^2); dy/da = 2 (ab + a)(b + 1), dy/db = 2 (ab + a) a
  Tensor a = f64({1, 2, 3}).requires_grad_();
  Tensor b = f64({4, 5, 6}).requires_grad_();
  Tensor u = a * b + a;
  sum(u * u).backward();
  check_close(a.grad(), {2 * 5 * 5, 2 * 12 * 6, 2 * 21 * 7});
  check_close(b.grad(), {2 * 5 * 1, 2 * 12 * 2, 2 * 21 * 3});
}

TEST_CASE("a tensor used twice receives the sum of both gradients") {
  Tensor x = f64({2}).requires_grad_();
  Tensor y = x * x + exp(x);  // dy/dx = 2x + e^x
  y.backward();
  check_close(x.grad(), {4 + std::exp(2.0)}, 1e-12);
}

TEST_CASE("gradients accumulate into grad across backward calls") {
  Tensor x = f64({1, -1}).requires_grad_();
  sum(mul(x, 3.0)).backward();
  sum(mul(x, 4.0)).backward();
  check_close(x.grad(), {7, 7});
}

TEST_CASE("accumulation writes into an existing grad tensor in place") {
  // Flat gradient buffers: .grad set to a view must stay a view of the buffer.
  Tensor buffer = zeros({5}, DType::F64);
  Tensor w = f64({1, 2, 3}).requires_grad_();
  w.set_grad(buffer.narrow(0, 1, 3));
  sum(mul(w, 2.0)).backward();
  check_close(buffer, {0, 2, 2, 2, 0});
  CHECK(w.grad().storage() == buffer.storage());
}

TEST_CASE("NoGrad records nothing and restores the previous mode") {
  Tensor x = f64({1, 2}).requires_grad_();
  {
    NoGrad no_grad;
    Tensor y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    { NoGrad nested; }
    CHECK_FALSE(grad_mode_enabled());
  }
  CHECK(grad_mode_enabled());
  CHECK((x * x).requires_grad());
}

TEST_CASE("detach shares storage and cuts the graph") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == y.storage());
  Tensor z = sum(d * x);  // gradient flows only through x
  z.backward();
  check_close(x.grad(), {2, 4});
}

TEST_CASE("requires_grad propagates only from inputs that require it") {
  Tensor a = f64({1});
  Tensor b = f64({2}).requires_grad_();
  CHECK_FALSE((a * a).requires_grad());
  Tensor c = a * b;
  CHECK(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK(c.grad_fn()->name() == "mulBackward");
  CHECK_THROWS_AS(c.requires_grad_(), Error);                                // not a leaf
  CHECK_THROWS_AS(tensor(std::vector<int64_t>{1}).requires_grad_(), Error);  // not a float
}

TEST_CASE("a second backward through a freed graph is an error unless retain_graph") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed: the first call kept the graph
  check_close(x.grad(), {2 * std::exp(1.0), 2 * std::exp(2.0)}, 1e-12);
  try {
    y.backward();
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("retain_graph") != std::string::npos);
  }
}

TEST_CASE("backward of a non-scalar needs an explicit gradient") {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_AS(y.backward(), Error);
  y.backward(f64({1, 0, -1}));
  check_close(x.grad(), {2, 0, -2});
  CHECK_THROWS_AS(f64({1.0}).backward(), Error);  // does not require grad
}

TEST_CASE("a hook on an intermediate tensor sees its delta dL/dy") {
  // L = sum(w * y), y = 3 x: the hook on y must see w.
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor w = f64({5, 7});
  Tensor y = x * 3.0;
  std::vector<double> seen;
  y.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    seen = g.to_vector<double>();
    return std::nullopt;
  });
  sum(w * y).backward();
  CHECK(seen == std::vector<double>{5, 7});
  check_close(x.grad(), {15, 21});
}

TEST_CASE("hooks run in registration order and a returned tensor replaces the gradient") {
  Tensor x = f64({1, 1}).requires_grad_();
  Tensor y = x * 2.0;
  std::vector<std::string> order;
  y.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    order.push_back("first");
    return mul(g, 10.0);
  });
  y.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    order.push_back("second");
    check_close(g, {10, 10});  // sees the first hook's replacement
    return std::nullopt;
  });
  sum(y).backward();
  CHECK(order == std::vector<std::string>{"first", "second"});
  check_close(x.grad(), {20, 20});
}

TEST_CASE("a leaf hook sees the summed gradient before accumulation and may replace it") {
  Tensor x = f64({1, 2}).requires_grad_();
  int calls = 0;
  x.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    ++calls;
    check_close(g, {3, 3});  // both uses summed: d/dx (x + 2x)
    return mul(g, 0.5);
  });
  sum(x + x * 2.0).backward();
  CHECK(calls == 1);
  check_close(x.grad(), {1.5, 1.5});
}

TEST_CASE("the post-accumulate hook fires once per pass with the final gradient") {
  // w is used by three ops; the hook must fire once, after all three contributions.
  Tensor w = f64({1, 2}).requires_grad_();
  Tensor x = f64({3, 4});
  std::vector<std::vector<double>> seen;
  w.register_post_accumulate_grad_hook(
      [&](const Tensor& leaf) { seen.push_back(leaf.grad().to_vector<double>()); });
  Tensor loss = sum(w * x) + sum(w * w) + sum(exp(w));
  loss.backward();
  REQUIRE(seen.size() == 1);
  const std::vector<double> expected = {3 + 2 + std::exp(1.0), 4 + 4 + std::exp(2.0)};
  CHECK(seen[0][0] == doctest::Approx(expected[0]));
  CHECK(seen[0][1] == doctest::Approx(expected[1]));
  loss = sum(w * x);
  loss.backward();  // second pass: the hook sees the accumulated .grad
  REQUIRE(seen.size() == 2);
  CHECK(seen[1][0] == doctest::Approx(expected[0] + 3));
}

TEST_CASE("leaf gradients become final before the rest of backward finishes") {
  // Two layers: the last layer's weight is final while the first layer's backward is still to
  // run. This ordering is what lets gradient communication overlap with backward.
  Tensor w1 = f64({0.5, -0.25, 0.75, 1.0}, {2, 2}).requires_grad_();
  Tensor w2 = f64({1.5, -0.5, 0.25, 2.0}, {2, 2}).requires_grad_();
  Tensor x = f64({1, 2, 3, 4}, {2, 2});
  std::vector<std::string> events;
  w1.register_post_accumulate_grad_hook([&](const Tensor&) { events.push_back("w1 final"); });
  w2.register_post_accumulate_grad_hook([&](const Tensor&) { events.push_back("w2 final"); });
  Tensor h = relu(matmul(x, w1));
  h.register_hook([&](const Tensor&) -> std::optional<Tensor> {
    events.push_back("delta of layer 1");
    return std::nullopt;
  });
  sum(matmul(h, w2)).backward();
  CHECK(events == std::vector<std::string>{"w2 final", "delta of layer 1", "w1 final"});
}

TEST_CASE("remove_hook stops a hook") {
  Tensor x = f64({1}).requires_grad_();
  int calls = 0;
  const int id = x.register_hook([&](const Tensor&) -> std::optional<Tensor> {
    ++calls;
    return std::nullopt;
  });
  sum(x * 2.0).backward();
  x.remove_hook(id);
  sum(x * 2.0).backward();
  CHECK(calls == 1);
}

TEST_CASE("retain_grad keeps the gradient of a non-leaf") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x * 3.0;
  y.retain_grad();
  sum(y * y).backward();
  check_close(y.grad(), {6, 12});
  check_close(x.grad(), {18, 36});
}

TEST_CASE("a gradient hook returning the wrong shape is an error") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x * 3.0;
  y.register_hook([](const Tensor&) -> std::optional<Tensor> { return f64({1, 2, 3}); });
  CHECK_THROWS_AS(sum(y).backward(), Error);
}

TEST_CASE("outputs that get no gradient count as zeros") {
  // Only one piece of a split is used: the other piece's gradient is zero.
  Tensor x = f64({1, 2, 3, 4}).requires_grad_();
  std::vector<Tensor> pieces = split(x, 2);
  sum(pieces[1] * 5.0).backward();
  check_close(x.grad(), {0, 0, 5, 5});
}

TEST_CASE("in-place updates of tracked tensors are refused while recording") {
  Tensor w = f64({1, 2}).requires_grad_();
  CHECK_THROWS_AS(w.add_(f64({1, 1})), Error);
  CHECK_THROWS_AS(w.zero_(), Error);
  {
    NoGrad no_grad;  // an optimizer step
    w.add_(f64({1, 1}), -0.5);
  }
  check_close(w, {0.5, 1.5});
}

TEST_CASE("views of a leaf send their gradients back to the leaf") {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor y = x.t().reshape({3, 2}).narrow(0, 1, 2);  // rows 1..2 of x^T as [3,2]
  sum(y * f64({1, 2, 3, 4}, {2, 2})).backward();
  // x^T = [[1,4],[2,5],[3,6]]; rows 1 and 2 weighted [[1,2],[3,4]] -> x[0][1]=1, x[1][1]=2,
  // x[0][2]=3, x[1][2]=4
  check_close(x.grad(), {0, 1, 3, 0, 2, 4});
}
