// Batch, group and layer normalization (engine/ops_norm.cpp): finite-difference gradient checks
// in f64, values, gradients and running statistics against PyTorch 1.13, and the errors.
//
// The PyTorch numbers below come from test/engine/norm_reference.py, which builds its float64
// inputs from the same closed formulas as formula_leaf here; gradients are those of
// sum(y * projection).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "support.h"

using namespace ember;
using ember::test::check_close;
using ember::test::check_gradients;
using ember::test::f64;
using ember::test::random_leaf;

namespace {

using Inputs = std::vector<Tensor>;

// ---- the formulas of norm_reference.py ----
double step1(int64_t k) {
  return 2 * std::sin(0.9 * k + 0.5) + 0.1 * k;
}
double step2(int64_t k) {
  return 1.5 * std::cos(0.6 * k) - 0.3;
}
double projection(int64_t k) {
  return std::cos(0.37 * k + 0.2);
}
double affine_weight(int64_t k) {
  return 1 + 0.25 * std::sin(1.3 * k + 1);
}
double affine_bias(int64_t k) {
  return 0.1 * k - 0.2;
}

// An f64 leaf whose element k (row-major) is formula(k).
Tensor formula_leaf(const Shape& shape, double (*formula)(int64_t)) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t k = 0; k < v.size(); ++k) v[k] = formula(static_cast<int64_t>(k));
  return f64(v, shape).requires_grad_();
}

// Backpropagates sum(y * projection), as the reference does.
void backward_projected(const Tensor& y) {
  Tensor p = formula_leaf(y.shape(), projection).detach();
  sum(mul(y, p)).backward();
}

// Values from PyTorch agree to rounding (both sides compute in f64).
constexpr double kTolerance = 1e-10;

// `fn` throws ember::Error whose message contains every one of `parts`.
void check_error_names(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  std::string message;
  try {
    fn();
  } catch (const Error& e) {
    message = e.what();
  }
  REQUIRE_MESSAGE(!message.empty(), "expected an ember::Error");
  INFO("message: " << message);
  for (const std::string& part : parts) {
    INFO("looking for: " << part);
    CHECK(message.find(part) != std::string::npos);
  }
}

// ---- PyTorch 1.13 reference values (norm_reference.py) ----
const std::vector<double> batch_train_y = {
    1.4389906440849858, 1.1025755622679383,   0.21084978361816528, -0.9246812222702311,
    -0.528876181054344, -1.2033519504910561,  -0.954403290637476,  0.13100486932162722,
    -1.763105983297123, -0.19202306900373398, 0.7424756634513093,  0.7139429211241145,
    0.6846495430240159, -0.38315337473952393, -1.487259126949178,  -2.241971809036172,
    -1.189187782024271, -0.46712086153615157, 0.9211837873688872,  2.4907514090527827,
    0.4085125144674155, 0.855209869572933,    0.2994944483144568,  -1.0645063646293729};
const std::vector<double> batch_train_dx = {
    0.5416018373165611,  0.3673327962554472,   0.05193619254774854,  -0.3636824633998825,
    -0.3151783383217097, -0.7376751027698207,  -1.3287260104238492,  -1.9922031382356171,
    0.02361249619320186, -0.6722686128473586,  -0.788779726427582,   -0.20347421801252666,
    -0.8026715542247853, -0.32330104767562307, 0.10544700714531524,  0.42333723203521845,
    1.8352387831645267,  1.602291210822894,    0.9317940499161066,   0.004458545847470155,
    1.259833042658038,   0.31901892832080503,  -0.05704477898917243, 0.11910286910459511};
const std::vector<double> batch_train_dweight = {0.07042212290410146, 1.6146705469049487,
                                                 1.982984300631951};
const std::vector<double> batch_train_dbias = {4.370821020054007, 1.1282404471798593,
                                               -4.166222231789732};
const std::vector<double> batch_running_mean = {0.1124897070770806, -0.0762856831693615,
                                                0.27557817635576853};
