// Weights files and checkpoints: PyTorch's names and dtypes, a state_dict written by PyTorch
// giving PyTorch's logits, errors that name the file and every mismatch, a resumed run that is
// bit for bit the uninterrupted one (model, optimizer, scheduler and random numbers), and saves
// that never leave a torn checkpoint.
#include <doctest/doctest.h>

#include <signal.h>        // ignoring SIGXFSZ
#include <sys/resource.h>  // RLIMIT_FSIZE: a write that fails halfway

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "layers/activation.h"
#include "layers/adam.h"
#include "layers/checkpoint.h"
#include "layers/container.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/lr_scheduler.h"
#include "layers/model_registry.h"
#include "layers/sgd.h"
#include "golden.h"
#include "support.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names_of(const NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  return names;
}

// Every value of the model's state, in state_dict order (exact: f32 and i64 fit in a double).
std::vector<std::vector<double>> values_of(const nn::Module& model) {
  std::vector<std::vector<double>> values;
  for (const auto& [name, t] : model.state_dict()) values.push_back(t.to_vector<double>());
  return values;
}

// A small classifier with dropout, so that training draws random numbers at every step.
std::shared_ptr<nn::Module> tiny_model() {
  auto model = nn::make<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      nn::make<nn::Linear>(8, 16), nn::make<nn::ReLU>(), nn::make<nn::Dropout>(0.5),
      nn::make<nn::Linear>(16, 3)});
  model->flatten_parameters();
  return model;
}

struct TrainingSetup {
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LRScheduler> scheduler;
};

void train(TrainingSetup& s, const Tensor& x, const Tensor& y, int steps) {
  for (int i = 0; i < steps; ++i) {
    s.optimizer->zero_grad();
    cross_entropy((*s.model)(x), y).backward();
    s.optimizer->step();
    s.scheduler->step();
  }
}

}  // namespace

// ---- weights files ---------------------------------------------------------------------------

TEST_CASE("weights files hold the state_dict under PyTorch's names, integers as I64") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string path = dir.file("resnet20.safetensors");
  manual_seed(1);
  auto model = nn::make_model("resnet20");
  // Move the BatchNorm statistics off their initial values.
  (*model)(randn({4, 3, 32, 32}));
  nn::save_weights(path, *model);

  const SafetensorsFile file = load_safetensors(path);
  std::vector<std::string> file_names = file.names(), model_names = names_of(model->state_dict());
  std::sort(file_names.begin(), file_names.end());
  std::sort(model_names.begin(), model_names.end());
  CHECK(file_names == model_names);
  CHECK(file.at("bn1.num_batches_tracked").dtype() == DType::I64);
  CHECK(file.at("bn1.num_batches_tracked").item<int64_t>() == 1);
  CHECK(file.at("conv1.weight").dtype() == DType::F32);
  CHECK(file.metadata.at("format") == "pt");

  manual_seed(2);
  auto fresh = nn::make_model("resnet20");
  const nn::LoadResult result = nn::load_weights(*fresh, path);
  CHECK(result.missing_keys.empty());
  CHECK(result.unexpected_keys.empty());
  CHECK(values_of(*fresh) == values_of(*model));
}

TEST_CASE("a state_dict saved by PyTorch gives PyTorch's logits in ember") {
  // test/golden/write_torch_weights.py: cifar_cnn after one SGD step, and its eval logits.
  const std::string weights = golden::path("interop/cifar_cnn_weights.safetensors");
  const SafetensorsFile answers =
      load_safetensors(golden::path("interop/cifar_cnn_logits.safetensors"));
  auto model = nn::make_model("cifar_cnn");
  nn::load_weights(*model, weights);
  model->eval();
  NoGrad no_grad;

  const Tensor logits = (*model)(answers.at("input"));
  CHECK(logits.dtype() == DType::F32);
  test::check_close(logits, answers.at("logits"), 1e-5, 1e-5);

  // The same weights in f64 agree with PyTorch's f64 run to rounding.
  model->to(DType::F64);
  const Tensor logits_f64 = (*model)(answers.at("input").to(DType::F64));
  test::check_close(logits_f64, answers.at("logits_f64"), 1e-12, 1e-12);
}

