#include "datasets/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"

namespace ember::data {

namespace {

// A per-thread second buffer: a transform that changes the shape writes its result here and
// swaps buffers with the image, so that after the first few examples nothing is allocated.
Image& scratch_image() {
  thread_local Image scratch;
  return scratch;
}

// Moves `result` into `image` by swapping buffers (the old pixels become the next scratch).
void take_result(Image& image, Image& result) {
  image.pixels.swap(result.pixels);
  image.height = result.height;
  image.width = result.width;
  image.channels = result.channels;
}

// `who` describes itself only when the check fails: describing allocates.
void check_image(const Image& image, const Transform& who) {
  EMBER_CHECK(image.height > 0 && image.width > 0 && image.channels > 0, who.describe(),
              ": needs a non-empty image, got ", image.height, "×", image.width, "×",
              image.channels);
  EMBER_CHECK(
      image.pixels.size() == static_cast<size_t>(image.height) * image.width * image.channels,
      who.describe(), ": a ", image.height, "×", image.width, "×", image.channels, " image holds ",
      image.pixels.size(), " bytes");
}

// Python's repr of a float: the shortest text that reads back the same, "1.0" for integers.
std::string python_float(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  std::string result = text;
  if (result.find_first_of(".en") == std::string::npos) result += ".0";
  return result;
}

// Python's round(value, 4), as torchvision prints RandomResizedCrop's ranges.
std::string python_float_4(double value) {
  return python_float(std::nearbyint(value * 1e4) / 1e4);
}

std::string size_text(int height, int width) {
  return str_cat("(", height, ", ", width, ")");
}

void check_size(const char* who, int height, int width) {
  EMBER_CHECK(height > 0 && width > 0, who, ": the output size must be positive, got ",
              size_text(height, width));
}

// For one axis of a bilinear resize from `in` to `out` pixels: the two source pixels each output
// pixel reads and their weights. As PyTorch with align_corners=False: the scale in / out in
// float, the source coordinate (dst + 0.5) · scale − 0.5 in double, clamped at 0; its integer
// part is the first pixel, the next one (or the same at the last pixel) the second, and the
// fraction, rounded to float, the second one's weight.
struct AxisTaps {
  std::vector<int> first, second;
  std::vector<float> first_weight, second_weight;
};

void compute_taps(int in, int out, AxisTaps& taps) {
  taps.first.resize(out);
  taps.second.resize(out);
  taps.first_weight.resize(out);
  taps.second_weight.resize(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int d = 0; d < out; ++d) {
    double source = in == out ? d : scale * (d + 0.5) - 0.5;
    if (source < 0) source = 0;
    const int index = static_cast<int>(source);
    const float fraction = static_cast<float>(std::min(std::max(source - index, 0.0), 1.0));
    taps.first[d] = index;
    taps.second[d] = index < in - 1 ? index + 1 : index;
    taps.second_weight[d] = fraction;
    taps.first_weight[d] = 1.0f - fraction;
  }
}

}  // namespace

// ---- building blocks -------------------------------------------------------------------------

void crop_with_fill(const Image& image, int top, int left, int out_height, int out_width,
                    uint8_t fill, Image& out) {
  const int channels = image.channels;
  out.resize(out_height, out_width, channels);
  // The window's columns that fall inside the image: [inside_begin, inside_end).
  const int inside_begin = std::min(std::max(-left, 0), out_width);
  const int inside_end = std::max(std::min(image.width - left, out_width), inside_begin);
  const size_t before = static_cast<size_t>(inside_begin) * channels;
  const size_t inside = static_cast<size_t>(inside_end - inside_begin) * channels;
  const size_t after = static_cast<size_t>(out_width) * channels - before - inside;
  for (int y = 0; y < out_height; ++y) {
    uint8_t* row = out.at(y, 0);
    const int source_y = top + y;
    if (source_y < 0 || source_y >= image.height || inside == 0) {
      std::memset(row, fill, before + inside + after);
      continue;
    }
    if (before) std::memset(row, fill, before);
    std::memcpy(row + before, image.at(source_y, left + inside_begin), inside);
    if (after) std::memset(row + before + inside, fill, after);
  }
}

void resize_bilinear(const Image& image, int top, int left, int height, int width, int out_height,
                     int out_width, Image& out) {
  EMBER_CHECK(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= image.height &&
                  left + width <= image.width,
              "resize_bilinear: the window (top ", top, ", left ", left, ", ", height, "×", width,
              ") is not inside the ", image.height, "×", image.width, " image");
  check_size("resize_bilinear", out_height, out_width);
  thread_local AxisTaps rows, columns;
  compute_taps(height, out_height, rows);
  compute_taps(width, out_width, columns);
  const int channels = image.channels;
  out.resize(out_height, out_width, channels);
  for (int y = 0; y < out_height; ++y) {
    const uint8_t* upper = image.at(top + rows.first[y], left);
    const uint8_t* lower = image.at(top + rows.second[y], left);
    const float upper_weight = rows.first_weight[y], lower_weight = rows.second_weight[y];
    uint8_t* destination = out.at(y, 0);
    for (int x = 0; x < out_width; ++x) {
      const int a = columns.first[x] * channels, b = columns.second[x] * channels;
      const float wa = columns.first_weight[x], wb = columns.second_weight[x];
      for (int c = 0; c < channels; ++c) {
        // Each row first, then the two rows, as PyTorch. Its result at an exact tie (x.5) depends
        // on whether its build fuses these multiply-adds; elsewhere the bytes agree.
        const float upper_value = upper[a + c] * wa + upper[b + c] * wb;
        const float lower_value = lower[a + c] * wa + lower[b + c] * wb;
        const float value = upper_value * upper_weight + lower_value * lower_weight;
        // Ties round to even, as torch.round.
        const long rounded = std::lrint(value);
        destination[c] = static_cast<uint8_t>(rounded < 0 ? 0 : rounded > 255 ? 255 : rounded);
      }
      destination += channels;
    }
  }
}

// ---- Compose -----------------------------------------------------------------------------------

Compose::Compose(std::vector<std::shared_ptr<const Transform>> steps) : steps_(std::move(steps)) {
  for (size_t i = 0; i < steps_.size(); ++i)
    EMBER_CHECK(steps_[i] != nullptr, "Compose: step ", i, " is null");
}

void Compose::apply(Image& image, SampleRandom& random) const {
  for (const auto& step : steps_) step->apply(image, random);
}

std::string Compose::describe() const {
  std::string text = "Compose(\n";
  for (const auto& step : steps_) text += "    " + step->describe() + "\n";
  return text + ")";
}

// ---- RandomCrop --------------------------------------------------------------------------------

RandomCrop::RandomCrop(int height, int width, int padding, uint8_t fill)
    : height_(height), width_(width), padding_(padding), fill_(fill) {
  check_size("RandomCrop", height, width);
  EMBER_CHECK(padding >= 0, "RandomCrop: padding must be >= 0, got ", padding);
}

void RandomCrop::apply(Image& image, SampleRandom& random) const {
  check_image(image, *this);
  const int padded_height = image.height + 2 * padding_, padded_width = image.width + 2 * padding_;
  EMBER_CHECK(padded_height >= height_ && padded_width >= width_, describe(), ": the ",
              image.height, "×", image.width, " image padded by ", padding_, " (", padded_height,
              "×", padded_width, ") is smaller than the ", height_, "×", width_, " crop");
  // The window's corner in padded coordinates, then shifted back into the image's.
  const int top = static_cast<int>(random.integer(0, padded_height - height_)) - padding_;
  const int left = static_cast<int>(random.integer(0, padded_width - width_)) - padding_;
  if (top == 0 && left == 0 && height_ == image.height && width_ == image.width) return;
  Image& result = scratch_image();
  crop_with_fill(image, top, left, height_, width_, fill_, result);
  take_result(image, result);
}

std::string RandomCrop::describe() const {
  std::string text =
      str_cat("RandomCrop(size=", size_text(height_, width_), ", padding=", padding_);
  if (fill_ != 0) text += str_cat(", fill=", static_cast<int>(fill_));
  return text + ")";
}

// ---- RandomHorizontalFlip ----------------------------------------------------------------------

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, "RandomHorizontalFlip: p must lie in [0, 1], got ", p);
}