const std::vector<double> batch_running_var = {1.0742265451691815, 1.0716760686082993,
                                               1.0623758506464345};
const std::vector<double> batch_eval_y = {
    0.7883783268903225,  2.0870251682641054,  1.643858984953355,    -0.11736433675629289,
    -1.4297361948693694, -1.6375101891682629, -0.18190613906207018, 1.922235289881966,
    2.157809000070945,   1.8061563091778448,  0.4953859023371865,   -0.7172376419724523,
    -1.158210434578054,  0.3500928275722677,  2.4915774795341235,   3.7339871844570465,
    3.478051629029705,   1.72506683894855,    0.13150635466344815,  -0.009923559560271812,
    0.8969109157514772,  2.476891062868239,   3.3737508062951527,   2.9740642392980345};
const std::vector<double> batch_eval_dx = {
    1.1445188764907193,   0.9831694907213202,   0.6887527266393714,  0.3011165120918871,
    -0.12490524766325731, -0.5284165049750368,  -0.8604090672523299, -1.075949298638421,
    -0.8627157019406674,  -0.798590227734307,   -0.6263793125602224, -0.36939089590930246,
    -0.08446182831426388, 0.3424414086901812,   0.7229968074936796,  1.0056979801342574,
    1.13083336964202,     1.1216364321774892,   0.9606312654521023,  0.6696091634727596,
    0.2168025400716589,   -0.09988339690818018, -0.4030505846906949, -0.6516667666310906};
const std::vector<double> batch_eval_dweight = {7.673565983669442, 3.860469741962335,
                                                -8.730938544443816};
const std::vector<double> batch_eval_dbias = {4.370821020054007, 1.1282404471798593,
                                              -4.166222231789732};
const std::vector<double> group_y = {
    0.3267681072770977,   1.330094641538308,   0.9877071835804713,   -0.2695810305475133,
    -1.5252380438137154,  -1.6855722752430173, -0.9466393025232483,  0.3790460927480855,
    1.1647252392812248,   0.8383434099197058,  -0.09205626332283091, -0.9527901824774808,
    -2.232281673213436,   -1.152407345115244,  0.3807951332597094,   1.3412191317354527,
    0.9843445197772218,   -0.2692195206298524, -1.0344310404346868,  -1.0996564963235342,
    -0.40581944446404866, 0.5767009030470099,  1.0426921433540262,   0.8350226159233771};
const std::vector<double> group_dx = {
    0.38660222615049566,  -0.08281087313117888, -0.19262683034383546, -0.029156796992759637,
    0.0865838427693317,   -0.16859156845205353, -0.13620458581867095, -0.08988757056838864,
    -0.02600473053832858, 0.0886582068254666,   0.060212716437055336, 0.10322596366286546,
    -0.10493936221661679, -0.0430192217925959,  -0.1165959804153019,  -0.12919521010010662,
    0.05584690065562359,  0.33790287386899753,  0.08888031784834444,  -0.06467326017453207,
    -0.03497305515443633, 0.06726981070511417,  0.07263007424390622,  -0.12913388746839619};
const std::vector<double> group_dweight = {2.2573583237140435, 2.5186241960724427,
                                           -2.7223994841932573, -1.5162875940122138};
const std::vector<double> group_dbias = {3.251778570359816, 2.514387765375872, -1.0156756155021656,
                                         -3.4176514847893884};
const std::vector<double> layer_y = {
    -0.02949951366971287, 1.0467893138259001,     0.6090501788157787,   -0.22818531886460997,
    -1.2583425448991976,  -1.7046972192135113,    -0.38037081343082274, 1.0758025073195812,
    1.7478554509647128,   1.9273485791210356,     0.8746314479848815,   -0.1812591908000975,
    -2.2001801814379456,  -1.0906834161238248,    0.28967156022996543,  0.8537156016926631,
    0.9084559818800022,   -0.0020616876777397133, -0.8892807470818931,  -0.5149366494652952,
    0.3134954598495551,   1.5132282659961362,     2.602755488477606,    2.1659566985411542};
