// bin/bench_kernels: matrix-product and convolution TFLOP/s and elementwise GB/s, each against a
// ceiling.
//
//   GPU: ember's f32 GEMM (cuBLAS) and ResNet 3x3 convolution (cuDNN), TF32 off and on,
//        against the device's FP32 peak (multiprocessors x FP32 lanes x 2 x clock), and ember's
//        elementwise add against the memory bandwidth (from the memory clock and bus width) and
//        a device-to-device copy.
//   CPU: ember's GEMM against a direct cblas_sgemm call (OpenBLAS), the same convolution
//        (im2col + OpenBLAS), and elementwise add against memcpy of the same bytes.
// Figures, never a pass/fail: nothing here fails a build. Each figure is the median of
// --repeat timed runs after warm-up; GPU work is synchronized before the clock is read.
//
//   bin/bench_kernels                       # every device present
//   bin/bench_kernels --device cpu --json bench.json
#include <cblas.h>      // the OpenBLAS reference
#include <omp.h>        // omp_get_max_threads
#include <CLI/CLI.hpp>  // command-line flags

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/ember.h"

using namespace ember;

namespace {

struct Figure {
  std::string device, name, unit;
  double value = 0, ceiling = 0;  // ceiling 0: none known
  std::string ceiling_name;
};

double median_seconds(Device device, int repeat, const std::function<void()>& body) {
  body();  // warm-up: handles, caches, first-touch
  synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    synchronize(device);
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// FP32 lanes per multiprocessor by compute capability (NVIDIA's tuning guides).
int fp32_lanes_per_sm(int capability) {
  switch (capability) {
    case 80:
      return 64;  // A100
    case 86:
    case 87:
    case 89:
      return 128;  // Ampere consumer, Ada
    case 90:
      return 128;  // Hopper
    default:
      return capability >= 100 ? 128 : 64;
  }
}

// A ResNet stage's 3x3 convolution (64 channels, 56x56, stride 1, padding 1): the forward
// pass alone, and a training step's forward + backward-data + backward-filter. Each pass costs
// 2 * N * C_out * H_out * W_out * C_in * 9 FLOPs.
void bench_conv(Device device, int repeat, int64_t batch, double fp32_peak,
                std::vector<Figure>& figures) {
  const int64_t channels = 64, size = 56;
  Tensor x = randn({batch, channels, size, size}, device);
  Tensor w = mul(randn({channels, channels, 3, 3}, device), 1.0 / 24).detach();
  Conv2dOptions o;
  o.padding = {1, 1};
  const double flops = 2.0 * batch * channels * size * size * channels * 9;
  const std::string shape = "conv2d 3x3 " + std::to_string(batch) + "x64x56x56";
  for (bool tf32 : device.is_cuda() ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    set_allow_tf32(tf32);
    const std::string suffix = tf32 ? " tf32" : "";
    const double ceiling = tf32 ? 0 : fp32_peak;
    const double t_forward = median_seconds(device, repeat, [&] {
      NoGrad no_grad;
      conv2d(x, w, Tensor(), o);
    });
    figures.push_back({device.str(), shape + " forward" + suffix, "TFLOP/s",
                       flops / t_forward / 1e12, ceiling, "FP32 peak"});
    Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
    const double t_step = median_seconds(device, repeat, [&] {
      xg.set_grad(Tensor());
      wg.set_grad(Tensor());
      sum(conv2d(xg, wg, Tensor(), o)).backward();
    });
    figures.push_back({device.str(), shape + " fwd+bwd" + suffix, "TFLOP/s",
                       3 * flops / t_step / 1e12, ceiling, "FP32 peak"});
  }
  set_allow_tf32(false);
}

void bench_device(Device device, int repeat, const std::vector<int64_t>& gemm_sizes,
                  int64_t elementwise_elements, std::vector<Figure>& figures) {
  const std::string name = device.str();
  const kernels::DeviceProperties props = device_properties(device);
  const double fp32_peak = device.is_cuda() ? 2.0 * props.multiprocessors *
                                                  fp32_lanes_per_sm(props.compute_capability) *
                                                  props.clock_khz * 1e3 / 1e12
                                            : 0;
  manual_seed(0);
  for (int64_t n : gemm_sizes) {
    Tensor a = randn({n, n}, device), b = randn({n, n}, device);
    NoGrad no_grad;
    const double flops = 2.0 * n * n * n;
    for (bool tf32 : device.is_cuda() ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
      set_allow_tf32(tf32);
      const double t = median_seconds(device, repeat, [&] { matmul(a, b); });
      figures.push_back({name, "gemm f32 " + std::to_string(n) + (tf32 ? " tf32" : ""), "TFLOP/s",
                         flops / t / 1e12, tf32 ? 0 : fp32_peak, "FP32 peak"});
    }
    set_allow_tf32(false);
    if (device.is_cpu()) {  // the same product straight through OpenBLAS
      // ember keeps OpenBLAS single-threaded (kernels/cpu/blas.h); the reference gets as many
      // threads as ember's own GEMM uses, and ember sets it back to 1 at its next product.
      openblas_set_num_threads(omp_get_max_threads());
      Tensor c = empty({n, n});
      const double t = median_seconds(device, repeat, [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data<float>(), n,
                    b.data<float>(), n, 0.0f, c.data<float>(), n);
      });
      figures.push_back({name, "gemm f32 " + std::to_string(n) + " (cblas_sgemm direct)", "TFLOP/s",
                         flops / t / 1e12, 0, ""});
    }
  }

  bench_conv(device, repeat, device.is_cuda() ? 32 : 4, fp32_peak, figures);

  const int64_t n = elementwise_elements;
  Tensor x = randn({n}, device), y = randn({n}, device);
  NoGrad no_grad;
  const double add_bytes = 3.0 * n * sizeof(float);  // read two, write one
  const double t_add = median_seconds(device, repeat, [&] { add(x, y); });
  Tensor dst = empty({n}, device);
  double copy_rate = 0;
  if (device.is_cuda()) {
    const double t = median_seconds(device, repeat, [&] { dst.copy_(x); });
    copy_rate = 2.0 * n * sizeof(float) / t / 1e9;
  } else {
    const double t = median_seconds(
        device, repeat, [&] { std::memcpy(dst.data_ptr(), x.data_ptr(), n * sizeof(float)); });
    copy_rate = 2.0 * n * sizeof(float) / t / 1e9;
  }
  figures.push_back({name, "copy f32 " + std::to_string(n), "GB/s", copy_rate,
                     props.peak_bandwidth_gbs, "memory peak"});
  figures.push_back({name, "add f32 " + std::to_string(n), "GB/s", add_bytes / t_add / 1e9,
                     device.is_cuda() ? props.peak_bandwidth_gbs : copy_rate,
                     device.is_cuda() ? "memory peak" : "memcpy"});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kernels: GEMM TFLOP/s and elementwise GB/s against their ceilings"};
  std::string device_flag = "all";
  int repeat = 20;
  std::string json_path;
  app.add_option("--device", device_flag, "cpu, cuda, cuda:N or all")->capture_default_str();
  app.add_option("--repeat", repeat, "timed runs per figure (median reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "also write the figures to this JSON file");
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<Device> devices;
    if (device_flag == "all") {
      devices.push_back(Device::cpu());
      if (cuda_available())
        devices.push_back(Device::cuda(0));
      else
        std::printf("bench_kernels: no GPU (%s); CPU figures only\n",
                    cuda_unavailable_reason().c_str());
    } else {
      devices.push_back(resolve_device(device_flag));
    }
    std::vector<Figure> figures;
    for (Device d : devices) {
      if (d.is_cuda())
        bench_device(d, repeat, {1024, 4096, 8192}, int64_t(1) << 28, figures);
      else
        bench_device(d, std::min(repeat, 5), {256, 1024}, int64_t(1) << 24, figures);
    }
    std::printf("%-8s %-40s %12s %12s  %s\n", "device", "benchmark", "achieved", "ceiling", "");
    for (const Figure& f : figures) {
      if (f.ceiling > 0)
        std::printf("%-8s %-40s %8.2f %-3s %8.2f %-3s %5.1f%% of %s\n", f.device.c_str(),
                    f.name.c_str(), f.value, f.unit == "GB/s" ? "GB/s" : "TF/s", f.ceiling,
                    f.unit == "GB/s" ? "GB/s" : "TF/s", 100 * f.value / f.ceiling,
                    f.ceiling_name.c_str());
      else
        std::printf("%-8s %-40s %8.2f %-3s\n", f.device.c_str(), f.name.c_str(), f.value,
                    f.unit.c_str());
    }
    if (!json_path.empty()) {
      FILE* out = std::fopen(json_path.c_str(), "w");
      if (!out) throw Error("bench_kernels: cannot write " + json_path);
      std::fprintf(out, "[\n");
      for (size_t i = 0; i < figures.size(); ++i) {
        const Figure& f = figures[i];
        std::fprintf(out,
                     "  {\"device\": \"%s\", \"benchmark\": \"%s\", \"value\": %.4f, \"unit\": "
                     "\"%s\", \"ceiling\": %.4f, \"ceiling_name\": \"%s\"}%s\n",
                     f.device.c_str(), f.name.c_str(), f.value, f.unit.c_str(), f.ceiling,
                     f.ceiling_name.c_str(), i + 1 < figures.size() ? "," : "");
      }
      std::fprintf(out, "]\n");
      std::fclose(out);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
