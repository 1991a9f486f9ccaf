// Small data sets for the training programs' tests, written in the formats the programs read:
// CIFAR-10 binary batches, MNIST idx files and an ImageNet-layout folder of PNGs. The images of
// class k are noise around a grey level that grows with k, so that a model can tell the classes
// apart (a little).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "datasets/cifar10.h"
#include "datasets/dataset.h"
#include "datasets/idx.h"
#include "datasets/image_decode.h"
#include "datasets/sample_random.h"

namespace ember::test {

// `n` images of height × width × channels whose labels cycle through 0 .. classes - 1.
inline std::shared_ptr<data::InMemoryImageDataset> graded_images(size_t n, int height, int width,
                                                                 int channels, int classes,
                                                                 uint64_t seed) {
  const size_t bytes = static_cast<size_t>(height) * width * channels;
  std::vector<uint8_t> pixels(n * bytes);
  std::vector<int64_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int64_t>(i % classes);
    data::SampleRandom random(seed, 0, i);
    const int level = 40 + static_cast<int>(labels[i]) * 160 / classes;
    for (size_t b = 0; b < bytes; ++b)
      pixels[i * bytes + b] =
          static_cast<uint8_t>(level + static_cast<int>(random.next_u32() % 48));
  }
  return std::make_shared<data::InMemoryImageDataset>(height, width, channels, std::move(pixels),
                                                      std::move(labels), classes);
}

// CIFAR-10's binary batches in `folder`: 5 × per_batch training and per_batch test images.
inline void write_small_cifar(const std::string& folder, size_t per_batch) {
  data::write_cifar10_bin(
      folder,
      {graded_images(5 * per_batch, 32, 32, 3, 10, 1), graded_images(per_batch, 32, 32, 3, 10, 2)},
      per_batch);
}

// MNIST's four idx files (gzipped) in `folder`.
inline void write_small_mnist(const std::string& folder, size_t train, size_t test) {
  std::filesystem::create_directories(folder);
  const auto write = [&](const std::string& images, const std::string& labels, size_t n,
                         uint64_t seed) {
    const auto set = graded_images(n, 28, 28, 1, 10, seed);
    std::vector<uint8_t> label_bytes;
    for (int64_t label : set->labels()) label_bytes.push_back(static_cast<uint8_t>(label));
    data::write_idx_images(folder + "/" + images, n, 28, 28, set->pixels(), true);
    data::write_idx_labels(folder + "/" + labels, label_bytes, true);
  };
  write("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", train, 3);
  write("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", test, 4);
}

// ROOT/train/<class>/*.png and ROOT/val/<class>/*.png: `classes` classes of `per_class` training
// and 2 validation images of 40×40 (RGB).
inline void write_small_imagenet(const std::string& root, int classes, int per_class) {
  const auto write = [&](const std::string& split, int count, uint64_t seed) {
    const auto set = graded_images(static_cast<size_t>(classes * count), 40, 40, 3, classes, seed);
    for (size_t i = 0; i < set->size(); ++i) {
      const std::string folder = root + "/" + split + "/n0000" + std::to_string(set->label(i));
      std::filesystem::create_directories(folder);
      data::Image image;
      set->load_image(i, image);
      char name[32];
      std::snprintf(name, sizeof name, "/img%03zu.png", i);
      data::write_png(folder + name, image);
    }
  };
  write("train", per_class, 5);
  write("val", 2, 6);
}

}  // namespace ember::test
