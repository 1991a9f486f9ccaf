// The Module system: PyTorch's state_dict names and loading rules, train/eval, device and
// dtype moves, hooks that see activations and deltas, and flat parameter storage.
#include <doctest/doctest.h>

#include <set>

#include "layers/activation.h"
#include "layers/container.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "support.h"

using namespace ember;
using namespace ember::test;

namespace {

// A two-level model with a buffer, mirroring how PyTorch names nested modules.
struct Block : nn::Module {
  Block() {
    fc = register_module("fc", nn::make<nn::Linear>(4, 3));
    counter = register_buffer("steps", zeros({}, DType::I64));
    scratch = register_buffer("scratch", zeros({2}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override { return relu((*fc)(x)); }
  std::string type_name() const override { return "Block"; }
  std::shared_ptr<nn::Linear> fc;
  Tensor counter, scratch;
};

struct Net : nn::Module {
  Net() {
    block = register_module("block", nn::make<Block>());
    head = register_module(
        "head", nn::make<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                    nn::make<nn::Linear>(3, 5), nn::make<nn::ReLU>(), nn::make<nn::Linear>(5, 2)}));
  }
  Tensor forward(const Tensor& x) override { return (*head)((*block)(x)); }
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<Block> block;
  std::shared_ptr<nn::Sequential> head;
};

std::vector<std::string> names(const nn::NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("state_dict names follow PyTorch's dotted convention and order") {
  Net net;
  // A module's own parameters and buffers come before its children's (Block's buffer first).
  const std::vector<std::string> expected = {"block.steps",   "block.fc.weight", "block.fc.bias",
                                             "head.0.weight", "head.0.bias",     "head.2.weight",
                                             "head.2.bias"};
  CHECK(names(net.state_dict()) == expected);
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"block.fc.weight", "block.fc.bias", "head.0.weight", "head.0.bias",
                                 "head.2.weight", "head.2.bias"});
  // Non-persistent buffers are listed as buffers but never saved.
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"block.steps", "block.scratch"});
  CHECK(net.num_parameters() == (4 * 3 + 3) + (3 * 5 + 5) + (5 * 2 + 2));
  CHECK(net.str().find("(fc): Linear(in_features=4, out_features=3, bias=True)") !=
        std::string::npos);
}

TEST_CASE("load_state_dict copies into the existing tensors") {
  Net source, target;
  const void* before = target.find("head.2.weight").data_ptr();
  target.load_state_dict(source.state_dict());
  CHECK(target.find("head.2.weight").data_ptr() == before);
  for (const auto& [name, t] : source.state_dict())
    CHECK(target.find(name).to_vector<double>() == t.to_vector<double>());
}

TEST_CASE("load_state_dict lists missing and unexpected keys and shape mismatches") {
  Net net;
  nn::NamedTensors state = net.state_dict();
  REQUIRE(state[1].first == "block.fc.weight");
  state[1].second = zeros({7, 4});                  // wrong shape
  state.erase(state.begin() + 2);                   // drop block.fc.bias
  state.emplace_back("head.9.weight", zeros({1}));  // an unknown key
  try {
    net.load_state_dict(state);
    FAIL("strict loading accepted a mismatched state");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("missing keys (1): block.fc.bias") != std::string::npos);
    CHECK(msg.find("unexpected keys (1): head.9.weight") != std::string::npos);
    CHECK(msg.find("size mismatch for block.fc.weight") != std::string::npos);
    CHECK(msg.find("[7, 4]") != std::string::npos);
  }
  // Non-strict loading reports keys but still refuses a wrong shape.
  state[1].second = zeros({3, 4});
  const nn::LoadResult r = net.load_state_dict(state, /*strict=*/false);
  CHECK(r.missing_keys == std::vector<std::string>{"block.fc.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"head.9.weight"});
  CHECK(net.find("block.fc.weight").to_vector<double>() == std::vector<double>(12, 0.0));
}

TEST_CASE("train and eval reach every descendant") {
  Net net;
  net.eval();
  for (auto& [name, m] : net.named_modules()) CHECK_FALSE(m->is_training());
  net.train();
  for (auto& [name, m] : net.named_modules()) CHECK(m->is_training());
}

TEST_CASE("flat storage keeps names and values and puts every parameter inside one buffer") {
  manual_seed(3);
  Net net;
  const nn::NamedTensors before = net.named_parameters();
  std::vector<std::vector<double>> values;
  for (const auto& [n, p] : before) values.push_back(p.to_vector<double>());

  const nn::ParameterLayout& layout = net.flatten_parameters();
  REQUIRE(layout.buffers().size() == 1);
  const nn::FlatBuffer& flat = layout.buffers()[0];
  CHECK(flat.params.numel() == net.num_parameters());
  const char* begin = static_cast<const char*>(flat.params.data_ptr());
  const char* end = begin + flat.params.numel() * 4;
  const char* grad_begin = static_cast<const char*>(flat.grads.data_ptr());

  const nn::NamedTensors after = net.named_parameters();
  REQUIRE(after.size() == before.size());
  int64_t offset = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    const auto& [name, p] = after[i];
    CHECK(name == before[i].first);
    CHECK(p.is_same(before[i].second));  // the same handle, rebound
    CHECK(p.to_vector<double>() == values[i]);
    const char* ptr = static_cast<const char*>(p.data_ptr());
    CHECK(ptr >= begin);
    CHECK(ptr + p.numel() * 4 <= end);
    const nn::ParameterSlot& slot = layout.slot(name);
    CHECK(slot.offset == offset);  // registration order, no gaps
    CHECK(ptr == begin + slot.offset * 4);
    CHECK(static_cast<const char*>(p.grad().data_ptr()) == grad_begin + slot.offset * 4);
    offset += p.numel();
  }
}

