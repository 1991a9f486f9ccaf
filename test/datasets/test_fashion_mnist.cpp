// The real Fashion-MNIST (Debian's dataset-fashion-mnist, or the folder EMBER_FASHION_MNIST
// names) read through load_mnist and compared with figures numpy computed from the same files.
// Skipped, visibly, where the data set is absent.
#include <doctest/doctest.h>

#include <cstdlib>  // getenv
#include <filesystem>

#include "datasets/idx.h"

using namespace ember;
using namespace ember::data;

namespace {

// The same places test/learn/test_learn_fashion_mnist.cpp looks in.
std::string fashion_mnist_folder() {
  const char* folder = std::getenv("EMBER_FASHION_MNIST");
  return folder && *folder ? std::string(folder) : "/usr/share/datasets/fashion-mnist";
}

}  // namespace

TEST_CASE("the real Fashion-MNIST parses into 60000 and 10000 balanced examples") {
  const std::string folder = fashion_mnist_folder();
  if (!std::filesystem::exists(std::filesystem::path(folder) / "train-images-idx3-ubyte.gz")) {
    MESSAGE("[ember] SKIPPED: no Fashion-MNIST in " << folder
                                                    << " (apt-get install dataset-fashion-mnist)");
    return;
  }
  const TrainTest data = load_mnist(folder, MnistKind::FashionMnist);
  const auto& train = dynamic_cast<const InMemoryImageDataset&>(*data.train);
  const auto& test = dynamic_cast<const InMemoryImageDataset&>(*data.test);
  REQUIRE(train.size() == 60000);
  REQUIRE(test.size() == 10000);
  CHECK(train.height() == 28);
  CHECK(train.width() == 28);
  CHECK(train.channels() == 1);
  CHECK(train.class_names()[9] == "Ankle boot");

  std::vector<int64_t> train_counts(10, 0), test_counts(10, 0);
  int64_t label_checksum = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    ++train_counts[train.label(i)];
    label_checksum += train.label(i) * static_cast<int64_t>(i);
  }
  for (size_t i = 0; i < test.size(); ++i) ++test_counts[test.label(i)];
  CHECK(train_counts == std::vector<int64_t>(10, 6000));
  CHECK(test_counts == std::vector<int64_t>(10, 1000));

  // Every figure below was computed once with numpy from the gzipped files:
  //   img = np.frombuffer(gzip.open(f).read(), np.uint8, offset=16).reshape(-1, 28, 28)
  //   lab = np.frombuffer(gzip.open(f).read(), np.uint8, offset=8)
  //   train_img.sum() = 3431114169, test_img.sum() = 573469082
  //   (train_img.reshape(60000, -1).sum(1) * (np.arange(60000) % 251 + 1)).sum() = 432827220285
  //   (train_lab * np.arange(60000)).sum() = 8087216427
  //   train_img[0, 14, 14] = 217, train_img[12345, 20, 13] = 186, test_img[9999, 14, 10] = 69,
  //   test_img[0, 13, 13] = 89; first labels: train 9 0 0 3 0, test 9 2 1 1 6
  int64_t train_sum = 0, weighted = 0, test_sum = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    int64_t image_sum = 0;
    const uint8_t* image = train.image_data(i);
    for (size_t p = 0; p < 784; ++p) image_sum += image[p];
    train_sum += image_sum;
    weighted += image_sum * static_cast<int64_t>(i % 251 + 1);
  }
  for (uint8_t p : test.pixels()) test_sum += p;
  CHECK(train_sum == 3431114169);
  CHECK(test_sum == 573469082);
  CHECK(weighted == 432827220285);
  CHECK(label_checksum == 8087216427);
  CHECK(train.image_data(0)[14 * 28 + 14] == 217);
  CHECK(train.image_data(12345)[20 * 28 + 13] == 186);
  CHECK(test.image_data(9999)[14 * 28 + 10] == 69);
  CHECK(test.image_data(0)[13 * 28 + 13] == 89);
  CHECK(std::vector<int64_t>{train.label(0), train.label(1), train.label(2), train.label(3),
                             train.label(4)} == std::vector<int64_t>{9, 0, 0, 3, 0});
  CHECK(std::vector<int64_t>{test.label(0), test.label(1), test.label(2), test.label(3),
                             test.label(4)} == std::vector<int64_t>{9, 2, 1, 1, 6});
}