const std::vector<double> layer_dx = {
    1.0314221551762528,   0.8585177999386854,   0.517849753265426,   0.3185917217391015,
    0.13802063883172158,  -0.19987179017735784, -0.4547642015490748, -0.45970539800225263,
    -0.47634792400644843, -0.6023088108488692,  -0.5185918133542773, -0.15281213101290747,
    -0.47564647730394316, -0.089978892947226,   0.19457600461839253, 0.34791962611570937,
    0.5111804380646808,   0.5340173980350391,   0.2589380861348892,  -0.0476808329600365,
    -0.12537788697142452, -0.16756141496435376, -0.3721752218897891, -0.5682108259319376};
const std::vector<double> layer_dweight = {
    0.2575799061111647,  0.5689168576140545,  0.6055405693360609,   0.7482521309718166,
    0.8761844292874766,  0.5092639967179029,  -0.43168791335342305, -1.3435258270447228,
    -1.5836132974407438, -1.1904150879810937, -0.7183580686905489,  -0.4487077539262347};
const std::vector<double> layer_dbias = {
    0.9077408025879872,  1.1351380605611319,  1.2088997072106968,  1.1190424496941906,
    0.8777280462770211,  0.5176172694046601,  0.08744942337076023, -0.35455429187258203,
    -0.7485707470003434, -1.0412716632257302, -1.1930413446597086, -1.1833384769039494};

}  // namespace

// ---------------------------------------------------------------------------------------------
// finite differences

TEST_CASE("batch_norm in training mode matches finite differences on 2-d input") {
  Tensor x = random_leaf({6, 4}, 1), w = random_leaf({4}, 2), b = random_leaf({4}, 3);
  check_gradients(
      [](const Inputs& in) { return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true); },
      {x, w, b});
  check_gradients(
      [](const Inputs& in) {
        return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {x});
}

TEST_CASE("batch_norm in training mode matches finite differences on 4-d input") {
  Tensor x = random_leaf({3, 4, 2, 3}, 4), w = random_leaf({4}, 5), b = random_leaf({4}, 6);
  check_gradients(
      [](const Inputs& in) { return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true); },
      {x, w, b});
  check_gradients(
      [](const Inputs& in) {
        return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {x});
  // 3-d input, and running statistics given (their updates do not change the output)
  Tensor x3 = random_leaf({4, 3, 5}, 7);
  Tensor running_mean = zeros({3}, DType::F64), running_var = ones({3}, DType::F64);
  check_gradients(
      [&](const Inputs& in) {
        return batch_norm(in[0], running_mean, running_var, Tensor(), in[1], true, 0.3);
      },
      {x3, random_leaf({3}, 8)});
}

TEST_CASE("batch_norm in evaluation mode matches finite differences") {
  Tensor x = random_leaf({3, 4, 2, 3}, 9), w = random_leaf({4}, 10), b = random_leaf({4}, 11);
  Tensor running_mean = f64({0.3, -0.2, 1.1, 0.0});
  Tensor running_var = f64({0.5, 1.7, 2.2, 0.9});
  check_gradients(
      [&](const Inputs& in) {
        return batch_norm(in[0], running_mean, running_var, in[1], in[2], false);
      },
      {x, w, b});
  check_gradients(
      [&](const Inputs& in) {
        return batch_norm(in[0], running_mean, running_var, Tensor(), Tensor(), false);
      },
      {random_leaf({5, 4}, 12)});
}