TEST_CASE("load_weights names the file and every missing, unexpected or mis-shaped key") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string path = dir.file("cnn.safetensors");
  nn::save_weights(path, *nn::make_model("cifar_cnn"));

  SUBCASE("another model") {
    auto logistics = nn::make_model("logistics");
    const std::string message = error_of([&] { nn::load_weights(*logistics, path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "missing keys (2): linear.weight, linear.bias"));
    CHECK(contains(message, "unexpected keys (10): "));
    CHECK(contains(message, "conv1.weight"));
  }
  SUBCASE("another number of classes") {
    nn::ModelOptions options;
    options.num_classes = 5;
    auto five = nn::make_model("cifar_cnn", options);
    const std::string message = error_of([&] { nn::load_weights(*five, path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "size mismatch for fc3.weight: copying a tensor of shape [10, 84]"));
    CHECK(contains(message, "size mismatch for fc3.bias"));
    // Not strict: still no loading into the wrong shapes.
    CHECK(contains(error_of([&] { nn::load_weights(*five, path, /*strict=*/false); }),
                   "size mismatch"));
  }
  SUBCASE("a file that is not there") {
    auto model = nn::make_model("cifar_cnn");
    CHECK(contains(error_of([&] { nn::load_weights(*model, dir.file("none.safetensors")); }),
                   dir.file("none.safetensors")));
  }
}

TEST_CASE("load_weights drops a DataParallel 'module.' or a wrapper's 'model.' prefix") {
  TemporaryDirectory dir("ember-checkpoint");
  manual_seed(3);
  auto source = nn::make_model("cifar_cnn");
  auto save_with = [&](const std::string& prefix, const std::string& file) {
    NamedTensors renamed;
    for (const auto& [name, t] : source->state_dict()) renamed.emplace_back(prefix + name, t);
    save_safetensors(dir.file(file), renamed);
    return dir.file(file);
  };
  for (const std::string prefix : {"module.", "model.", "model.module."}) {
    INFO("prefix " << prefix);
    auto target = nn::make_model("cifar_cnn");
    nn::load_weights(*target, save_with(prefix, "prefixed.safetensors"));
    CHECK(values_of(*target) == values_of(*source));
  }
  // Only when every key has the prefix: one key without it makes the names ambiguous.
  NamedTensors mixed;
  for (const auto& [name, t] : source->state_dict())
    mixed.emplace_back(name == "fc3.bias" ? name : "module." + name, t);
  save_safetensors(dir.file("mixed.safetensors"), mixed);
  auto target = nn::make_model("cifar_cnn");
  const std::string message =
      error_of([&] { nn::load_weights(*target, dir.file("mixed.safetensors")); });
  CHECK(contains(message, "unexpected keys (9): module.conv1.bias"));
}

// ---- checkpoints -----------------------------------------------------------------------------

TEST_CASE("a checkpoint holds model, optimizer, scheduler, generator and counters") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  manual_seed(4);
  TrainingSetup s;
  s.model = tiny_model();
  s.optimizer = std::make_unique<optim::SGD>(s.model->parameters(), [] {
    optim::SGDOptions o(0.1);
    o.momentum = 0.9;
    return o;
  }());
  s.scheduler = std::make_unique<optim::StepLR>(*s.optimizer, 2, 0.5);
  const Tensor x = randn({6, 8});
  const Tensor y = tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2});
  train(s, x, y, 3);
  nn::TrainingCounters counters;
  counters.epoch = 1;
  counters.global_step = 3;
  counters.best_accuracy = 0.625;
  counters.other["images_seen"] = 18;
  nn::save_checkpoint(path, *s.model, s.optimizer.get(), s.scheduler.get(), counters,
                      {{"arch", "tiny"}, {"note", "written by a test"}});

  const SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata.at("format") == "ember-checkpoint");
  CHECK(file.metadata.at("version") == "1");
  CHECK(file.metadata.at("arch") == "tiny");
  CHECK(file.metadata.at("note") == "written by a test");
  CHECK(file.contains("model.0.weight"));
  CHECK(file.contains("model.3.bias"));
  CHECK(file.contains("optimizer.state.0.momentum_buffer"));
  CHECK(file.contains("optimizer.state.3.momentum_buffer"));
  CHECK(file.tensors.size() == 8);
  const auto optimizer = nlohmann::json::parse(file.metadata.at("optimizer"));
  CHECK(optimizer["optimizer"] == "SGD");
  CHECK(optimizer["param_groups"][0]["lr"].get<double>() == 0.05);
  const auto scheduler = nlohmann::json::parse(file.metadata.at("scheduler"));
  CHECK(scheduler["scheduler"] == "StepLR");
  CHECK(scheduler["last_epoch"] == 3);
  const auto rng = nlohmann::json::parse(file.metadata.at("rng"));
  CHECK(rng["seed"].get<uint64_t>() == 4);
  CHECK(rng["offset"].get<uint64_t>() == default_generator().offset());
  const auto saved_counters = nlohmann::json::parse(file.metadata.at("counters"));
  CHECK(saved_counters["epoch"] == 1);
  CHECK(saved_counters["global_step"] == 3);
  CHECK(saved_counters["best_accuracy"].get<double>() == 0.625);
  CHECK(saved_counters["images_seen"].get<double>() == 18);

  // The checkpoint's own keys are not the caller's to set.
  CHECK(contains(error_of([&] {
                   nn::save_checkpoint(path, *s.model, nullptr, nullptr, {}, {{"rng", "x"}});
                 }),
                 "metadata key \"rng\" is the checkpoint's own"));
}

