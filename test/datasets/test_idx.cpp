// MNIST-style idx files: hand-laid bytes read exactly, raw or gzipped, the writers' output byte
// for byte, the folder layouts load_mnist finds, and the errors of damaged or missing files.
#include <doctest/doctest.h>

#include <filesystem>

#include "datasets/archive.h"
#include "datasets/idx.h"
#include "format_fixtures.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;
using ember::test::write_bytes;

namespace {

// An idx header as the format lays it out: magic, then each size, all big-endian u32.
std::vector<uint8_t> idx_header(uint32_t magic, std::vector<uint32_t> sizes) {
  std::vector<uint8_t> bytes;
  sizes.insert(sizes.begin(), magic);
  for (uint32_t v : sizes) {
    bytes.push_back(static_cast<uint8_t>(v >> 24));
    bytes.push_back(static_cast<uint8_t>(v >> 16));
    bytes.push_back(static_cast<uint8_t>(v >> 8));
    bytes.push_back(static_cast<uint8_t>(v));
  }
  return bytes;
}

std::vector<uint8_t> images_file(uint32_t count, uint32_t rows, uint32_t columns,
                                 const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> bytes = idx_header(0x803, {count, rows, columns});
  bytes.insert(bytes.end(), pixels.begin(), pixels.end());
  return bytes;
}

std::vector<uint8_t> labels_file(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> bytes = idx_header(0x801, {static_cast<uint32_t>(labels.size())});
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

// Pixel `i` of image `n`: different in every image and position.
uint8_t pixel(size_t n, size_t i) {
  return static_cast<uint8_t>(n * 31 + i * 7 + 3);
}

std::vector<uint8_t> pixels(size_t count, size_t image_bytes) {
  std::vector<uint8_t> all;
  for (size_t n = 0; n < count; ++n)
    for (size_t i = 0; i < image_bytes; ++i) all.push_back(pixel(n, i));
  return all;
}

// A complete MNIST folder of 4×3 images (5 train, 3 test), some files gzipped.
void write_mnist_folder(const std::filesystem::path& folder) {
  std::filesystem::create_directories(folder);
  write_bytes((folder / "train-images-idx3-ubyte.gz").string(),
              gzip(images_file(5, 4, 3, pixels(5, 12))));
  write_bytes((folder / "train-labels-idx1-ubyte").string(), labels_file({3, 1, 4, 1, 5}));
  write_bytes((folder / "t10k-images-idx3-ubyte").string(), images_file(3, 4, 3, pixels(3, 12)));
  write_bytes((folder / "t10k-labels-idx1-ubyte.gz").string(), gzip(labels_file({9, 0, 2})));
}

}  // namespace

TEST_CASE("idx images and labels read exactly whether raw or gzipped") {
  TemporaryDirectory dir;
  const std::vector<uint8_t> image_bytes = images_file(3, 2, 4, pixels(3, 8));
  write_bytes(dir.file("images"), image_bytes);
  write_bytes(dir.file("images.packed"), gzip(image_bytes));  // no .gz: found by content
  for (const char* name : {"images", "images.packed"}) {
    const IdxImages images = read_idx_images(dir.file(name));
    CHECK(images.count == 3);
    CHECK(images.height == 2);
    CHECK(images.width == 4);
    CHECK(images.pixels == pixels(3, 8));
  }
  write_bytes(dir.file("labels.gz"), gzip(labels_file({7, 0, 9})));
  CHECK(read_idx_labels(dir.file("labels.gz")) == std::vector<uint8_t>{7, 0, 9});
}

TEST_CASE("the idx writers lay out the header and payload byte for byte") {
  TemporaryDirectory dir;
  write_idx_images(dir.file("i"), 3, 2, 4, pixels(3, 8), false);
  CHECK(read_file_bytes(dir.file("i")) == images_file(3, 2, 4, pixels(3, 8)));
  CHECK(read_file_bytes(dir.file("i"))[3] == 0x03);  // 0x00000803
  write_idx_images(dir.file("i.gz"), 3, 2, 4, pixels(3, 8), true);
  const std::vector<uint8_t> packed = read_file_bytes(dir.file("i.gz"));
  CHECK(is_gzip(packed));
  CHECK(gunzip(packed, "i.gz") == images_file(3, 2, 4, pixels(3, 8)));
  write_idx_labels(dir.file("l"), {4, 2}, false);
  CHECK(read_file_bytes(dir.file("l")) == std::vector<uint8_t>{0, 0, 8, 1, 0, 0, 0, 2, 4, 2});
  write_idx_labels(dir.file("l.gz"), {4, 2}, true);
  CHECK(read_idx_labels(dir.file("l.gz")) == std::vector<uint8_t>{4, 2});
  CHECK(dir.entries() == std::vector<std::string>{"i", "i.gz", "l", "l.gz"});  // no leftovers
  CHECK(contains(error_of([&] {
                   write_idx_images(dir.file("x"), 2, 2, 2, {1, 2, 3}, false);
                 }),
                 "2 images of 2×2 need 8 bytes, got 3"));
}

TEST_CASE("an idx file with a wrong magic number or length names the file and the counts") {
  CHECK(error_of([] {
          parse_idx_images(labels_file({1, 2}), "labels-as-images");
        }) ==
        "labels-as-images: bad magic number 0x00000801 (expected 0x00000803: idx images, "
        "unsigned bytes in 3 dimensions)");
  CHECK(contains(error_of([] { parse_idx_labels(images_file(1, 1, 1, {0}), "x"); }),
                 "x: bad magic number 0x00000803 (expected 0x00000801: idx labels"));
  std::vector<uint8_t> cut = images_file(3, 28, 28, pixels(3, 784));
  cut.resize(16 + 784 * 2 + 100);
  CHECK(error_of([&] { parse_idx_images(cut, "train-images-idx3-ubyte"); }) ==
        "train-images-idx3-ubyte: truncated: expected 2368 bytes (a 16-byte header and 3 images "
        "of 28×28), got 1684");
  std::vector<uint8_t> longer = labels_file({1, 2});
  longer.push_back(0);
  CHECK(error_of([&] { parse_idx_labels(longer, "l"); }) ==
        "l: too long: expected 10 bytes (an 8-byte header and 2 labels), got 11");
  CHECK(error_of([] {
          parse_idx_images({0, 0, 8, 3, 0, 0}, "short");
        }) == "short: truncated: expected at least 16 bytes (an idx header), got 6");
  CHECK(contains(error_of([] { parse_idx_images(images_file(1, 0, 5, {}), "flat"); }),
                 "flat: images of 0×5 pixels"));
  // A gzipped file cut short: the gzip layer names the file.
  TemporaryDirectory dir;
  const std::vector<uint8_t> packed = gzip(images_file(3, 28, 28, pixels(3, 784)));
  write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(packed.begin(), packed.end() - 9));
  CHECK(contains(error_of([&] { read_idx_images(dir.file("cut.gz")); }),
                 dir.file("cut.gz") + ": truncated gzip data"));
}