TEST_CASE("backward accumulates into the flat gradient buffer and zero_grad clears it") {
  manual_seed(4);
  Net net;
  const nn::ParameterLayout& layout = net.flatten_parameters();
  const Tensor x = randn({6, 4});
  sum(net(x)).backward();
  const Tensor flat_grads = layout.buffers()[0].grads;
  // The flat buffer holds exactly the per-parameter gradients, in layout order.
  std::vector<double> gathered;
  for (const auto& [name, p] : net.named_parameters())
    for (double g : p.grad().to_vector<double>()) gathered.push_back(g);
  CHECK(flat_grads.to_vector<double>() == gathered);
  CHECK(sum(abs(flat_grads)).item<double>() > 0);
  // A second pass accumulates, as in PyTorch.
  sum(net(x)).backward();
  const std::vector<double> twice = flat_grads.to_vector<double>();
  for (size_t i = 0; i < twice.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * gathered[i]));
  net.zero_grad();
  CHECK(sum(abs(flat_grads)).item<double>() == 0);
}

TEST_CASE("to f64 keeps a model flat and integer buffers integer") {
  Net net;
  net.flatten_parameters();
  net.to(DType::F64);
  CHECK(net.parameter_layout()->buffers()[0].dtype == DType::F64);
  CHECK(net.find("block.steps").dtype() == DType::I64);
  for (const auto& [name, p] : net.named_parameters()) {
    CHECK(p.dtype() == DType::F64);
    CHECK(p.grad().dtype() == DType::F64);
  }
  const Tensor y = net(randn({2, 4}, DType::F64));
  CHECK(y.dtype() == DType::F64);
}

TEST_CASE("forward hooks see the activations and backward hooks the deltas") {
  manual_seed(5);
  Net net;
  nn::Linear& first = *net.block->fc;
  Tensor seen_input, seen_output, grad_input, grad_output;
  int backward_calls = 0;
  const int fwd =
      first.register_forward_hook([&](nn::Module&, const Tensor& in, const Tensor& out) {
        seen_input = in, seen_output = out;
      });
  const int bwd =
      first.register_backward_hook([&](nn::Module&, const Tensor& gin, const Tensor& gout) {
        grad_input = gin, grad_output = gout, ++backward_calls;
      });
  const Tensor x = randn({3, 4}).requires_grad_();
  const Tensor y = net(x);
  CHECK(seen_input.is_same(x));
  seen_output.retain_grad();
  sum(mul(y, y)).backward();
  CHECK(backward_calls == 1);
  // grad_output is dL/d(fc output); grad_input is dL/dx.
  check_close(grad_output, seen_output.grad(), 0, 0);
  check_close(grad_input, x.grad(), 0, 0);

  // Raw data that needs no gradient: the hook still fires, with an undefined grad_input.
  sum(net(randn({3, 4}))).backward();
  CHECK(backward_calls == 2);
  CHECK_FALSE(grad_input.defined());

  first.remove_hook(fwd);
  first.remove_hook(bwd);
  seen_input = Tensor();
  net(x);
  CHECK_FALSE(seen_input.defined());
}