void RandomHorizontalFlip::apply(Image& image, SampleRandom& random) const {
  check_image(image, *this);
  if (!random.bernoulli(p_)) return;
  const int channels = image.channels, width = image.width;
  for (int y = 0; y < image.height; ++y) {
    uint8_t* row = image.at(y, 0);
    if (channels == 1) {
      std::reverse(row, row + width);
      continue;
    }
    uint8_t* left = row;
    uint8_t* right = row + static_cast<size_t>(width - 1) * channels;
    for (; left < right; left += channels, right -= channels)
      std::swap_ranges(left, left + channels, right);
  }
}

std::string RandomHorizontalFlip::describe() const {
  return "RandomHorizontalFlip(p=" + python_float(p_) + ")";
}

// ---- Resize ------------------------------------------------------------------------------------

Resize::Resize(int size) : size_(size) {
  EMBER_CHECK(size > 0, "Resize: the size must be positive, got ", size);
}

Resize::Resize(int height, int width) : height_(height), width_(width) {
  check_size("Resize", height, width);
}

std::pair<int, int> Resize::output_size(int image_height, int image_width) const {
  if (size_ == 0) return {height_, width_};
  const bool portrait = image_width <= image_height;
  const int shorter = portrait ? image_width : image_height;
  const int longer = portrait ? image_height : image_width;
  // int(size * long / short): an exact product, a true division, truncation.
  const int new_longer = static_cast<int>(static_cast<double>(size_) * longer / shorter);
  return portrait ? std::make_pair(new_longer, size_) : std::make_pair(size_, new_longer);
}

