#include "datasets/synthetic.h"

#include "datasets/sample_random.h"
#include "engine/error.h"

namespace ember::data {

SyntheticDataset::SyntheticDataset(size_t n, int height, int width, int channels, int num_classes,
                                   uint64_t seed)
    : n_(n),
      height_(height),
      width_(width),
      channels_(channels),
      num_classes_(num_classes),
      seed_(seed) {
  EMBER_CHECK(height > 0 && width > 0 && (channels == 1 || channels == 3),
              "synthetic data: images must be H×W×1 or H×W×3 with H, W > 0, got ", height, "×",
              width, "×", channels);
  EMBER_CHECK(num_classes > 0, "synthetic data: num_classes must be positive, got ", num_classes);
}

void SyntheticDataset::check_index(size_t index) const {
  EMBER_CHECK(index < n_, "synthetic data (seed ", seed_, "): example ", index, " of ", n_);
}

int64_t SyntheticDataset::label(size_t index) const {
  check_index(index);
  SampleRandom random(seed_, 0, index);
  return random.integer(0, num_classes_ - 1);
}

void SyntheticDataset::load_image(size_t index, Image& out) const {
  check_index(index);
  SampleRandom random(seed_, 0, index);
  random.integer(0, num_classes_ - 1);  // the label's word(s) come first
  out.resize(height_, width_, channels_);
  uint8_t* pixels = out.pixels.data();
  const size_t bytes = out.bytes();
  // Each word's bytes, lowest first: the same pixels on hosts of either byte order.
  for (size_t i = 0; i < bytes; i += 4) {
    const uint32_t word = random.next_u32();
    for (size_t b = 0; b < 4 && i + b < bytes; ++b)
      pixels[i + b] = static_cast<uint8_t>(word >> (8 * b));
  }
}

std::string SyntheticDataset::source(size_t index) const {
  return str_cat("synthetic data (seed ", seed_, "), example ", index);
}

}  // namespace ember::data
