#include "datasets/transforms.h"

#include "engine/error.h"

namespace ember::data {

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
