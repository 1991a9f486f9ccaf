// SGD, Adam and AdamW against PyTorch 1.13, the one-launch path for flat models, state dicts and
// errors; and the CUDA kernels against the CPU's.
//
// The PyTorch values (optimizer_references.h, made by make_pytorch_references.py) are the
// parameters after each of 5 steps from closed-form inputs: two parameters a [2, 3] and b [4],
// element j of the ten starting at sin(0.7 j + 0.3), gradient at step t
// g_j = 0.5 p_j + cos(1.3 j + 0.7 t). They are float64: ember's f64 path must agree to
// rounding, its f32 path to f32 precision.
//
// The "cuda matches cpu ..." cases run a longer f32 trajectory on both devices and compare
// parameters and state; without a GPU they skip, and with EMBER_COMPARE_ON_CPU=1 (ctest test
// cuda_optimizer_cases_on_cpu) both sides run on the CPU so that CI runs every case body.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cuda_compare.h"
#include "layers/adam.h"
#include "layers/sgd.h"
#include "optimizer_references.h"
#include "support.h"

using namespace ember;
using namespace ember::optim;
namespace pytorch = ember::test::pytorch;

namespace {

using Rows = std::vector<std::vector<double>>;
using Factory = std::function<std::unique_ptr<FusedOptimizer>(std::vector<Tensor>)>;

// Parameters and their gradients. Flat: every parameter is a view of one storage, every gradient
// a view of another (as the Module system lays out a model); separate: each its own storage.
enum class Layout { Flat, Separate };

struct Model {
  std::vector<Tensor> params;
  std::vector<Tensor> grads;  // what each parameter's .grad is when it has one
};

const std::vector<Shape> kPytorchShapes = {{2, 3}, {4}};

Model make_model(Layout layout, DType dtype = DType::F64, Device device = Device::cpu(),
                 const std::vector<Shape>& shapes = kPytorchShapes) {
  int64_t total = 0;
  for (const Shape& s : shapes) total += shape_numel(s);
  std::vector<double> values(static_cast<size_t>(total));
  for (int64_t j = 0; j < total; ++j) values[j] = std::sin(0.7 * j + 0.3);
  const Tensor all = tensor(values).to(device, dtype);
  const Tensor all_grads = zeros({total}, TensorOptions(dtype, device));
  Model m;
  int64_t offset = 0;
  for (const Shape& s : shapes) {
    const int64_t n = shape_numel(s);
    Tensor p = all.narrow(0, offset, n).view(s);
    Tensor g = all_grads.narrow(0, offset, n).view(s);
    if (layout == Layout::Separate) {
      p = p.clone();
      g = g.clone();
    }
    p.requires_grad_();
    p.set_grad(g);
    m.params.push_back(p);
    m.grads.push_back(g);
    offset += n;
  }
  return m;
}

// Gradients of step t (from 1); parameters listed in `skip` get none.
void set_gradients(Model& m, int t, const std::set<size_t>& skip = {}) {
  int64_t offset = 0;
  for (size_t k = 0; k < m.params.size(); ++k) {
    Tensor p = m.params[k];
    if (skip.count(k)) {
      p.set_grad(Tensor());
    } else {
      std::vector<double> g = p.to_vector<double>();
      for (size_t i = 0; i < g.size(); ++i)
        g[i] = 0.5 * g[i] + std::cos(1.3 * static_cast<double>(offset + i) + 0.7 * t);
      m.grads[k].copy_(tensor(g).view(p.shape()));
      p.set_grad(m.grads[k]);
    }
    offset += p.numel();
  }
}

std::vector<double> values_of(const std::vector<Tensor>& tensors) {
  std::vector<double> all;
  for (const Tensor& t : tensors) {
    const std::vector<double> v = t.to_vector<double>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

void check_rows_close(const std::vector<double>& got, const std::vector<double>& expected,
                      double atol, double rtol) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", PyTorch " << expected[i]);
    CHECK(std::abs(got[i] - expected[i]) <= atol + rtol * std::abs(expected[i]));
  }
}