TEST_CASE("a resumed run is bit for bit the run that never stopped") {
  struct Recipe {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> optimizer;
    std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)> scheduler;
  };
  const std::vector<Recipe> recipes = {
      {"SGD with momentum, StepLR",
       [](std::vector<Tensor> params) {
         optim::SGDOptions o(0.1);
         o.momentum = 0.9;
         o.weight_decay = 1e-4;
         return std::make_unique<optim::SGD>(std::move(params), o);
       },
       [](optim::Optimizer& opt) { return std::make_unique<optim::StepLR>(opt, 2, 0.5); }},
      {"AdamW, CosineAnnealingLR",
       [](std::vector<Tensor> params) {
         optim::AdamWOptions o;
         o.lr = 0.01;
         return std::make_unique<optim::AdamW>(std::move(params), o);
       },
       [](optim::Optimizer& opt) { return std::make_unique<optim::CosineAnnealingLR>(opt, 4); }},
  };
  for (const Recipe& recipe : recipes) {
    INFO(recipe.name);
    TemporaryDirectory dir("ember-checkpoint");
    const std::string path = dir.file("checkpoint.safetensors");
    Generator data(99);
    const Tensor x = randn({12, 8}, {}, &data);
    const Tensor y = tensor(std::vector<int64_t>{0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0});

    // The run that never stops: 3 steps, a checkpoint, 2 more steps, then a draw.
    manual_seed(5);
    TrainingSetup run;
    run.model = tiny_model();
    run.optimizer = recipe.optimizer(run.model->parameters());
    run.scheduler = recipe.scheduler(*run.optimizer);
    train(run, x, y, 3);
    nn::save_checkpoint(path, *run.model, run.optimizer.get(), run.scheduler.get(),
                        {/*epoch=*/3, /*global_step=*/3, /*best_accuracy=*/0.5, {}});
    train(run, x, y, 2);
    const std::vector<float> draw = randn({16}).to_vector<float>();

    // A new process, as far as ember can tell: another seed, other numbers drawn, a model
    // initialized differently, a fresh optimizer and scheduler.
    manual_seed(1234);
    randn({100});
    TrainingSetup resumed;
    resumed.model = tiny_model();
    resumed.optimizer = recipe.optimizer(resumed.model->parameters());
    resumed.scheduler = recipe.scheduler(*resumed.optimizer);
    const nn::Checkpoint info =
        nn::load_checkpoint(path, *resumed.model, resumed.optimizer.get(), resumed.scheduler.get());
    CHECK(info.counters.epoch == 3);
    CHECK(info.counters.global_step == 3);
    CHECK(info.counters.best_accuracy == 0.5);
    CHECK(info.has_optimizer);
    CHECK(info.has_scheduler);
    CHECK(info.rng_seed == 5);
    train(resumed, x, y, 2);

    CHECK(values_of(*resumed.model) == values_of(*run.model));
    CHECK(resumed.optimizer->param_groups()[0].lr == run.optimizer->param_groups()[0].lr);
    CHECK(resumed.scheduler->last_lr() == run.scheduler->last_lr());
    CHECK(resumed.scheduler->last_epoch() == run.scheduler->last_epoch());
    // The dropout masks of the two steps matched (the parameters above), and so does what the
    // generator gives next.
    CHECK(randn({16}).to_vector<float>() == draw);
  }
}

TEST_CASE("checkpoints and weights files are told apart, by name") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string weights = dir.file("weights.safetensors");
  const std::string checkpoint = dir.file("checkpoint.safetensors");
  auto model = nn::make_model("cifar_cnn");
  nn::save_weights(weights, *model);
  nn::save_checkpoint(checkpoint, *model, nullptr, nullptr, {7, 700, 0.5, {}},
                      {{"arch", "cifar_cnn"}});

  const std::string as_checkpoint =
      error_of([&] { nn::load_checkpoint(weights, *model, nullptr, nullptr); });
  CHECK(contains(as_checkpoint, weights + " is not an ember checkpoint"));
  CHECK(contains(as_checkpoint, "it holds 10 tensor(s), e.g. 'conv1.weight'"));
  CHECK(contains(as_checkpoint, "A weights file"));
  CHECK(contains(as_checkpoint, "load_weights"));

  const std::string as_weights = error_of([&] { nn::load_weights(*model, checkpoint); });
  CHECK(contains(as_weights, checkpoint + " is an ember checkpoint"));
  CHECK(contains(as_weights, "of cifar_cnn, epoch 7"));
  CHECK(contains(as_weights, "load_checkpoint"));

  // Programs that take either kind (ember_infer --weights) learn which it was.
  CHECK(nn::load_weights_or_checkpoint(*model, weights) == nn::WeightsSource::WeightsFile);
  CHECK(nn::load_weights_or_checkpoint(*model, checkpoint) == nn::WeightsSource::Checkpoint);
}