TEST_CASE("group_norm matches finite differences for several group counts") {
  Tensor x = random_leaf({2, 6, 3}, 13), w = random_leaf({6}, 14), b = random_leaf({6}, 15);
  for (int64_t groups : {1, 2, 3, 6}) {
    INFO("num_groups = " << groups);
    check_gradients([groups](const Inputs& in) { return group_norm(in[0], groups, in[1], in[2]); },
                    {x, w, b});
  }
  check_gradients([](const Inputs& in) { return group_norm(in[0], 2); },
                  {random_leaf({2, 4, 2, 2}, 16)});
  check_gradients([](const Inputs& in) { return group_norm(in[0], 2, in[1], in[2], 1e-3); },
                  {random_leaf({3, 4}, 17), random_leaf({4}, 18), random_leaf({4}, 19)});
}

TEST_CASE("layer_norm matches finite differences over one and two dims") {
  Tensor x = random_leaf({3, 5}, 20), w = random_leaf({5}, 21), b = random_leaf({5}, 22);
  check_gradients([](const Inputs& in) { return layer_norm(in[0], {5}, in[1], in[2]); }, {x, w, b});
  check_gradients([](const Inputs& in) { return layer_norm(in[0], {5}); }, {x});
  Tensor x3 = random_leaf({2, 3, 4}, 23), w2 = random_leaf({3, 4}, 24),
         b2 = random_leaf({3, 4}, 25);
  check_gradients(
      [](const Inputs& in) {
        return layer_norm(in[0], {3, 4}, in[1], in[2]);
      },
      {x3, w2, b2});
  check_gradients([](const Inputs& in) { return layer_norm(in[0], {3, 4}); }, {x3});
  // weight alone, and a transposed (non-contiguous) input
  check_gradients([](const Inputs& in) { return layer_norm(in[0].t(), {3}, in[1]); },
                  {random_leaf({3, 4}, 26), random_leaf({3}, 27)});
}

// ---------------------------------------------------------------------------------------------
// against PyTorch

TEST_CASE("batch_norm training matches PyTorch and updates running statistics") {
  const Shape shape = {2, 3, 2, 2};
  Tensor running_mean = zeros({3}, DType::F64), running_var = ones({3}, DType::F64);
  Tensor w = formula_leaf({3}, affine_weight), b = formula_leaf({3}, affine_bias);
  batch_norm(formula_leaf(shape, step1), running_mean, running_var, w, b, true, 0.1);
  Tensor x = formula_leaf(shape, step2);
  Tensor y = batch_norm(x, running_mean, running_var, w, b, true, 0.1);
  check_close(y, batch_train_y, kTolerance, kTolerance);
  // running statistics after two steps with momentum 0.1, the variance unbiased
  check_close(running_mean, batch_running_mean, kTolerance, kTolerance);
  check_close(running_var, batch_running_var, kTolerance, kTolerance);
  CHECK_FALSE(running_mean.requires_grad());
  backward_projected(y);
  check_close(x.grad(), batch_train_dx, kTolerance, kTolerance);
  check_close(w.grad(), batch_train_dweight, kTolerance, kTolerance);
  check_close(b.grad(), batch_train_dbias, kTolerance, kTolerance);
}

TEST_CASE("batch_norm evaluation matches PyTorch with the running statistics") {
  Tensor running_mean = f64(batch_running_mean), running_var = f64(batch_running_var);
  Tensor w = formula_leaf({3}, affine_weight), b = formula_leaf({3}, affine_bias);
  Tensor x = formula_leaf({2, 3, 2, 2}, step1);
  Tensor y = batch_norm(x, running_mean, running_var, w, b, false, 0.1);
  check_close(y, batch_eval_y, kTolerance, kTolerance);
  backward_projected(y);
  check_close(x.grad(), batch_eval_dx, kTolerance, kTolerance);
  check_close(w.grad(), batch_eval_dweight, kTolerance, kTolerance);
  check_close(b.grad(), batch_eval_dbias, kTolerance, kTolerance);
  // evaluation leaves the running statistics as they were
  check_close(running_mean, batch_running_mean, 0, 0);
  check_close(running_var, batch_running_var, 0, 0);
}

