// bin/ember_info: what this ember was built with and what it finds on this machine. Runs a
// small computation on the chosen device to show that it works.
//
//   bin/ember_info                 # the best device available (a GPU if one is usable)
//   bin/ember_info --device cpu
#include <CLI/CLI.hpp>  // command-line flags
#include <cstdio>

#include "engine/ember.h"

int main(int argc, char** argv) {
  CLI::App app{"ember_info: build configuration, devices, and a smoke test"};
  std::string device_flag = "auto";
  app.add_option("--device", device_flag, "cpu, cuda, cuda:N or auto")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    std::printf("ember: CUDA backend %s\n",
                ember::cuda_compiled() ? "built" : "not built (CUDA=0)");
    const int gpus = ember::cuda_device_count();
    if (gpus == 0 && ember::cuda_compiled())
      std::printf("ember: no usable GPU (%s)\n", ember::cuda_unavailable_reason().c_str());
    for (int i = 0; i < gpus; ++i) {
      const auto p = ember::device_properties(ember::Device::cuda(i));
      std::printf("ember: cuda:%d %s, compute capability %d.%d, %d SMs, %.1f GiB, %.0f GB/s\n", i,
                  p.name, p.compute_capability / 10, p.compute_capability % 10, p.multiprocessors,
                  p.total_memory / 1073741824.0, p.peak_bandwidth_gbs);
    }
    const ember::Device device = ember::resolve_device(device_flag);
    std::printf("ember: using %s\n", device.str().c_str());

    // A smoke test: a small product and its gradient on the chosen device.
    ember::manual_seed(0);
    ember::Tensor a = ember::randn({64, 32}, device).requires_grad_();
    ember::Tensor b = ember::randn({32, 16}, device);
    ember::Tensor loss = ember::mean(ember::relu(ember::matmul(a, b)));
    loss.backward();
    std::printf("ember: smoke test on %s: loss %.6f, |grad| %.6f\n", device.str().c_str(),
                loss.item<double>(),
                ember::sqrt(ember::sum(ember::mul(a.grad(), a.grad()))).item<double>());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_info: %s\n", e.what());
    return 1;
  }
  return 0;
}