// Runs the optimizer for 5 steps in every layout and dtype and compares each step with PyTorch.
void check_matches_pytorch(const Factory& make, const Rows& expected,
                           const std::map<int, std::set<size_t>>& skip_at = {}) {
  for (Layout layout : {Layout::Flat, Layout::Separate}) {
    for (DType dtype : {DType::F64, DType::F32}) {
      INFO((layout == Layout::Flat ? "flat" : "separate") << " layout, " << dtype_name(dtype));
      const bool f64 = dtype == DType::F64;
      Model m = make_model(layout, dtype);
      std::unique_ptr<FusedOptimizer> opt = make(m.params);
      for (int t = 1; t <= static_cast<int>(expected.size()); ++t) {
        INFO("step " << t);
        const auto skip = skip_at.find(t);
        set_gradients(m, t, skip == skip_at.end() ? std::set<size_t>{} : skip->second);
        opt->step();
        check_rows_close(values_of(m.params), expected[t - 1], f64 ? 1e-14 : 2e-6,
                         f64 ? 1e-12 : 2e-5);
      }
    }
  }
}

Factory sgd(SGDOptions options) {
  return [options](std::vector<Tensor> params) {
    return std::make_unique<SGD>(std::move(params), options);
  };
}
Factory adam(AdamOptions options) {
  return [options](std::vector<Tensor> params) {
    return std::make_unique<Adam>(std::move(params), options);
  };
}
Factory adamw(AdamWOptions options) {
  return [options](std::vector<Tensor> params) {
    return std::make_unique<AdamW>(std::move(params), options);
  };
}

SGDOptions sgd_options(double lr, double momentum = 0) {
  SGDOptions o(lr);
  o.momentum = momentum;
  return o;
}

// `body` must throw ember::Error whose message contains `fragment`.
void check_error(const std::function<void()>& body, const std::string& fragment) {
  try {
    body();
    FAIL("no error; expected one containing \"" << fragment << "\"");
  } catch (const Error& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
  }
}

// Both tensors hold the same bits (same values, compared exactly).
void check_identical(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO("tensor " << k);
    CHECK(a[k].shape() == b[k].shape());
    CHECK(a[k].to_vector<double>() == b[k].to_vector<double>());
  }
}

}  // namespace

// ---- trajectories against PyTorch ----------------------------------------------------------

TEST_CASE("sgd plain matches pytorch") {
  check_matches_pytorch(sgd(sgd_options(0.1)), pytorch::sgd_plain);
}

TEST_CASE("sgd with momentum and dampening matches pytorch") {
  SGDOptions o = sgd_options(0.1, 0.9);
  o.dampening = 0.3;
  check_matches_pytorch(sgd(o), pytorch::sgd_momentum_dampening);
}

TEST_CASE("sgd nesterov matches pytorch") {
  SGDOptions o = sgd_options(0.05, 0.9);
  o.nesterov = true;
  check_matches_pytorch(sgd(o), pytorch::sgd_nesterov);
}

TEST_CASE("sgd weight decay matches pytorch") {
  SGDOptions o = sgd_options(0.1, 0.5);
  o.weight_decay = 0.01;
  check_matches_pytorch(sgd(o), pytorch::sgd_weight_decay);
}

TEST_CASE("sgd maximize matches pytorch") {
  SGDOptions o = sgd_options(0.1, 0.9);
  o.maximize = true;
  check_matches_pytorch(sgd(o), pytorch::sgd_maximize);
}

TEST_CASE("adam matches pytorch") {
  AdamOptions o;
  o.lr = 0.01;
  check_matches_pytorch(adam(o), pytorch::adam);
}

TEST_CASE("adam amsgrad matches pytorch") {
  AdamOptions o;
  o.lr = 0.01;
  o.beta1 = 0.8;
  o.beta2 = 0.9;
  o.amsgrad = true;
  check_matches_pytorch(adam(o), pytorch::adam_amsgrad);
}

TEST_CASE("adam weight decay matches pytorch") {
  AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  check_matches_pytorch(adam(o), pytorch::adam_weight_decay);
}

TEST_CASE("adamw matches pytorch") {
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  check_matches_pytorch(adamw(o), pytorch::adamw);
}