TEST_CASE("group_norm matches PyTorch") {
  Tensor w = formula_leaf({4}, affine_weight), b = formula_leaf({4}, affine_bias);
  Tensor x = formula_leaf({2, 4, 3}, step1);
  Tensor y = group_norm(x, 2, w, b, 1e-5);
  check_close(y, group_y, kTolerance, kTolerance);
  backward_projected(y);
  check_close(x.grad(), group_dx, kTolerance, kTolerance);
  check_close(w.grad(), group_dweight, kTolerance, kTolerance);
  check_close(b.grad(), group_dbias, kTolerance, kTolerance);
}

TEST_CASE("layer_norm matches PyTorch") {
  Tensor w = formula_leaf({3, 4}, affine_weight), b = formula_leaf({3, 4}, affine_bias);
  Tensor x = formula_leaf({2, 3, 4}, step1);
  Tensor y = layer_norm(x, {3, 4}, w, b, 1e-5);
  check_close(y, layer_y, kTolerance, kTolerance);
  CHECK(w.grad().defined() == false);
  backward_projected(y);
  check_close(x.grad(), layer_dx, kTolerance, kTolerance);
  check_close(w.grad(), layer_dweight, kTolerance, kTolerance);
  CHECK(w.grad().shape() == Shape{3, 4});
  check_close(b.grad(), layer_dbias, kTolerance, kTolerance);
}

// ---------------------------------------------------------------------------------------------
// semantics and errors

