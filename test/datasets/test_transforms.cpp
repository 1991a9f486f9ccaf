// Image transforms: geometry against hand-computed windows and torchvision's rules, resampling
// against PyTorch's values, randomness that depends on the example's stream alone.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

#include "datasets/transforms.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {

// Bytes (i * 73 + 19) % 256 over the (y, x, c) order: distinct for images of up to 256 bytes,
// and the pattern the PyTorch reference values below were computed from.
Image pattern_image(int height, int width, int channels) {
  Image image;
  image.resize(height, width, channels);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>((i * 73 + 19) % 256);
  return image;
}

// The padded image built explicitly, the slow way RandomCrop avoids.
Image explicitly_padded(const Image& image, int padding, uint8_t fill) {
  Image padded;
  padded.resize(image.height + 2 * padding, image.width + 2 * padding, image.channels);
  std::fill(padded.pixels.begin(), padded.pixels.end(), fill);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < image.channels; ++c)
        padded.at(y + padding, x + padding)[c] = image.at(y, x)[c];
  return padded;
}

bool window_equals(const Image& big, int top, int left, const Image& window) {
  for (int y = 0; y < window.height; ++y)
    for (int x = 0; x < window.width; ++x)
      for (int c = 0; c < window.channels; ++c)
        if (big.at(top + y, left + x)[c] != window.at(y, x)[c]) return false;
  return true;
}

Image applied(const Transform& transform, Image image, uint64_t seed = 1, uint64_t epoch = 0,
              uint64_t index = 0) {
  SampleRandom random(seed, epoch, index);
  transform.apply(image, random);
  return image;
}

void check_pixels(const Image& image, int height, int width, int channels,
                  const std::vector<int>& expected) {
  REQUIRE(image.height == height);
  REQUIRE(image.width == width);
  REQUIRE(image.channels == channels);
  REQUIRE(image.pixels.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("byte " << i);
    CHECK(static_cast<int>(image.pixels[i]) == expected[i]);
  }
}

}  // namespace

TEST_CASE("random crop from a padded image equals the explicit pad then crop") {
  for (int channels : {1, 3}) {
    const Image image = pattern_image(6, 5, channels);
    const int padding = 2, crop_height = 4, crop_width = 6;
    const uint8_t fill = 7;
    const Image padded = explicitly_padded(image, padding, fill);
    RandomCrop crop(crop_height, crop_width, padding, fill);
    // Every output must be some window of the padded image; count which one.
    std::map<std::pair<int, int>, int> hits;
    const int draws = 3000;
    for (int i = 0; i < draws; ++i) {
      const Image out = applied(crop, image, 5, 0, i);
      REQUIRE(out.height == crop_height);
      REQUIRE(out.width == crop_width);
      REQUIRE(out.channels == channels);
      int matches = 0;
      for (int top = 0; top + crop_height <= padded.height; ++top)
        for (int left = 0; left + crop_width <= padded.width; ++left)
          if (window_equals(padded, top, left, out)) {
            ++matches;
            ++hits[{top, left}];
          }
      REQUIRE(matches == 1);
    }
    // Positions: top in [0, 10 - 4], left in [0, 9 - 6]: 7 × 4 = 28, each hit ~107 times.
    CHECK(hits.size() == 28);
    for (const auto& [position, count] : hits) {
      INFO("top " << position.first << " left " << position.second);
      CHECK(count > 60);
      CHECK(count < 160);
    }
  }
}

TEST_CASE("random crop without padding keeps the window inside and reuses the buffer") {
  const Image image = pattern_image(8, 8, 3);
  RandomCrop crop(8, 8);
  CHECK(applied(crop, image).pixels == image.pixels);  // only one window: the image itself
  RandomCrop smaller(3, 5);
  std::set<std::pair<int, int>> corners;
  for (int i = 0; i < 500; ++i) {
    const Image out = applied(smaller, image, 2, 1, i);
    for (int top = 0; top <= 5; ++top)
      for (int left = 0; left <= 3; ++left)
        if (window_equals(image, top, left, out)) corners.insert({top, left});
  }
  CHECK(corners.size() == 24);
  CHECK(contains(error_of([&] { applied(RandomCrop(32, 32, 4), pattern_image(20, 30, 3)); }),
                 "RandomCrop(size=(32, 32), padding=4): the 20×30 image padded by 4 (28×38) is "
                 "smaller than the 32×32 crop"));
}