void Resize::apply(Image& image, SampleRandom&) const {
  check_image(image, *this);
  const auto [height, width] = output_size(image.height, image.width);
  EMBER_CHECK(height > 0 && width > 0, describe(), ": a ", image.height, "×", image.width,
              " image would become ", height, "×", width);
  if (height == image.height && width == image.width) return;
  Image& result = scratch_image();
  resize_bilinear(image, 0, 0, image.height, image.width, height, width, result);
  take_result(image, result);
}

std::string Resize::describe() const {
  const std::string size = size_ ? std::to_string(size_) : size_text(height_, width_);
  return "Resize(size=" + size + ", interpolation=bilinear, antialias=False)";
}

// ---- CenterCrop --------------------------------------------------------------------------------

CenterCrop::CenterCrop(int height, int width) : height_(height), width_(width) {
  check_size("CenterCrop", height, width);
}

void CenterCrop::apply(Image& image, SampleRandom&) const {
  check_image(image, *this);
  // Per axis: a window inside the image starts at round((size − crop) / 2) (ties to even, as
  // Python's round); a larger one starts floor((crop − size) / 2) before the image (the padding).
  auto offset = [](int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    return static_cast<int>(std::nearbyint((size - crop) / 2.0));
  };
  const int top = offset(image.height, height_), left = offset(image.width, width_);
  if (top == 0 && left == 0 && height_ == image.height && width_ == image.width) return;
  Image& result = scratch_image();
  crop_with_fill(image, top, left, height_, width_, 0, result);
  take_result(image, result);
}

std::string CenterCrop::describe() const {
  return "CenterCrop(size=" + size_text(height_, width_) + ")";
}

// ---- RandomResizedCrop -------------------------------------------------------------------------

RandomResizedCrop::RandomResizedCrop(int height, int width, double scale_min, double scale_max,
                                     double ratio_min, double ratio_max)
    : height_(height),
      width_(width),
      scale_min_(scale_min),
      scale_max_(scale_max),
      ratio_min_(ratio_min),
      ratio_max_(ratio_max) {
  check_size("RandomResizedCrop", height, width);
  EMBER_CHECK(scale_min >= 0 && scale_min <= scale_max && std::isfinite(scale_max),
              "RandomResizedCrop: the scale range (", scale_min, ", ", scale_max,
              ") must satisfy 0 <= min <= max");
  EMBER_CHECK(ratio_min > 0 && ratio_min <= ratio_max && std::isfinite(ratio_max),
              "RandomResizedCrop: the ratio range (", ratio_min, ", ", ratio_max,
              ") must satisfy 0 < min <= max");
}