TEST_CASE("batch_norm evaluation normalizes with the running statistics") {
  Tensor x = f64({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {3, 2});
  Tensor running_mean = f64({1.0, -2.0}), running_var = f64({4.0, 0.25});
  const double eps = 1e-5;
  Tensor y = batch_norm(x, running_mean, running_var, Tensor(), Tensor(), false, 0.1, eps);
  std::vector<double> expected;
  for (int64_t n = 0; n < 3; ++n) {
    expected.push_back((1.0 + 2 * n - 1.0) / std::sqrt(4.0 + eps));
    expected.push_back((2.0 + 2 * n + 2.0) / std::sqrt(0.25 + eps));
  }
  check_close(y, expected, 1e-12, 1e-12);
  // one sample is fine in evaluation mode
  Tensor one = batch_norm(f64({3.0, 0.0}, {1, 2}), running_mean, running_var, Tensor(), Tensor(),
                          false, 0.1, eps);
  check_close(one, {2.0 / std::sqrt(4.0 + eps), 2.0 / std::sqrt(0.25 + eps)}, 1e-12, 1e-12);
}

TEST_CASE("batch_norm training updates only the running statistics it is given") {
  Tensor x = f64({1.0, 10.0, 3.0, 20.0, 8.0, 30.0}, {3, 2});  // means 4 and 20
  Tensor running_mean = f64({0.0, 1.0});
  batch_norm(x, running_mean, Tensor(), Tensor(), Tensor(), true, 0.5);
  check_close(running_mean, {2.0, 10.5}, 1e-12, 1e-12);
  Tensor running_var = f64({1.0, 1.0});  // unbiased variances 13 and 100
  batch_norm(x, Tensor(), running_var, Tensor(), Tensor(), true, 0.25);
  check_close(running_var, {0.75 + 0.25 * 13, 0.75 + 0.25 * 100}, 1e-12, 1e-12);
}

TEST_CASE("batch_norm training needs more than one value per channel") {
  for (const Shape& shape : {Shape{1, 3}, Shape{1, 3, 1}, Shape{1, 3, 1, 1}}) {
    INFO("input " << shape_str(shape));
    check_error_names(
        [&] { batch_norm(zeros(shape, DType::F64), Tensor(), Tensor(), Tensor(), Tensor(), true); },
        {"batch_norm", "more than 1 value per channel when training", shape_str(shape)});
  }
  // two values per channel are enough, from the batch or from the spatial dims
  CHECK_NOTHROW(batch_norm(random_leaf({2, 3}, 30), Tensor(), Tensor(), Tensor(), Tensor(), true));
  CHECK_NOTHROW(
      batch_norm(random_leaf({1, 3, 2}, 31), Tensor(), Tensor(), Tensor(), Tensor(), true));
}

TEST_CASE("normalization errors name the op and the shapes") {
  Tensor x = zeros({2, 6, 4}, DType::F64);
  check_error_names([&] { group_norm(x, 4); }, {"group_norm", "6", "num_groups = 4", "[2, 6, 4]"});
  check_error_names([&] { group_norm(x, 3, zeros({4}, DType::F64)); },
                    {"group_norm", "weight [4]", "6 elements"});
  check_error_names(
      [&] {
        group_norm(x, 3, zeros({2, 3}, DType::F64));
      },
      {"group_norm", "weight [2, 3]", "6 elements in one dim"});
  check_error_names(
      [&] {
        layer_norm(zeros({2, 3}, DType::F64), {4});
      },
      {"layer_norm", "normalized_shape [4]", "[2, 3]"});
  check_error_names(
      [&] {
        layer_norm(zeros({2, 3}, DType::F64), {2, 3}, zeros({3}, DType::F64));
      },
      {"layer_norm", "weight [3]", "[2, 3]"});
  check_error_names(
      [&] {
        batch_norm(x, zeros({4}, DType::F64), ones({6}, DType::F64), Tensor(), Tensor(), true);
      },
      {"batch_norm", "running_mean [4]", "6 elements"});
  check_error_names([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); },
                    {"batch_norm", "running_mean and running_var"});
  check_error_names(
      [&] { batch_norm(zeros({4}, DType::F64), Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "[N, C, *]", "[4]"});
  check_error_names([&] { group_norm(x, 2, zeros({6})); }, {"group_norm", "dtypes differ"});
}

TEST_CASE("normalization of an empty batch is empty") {
  Tensor running_mean = zeros({3}, DType::F64), running_var = ones({3}, DType::F64);
  Tensor x = zeros({0, 3, 2}, DType::F64).requires_grad_();
  Tensor w = ones({3}, DType::F64).requires_grad_();
  Tensor y = batch_norm(x, running_mean, running_var, w, Tensor(), true);
  CHECK(y.shape() == Shape{0, 3, 2});
  check_close(running_mean, {0.0, 0.0, 0.0}, 0, 0);
  sum(y).backward();
  check_close(w.grad(), {0.0, 0.0, 0.0}, 0, 0);
  CHECK(group_norm(zeros({0, 4, 3}, DType::F64), 2).shape() == Shape{0, 4, 3});
  CHECK(layer_norm(zeros({0, 3}, DType::F64), {3}).shape() == Shape{0, 3});
}

TEST_CASE("normalization in f32 agrees with f64") {
  Tensor x = random_leaf({4, 6, 5}, 40);
  Tensor x32 = x.detach().to(DType::F32).requires_grad_();
  Tensor w = random_leaf({6}, 41), w32 = w.detach().to(DType::F32).requires_grad_();
  const std::vector<std::function<Tensor(const Tensor&, const Tensor&)>> ops = {
      [](const Tensor& in, const Tensor& weight) {
        return batch_norm(in, Tensor(), Tensor(), weight, Tensor(), true);
      },
      [](const Tensor& in, const Tensor& weight) { return group_norm(in, 3, weight); },
      [](const Tensor& in, const Tensor&) {
        return layer_norm(in, {6, 5});
      },
  };
  for (size_t k = 0; k < ops.size(); ++k) {
    INFO("op " << k);
    for (Tensor* t : {&x, &x32, &w, &w32}) t->set_grad(Tensor());
    Tensor y = ops[k](x, w), y32 = ops[k](x32, w32);
    check_close(y32, y, 1e-5, 1e-5);
    backward_projected(y);
    backward_projected(y32.to(DType::F64));
    check_close(x32.grad(), x.grad(), 1e-5, 1e-5);
    if (w.grad().defined()) check_close(w32.grad(), w.grad(), 1e-5, 1e-5);
  }
}