TEST_CASE("load_mnist reads a folder of idx files into in-memory images") {
  TemporaryDirectory dir;
  write_mnist_folder(dir.path);
  const TrainTest data = load_mnist(dir.path.string());
  REQUIRE(data.train->size() == 5);
  REQUIRE(data.test->size() == 3);
  CHECK(data.train->labels() == std::vector<int64_t>{3, 1, 4, 1, 5});
  CHECK(data.test->labels() == std::vector<int64_t>{9, 0, 2});
  CHECK(data.train->num_classes() == 10);
  CHECK(data.train->class_names()[7] == "7");
  Image image;
  data.train->load_image(4, image);
  CHECK(image.height == 4);
  CHECK(image.width == 3);
  CHECK(image.channels == 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 3; ++x) CHECK(image.at(y, x)[0] == pixel(4, y * 3 + x));
  data.test->load_image(2, image);
  CHECK(image.at(3, 2)[0] == pixel(2, 11));
  CHECK(contains(data.train->source(4), "train-images-idx3-ubyte.gz, example 4"));

  const TrainTest fashion = load_mnist(dir.path.string(), MnistKind::FashionMnist);
  CHECK(fashion.train->class_names() ==
        std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                 "Shirt", "Sneaker", "Bag", "Ankle boot"});
}