TEST_CASE("grad ready hooks fire once per parameter with its final gradient") {
  manual_seed(6);
  Net net;
  net.flatten_parameters();
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> at_fire;
  const int id = net.register_grad_ready_hook([&](const std::string& name, const Tensor& p) {
    order.push_back(name);
    at_fire[name] = p.grad().to_vector<double>();
  });
  // head.0 is used twice, so its gradient is final only after both uses are accumulated.
  const Tensor x = randn({2, 4});
  sum(net(x)).backward();
  CHECK(order.size() == 6);
  CHECK(std::set<std::string>(order.begin(), order.end()).size() == 6);
  for (const auto& [name, p] : net.named_parameters())
    CHECK(at_fire[name] == p.grad().to_vector<double>());
  // Output-side parameters are ready before input-side ones.
  CHECK(order.front().rfind("head.2", 0) == 0);
  CHECK(order.back().rfind("block.fc", 0) == 0);
  net.remove_hook(id);
  order.clear();
  sum(net(x)).backward();
  CHECK(order.empty());
}

TEST_CASE("linear matches hand values and passes an f64 gradient check") {
  nn::Linear fc(3, 2);
  fc.to(DType::F64);
  NoGrad no_grad;
  Tensor(fc.weight).copy_(f64({1, 2, 3, -1, 0, 1}, {2, 3}));
  Tensor(fc.bias).copy_(f64({0.5, -0.5}));
  check_close(fc(f64({1, 1, 1, 2, 0, -1}, {2, 3})), {6.5, -0.5, -0.5, -3.5});
  CHECK(fc.extra_repr() == "in_features=3, out_features=2, bias=True");
}

TEST_CASE("linear gradients match finite differences in f64") {
  manual_seed(7);
  auto fc = nn::make<nn::Linear>(5, 4);
  fc->to(DType::F64);
  const Tensor x = random_leaf({3, 2, 5}, 1);
  check_gradients([&](const std::vector<Tensor>& in) { return (*fc)(in[0]); },
                  {x, fc->weight, fc->bias});
}

TEST_CASE("linear default initialization stays within PyTorch's bound") {
  manual_seed(8);
  nn::Linear fc(100, 50);
  const double bound = 1 / std::sqrt(100.0);
  CHECK(max(abs(fc.weight)).item<double>() <= bound);
  CHECK(max(abs(fc.bias)).item<double>() <= bound);
  // Uniform on (-b, b): the standard deviation is b / sqrt(3).
  CHECK(std::sqrt(var(fc.weight).item<double>()) ==
        doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.05));
}

TEST_CASE("dropout2d zeroes whole channels and is the identity in eval") {
  manual_seed(9);
  nn::Dropout2d drop(0.5);
  const Tensor x = ones({4, 8, 3, 3});
  const std::vector<double> y = drop(x).to_vector<double>();
  int zero_channels = 0;
  for (int c = 0; c < 32; ++c) {
    const double first = y[c * 9];
    CHECK((first == 0 || first == 2));
    for (int i = 1; i < 9; ++i) CHECK(y[c * 9 + i] == first);
    zero_channels += first == 0;
  }
  CHECK(zero_channels > 4);
  CHECK(zero_channels < 28);
  drop.eval();
  CHECK(drop(x).is_same(x));
  nn::Dropout plain(0.25);
  plain.eval();
  CHECK(plain(x).to_vector<double>() == x.to_vector<double>());
}

TEST_CASE("modules reject bad arguments with their names") {
  CHECK_THROWS_WITH_AS(nn::Linear(0, 3), doctest::Contains("in_features (0)"), Error);
  CHECK_THROWS_WITH_AS(nn::Dropout(1.5), doctest::Contains("between 0 and 1"), Error);
  nn::Linear fc(4, 2);
  CHECK_THROWS_WITH_AS(fc(zeros({2, 5})), doctest::Contains("must end in 4 features"), Error);
  CHECK_THROWS_WITH_AS(fc.find("weights"), doctest::Contains("known: weight, bias"), Error);
}