RandomResizedCrop::Window RandomResizedCrop::choose_window(int image_height, int image_width,
                                                           SampleRandom& random) const {
  const double area = static_cast<double>(image_height) * image_width;
  const double log_ratio_min = std::log(ratio_min_), log_ratio_max = std::log(ratio_max_);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * random.uniform(scale_min_, scale_max_);
    const double ratio = std::exp(random.uniform(log_ratio_min, log_ratio_max));
    // Python's round: ties to even, as nearbyint in the default rounding mode.
    const double w = std::nearbyint(std::sqrt(target_area * ratio));
    const double h = std::nearbyint(std::sqrt(target_area / ratio));
    if (w > 0 && w <= image_width && h > 0 && h <= image_height) {
      const int height = static_cast<int>(h), width = static_cast<int>(w);
      const int top = static_cast<int>(random.integer(0, image_height - height));
      const int left = static_cast<int>(random.integer(0, image_width - width));
      return {top, left, height, width};
    }
  }
  // Fallback: the central crop with the input's ratio clamped to the allowed range.
  const double input_ratio = static_cast<double>(image_width) / image_height;
  int height = image_height, width = image_width;
  if (input_ratio < ratio_min_) {
    height = static_cast<int>(std::nearbyint(width / ratio_min_));
  } else if (input_ratio > ratio_max_) {
    width = static_cast<int>(std::nearbyint(height * ratio_max_));
  }
  return {(image_height - height) / 2, (image_width - width) / 2, height, width};
}

void RandomResizedCrop::apply(Image& image, SampleRandom& random) const {
  check_image(image, *this);
  const Window window = choose_window(image.height, image.width, random);
  Image& result = scratch_image();
  resize_bilinear(image, window.top, window.left, window.height, window.width, height_, width_,
                  result);
  take_result(image, result);
}

std::string RandomResizedCrop::describe() const {
  return "RandomResizedCrop(size=" + size_text(height_, width_) + ", scale=(" +
         python_float_4(scale_min_) + ", " + python_float_4(scale_max_) + "), ratio=(" +
         python_float_4(ratio_min_) + ", " + python_float_4(ratio_max_) +
         "), interpolation=bilinear)";
}

// ---- Normalize ---------------------------------------------------------------------------------

void Normalize::to_chw(const Image& image, float* out) const {
  const int channels = image.channels;
  auto per_channel = [&](const std::vector<float>& values, const char* what) {
    EMBER_CHECK(values.size() == 1 || static_cast<int>(values.size()) == channels,
                "Normalize: ", values.size(), " ", what, " values for an image of ", channels,
                " channels");
  };
  per_channel(mean, "mean");
  per_channel(std, "std");
  const size_t plane = static_cast<size_t>(image.height) * image.width;
  for (int c = 0; c < channels; ++c) {
    const float m = mean.size() == 1 ? mean[0] : mean[c];
    const float s = std.size() == 1 ? std[0] : std[c];
    // (p / 255 - m) / s = p * scale + shift, one multiply-add per pixel
    const float scale = 1.0f / (255.0f * s), shift = -m / s;
    const uint8_t* in = image.pixels.data() + c;
    float* plane_out = out + c * plane;
    for (size_t i = 0; i < plane; ++i)
      plane_out[i] = static_cast<float>(in[i * channels]) * scale + shift;
  }
}

std::string Normalize::describe() const {
  auto list = [](const std::vector<float>& v) {
    std::string text = "(";
    for (size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + std::to_string(v[i]);
    return text + ")";
  };
  return "Normalize(mean=" + list(mean) + ", std=" + list(std) + ")";
}

}  // namespace ember::data