TEST_CASE("adamw amsgrad maximize matches pytorch") {
  AdamWOptions o;
  o.lr = 0.02;
  o.beta1 = 0.8;
  o.beta2 = 0.9;
  o.weight_decay = 0.05;
  o.amsgrad = true;
  o.maximize = true;
  check_matches_pytorch(adamw(o), pytorch::adamw_amsgrad_maximize);
}

TEST_CASE("adamw defaults are pytorch's") {
  const AdamWOptions w;
  const AdamOptions a;
  CHECK(w.lr == 1e-3);
  CHECK(w.weight_decay == 1e-2);
  CHECK(a.weight_decay == 0);
  CHECK(a.beta1 == 0.9);
  CHECK(a.beta2 == 0.999);
  CHECK(a.eps == 1e-8);
}

TEST_CASE("parameters without a gradient are skipped and keep their own step count") {
  AdamOptions o;
  o.lr = 0.01;
  check_matches_pytorch(adam(o), pytorch::adam_skips_b_at_steps_2_and_3, {{2, {1}}, {3, {1}}});

  Model m = make_model(Layout::Flat);
  Adam opt(m.params, o);
  const std::vector<int64_t> launches_expected = {1, 1, 1, 2, 2};
  for (int t = 1; t <= 5; ++t) {
    set_gradients(m, t, t == 2 || t == 3 ? std::set<size_t>{1} : std::set<size_t>{});
    opt.step();
    INFO("step " << t);
    // a and b share a span only while their step counts agree
    CHECK(opt.last_step_launches() == launches_expected[t - 1]);
  }
  CHECK(opt.state_step(m.params[0]) == 5);
  CHECK(opt.state_step(m.params[1]) == 3);
}

TEST_CASE("a parameter that never had a gradient has no state") {
  Model m = make_model(Layout::Flat);
  SGD opt(m.params, sgd_options(0.1, 0.9));
  const std::vector<double> b_before = m.params[1].to_vector<double>();
  for (int t = 1; t <= 3; ++t) {
    set_gradients(m, t, {1});
    opt.step();
  }
  CHECK(m.params[1].to_vector<double>() == b_before);
  CHECK_FALSE(opt.state_buffer(m.params[1], "momentum_buffer").defined());
  CHECK(opt.state_buffer(m.params[0], "momentum_buffer").defined());
  const OptimizerStateDict dict = opt.state_dict();
  CHECK(dict.tensors.count("state.0.momentum_buffer") == 1);
  CHECK(dict.tensors.count("state.1.momentum_buffer") == 0);
}

// ---- the flat path ---------------------------------------------------------------------------