TEST_CASE("crop with fill handles windows partly or wholly outside the image") {
  const Image image = pattern_image(3, 4, 1);
  Image out;
  crop_with_fill(image, -1, 2, 3, 4, 9, out);
  const std::vector<uint8_t> expected = {
      9, 9, 9, 9, image.at(0, 2)[0], image.at(0, 3)[0], 9, 9, image.at(1, 2)[0], image.at(1, 3)[0],
      9, 9};
  CHECK(out.pixels == expected);
  crop_with_fill(image, 0, -10, 2, 3, 4, out);
  CHECK(out.pixels == std::vector<uint8_t>(6, 4));
  crop_with_fill(image, 5, 0, 1, 2, 3, out);
  CHECK(out.pixels == std::vector<uint8_t>(2, 3));
}

TEST_CASE("horizontal flip mirrors rows exactly for grey and RGB images") {
  for (int channels : {1, 3}) {
    for (int width : {1, 4, 5}) {
      const Image image = pattern_image(3, width, channels);
      const Image flipped = applied(RandomHorizontalFlip(1.0), image);
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < width; ++x)
          for (int c = 0; c < channels; ++c)
            CHECK(flipped.at(y, x)[c] == image.at(y, width - 1 - x)[c]);
      CHECK(applied(RandomHorizontalFlip(1.0), flipped).pixels == image.pixels);
      CHECK(applied(RandomHorizontalFlip(0.0), image).pixels == image.pixels);
    }
  }
  // p = 0.5: about half of the examples flip.
  const Image image = pattern_image(2, 3, 3);
  RandomHorizontalFlip flip;
  int flips = 0;
  for (int i = 0; i < 4000; ++i) flips += applied(flip, image, 3, 0, i).pixels != image.pixels;
  CHECK(flips > 1850);
  CHECK(flips < 2150);
  CHECK(contains(error_of([] { RandomHorizontalFlip(1.5); }),
                 "RandomHorizontalFlip: p must lie in [0, 1], got 1.5"));
}

