// bin/ember_infer: one forward pass of a registered model on a tensor from a safetensors file,
// with weights from PyTorch or ember (a weights file or a training checkpoint). Also a converter:
// --save-weights writes the weights as loaded, under PyTorch's names.
//
//   bin/ember_infer --arch resnet18 --weights W.safetensors --eval
//                   --input X.safetensors --output Y.safetensors
//   bin/ember_infer --arch resnet18 --weights checkpoint.safetensors --save-weights W.safetensors
//
// The model starts in train mode, as a freshly built PyTorch model does (BatchNorm then uses the
// batch's statistics); --eval switches to eval mode, what inference usually wants.
#include <CLI/CLI.hpp>  // command-line flags

#include <chrono>
#include <cstdio>
#include <string>

#include "engine/ember.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/model_registry.h"

namespace {

using namespace ember;

// 11689512 -> "11,689,512"
std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Runs `body`; an ember error gets `context` (the flag or file it concerns) in front.
template <typename Body>
auto with_context(const std::string& context, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

struct Flags {
  std::string arch;
  std::string weights;
  std::string input;
  std::string output;
  std::string save_weights;
  std::string device = "auto";
  std::string dtype = "f32";
  int64_t num_classes = 0;
  bool eval = false;
};

int run(const Flags& flags) {
  if (flags.input.empty() && flags.save_weights.empty())
    throw Error(
        "nothing to do: give --input (a forward pass) and/or --save-weights (a conversion)");
  if (!flags.output.empty() && flags.input.empty())
    throw Error("--output needs --input: the output is the model's answer to that tensor");

  const DType dtype = flags.dtype == "f64" ? DType::F64 : DType::F32;
  // f64 arithmetic is CPU-only by design: "auto" then means the CPU.
  const Device device =
      dtype == DType::F64 && flags.device == "auto"
          ? Device::cpu()
          : with_context("--device " + flags.device, [&] { return resolve_device(flags.device); });
  if (dtype == DType::F64 && device.is_cuda())
    throw Error("--dtype f64 runs on the CPU only: use --device cpu (or --dtype f32)");

  nn::ModelOptions options;
  options.num_classes = flags.num_classes;
  auto model = nn::make_model(flags.arch, options);
  const nn::WeightsSource source = with_context(
      "--weights", [&] { return nn::load_weights_or_checkpoint(*model, flags.weights); });
  model->to(device, dtype);
  model->train(!flags.eval);

  std::string summary = str_cat(
      flags.arch, ", ", with_thousands(model->num_parameters()), " parameters, weights from ",
      flags.weights,
      source == nn::WeightsSource::Checkpoint ? " (a checkpoint)" : " (a weights file)", ", ",
      flags.eval ? "eval" : "train", " mode, ", dtype_name(dtype), " on ", device.str());
  std::string written;
  if (!flags.save_weights.empty()) {
    with_context("--save-weights", [&] { nn::save_weights(flags.save_weights, *model); });
    written = flags.save_weights;
  }

  if (!flags.input.empty()) {
    const SafetensorsFile file =
        with_context("--input", [&] { return load_safetensors(flags.input); });
    const Tensor input =
        with_context("--input", [&] { return file.at("input"); }).to(device, dtype);

    NoGrad no_grad;
    const auto start = std::chrono::steady_clock::now();
    const Tensor output = with_context(
        str_cat("forward of ", flags.arch, " on the input of shape ", shape_str(input.shape()),
                " (one sample of this model is ", shape_str(nn::model_info(flags.arch).input_shape),
                ")"),
        [&] { return (*model)(input).to(Device::cpu()); });  // the copy waits for the device
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char time[32];
    std::snprintf(time, sizeof time, "%.3f s", seconds);
    summary += str_cat(": input ", shape_str(input.shape()), " -> output ",
                       shape_str(output.shape()), " in ", time);

    if (!flags.output.empty()) {
      with_context("--output", [&] {
        save_safetensors(flags.output, {{"output", output}},
                         {{"arch", flags.arch}, {"mode", flags.eval ? "eval" : "train"}});
      });
      written = flags.output + (written.empty() ? "" : ", " + written);
    }
  }
  if (!written.empty()) summary += "; wrote " + written;
  std::printf("ember_infer: %s\n", summary.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember_infer: a forward pass of a registered model with weights from a file"};
  Flags flags;
  app.add_option("--arch", flags.arch, "the model, by its registry name")
      ->required()
      ->check(CLI::IsMember(nn::model_names()));
  app.add_option("--weights", flags.weights,
                 "a weights file (a state_dict under PyTorch's names, e.g. from PyTorch) or an "
                 "ember checkpoint")
      ->required();
  app.add_option("--input", flags.input, "a safetensors file holding a tensor named 'input'");
  app.add_option("--output", flags.output, "where to write the result, as a tensor named 'output'");
  app.add_option("--save-weights", flags.save_weights,
                 "also write the model's weights as loaded (a weights file PyTorch can load)");
  app.add_option("--device", flags.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  app.add_option("--dtype", flags.dtype, "the model's floating-point type")
      ->check(CLI::IsMember({"f32", "f64"}))
      ->capture_default_str();
  app.add_option("--num-classes", flags.num_classes,
                 "the size of the classifier (default: the model's own)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--eval", flags.eval,
               "eval mode (BatchNorm uses its running statistics, dropout is off); without it "
               "the model runs in train mode, PyTorch's default");
  std::string models = "Models:\n";
  for (const nn::ModelInfo& info : nn::registered_models())
    models +=
        str_cat("  ", info.name, std::string(16 - std::min<size_t>(info.name.size(), 15), ' '),
                info.description, "\n");
  app.footer(models);
  CLI11_PARSE(app, argc, argv);

  try {
    return run(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_infer: %s\n", e.what());
    return 1;
  }
}
