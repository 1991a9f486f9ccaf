// Image transforms (augmentations), composable and seeded, and the final conversion to floats.
//
// A Transform changes an Image in place, drawing any randomness from the example's own
// SampleRandom (datasets/sample_random.h), so the result depends on (seed, epoch, index) only.
// The semantics follow torchvision's transforms of the same names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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
// Geometry follows torchvision 0.14 (crop offsets, rounding of sizes, the order of random
// draws); resampling is bilinear with half-pixel centers, computed in float and rounded to the
// nearest byte, as torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
// antialias=False) on a float copy of the image. Every transform works on any channel count.
// Invalid parameters are ember::Errors naming the transform and the value.

// The steps in order, all drawing from the same SampleRandom.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> steps);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;
  const std::vector<std::shared_ptr<const Transform>>& steps() const { return steps_; }

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
};

// Pads every side by `padding` pixels of value `fill`, then cuts a height × width window at a
// uniformly random position: top in [0, H + 2·padding − height], left likewise. The padded image
// is never built: pixels that fall in the border are written as `fill` directly.
class RandomCrop : public Transform {
 public:
  RandomCrop(int height, int width, int padding = 0, uint8_t fill = 0);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;

 private:
  int height_, width_, padding_;
  uint8_t fill_;
};

// Mirrors the image left to right with probability p.
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;

 private:
  double p_;
};

// Bilinear resize. Resize(size): the shorter side becomes `size`, the longer one
// int(size · long / short) (torchvision's rounding, towards zero). Resize(height, width): that
// exact shape.
class Resize : public Transform {
 public:
  explicit Resize(int size);
  Resize(int height, int width);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;
  // The (height, width) an image of the given shape is resized to.
  std::pair<int, int> output_size(int image_height, int image_width) const;

 private:
  int size_ = 0;  // > 0: shorter side; 0: fixed (height_, width_)
  int height_ = 0, width_ = 0;
};

// The central height × width window, at offset int(round((H − height) / 2.0)) (Python's round,
// ties to even) and likewise for the width. A window larger than the image is padded with 0,
// floor((height − H) / 2) rows above, the rest below (likewise for columns).
class CenterCrop : public Transform {
 public:
  CenterCrop(int height, int width);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;

 private:
  int height_, width_;
};

// A crop of random area and aspect ratio, resized to height × width (the Inception-style
// augmentation). The window is chosen as torchvision's get_params: up to 10 attempts of
// area = U(scale_min, scale_max) · H · W and ratio = exp(U(log ratio_min, log ratio_max)),
// w = round(sqrt(area · ratio)), h = round(sqrt(area / ratio)), accepted when 0 < w ≤ W and
// 0 < h ≤ H, at a uniformly random position; failing that, the central crop whose ratio is the
// input's clamped to [ratio_min, ratio_max]. The window is then resampled straight from the
// source image (no copy of the crop).
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int height, int width, double scale_min = 0.08, double scale_max = 1.0,
                    double ratio_min = 3.0 / 4, double ratio_max = 4.0 / 3);
  void apply(Image& image, SampleRandom& random) const override;
  std::string describe() const override;

  struct Window {
    int top, left, height, width;
  };
  // The window chosen for an image_height × image_width image (draws from `random` exactly as
  // apply() does).
  Window choose_window(int image_height, int image_width, SampleRandom& random) const;

 private:
  int height_, width_;
  double scale_min_, scale_max_, ratio_min_, ratio_max_;
};

// ---- building blocks, also used by loaders -------------------------------------------------

// out = the out_height × out_width window of `image` whose top-left corner is (top, left);
// top and left may be negative and the window may extend past the image: pixels outside it are
// `fill`. `out` must not be `image`.
void crop_with_fill(const Image& image, int top, int left, int out_height, int out_width,
                    uint8_t fill, Image& out);

// out = the window (top, left, height, width) of `image`, which must lie inside it, resized
// bilinearly to out_height × out_width (half-pixel centers, edge pixels repeated, rounded to the
// nearest byte). `out` must not be `image`.
void resize_bilinear(const Image& image, int top, int left, int height, int width, int out_height,
                     int out_width, Image& out);

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