TEST_CASE("center crop uses torchvision offsets and pads a larger window with zeros") {
  // Offsets int(round((H - h) / 2.0)), ties to even: 5×7 → 2×4 starts at (2, 2) (round 1.5);
  // 4×4 → 3×3 at (0, 0) (round 0.5). Checked with torchvision's center_crop.
  const Image image = pattern_image(5, 7, 1);
  const Image out = applied(CenterCrop(2, 4), image);
  REQUIRE(out.height == 2);
  REQUIRE(out.width == 4);
  CHECK(window_equals(image, 2, 2, out));
  const Image square = pattern_image(4, 4, 3);
  CHECK(window_equals(square, 0, 0, applied(CenterCrop(3, 3), square)));
  // 2×3 → 5×4: one zero row above, two below, no column before, one after.
  Image small;
  small.resize(2, 3, 1);
  small.pixels = {1, 2, 3, 4, 5, 6};
  const Image padded = applied(CenterCrop(5, 4), small);
  check_pixels(padded, 5, 4, 1, {0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // Mixed: 3×4 → 5×2 pads rows (1 above, 1 below) and crops columns from round(1.0) = 1.
  Image mixed;
  mixed.resize(3, 4, 1);
  for (int i = 0; i < 12; ++i) mixed.pixels[i] = static_cast<uint8_t>(i);
  check_pixels(applied(CenterCrop(5, 2), mixed), 5, 2, 1, {0, 0, 1, 2, 5, 6, 9, 10, 0, 0});
  CHECK(contains(error_of([] { CenterCrop(0, 3); }),
                 "CenterCrop: the output size must be positive, got (0, 3)"));
}

// Reference bytes from PyTorch 1.13 / torchvision 0.14, printed by /usr/bin/python3 running:
//   import torch, torch.nn.functional as F, torchvision.transforms.functional as TF
//   def image(h, w, c):
//       flat = [(i * 73 + 19) % 256 for i in range(h * w * c)]
//       return torch.tensor(flat, dtype=torch.uint8).reshape(h, w, c).permute(2, 0, 1).contiguous()
//   def show(y):  # no output may lie within 0.01 of a tie x.5 (see below)
//       assert ((y - y.floor()) - 0.5).abs().min() > 0.01
//       print(y.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).reshape(-1).tolist())
//   def fixed(h, w, c, oh, ow):
//       show(F.interpolate(image(h, w, c).float()[None], size=(oh, ow), mode="bilinear",
//                          align_corners=False, antialias=False)[0])
//   fixed(5, 7, 1, 3, 4); fixed(3, 5, 1, 7, 6); fixed(7, 9, 3, 3, 5); fixed(3, 5, 3, 7, 6)
//   show(TF.resize(image(9, 5, 1).float(), 7, antialias=False))
//   show(TF.resize(image(7, 9, 3).float(), 5, antialias=False))
//   show(F.interpolate(image(7, 8, 3)[:, 2:6, 1:6].float()[None], size=(6, 3), mode="bilinear",
//                      align_corners=False, antialias=False)[0])
// Cases were chosen free of exact ties: there PyTorch's byte depends on whether its build fused
// the multiply-adds (its AVX2 kernels do), which no portable implementation can mirror.
TEST_CASE("bilinear resize matches PyTorch interpolate on grey and RGB images") {
  check_pixels(applied(Resize(3, 4), pattern_image(5, 7, 1)), 3, 4, 1,
               {46, 174, 78, 173, 44, 172, 76, 172, 43, 170, 74, 170});
  check_pixels(applied(Resize(7, 6), pattern_image(3, 5, 1)), 7, 6, 1,
               {19,  74,  135, 195, 192, 55,  35,  89, 129, 174, 180, 71,  81,  136,
                112, 111, 145, 117, 128, 183, 94,  48, 109, 164, 175, 147, 95,  95,
                129, 101, 221, 112, 96,  142, 148, 38, 237, 100, 97,  157, 154, 17});
  check_pixels(applied(Resize(3, 5), pattern_image(7, 9, 3)), 3, 5, 3,
               {158, 94,  99,  142, 147, 66,  76,  149, 136, 146, 82,  155, 164, 118, 88,
                29,  102, 175, 219, 36,  109, 152, 225, 42,  85,  158, 180, 19,  92,  165,
                106, 179, 149, 124, 112, 185, 228, 131, 118, 162, 201, 120, 95,  168, 173});
  check_pixels(
      applied(Resize(7, 6), pattern_image(3, 5, 3)), 7, 6, 3,
      {19,  92,  165, 183, 64,  137, 216, 33,  106, 186, 109, 76,  155, 228, 45,  127, 200, 17,
       29,  102, 175, 166, 74,  147, 190, 44,  117, 174, 104, 86,  165, 201, 55,  137, 174, 27,
       60,  133, 206, 114, 105, 178, 111, 74,  147, 141, 89,  116, 195, 122, 85,  168, 94,  58,
       90,  163, 236, 62,  135, 208, 31,  104, 177, 107, 74,  147, 226, 43,  116, 198, 15,  88,
       120, 193, 157, 93,  166, 129, 62,  135, 162, 92,  104, 177, 146, 73,  146, 119, 45,  118,
       151, 224, 77,  123, 196, 50,  92,  165, 147, 77,  134, 207, 67,  104, 177, 39,  76,  149,
       161, 234, 51,  133, 206, 23,  102, 175, 142, 72,  145, 218, 41,  114, 187, 13,  86,  159});
  check_pixels(applied(Resize(7), pattern_image(9, 5, 1)), 12, 7, 1,
               {19,  61,  113, 165, 217, 160, 55,  87,  129, 135, 73,  125, 136, 123, 169, 156, 121,
                59,  111, 122, 109, 219, 132, 88,  141, 170, 117, 31,  108, 132, 170, 222, 115, 89,
                112, 158, 108, 92,  144, 128, 152, 194, 144, 94,  78,  130, 113, 138, 180, 66,  107,
                150, 180, 72,  60,  102, 147, 189, 177, 69,  99,  142, 183, 69,  111, 136, 119, 171,
                155, 105, 55,  97,  121, 105, 157, 141, 91,  123, 165, 144, 13,  65,  117, 159});
  check_pixels(
      applied(Resize(5), pattern_image(7, 9, 3)), 5, 6, 3,
      {97,  80,  140, 195, 63,  85,  139, 212, 81,  84,  157, 179, 80,  101, 174, 178, 84,  119,
       143, 139, 71,  87,  160, 131, 70,  105, 178, 130, 49,  122, 177, 147, 67,  121, 168, 126,
       35,  108, 181, 171, 52,  125, 180, 61,  70,  124, 197, 14,  69,  142, 215, 13,  86,  159,
       183, 102, 99,  127, 162, 120, 98,  145, 103, 119, 89,  162, 102, 136, 107, 161, 81,  128,
       75,  148, 183, 173, 93,  166, 182, 88,  110, 165, 186, 55,  109, 182, 204, 54,  127, 187});
  Image window;
  resize_bilinear(pattern_image(7, 8, 3), 2, 1, 4, 5, 6, 3, window);
  check_pixels(window, 6, 3, 3, {146, 219, 36, 84,  157, 230, 22,  95, 168, 126, 199, 58,  64,  137,
                                 210, 88,  75, 148, 99,  172, 103, 37, 110, 183, 161, 49,  122, 72,
                                 145, 190, 11, 84,  157, 191, 22,  95, 46,  119, 192, 112, 57,  130,
                                 178, 81,  68, 26,  99,  172, 220, 37, 110, 158, 146, 48});
  // Same size: a copy.
  const Image same = pattern_image(4, 5, 3);
  CHECK(applied(Resize(4, 5), same).pixels == same.pixels);
}

TEST_CASE("resize of the shorter side follows torchvision's rounding of the longer side") {
  // int(256 * 500 / 375) = int(341.33) = 341
  CHECK(Resize(256).output_size(375, 500) == std::make_pair(256, 341));
  CHECK(Resize(256).output_size(500, 375) == std::make_pair(341, 256));
  CHECK(Resize(224).output_size(300, 300) == std::make_pair(224, 224));
  // int(32 * 33 / 31) = int(34.06) = 34
  CHECK(Resize(32).output_size(31, 33) == std::make_pair(32, 34));
  CHECK(Resize(10, 20).output_size(375, 500) == std::make_pair(10, 20));
  CHECK(contains(error_of([] { Resize(-3); }), "Resize: the size must be positive, got -3"));
  CHECK(contains(error_of([] { Resize(4, 0); }),
                 "Resize: the output size must be positive, got (4, 0)"));
}

TEST_CASE("random resized crop windows stay in range and resample from the source") {
  const RandomResizedCrop crop(16, 12);
  const int height = 90, width = 120, draws = 4000;
  double scale_sum = 0, log_ratio_sum = 0;
  int fallbacks = 0, touches_right = 0, touches_left = 0;
  for (int i = 0; i < draws; ++i) {
    SampleRandom random(11, 2, i);
    const auto w = crop.choose_window(height, width, random);
    REQUIRE(w.top >= 0);
    REQUIRE(w.left >= 0);
    REQUIRE(w.height > 0);
    REQUIRE(w.width > 0);
    REQUIRE(w.top + w.height <= height);
    REQUIRE(w.left + w.width <= width);
    const double scale = static_cast<double>(w.height) * w.width / (height * width);
    const double ratio = static_cast<double>(w.width) / w.height;
    // Rounding the sides to whole pixels moves area and ratio slightly past the ranges.
    CHECK(scale > 0.08 * 0.85);
    CHECK(scale <= 1.0);
    CHECK(ratio > 0.75 * 0.9);
    CHECK(ratio < 4.0 / 3 * 1.1);
    scale_sum += scale;
    log_ratio_sum += std::log(ratio);
    fallbacks += w.height == height && w.width == width;
    touches_left += w.left == 0;
    touches_right += w.left + w.width == width;
  }
  // Accepted windows have scale U(0.08, 1) given that they fit: the mean lies a little below
  // 0.54; log ratio is symmetric around 0 before the fit test, which rejects wide windows of
  // large area on a 4:3 image less often than tall ones.
  CHECK(scale_sum / draws > 0.40);
  CHECK(scale_sum / draws < 0.56);
  CHECK(std::abs(log_ratio_sum / draws) < 0.08);
  CHECK(fallbacks < draws / 50);
  CHECK(touches_left > 0);
  CHECK(touches_right > 0);

  // Applying it equals cutting the chosen window out and resizing that.
  for (int channels : {1, 3}) {
    const Image image = pattern_image(9, 14, channels);
    for (int i = 0; i < 20; ++i) {
      SampleRandom for_window(4, 0, i);
      const auto w = crop.choose_window(image.height, image.width, for_window);
      Image cut, expected;
      crop_with_fill(image, w.top, w.left, w.height, w.width, 0, cut);
      resize_bilinear(cut, 0, 0, cut.height, cut.width, 16, 12, expected);
      const Image out = applied(crop, image, 4, 0, i);
      CHECK(out.pixels == expected.pixels);
      CHECK(out.height == 16);
      CHECK(out.width == 12);
    }
  }
}

TEST_CASE("random resized crop falls back to the ratio-clamped center crop") {
  // A 10×100 strip cannot hold any window of full area and ratio <= 4/3 (h = sqrt(1000 / r)
  // > 10), so all ten attempts fail: the fallback keeps the height, w = round(10 · 4/3) = 13,
  // centered at (100 - 13) // 2 = 43.
  const RandomResizedCrop full_area(8, 8, 1.0, 1.0);
  SampleRandom random(1, 0, 0);
  auto w = full_area.choose_window(10, 100, random);
  CHECK(w.top == 0);
  CHECK(w.left == 43);
  CHECK(w.height == 10);
  CHECK(w.width == 13);
  // A 100×10 strip: the width stays, h = round(10 / (3/4)) = 13, top (100 - 13) // 2 = 43.
  w = full_area.choose_window(100, 10, random);
  CHECK(w.top == 43);
  CHECK(w.left == 0);
  CHECK(w.height == 13);
  CHECK(w.width == 10);
  // Ratio 1 within range and area too large to fit: the whole image.
  const RandomResizedCrop too_big(8, 8, 1.5, 2.0);
  w = too_big.choose_window(20, 20, random);
  CHECK((w.top == 0 && w.left == 0 && w.height == 20 && w.width == 20));
  CHECK(contains(error_of([] { RandomResizedCrop(8, 8, 0.9, 0.1); }),
                 "RandomResizedCrop: the scale range (0.9, 0.1) must satisfy 0 <= min <= max"));
  CHECK(contains(error_of([] { RandomResizedCrop(8, 8, 0.1, 1.0, 0.0, 1.0); }),
                 "RandomResizedCrop: the ratio range (0, 1) must satisfy 0 < min <= max"));
}

TEST_CASE("composed augmentations depend on seed epoch and index only") {
  const Compose augment({std::make_shared<RandomResizedCrop>(10, 10, 0.3),
                         std::make_shared<RandomCrop>(8, 8, 2),
                         std::make_shared<RandomHorizontalFlip>()});
  const Image image = pattern_image(12, 15, 3);
  int differ_by_index = 0, differ_by_epoch = 0;
  for (int i = 0; i < 50; ++i) {
    const Image a = applied(augment, image, 9, 3, i);
    CHECK(applied(augment, image, 9, 3, i).pixels == a.pixels);
    differ_by_index += applied(augment, image, 9, 3, i + 1).pixels != a.pixels;
    differ_by_epoch += applied(augment, image, 9, 4, i).pixels != a.pixels;
  }
  CHECK(differ_by_index >= 45);
  CHECK(differ_by_epoch >= 45);
  // The same image object reused (as the loader's buffers are) gives the same result.
  Image reused = pattern_image(12, 15, 3);
  SampleRandom random(9, 3, 0);
  augment.apply(reused, random);
  CHECK(reused.pixels == applied(augment, image, 9, 3, 0).pixels);
  CHECK(contains(error_of([] { Compose({nullptr}); }), "Compose: step 0 is null"));
  Image empty;
  CHECK(contains(error_of([&] { applied(RandomHorizontalFlip(), empty); }),
                 "RandomHorizontalFlip(p=0.5): needs a non-empty image, got 0×0×0"));
}

TEST_CASE("transforms describe themselves as torchvision prints them") {
  CHECK(RandomCrop(32, 32, 4).describe() == "RandomCrop(size=(32, 32), padding=4)");
  CHECK(RandomCrop(28, 30, 0, 128).describe() == "RandomCrop(size=(28, 30), padding=0, fill=128)");
  CHECK(RandomHorizontalFlip().describe() == "RandomHorizontalFlip(p=0.5)");
  CHECK(RandomHorizontalFlip(1).describe() == "RandomHorizontalFlip(p=1.0)");
  CHECK(Resize(256).describe() == "Resize(size=256, interpolation=bilinear, antialias=False)");
  CHECK(Resize(24, 32).describe() ==
        "Resize(size=(24, 32), interpolation=bilinear, antialias=False)");
  CHECK(CenterCrop(224, 224).describe() == "CenterCrop(size=(224, 224))");
  CHECK(RandomResizedCrop(224, 224).describe() ==
        "RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), ratio=(0.75, 1.3333), "
        "interpolation=bilinear)");
  const Compose both(
      {std::make_shared<RandomCrop>(32, 32, 4), std::make_shared<RandomHorizontalFlip>()});
  CHECK(both.describe() ==
        "Compose(\n    RandomCrop(size=(32, 32), padding=4)\n    RandomHorizontalFlip(p=0.5)\n)");
}
