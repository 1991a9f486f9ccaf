// bin/bench_loader: how fast the DataLoader feeds a training loop. Figures, never a pass/fail.
//
//   (a) CIFAR-10-sized images held in memory (50,000 × 32×32×3: synthetic pixels, or the real
//       training set with --cifar PATH, in any form load_cifar10 reads), through
//       RandomCrop(32, 32, padding 4) + RandomHorizontalFlip + Normalize, batches of 256, with
//       0, 1 and 2 workers: images/s. Target: 50,000 images/s on 2 cores.
//   (b) JPEG files decoded on the workers, then RandomResizedCrop(224, 224) + RandomHorizontalFlip
//       + Normalize (ImageNet's training augmentation): images/s per worker thread. The folder is
//       --folder ROOT (an ImageFolder), else 500×375 JPEGs written once into a temporary folder.
//       Target: 250 images/s per thread.
//   (c) On a GPU: ResNet-18 for CIFAR trained with SGD on (a)'s batches, and the share of the
//       step time the loop spent waiting for data. Target: under 2%.
//
//   bin/bench_loader                        # (a) and (b) on the CPU; (c) too if a GPU is there
//   bin/bench_loader --device cuda --cifar data/cifar10-jpeg
#include <CLI/CLI.hpp>  // command-line flags

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>  // hardware_concurrency
#include <vector>

#include "datasets/data_loader.h"   // DataLoader
#include "datasets/dataset.h"       // InMemoryImageDataset
#include "datasets/image_decode.h"  // write_jpeg
#include "datasets/cifar10.h"       // load_cifar10
#include "datasets/image_folder.h"  // ImageFolder
#include "datasets/sampler.h"       // RandomSampler
#include "datasets/synthetic.h"     // SyntheticDataset
#include "datasets/transforms.h"    // the augmentations
#include "engine/ember.h"
#include "layers/model_registry.h"  // make_model
#include "layers/sgd.h"             // SGD