TEST_CASE("a flat model is updated with one launch per group and bit for bit as per parameter") {
  const std::vector<Shape> shapes = {{3, 4}, {}, {5}, {2, 2, 2}, {7}};
  SGDOptions s = sgd_options(0.05, 0.9);
  s.nesterov = true;
  s.weight_decay = 1e-3;
  AdamOptions a;
  a.lr = 0.01;
  a.amsgrad = true;
  a.weight_decay = 0.01;
  AdamWOptions w;
  w.lr = 0.02;
  for (const Factory& make : {sgd(s), adam(a), adamw(w)}) {
    Model flat = make_model(Layout::Flat, DType::F32, Device::cpu(), shapes);
    Model separate = make_model(Layout::Separate, DType::F32, Device::cpu(), shapes);
    auto flat_opt = make(flat.params);
    auto separate_opt = make(separate.params);
    INFO(flat_opt->name());
    for (int t = 1; t <= 4; ++t) {
      set_gradients(flat, t);
      set_gradients(separate, t);
      flat_opt->step();
      separate_opt->step();
      CHECK(flat_opt->last_step_launches() == 1);
      CHECK(separate_opt->last_step_launches() == static_cast<int64_t>(shapes.size()));
    }
    check_identical(flat.params, separate.params);
    // The state of a flat model is flat too: each buffer starts where the previous one ends.
    for (const std::string name : {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) {
      std::vector<Tensor> flat_state, separate_state;
      for (size_t k = 0; k < shapes.size(); ++k) {
        flat_state.push_back(flat_opt->state_buffer(flat.params[k], name));
        separate_state.push_back(separate_opt->state_buffer(separate.params[k], name));
      }
      if (!flat_state[0].defined()) continue;
      INFO(name);
      for (size_t k = 1; k < shapes.size(); ++k)
        CHECK(directly_follows(flat_state[k - 1], flat_state[k]));
      check_identical(flat_state, separate_state);
    }
  }
}

TEST_CASE("flat parameters with scattered gradients take one launch per parameter") {
  Model m = make_model(Layout::Flat);
  Model reference = make_model(Layout::Flat);
  for (size_t k = 0; k < m.params.size(); ++k) {
    m.grads[k] = zeros_like(m.params[k]);  // gradients in storages of their own
    m.params[k].set_grad(m.grads[k]);
  }
  SGD opt(m.params, sgd_options(0.1, 0.9));
  SGD reference_opt(reference.params, sgd_options(0.1, 0.9));
  for (int t = 1; t <= 3; ++t) {
    set_gradients(m, t);
    set_gradients(reference, t);
    opt.step();
    reference_opt.step();
    CHECK(opt.last_step_launches() == 2);
    CHECK(reference_opt.last_step_launches() == 1);
  }
  check_identical(m.params, reference.params);
}

TEST_CASE("a parameter that is not dense is updated through a dense copy") {
  // p is the transpose of a [3, 2] block: not contiguous.
  std::vector<double> values(6);
  for (int j = 0; j < 6; ++j) values[j] = std::sin(0.7 * j + 0.3);
  Tensor p = tensor(values).view({3, 2}).t();
  p.requires_grad_();
  Tensor q = p.contiguous().detach();
  q.requires_grad_();
  Adam transposed({p}, AdamOptions{});
  Adam dense({q}, AdamOptions{});
  for (int t = 1; t <= 3; ++t) {
    Tensor g = add(mul(p.detach(), 0.5), 0.1 * t);
    p.set_grad(g.contiguous());
    q.set_grad(g.contiguous());
    transposed.step();
    dense.step();
  }
  CHECK_FALSE(p.is_contiguous());
  check_identical({p.contiguous()}, {q});
}

TEST_CASE("zero grad zeroes gradients in place") {
  Model m = make_model(Layout::Flat);
  SGD opt(m.params, sgd_options(0.1));
  set_gradients(m, 1);
  const void* first = m.params[0].grad().data_ptr();
  opt.zero_grad();
  for (size_t k = 0; k < m.params.size(); ++k) {
    REQUIRE(m.params[k].grad().defined());
    CHECK(m.params[k].grad().is_same(m.grads[k]));
    CHECK(m.params[k].grad().to_vector<double>() == std::vector<double>(m.params[k].numel(), 0));
  }
  CHECK(m.params[0].grad().data_ptr() == first);

  // Scattered and non-dense gradients too.
  Model s = make_model(Layout::Separate);
  Tensor strided = zeros({4, 3}, DType::F64).t();  // [3, 4] viewed as a transpose
  strided.fill_(2.0);
  Tensor p = zeros({3, 4}, DType::F64);
  p.requires_grad_();
  p.set_grad(strided);
  s.params.push_back(p);
  s.grads.push_back(strided);
  set_gradients(s, 1);
  SGD scattered(s.params, sgd_options(0.1));
  scattered.zero_grad();
  for (const Tensor& param : s.params)
    CHECK(param.grad().to_vector<double>() == std::vector<double>(param.numel(), 0));
  CHECK(p.grad().is_same(strided));
}

// ---- groups and flags ----------------------------------------------------------------------

TEST_CASE("per group options follow pytorch") {
  Factory two_groups = [](std::vector<Tensor> params) {
    SGDOptions first = sgd_options(0.1, 0.9);
    SGDOptions second = sgd_options(0.01, 0.5);
    second.nesterov = true;
    second.weight_decay = 0.1;
    return std::make_unique<SGD>(
        std::vector<ParamGroup>{first.group({params[0]}), second.group({params[1]})});
  };
  check_matches_pytorch(two_groups, pytorch::sgd_two_groups);
}

TEST_CASE("group flags default to data parallel and survive the state dict") {
  Model m = make_model(Layout::Flat);
  ParamGroup shared = sgd_options(0.1).group({m.params[0]});
  ParamGroup head = sgd_options(0.1).group({m.params[1]});
  CHECK(shared.allow_data_parallelism());
  head.flags["allow_data_parallelism"] = 0;
  head.flags["site"] = 3;
  SGD opt({shared, head});
  CHECK(opt.param_groups()[0].allow_data_parallelism());
  CHECK_FALSE(opt.param_groups()[1].allow_data_parallelism());
  CHECK(opt.param_groups()[1].flag("site") == 3);
  CHECK(opt.param_groups()[1].flag("absent", -1) == -1);

  // A scheduler or a wrapper writes hyper-parameters through param_groups().
  opt.param_groups()[1].lr = 0.25;
  const OptimizerStateDict dict = opt.state_dict();
  SGD fresh({sgd_options(0.5).group({m.params[0]}), sgd_options(0.5).group({m.params[1]})});
  fresh.load_state_dict(dict);
  CHECK(fresh.param_groups()[0].lr == 0.1);
  CHECK(fresh.param_groups()[1].lr == 0.25);
  CHECK_FALSE(fresh.param_groups()[1].allow_data_parallelism());
  CHECK(fresh.param_groups()[1].flag("site") == 3);
  CHECK(fresh.param_groups()[0].allow_data_parallelism());
}

// ---- state dict ----------------------------------------------------------------------------

// 3 steps, state dict (metadata through its JSON text), a fresh optimizer loads it, 2 more steps:
// the same bits as 5 steps without a break.
void check_resume_is_exact(const Factory& make) {
  Model uninterrupted = make_model(Layout::Flat, DType::F32);
  auto opt = make(uninterrupted.params);
  for (int t = 1; t <= 5; ++t) {
    set_gradients(uninterrupted, t);
    opt->step();
  }

  Model resumed = make_model(Layout::Flat, DType::F32);
  OptimizerStateDict saved;
  {
    auto first = make(resumed.params);
    for (int t = 1; t <= 3; ++t) {
      set_gradients(resumed, t);
      first->step();
    }
    saved = first->state_dict();
    // The dict is a snapshot: stepping on must not change it.
    const std::vector<double> before = values_of({saved.tensors.begin()->second});
    set_gradients(resumed, 99);
    const std::vector<Tensor> params_before = {resumed.params[0].clone(),
                                               resumed.params[1].clone()};
    first->step();
    CHECK(values_of({saved.tensors.begin()->second}) == before);
    resumed.params[0].detach().copy_(params_before[0]);  // undo that extra step
    resumed.params[1].detach().copy_(params_before[1]);
  }
  saved.metadata = nlohmann::json::parse(saved.metadata.dump());
  CHECK(saved.metadata["state"]["0"]["step"] == 3);
  CHECK(saved.metadata["state"]["1"]["step"] == 3);

  auto second = make(resumed.params);
  second->load_state_dict(saved);
  for (int t = 4; t <= 5; ++t) {
    set_gradients(resumed, t);
    second->step();
    CHECK(second->last_step_launches() == 1);  // the loaded state is flat again
  }
  check_identical(resumed.params, uninterrupted.params);
}

TEST_CASE("state dict round trip continues bit for bit") {
  SGDOptions s = sgd_options(0.1, 0.9);
  s.dampening = 0.1;
  AdamOptions a;
  a.lr = 0.01;
  a.amsgrad = true;
  AdamWOptions w;
  w.lr = 0.01;
  for (const Factory& make : {sgd(s), adam(a), adamw(w)}) check_resume_is_exact(make);
}

TEST_CASE("state dict names tensors by parameter index and buffer") {
  Model m = make_model(Layout::Flat);
  AdamOptions o;
  o.amsgrad = true;
  Adam opt(m.params, o);
  set_gradients(m, 1);
  opt.step();
  const OptimizerStateDict dict = opt.state_dict();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : dict.tensors) names.push_back(name);
  CHECK(names == std::vector<std::string>{"state.0.exp_avg", "state.0.exp_avg_sq",
                                          "state.0.max_exp_avg_sq", "state.1.exp_avg",
                                          "state.1.exp_avg_sq", "state.1.max_exp_avg_sq"});
  CHECK(dict.tensors.at("state.0.exp_avg").shape() == Shape{2, 3});
  const nlohmann::json& group = dict.metadata["param_groups"][0];
  CHECK(dict.metadata["optimizer"] == "Adam");
  CHECK(group["params"] == nlohmann::json::array({0, 1}));
  CHECK(group["betas"] == nlohmann::json::array({0.9, 0.999}));
  CHECK(group["amsgrad"] == true);
  CHECK(group["flags"]["allow_data_parallelism"] == 1.0);
}

