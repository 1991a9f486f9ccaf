// Synthetic data: examples computed from (seed, index) alone, of any shape.
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <thread>

#include "datasets/sample_random.h"
#include "datasets/synthetic.h"
#include "datasets/transforms.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

TEST_CASE("synthetic examples are a pure function of seed and index") {
  const SyntheticDataset a(1000, 32, 32, 3, 10, 7), b(1000, 32, 32, 3, 10, 7);
  const SyntheticDataset other_seed(1000, 32, 32, 3, 10, 8);
  Image first, second, third;
  int differing_labels = 0;
  for (size_t i = 0; i < 50; ++i) {
    a.load_image(i, first);
    b.load_image(i, second);
    CHECK(first.pixels == second.pixels);
    CHECK(a.label(i) == b.label(i));
    other_seed.load_image(i, third);
    CHECK(first.pixels != third.pixels);
    differing_labels += a.label(i) != other_seed.label(i);
  }
  CHECK(differing_labels > 30);
  a.load_image(3, first);
  a.load_image(4, second);
  CHECK(first.pixels != second.pixels);
  a.load_image(3, second);
  CHECK(first.pixels == second.pixels);  // reading again gives the same bytes
  CHECK(a.source(4) == "synthetic data (seed 7), example 4");
}

TEST_CASE("synthetic examples follow the documented stream layout") {
  // Example i: the label from the first word of SampleRandom(seed, 0, i), then pixel bytes
  // four per word, lowest byte first. 5×5×1 = 25 bytes ends in a partial word.
  const SyntheticDataset data(10, 5, 5, 1, 6, 123);
  for (size_t index : {0, 9}) {
    SampleRandom random(123, 0, index);
    CHECK(data.label(index) == random.integer(0, 5));
    Image image;
    data.load_image(index, image);
    REQUIRE(image.height == 5);
    REQUIRE(image.width == 5);
    REQUIRE(image.channels == 1);
    REQUIRE(image.pixels.size() == 25);
    for (size_t i = 0; i < 25; i += 4) {
      const uint32_t word = random.next_u32();
      for (size_t b = 0; b < 4 && i + b < 25; ++b)
        CHECK(image.pixels[i + b] == static_cast<uint8_t>(word >> (8 * b)));
    }
  }
}

TEST_CASE("synthetic labels and pixels are spread evenly") {
  const SyntheticDataset data(10000, 8, 8, 3, 10, 1);
  std::array<int, 10> per_class{};
  for (size_t i = 0; i < data.size(); ++i) {
    const int64_t label = data.label(i);
    REQUIRE(label >= 0);
    REQUIRE(label < 10);
    ++per_class[label];
  }
  for (int count : per_class) {
    CHECK(count > 850);  // expected 1000, standard deviation 30
    CHECK(count < 1150);
  }
  std::array<int, 256> values{};
  double sum = 0;
  Image image;
  for (size_t i = 0; i < 200; ++i) {
    data.load_image(i, image);
    for (uint8_t p : image.pixels) {
      ++values[p];
      sum += p;
    }
  }
  for (int count : values) CHECK(count > 0);
  CHECK(sum / (200 * 192) == doctest::Approx(127.5).epsilon(0.01));
}

TEST_CASE("synthetic data works with subsets transforms and several threads") {
  auto data = std::make_shared<SyntheticDataset>(64, 40, 30, 3, 4, 5);
  const Subset tail(data, {63, 62});
  Image from_subset, direct;
  tail.load_image(0, from_subset);
  data->load_image(63, direct);
  CHECK(from_subset.pixels == direct.pixels);
  CHECK(tail.label(1) == data->label(62));

  // A buffer that held a larger image is reused and resized.
  Image reused;
  reused.resize(100, 100, 3);
  data->load_image(63, reused);
  CHECK(reused.pixels == direct.pixels);
  CHECK(reused.height == 40);

  RandomResizedCrop crop(16, 16);
  SampleRandom random(1, 0, 63);
  crop.apply(reused, random);
  CHECK(reused.pixels.size() == 16 * 16 * 3);

  // Reads from several threads at once agree with a single thread.
  std::vector<std::vector<uint8_t>> expected(64);
  for (size_t i = 0; i < 64; ++i) {
    Image image;
    data->load_image(i, image);
    expected[i] = image.pixels;
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Image image;
      for (size_t i = t; i < 64; i += 4) {
        data->load_image(i, image);
        mismatches[t] += image.pixels != expected[i];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("synthetic data rejects bad shapes and indices") {
  CHECK(contains(error_of([] { SyntheticDataset(10, 4, 4, 2, 10, 0); }),
                 "synthetic data: images must be H×W×1 or H×W×3 with H, W > 0, got 4×4×2"));
  CHECK(contains(error_of([] { SyntheticDataset(10, 4, 4, 3, 0, 0); }),
                 "synthetic data: num_classes must be positive, got 0"));
  const SyntheticDataset data(10, 4, 4, 3, 10, 9);
  Image image;
  CHECK(contains(error_of([&] { data.load_image(10, image); }),
                 "synthetic data (seed 9): example 10 of 10"));
  CHECK(contains(error_of([&] { data.label(12); }), "synthetic data (seed 9): example 12 of 10"));
}
