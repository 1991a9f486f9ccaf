// Image transforms (augmentations), composable and seeded, and the final conversion to floats.
//
// A Transform changes an Image in place, drawing any randomness from the example's own
// SampleRandom (datasets/sample_random.h), so the result depends on (seed, epoch, index) only.
// The semantics follow torchvision's transforms of the same names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/sample_random.h"

namespace ember::data {

class Transform {
 public:
  virtual ~Transform() = default;
  virtual void apply(Image& image, SampleRandom& random) const = 0;
  // "RandomCrop(32, padding=4)": for logs and summaries.
  virtual std::string describe() const = 0;
};

// ---- concrete transforms -------------------------------------------------------------------
// (declared and implemented in transforms.cpp)

// ---- the last step: bytes to normalized floats ----------------------------------------------
// out[c][y][x] = (pixel[y][x][c] / 255 - mean[c]) / std[c], written planar (channels, height,
// width) as tensors want them. One mean/std per channel, or a single value for all channels.
struct Normalize {
  std::vector<float> mean{0.0f};
  std::vector<float> std{1.0f};

  void to_chw(const Image& image, float* out) const;
  std::string describe() const;
};

}  // namespace ember::data
