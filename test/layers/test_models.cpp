// The model registry: exact parameter counts, names, default initialization, and errors.
#include <doctest/doctest.h>

#include <map>

#include "layers/model_registry.h"
#include "layers/normalization.h"
#include "support.h"

using namespace ember;

TEST_CASE("every registered model has the published parameter count") {
  const std::map<std::string, int64_t> expected = {
      {"mnistnet", 4368138},  {"vit_linformer", 2851842}, {"resnet50_gn", 23528522},
      {"logistics", 30730},   {"cifar_cnn", 62006},       {"resnet18_cifar", 11173962},
      {"resnet20", 269722},   {"resnet56", 853018},       {"resnet18", 11689512},
      {"resnet34", 21797672}, {"resnet50", 25557032},     {"mnist_cnn", 421642}};
  CHECK(nn::model_names().size() == expected.size());
  for (const auto& [name, count] : expected) {
    INFO("model " << name);
    const auto model = nn::make_model(name);
    CHECK(model->num_parameters() == count);
    // Registry models come flat: one buffer holding every parameter.
    REQUIRE(model->parameter_layout() != nullptr);
    CHECK(model->parameter_layout()->numel() == count);
  }
}

TEST_CASE("an unknown model name lists the registered ones") {
  CHECK_THROWS_WITH_AS(nn::make_model("resnet19"),
                       doctest::Contains("unknown model 'resnet19'; the registered models are: "
                                         "cifar_cnn, logistics, resnet20"),
                       Error);
}

TEST_CASE("model families select the programs' choices") {
  CHECK(nn::model_names("imagenet") ==
        std::vector<std::string>{"resnet18", "resnet34", "resnet50"});
  CHECK(nn::model_names("mnist") == std::vector<std::string>{"mnistnet", "mnist_cnn"});
  CHECK(nn::model_info("vit_linformer").input_shape == Shape{3, 224, 224});
}

TEST_CASE("torchvision resnet names and initialization") {
  manual_seed(1);
  const auto model = nn::make_model("resnet18");
  const nn::NamedTensors state = model->state_dict();
  REQUIRE(state.size() == 122);
  CHECK(state[0].first == "conv1.weight");
  CHECK(state[1].first == "bn1.weight");
  CHECK(state[5].first == "bn1.num_batches_tracked");
  CHECK(state[5].second.dtype() == DType::I64);
  CHECK(model->find("layer2.0.downsample.0.weight").shape() == Shape{128, 64, 1, 1});
  CHECK(model->find("layer2.0.downsample.1.running_var").shape() == Shape{128});
  CHECK(state.back().first == "fc.bias");
  // kaiming_normal(fan_out, relu): std = sqrt(2 / (out * k * k)).
  const Tensor w = model->find("layer3.1.conv2.weight");
  const double expected_std = std::sqrt(2.0 / (256 * 9));
  CHECK(std::sqrt(var(w).item<double>()) == doctest::Approx(expected_std).epsilon(0.03));
  CHECK(model->find("layer1.0.bn2.weight").to_vector<double>() == std::vector<double>(64, 1.0));
}

TEST_CASE("the vit keeps the reference implementation's names") {
  const auto model = nn::make_model("vit_linformer");
  const nn::NamedTensors params = model->named_parameters();
  CHECK(params[0].first == "pos_embedding");
  CHECK(params[1].first == "cls_token");
  CHECK(params[2].first == "to_patch_embedding.1.weight");
  CHECK(model->find("transformer.net.layers.0.0.fn.proj_k").shape() == Shape{50, 64});
  CHECK(model->find("transformer.net.layers.11.1.fn.w2.weight").shape() == Shape{128, 512});
  CHECK(model->find("transformer.net.layers.3.0.norm.bias").shape() == Shape{128});
  CHECK(params.back().first == "mlp_head.1.bias");
}

TEST_CASE("resnet50_gn uses group norm and the seed's dropout") {
  nn::ModelOptions options;
  options.drop_rate = 0.1;
  options.last_drop_rate = 0.2;
  const auto model = nn::make_model("resnet50_gn", options);
  CHECK(model->num_parameters() == 23528522);
  const std::string tree = model->str();
  CHECK(tree.find("(bn1): GroupNorm(2, 64") != std::string::npos);
  CHECK(tree.find("(dropout1): Dropout2d(p=0.1") != std::string::npos);
  CHECK(tree.find("(dropout_fc): Dropout(p=0.2") != std::string::npos);
  CHECK(tree.find("(3): Dropout2d") != std::string::npos);  // after layer1's 3 blocks
  CHECK(model->named_buffers().empty());                    // GroupNorm keeps no statistics
}

TEST_CASE("models map a batch to class scores") {
  manual_seed(2);
  for (const std::string name : {"cifar_cnn", "logistics", "resnet20", "mnistnet"}) {
    INFO("model " << name);
    const auto model = nn::make_model(name);
    Shape shape = nn::model_info(name).input_shape;
    shape.insert(shape.begin(), 3);
    const Tensor out = (*model)(randn(shape));
    CHECK(out.shape() == Shape{3, 10});
  }
}