// ---- errors --------------------------------------------------------------------------------

TEST_CASE("invalid hyper parameters are errors") {
  Model m = make_model(Layout::Flat);
  SGDOptions nesterov = sgd_options(0.1);
  nesterov.nesterov = true;
  check_error([&] { SGD(m.params, nesterov); }, "Nesterov momentum requires a momentum");
  nesterov.momentum = 0.9;
  nesterov.dampening = 0.1;
  check_error([&] { SGD(m.params, nesterov); }, "zero dampening");
  check_error([&] { SGD(m.params, sgd_options(-0.1)); }, "invalid learning rate -0.1");
  check_error([&] { SGD(m.params, sgd_options(0.1, -0.5)); }, "invalid momentum");
  AdamOptions a;
  a.lr = -1;
  check_error([&] { Adam(m.params, a); }, "Adam: invalid learning rate -1");
  a.lr = 0.1;
  a.beta2 = 1.0;
  check_error([&] { Adam(m.params, a); }, "invalid beta2 1");
  a.beta2 = 0.999;
  a.eps = -1e-8;
  check_error([&] { Adam(m.params, a); }, "invalid eps");
  AdamWOptions w;
  w.weight_decay = -1;
  check_error([&] { AdamW(m.params, w); }, "AdamW: invalid weight_decay");

  // A scheduler (or anyone) writing a bad value is caught at the next step, before any update.
  SGD opt(m.params, sgd_options(0.1));
  set_gradients(m, 1);
  const std::vector<double> before = values_of(m.params);
  opt.param_groups()[0].lr = -1;
  check_error([&] { opt.step(); }, "invalid learning rate -1");
  CHECK(values_of(m.params) == before);
}