TEST_CASE("a checkpoint that does not fit names the file, the keys and the shapes") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  manual_seed(6);
  auto cnn = nn::make_model("cifar_cnn");
  optim::SGDOptions sgd_options(0.1);
  sgd_options.momentum = 0.9;
  optim::SGD sgd(cnn->parameters(), sgd_options);
  nn::save_checkpoint(path, *cnn, &sgd, nullptr, {}, {{"arch", "cifar_cnn"}});

  SUBCASE("another model") {
    auto logistics = nn::make_model("logistics");
    const std::string message =
        error_of([&] { nn::load_checkpoint(path, *logistics, nullptr, nullptr); });
    CHECK(contains(message, path + ": the checkpoint's model (cifar_cnn) does not fit"));
    CHECK(contains(message, "missing keys (2): linear.weight, linear.bias"));
    CHECK(contains(message, "unexpected keys (10): conv1.bias, conv1.weight"));
  }
  SUBCASE("another number of classes") {
    nn::ModelOptions options;
    options.num_classes = 4;
    auto four = nn::make_model("cifar_cnn", options);
    const std::string message =
        error_of([&] { nn::load_checkpoint(path, *four, nullptr, nullptr); });
    CHECK(contains(message, path));
    CHECK(contains(message,
                   "size mismatch for fc3.weight: copying a tensor of shape [10, 84], "
                   "the shape in the current model is [4, 84]"));
  }
  SUBCASE("another optimizer, checked before the model changes") {
    auto other = nn::make_model("cifar_cnn");
    const auto before = values_of(*other);
    optim::Adam adam(other->parameters());
    const std::string message =
        error_of([&] { nn::load_checkpoint(path, *other, &adam, nullptr); });
    CHECK(contains(message, path + ": the checkpoint's optimizer is SGD, the one given is Adam"));
    CHECK(values_of(*other) == before);
  }
  SUBCASE("a scheduler the checkpoint does not have") {
    auto other = nn::make_model("cifar_cnn");
    optim::SGD other_sgd(other->parameters(), sgd_options);
    optim::StepLR step(other_sgd, 3);
    const std::string message =
        error_of([&] { nn::load_checkpoint(path, *other, &other_sgd, &step); });
    CHECK(contains(message, path + ": the checkpoint holds no LR scheduler state"));
  }
  SUBCASE("a newer version") {
    SafetensorsFile file = load_safetensors(path);
    file.metadata["version"] = "2";
    save_safetensors(path, file.tensors, file.metadata);
    CHECK(contains(error_of([&] { nn::load_checkpoint(path, *cnn, nullptr, nullptr); }),
                   "checkpoint version 2 (this ember reads versions 1 to 1"));
  }
}

TEST_CASE("a checkpoint save that fails halfway leaves the previous checkpoint intact") {
  TemporaryDirectory dir("ember-checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  manual_seed(7);
  auto model = nn::make_model("logistics");  // 123 KB of weights
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.1));
  nn::save_checkpoint(path, *model, &sgd, nullptr, {1, 10, 0.25, {}});
  const std::string old_bytes = read_file(path);
  const auto old_values = values_of(*model);

  // Training moves on; the next save dies when the file reaches 16 KiB (a full disk, a crash).
  NoGrad no_grad;
  model->find("linear.weight").add_(ones({10, 3072}));
  struct rlimit saved;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  struct rlimit small = saved;
  small.rlim_cur = 16 * 1024;
  void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string message = error_of([&] {
    nn::save_checkpoint(path, *model, &sgd, nullptr, {2, 20, 0.5, {}});
  });
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, saved_handler);
  CHECK(contains(message, path));
  CHECK(contains(message, "File too large"));

  // The old checkpoint, byte for byte, and nothing beside it; it still loads.
  CHECK(read_file(path) == old_bytes);
  CHECK(dir.entries() == std::vector<std::string>{"checkpoint.safetensors"});
  auto restored = nn::make_model("logistics");
  optim::SGD restored_sgd(restored->parameters(), optim::SGDOptions(0.1));
  const nn::Checkpoint info = nn::load_checkpoint(path, *restored, &restored_sgd, nullptr);
  CHECK(info.counters.global_step == 10);
  CHECK(values_of(*restored) == old_values);
}