TEST_CASE("load_mnist finds torchvision's raw folders") {
  TemporaryDirectory dir;
  CHECK_FALSE(has_mnist_files(dir.path.string()));
  write_mnist_folder(dir.path / "MNIST" / "raw");
  CHECK(has_mnist_files(dir.path.string()));
  CHECK_FALSE(has_mnist_files(dir.path.string(), MnistKind::FashionMnist));
  CHECK(load_mnist(dir.path.string()).train->size() == 5);
  CHECK(find_mnist_files(dir.path.string()).test_labels ==
        (dir.path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").string());
  // Fashion-MNIST is looked for under FashionMNIST/raw, not MNIST/raw.
  CHECK(contains(error_of([&] { load_mnist(dir.path.string(), MnistKind::FashionMnist); }),
                 "no Fashion-MNIST idx files"));
  write_mnist_folder(dir.path / "FashionMNIST" / "raw");
  CHECK(load_mnist(dir.path.string(), MnistKind::FashionMnist).test->size() == 3);
  CHECK(load_mnist((dir.path / "MNIST").string()).test->size() == 3);  // ROOT/MNIST: raw/
}

TEST_CASE("load_mnist says what it looked for and how to get the data") {
  TemporaryDirectory dir;
  const std::string message = error_of([&] { load_mnist(dir.path.string()); });
  CHECK(contains(message, dir.path.string() + ": no MNIST idx files: looked for "
                                              "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                              "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"));
  CHECK(contains(message, (dir.path / "MNIST" / "raw").string()));
  CHECK(
      contains(message, "scripts/get-data.sh fetches Fashion-MNIST and 10,000 real MNIST digits"));

  write_mnist_folder(dir.path);
  std::filesystem::remove(dir.path / "t10k-labels-idx1-ubyte.gz");
  CHECK(error_of([&] { load_mnist(dir.path.string()); }) ==
        dir.path.string() + ": has train-images-idx3-ubyte.gz but not t10k-labels-idx1-ubyte[.gz]");
}

TEST_CASE("load_mnist checks counts and labels and names the file") {
  TemporaryDirectory dir;
  write_mnist_folder(dir.path);
  write_bytes(dir.file("train-labels-idx1-ubyte"), labels_file({3, 1, 4, 1}));
  CHECK(error_of([&] { load_mnist(dir.path.string()); }) ==
        dir.file("train-images-idx3-ubyte.gz") + " holds 5 images but " +
            dir.file("train-labels-idx1-ubyte") + " holds 4 labels");
  write_bytes(dir.file("train-labels-idx1-ubyte"), labels_file({3, 1, 4, 12, 5}));
  CHECK(error_of([&] { load_mnist(dir.path.string()); }) ==
        dir.file("train-labels-idx1-ubyte") + ": label 12 at index 3 is outside 0..9");
  write_bytes(dir.file("train-labels-idx1-ubyte"), labels_file({3, 1, 4, 1, 5}));
  write_bytes(dir.file("t10k-images-idx3-ubyte"), images_file(3, 3, 4, pixels(3, 12)));
  CHECK(contains(error_of([&] { load_mnist(dir.path.string()); }),
                 "holds 4×3 images but " + dir.file("t10k-images-idx3-ubyte") + " holds 3×4"));
}