TEST_CASE("invalid parameter lists are errors") {
  Model m = make_model(Layout::Flat);
  check_error([&] { SGD(std::vector<Tensor>{}, sgd_options(0.1)); }, "empty parameter list");
  check_error(
      [&] {
        SGD({m.params[0], m.params[1], m.params[0]}, sgd_options(0.1));
      },
      "appears twice");
  Tensor computed = mul(m.params[0], 2.0);
  check_error([&] { SGD({computed}, sgd_options(0.1)); }, "not a leaf");
  SGD opt({m.params[0]}, sgd_options(0.1));
  check_error([&] { opt.add_param_group(sgd_options(0.1).group({m.params[0]})); }, "appears twice");
  opt.add_param_group(sgd_options(0.2).group({m.params[1]}));
  CHECK(opt.param_groups().size() == 2);

  Tensor bf16 = zeros({3}, DType::BF16);
  bf16.requires_grad_();
  bf16.set_grad(zeros({3}, DType::BF16));
  SGD low_precision({bf16}, sgd_options(0.1));
  check_error([&] { low_precision.step(); }, "optimizers update f32 parameters");
}

TEST_CASE("loading a state that does not fit is an error") {
  Model m = make_model(Layout::Flat);
  SGD opt(m.params, sgd_options(0.1, 0.9));
  set_gradients(m, 1);
  opt.step();
  const OptimizerStateDict dict = opt.state_dict();

  // Another shape: b has 5 elements instead of 4.
  Model other = make_model(Layout::Flat, DType::F64, Device::cpu(), {{2, 3}, {5}});
  SGD other_opt(other.params, sgd_options(0.1, 0.9));
  check_error([&] { other_opt.load_state_dict(dict); },
              "\"state.1.momentum_buffer\" has shape [4], parameter 1 has shape [5]");

  SGD one_group({m.params[0]}, sgd_options(0.1));
  check_error([&] { one_group.load_state_dict(dict); },
              "parameter group 0 of the state has 2 parameter(s), this optimizer's has 1");
  SGD two_groups({sgd_options(0.1).group({m.params[0]}), sgd_options(0.1).group({m.params[1]})});
  check_error([&] { two_groups.load_state_dict(dict); }, "the state has 1 parameter group(s)");

  Adam adam_opt(m.params);
  check_error([&] { adam_opt.load_state_dict(dict); }, "the state was saved by SGD, not by Adam");

  OptimizerStateDict unknown = dict;
  unknown.tensors["state.0.exp_avg"] = zeros({2, 3}, DType::F64);
  check_error([&] { opt.load_state_dict(unknown); }, "SGD keeps no state called \"exp_avg\"");
  OptimizerStateDict out_of_range = dict;
  out_of_range.tensors["state.7.momentum_buffer"] = zeros({4}, DType::F64);
  check_error([&] { opt.load_state_dict(out_of_range); }, "parameter 7, which no group lists");
  OptimizerStateDict no_step = dict;
  no_step.metadata["state"].erase("1");
  check_error([&] { opt.load_state_dict(no_step); }, "no step count for parameter 1");
  OptimizerStateDict no_lr = dict;
  no_lr.metadata["param_groups"][0].erase("lr");
  check_error([&] { opt.load_state_dict(no_lr); }, "no number \"lr\"");

  // A failed load changes nothing.
  CHECK(opt.param_groups()[0].lr == 0.1);
  CHECK(opt.state_step(m.params[0]) == 1);
}