using namespace ember;
using namespace ember::data;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const Normalize kCifarNormalize{{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
const Normalize kImagenetNormalize{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

std::shared_ptr<const Transform> cifar_augmentation() {
  return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(32, 32, 4), std::make_shared<RandomHorizontalFlip>()});
}

// 50,000 CIFAR-sized images in memory: the real ones from an image folder, or noise.
std::shared_ptr<const Dataset> cifar_sized_images(const std::string& cifar_root, size_t count) {
  if (!cifar_root.empty()) return load_cifar10(cifar_root).train;
  SyntheticDataset synthetic(count, 32, 32, 3, 10, 1);
  std::vector<uint8_t> pixels(count * 32 * 32 * 3);
  std::vector<int64_t> labels(count);
  Image image;
  for (size_t i = 0; i < count; ++i) {
    synthetic.load_image(i, image);
    std::copy(image.pixels.begin(), image.pixels.end(), pixels.begin() + i * image.bytes());
    labels[i] = synthetic.label(i);
  }
  return std::make_shared<InMemoryImageDataset>(32, 32, 3, std::move(pixels), std::move(labels), 10,
                                                std::vector<std::string>{}, "synthetic");
}

struct EpochFigures {
  int64_t images = 0;
  double seconds = 0;
  double wait_fraction = 0;
};

// One whole epoch, the batches taken and dropped as fast as they come.
EpochFigures time_epoch(DataLoader& loader, int64_t epoch) {
  loader.reset_stats();
  const auto start = std::chrono::steady_clock::now();
  loader.start_epoch(epoch);
  Batch batch;
  EpochFigures figures;
  while (loader.next(batch)) figures.images += batch.images.size(0);
  if (loader.options().device.is_cuda()) synchronize(loader.options().device);
  figures.seconds = seconds_since(start);
  figures.wait_fraction = loader.stats().wait_fraction();
  return figures;
}

void bench_in_memory(std::shared_ptr<const Dataset> data, Device device, int64_t batch_size,
                     const std::vector<int>& worker_counts) {
  std::printf(
      "\n(a) %zu CIFAR-sized images in memory, RandomCrop(32, 32, 4) + flip + normalize, "
      "batch %lld, batches on %s (target: 50,000 images/s on 2 cores)\n",
      data->size(), static_cast<long long>(batch_size), device.str().c_str());
  auto sampler = std::make_shared<RandomSampler>(data->size(), 7);
  for (int workers : worker_counts) {
    DataLoaderOptions options;
    options.batch_size = batch_size;
    options.workers = workers;
    options.device = device;
    options.seed = 1;
    DataLoader loader(data, sampler, cifar_augmentation(), kCifarNormalize, options);
    time_epoch(loader, 0);  // warm-up: allocator caches, pinned blocks, first touches
    const EpochFigures f = time_epoch(loader, 1);
    std::printf("    workers %d: %9.0f images/s  (%lld images in %.2f s; waiting %.0f%% of it)\n",
                workers, f.images / f.seconds, static_cast<long long>(f.images), f.seconds,
                100 * f.wait_fraction);
  }
}

// A photograph-like image: smooth gradients, a few shapes, mild noise (JPEGs of pure noise
// decode far slower than photographs do).
Image photo_like(int height, int width, uint64_t seed) {
  SampleRandom random(seed, 0, 0);
  Image image;
  image.resize(height, width, 3);
  const double base[3] = {random.uniform(40, 200), random.uniform(40, 200),
                          random.uniform(40, 200)};
  struct Ellipse {
    double cy, cx, ry, rx, color[3];
  };
  std::vector<Ellipse> shapes(6);
  for (Ellipse& e : shapes) {
    e.cy = random.uniform(0, height);
    e.cx = random.uniform(0, width);
    e.ry = random.uniform(20, height / 3.0);
    e.rx = random.uniform(20, width / 3.0);
    for (double& c : e.color) c = random.uniform(0, 255);
  }
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double pixel[3];
      for (int c = 0; c < 3; ++c)
        pixel[c] = base[c] + 50.0 * std::sin(0.02 * x + c) * std::cos(0.015 * y - c);
      for (const Ellipse& e : shapes) {
        const double dy = (y - e.cy) / e.ry, dx = (x - e.cx) / e.rx;
        if (dy * dy + dx * dx < 1)
          for (int c = 0; c < 3; ++c) pixel[c] = 0.3 * pixel[c] + 0.7 * e.color[c];
      }
      uint8_t* out = image.at(y, x);
      for (int c = 0; c < 3; ++c) {
        const double v = pixel[c] + random.uniform(-20, 20);
        out[c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  return image;
}

// `count` 500×375 JPEGs in two class folders under the system's temporary folder, written once
// and reused by later runs.
std::string generated_jpeg_folder(int count) {
  namespace fs = std::filesystem;
  const fs::path root =
      fs::temp_directory_path() / ("ember-bench-jpegs-500x375-" + std::to_string(count));
  if (fs::exists(root / "complete")) return root.string();
  std::printf("    writing %d JPEGs of 500×375 into %s (once)\n", count, root.string().c_str());
  for (int i = 0; i < count; ++i) {
    const fs::path folder = root / (i % 2 ? "class_b" : "class_a");
    fs::create_directories(folder);
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.jpg", i);
    write_jpeg((folder / name).string(), photo_like(375, 500, static_cast<uint64_t>(i)), 90);
  }
  std::ofstream(root / "complete") << count << "\n";
  return root.string();
}

void bench_jpeg(const std::string& folder, Device device, int64_t batch_size,
                const std::vector<int>& worker_counts) {
  auto data = std::make_shared<ImageFolder>(folder);
  std::printf(
      "\n(b) %zu JPEGs from %s: decode + RandomResizedCrop(224, 224) + flip + normalize, "
      "batch %lld (target: 250 images/s per worker thread)\n",
      data->size(), folder.c_str(), static_cast<long long>(batch_size));
  auto sampler = std::make_shared<RandomSampler>(data->size(), 7);
  auto augmentation = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomResizedCrop>(224, 224), std::make_shared<RandomHorizontalFlip>()});
  for (int workers : worker_counts) {
    if (workers < 1) continue;
    DataLoaderOptions options;
    options.batch_size = batch_size;
    options.workers = workers;
    options.device = device;
    DataLoader loader(data, sampler, augmentation, kImagenetNormalize, options);
    time_epoch(loader, 0);  // warm-up: the files enter the page cache
    const EpochFigures f = time_epoch(loader, 1);
    std::printf(
        "    workers %d: %7.0f images/s, %6.0f images/s per thread  (%lld images in "
        "%.2f s)\n",
        workers, f.images / f.seconds, f.images / f.seconds / workers,
        static_cast<long long>(f.images), f.seconds);
  }
}

// ResNet-18 for CIFAR trained on the loader's batches: where the step time goes.
void bench_training(std::shared_ptr<const Dataset> data, Device device, int64_t batch_size,
                    int workers, int steps) {
  std::printf(
      "\n(c) resnet18_cifar trained with SGD on %s, batch %lld, %d workers: share of the "
      "step time spent waiting for data (target: under 2%%)\n",
      device.str().c_str(), static_cast<long long>(batch_size), workers);
  manual_seed(0);
  auto model = nn::make_model("resnet18_cifar");
  model->to(device);
  optim::SGDOptions sgd_options(0.05);
  sgd_options.momentum = 0.9;
  sgd_options.weight_decay = 5e-4;
  optim::SGD sgd(model->parameters(), sgd_options);

  DataLoaderOptions options;
  options.batch_size = batch_size;
  options.workers = workers;
  options.device = device;
  options.drop_last = true;
  DataLoader loader(data, std::make_shared<RandomSampler>(data->size(), 7), cifar_augmentation(),
                    kCifarNormalize, options);
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  Batch batch;
  auto train_step = [&] {
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      loader.next(batch);
    }
    sgd.zero_grad();
    Tensor loss = cross_entropy((*model)(batch.images), batch.labels);
    loss.backward();
    sgd.step();
    return loss;
  };
  const int warmup = 10;
  for (int i = 0; i < warmup; ++i) train_step();
  synchronize(device);
  loader.reset_stats();
  const auto start = std::chrono::steady_clock::now();
  Tensor loss;
  for (int i = 0; i < steps; ++i) loss = train_step();
  const float last_loss = loss.item<float>();  // waits for the last step
  synchronize(device);
  const double seconds = seconds_since(start);
  const DataLoaderStats stats = loader.stats();
  std::printf("    %d steps in %.2f s: %.1f ms/step, %.0f images/s, loss %.3f\n", steps, seconds,
              1e3 * seconds / steps, steps * batch_size / seconds, last_loss);
  std::printf(
      "    waiting for data: %.3f s = %.2f%% of the step time (next() altogether: %.2f%%)\n",
      stats.wait_seconds, 100 * stats.wait_seconds / seconds, 100 * stats.next_seconds / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench_loader: DataLoader throughput, and the share of a training step spent "
      "waiting for data"};
  std::string device_flag = "auto", cifar_root, jpeg_folder;
  int64_t batch_size = 256, jpeg_batch_size = 64;
  std::vector<int> worker_counts = {0, 1, 2};
  int images = 50000, jpegs = 400, train_workers = 2, train_steps = 200;
  std::string parts = "abc";
  app.add_option("--device", device_flag, "where batches go: cpu, cuda, cuda:N or auto")
      ->capture_default_str();
  app.add_option("--parts", parts, "which parts to run: any of a, b, c")->capture_default_str();
  app.add_option("--workers", worker_counts, "worker counts for (a) and (b)")
      ->capture_default_str();
  app.add_option("--batch", batch_size, "batch size for (a) and (c)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--images", images, "synthetic images for (a) and (c)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--cifar", cifar_root,
                 "CIFAR-10 in any form ember reads (batches, archive, image folder) instead of "
                 "synthetic images");
  app.add_option("--folder", jpeg_folder,
                 "an image folder (ROOT/<class>/*.jpg) for (b) instead of generated JPEGs");
  app.add_option("--jpegs", jpegs, "JPEGs to generate for (b) when no --folder is given")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--jpeg-batch", jpeg_batch_size, "batch size for (b)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--train-workers", train_workers, "loader workers for (c)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--train-steps", train_steps, "timed training steps for (c)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    // A GPU asked for but absent is not a failure here: the CPU parts still run.
    Device device = Device::cpu();
    const bool wants_gpu = device_flag != "cpu";
    if (wants_gpu && cuda_available())
      device = resolve_device(device_flag == "auto" ? "cuda" : device_flag);
    else if (wants_gpu && device_flag != "auto")
      std::printf("bench_loader: no GPU (%s): batches stay on the CPU\n",
                  cuda_unavailable_reason().c_str());
    std::printf("bench_loader: %u hardware threads; batches on %s\n",
                std::thread::hardware_concurrency(), device.str().c_str());

    std::shared_ptr<const Dataset> cifar;
    const bool run_training = parts.find('c') != std::string::npos && device.is_cuda();
    if (parts.find('a') != std::string::npos || run_training)
      cifar = cifar_sized_images(cifar_root, static_cast<size_t>(images));
    if (parts.find('a') != std::string::npos)
      bench_in_memory(cifar, device, batch_size, worker_counts);
    if (parts.find('b') != std::string::npos)
      bench_jpeg(jpeg_folder.empty() ? generated_jpeg_folder(jpegs) : jpeg_folder, device,
                 jpeg_batch_size, worker_counts);
    if (parts.find('c') != std::string::npos) {
      if (run_training)
        bench_training(cifar, device, batch_size, train_workers, train_steps);
      else
        std::printf("\n(c) training with the loader: no GPU (%s); skipped\n",
                    cuda_available() ? "batches on the CPU" : cuda_unavailable_reason().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loader: %s\n", e.what());
    return 1;
  }
  return 0;
}
