// The data-set interface itself: in-memory images, subsets, per-example randomness and the
// final conversion to normalized planar floats.
#include <doctest/doctest.h>

#include <set>

#include "datasets/dataset.h"
#include "datasets/sample_random.h"
#include "datasets/transforms.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {
// Three 2×2 RGB images whose bytes count up from 0.
std::shared_ptr<InMemoryImageDataset> counting_images() {
  std::vector<uint8_t> pixels(3 * 12);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i);
  return std::make_shared<InMemoryImageDataset>(2, 2, 3, pixels, std::vector<int64_t>{2, 0, 1}, 3,
                                                std::vector<std::string>{}, "counting");
}
}  // namespace

TEST_CASE("in-memory images load as written and name their origin") {
  auto data = counting_images();
  CHECK(data->size() == 3);
  Image image;
  data->load_image(1, image);
  CHECK(image.height == 2);
  CHECK(image.width == 2);
  CHECK(image.channels == 3);
  CHECK(image.pixels.front() == 12);
  CHECK(image.at(1, 1)[2] == 23);
  CHECK(data->labels() == std::vector<int64_t>{2, 0, 1});
  CHECK(data->source(2) == "counting, example 2");
  CHECK(contains(error_of([&] { data->label(3); }), "example 3 of 3"));
}

TEST_CASE("in-memory images reject labels out of range and wrong byte counts") {
  CHECK(contains(error_of([] {
                   InMemoryImageDataset(1, 1, 1, {0, 0}, {0, 5}, 3, {}, "labels.idx");
                 }),
                 "labels.idx: label 5 of example 1 is outside [0, 3)"));
  CHECK(contains(error_of([] {
                   InMemoryImageDataset(2, 2, 1, {0, 0, 0}, {0}, 3);
                 }),
                 "1 labels need 4 pixel bytes, got 3"));
}

TEST_CASE("a subset reads its parent's examples in its own order") {
  auto data = counting_images();
  Subset subset(data, {2, 0});
  CHECK(subset.size() == 2);
  CHECK(subset.labels() == std::vector<int64_t>{1, 2});
  Image image;
  subset.load_image(0, image);
  CHECK(image.pixels.front() == 24);
  CHECK(subset.source(1) == "counting, example 0");
  CHECK(contains(error_of([&] { Subset(data, {3}); }), "index 3 is outside"));
}

TEST_CASE("per-example random streams depend on seed, epoch and index only") {
  auto draw = [](uint64_t seed, uint64_t epoch, uint64_t index) {
    SampleRandom random(seed, epoch, index);
    std::vector<uint32_t> words;
    for (int i = 0; i < 9; ++i) words.push_back(random.next_u32());
    return words;
  };
  CHECK(draw(1, 2, 3) == draw(1, 2, 3));
  CHECK(draw(1, 2, 3) != draw(1, 2, 4));
  CHECK(draw(1, 2, 3) != draw(1, 3, 3));
  CHECK(draw(1, 2, 3) != draw(2, 2, 3));

  SampleRandom random(7, 0, 0);
  std::set<int64_t> seen;
  double sum = 0;
  for (int i = 0; i < 4000; ++i) {
    const int64_t k = random.integer(-2, 2);
    REQUIRE(k >= -2);
    REQUIRE(k <= 2);
    seen.insert(k);
    const double u = random.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(seen.size() == 5);
  CHECK(sum / 4000 == doctest::Approx(0.5).epsilon(0.03));
}

TEST_CASE("normalize writes planar floats (p / 255 - mean) / std per channel") {
  Image image;
  image.resize(1, 2, 3);
  image.pixels = {0, 51, 255, 102, 153, 204};
  Normalize normalize{{0.5f, 0.0f, 0.2f}, {0.5f, 1.0f, 2.0f}};
  std::vector<float> out(6);
  normalize.to_chw(image, out.data());
  const std::vector<double> expected = {
      (0 / 255.0 - 0.5) / 0.5, (102 / 255.0 - 0.5) / 0.5, 51 / 255.0, 153 / 255.0,
      (1.0 - 0.2) / 2.0,       (204 / 255.0 - 0.2) / 2.0};
  for (int i = 0; i < 6; ++i) CHECK(out[i] == doctest::Approx(expected[i]).epsilon(1e-6));
  CHECK(contains(error_of([&] {
                   Normalize{{0.1f, 0.2f}, {1.0f}}.to_chw(image, out.data());
                 }),
                 "2 mean values for an image of 3 channels"));
}