// ---- CUDA against the CPU ------------------------------------------------------------------

namespace {

// 6 f32 steps on a model of a few thousand elements on `device`; returns the parameters and
// every state buffer. Gradients are made on the CPU and copied, so both devices see the same.
std::vector<Tensor> optimizer_run(Device device, Layout layout, const Factory& make) {
  const std::vector<Shape> shapes = {{64, 33}, {33}, {17, 9, 5}, {1}, {1000}};
  Model m = make_model(layout, DType::F32, device, shapes);
  auto opt = make(m.params);
  Generator g(7);
  for (int t = 1; t <= 6; ++t) {
    for (size_t k = 0; k < m.params.size(); ++k) {
      Tensor noise = normal(m.params[k].shape(), 0, 1, DType::F32, &g).to(device);
      m.grads[k].copy_(mul(m.params[k].detach(), 0.5) + noise);
    }
    opt->step();
  }
  std::vector<Tensor> results = m.params;
  for (const std::string name : {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    for (const Tensor& p : m.params) {
      const Tensor buffer = opt->state_buffer(p, name);
      if (buffer.defined()) results.push_back(buffer);
    }
  return results;
}

// Runs `make`'s optimizer on the CPU and on CUDA and compares parameters and state; a NaN or an
// infinity fails, even where both devices have it.
void compare_optimizer(const std::string& op, Layout layout, const Factory& make) {
  test::Comparison how;
  how.nonfinite_match = false;
  const test::CaseBody run = [&](Device d) { return optimizer_run(d, layout, make); };
  test::compare_on_cuda(op, run, how);
}

}  // namespace

TEST_CASE("cuda matches cpu for sgd with momentum on a flat model") {
  SGDOptions o = sgd_options(0.05, 0.9);
  o.dampening = 0.1;
  o.weight_decay = 1e-3;
  compare_optimizer("sgd momentum flat", Layout::Flat, sgd(o));
}

TEST_CASE("cuda matches cpu for sgd nesterov maximize per parameter") {
  SGDOptions o = sgd_options(0.05, 0.9);
  o.nesterov = true;
  o.maximize = true;
  compare_optimizer("sgd nesterov separate", Layout::Separate, sgd(o));
}

TEST_CASE("cuda matches cpu for adam on a flat model") {
  AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.01;
  compare_optimizer("adam flat", Layout::Flat, adam(o));
}

TEST_CASE("cuda matches cpu for adam amsgrad per parameter") {
  AdamOptions o;
  o.lr = 0.01;
  o.beta2 = 0.9;
  o.amsgrad = true;
  compare_optimizer("adam amsgrad separate", Layout::Separate, adam(o));
}

TEST_CASE("cuda matches cpu for adamw on a flat model") {
  AdamWOptions o;
  o.lr = 0.01;
  o.maximize = true;
  compare_optimizer("adamw flat", Layout::Flat, adamw(o));
}
